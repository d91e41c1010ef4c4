"""Thin routes: wire request -> :class:`RerankService` -> wire response, one per dialect."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Discriminator, Tag

from rankgate import __version__
from rankgate.errors import InputError, RequestTimeoutError, UnavailableError
from rankgate.server.errors import Dialect
from rankgate.server.metrics import CONTENT_TYPE_LATEST
from rankgate.server.protocol import cohere, tei, vllm
from rankgate.server.serving import RerankOutcome, RerankService, Timings

__all__ = ["router"]

router = APIRouter()
T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Empty query or no documents; body is not JSON."},
    401: {"description": "Missing or unknown API key."},
    413: {"description": "Too many documents, or the body is too large."},
    422: {"description": "The body does not match the schema, or input is too long."},
    429: {"description": "The queue is full; retry after the Retry-After header's seconds."},
    500: {"description": "The model failed; the body carries only the request id."},
    503: {"description": "The server is shutting down or unhealthy."},
    504: {"description": "The request took longer than request_timeout_s."},
}


def _kind(body: Any) -> str:
    return "tei" if isinstance(body, dict) and "texts" in body else "cohere"


AnyRerankRequest = Annotated[
    Annotated[tei.TEIRerankRequest, Tag("tei")] | Annotated[cohere.CohereV1Request, Tag("cohere")],
    Discriminator(_kind),
]


def _service(request: Request, dialect: Dialect) -> RerankService:
    request.state.dialect = dialect
    state = request.app.state.rankgate
    if state.service is None:
        raise UnavailableError("the model is not loaded yet")
    service: RerankService = state.service
    return service


async def _within_limit(request: Request, work: Awaitable[T]) -> T:
    timeout = request.app.state.rankgate.settings.request_timeout_s
    try:
        return await asyncio.wait_for(work, timeout)
    except asyncio.TimeoutError:
        raise RequestTimeoutError(f"the request took longer than {timeout:g} s") from None


def _json(model: BaseModel | list[Any], headers: dict[str, str] | None = None) -> JSONResponse:
    if isinstance(model, list):
        content: Any = [m.model_dump(exclude_none=True) for m in model]
    else:
        content = model.model_dump(exclude_none=True)
    return JSONResponse(content, headers=headers)


def _ignored(body: cohere.CohereV1Request | cohere.CohereV2Request) -> dict[str, str]:
    fields = body.ignored_fields()
    return {"x-ignored-fields": ",".join(fields)} if fields else {}


async def _cohere_rerank(
    request: Request, body: cohere.CohereV1Request | cohere.CohereV2Request
) -> RerankOutcome:
    service = _service(request, "cohere")
    timings: Timings = request.state.timings
    return await _within_limit(request, service.rerank(body.to_call(), timings))


@router.post(
    "/v1/rerank",
    response_model=cohere.CohereRerankResponse,
    responses=_ERRORS,
    tags=["Cohere v1 / Jina"],
    summary="Rerank (Cohere v1 and Jina)",
)
async def rerank_v1(request: Request, body: cohere.CohereV1Request) -> Response:
    """Rank documents for a query. Unknown fields are ignored and listed in x-ignored-fields."""
    outcome = await _cohere_rerank(request, body)
    state = request.app.state.rankgate
    out = cohere.v1_response(
        request.state.request_id,
        body.model or state.model_name,
        outcome.results,
        outcome.input_tokens,
        body.return_documents,
    )
    return _json(out, _ignored(body))


@router.post(
    "/v2/rerank",
    response_model=cohere.CohereV2Response,
    responses=_ERRORS,
    tags=["Cohere v2"],
    summary="Rerank (Cohere v2)",
)
async def rerank_v2(request: Request, body: cohere.CohereV2Request) -> Response:
    """Rank documents for a query; accepts return_documents and a null max_tokens_per_doc."""
    outcome = await _cohere_rerank(request, body)
    out = cohere.v2_response(
        request.state.request_id, outcome.results, outcome.input_tokens, body.return_documents
    )
    return _json(out, _ignored(body))


@router.post(
    "/rerank",
    response_model=tei.TEIRerankResponse | cohere.CohereRerankResponse,
    responses=_ERRORS,
    tags=["TEI"],
    summary="Rerank (TEI when the body has 'texts', else Cohere v1 / Jina)",
)
async def rerank_any(request: Request, body: AnyRerankRequest) -> Response:
    """TEI's rerank: a bare array, best first. A body without 'texts' is served as /v1/rerank."""
    if isinstance(body, cohere.CohereV1Request):
        return await rerank_v1(request, body)
    service = _service(request, "tei")
    outcome = await _within_limit(request, service.rerank(body.to_call(), request.state.timings))
    return _json(tei.tei_response(outcome.results, body.return_text))


