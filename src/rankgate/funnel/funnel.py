"""``Funnel``: first stage → rerank → rules, with every stage traced and timed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rankgate.engine import Reranker
from rankgate.engine.inputs import check_query
from rankgate.funnel.rules import Rules
from rankgate.funnel.templates import TemplateRegistry
from rankgate.funnel.types import Candidate, FunnelResult, Retriever
from rankgate.types import Document, RerankResult

__all__ = ["Funnel", "Retrieval", "StageCuts"]


@dataclass(frozen=True, slots=True)
class StageCuts:
    """How many candidates each stage passes on (50 → 10 → 3 by default)."""

    retrieve_top_k: int = 50
    rerank_top_n: int = 10
    final_top_n: int = 3


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The first stage's candidates and the cuts and rules the later stages will apply."""

    query: str
    rerank_query: str
    template: str | None
    candidates: list[Candidate]
    rerank_top_n: int
    final_top_n: int
    rules: Rules
    started: float
    retrieved_at: float

    def documents(self) -> list[Document]:
        """The candidates as the reranker's documents, in retrieval order."""
        return [c.passage.as_document() for c in self.candidates]


class Funnel:
    """Recall with a retriever, reorder with a reranker, filter with rules.

    Args:
        retriever: the first stage (:class:`~rankgate.funnel.LocalIndex`,
            :class:`~rankgate.funnel.MilvusRetriever`, or anything with ``search(query, top_k)``).
        reranker: the cross-encoder.
        rules: the last stage (default: :class:`Rules` defaults: score >= 0.7, age <= 2 years).
        cuts: default cut per stage.
        templates: the query templates known by name.
        template: the template of a call that names none (default: the query unchanged).

    Example:
        >>> funnel = Funnel(LocalIndex.open("idx", embedder), Reranker())   # doctest: +SKIP
        >>> result = funnel.run("iPhone 15 charges slowly")                # doctest: +SKIP
        >>> [c.passage.doc_id for c in result.kept]                        # doctest: +SKIP
        ['apple-support-17', 'apple-support-3']
    """

    def __init__(
        self,
        retriever: Retriever,
        reranker: Reranker,
        rules: Rules | None = None,
        *,
        cuts: StageCuts | None = None,
        templates: TemplateRegistry | None = None,
        template: str | None = None,
    ) -> None:
        self.retriever = retriever
        self.reranker = reranker
        self.rules = rules if rules is not None else Rules()
        self.cuts = cuts or StageCuts()
        self.templates = templates or TemplateRegistry()
        self.template = template

    def run(
        self,
        query: str,
        *,
        template: str | None = None,
        retrieve_top_k: int | None = None,
        rerank_top_n: int | None = None,
        final_top_n: int | None = None,
        rules: Rules | None = None,
    ) -> FunnelResult:
        """Run the three stages for ``query``.

        Args:
            query: what the user asked; the first stage always sees it unchanged.
            template: ``name`` or ``name@version`` of a query template for the reranker
                (default: this funnel's ``template``).
            retrieve_top_k, rerank_top_n, final_top_n: override this funnel's cuts.
            rules: override this funnel's rules for this call.

        Raises:
            EmptyQueryError: the query is blank.
            UnknownTemplateError: no such template.
        """
        retrieval = self.retrieve(
            query,
            template=template,
            retrieve_top_k=retrieve_top_k,
            rerank_top_n=rerank_top_n,
            final_top_n=final_top_n,
            rules=rules,
        )
        results = (
            self.reranker.rerank(retrieval.rerank_query, retrieval.documents(), normalize=True)
            if retrieval.candidates
            else []
        )
        return self.conclude(retrieval, results)

    def retrieve(
        self,
        query: str,
        *,
        template: str | None = None,
        retrieve_top_k: int | None = None,
        rerank_top_n: int | None = None,
        final_top_n: int | None = None,
        rules: Rules | None = None,
    ) -> Retrieval:
        """The first stage alone: what :meth:`conclude` needs once the candidates are reranked.

        The server runs this, reranks ``retrieval.documents()`` through the model queue with
        ``retrieval.rerank_query``, then calls :meth:`conclude`; :meth:`run` does all three.

        Raises:
            EmptyQueryError: the query is blank. UnknownTemplateError: no such template.
        """
        started = time.perf_counter()
        query = check_query(query)
        template = template or self.template
        chosen = self.templates.get(template) if template else None
        hits = self.retriever.search(query, retrieve_top_k or self.cuts.retrieve_top_k)
        return Retrieval(
            query=query,
            rerank_query=chosen.apply(query) if chosen else query,
            template=chosen.ref if chosen else None,
            candidates=[
                Candidate(passage=h.passage, retrieval_rank=h.rank, retrieval_score=h.score)
                for h in hits
            ],
            rerank_top_n=rerank_top_n or self.cuts.rerank_top_n,
            final_top_n=final_top_n or self.cuts.final_top_n,
            rules=rules if rules is not None else self.rules,
            started=started,
            retrieved_at=time.perf_counter(),
        )

    def conclude(self, retrieval: Retrieval, results: Sequence[RerankResult]) -> FunnelResult:
        """Cut the reranked candidates, apply the rules and trace every candidate's fate."""
        r = retrieval
        n, final = r.rerank_top_n, r.final_top_n
        reranked: list[Candidate] = []
        for rank, res in enumerate(results, 1):
            c = replace(r.candidates[res.index], rerank_rank=rank, rerank_score=res.score)
            if rank <= n:
                reranked.append(replace(c, stage="reranked"))
            else:
                reranked.append(
                    replace(c, dropped_by="rerank_top_n", reason=f"rerank rank {rank} > {n}")
                )
        reranked_at = time.perf_counter()
        judged = r.rules.apply([c for c in reranked if c.stage == "reranked"])
        out: list[Candidate] = []
        kept = 0
        for c in judged:
            if c.stage == "ruled" and kept < final:
                kept += 1
                c = replace(c, stage="final")
            elif c.stage == "ruled":
                c = replace(
                    c, dropped_by="final_top_n", reason=f"passed the rules, beyond top {final}"
                )
            out.append(c)
        out.extend(c for c in reranked if c.stage != "reranked")
        done = time.perf_counter()
        ordered = sorted(out, key=lambda c: (not c.kept, c.rerank_rank or 0))
        return FunnelResult(
            query=r.query,
            rerank_query=r.rerank_query,
            template=r.template,
            candidates=ordered,
            timings={
                "retrieve": r.retrieved_at - r.started,
                "rerank": reranked_at - r.retrieved_at,
                "rules": done - reranked_at,
                "total": done - r.started,
            },
        )
