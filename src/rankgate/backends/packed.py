"""Unpadded ("packed") forward passes for BERT-family cross-encoders (XLM-RoBERTa, RoBERTa, BERT).

The stock transformers forward takes a padded ``(batch, width)`` block: every pair is padded to
the longest, and every padded token goes through every layer. Here the real tokens of all pairs
are concatenated into one ``(tokens, hidden)`` matrix, so each linear layer is a single large
matrix product over real tokens only, and attention runs per pair on its own tokens (CUDA: one
variable-length flash-attention call; elsewhere: scaled-dot-product attention pair by pair). The
last layer computes only what the classification head reads, the first (``<s>``/``[CLS]``)
token of each pair: its keys and values still come from every token, but its queries, attention
output and feed-forward block run on one row a pair. That is the same arithmetic as the stock
forward (TEI's own BERT implementation does the same), checked against it when the model loads
(``TorchBackend`` compares the two on probe pairs), and used only where that check passes.

The layers are the model's own modules, called in the order their ``forward`` calls them, so the
weights, activation and layer-norm epsilon are the checkpoint's. Their linear layers run through
:class:`~rankgate.backends.kernels.Linears`: the modules themselves, or oneDNN where it is the
faster fp32 library for the CPU, and in ``bf16-mixed`` as bf16 products (attention on their bf16
outputs, its softmax accumulated in fp32 by the kernel) while embeddings, the residual stream,
layer norms and the head stay fp32.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair
from rankgate.backends.kernels import Linears

__all__ = ["PackedEncoder", "classify", "encoder_linears", "packed_encoder"]

_FAMILIES = {"xlm-roberta", "roberta", "camembert", "bert"}


class PackedEncoder:
    """Runs a loaded ``*ForSequenceClassification`` model on packed pairs."""

    def __init__(self, model: Any, torch: Any, linears: Linears | None = None) -> None:
        self._torch = torch
        self._model = model
        self.linears = linears or Linears(torch, (), onednn=False, bf16=False)
        self._device = next(model.parameters()).device
        self._base = model.base_model
        self._layers = list(self._base.encoder.layer)
        self._embeddings = self._base.embeddings
        config = model.config
        self._heads = int(config.num_attention_heads)
        self._head_dim = int(config.hidden_size) // self._heads
        self._pad = int(config.pad_token_id or 0)
        # RoBERTa-family positions start after the padding index and skip padding tokens.
        self._roberta_positions = hasattr(self._embeddings, "create_position_ids_from_input_ids")
        self._varlen: Any = None
        if self._device.type == "cuda":
            try:
                from torch.nn.attention.varlen import varlen_attn

                self._varlen = varlen_attn
            except ImportError:  # older torch: per-pair attention on CUDA too
                pass

    def forward(self, pairs: Sequence[EncodedPair]) -> Any:
        """One raw logit per pair, as a ``(len(pairs),)`` tensor on the model's device."""
        torch, device = self._torch, self._device
        lengths = [len(p) for p in pairs]
        longest = max(lengths)
        ids = torch.from_numpy(_concat(p.input_ids for p in pairs))
        positions = self._positions(ids, lengths)
        if pairs[0].token_type_ids is not None:
            types = torch.from_numpy(_concat(p.token_type_ids or () for p in pairs))
        else:
            types = torch.zeros_like(ids)
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        hidden = self._embeddings(
            input_ids=ids.to(device)[None],
            position_ids=positions.to(device)[None],
            token_type_ids=types.to(device)[None],
        )[0]
        bounds = [(int(a), int(b)) for a, b in itertools.pairwise(starts)]
        cu = torch.from_numpy(starts).to(device=device, dtype=torch.int32)
        first = torch.from_numpy(starts[:-1]).to(device)
        for layer in self._layers[:-1]:
            hidden = self._layer(layer, hidden, hidden, bounds, cu, longest, one_query=False)
        # The last layer: keys and values of every token, everything else on the first tokens.
        last = self._layers[-1]
        cls = self._layer(last, hidden, hidden[first], bounds, cu, longest, one_query=True)
        return self._head(cls[:, None, :])

    def _positions(self, ids: Any, lengths: list[int]) -> Any:
        torch = self._torch
        if not self._roberta_positions:
            return torch.cat([torch.arange(n) for n in lengths])
        make = self._embeddings.create_position_ids_from_input_ids
        return torch.cat([make(part[None], self._pad)[0] for part in ids.split(lengths)])

    def _layer(
        self,
        layer: Any,
        hidden: Any,
        rows: Any,
        bounds: list[tuple[int, int]],
        cu: Any,
        longest: int,
        *,
        one_query: bool,
    ) -> Any:
        """One encoder layer; ``rows`` are the hidden states whose outputs are wanted (all of
        them, or with ``one_query``, the first token of each pair)."""
        attn, lin = layer.attention, self.linears
        q = lin(attn.self.query, rows)
        k = lin(attn.self.key, hidden)
        v = lin(attn.self.value, hidden)
        context = self._attention(q, k, v, bounds, cu, longest, one_query)
        # bf16-mixed: products come back in bf16; the residual stream stays in its own dtype.
        mid = attn.output.LayerNorm(lin(attn.output.dense, context).to(rows.dtype) + rows)
        inner = layer.intermediate.intermediate_act_fn(lin(layer.intermediate.dense, mid))
        return layer.output.LayerNorm(lin(layer.output.dense, inner).to(mid.dtype) + mid)

    def _attention(
        self,
        q: Any,
        k: Any,
        v: Any,
        bounds: list[tuple[int, int]],
        cu: Any,
        longest: int,
        one_query: bool,
    ) -> Any:
        torch = self._torch
        h, d = self._heads, self._head_dim
        q, k, v = (t.view(t.shape[0], h, d) for t in (q, k, v))
        if self._varlen is not None:  # one kernel call for all pairs
            cu_q = torch.arange(len(bounds) + 1, device=cu.device, dtype=cu.dtype)
            cu_q, longest_q = (cu_q, 1) if one_query else (cu, longest)
            out = self._varlen(q, k, v, cu_q, cu, longest_q, longest)
            return out.reshape(out.shape[0], h * d)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        out = torch.empty_like(q)
        for i, (a, b) in enumerate(bounds):
            qi = q[i : i + 1] if one_query else q[a:b]
            out_rows = out[i : i + 1] if one_query else out[a:b]
            got = sdpa(
                qi.transpose(0, 1)[None], k[a:b].transpose(0, 1)[None], v[a:b].transpose(0, 1)[None]
            )
            out_rows.copy_(got[0].transpose(0, 1))
        return out.view(out.shape[0], h * d)

    def _head(self, features: Any) -> Any:
        return classify(self._model, features)


