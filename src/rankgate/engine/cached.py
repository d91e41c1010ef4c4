"""Scoring through the score cache: what a key holds, and one request's lookup.

A key is the blake2b-128 digest of an injective encoding of: the model's fingerprint
(:func:`model_fingerprint`), the long-document options ``Reranker.prepare`` receives, the
instruction, the query and the document's scored text (after ``rank_fields``). Everything else
that could change a score lives in the fingerprint, so a change of any part is a miss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rankgate.engine.cache import KEY_BYTES, CachedScore, ScoreCache
from rankgate.engine.inputs import check_instruction, check_query, document_texts
from rankgate.engine.scoring import aggregate_max
from rankgate.types import Document, LongDocumentPolicy

if TYPE_CHECKING:
    from rankgate.engine.pairs import DocPlan
    from rankgate.engine.reranker import DocFacts, PreparedRequest, Reranker

__all__ = ["Lookup", "model_fingerprint", "score_keys"]

_FORMAT = "rankgate score cache 1"  # a new layout of keys or values changes this


def _encode(*parts: str | int | float | bool | None) -> bytes:
    """An injective encoding: each part typed and length-prefixed, so ("ab", "c") never meets
    ("a", "bc") and None never meets "None"."""
    out = bytearray()
    for part in parts:
        if part is None:
            out += b"N"
            continue
        if isinstance(part, bool):
            tag, data = b"B", b"1" if part else b"0"
        elif isinstance(part, int):
            tag, data = b"I", str(part).encode()
        elif isinstance(part, float):
            tag, data = b"F", part.hex().encode()
        else:
            tag, data = b"S", part.encode("utf-8", "surrogatepass")
        out += tag + len(data).to_bytes(8, "little") + data
    return bytes(out)


def model_fingerprint(reranker: Reranker) -> bytes:
    """What of a loaded model decides its raw scores: which weights (id, revision, ONNX file),
    how they run (backend, device, dtype, packed passes, prefix cache) and how pairs are built
    (``max_length``, recipe, long-document policy, overlap, windows)."""
    b, s = reranker.backend, reranker.settings
    recipe = getattr(b, "recipe", None)
    return _encode(
        _FORMAT,
        f"{type(b).__module__}.{type(b).__qualname__}",
        b.name,
        b.model_id,
        s.model,
        s.revision,
        s.onnx_file,
        s.recipe,
        getattr(recipe, "name", None),
        b.device,
        b.dtype,
        bool(getattr(b, "packed", s.packed)),
        s.prefix_cache,
        reranker.max_length,
        s.long_documents,
        s.chunk_overlap,
        s.max_chunks,
        reranker.score_offset,
    )


def score_keys(
    fingerprint: bytes,
    texts: Sequence[str],
    *,
    query: str,
    instruction: str | None,
    long_documents: str | None,
    max_chunks: int | None,
    max_tokens_per_doc: int | None,
) -> list[bytes]:
    """The key of each document: the model, the request's options and query, the text.

    The options are the ones ``Reranker.prepare`` receives (None: the model's setting, which the
    fingerprint holds).
    """
    request = hashlib.blake2b(digest_size=KEY_BYTES)
    request.update(len(fingerprint).to_bytes(8, "little") + fingerprint)
    request.update(_encode(long_documents, max_chunks, max_tokens_per_doc, instruction, query))
    keys = []
    for text in texts:
        h = request.copy()
        h.update(_encode(text))
        keys.append(h.digest())
    return keys


@dataclass
class Lookup:
    """One query's documents looked up: what the cache held, and what the model must score.

    A key that occurs twice in one request is scored once.

    Attributes:
        keys: each document's key.
        found: each document's cached score, or None.
        missing: the documents to score: the first of each key that was not found.
        slots: for each document not found, its place in ``missing`` (-1 when found).
        prepared: the tokenized ``missing`` documents (None when nothing is missing).
    """

    keys: list[bytes]
    found: list[CachedScore | None]
    missing: list[int]
    slots: list[int]
    prepared: PreparedRequest | None = None

    @classmethod
    def find(cls, cache: ScoreCache, keys: list[bytes]) -> Lookup:
        found = cache.get_many(keys)
        first: dict[bytes, int] = {}
        missing: list[int] = []
        slots: list[int] = []
        for i, (key, hit) in enumerate(zip(keys, found, strict=True)):
            if hit is not None:
                slots.append(-1)
                continue
            if key not in first:
                first[key] = len(missing)
                missing.append(i)
            slots.append(first[key])
        return cls(keys, found, missing, slots)

    @classmethod
    def request(
        cls,
        cache: ScoreCache,
        reranker: Reranker,
        fingerprint: bytes,
        query: str,
        documents: Sequence[Document],
        *,
        rank_fields: Sequence[str] | None,
        instruction: str | None,
        long_documents: LongDocumentPolicy | None,
        max_chunks: int | None,
        max_tokens_per_doc: int | None,
        admit: Callable[[], None],
    ) -> Lookup:
        """Validate as ``Reranker.prepare`` does, look every document up, and tokenize the
        missing ones, after ``admit()`` (which may refuse) when there are any."""
        query = check_query(query)
        texts = document_texts(documents, rank_fields)
        instruction = check_instruction(instruction)
        keys = score_keys(
            fingerprint,
            texts,
            query=query,
            instruction=instruction,
            long_documents=long_documents,
            max_chunks=max_chunks,
            max_tokens_per_doc=max_tokens_per_doc,
        )
        lookup = cls.find(cache, keys)
        if lookup.missing:
            admit()
            lookup.prepared = reranker.prepare(
                query,
                [texts[i] for i in lookup.missing],
                long_documents=long_documents,
                max_chunks=max_chunks,
                max_tokens_per_doc=max_tokens_per_doc,
                instruction=instruction,
                positions=lookup.missing,
            )
        return lookup

    def _plans(self) -> list[DocPlan]:
        return self.prepared.plans if self.prepared is not None else []

    @property
    def computed_tokens(self) -> int:
        """Model tokens of the pairs the model must compute."""
        return self.prepared.input_tokens if self.prepared is not None else 0

    @property
    def input_tokens(self) -> int:
        """Model tokens of every document's pairs, cached or not (what the request is worth)."""
        computed = [_input_tokens(plan) for plan in self._plans()]
        return sum(
            hit.input_tokens if hit is not None else computed[slot]
            for hit, slot in zip(self.found, self.slots, strict=True)
        )

    def complete(
        self, cache: ScoreCache, logits: np.ndarray | None
    ) -> tuple[np.ndarray, Sequence[DocFacts]]:
        """Every document's raw score and facts, from the cache or from ``logits`` (the window
        logits of ``prepared``, whose scores are kept for the next request)."""
        plans = self._plans()
        dtypes = {np.dtype(hit.dtype) for hit in self.found if hit is not None}
        computed = np.empty(0, np.float32)
        if plans:
            assert logits is not None
            computed = aggregate_max(logits, [plan.chunks for plan in plans])
            dtypes.add(computed.dtype)
        # The logits' own dtype: a float32 logit taken back from its float64 copy is the same
        # number, so relevance() sees exactly what it saw when the score was computed.
        raw = np.empty(len(self.keys), np.result_type(*dtypes))
        facts: list[DocFacts] = []
        for i, (hit, slot) in enumerate(zip(self.found, self.slots, strict=True)):
            if hit is not None:
                raw[i] = hit.raw
                facts.append(hit)
            else:
                raw[i] = computed[slot]
                facts.append(plans[slot])
        cache.put_many(
            (
                self.keys[doc],
                CachedScore(
                    float(value),
                    computed.dtype.char,
                    plan.truncated,
                    plan.chunks,
                    plan.tokens,
                    _input_tokens(plan),
                ),
            )
            for doc, plan, value in zip(self.missing, plans, computed, strict=True)
            if np.isfinite(value)
        )
        return raw, facts


def _input_tokens(plan: DocPlan) -> int:
    return sum(len(pair) for pair in plan.pairs)
