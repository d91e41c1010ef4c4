"""The gate every request passes: request id, drain, API keys, the body, disconnects, counts.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so it can refuse a request before the body
is read, read the body itself under a size limit and a deadline, check it once for every route
(:mod:`rankgate.server.edge`), cancel the route's work when the client goes away before its
answer, and turn any unexpected exception into a 500 without its text. Authentication is here
rather than in route dependencies so that it is fail-closed: every path, including the OpenAPI
pages and unknown paths, needs a key once keys are configured, except the open probes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rankgate.engine.service import Timings
from rankgate.errors import UnavailableError
from rankgate.server.edge import check_json, read_body
from rankgate.server.errors import (
    AuthenticationError,
    ClientDisconnectedError,
    Dialect,
    PayloadTooLargeError,
    classify,
    error_response,
    rerank_dialect,
)
from rankgate.server.state import ServerState

__all__ = [
    "MODEL_PATHS",
    "OPEN_PATHS",
    "SCORING_PATHS",
    "GateMiddleware",
    "dialect_for_path",
    "timing_headers",
]

log = logging.getLogger("rankgate.server")

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/v1/cluster/auth"})
PLAYGROUND_PATHS = frozenset({"/", "/playground/app.js", "/playground/style.css"})
SCORING_PATHS = frozenset(
    {"/v1/rerank", "/v2/rerank", "/rerank", "/infinity/rerank", "/score", "/v1/score"}
)
MODEL_PATHS = SCORING_PATHS | {"/v1/explain", "/v1/search"}
"""Paths whose requests reach the model: counted in flight, drained on shutdown."""
_KNOWN_PATHS = (
    OPEN_PATHS
    | MODEL_PATHS
    | PLAYGROUND_PATHS
    | {"/info", "/docs", "/openapi.json", "/redoc", "/v1/health/ranking", "/v1/demo/scenarios"}
    | {"/v1/models"}
)
_DIALECTS: dict[str, Dialect] = {
    "/v1/rerank": "cohere",
    "/v2/rerank": "cohere",
    "/infinity/rerank": "cohere",
    "/score": "vllm",
    "/v1/score": "vllm",
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
DISCONNECTED = 499  # nginx's "client closed request": no response was sent


def route_label(path: str) -> str:
    """The ``route`` label of a path in the request metrics: a known route, else ``other``."""
    if path in _KNOWN_PATHS:
        return path
    return "/v1/models/{name}" if path.startswith("/v1/models/") else "other"


def dialect_for_path(path: str) -> Dialect:
    """The error dialect of a path; ``/rerank`` is decided by its body, so it starts as any."""
    return _DIALECTS.get(path, "any")


def timing_headers(timings: Timings) -> dict[str, str]:
    """TEI's timing headers, in whole milliseconds."""

    def ms(seconds: float) -> str:
        return str(round(seconds * 1000))

    return {
        "x-tokenization-time": ms(timings.tokenize),
        "x-queue-time": ms(timings.queue),
        "x-inference-time": ms(timings.inference),
        "x-total-time": ms(timings.total),
        "x-compute-time": ms(timings.tokenize + timings.inference),
        "x-compute-tokens": str(timings.tokens),
    }


