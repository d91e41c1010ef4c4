"""FlagEmbedding's token compression for bge-reranker-v2.5-gemma2-lightweight
(``token_compress`` and ``CostWiseGemmaModel.forward`` in ``models/gemma_model.py``).

Before each decoder layer listed in ``compress_layers`` (layer 0 excepted, and only below the
cutoff layer, where the reference stops), each pair's passage tokens, the ones between its query
part (BOS, query, separator: :attr:`EncodedPair.shared`) and its prompt part (separator,
prompt: :attr:`EncodedPair.suffix`), are averaged in consecutive groups of ``compress_ratio``
(the last group over the tokens it has), while the query and prompt tokens stay as they are. The
shorter sequence then runs on at positions ``0, 1, …`` from its start (the reference resets
them), under a causal mask rebuilt for it, with each sliding-window layer's window. Compressing
again at a later layer pools the pooled passage again.

Every pair is compressed on its own, so how pairs are batched changes nothing; the pass is
padded, whole pairs (no shared prefix: after compression the documents' prefixes no longer line
up with anything computed once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair

__all__ = ["compress", "compressed_last_hidden"]


def compress(
    torch: Any,
    hidden: Any,
    lengths: Sequence[int],
    heads: Sequence[int],
    tails: Sequence[int],
    ratio: int,
) -> tuple[Any, list[int]]:
    """Pool each row's passage (between its first ``heads[r]`` and last ``tails[r]`` of
    ``lengths[r]`` real tokens) by ``ratio``; the new right-padded rows and their lengths."""
    rows = []
    for r, (n, head, tail) in enumerate(zip(lengths, heads, tails, strict=True)):
        x = hidden[r, :n]
        size = n - head - tail
        groups = -(-size // ratio)
        short = groups * ratio - size
        passage = x[head : head + size]
        if short:
            passage = torch.cat([passage, passage.new_zeros(short, x.shape[-1])])
        sums = passage.reshape(groups, ratio, x.shape[-1]).sum(dim=1)
        counts = torch.full((groups, 1), float(ratio), dtype=x.dtype, device=x.device)
        if short:
            counts[-1] = ratio - short
        rows.append(torch.cat([x[:head], sums / counts, x[head + size :]]))
    new = [len(row) for row in rows]
    out = hidden.new_zeros((len(rows), max(new), hidden.shape[-1]))
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return out, new


def _mask(torch: Any, lengths: Sequence[int], width: int, window: int | None, like: Any) -> Any:
    """Additive ``(rows, 1, width, width)`` mask: causal, real keys only, within ``window``."""
    device = like.device
    query = torch.arange(width, device=device)[:, None]
    key = torch.arange(width, device=device)[None, :]
    allowed = key <= query
    if window is not None:
        allowed = allowed & (key > query - window)
    real = (
        torch.arange(width, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]
    )
    allowed = allowed[None] & real[:, None, :]
    out = torch.zeros(allowed.shape, dtype=like.dtype, device=device)
    return out.masked_fill(~allowed, torch.finfo(like.dtype).min)[:, None]


def compressed_last_hidden(
    torch: Any,
    body: Any,
    pairs: Sequence[EncodedPair],
    ratio: int,
    layers: Sequence[int],
    pad_token_id: int,
) -> Any:
    """The final-norm hidden state at each pair's last token, ``(len(pairs), hidden)``, of a
    transformers Gemma-2 body compressing tokens before ``layers`` (see the module doc)."""
    device = next(body.parameters()).device
    width = max(len(p) for p in pairs)
    ids = np.full((len(pairs), width), pad_token_id, dtype=np.int64)
    for row, pair in enumerate(pairs):
        ids[row, : len(pair)] = pair.input_ids
    lengths = [len(p) for p in pairs]
    heads = [p.shared for p in pairs]
    tails = [p.suffix for p in pairs]
    with torch.inference_mode():
        hidden = body.embed_tokens(torch.from_numpy(ids).to(device))
        for index, layer in enumerate(body.layers):
            if index and index in layers:
                hidden, lengths = compress(torch, hidden, lengths, heads, tails, ratio)
            positions = torch.arange(hidden.shape[1], device=device)[None].expand(len(pairs), -1)
            window = getattr(layer.self_attn, "sliding_window", None)
            hidden = layer(
                hidden,
                position_embeddings=body.rotary_emb(hidden, positions),
                attention_mask=_mask(torch, lengths, hidden.shape[1], window, hidden),
                position_ids=positions,
            )
        hidden = body.norm(hidden)
        last = torch.tensor([n - 1 for n in lengths], device=device)
        return hidden[torch.arange(len(pairs), device=device), last]
