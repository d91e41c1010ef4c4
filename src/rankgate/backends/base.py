"""The backend protocol: one model family, no HTTP, no batching policy.

A backend tokenizes text (without special tokens), knows how its model lays out a
(query, document) pair, and runs a forward pass over already-built pairs, returning one raw
logit per pair. Everything else (truncation, chunking, batching, sigmoid) is the engine's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "EncodedPair", "PairTemplate", "is_cuda", "pad_batch", "physical_cores"]


@dataclass(frozen=True, slots=True)
class EncodedPair:
    """A (query, document) pair ready for the model: token ids with special tokens."""

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None = None
    # Leading tokens (template prefix, query, middle) that every document of the same query
    # shares; a causal model may compute them once and reuse their key/value cache.
    shared: int = 0
    # Trailing tokens after the document (the template's suffix; a decoder's prompt).
    suffix: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True, slots=True)
class PairTemplate:
    """Where a tokenizer puts its special tokens around a pair: ``prefix A middle B suffix``.

    Derived once from the tokenizer itself, so the engine can cut and window documents in token
    space and still build exactly the inputs ``tokenizer(query, document)`` would.
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    # Segment ids (token_type_ids) of the first and second part; None for models without them.
    first_type: int | None = None
    second_type: int | None = None
    # Put before a window that starts inside a long document (a decoder's "B: " / "document: ").
    doc_marker: tuple[int, ...] = ()

    @property
    def special_tokens(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def build(self, query: Sequence[int], document: Sequence[int]) -> EncodedPair:
        ids = (*self.prefix, *query, *self.middle, *document, *self.suffix)
        first = len(self.prefix) + len(query) + len(self.middle)
        tail = len(self.suffix)
        if self.first_type is None or self.second_type is None:
            return EncodedPair(ids, shared=first, suffix=tail)
        types = (self.first_type,) * first + (self.second_type,) * (len(ids) - first)
        return EncodedPair(ids, types, shared=first, suffix=tail)

    @classmethod
    def derive(
        cls,
        pair: Sequence[int],
        first: Sequence[int],
        second: Sequence[int],
        type_ids: Sequence[int] | None = None,
    ) -> PairTemplate:
        """Find the special tokens around ``first`` and ``second`` in the encoded ``pair``."""
        a, b = len(first), len(second)
        for start in range(len(pair) - a - b + 1):
            if tuple(pair[start : start + a]) != tuple(first):
                continue
            for mid in range(start + a, len(pair) - b + 1):
                if tuple(pair[mid : mid + b]) == tuple(second):
                    t1 = t2 = None
                    if type_ids is not None and len(set(type_ids)) > 1:
                        t1, t2 = type_ids[start], type_ids[mid]
                    return cls(
                        tuple(pair[:start]),
                        tuple(pair[start + a : mid]),
                        tuple(pair[mid + b :]),
                        t1,
                        t2,
                    )
        raise ValueError("the tokenizer's pair encoding does not contain its parts in order")


def pad_batch(
    pairs: Sequence[EncodedPair], pad_token_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Right-padded ``input_ids``, ``attention_mask`` and (when pairs carry them) segment ids."""
    width = max(len(p) for p in pairs)
    ids = np.full((len(pairs), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(pairs), width), dtype=np.int64)
    types = np.zeros((len(pairs), width), dtype=np.int64) if pairs[0].token_type_ids else None
    for row, pair in enumerate(pairs):
        ids[row, : len(pair)] = pair.input_ids
        mask[row, : len(pair)] = 1
        if types is not None and pair.token_type_ids:
            types[row, : len(pair)] = pair.token_type_ids
    return ids, mask, types


@runtime_checkable
class Backend(Protocol):
    """What the engine needs from a model family."""

    name: str
    model_id: str
    device: str
    dtype: str
    template: PairTemplate
    pad_token_id: int
    model_max_length: int
    parameters: int
    packed: bool
    """True when a forward pass computes real tokens only (no padding to the longest pair), so
    a batch costs the sum of its pairs' lengths rather than its size times its longest."""
    shares_prefix: bool
    """True when a packed pass computes a prefix that several pairs share (``EncodedPair.shared``)
    once, so a batch costs that prefix once and each pair its rest."""
    shared_prefix_tokens_saved: int
    """Tokens not computed so far because pairs shared a prefix: computed once in a pass, or
    read from the keys and values an earlier pass kept (grows only; 0 where nothing is shared)."""

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        """Token ids of each text, without special tokens, cut at ``max_tokens`` if given."""
        ...

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        """One raw logit per pair (float32, shape ``(len(pairs),)``).

        Raises:
            DeviceOutOfMemoryError: the batch did not fit; the engine splits it and retries.
        """
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (used to show which window of a document scored)."""
        ...


def is_cuda(device: str) -> bool:
    """Whether a device name (``cuda``, ``cuda:N``, ``cpu``, ``mps``, …) names a CUDA device."""
    return device == "cuda" or device.startswith("cuda:")


def physical_cores() -> int:
    """CPUs this process may run on (affinity-aware, so a container's limit is respected)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
