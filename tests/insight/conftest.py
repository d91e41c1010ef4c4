"""Fixtures for the insight tests: the real server app (``create_app``), served on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rankgate import Reranker
from rankgate.insight.health import HealthSettings
from rankgate.insight.monitor import RankingHealth
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend


@pytest.fixture
def health() -> RankingHealth:
    return RankingHealth(HealthSettings(min_requests=1, window=50))


@pytest.fixture
def keyword_app(health: RankingHealth) -> Iterator[FastAPI]:
    app = create_app(ServerSettings(), Reranker(backend=KeywordBackend()), health=health)
    with TestClient(app):  # runs the lifespan: the model is bound, the batcher started
        yield app


def _serve(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 on a free port, for a browser or a CLI."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live_url(keyword_app: FastAPI) -> Iterator[str]:
    """The open app (no API keys) on loopback."""
    yield from _serve(keyword_app)


API_KEY = "playground-key"


@pytest.fixture
def keyed_url(health: RankingHealth) -> Iterator[str]:
    """An app that needs ``API_KEY`` everywhere but the page itself (``public_playground``)."""
    settings = ServerSettings(api_keys=[API_KEY], public_playground=True)
    app = create_app(settings, Reranker(backend=KeywordBackend()), health=health)
    with TestClient(app):
        yield from _serve(app)
