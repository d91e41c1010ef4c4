"""The gate every request passes: request id, drain, API keys, body size, timing headers, counts.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so it can refuse a request before the body
is read, count a body sent without Content-Length, and turn any unexpected exception into a
500 without its text. Authentication is here rather than in route dependencies so that it is
fail-closed: every path, including the OpenAPI pages and unknown paths, needs a key once keys
are configured, except the open probes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rankgate.errors import UnavailableError
from rankgate.server.errors import (
    AuthenticationError,
    Dialect,
    PayloadTooLargeError,
    classify,
    error_response,
)
from rankgate.server.serving import Timings

if TYPE_CHECKING:
    from rankgate.server.app import ServerState

__all__ = [
    "OPEN_PATHS",
    "SCORING_PATHS",
    "GateMiddleware",
    "Lifecycle",
    "dialect_for_path",
]

log = logging.getLogger("rankgate.server")

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
PLAYGROUND_PATHS = frozenset({"/", "/playground/app.js", "/playground/style.css"})
SCORING_PATHS = frozenset({"/v1/rerank", "/v2/rerank", "/rerank", "/score", "/v1/score"})
_KNOWN_PATHS = (
    OPEN_PATHS
    | SCORING_PATHS
    | PLAYGROUND_PATHS
    | {"/info", "/docs", "/openapi.json", "/redoc", "/v1/explain", "/v1/health/ranking"}
    | {"/v1/demo/scenarios", "/v1/search"}
)
_DIALECTS: dict[str, Dialect] = {
    "/v1/rerank": "cohere",
    "/v2/rerank": "cohere",
    "/score": "vllm",
    "/v1/score": "vllm",
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def dialect_for_path(path: str) -> Dialect:
    """The error dialect of a path; ``/rerank`` is decided by its body, so it starts as any."""
    return _DIALECTS.get(path, "any")


@dataclass
class Lifecycle:
    """Draining state and the count of scoring requests in flight."""

    draining: bool = False
    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def begin_drain(self) -> None:
        self.draining = True

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no scoring request is in flight; False when ``timeout`` passed first."""
        if self.in_flight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


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
        scoring = path in SCORING_PATHS
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
                    for name, value in timings.headers().items():
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
                await self.app(scope, self._limited(receive), send_wrapper)
            finally:
                if scoring:
                    lifecycle.leave()
        except Exception as exc:  # anything the routes' handlers did not turn into a response
            log.exception("request %s failed", request_id)
            if not started[0]:
                await self._fail(exc, scope, send_wrapper)
        finally:
            self._count(path, status[0], timings, scoring, request_id)

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

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive, for bodies sent without Content-Length."""
        limit = self.state.settings.max_payload_bytes
        seen = [0]

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise HTTPException(413)
            return message

        return wrapped

    async def _fail(self, exc: Exception, scope: Scope, send: Send) -> None:
        state: dict[str, Any] = scope["state"]
        dialect = state.get("dialect") or dialect_for_path(scope["path"])
        self.state.metrics.failures.labels(classify(exc).reason).inc()
        response = error_response(exc, dialect, state["request_id"])
        if isinstance(exc, UnavailableError):
            response.headers["Connection"] = "close"

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)

    def _count(
        self, path: str, status: int, timings: Timings, scoring: bool, request_id: str
    ) -> None:
        metrics = self.state.metrics
        metrics.requests.labels(path if path in _KNOWN_PATHS else "other", str(status)).inc()
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
