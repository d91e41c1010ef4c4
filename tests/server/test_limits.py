"""Backpressure (429 + Retry-After), request timeouts (504) and API keys (401)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from rankgate import Reranker
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend


def test_full_queue_answers_429_with_retry_after(serve) -> None:  # type: ignore[no-untyped-def]
    settings = ServerSettings(max_queue_tokens=300, max_request_tokens=300, batch_wait_ms=0)
    live = serve(create_app(settings, Reranker(backend=KeywordBackend(delay=0.01))))
    body = {"query": "router reset", "documents": [f"router doc {i}" for i in range(10)]}

    def call(_: int) -> httpx.Response:
        with live.client() as client:
            return client.post("/v1/rerank", json=body)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(32)))
    statuses = {r.status_code for r in answers}
    assert statuses <= {200, 429}
    assert 429 in statuses and 200 in statuses
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert "queue is full" in r.json()["message"]
    with live.client() as client:
        assert client.get("/health").status_code == 200
        assert 'reason="overloaded"' in client.get("/metrics").text


def test_slow_request_times_out_with_504(serve) -> None:  # type: ignore[no-untyped-def]
    settings = ServerSettings(request_timeout_s=0.2)
    live = serve(create_app(settings, Reranker(backend=KeywordBackend(delay=0.1))))
    with live.client() as client:
        r = client.post("/rerank", json={"query": "q", "texts": ["a", "b", "c", "d", "e"]})
        assert r.status_code == 504
        assert r.json()["error_type"] == "timeout"


def test_api_keys_fail_closed(model_server) -> None:  # type: ignore[no-untyped-def]
    body = {"query": "router", "documents": ["router reset", "cats"]}
    with model_server.client() as anon:
        for path in ("/v1/rerank", "/v2/rerank", "/rerank", "/score"):
            r = anon.post(path, json=body)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
        for path in ("/info", "/docs", "/openapi.json", "/no-such-route"):
            assert anon.get(path).status_code == 401
        wrong = anon.post("/v1/rerank", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "nope" not in wrong.text
        for path in ("/health", "/ready", "/metrics"):
            assert anon.get(path).status_code == 200
    with model_server.client(headers={"Authorization": "Bearer test-key"}) as client:
        assert client.post("/v1/rerank", json=body).status_code == 200
        assert client.get("/info").status_code == 200
        assert client.get("/openapi.json").status_code == 200
