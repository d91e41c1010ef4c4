"""The insight routes and the playground assets, in-process."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rankgate import Reranker
from rankgate.insight.monitor import RankingHealth
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend


def test_explain_route(keyword_app: FastAPI) -> None:
    client = TestClient(keyword_app)
    doc = "Foxes sleep. Reset router password here. Dogs bark."
    body = client.post("/v1/explain", json={"query": "reset router password here", "document": doc})
    assert body.status_code == 200, body.text
    data = body.json()
    assert [s["text"] for s in data["segments"]][1] == "Reset router password here. "
    best = max(data["segments"], key=lambda s: s["contribution"])
    assert best["index"] == 1 and 0 < data["normalized_score"] < 1
    words = client.post(
        "/v1/explain", json={"query": "router", "document": "the router", "granularity": "word"}
    ).json()
    assert [s["text"] for s in words["segments"]] == ["the ", "router"]


def test_explain_errors(keyword_app: FastAPI) -> None:
    client = TestClient(keyword_app)
    blank = client.post("/v1/explain", json={"query": "q", "document": "  "})
    assert blank.status_code == 422  # an InputError, by the server's one error table
    assert blank.json()["message"]
    empty_query = client.post("/v1/explain", json={"query": "", "document": "x"})
    assert empty_query.status_code == 400
    bad = client.post("/v1/explain", json={"query": "q", "document": "x", "granularity": "line"})
    assert bad.status_code == 422


def test_health_route_follows_reranks(keyword_app: FastAPI, health: RankingHealth) -> None:
    client = TestClient(keyword_app)
    empty = client.get("/v1/health/ranking").json()
    assert empty["snapshot"]["requests"] == 0 and empty["thresholds"]["displacement_min"] == 0.15
    client.post("/v1/rerank", json={"query": "router password", "documents": ["a b", "router"]})
    report = client.get("/v1/health/ranking").json()
    assert report["snapshot"]["requests"] == 1
    assert report["snapshot"]["displacement_rate"] == 1.0
    assert report["window"][0]["displaced"] is True and report["totals"]["reranks"] == 1


def test_server_feeds_health_and_guards_the_playground(health: RankingHealth) -> None:
    reranker = Reranker(backend=KeywordBackend())
    locked = create_app(ServerSettings(api_keys=["k"]), reranker, health=health)
    with TestClient(locked) as client:
        assert client.get("/").status_code == 401  # fail-closed: the page needs a key too
        auth = {"Authorization": "Bearer k"}
        docs = ["unrelated", "router password reset", "router"]
        ok = client.post(
            "/v1/rerank",
            json={"query": "router password", "documents": docs, "top_n": 1},
            headers=auth,
        )
        assert ok.status_code == 200
        report = client.get("/v1/health/ranking", headers=auth).json()
        assert report["totals"]["reranks"] == 1
        assert report["window"][0]["documents"] == 3  # every document, not only the top_n
    public = create_app(ServerSettings(api_keys=["k"], public_playground=True), reranker)
    with TestClient(public) as client:
        assert client.get("/").status_code == 200
        assert client.get("/playground/app.js").status_code == 200
        assert client.post("/v1/explain", json={"query": "q", "document": "x"}).status_code == 401


def test_scenarios_route(keyword_app: FastAPI) -> None:
    data = TestClient(keyword_app).get("/v1/demo/scenarios").json()["scenarios"]
    trap = next(s for s in data if s["id"] == "tesla-winter-range" and s["lang"] == "ja")
    assert trap["expected_best"] == "C" and len(trap["documents"]) == 3


def test_playground_page_and_assets(keyword_app: FastAPI) -> None:
    client = TestClient(keyword_app)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/playground/app.js">' in page.text and "https://" not in page.text
    js = client.get("/playground/app.js")
    assert js.headers["content-type"].startswith("text/javascript") and "/v1/explain" in js.text
    assert "innerHTML" not in js.text and "insertAdjacentHTML" not in js.text
    assert client.get("/playground/style.css").status_code == 200
    # Only the fixed files are served: no traversal through parameters or other names.
    assert client.get("/playground/app.js?name=../../http.py").text == js.text
    assert client.get("/playground/http.py").status_code == 404
    assert "/" not in keyword_app.openapi()["paths"]
