"""Every dialect's request and response shape, on a live server with the keyword backend."""

from __future__ import annotations

import httpx
import pytest

from rankgate import Reranker
from rankgate.testing import KeywordBackend
from tests.server.conftest import parse_metric

QUERY = "reset router password"
DOCS = ["the cat sleeps", "reset the router password", "router manual", "password"]


@pytest.fixture(scope="module")
def library() -> Reranker:
    return Reranker(backend=KeywordBackend())


def expected(library: Reranker, **kwargs: object) -> list[tuple[int, float]]:
    return [(r.index, r.score) for r in library.rerank(QUERY, DOCS, **kwargs)]  # type: ignore[arg-type]


def same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """Same order of documents, and scores equal to float precision."""
    return [i for i, _ in got] == [i for i, _ in want] and [s for _, s in got] == pytest.approx(
        [s for _, s in want]
    )


def test_cohere_v1_ranks_like_the_library(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post("/v1/rerank", json={"model": "m", "query": QUERY, "documents": DOCS})
    assert r.status_code == 200
    body = r.json()
    got = [(x["index"], x["relevance_score"]) for x in body["results"]]
    assert same_ranking(got, expected(library))
    assert "document" not in body["results"][0]
    assert body["id"] == r.headers["x-request-id"]
    assert body["meta"]["api_version"] == {"version": "1"}
    assert body["meta"]["tokens"]["input_tokens"] == body["usage"]["total_tokens"] > 0
    assert body["model"] == "m"


def test_top_n_and_return_documents(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post(
        "/v1/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 2, "return_documents": True}
    )
    results = r.json()["results"]
    assert [x["index"] for x in results] == [i for i, _ in expected(library, top_n=2)]
    assert [x["document"]["text"] for x in results] == [DOCS[x["index"]] for x in results]


def test_object_documents_with_rank_fields_keep_metadata(fake: httpx.Client) -> None:
    docs = [
        {"title": "cats", "body": "sleep all day", "id": 1},
        {"title": "router", "body": "reset the password", "id": 2},
    ]
    r = fake.post(
        "/v1/rerank",
        json={
            "query": QUERY,
            "documents": docs,
            "rank_fields": ["title", "body"],
            "return_documents": True,
        },
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["index"] for x in results] == [1, 0]
    assert results[0]["document"] == {"title": "router", "body": "reset the password", "id": 2}


def test_raw_scores_are_logits(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "raw_scores": True})
    got = [(x["index"], x["relevance_score"]) for x in r.json()["results"]]
    assert same_ranking(got, expected(library, normalize=False))
    assert min(s for _, s in got) < 0


def test_max_tokens_per_doc_cuts_documents(fake: httpx.Client, library: Reranker) -> None:
    docs = ["cat " * 5 + "reset router password", "reset router"]
    body = {"query": QUERY, "documents": docs, "max_tokens_per_doc": 5}
    got = fake.post("/v2/rerank", json=body).json()["results"]
    want = library.rerank(QUERY, docs, max_tokens_per_doc=5)
    assert same_ranking(
        [(x["index"], x["relevance_score"]) for x in got], [(w.index, w.score) for w in want]
    )
    assert got[0]["index"] == 1  # the first document lost its relevant words


def test_max_chunks_per_doc_limits_windows(fake: httpx.Client, library: Reranker) -> None:
    long_doc = "filler " * 3000 + "reset router password"  # past the first window
    body = {"query": QUERY, "documents": [long_doc, "router"]}
    all_windows = fake.post("/v1/rerank", json=body).json()["results"]
    one_window = fake.post("/v1/rerank", json={**body, "max_chunks_per_doc": 1}).json()["results"]
    score = {r["index"]: r["relevance_score"] for r in all_windows}
    first_only = {r["index"]: r["relevance_score"] for r in one_window}
    assert score[0] > first_only[0]  # only the last window holds the query's words
    want = library.rerank(QUERY, [long_doc, "router"], max_chunks=1)
    assert [x["relevance_score"] for x in one_window] == pytest.approx([w.score for w in want])


def test_cohere_v2_accepts_what_clients_send(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post(
        "/v2/rerank",
        json={
            "model": "rerank-v3.5",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 3,
            "max_tokens_per_doc": None,
            "priority": 0,
            "return_documents": True,
            "some_future_field": 1,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "results", "meta"}
    assert [x["index"] for x in body["results"]] == [i for i, _ in expected(library, top_n=3)]
    assert body["results"][0]["document"]["text"] == DOCS[body["results"][0]["index"]]
    assert r.headers["x-ignored-fields"] == "some_future_field"


def test_jina_shape(fake: httpx.Client) -> None:
    r = fake.post(
        "/v1/rerank",
        json={
            "model": "jina-reranker-v2",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 1,
            "return_documents": True,
        },
    )
    body = r.json()
    assert body["model"] == "jina-reranker-v2"
    assert body["usage"]["total_tokens"] > 0
    assert body["results"][0]["document"] == {"text": DOCS[1]}


def test_tei_rerank(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post("/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list)
    assert same_ranking([(x["index"], x["score"]) for x in body], expected(library))
    assert [x["text"] for x in body] == [DOCS[x["index"]] for x in body]
    raw = fake.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
    assert [x["score"] for x in raw] == pytest.approx(
        [s for _, s in expected(library, normalize=False)]
    )
    assert "text" not in raw[0]
    for header in (
        "x-tokenization-time",
        "x-queue-time",
        "x-inference-time",
        "x-total-time",
        "x-compute-tokens",
        "x-request-id",
    ):
        assert header in r.headers


def test_tei_ignores_unknown_fields_as_tei_does_and_lists_them(
    fake: httpx.Client, library: Reranker
) -> None:
    # what LiteLLM's huggingface/ provider sends: TEI itself ignores top_n and model
    body = {"query": QUERY, "texts": DOCS, "top_n": 2, "model": "BAAI/x", "raw_score": True}
    r = fake.post("/rerank", json=body)
    assert r.status_code == 200, r.text
    assert same_ranking([(x["index"], x["score"]) for x in r.json()], expected(library))
    assert r.headers["x-ignored-fields"] == "model,raw_score,top_n"  # a misspelling shows here


def test_usage_carries_prompt_tokens(fake: httpx.Client) -> None:
    body = fake.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_voyage_shape(fake: httpx.Client, library: Reranker) -> None:
    # the voyageai SDK's request: top_k, truncation; it reads data and usage.total_tokens
    request = {
        "query": QUERY,
        "documents": DOCS,
        "model": "rerank-2",
        "top_k": 2,
        "return_documents": True,
        "truncation": True,
    }
    body = fake.post("/v1/rerank", json=request).json()
    assert body["model"] == "rerank-2"  # no "object": the infinity client refuses "list"
    assert body["usage"]["total_tokens"] > 0
    got = [(x["index"], x["relevance_score"]) for x in body["data"]]
    assert same_ranking(got, expected(library, top_n=2))
    assert [x["document"] for x in body["data"]] == [DOCS[i] for i, _ in got]  # strings
    assert body["results"][0]["document"] == {"text": DOCS[got[0][0]]}  # Cohere's shape beside
    plain = fake.post("/v1/rerank", json={**request, "return_documents": False}).json()
    assert "document" not in plain["data"][0]
    both = fake.post("/v1/rerank", json={**request, "top_n": 3}).json()
    assert len(both["data"]) == 3  # top_n wins over top_k


def test_voyage_truncation_false_refuses_a_long_document(fake: httpx.Client) -> None:
    long = " ".join(["word"] * 5000)
    request = {"query": QUERY, "documents": [long], "truncation": False}
    r = fake.post("/v1/rerank", json=request)
    assert r.status_code in (400, 413, 422), r.text
    assert fake.post("/v1/rerank", json={**request, "truncation": True}).status_code == 200


def test_infinity_route_answers_in_infinitys_shape(fake: httpx.Client, library: Reranker) -> None:
    # infinity_client's RerankInput, with its defaults; it requires object == "rerank", model,
    # usage.prompt_tokens and usage.total_tokens; LiteLLM's infinity/ needs string documents
    request = {"query": QUERY, "documents": DOCS, "return_documents": True, "raw_scores": False}
    r = fake.post("/infinity/rerank", json={**request, "model": "default/not-specified"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "rerank" and body["model"] == "default/not-specified"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert isinstance(body["created"], int) and body["id"]
    got = [(x["index"], x["relevance_score"]) for x in body["results"]]
    assert same_ranking(got, expected(library))
    assert [x["document"] for x in body["results"]] == [DOCS[i] for i, _ in got]
    plain = fake.post("/infinity/rerank", json={**request, "return_documents": False}).json()
    assert "document" not in plain["results"][0]
    assert "object" not in fake.post("/v1/rerank", json=request).json()  # infinity refuses "list"


def test_xinference_clients_nulls_are_defaults(fake: httpx.Client, library: Reranker) -> None:
    # xinference-client's RESTfulRerankModelHandle.rerank body when the caller passes no options
    request = {
        "model": "bge-reranker",
        "documents": DOCS,
        "query": QUERY,
        "top_n": None,
        "max_chunks_per_doc": None,
        "return_documents": None,
        "return_len": None,
        "kwargs": "{}",
    }
    r = fake.post("/v1/rerank", json=request)
    assert r.status_code == 200, r.text
    got = [(x["index"], x["relevance_score"]) for x in r.json()["results"]]
    assert same_ranking(got, expected(library))
    assert "document" not in r.json()["results"][0]
    assert r.headers["x-ignored-fields"] == "kwargs,return_len"
    # RAGFlow's Xinference class sends booleans as strings
    strings = fake.post("/v1/rerank", json={**request, "return_documents": "true"}).json()
    assert strings["results"][0]["document"]["text"] in DOCS


def test_model_detail_says_it_is_a_reranker(fake: httpx.Client) -> None:
    r = fake.get("/v1/models/bge-reranker")  # one model served: any name is that model
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_type"] == "rerank" and body["id"] == "bge-reranker"
    assert body["object"] == "model" and body["context_length"] > 0
    assert fake.get("/v1/cluster/auth").json() == {"auth": False}


def test_rerank_without_texts_is_cohere(fake: httpx.Client) -> None:
    r = fake.post("/rerank", json={"query": QUERY, "documents": DOCS})
    assert r.status_code == 200
    assert r.json()["results"][0]["index"] == 1


def test_vllm_score(fake: httpx.Client, library: Reranker) -> None:
    r = fake.post("/score", json={"model": "bge", "text_1": QUERY, "text_2": DOCS})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["model"] == "bge"
    assert [x["index"] for x in body["data"]] == list(range(len(DOCS)))
    want = library.compute_score([(QUERY, d) for d in DOCS], normalize=True)
    assert [x["score"] for x in body["data"]] == pytest.approx(want)
    pairs = fake.post(
        "/score",
        json={"text_1": ["cat", QUERY], "text_2": ["the cat", "router"], "use_activation": False},
    ).json()
    want = library.compute_score([("cat", "the cat"), (QUERY, "router")])
    assert [x["score"] for x in pairs["data"]] == pytest.approx(want)


def test_info_health_ready(fake: httpx.Client) -> None:
    info = fake.get("/info").json()
    assert info["model_id"] == "keyword"
    assert info["max_client_batch_size"] == 50
    assert info["auto_truncate"] is True
    assert fake.get("/health").json() == {"status": "ok"}
    assert fake.get("/ready").json() == {"status": "ready"}


def test_request_id_is_echoed(fake: httpx.Client) -> None:
    r = fake.post(
        "/v2/rerank", json={"query": QUERY, "documents": DOCS}, headers={"x-request-id": "abc-123"}
    )
    assert r.headers["x-request-id"] == "abc-123"
    assert r.json()["id"] == "abc-123"


def test_metrics_count_requests_documents_tokens(fake: httpx.Client) -> None:
    fake.post("/v1/rerank", json={"query": QUERY, "documents": DOCS})
    text = fake.get("/metrics").text
    for name in (
        "rankgate_requests_total",
        "rankgate_documents_total",
        "rankgate_input_tokens_total",
        "rankgate_request_phase_seconds_bucket",
        "rankgate_batch_pairs_bucket",
        "rankgate_batch_requests_bucket",
        "rankgate_queue_tokens",
        "rankgate_queue_pairs",
    ):
        assert name in text
    for phase in ("tokenize", "queue", "inference", "total"):
        assert f'phase="{phase}"' in text
    assert 'rankgate_requests_total{route="/v1/rerank",status="200"}' in text
    # real vs padded tokens of the forward passes: every real token is computed, padding counted
    real = parse_metric(text, "rankgate_forward_real_tokens_total")
    padded = parse_metric(text, "rankgate_forward_padded_tokens_total")
    assert 0 < real <= padded
    assert parse_metric(text, "rankgate_forward_pairs_count") >= 1


def test_vllm_versioned_path(fake: httpx.Client) -> None:
    r = fake.post("/v1/score", json={"text_1": QUERY, "text_2": DOCS[:2]})
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    bad = fake.post("/v1/score", json={"text_1": QUERY})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == 422
