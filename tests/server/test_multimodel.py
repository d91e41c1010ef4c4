"""Several models in one server: a cross-encoder and an LLM reranker side by side, each with its
own model queue and metrics label; a request picks one by its ``model`` field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankgate import ConfigError, Reranker
from rankgate.cli.serve import served_models
from rankgate.server import ServerSettings, create_app
from rankgate.server.protocol.errors import AnyError, CohereError, VLLMError

from .conftest import LiveServer, parse_metric

QUERY = "how do I reset the router password?"
DOCS = ["Hold the reset button for ten seconds.", "Four gigabit ports.", "长按复位键十秒钟。"]


@pytest.fixture(scope="module")
def libraries(tiny_model_dir: Path, qwen3_dir: Path) -> dict[str, Reranker]:
    return {
        "fast": Reranker(str(tiny_model_dir), device="cpu", max_length=128),
        "llm": Reranker(str(qwen3_dir), device="cpu"),
    }


@pytest.fixture(scope="module")
def two_models(serve, libraries: dict[str, Reranker]) -> LiveServer:  # type: ignore[no-untyped-def]
    return serve(create_app(ServerSettings(batch_wait_ms=2), dict(libraries)))


def expected(library: Reranker) -> list[float]:
    return library.compute_score([(QUERY, d) for d in DOCS], normalize=True)


def by_index(results: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in sorted(results, key=lambda r: r["index"])]


@pytest.mark.parametrize("name", ["fast", "llm"])
def test_each_model_answers_through_every_dialect_that_names_one(
    two_models: LiveServer, libraries: dict[str, Reranker], name: str
) -> None:
    want = expected(libraries[name])
    with two_models.client() as c:
        for path in ("/v1/rerank", "/v2/rerank"):
            r = c.post(path, json={"model": name, "query": QUERY, "documents": DOCS})
            assert r.status_code == 200, r.text
            assert by_index(r.json()["results"], "relevance_score") == pytest.approx(want, abs=1e-5)
        r = c.post("/rerank", json={"model": name, "query": QUERY, "documents": DOCS})
        assert by_index(r.json()["results"], "relevance_score") == pytest.approx(want, abs=1e-5)
        r = c.post("/score", json={"model": name, "text_1": QUERY, "text_2": DOCS})
        assert [d["score"] for d in r.json()["data"]] == pytest.approx(want, abs=1e-5)
        assert r.json()["model"] == name


def test_a_request_without_a_model_gets_the_first(
    two_models: LiveServer, libraries: dict[str, Reranker]
) -> None:
    with two_models.client() as c:
        tei = c.post("/rerank", json={"query": QUERY, "texts": DOCS})  # TEI sends no model
        cohere = c.post("/v2/rerank", json={"query": QUERY, "documents": DOCS})
    assert by_index(tei.json(), "score") == pytest.approx(expected(libraries["fast"]), abs=1e-5)
    got = by_index(cohere.json()["results"], "relevance_score")
    assert got == pytest.approx(expected(libraries["fast"]), abs=1e-5)


def test_an_unknown_model_is_a_404_that_lists_the_served_ones(two_models: LiveServer) -> None:
    with two_models.client() as c:
        for path, body, shape in [
            ("/v1/rerank", {"query": QUERY, "documents": DOCS}, CohereError),
            ("/v2/rerank", {"query": QUERY, "documents": DOCS}, CohereError),
            ("/score", {"text_1": QUERY, "text_2": DOCS}, VLLMError),
            ("/v1/explain", {"query": QUERY, "document": DOCS[0]}, AnyError),
        ]:
            r = c.post(path, json={**body, "model": "rerank-v3.5"})
            assert r.status_code == 404, (path, r.text)
            shape.model_validate(r.json())
            assert "'fast', 'llm'" in r.text


def test_models_info_and_metrics_list_both(two_models: LiveServer) -> None:
    with two_models.client() as c:
        c.post("/v2/rerank", json={"model": "llm", "query": QUERY, "documents": DOCS})
        listed = c.get("/v1/models").json()
        info = c.get("/info").json()
        text = c.get("/metrics").text
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200
    assert [m["id"] for m in listed["data"]] == ["fast", "llm"]
    assert info["model_id"] == "fast"
    assert [(m["name"], m.get("recipe")) for m in info["rankgate"]["models"]] == [
        ("fast", None),
        ("llm", "qwen3"),
    ]
    assert parse_metric(text, 'rankgate_batch_requests_count{model="llm"}') >= 1
    assert 'rankgate_queue_tokens{model="fast"}' in text


def test_tei_picks_a_served_model_it_names_and_each_model_has_its_card(
    two_models: LiveServer, libraries: dict[str, Reranker]
) -> None:
    with two_models.client() as c:
        named = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "model": "llm"})
        other = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "model": "BAAI/x"})
        card = c.get("/v1/models/llm").json()
        missing = c.get("/v1/models/rerank-v3.5")
    assert by_index(named.json(), "score") == pytest.approx(expected(libraries["llm"]), abs=1e-5)
    assert "x-ignored-fields" not in named.headers
    assert by_index(other.json(), "score") == pytest.approx(expected(libraries["fast"]), abs=1e-5)
    assert other.headers["x-ignored-fields"] == "model"  # TEI ignores a model it does not know
    assert card["model_type"] == "rerank" and card["id"] == "llm"
    assert missing.status_code == 404 and "'fast', 'llm'" in missing.text
    assert "detail" in missing.json()  # what xinference-client reads from an error


def test_one_model_answers_whatever_model_a_client_names(fake) -> None:  # type: ignore[no-untyped-def]
    r = fake.post("/v2/rerank", json={"model": "rerank-v3.5", "query": "q", "documents": ["a"]})
    assert r.status_code == 200  # the Cohere SDKs send their own model names


def test_serve_model_options_name_each_model() -> None:
    specs = served_models(["./a", "big=./b", "./c"], {"device": "cpu"})
    assert {k: v.model for k, v in specs.items()} == {None: "./a", "big": "./b", "./c": "./c"}
    assert all(v.device == "cpu" for v in specs.values())
    with pytest.raises(ConfigError, match="NAME=MODEL"):
        served_models(["=./a"], {})
    with pytest.raises(ConfigError, match="second model"):
        served_models(["x=./a", "x=./b"], {})
