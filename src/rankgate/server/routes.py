"""Thin routes: wire request -> :class:`RerankService` -> wire response, one per dialect."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Discriminator, Tag

from rankgate import __version__
from rankgate.engine.service import RerankOutcome, RerankService, Timings
from rankgate.errors import InputError, UnavailableError
from rankgate.server.edge import ignored_fields_header
from rankgate.server.errors import Dialect, rerank_dialect
from rankgate.server.metrics import CONTENT_TYPE_LATEST
from rankgate.server.protocol import cohere, tei, vllm, xinference
from rankgate.server.protocol.errors import AnyError, error_responses
from rankgate.server.state import Served
from rankgate.types import ModelInfo

__all__ = ["router"]

router = APIRouter()


AnyRerankRequest = Annotated[
    Annotated[tei.TEIRerankRequest, Tag("tei")] | Annotated[cohere.CohereV1Request, Tag("cohere")],
    Discriminator(rerank_dialect),
]


def _service(request: Request, dialect: Dialect, model: str | None = None) -> RerankService:
    """The service of the model the request names (see ServerState.served)."""
    request.state.dialect = dialect
    service: RerankService = request.app.state.rankgate.get_service(model)
    return service


def _json(model: BaseModel | list[Any], headers: dict[str, str] | None = None) -> JSONResponse:
    if isinstance(model, list):
        content: Any = [m.model_dump(exclude_none=True) for m in model]
    else:
        content = model.model_dump(exclude_none=True)
    return JSONResponse(content, headers=headers)


def _ignored(body: cohere.CohereV1Request | cohere.CohereV2Request) -> dict[str, str]:
    return ignored_fields_header(body.ignored_fields())


async def _cohere_rerank(
    request: Request, body: cohere.CohereV1Request | cohere.CohereV2Request
) -> RerankOutcome:
    service = _service(request, "cohere", body.model)
    timings: Timings = request.state.timings
    return await service.rerank(body.to_call(), timings)


@router.post(
    "/v1/rerank",
    response_model=cohere.CohereRerankResponse,
    responses=error_responses("cohere"),
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
        bool(body.return_documents),
    )
    return _json(out, _ignored(body))


@router.post(
    "/infinity/rerank",
    response_model=cohere.InfinityRerankResponse,
    responses=error_responses("cohere"),
    tags=["infinity"],
    summary="Rerank (infinity)",
)
async def rerank_infinity(request: Request, body: cohere.CohereV1Request) -> Response:
    """infinity's rerank, for clients that speak it (infinity_client, LangChain's
    InfinityRerank, LiteLLM's ``infinity/`` with ``api_base=http://HOST:PORT/infinity``): the
    request of ``/v1/rerank``, results with the document as a string and ``object: "rerank"``."""
    outcome = await _cohere_rerank(request, body)
    state = request.app.state.rankgate
    out = cohere.infinity_response(
        request.state.request_id,
        int(time.time()),
        body.model or state.model_name,
        outcome.results,
        outcome.input_tokens,
        bool(body.return_documents),
    )
    return _json(out, _ignored(body))


@router.post(
    "/v2/rerank",
    response_model=cohere.CohereV2Response,
    responses=error_responses("cohere"),
    tags=["Cohere v2"],
    summary="Rerank (Cohere v2)",
)
async def rerank_v2(request: Request, body: cohere.CohereV2Request) -> Response:
    """Rank documents for a query; accepts return_documents and a null max_tokens_per_doc."""
    outcome = await _cohere_rerank(request, body)
    out = cohere.v2_response(
        request.state.request_id, outcome.results, outcome.input_tokens, bool(body.return_documents)
    )
    return _json(out, _ignored(body))


@router.post(
    "/rerank",
    response_model=tei.TEIRerankResponse | cohere.CohereRerankResponse,
    responses=error_responses("rerank"),
    tags=["TEI"],
    summary="Rerank (TEI when the body has 'texts', else Cohere v1 / Jina)",
)
async def rerank_any(request: Request, body: AnyRerankRequest) -> Response:
    """TEI's rerank: a bare array, best first. A body without 'texts' is served as /v1/rerank."""
    if isinstance(body, cohere.CohereV1Request):
        return await rerank_v1(request, body)
    model = body.requested_model(request.app.state.rankgate.models)
    service = _service(request, "tei", model)
    outcome = await service.rerank(body.to_call(), request.state.timings)
    ignored = ignored_fields_header(body.ignored_fields(used_model=model is not None))
    return _json(tei.tei_response(outcome.results, body.return_text), ignored)


