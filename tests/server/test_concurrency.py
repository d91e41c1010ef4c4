"""32 clients on loopback at once: every answer is a 200 or a 429, scores equal the library's,
with the score cache off and on."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from rankgate import Reranker
from rankgate.server import ServerSettings, create_app
from rankgate.testing import SAMPLE_TEXT

from .conftest import LiveServer, parse_metric

QUERIES = ["reset the router password", "battery range in winter", "路由器密码", "noise"]
CLIENTS = 32
SECONDS = 4.0


def run_client(seed: int, url: str, out: list[tuple[str, list[str], httpx.Response]]) -> None:
    rng = random.Random(seed)
    deadline = time.monotonic() + SECONDS
    with httpx.Client(
        base_url=url, timeout=60, headers={"Authorization": "Bearer test-key"}
    ) as client:
        while time.monotonic() < deadline:
            query = rng.choice(QUERIES)
            docs = rng.sample(SAMPLE_TEXT, rng.randint(1, 6))
            r = client.post("/v2/rerank", json={"model": "m", "query": query, "documents": docs})
            out.append((query, docs, r))


def batch_metrics(live: LiveServer) -> tuple[float, float]:
    with live.client(headers={"Authorization": "Bearer test-key"}) as client:
        text = client.get("/metrics").text
    total = parse_metric(text, "rankgate_batch_requests_count")
    alone = parse_metric(text, 'rankgate_batch_requests_bucket{le="1.0"}')
    return total, total - alone


@pytest.fixture(scope="module")
def cached_model_server(serve, tiny_model_dir: Path) -> LiveServer:  # type: ignore[no-untyped-def]
    """The tiny model again, with a score cache: the clients repeat queries and documents."""
    reranker = Reranker(str(tiny_model_dir), device="cpu", max_length=128, threads=1)
    settings = ServerSettings(api_keys=["test-key"], batch_wait_ms=5, cache_size="16MiB")
    return serve(create_app(settings, reranker))


def cache_metric(live: LiveServer, name: str) -> float:
    with live.client(headers={"Authorization": "Bearer test-key"}) as client:
        return parse_metric(client.get("/metrics").text, f"rankgate_cache_{name}")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["model_server", "cached_model_server"])
def test_concurrent_clients(
    server: str, request: pytest.FixtureRequest, tiny_library: Reranker
) -> None:
    model_server: LiveServer = request.getfixturevalue(server)
    cached = server == "cached_model_server"
    before_total, before_shared = batch_metrics(model_server)
    results: list[tuple[str, list[str], httpx.Response]] = []
    threads = [
        threading.Thread(target=run_client, args=(seed, model_server.url, results))
        for seed in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    assert len(results) >= CLIENTS
    ok = 0
    for query, docs, r in results:
        assert r.status_code in (200, 429), r.text
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            continue
        ok += 1
        want = tiny_library.rerank(query, docs)
        got = r.json()["results"]
        assert [x["relevance_score"] for x in got] == pytest.approx(
            [w.score for w in want], rel=1e-4, abs=1e-6
        )
        assert sorted(x["index"] for x in got) == list(range(len(docs)))
    assert ok > 0
    total, shared = batch_metrics(model_server)
    assert total > before_total
    if not cached:
        assert shared > before_shared, "no model step held pairs of more than one request"
        return
    # Each (query, document) pair was kept once however many clients asked for it at once,
    # and most documents were answered from the cache.
    assert cache_metric(model_server, "entries") <= len(QUERIES) * len(SAMPLE_TEXT)
    hits, misses = (
        cache_metric(model_server, "hits_total"),
        cache_metric(model_server, "misses_total"),
    )
    assert hits > misses > 0
    assert cache_metric(model_server, "bytes") <= cache_metric(model_server, "max_bytes")
