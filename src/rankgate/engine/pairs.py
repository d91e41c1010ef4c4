"""Building model inputs: FlagEmbedding's truncation policy, and windows for long documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rankgate.backends.base import Backend, EncodedPair
from rankgate.errors import ConfigError, InputTooLongError
from rankgate.types import LongDocumentPolicy

__all__ = ["DocPlan", "PairBuilder", "window_starts"]


@dataclass(frozen=True, slots=True)
class DocPlan:
    """The model inputs for one document: one pair, or one per window when chunked."""

    pairs: tuple[EncodedPair, ...]
    tokens: int
    truncated: bool
    query_truncated: bool


def window_starts(length: int, window: int, overlap: int, max_windows: int | None) -> list[int]:
    """Start offsets of windows of ``window`` tokens covering ``length`` tokens.

    Consecutive windows share ``overlap`` tokens; the last window is aligned to the end so it
    has full context. With ``max_windows`` the list stops there (the rest is not covered).
    """
    if length <= window:
        return [0]
    stride = window - overlap
    starts = [0]
    while starts[-1] + window < length:
        if max_windows is not None and len(starts) >= max_windows:
            return starts
        starts.append(starts[-1] + stride)
    starts[-1] = length - window
    return starts


class PairBuilder:
    """Turns (query, document) texts into token pairs.

    The query keeps at most 3/4 of ``max_length`` tokens; only the document is cut, exactly as
    FlagEmbedding's ``FlagReranker`` does. A document that does not fit is truncated, rejected
    (``InputTooLongError``) or, with the ``chunk`` policy, split into overlapping windows that are
    each scored.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_length: int,
        policy: LongDocumentPolicy,
        chunk_overlap: int,
        max_chunks: int | None,
    ) -> None:
        if max_length > backend.model_max_length:
            raise ConfigError(
                f"max_length {max_length} exceeds what the model supports "
                f"({backend.model_max_length} tokens)"
            )
        self.backend = backend
        self.max_length = max_length
        self.query_max_length = max_length * 3 // 4
        self.policy = policy
        self.chunk_overlap = chunk_overlap
        self.max_chunks = max_chunks

    def plan(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        *,
        policy: LongDocumentPolicy | None = None,
        max_chunks: int | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> list[DocPlan]:
        """Plan each (queries[i], documents[i]) pair; repeated queries are tokenized once."""
        policy = policy or self.policy
        max_chunks = max_chunks or self.max_chunks
        unique = list(dict.fromkeys(queries))
        q_ids = dict(zip(unique, self.backend.tokenize(unique), strict=True))
        # Tokenize no more of each document than can ever be scored.
        if policy in ("truncate", "reject"):
            doc_cap: int | None = self.max_length
        elif max_chunks is not None:
            doc_cap = self.max_length * max_chunks
        else:
            doc_cap = None
        if max_tokens_per_doc is not None:
            doc_cap = min(doc_cap or max_tokens_per_doc + 1, max_tokens_per_doc + 1)
        d_ids = self.backend.tokenize(documents, doc_cap)
        return [
            self._plan_one(i, q_ids[q], d, policy, max_chunks, max_tokens_per_doc)
            for i, (q, d) in enumerate(zip(queries, d_ids, strict=True))
        ]

    def _plan_one(
        self,
        index: int,
        query: list[int],
        doc: list[int],
        policy: LongDocumentPolicy,
        max_chunks: int | None,
        max_tokens_per_doc: int | None,
    ) -> DocPlan:
        template = self.backend.template
        query_truncated = len(query) > self.query_max_length
        query = query[: self.query_max_length]
        cut = False
        if max_tokens_per_doc is not None and len(doc) > max_tokens_per_doc:
            doc, cut = doc[:max_tokens_per_doc], True
        window = self.max_length - len(query) - template.special_tokens
        if policy == "reject" and (query_truncated or len(doc) > window):
            raise InputTooLongError(
                f"document {index}: the (query, document) pair needs "
                f"{len(query) + len(doc) + template.special_tokens} tokens or more, over "
                f"max_length {self.max_length} (the query may use {self.query_max_length}), "
                "and truncation is off"
            )
        if len(doc) <= window:
            return DocPlan((template.build(query, doc),), len(doc), cut, query_truncated)
        if policy == "truncate":
            return DocPlan((template.build(query, doc[:window]),), len(doc), True, query_truncated)
        overlap = min(self.chunk_overlap, window // 2)
        starts = window_starts(len(doc), window, overlap, max_chunks)
        covered = starts[-1] + window >= len(doc)
        pairs = tuple(template.build(query, doc[s : s + window]) for s in starts)
        return DocPlan(pairs, len(doc), cut or not covered, query_truncated)