@router.post(
    "/v1/score",
    response_model=vllm.ScoreResponse,
    responses=error_responses("vllm"),
    tags=["vLLM"],
    summary="Score pairs (vLLM, versioned path)",
)
@router.post(
    "/score",
    response_model=vllm.ScoreResponse,
    responses=error_responses("vllm"),
    tags=["vLLM"],
    summary="Score pairs (vLLM)",
)
async def score(request: Request, body: vllm.ScoreRequest) -> Response:
    """Scores of (text_1, text_2) pairs in their order, as vLLM's score API."""
    service = _service(request, "vllm", body.model)
    try:
        queries, documents = body.pairs()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    timings: Timings = request.state.timings
    scores, tokens = await service.score(
        queries, documents, body.normalize, timings, instruction=body.instruction
    )
    out = vllm.ScoreResponse(
        id=f"score-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=body.model or request.app.state.rankgate.model_name,
        data=[vllm.ScoreData(index=i, score=s) for i, s in enumerate(scores)],
        usage=vllm.ScoreUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return _json(out)


@router.get(
    "/info",
    response_model=tei.TEIInfo,
    responses=error_responses("any", (401, 503)),
    tags=["Operations"],
    summary="Model info (TEI)",
)
async def info(request: Request) -> Response:
    """What is loaded and the server's limits, in TEI's /info shape (the default model), with
    every served model under ``rankgate.models``."""
    state = request.app.state.rankgate
    rr = state.get_reranker()
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
            recipe=model.recipe,
            calibration=model.calibration,
            calibration_file=model.calibration_file,
            **_cpu_details(model),
            models=[_served_model(served) for served in state.models.values()],
        ),
    )
    return _json(out)


def _served_model(served: Served) -> tei.ServedModel:
    i = served.reranker.info()
    cache = served.service.cache
    return tei.ServedModel(
        name=served.name,
        model=i.model,
        backend=i.backend,
        device=i.device,
        dtype=i.dtype,
        max_length=i.max_length,
        recipe=i.recipe,
        parameters=i.parameters,
        calibration=i.calibration,
        calibration_file=i.calibration_file,
        cache_size=cache.max_bytes if cache is not None else 0,
        **_cpu_details(i),
    )


def _cpu_details(info: ModelInfo) -> dict[str, Any]:
    probe = info.bf16_probe
    return {
        "cpu": info.cpu,
        "cpu_features": list(info.cpu_features),
        "kernels": info.kernels,
        "bf16_probe": tei.PrecisionProbeInfo(**dataclasses.asdict(probe)) if probe else None,
    }


@router.get(
    "/v1/models",
    response_model=vllm.ModelList,
    responses=error_responses("any", (401, 503)),
    tags=["Operations"],
    summary="Served models (OpenAI / vLLM list)",
)
async def models(request: Request) -> Response:
    """Every served model by its name: what a request's ``model`` field may say."""
    state = request.app.state.rankgate
    if not state.models:
        raise UnavailableError("the model is not loaded yet")
    return _json(
        vllm.ModelList(
            data=[
                vllm.ModelCard(id=name, created=int(time.time()), root=served.reranker.info().model)
                for name, served in state.models.items()
            ]
        )
    )


@router.get(
    "/v1/models/{name:path}",
    response_model=xinference.ModelDetail,
    responses=error_responses("any", (401, 404, 503)),
    tags=["Operations"],
    summary="One served model (OpenAI's card, with Xinference's model_type)",
)
async def model_detail(request: Request, name: str) -> Response:
    """The model a request's ``model`` field may name; 404 when several models are served and
    none has this name (with one model, any name is that model, as on the rerank routes)."""
    state = request.app.state.rankgate
    served = state.served(name)
    info = served.reranker.info()
    return _json(
        xinference.ModelDetail(
            id=name,
            created=int(time.time()),
            root=info.model,
            model_name=info.model,
            max_tokens=info.max_length,
            context_length=info.max_length,
        )
    )


@router.get(
    "/v1/cluster/auth",
    response_model=xinference.ClusterAuth,
    tags=["Operations"],
    summary="Whether an API key is needed (Xinference; open)",
)
async def cluster_auth(request: Request) -> Response:
    """Asked without a key by xinference-client before anything else; ``auth: true`` makes it
    send its key on every later request."""
    return _json(xinference.ClusterAuth(auth=bool(request.app.state.rankgate.settings.api_keys)))


class Status(BaseModel):
    status: str


@router.get(
    "/health",
    response_model=Status,
    responses={503: {"description": "The model thread stopped or is stuck.", "model": AnyError}},
    tags=["Operations"],
    summary="Liveness: the model thread runs and makes progress",
)
async def health(request: Request) -> Response:
    """200 while the model thread runs and is idle or finishing forward passes.

    Answered at once, never behind the queue: a server that is merely busy is alive. 503 when
    the thread stopped, or when it has been inside one step for ``liveness_stall_s`` without
    finishing a forward pass. Point a Kubernetes ``livenessProbe`` here.
    """
    state = request.app.state.rankgate
    state.get_service()  # 503 while loading
    for served in state.models.values():
        served.service.check_alive(state.settings.liveness_stall_s)
    return _json(Status(status="ok"))


@router.get(
    "/ready",
    response_model=Status,
    responses={
        503: {"description": "Loading, draining, or the model failed its probe.", "model": AnyError}
    },
    tags=["Operations"],
    summary="Readiness: a fixed pair scored end to end; 503 while loading or draining",
)
async def ready(request: Request) -> Response:
    """200 when a fixed pair was just scored through tokenizer, queue and model.

    The probe goes to the head of the queue (it waits for the step that is running, not for the
    backlog) and concurrent probes share one scoring. Point a Kubernetes ``readinessProbe``
    here.
    """
    state = request.app.state.rankgate
    if state.lifecycle.draining:
        raise UnavailableError("the server is draining")
    state.get_service()  # 503 while loading
    await asyncio.gather(*(served.service.probe() for served in state.models.values()))
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
