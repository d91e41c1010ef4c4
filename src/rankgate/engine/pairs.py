"""Building model inputs: FlagEmbedding's truncation policy, and windows for long documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rankgate.backends.base import Backend, EncodedPair, PairTemplate
from rankgate.errors import ConfigError, InputTooLongError, InstructionNotSupportedError
from rankgate.types import LongDocumentPolicy

__all__ = ["DocPlan", "PairBuilder", "window_starts"]


@dataclass(frozen=True, slots=True)
class DocPlan:
    """The model inputs for one document: one pair, or one per window when chunked."""

    pairs: tuple[EncodedPair, ...]
    tokens: int
    truncated: bool
    query_truncated: bool

    @property
    def chunks(self) -> int:
        return len(self.pairs)


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

    Decoder backends format the query (with the instruction) and the document as their recipe
    says, may change the template with the instruction, and say what ``max_length`` bounds
    (``budget``): the whole sequence (``total``, as for encoders), the passage with the template
    on top (``passage``, bge-gemma), or query and document with the template on top (``pair``,
    mxbai-v2). A window that starts inside a document begins with the template's marker.
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
        self.budget: str = getattr(backend, "budget", "total")
        if self.budget == "pair":  # mxbai-rerank keeps the whole prompt within the positions
            fixed = len(backend.template.prefix) + len(backend.template.suffix)
            max_length = min(max_length, backend.model_max_length - fixed)
        self.max_length = max_length
        self.query_max_length = max_length * 3 // 4
        if self._window(0, backend.template) < 1:
            raise ConfigError(
                f"max_length {max_length} leaves no room for a query and a document: the "
                f"model's template takes {backend.template.special_tokens} tokens; raise max_length"
            )
        self.policy = policy
        self.chunk_overlap = chunk_overlap
        self.max_chunks = max_chunks

    @property
    def accepts_instruction(self) -> bool:
        return hasattr(self.backend, "format_query")

    def plan(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        *,
        instruction: str | None = None,
        policy: LongDocumentPolicy | None = None,
        max_chunks: int | None = None,
        max_tokens_per_doc: int | None = None,
        positions: Sequence[int] | None = None,
    ) -> list[DocPlan]:
        """Plan each (queries[i], documents[i]) pair; repeated queries are tokenized once.

        ``positions`` are the documents' places in the caller's request, for error messages,
        when these are only some of its documents (the ones a score cache did not hold).

        Raises:
            InstructionNotSupportedError: an instruction for a model without an instruction slot.
        """
        policy = policy or self.policy
        max_chunks = max_chunks or self.max_chunks
        backend: Any = self.backend
        template: PairTemplate = backend.template
        if self.accepts_instruction:
            template = backend.template_for(instruction)
            queries = [backend.format_query(q, instruction) for q in queries]
            documents = [backend.format_document(d) for d in documents]
        elif instruction is not None:
            raise InstructionNotSupportedError(
                f"'{backend.model_id}' is a cross-encoder that reads only the query and the "
                "document; it has no instruction slot (instructions are for decoder rerankers "
                "such as Qwen3-Reranker). Send the request without 'instruction'"
            )
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
        where = positions if positions is not None else range(len(documents))
        return [
            self._plan_one(i, q_ids[q], d, template, policy, max_chunks, max_tokens_per_doc)
            for i, q, d in zip(where, queries, d_ids, strict=True)
        ]

    def _window(self, query: int, template: PairTemplate) -> int:
        """Document tokens that fit beside ``query`` query tokens."""
        if self.budget == "passage":  # FlagLLMReranker: the prompt comes on top of max_length
            room = self.max_length + len(template.suffix) - len(template.prefix)
            return min(self.max_length, room - len(template.middle) - query)
        if self.budget == "pair":  # mxbai-rerank: query, separator and document
            return self.max_length - query - len(template.middle)
        return self.max_length - query - template.special_tokens

    def _plan_one(
        self,
        index: int,
        query: list[int],
        doc: list[int],
        template: PairTemplate,
        policy: LongDocumentPolicy,
        max_chunks: int | None,
        max_tokens_per_doc: int | None,
    ) -> DocPlan:
        query_truncated = len(query) > self.query_max_length
        query = query[: self.query_max_length]
        cut = False
        if max_tokens_per_doc is not None and len(doc) > max_tokens_per_doc:
            doc, cut = doc[:max_tokens_per_doc], True
        window = self._window(len(query), template)
        if window < 1:
            raise InputTooLongError(
                f"document {index}: the query takes {len(query)} tokens and the model's template "
                f"{template.special_tokens}, which leaves no room for the document within "
                f"max_length {self.max_length}; send a shorter query"
            )
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
        marker = template.doc_marker
        content = window - len(marker)
        overlap = min(self.chunk_overlap, content // 2)
        starts = window_starts(len(doc), content, overlap, max_chunks)
        covered = starts[-1] + content >= len(doc)
        pairs = tuple(
            template.build(query, (*marker, *doc[s : s + content]) if s else doc[:content])
            for s in starts
        )
        return DocPlan(pairs, len(doc), cut or not covered, query_truncated)
