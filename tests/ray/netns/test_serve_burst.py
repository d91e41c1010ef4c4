"""A burst past Ray Serve's queue limit gets 429 with Retry-After, and loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from rankgate import Reranker
from rankgate.config import RerankerSettings
from rankgate.ray import RaySettings, serve_app
from rankgate.server import ServerSettings
from rankgate.testing import KeywordBackend
from tests.server.conftest import parse_metric

from .conftest import ServeURL, deploy


def slow_keyword_reranker() -> Reranker:
    """Replica engine for the burst: 20 ms per pair keeps a queue forming."""
    return Reranker(backend=KeywordBackend(delay=0.02))


BURST = 40
DOCS_PER_REQUEST = 4


def burst_request(i: int) -> dict[str, object]:
    words = ["router", "battery", "password", "winter", "charger", "noise"]
    query = f"{words[i % 6]} {words[(i + 1) % 6]} request{i}"
    docs = [f"{words[(i + k) % 6]} doc{k} request{i}" for k in range(DOCS_PER_REQUEST)]
    return {"query": query, "documents": docs}


@pytest.fixture(scope="module")
def small_queue(serve_port: int) -> Iterator[ServeURL]:
    """One replica, 2 requests in flight, 4 waiting: a burst of 40 must overflow."""
    from ray import serve

    ray_settings = RaySettings(
        replicas=1,
        max_ongoing_requests=2,
        max_queued_requests=4,
        retry_after_s=1,
        num_cpus_per_replica=0.5,
        app_name="burst",
    )
    app = serve_app(
        ServerSettings(), RerankerSettings(), ray_settings, reranker_factory=slow_keyword_reranker
    )
    yield deploy(serve_port, app, "burst")
    serve.delete("burst")


async def send_all(url: str, indexes: list[int]) -> dict[int, httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/rerank", json=burst_request(i)) for i in indexes)
        )
    return dict(zip(indexes, responses, strict=True))


def test_burst_past_the_queue_gets_429_and_loses_nothing(small_queue: ServeURL) -> None:
    reference = Reranker(backend=KeywordBackend())
    first = asyncio.run(send_all(small_queue.url, list(range(BURST))))
    statuses = [r.status_code for r in first.values()]
    assert set(statuses) <= {200, 429}, statuses
    refused = [i for i, r in first.items() if r.status_code == 429]
    assert refused, "the burst never overflowed Serve's queue"
    assert len(refused) < BURST
    for i in refused:
        assert int(first[i].headers["retry-after"]) >= 1

    results = {i: r.json() for i, r in first.items() if r.status_code == 200}
    pending = refused
    for _ in range(20):  # retry as a client would, honouring Retry-After
        if not pending:
            break
        time.sleep(max(int(first[i].headers["retry-after"]) for i in pending))
        again = asyncio.run(send_all(small_queue.url, pending))
        results.update({i: r.json() for i, r in again.items() if r.status_code == 200})
        pending = [i for i, r in again.items() if r.status_code == 429]
        first.update(again)
    assert sorted(results) == list(range(BURST))
    for i, body in results.items():
        spec = burst_request(i)
        want = reference.rerank(spec["query"], spec["documents"])  # type: ignore[arg-type]
        got = [(r["index"], r["relevance_score"]) for r in body["results"]]
        assert [g[0] for g in got] == [w.index for w in want]
        assert [g[1] for g in got] == pytest.approx([w.score for w in want])

    # The one replica scored each request exactly once and refused none itself: Serve's queue
    # turned the overflow away before it reached the model.
    metrics = httpx.get(f"{small_queue.url}/metrics", timeout=30).text
    ok = parse_metric(metrics, 'rankgate_requests_total{route="/v1/rerank",status="200"}')
    assert ok == BURST
    assert parse_metric(metrics, "rankgate_documents_total") == BURST * DOCS_PER_REQUEST
    assert 'status="429"' not in metrics
