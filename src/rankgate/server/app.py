"""``create_app``: the FastAPI application, built by a factory (no module-level singleton)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rankgate import __version__
from rankgate.config import RerankerSettings
from rankgate.engine import Reranker
from rankgate.errors import ConfigError, RankgateError, UnavailableError
from rankgate.funnel.factory import build_funnel
from rankgate.funnel.funnel import Funnel
from rankgate.funnel.http import search_router
from rankgate.funnel.settings import FunnelSettings
from rankgate.insight.http import insight_router, mount_playground
from rankgate.insight.monitor import RankingHealth
from rankgate.server.batcher import Batcher
from rankgate.server.errors import (
    Dialect,
    InvalidJSONError,
    InvalidRequestError,
    PayloadTooLargeError,
    RouteNotFoundError,
    classify,
    error_response,
)
from rankgate.server.metrics import ServerMetrics
from rankgate.server.middleware import GateMiddleware, Lifecycle, dialect_for_path
from rankgate.server.routes import router
from rankgate.server.serving import RerankService
from rankgate.server.settings import ServerSettings

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("rankgate.server")

DESCRIPTION = """\
One rerank server for every client. `POST /v1/rerank` speaks Cohere v1 and Jina,
`POST /v2/rerank` Cohere v2, `POST /rerank` TEI (with `texts`) or Cohere v1 / Jina,
`POST /score` vLLM. Errors come in each dialect's own shape. Once API keys are configured,
every route except `/health`, `/ready` and `/metrics` needs `Authorization: Bearer KEY`.
"""


@dataclass
class ServerState:
    """What the routes share; ``service`` is None until the model is loaded."""

    settings: ServerSettings
    metrics: ServerMetrics
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    reranker: Reranker | None = None
    batcher: Batcher | None = None
    service: RerankService | None = None
    model_name: str = "rankgate"
    health: RankingHealth = field(default_factory=RankingHealth)
    _funnel: Funnel | None = None
    _funnel_lock: threading.Lock = field(default_factory=threading.Lock)

    def get_reranker(self) -> Reranker:
        if self.reranker is None:
            raise UnavailableError("the model is still loading")
        return self.reranker

    def get_funnel(self) -> Funnel:
        """The search funnel, built on first use from RANKGATE_* funnel settings."""
        with self._funnel_lock:
            if self._funnel is None:
                try:
                    self._funnel = build_funnel(FunnelSettings(), self.get_reranker())
                except ConfigError as exc:
                    raise UnavailableError(f"search is not available: {exc}") from exc
            return self._funnel

    def bind(self, reranker: Reranker) -> None:
        """Start serving ``reranker``: batcher thread, service, queue gauges."""
        s = self.settings
        self.reranker = reranker
        self.model_name = s.served_model_name or reranker.info().model
        self.batcher = Batcher(
            functools.partial(reranker.score_encoded, on_forward=self.metrics.observe_forward),
            # One forward pass per step by default: a request finishes with its pass instead of
            # waiting for a step several passes long (lower latency, same throughput).
            max_batch_tokens=s.max_batch_tokens or reranker.batch_tokens,
            max_queue_tokens=s.max_queue_tokens,
            wait_s=s.batch_wait_ms / 1000,
            on_batch=self.metrics.observe_batch,
        )
        batcher = self.batcher
        self.metrics.watch_queue(lambda: batcher.queued_tokens, lambda: batcher.queued_pairs)
        self.batcher.start()
        self.service = RerankService(reranker, self.batcher, s, self.health)

    async def shutdown(self) -> None:
        """Drain: refuse new work, let in-flight requests and the queue finish, stop threads."""
        self.lifecycle.begin_drain()
        grace = self.settings.shutdown_grace_s
        if not await self.lifecycle.wait_idle(grace):
            log.warning("%d requests still in flight after %g s", self.lifecycle.in_flight, grace)
        if self.batcher is not None:
            self.batcher.close()
            await asyncio.to_thread(self.batcher.join, grace)
        if self.service is not None:
            self.service.close()


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
            dialect = "tei" if isinstance(exc.body, dict) and "texts" in exc.body else "cohere"
        return _respond(request, InvalidRequestError(problems), dialect)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        state: ServerState = request.app.state.rankgate
        mapped: Exception
        if exc.status_code == 413:
            mapped = PayloadTooLargeError(state.settings.max_payload_bytes)
        elif exc.status_code in (404, 405):
            mapped = RouteNotFoundError(exc.status_code)
        elif exc.status_code == 400:
            mapped = InvalidJSONError("the body could not be read")
        else:
            mapped = exc
        return _respond(request, mapped)


def create_app(
    settings: ServerSettings | None = None,
    reranker: Reranker | None = None,
    *,
    model_settings: RerankerSettings | None = None,
    health: RankingHealth | None = None,
) -> FastAPI:
    """Build the server.

    Args:
        settings: server options (default: from RANKGATE_* variables and defaults).
        reranker: an already loaded engine (tests, embedding); else one is loaded from
            ``model_settings`` at startup, before the server accepts connections.
        model_settings: how to load the model when ``reranker`` is None.
        health: the ranking-health monitor every rerank feeds (default: one with
            RANKGATE_HEALTH_* settings).

    Example:
        >>> from rankgate.testing import KeywordBackend
        >>> app = create_app(ServerSettings(), Reranker(backend=KeywordBackend()))
        >>> sorted(p for p in app.openapi()["paths"] if "rerank" in p)
        ['/rerank', '/v1/rerank', '/v2/rerank']
    """
    settings = settings or ServerSettings()
    state = ServerState(settings, ServerMetrics(), health=health or RankingHealth())
    state.metrics.in_flight.set_function(lambda: state.lifecycle.in_flight)
    state.health.register(state.metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = reranker
        if engine is None:
            engine = await asyncio.to_thread(Reranker, settings=model_settings)
        state.bind(engine)
        log.info("serving %s on the %s backend", state.model_name, engine.info().device)
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
    app.include_router(insight_router(state.get_reranker, state.health))
    app.include_router(search_router(state.get_funnel))
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