@router.post(
    "/v1/score",
    response_model=vllm.ScoreResponse,
    responses=_ERRORS,
    tags=["vLLM"],
    summary="Score pairs (vLLM, versioned path)",
)
@router.post(
    "/score",
    response_model=vllm.ScoreResponse,
    responses=_ERRORS,
    tags=["vLLM"],
    summary="Score pairs (vLLM)",
)
async def score(request: Request, body: vllm.ScoreRequest) -> Response:
    """Scores of (text_1, text_2) pairs in their order, as vLLM's score API."""
    service = _service(request, "vllm")
    try:
        queries, documents = body.pairs()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    timings: Timings = request.state.timings
    scores, tokens = await _within_limit(
        request, service.score(queries, documents, body.normalize, timings)
    )
    out = vllm.ScoreResponse(
        id=f"score-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=body.model or request.app.state.rankgate.model_name,
        data=[vllm.ScoreData(index=i, score=s) for i, s in enumerate(scores)],
        usage=vllm.ScoreUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return _json(out)


@router.get("/info", response_model=tei.TEIInfo, tags=["Operations"], summary="Model info (TEI)")
async def info(request: Request) -> Response:
    """What is loaded and the server's limits, in TEI's /info shape."""
    state = request.app.state.rankgate
    if state.reranker is None:
        raise UnavailableError("the model is not loaded yet")
    rr = state.reranker
    model = rr.info()
    s = state.settings
    out = tei.TEIInfo(
        model_id=state.model_name,
        model_dtype=model.dtype,
        model_type=tei.TEIModelType(
            reranker=tei.TEIReranker(id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
        ),
        max_concurrent_requests=s.max_queue_tokens,
        max_input_length=model.max_length,
        max_batch_tokens=rr.batch_tokens,
        max_client_batch_size=s.max_documents,
        auto_truncate=s.auto_truncate,
        tokenization_workers=s.tokenizer_workers,
        version=__version__,
        rankgate=tei.RankgateDetails(
            backend=model.backend,
            device=model.device,
            long_documents=model.long_documents,
            parameters=model.parameters,
        ),
    )
    return _json(out)


class Status(BaseModel):
    status: str


@router.get(
    "/health",
    response_model=Status,
    responses={503: {"description": "The model failed its probe."}},
    tags=["Operations"],
    summary="Liveness: scores a fixed pair through the whole path",
)
async def health(request: Request) -> Response:
    """200 when a fixed pair was just scored through tokenizer, queue and model."""
    state = request.app.state.rankgate
    if state.service is None:
        raise UnavailableError("the model is not loaded yet")
    await state.service.health(timeout=min(10.0, state.settings.request_timeout_s))
    return _json(Status(status="ok"))


@router.get(
    "/ready",
    response_model=Status,
    responses={503: {"description": "Loading or draining: send no new work."}},
    tags=["Operations"],
    summary="Readiness: 503 while loading or draining",
)
async def ready(request: Request) -> Response:
    """200 when the model is loaded and the server is not draining."""
    state = request.app.state.rankgate
    if state.lifecycle.draining:
        raise UnavailableError("the server is draining")
    if state.service is None:
        raise UnavailableError("the model is not loaded yet")
    return _json(Status(status="ready"))


@router.get(
    "/metrics",
    response_class=Response,
    tags=["Operations"],
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Counters, histograms and gauges in the Prometheus text format."""
    body = request.app.state.rankgate.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