class GateMiddleware:
    """Admits or refuses each HTTP request and decorates its response."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._keys = [k.encode() for k in state.settings.api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        given_id = headers.get("x-request-id", "")
        request_id = given_id if _REQUEST_ID.fullmatch(given_id) else uuid.uuid4().hex
        timings = Timings()
        scope.setdefault("state", {}).update(request_id=request_id, timings=timings)
        scoring = path in MODEL_PATHS
        status = [500]
        started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                status[0] = message["status"]
                out = MutableHeaders(scope=message)
                out["x-request-id"] = request_id
                if scoring and status[0] == 200:
                    timings.stop()
                    for name, value in timing_headers(timings).items():
                        out[name] = value
            await send(message)

        lifecycle = self.state.lifecycle
        try:
            refusal = self._refusal(path, headers)
            if refusal is not None:
                await self._fail(refusal, scope, send_wrapper)
                return
            if scoring:
                lifecycle.enter()
            try:
                await self._serve(scope, receive, send_wrapper, started)
            finally:
                if scoring:
                    lifecycle.leave()
        except ClientDisconnectedError:
            status[0] = DISCONNECTED
            self.state.metrics.disconnects.inc()
        except Exception as exc:  # anything the routes' handlers did not turn into a response
            if classify(exc).status == 500:  # 503 and 504 are expected, not faults
                log.error("request %s failed", request_id, exc_info=exc)
            if not started[0]:
                await self._fail(exc, scope, send_wrapper)
        finally:
            self._count(path, status[0], timings, scoring, request_id)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, started: list[bool]) -> None:
        """Read and check the body, run the app, cancel it if the client goes away.

        Raises:
            the errors found at the edge (body too large or too slow, invalid text), for the
            caller to answer; ClientDisconnectedError when the client went away first.
        """
        s = self.state.settings
        body = await read_body(
            receive,
            limit=s.max_payload_bytes,
            timeout_s=s.body_timeout_s,
            stop=self.state.lifecycle.stop,
        )
        if scope["path"] == "/rerank" and body:
            scope["state"]["dialect"] = rerank_dialect(body)  # before parsing: its errors too
        parsed = check_json(body) if scope["method"] in ("POST", "PUT", "PATCH") else None
        if scope["path"] == "/rerank" and parsed is not None:
            scope["state"]["dialect"] = rerank_dialect(parsed)
        gone = asyncio.Event()
        replayed = [False]

        async def replay() -> Message:
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        task = asyncio.ensure_future(self.app(scope, replay, send))
        watcher = asyncio.ensure_future(_watch(receive, task, gone, started))
        try:
            await asyncio.wait({task})
        finally:
            watcher.cancel()
            if not task.done():  # this request itself was cancelled (server shutdown)
                task.cancel()
        if task.cancelled():
            raise ClientDisconnectedError("the client went away before its answer")
        task.result()

    def _refusal(self, path: str, headers: Headers) -> Exception | None:
        if path in OPEN_PATHS:
            return None
        if path in PLAYGROUND_PATHS and self.state.settings.public_playground:
            return None
        if self.state.lifecycle.draining:
            return UnavailableError("the server is shutting down")
        if self._keys and not self._authorized(headers.get("authorization", "")):
            return AuthenticationError("invalid or missing API key")
        length = headers.get("content-length")
        limit = self.state.settings.max_payload_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            return PayloadTooLargeError(limit)
        return None

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        given = token.strip().encode()
        # Compare with every key, so timing does not tell which prefix matched.
        return any([hmac.compare_digest(given, key) for key in self._keys])

    async def _fail(self, exc: Exception, scope: Scope, send: Send) -> None:
        state: dict[str, Any] = scope["state"]
        dialect = state.get("dialect") or dialect_for_path(scope["path"])
        self.state.metrics.failures.labels(classify(exc).reason).inc()
        response = error_response(exc, dialect, state["request_id"])
        if isinstance(exc, UnavailableError) and self.state.lifecycle.draining:
            response.headers["Connection"] = "close"

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)

    def _count(
        self, path: str, status: int, timings: Timings, scoring: bool, request_id: str
    ) -> None:
        metrics = self.state.metrics
        metrics.requests.labels(route_label(path), str(status)).inc()
        if scoring and status == 200:
            metrics.observe_request(timings)
            log.info(
                "request %s %s 200 documents=%d tokens=%d total_ms=%.1f",
                request_id,
                path,
                timings.documents,
                timings.tokens,
                timings.total * 1000,
            )
        elif scoring:
            log.info(
                "request %s %s %d after %.1f ms",
                request_id,
                path,
                status,
                (time.perf_counter() - timings.started) * 1000,
            )


async def _watch(
    receive: Receive, task: asyncio.Future[Any], gone: asyncio.Event, started: list[bool]
) -> None:
    """Cancel the request's work when its client disconnects before the answer started."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            if not started[0]:
                task.cancel()
            return
