"""``POST /v1/search``: the funnel over HTTP, as an ``APIRouter`` the server app includes.

The first stage (embedding, retrieval) runs in a worker thread, at most ``max_pending`` searches
at once; the rerank stage goes through the engine's service (its queue, limits and metrics, at
low priority); the rules run last. The whole search shares the service's request deadline.
Errors are raised as rankgate errors; the server's one error table maps them to status codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rankgate.engine.service import RerankCall, RerankService, Timings
from rankgate.errors import InputError, MissingDependencyError, OverloadedError
from rankgate.funnel.errors import RulesError
from rankgate.funnel.funnel import Funnel
from rankgate.funnel.types import Candidate, FunnelResult

__all__ = ["SearchRequest", "SearchResponse", "search_router"]

try:
    from fastapi import APIRouter, Request
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as exc:  # pragma: no cover - the server extra is missing
    raise MissingDependencyError("fastapi", "server", "the /v1/search route") from exc


class SearchRequest(BaseModel):
    """Body of ``POST /v1/search``; omitted fields use the funnel's configuration."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="The user's question.")
    template: str | None = Field(None, description="Query template: name or name@version.")
    retrieve_top_k: int | None = Field(None, ge=1, le=1000, description="First-stage recall.")
    rerank_top_n: int | None = Field(None, ge=1, description="Candidates the reranker keeps.")
    top_n: int | None = Field(None, ge=1, description="Documents kept after the rules.")
    rules: dict[str, Any] | None = Field(
        None, description="Rule overrides, e.g. {'min_score': 0.5, 'allow_sources': [...]}."
    )
    return_dropped: bool = Field(True, description="Also list dropped candidates and why.")
    instruction: str | None = Field(
        None, description="For decoder rerankers: what relevance means for the rerank stage."
    )


class SearchDocument(BaseModel):
    id: str
    doc_id: str
    text: str
    title: str | None
    source: str | None
    published: str | None
    metadata: dict[str, Any]
    stage: str
    kept: bool
    retrieval_rank: int
    retrieval_score: float
    rerank_rank: int | None
    rerank_score: float | None
    dropped_by: str | None
    reason: str | None


class SearchResponse(BaseModel):
    query: str
    rerank_query: str
    template: str | None
    results: list[SearchDocument] = Field(description="Kept documents, best first.")
    dropped: list[SearchDocument] = Field(description="Every other candidate, with why.")
    timings: dict[str, float] = Field(description="Seconds per stage.")


def _document(c: Candidate) -> SearchDocument:
    p = c.passage
    return SearchDocument(
        id=p.id,
        doc_id=p.doc_id,
        text=p.text,
        title=p.title,
        source=p.source,
        published=p.published,
        metadata=dict(p.metadata),
        stage=c.stage,
        kept=c.kept,
        retrieval_rank=c.retrieval_rank,
        retrieval_score=c.retrieval_score,
        rerank_rank=c.rerank_rank,
        rerank_score=c.rerank_score,
        dropped_by=c.dropped_by,
        reason=c.reason,
    )


def to_response(result: FunnelResult, *, return_dropped: bool = True) -> SearchResponse:
    """The wire form of a funnel result."""
    return SearchResponse(
        query=result.query,
        rerank_query=result.rerank_query,
        template=result.template,
        results=[_document(c) for c in result.kept],
        dropped=[_document(c) for c in result.candidates if not c.kept] if return_dropped else [],
        timings=dict(result.timings),
    )


def search_router(
    get_funnel: Callable[[], Funnel],
    get_service: Callable[..., RerankService],
    *,
    max_pending: int = 8,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> APIRouter:
    """A router with ``POST /v1/search``.

    Args:
        get_funnel: the funnel, called per request (built lazily; UnavailableError when search
            is not configured).
        get_service: the engine's service, the road to the model.
        max_pending: searches allowed in their first stage at once; more get 429.
        responses: the error responses to document (the server's).
    """
    router = APIRouter()
    pending = [0]

    @router.post("/v1/search", response_model=SearchResponse, tags=["funnel"], responses=responses)
    async def search(request: Request, body: SearchRequest) -> SearchResponse:
        service = get_service()
        funnel = get_funnel()
        try:
            rules = funnel.rules.with_overrides(body.rules) if body.rules else None
        except RulesError as exc:  # the caller's rules, not the server's configuration
            raise InputError(str(exc)) from None
        timings: Timings = getattr(request.state, "timings", None) or Timings()
        service.check_admission("low")
        if pending[0] >= max_pending:
            raise OverloadedError(
                f"{pending[0]} searches are already retrieving; retry later", retry_after=1
            )
        pending[0] += 1
        released = [False]

        def release() -> None:  # once, whether the first stage ended or never started
            if not released[0]:
                released[0] = True
                pending[0] -= 1

        async def run() -> FunnelResult:
            try:
                retrieval = await asyncio.to_thread(
                    funnel.retrieve,
                    body.query,
                    template=body.template,
                    retrieve_top_k=body.retrieve_top_k,
                    rerank_top_n=body.rerank_top_n,
                    final_top_n=body.top_n,
                    rules=rules,
                )
            finally:
                release()
            results = []
            if retrieval.candidates:
                call = RerankCall(
                    retrieval.rerank_query, retrieval.documents(), instruction=body.instruction
                )
                outcome = await service.rerank(call, timings, priority="low")
                results = outcome.results
            return funnel.conclude(retrieval, results)

        try:
            result = await service.bounded(run())
        finally:
            release()
        return to_response(result, return_dropped=body.return_dropped)

    return router
