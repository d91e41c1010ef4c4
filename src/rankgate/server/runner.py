"""Running the app under uvicorn with a graceful SIGTERM drain.

On the first SIGTERM (or Ctrl+C) the server keeps listening but drains: ``/ready`` answers 503
so a load balancer stops sending work, new scoring requests get 503, and requests already in
flight finish. Once none is left (or ``shutdown_grace_s`` passed) uvicorn stops. A second signal
stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from rankgate.server.app import ServerState

__all__ = ["DrainingServer", "serve"]

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
        self.state.lifecycle.begin_drain()
        log.info("signal %d: draining %d in-flight requests", sig, self.state.lifecycle.in_flight)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        grace = self.state.settings.shutdown_grace_s
        if not await self.state.lifecycle.wait_idle(grace):
            log.warning("shutting down with %d requests in flight", self.state.lifecycle.in_flight)
        self.should_exit = True


def serve(app: FastAPI) -> None:
    """Serve ``app`` (from :func:`~rankgate.server.app.create_app`) until drained."""
    state: ServerState = app.state.rankgate
    s = state.settings
    config = uvicorn.Config(
        app,
        host=s.host,
        port=s.port,
        log_level=s.log_level,
        timeout_graceful_shutdown=max(1, int(s.shutdown_grace_s)),
        access_log=False,
        limit_max_requests=None,
    )
    DrainingServer(config, state).run()
