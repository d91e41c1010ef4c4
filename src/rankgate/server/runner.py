"""Running the app under uvicorn with a graceful SIGTERM drain inside one deadline.

On the first SIGTERM (or Ctrl+C) the server keeps listening but drains: ``/ready`` answers 503
so a load balancer stops sending work, new requests get 503, and requests already in flight
finish. The deadline is ``shutdown_grace_s`` after the signal and every stage shares it: what is
still running (or still uploading) shortly before it is answered 503 in its dialect and its work
is cancelled, then uvicorn closes the connections and the model thread stops, so the process
exits within the grace. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from rankgate.errors import AddressInUseError
from rankgate.server.state import ServerState

__all__ = ["DrainingServer", "listen", "serve", "uvicorn_config"]

log = logging.getLogger("rankgate.server")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first exit signal drains instead of closing the listener."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.state.lifecycle.draining or self._loop is None:
            self.force_exit = self.state.lifecycle.draining
            super().handle_exit(sig, frame)
            return
        self.state.lifecycle.begin_drain(self.state.settings.shutdown_grace_s)
        log.info("signal %d: draining %d in-flight requests", sig, self.state.lifecycle.in_flight)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        await self.state.drain()
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own wait for open connections gets what is left of the one deadline.
        remaining = self.state.lifecycle.remaining()
        if remaining != float("inf"):
            left = remaining - self.state.exit_reserve()
            self.config.timeout_graceful_shutdown = max(0.1, left)  # type: ignore[assignment]
        await super().shutdown(sockets)


def uvicorn_config(app: FastAPI, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for ``app``, from its server settings (``overrides`` win: tests)."""
    state: ServerState = app.state.rankgate
    s = state.settings
    options: dict[str, Any] = dict(
        host=s.host,
        port=s.port,
        log_level=s.log_level,
        timeout_graceful_shutdown=max(1, int(s.shutdown_grace_s)),
        timeout_keep_alive=s.keep_alive_s,  # a float works
        access_log=False,
        limit_max_requests=None,
    )
    options.update(overrides)
    return uvicorn.Config(app, **options)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, taken before the model loads so that a port in use
    fails in a second, not after minutes of loading; uvicorn serves on it.

    Raises:
        AddressInUseError: the address is in use, not permitted or does not exist here.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise AddressInUseError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        raise AddressInUseError(
            f"cannot listen on {host}:{port}: {why} (is another server running there? choose "
            "another --port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, sock: socket.socket | None = None) -> None:
    """Serve ``app`` (from :func:`~rankgate.server.app.create_app`) until drained, on ``sock``
    when given (see :func:`listen`), else on the settings' host and port."""
    DrainingServer(uvicorn_config(app), app.state.rankgate).run(sockets=[sock] if sock else None)
