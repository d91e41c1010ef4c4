"""Plain data of the funnel: passages, first-stage hits, traced candidates and results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

__all__ = [
    "Candidate",
    "FunnelResult",
    "Hit",
    "Passage",
    "ProgressFn",
    "Retriever",
    "Stage",
]

Stage: TypeAlias = Literal["retrieved", "reranked", "ruled", "final"]
"""How far a candidate got: recalled only, kept by the rerank cut, passed the rules, kept."""

ProgressFn: TypeAlias = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a source document, the unit that is retrieved and reranked.

    Attributes:
        id: ``"{doc_id}#{n}"``, unique in an index.
        doc_id: the source document's ``id``.
        n: position of the passage in its document (0-based).
        text: the passage text.
        title: the document title, if any.
        source: where the document comes from (a name or URL), if known.
        published: publication date as given (ISO 8601), if known.
        metadata: every other field of the source document.
    """

    id: str
    doc_id: str
    n: int
    text: str
    title: str | None = None
    source: str | None = None
    published: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        """The mapping handed to the reranker (``text`` plus everything else as metadata)."""
        return {
            **self.metadata,
            "id": self.id,
            "doc_id": self.doc_id,
            "text": self.text,
            "title": self.title,
            "source": self.source,
            "published": self.published,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """One first-stage result.

    Attributes:
        passage: what was found.
        score: the retriever's score (fused RRF score for the embedded index).
        rank: 1-based position in the first stage.
        components: per-method ranks that were fused, e.g. ``{"bm25": 3, "dense": 1}``.
    """

    passage: Passage
    score: float
    rank: int
    components: Mapping[str, int] = field(default_factory=dict)


class Retriever(Protocol):
    """A first stage: anything that returns ranked passages for a query."""

    def search(self, query: str, top_k: int) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A passage's trip through the funnel.

    Attributes:
        passage: the passage.
        retrieval_rank: 1-based rank in the first stage.
        retrieval_score: first-stage score.
        rerank_rank: 1-based rank after reranking (None: not reranked).
        rerank_score: reranker score in [0, 1] (None: not reranked).
        stage: the last stage it reached.
        dropped_by: the rule or cut that stopped it (None for kept documents).
        reason: a human sentence saying why it was dropped.
    """

    passage: Passage
    retrieval_rank: int
    retrieval_score: float
    rerank_rank: int | None = None
    rerank_score: float | None = None
    stage: Stage = "retrieved"
    dropped_by: str | None = None
    reason: str | None = None

    @property
    def kept(self) -> bool:
        return self.stage == "final"


@dataclass(frozen=True, slots=True)
class FunnelResult:
    """Everything one funnel run did.

    Attributes:
        query: the user's query (used for retrieval).
        rerank_query: the query the reranker saw (after the template).
        template: ``name@version`` of the template applied, if any.
        candidates: every recalled passage, in final order: kept first, then by rerank rank,
            then by first-stage rank.
        timings: seconds per stage (``retrieve``, ``rerank``, ``rules``, ``total``).
    """

    query: str
    rerank_query: str
    template: str | None
    candidates: list[Candidate]
    timings: Mapping[str, float]

    @property
    def kept(self) -> list[Candidate]:
        """The documents to hand to an LLM, best first."""
        return [c for c in self.candidates if c.kept]

    def at_stage(self, stage: Stage) -> list[Candidate]:
        """Candidates that reached at least ``stage``."""
        order = ["retrieved", "reranked", "ruled", "final"]
        return [c for c in self.candidates if order.index(c.stage) >= order.index(stage)]
