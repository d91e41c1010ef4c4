"""POST /v1/search on a standalone FastAPI app."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rankgate.engine import RerankService
from rankgate.funnel import Funnel, Rules, StageCuts
from rankgate.funnel.corpus import split_passages
from rankgate.funnel.http import search_router
from tests.funnel.conftest import StaticRetriever

QUERY = "iPhone 15 charges slowly"


@pytest.fixture
def client(corpus, keyword):
    docs = [d for d in corpus if d.id.startswith("t00-en-")]
    passages = [p for d in docs for p in split_passages(d, 200, 40)]
    funnel = Funnel(
        StaticRetriever({QUERY: passages}), keyword, Rules(min_score=None), cuts=StageCuts(50, 6, 3)
    )
    service = RerankService.start(keyword)
    app = FastAPI()
    app.include_router(search_router(lambda: funnel, lambda: service))
    yield TestClient(app)
    service.close()


def test_search_returns_kept_and_dropped_with_reasons(client):
    body = {
        "query": QUERY,
        "rules": {"allow_sources": ["apple.com"], "today": "2026-01-01"},
        "template": "troubleshooting",
    }
    response = client.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [d["doc_id"] for d in data["results"]] == ["t00-en-guide", "t00-en-faq"] or [
        d["doc_id"] for d in data["results"]
    ] == ["t00-en-faq", "t00-en-guide"]
    assert {d["doc_id"]: d["dropped_by"] for d in data["dropped"]} == {
        "t00-en-archive": "max_age",
        "t00-en-forum": "allow_sources",
        "t00-en-news": "allow_sources",
        "t00-en-mirror": "allow_sources",
    }
    assert data["template"] == "troubleshooting@1"
    assert set(data["timings"]) == {"retrieve", "rerank", "rules", "total"}
    assert data["results"][0]["metadata"]["lang"] == "en"


def test_request_validation(client):
    assert client.post("/v1/search", json={"query": ""}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "top_n": 0}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "nope": 1}).status_code == 422