def classify(model: Any, features: Any) -> Any:
    """The classification head on first-token features ``(pairs, 1, hidden)``: one raw logit a
    pair. BERT: its pooler (dense + tanh), then a Linear; RoBERTa family: the head itself."""
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None:
        return model.classifier(pooler(features))[:, 0]
    return model.classifier(features)[:, 0]  # the RoBERTa head takes features[:, 0]


def encoder_linears(model: Any, torch: Any) -> list[Any]:
    """The ``nn.Linear`` layers of a BERT-family model's encoder (not embeddings or head)."""
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None) or []
    return [m for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear)]


def _concat(parts: Any) -> np.ndarray:
    """Token ids of all pairs, end to end, as one int64 array."""
    return np.fromiter(itertools.chain.from_iterable(parts), np.int64)


def packed_encoder(
    model: Any, torch: Any, *, onednn: bool = False, bf16: bool = False
) -> PackedEncoder | None:
    """A :class:`PackedEncoder` for ``model`` if it is of a family whose layers it knows, its
    linear layers on oneDNN (``onednn``) and in bf16 with fp32 around them (``bf16``)."""
    model_type = getattr(model.config, "model_type", "")
    if model_type not in _FAMILIES or getattr(model.config, "is_decoder", False):
        return None
    base: Any = getattr(model, "base_model", None)
    try:
        layer = base.encoder.layer[0]
        _ = (layer.attention.self.query, layer.attention.output.LayerNorm)
        _ = (layer.intermediate.intermediate_act_fn, layer.output.LayerNorm, base.embeddings)
        _ = model.classifier
    except (AttributeError, IndexError, TypeError):
        return None
    if getattr(model.config, "position_embedding_type", "absolute") != "absolute":
        return None
    linears = Linears(torch, encoder_linears(model, torch), onednn=onednn, bf16=bf16)
    return PackedEncoder(model, torch, linears)
