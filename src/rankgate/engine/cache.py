"""The score cache: each document's raw score, kept in memory for the next request that asks.

A key is a 16-byte digest of everything that changes a score (:mod:`rankgate.engine.cached`
builds it): the model, the request's long-document options, the instruction, the query and the
document's scored text. A value is the raw aggregated logit, exactly as the model returned it,
and the facts a result reports (truncated, windows, tokens), so a hit gives the same result,
bit for bit, as the computation that stored it; relevance (sigmoid, or a calibration) is
applied on the way out.

The cache lives at the service level (:class:`~rankgate.engine.RerankService` takes one);
``Reranker`` itself always computes. Its memory is bounded: it counts the real size of its
keys, values and table (``sys.getsizeof``, rounded up to the allocator's 16 bytes), and the
least recently used entries go first. Thread-safe: one lock around every operation.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["CacheStats", "CachedScore", "ScoreCache"]

_VALUE = struct.Struct("<dc?III")  # raw logit, its dtype, truncated, chunks, tokens, input tokens
KEY_BYTES = 16


class CachedScore(NamedTuple):
    """One document's score as the cache keeps it.

    Attributes:
        raw: the aggregated raw logit (a float64 holds every float16 and float32 exactly).
        dtype: the logits' numpy type code (``"f"``: float32), to rebuild them bit for bit.
        truncated, chunks, tokens: as in :class:`~rankgate.types.RerankResult`.
        input_tokens: the model tokens of the document's pairs (its share of the usage).
    """

    raw: float
    dtype: str
    truncated: bool
    chunks: int
    tokens: int
    input_tokens: int


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the counters: lookups that hit and missed, entries evicted to stay within
    ``max_bytes``, and the memory and entries held now."""

    hits: int
    misses: int
    evictions: int
    bytes: int
    entries: int
    max_bytes: int

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


def _size(obj: object) -> int:
    return (sys.getsizeof(obj) + 15) & ~15


class ScoreCache:
    """A memory-bounded, thread-safe LRU map from score keys to scores.

    Args:
        max_bytes: the most memory its entries and table may take.

    Example:
        >>> cache = ScoreCache(256 << 20)
        >>> service = RerankService.start(reranker, cache=cache)  # doctest: +SKIP
        >>> cache.stats().entries
        0
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._payload = 0  # keys and values; the table is sys.getsizeof(self._entries)
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Held now (not counted as a lookup, and not made recent)."""
        return key in self._entries

    def get_many(self, keys: Sequence[bytes]) -> list[CachedScore | None]:
        """The score of each key, or None; each is counted as a hit or a miss, and a hit
        becomes the most recently used entry."""
        out: list[CachedScore | None] = []
        with self._lock:
            for key in keys:
                packed = self._entries.get(key)
                if packed is None:
                    self._misses += 1
                    out.append(None)
                    continue
                self._hits += 1
                self._entries.move_to_end(key)
                raw, dtype, truncated, chunks, tokens, input_tokens = _VALUE.unpack(packed)
                hit = CachedScore(raw, dtype.decode(), truncated, chunks, tokens, input_tokens)
                out.append(hit)
        return out

    def put_many(self, items: Iterable[tuple[bytes, CachedScore]]) -> None:
        """Keep these scores, evicting the least recently used entries to stay within
        ``max_bytes``. A key already held keeps its first value: a score served from the cache
        never changes while it is there."""
        packed = []
        for key, score in items:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a score key has {KEY_BYTES} bytes, not {len(key)}")
            try:
                value = _VALUE.pack(
                    score.raw,
                    score.dtype.encode(),
                    score.truncated,
                    score.chunks,
                    score.tokens,
                    score.input_tokens,
                )
            except struct.error:  # a count beyond 32 bits: such a document is not worth keeping
                continue
            packed.append((key, value))
        with self._lock:
            for key, value in packed:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    continue
                size = _size(key) + _size(value)
                if size > self.max_bytes:
                    continue
                self._entries[key] = value
                self._payload += size
                self._evict()

    def _evict(self) -> None:
        while self._entries and self._payload + sys.getsizeof(self._entries) > self.max_bytes:
            key, value = self._entries.popitem(last=False)
            self._payload -= _size(key) + _size(value)
            self._evictions += 1

    def clear(self) -> None:
        """Drop every entry (the counters of hits, misses and evictions stay)."""
        with self._lock:
            self._entries = OrderedDict()
            self._payload = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                bytes=self._payload + sys.getsizeof(self._entries),
                entries=len(self._entries),
                max_bytes=self.max_bytes,
            )
