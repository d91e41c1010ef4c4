"""The score cache behind every dialect: the same answers from it, one cache per served model,
its metrics under each model's label, and its size in /info."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from rankgate import Reranker
from rankgate.backends.base import EncodedPair
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend

from .conftest import LiveServer, parse_metric

DOCS = ["Hold the reset button for ten seconds.", "Battery range drops.", "Reset the password."]


class _Flipped(KeywordBackend):
    """Another model: the keyword model's scores turned around."""

    model_id = "flipped"

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        return -super().forward(pairs)


@pytest.fixture(scope="module")
def libraries() -> dict[str, Reranker]:
    return {"keyword": Reranker(backend=KeywordBackend()), "flipped": Reranker(backend=_Flipped())}


@pytest.fixture(scope="module")
def cached(serve, libraries: dict[str, Reranker]) -> LiveServer:  # type: ignore[no-untyped-def]
    models = {name: Reranker(backend=type(lib.backend)()) for name, lib in libraries.items()}
    return serve(create_app(ServerSettings(cache_size="1MiB", batch_wait_ms=1), models))


def cache_metric(client: httpx.Client, name: str, model: str) -> float:
    return parse_metric(client.get("/metrics").text, f'rankgate_cache_{name}{{model="{model}"}}')


def _without_ids(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in ("id", "created")}
    return body


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/rerank", {"query": "reset v1", "documents": DOCS, "return_documents": True}),
        ("/v2/rerank", {"query": "reset v2", "documents": DOCS, "top_n": 2}),
        ("/rerank", {"query": "reset tei", "texts": DOCS, "raw_scores": True, "return_text": True}),
        ("/infinity/rerank", {"query": "reset infinity", "documents": DOCS}),
        ("/score", {"text_1": "reset vllm", "text_2": DOCS}),
    ],
)
def test_every_dialect_gets_the_same_answer_from_the_cache(
    cached: LiveServer, path: str, body: dict[str, Any]
) -> None:
    with cached.client() as c:
        hits = cache_metric(c, "hits_total", "keyword")
        first = c.post(path, json=body)
        again = c.post(path, json=body)
        assert first.status_code == again.status_code == 200, first.text
        assert _without_ids(again.json()) == _without_ids(first.json())  # usage included
        assert cache_metric(c, "hits_total", "keyword") == hits + len(DOCS)
    assert int(first.headers["x-compute-tokens"]) > 0
    assert again.headers["x-compute-tokens"] == "0"  # the model computed nothing for it


def test_one_models_scores_never_answer_another(
    cached: LiveServer, libraries: dict[str, Reranker]
) -> None:
    body = {"query": "reset the router", "documents": DOCS}
    with cached.client() as c:
        got = {}
        for name in ("keyword", "flipped", "keyword", "flipped"):
            r = c.post("/v2/rerank", json={**body, "model": name})
            assert r.status_code == 200, r.text
            got[name] = sorted(r.json()["results"], key=lambda x: x["index"])
        for name, library in libraries.items():
            want = library.compute_score([(body["query"], d) for d in DOCS], normalize=True)
            assert [x["relevance_score"] for x in got[name]] == pytest.approx(want, abs=1e-6)
            assert cache_metric(c, "entries", name) >= len(DOCS)
        assert got["keyword"] != got["flipped"]


def test_metrics_and_info_show_each_models_cache(cached: LiveServer) -> None:
    with cached.client() as c:
        c.post("/v2/rerank", json={"query": "metrics", "documents": DOCS, "model": "flipped"})
        text = c.get("/metrics").text
        info = c.get("/info").json()
    for name in ("hits_total", "misses_total", "evictions_total", "bytes", "entries"):
        parse_metric(text, f'rankgate_cache_{name}{{model="flipped"}}')
    assert parse_metric(text, 'rankgate_cache_max_bytes{model="keyword"}') == 1 << 20
    assert 0 < parse_metric(text, 'rankgate_cache_bytes{model="flipped"}') <= 1 << 20
    assert parse_metric(text, 'rankgate_cache_misses_total{model="flipped"}') >= len(DOCS)
    assert {m["name"]: m["cache_size"] for m in info["rankgate"]["models"]} == {
        "keyword": 1 << 20,
        "flipped": 1 << 20,
    }


def test_without_a_cache_size_there_is_no_cache(fake: httpx.Client) -> None:
    assert fake.post("/v2/rerank", json={"query": "reset", "documents": DOCS}).status_code == 200
    with pytest.raises(KeyError):
        parse_metric(fake.get("/metrics").text, "rankgate_cache_hits_total")
    assert [m["cache_size"] for m in fake.get("/info").json()["rankgate"]["models"]] == [0]
