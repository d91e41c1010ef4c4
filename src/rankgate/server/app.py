"""``create_app``: the FastAPI application, built by a factory (no module-level singleton)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rankgate import __version__
from rankgate.config import RerankerSettings
from rankgate.engine import Reranker
from rankgate.errors import RankgateError
from rankgate.funnel.funnel import Funnel
from rankgate.funnel.http import search_router
from rankgate.funnel.settings import FunnelSettings
from rankgate.insight.http import insight_router, mount_playground
from rankgate.insight.monitor import RankingHealth
from rankgate.insight.prometheus import HealthCollector
from rankgate.server.errors import (
    Dialect,
    InvalidJSONError,
    InvalidRequestError,
    PayloadTooLargeError,
    RouteNotFoundError,
    classify,
    error_response,
    rerank_dialect,
)
from rankgate.server.metrics import ServerMetrics
from rankgate.server.middleware import GateMiddleware, dialect_for_path
from rankgate.server.protocol.errors import error_responses
from rankgate.server.routes import router
from rankgate.server.settings import ServerSettings
from rankgate.server.state import ServerState

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("rankgate.server")

DESCRIPTION = """\
One rerank server for every client. `POST /v1/rerank` speaks Cohere v1 and Jina,
`POST /v2/rerank` Cohere v2, `POST /rerank` TEI (with `texts`) or Cohere v1 / Jina,
`POST /score` vLLM. Errors come in each dialect's own shape. Once API keys are configured,
every route except `/health`, `/ready` and `/metrics` needs `Authorization: Bearer KEY`.
"""


def _dialect(request: Request) -> Dialect:
    chosen: Dialect | None = getattr(request.state, "dialect", None)
    return chosen or dialect_for_path(request.url.path)


def _respond(request: Request, exc: Exception, dialect: Dialect | None = None) -> JSONResponse:
    state: ServerState = request.app.state.rankgate
    state.metrics.failures.labels(classify(exc).reason).inc()
    request_id = getattr(request.state, "request_id", "-")
    if classify(exc).status == 500:  # 503 and 504 are expected, not faults
        log.error("request %s failed: %s", request_id, exc, exc_info=exc)
    return error_response(exc, dialect or _dialect(request), request_id)


# Location parts that name FastAPI's body or a union member rather than a field.
_LOC_NOISE = frozenset({"body", "tei", "cohere", "str", "dict[str,any]", "list[str]"})


def _json_problem(exc: RequestValidationError) -> InvalidJSONError | None:
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "not valid JSON")
            return InvalidJSONError(f"the body is not valid JSON: {reason}")
    return None


def _add_handlers(app: FastAPI) -> None:
    @app.exception_handler(RankgateError)
    async def on_rankgate(request: Request, exc: RankgateError) -> JSONResponse:
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad_json = _json_problem(exc)
        if bad_json is not None:
            return _respond(request, bad_json)
        problems = []
        for err in exc.errors():
            # Drop "body" and the union tag of /rerank from the location.
            loc = [p for p in err["loc"] if p not in _LOC_NOISE] or ["body"]
            problems.append({"loc": loc, "msg": err["msg"], "type": err["type"]})
        dialect: Dialect | None = None
        if request.url.path == "/rerank":
            dialect = rerank_dialect(exc.body)
        return _respond(request, InvalidRequestError(problems), dialect)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        state: ServerState = request.app.state.rankgate
        mapped: Exception
        if exc.status_code == 413:
            mapped = PayloadTooLargeError(state.settings.max_payload_bytes)
        elif exc.status_code in (404, 405):
            allow = (exc.headers or {}).get("Allow")
            mapped = RouteNotFoundError(exc.status_code, allow)
        elif exc.status_code == 400:
            mapped = InvalidJSONError("the body could not be read")
        else:
            mapped = exc
        return _respond(request, mapped)


def create_app(
    settings: ServerSettings | None = None,
    reranker: Reranker | Mapping[str | None, Reranker] | None = None,
    *,
    model_settings: RerankerSettings | Mapping[str | None, RerankerSettings] | None = None,
    health: RankingHealth | None = None,
    funnel_settings: FunnelSettings | None = None,
    funnel: Funnel | None = None,
) -> FastAPI:
    """Build the server.

    Args:
        settings: server options (default: from RANKGATE_* variables and defaults).
        reranker: an already loaded engine (tests, embedding), or several by served name (the
            first is the default; a None name is the model's id); else they are loaded from
            ``model_settings`` at startup, before the server accepts connections.
        model_settings: how to load the model (or the models, by served name) when
            ``reranker`` is None.
        health: the ranking-health monitor every rerank feeds (default: one with
            RANKGATE_HEALTH_* settings).
        funnel_settings: the search funnel's settings (default: RANKGATE_* funnel variables,
            read when the first search arrives).
        funnel: an already built funnel for ``/v1/search`` instead (its rerank stage still
            goes through the server's model queue).

    Example:
        >>> from rankgate.testing import KeywordBackend
        >>> app = create_app(ServerSettings(), Reranker(backend=KeywordBackend()))
        >>> sorted(p for p in app.openapi()["paths"] if "rerank" in p)
        ['/rerank', '/v1/rerank', '/v2/rerank']
    """
    settings = settings or ServerSettings()
    state = ServerState(
        settings,
        ServerMetrics(),
        health=health or RankingHealth(),
        funnel_settings=funnel_settings,
        _funnel=funnel,
    )
    state.metrics.in_flight.set_function(lambda: state.lifecycle.in_flight)
    state.metrics.registry.register(HealthCollector(state.health))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engines = reranker
        if engines is None:
            wanted = (
                model_settings if isinstance(model_settings, Mapping) else {None: model_settings}
            )
            engines = {
                name: await asyncio.to_thread(Reranker, settings=ms) for name, ms in wanted.items()
            }
        state.bind(engines)
        for served in state.models.values():
            info = served.reranker.info()
            where = f"{info.device} ({info.cpu})" if info.cpu else info.device
            log.info(
                "serving %s (%s) on %s, %s: %s",
                served.name,
                info.model,
                where,
                info.dtype,
                info.kernels,
            )
            if info.bf16_probe is not None:
                log.info("%s: %s (--dtype bf16-mixed)", served.name, info.bf16_probe.describe())
        try:
            yield
        finally:
            await state.shutdown()

    app = FastAPI(
        title="rankgate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.rankgate = state
    app.include_router(router)
    app.include_router(
        insight_router(
            state.get_service,
            state.health,
            responses=error_responses("any"),
        )
    )
    app.include_router(
        search_router(
            state.get_funnel,
            state.get_service,
            max_pending=settings.max_pending_searches,
            responses=error_responses("any"),
        )
    )
    mount_playground(app)
    _add_handlers(app)
    app.add_middleware(GateMiddleware, state=state)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, object]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Needed once API keys are configured.",
            }
        }
        schema["security"] = [{"bearer": []}, {}]
        app.openapi_schema = schema
    return app.openapi_schema
