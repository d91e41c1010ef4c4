"""Unpadded ("packed") forward passes for causal-LM rerankers, shared prefix computed once.

The padded forward pads every pair of a pass to the longest one and, with a shared-prefix key/value
cache, still pads every pair's rest to the longest rest. Here one pass is a single row of real
tokens only: each distinct shared prefix once (the template's head, the instruction and the
query), then the rest of every pair that shares it, then the next prefix and its rests, and
pairs that share nothing whole. Each linear layer is then one large matrix product over real
tokens, and attention runs piece by piece:

- a prefix (or a whole pair) attends causally to itself;
- a pair's rest attends to all of its prefix and causally to itself, at positions that follow
  the prefix.

A prefix is computed once per request, not once per pass: the keys and values a pass computed
for a prefix are kept (a few prefixes, least recently used first out), and a later pass whose
pairs share that prefix reads them instead of computing it again, its rests at the positions
that follow it. A request's documents that fill several passes pay for their query once.

That is exactly the attention each pair has when it is scored alone, so the scores are the
stock forward's (checked against it when the model loads, :class:`DecoderBackend` compares the
two on probe pairs, and used only where that check passes).

The model is the checkpoint's own: its embedding, layers, rotary positions and norms run as
transformers wrote them; only the attention kernel is swapped, through transformers' attention
registry, for one that reads the layout of the pass. Without a layout it is transformers' own
SDPA attention, so the stock forward of the same model object is unchanged.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair

__all__ = [
    "ATTENTION",
    "Layout",
    "PackedDecoder",
    "PrefixStates",
    "register_attention",
    "unsupported_reason",
]

ATTENTION = "rankgate_packed"
"""The name the attention kernel is registered under (``config._attn_implementation``)."""

# The layout of the pass in progress on this thread, read by every layer's attention and by the
# mask builder (a packed pass needs no dense mask). Unset, both are transformers' SDPA ones.
_LAYOUT: ContextVar[Layout | None] = ContextVar("rankgate_packed_layout", default=None)


@dataclass(slots=True)
class PrefixStates:
    """A prefix's attention keys and values in every layer, ``(1, kv_heads, tokens, dim)``, as
    a pass computed them (before the heads are repeated for grouped-query attention), by the
    ``id`` of the layer's attention module."""

    prefix: tuple[int, ...]
    keys: dict[int, Any] = field(default_factory=dict)
    values: dict[int, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        tensors = [*self.keys.values(), *self.values.values()]
        return sum(int(t.element_size() * t.nelement()) for t in tensors)


@dataclass(slots=True)
class Layout:
    """Where each piece of a packed row sits; built once per pass, read by every layer.

    ``pieces`` holds ``(context, context_start, context_end, start, end)``: rows ``start:end``
    attend to rows ``context_start:context_end`` of the row (``context`` None: their shared
    prefix, computed in this pass; empty for a prefix or a whole pair), or, where ``context``
    is an index into ``kept``, to all of that prefix kept from an earlier pass; and causally
    to themselves.
    """

    pieces: list[tuple[int | None, int, int, int, int]]
    saved: int = 0
    """Tokens not computed because a prefix was computed once for several pairs."""
    kept: list[PrefixStates] = field(default_factory=list)
    """Prefixes read from earlier passes."""
    capture: list[tuple[int, int, PrefixStates]] = field(default_factory=list)
    """Prefixes computed in this pass, ``(start, end, states)``, whose keys and values each
    layer stores for later passes."""
    masks: dict[tuple[int, int, int | None], Any] = field(default_factory=dict)

    def mask(
        self, torch: Any, context: int, length: int, device: Any, window: int | None = None
    ) -> Any:
        """Boolean mask of ``length`` queries over ``context`` prefix keys and their own: all
        of the prefix and causally their own, or only the last ``window`` positions up to each
        query's (a sliding-window layer, as transformers' masks have it)."""
        key = (context, length, window)
        if key not in self.masks:
            query = torch.arange(context, context + length, device=device)[:, None]
            keys = torch.arange(context + length, device=device)[None, :]
            allowed = keys <= query
            if window is not None:
                allowed &= keys > query - window
            self.masks[key] = allowed
        return self.masks[key]


def _attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention signature: ``query`` is ``(1, heads, tokens, dim)``, ``key`` and
    ``value`` ``(1, kv_heads, tokens, dim)``; returns ``(1, tokens, heads, dim)``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    layout = _LAYOUT.get()
    if layout is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    import torch

    if kwargs.get("softcap") is not None:
        raise ValueError("the packed decoder pass has no attention-logit soft-capping")
    window = kwargs.get("sliding_window")
    layer = id(module)  # one attention module per layer, alive as long as the model
    for start, end, states in layout.capture:
        states.keys[layer] = key[:, :, start:end].clone()
        states.values[layer] = value[:, :, start:end].clone()
    groups = int(getattr(module, "num_key_value_groups", 1))

    def heads(x: Any) -> Any:
        return x.repeat_interleave(groups, dim=1) if groups > 1 else x

    key, value = heads(key), heads(value)
    kept = [(heads(s.keys[layer]), heads(s.values[layer])) for s in layout.kept]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    out = torch.empty(
        (1, query.shape[2], query.shape[1], query.shape[3]), dtype=query.dtype, device=query.device
    )
    for context, c0, c1, a, b in layout.pieces:
        if context is None:
            context_key, context_value = key[:, :, c0:c1], value[:, :, c0:c1]
        else:
            context_key, context_value = kept[context]
        before = context_key.shape[2]
        # A window only bites where a piece reaches further back than it.
        windowed = window is not None and before + (b - a) > window
        q = query[:, :, a:b]
        if before == 0 and not windowed:
            got = sdpa(q, key[:, :, a:b], value[:, :, a:b], is_causal=True, scale=scaling)
        else:
            k = torch.cat([context_key, key[:, :, a:b]], dim=2)
            v = torch.cat([context_value, value[:, :, a:b]], dim=2)
            mask = layout.mask(torch, before, b - a, query.device, window if windowed else None)
            got = sdpa(q, k, v, attn_mask=mask, scale=scaling)
        out[0, a:b] = got[0].transpose(0, 1)
    return out, None


def _mask(*args: Any, **kwargs: Any) -> Any:
    """SDPA's mask builder, except during a packed pass (whose pieces carry their own masks)."""
    from transformers.masking_utils import sdpa_mask

    if _LAYOUT.get() is not None:
        return None
    return sdpa_mask(*args, **kwargs)


def register_attention() -> None:
    """Register the kernel and its mask builder under :data:`ATTENTION`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(ATTENTION, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, _mask)


def unsupported_reason(config: Any) -> str | None:
    """Why the packed pass cannot run this model's attention exactly, or None."""
    if getattr(config, "attn_logit_softcapping", None):
        return "its attention logits are soft-capped"
    if not getattr(config, "is_causal", True):
        return "its attention is bidirectional"
    return None


class PackedDecoder:
    """Runs a loaded causal LM's decoder body on packed pairs (see the module's docstring).

    Args:
        keep_prefixes: how many prefixes' keys and values to keep for later passes (0: none).
        keep_bytes: at most this much memory for them in all (one larger is not kept): a
            prefix costs 2 × layers × key/value heads × head size × 4 bytes a token, 224 KiB
            for Qwen3-Reranker-0.6B, so the default holds about 1,170 prefix tokens there.
    """

    def __init__(
        self, body: Any, torch: Any, keep_prefixes: int = 4, keep_bytes: int = 256 << 20
    ) -> None:
        self._body = body
        self._torch = torch
        self._device = next(body.parameters()).device
        self._keep_prefixes = keep_prefixes
        self._keep_bytes = keep_bytes
        self._kept: OrderedDict[tuple[int, ...], PrefixStates] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def kept_prefixes(self) -> int:
        """How many prefixes' keys and values are kept for later passes."""
        with self._lock:
            return len(self._kept)

    def forget(self) -> None:
        """Drop every kept prefix."""
        with self._lock:
            self._kept.clear()

    def last_hidden(self, pairs: Sequence[EncodedPair], reuse_prefix: bool) -> tuple[Any, int]:
        """The final hidden state at each pair's last token, ``(len(pairs), hidden)``, and the
        tokens saved by computing shared prefixes once."""
        torch = self._torch
        ids, positions, layout, last = self.layout(pairs, reuse_prefix)
        device = self._device
        token = _LAYOUT.set(layout)
        try:
            with torch.inference_mode():
                hidden = self._body(
                    input_ids=torch.from_numpy(ids).to(device)[None],
                    position_ids=torch.from_numpy(positions).to(device)[None],
                    use_cache=False,
                ).last_hidden_state[0]
                final = hidden[torch.from_numpy(last).to(device)]
        finally:
            _LAYOUT.reset(token)
        self._keep(layout)  # only a pass that ran through every layer
        return final, layout.saved

    def _keep(self, layout: Layout) -> None:
        if not layout.capture:
            return
        with self._lock:
            for _, _, states in layout.capture:
                self._kept[states.prefix] = states
            while self._kept and (
                len(self._kept) > self._keep_prefixes
                or sum(s.nbytes for s in self._kept.values()) > self._keep_bytes
            ):
                self._kept.popitem(last=False)

    def _kept_states(self, prefix: tuple[int, ...]) -> PrefixStates | None:
        with self._lock:
            states = self._kept.get(prefix)
            if states is not None:
                self._kept.move_to_end(prefix)
            return states

    def layout(
        self, pairs: Sequence[EncodedPair], reuse_prefix: bool
    ) -> tuple[np.ndarray, np.ndarray, Layout, np.ndarray]:
        """Token ids, positions, pieces and each pair's last row for one packed row."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, pair in enumerate(pairs):
            prefix = tuple(pair.input_ids[: pair.shared]) if reuse_prefix else ()
            groups.setdefault(prefix, []).append(i)
        keep = reuse_prefix and self._keep_prefixes > 0
        chunks: list[Sequence[int]] = []
        position_chunks: list[np.ndarray] = []
        layout = Layout([])
        last = np.empty(len(pairs), dtype=np.int64)
        row = 0
        for prefix, members in groups.items():
            kept = self._kept_states(prefix) if keep and prefix else None
            if kept is not None:  # computed by an earlier pass: every member saves it
                p = len(prefix)
                context: tuple[int | None, int, int] = (len(layout.kept), 0, 0)
                layout.kept.append(kept)
                layout.saved += p * len(members)
            else:
                # A prefix of one pair is computed apart only to be kept for a later pass.
                p = len(prefix) if len(members) > 1 or keep else 0
                context = (None, row, row + p)
                if p:
                    chunks.append(prefix)
                    position_chunks.append(np.arange(p))
                    layout.pieces.append((None, row, row, row, row + p))
                    if keep:
                        layout.capture.append((row, row + p, PrefixStates(prefix)))
                    row += p
                    layout.saved += p * (len(members) - 1)
            for i in members:
                rest = pairs[i].input_ids[p:]
                chunks.append(rest)
                position_chunks.append(np.arange(p, p + len(rest)))
                layout.pieces.append((*context, row, row + len(rest)))
                row += len(rest)
                last[i] = row - 1
        ids = np.fromiter(itertools.chain.from_iterable(chunks), np.int64, count=row)
        positions = np.concatenate(position_chunks).astype(np.int64)
        return ids, positions, layout, last
