"""The Ray Serve deployment passes the plain server's client tests and keeps its error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rankgate.config import RerankerSettings
from rankgate.ray import RaySettings, serve_app
from rankgate.server import ServerSettings

# The plain server's client tests, collected here against the Serve deployment's URL.
from tests.server.test_clients import (  # noqa: F401
    KEY,
    test_real_clients_get_the_library_ranking,
    test_tei_request_with_httpx,
)

from .conftest import ServeURL, deploy, tiny_settings


@pytest.fixture(scope="module")
def model_server(serve_port: int, tiny_model: Path) -> Iterator[ServeURL]:
    """Two replicas of the tiny real model behind Serve, with the plain server's test settings."""
    from ray import serve

    settings = ServerSettings(api_keys=[KEY], batch_wait_ms=5)
    ray_settings = RaySettings(replicas=2, num_cpus_per_replica=0.5, app_name="clients")
    app = serve_app(settings, RerankerSettings(**tiny_settings(tiny_model)), ray_settings)
    yield deploy(serve_port, app, "clients")
    serve.delete("clients")


def test_errors_have_the_plain_servers_shape(model_server: ServeURL) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=model_server.url, timeout=30) as c:
        assert c.get("/health").status_code == 200
        assert c.post("/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 401
        empty = c.post("/v1/rerank", json={"query": " ", "documents": ["d"]}, headers=auth)
        assert empty.status_code == 400
        assert set(empty.json()) == {"message", "detail"}
        tei = c.post("/rerank", json={"query": "q", "texts": []}, headers=auth)
        assert tei.status_code == 400
        assert tei.json()["error_type"] == "empty"
        assert "rankgate_requests_total" in c.get("/metrics").text
