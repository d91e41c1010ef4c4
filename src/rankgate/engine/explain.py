"""Why a document got its score: attribution by occlusion.

Each segment (sentence, or word) of the document is removed in turn and the pair re-scored; the
segment's contribution is the score of the whole document minus the score without it. The
original and every occluded copy go to the model in one ``compute_score`` call, so the engine
batches them by its token budget like any other request.

Contributions are in logits, not in 0-1 scores: the sigmoid flattens near 0 and 1, which would
hide what a sentence does to an already confident score. :func:`explain` needs only an object
with ``compute_score`` (a :class:`~rankgate.engine.Reranker`); the server builds the same texts
with :func:`occlusions` and scores them through the model queue
(:meth:`~rankgate.engine.service.RerankService.explain`), like any other request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rankgate.engine.segments import Granularity, split
from rankgate.errors import InputError, InvalidDocumentError
from rankgate.types import Document

__all__ = [
    "DEFAULT_MAX_SEGMENTS",
    "Explanation",
    "Scorer",
    "Segment",
    "assemble",
    "explain",
    "occlusions",
]

DEFAULT_MAX_SEGMENTS = 256
"""Most segments per explanation: each one costs a scored pair."""


class Scorer(Protocol):
    def compute_score(
        self, pairs: Sequence[Sequence[str]], *, normalize: bool = False
    ) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class Segment:
    """One sentence or word of the document and what removing it did.

    Attributes:
        index: position among the document's segments.
        start: offset of the segment in the document (characters).
        end: offset just past it; ``document[start:end] == text``.
        text: the segment, with its trailing whitespace.
        contribution: score of the whole document minus score without this segment, in logits;
            positive means the segment raised the score.
    """

    index: int
    start: int
    end: int
    text: str
    contribution: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Per-segment attribution of one (query, document) score.

    Attributes:
        query: the question.
        document: the document text that was scored.
        granularity: ``sentence`` or ``word``.
        score: the raw logit of the whole document.
        segments: segments in document order; they tile ``document``.
    """

    query: str
    document: str
    granularity: Granularity
    score: float
    segments: tuple[Segment, ...]

    @property
    def normalized_score(self) -> float:
        """The score in [0, 1] (sigmoid of the logit), as ``rerank`` returns it by default."""
        return 1.0 / (1.0 + math.exp(-self.score))

    def top(
        self, k: int = 3, *, sign: Literal["any", "positive", "negative"] = "any"
    ) -> list[Segment]:
        """The ``k`` segments that moved the score most (by absolute contribution).

        ``sign`` keeps only segments that raised (``positive``) or lowered (``negative``) it.
        """
        keep = [
            s
            for s in self.segments
            if sign == "any"
            or (sign == "positive" and s.contribution > 0)
            or (sign == "negative" and s.contribution < 0)
        ]
        return sorted(keep, key=lambda s: (-abs(s.contribution), s.index))[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the ``/v1/explain`` response body)."""
        return {
            "granularity": self.granularity,
            "score": self.score,
            "normalized_score": self.normalized_score,
            "segments": [
                {
                    "index": s.index,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "contribution": s.contribution,
                }
                for s in self.segments
            ],
        }


def _document_text(document: Document) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, Mapping) and isinstance(document.get("text"), str):
        return str(document["text"])
    raise InvalidDocumentError(0, "must be a string or an object with a string 'text' field")


def explain(
    scorer: Scorer,
    query: str,
    document: Document,
    *,
    granularity: Granularity = "sentence",
    max_segments: int = DEFAULT_MAX_SEGMENTS,
) -> Explanation:
    """Attribute the score of ``document`` for ``query`` to its sentences (or words).

    Args:
        scorer: a :class:`~rankgate.engine.Reranker` (anything with ``compute_score``).
        query: the question.
        document: a string, or a mapping with a ``text`` field.
        granularity: ``sentence`` (default) or ``word`` (CJK: per character).
        max_segments: refuse documents with more segments than this (each costs a pair).

    Returns:
        The explanation; ``explanation.top(3)`` names the segments that moved the score most.

    Raises:
        InputError: empty query or document, too many segments, unknown granularity.

    Example:
        >>> from rankgate import Reranker
        >>> from rankgate.testing import KeywordBackend
        >>> rr = Reranker(backend=KeywordBackend())
        >>> e = explain(rr, "reset router password", "Fox jumps. Reset router password now.")
        >>> e.top(1)[0].text
        'Reset router password now.'
    """
    text, spans, variants = occlusions(document, granularity, max_segments)
    scores = scorer.compute_score([(query, v) for v in variants], normalize=False)
    return assemble(query, text, granularity, spans, scores)


def occlusions(
    document: Document, granularity: Granularity, max_segments: int = DEFAULT_MAX_SEGMENTS
) -> tuple[str, list[tuple[int, int]], list[str]]:
    """The document's text, its segment spans, and the texts to score: whole, then each
    segment removed in turn.

    Raises:
        InputError: empty document, too many segments, unknown granularity.
    """
    if granularity not in ("sentence", "word"):
        raise InputError(f"granularity must be 'sentence' or 'word', not {granularity!r}")
    text = _document_text(document)
    if not text.strip():
        raise InvalidDocumentError(0, "is empty; there is nothing to explain")
    spans = split(text, granularity)
    if len(spans) > max_segments:
        raise InputError(
            f"the document has {len(spans)} {granularity}s; at most {max_segments} can be "
            "explained at once (use sentence granularity or a shorter document)"
        )
    return text, spans, [text] + [text[:start] + text[end:] for start, end in spans]


def assemble(
    query: str,
    text: str,
    granularity: Granularity,
    spans: Sequence[tuple[int, int]],
    scores: Sequence[float],
) -> Explanation:
    """The explanation from the raw logits of :func:`occlusions`' texts, in their order."""
    full = scores[0]
    segments = tuple(
        Segment(i, start, end, text[start:end], full - scores[i + 1])
        for i, (start, end) in enumerate(spans)
    )
    return Explanation(query, text, granularity, full, segments)
