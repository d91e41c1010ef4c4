"""Bad input gets its documented status and body in the caller's dialect; the server stays up."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

DOCS = ["router reset", "cats"]

# (name, path, body, status, extra check on the body)
CASES: list[tuple[str, str, Any, int]] = [
    ("cohere empty query", "/v1/rerank", {"query": "", "documents": DOCS}, 400),
    ("cohere blank query", "/v2/rerank", {"query": "   ", "documents": DOCS}, 400),
    ("tei empty query", "/rerank", {"query": "", "texts": DOCS}, 400),
    ("vllm empty query", "/score", {"text_1": "", "text_2": DOCS}, 400),
    ("cohere empty documents", "/v1/rerank", {"query": "q", "documents": []}, 400),
    ("tei empty texts", "/rerank", {"query": "q", "texts": []}, 400),
    ("cohere missing documents", "/v2/rerank", {"query": "q"}, 422),
    ("cohere missing query", "/v1/rerank", {"documents": DOCS}, 422),
    ("tei missing texts and documents", "/rerank", {"query": "q"}, 422),
    ("cohere query not a string", "/v1/rerank", {"query": 5, "documents": DOCS}, 422),
    ("cohere documents a string", "/v1/rerank", {"query": "q", "documents": "doc"}, 422),
    ("cohere document a number", "/v2/rerank", {"query": "q", "documents": [1]}, 422),
    ("cohere document null", "/v2/rerank", {"query": "q", "documents": [None]}, 422),
    ("cohere object without text", "/v1/rerank", {"query": "q", "documents": [{"t": "x"}]}, 422),
    ("cohere top_n zero", "/v1/rerank", {"query": "q", "documents": DOCS, "top_n": 0}, 422),
    ("cohere top_n text", "/v1/rerank", {"query": "q", "documents": DOCS, "top_n": "x"}, 422),
    ("tei texts a string", "/rerank", {"query": "q", "texts": "doc"}, 422),
    (
        "tei left truncation",
        "/rerank",
        {"query": "q", "texts": DOCS, "truncation_direction": "left"},
        422,
    ),
    ("vllm unknown field", "/score", {"text_1": "q", "text_2": DOCS, "n": 1}, 422),
    ("vllm mismatched lists", "/score", {"text_1": ["a", "b", "c"], "text_2": DOCS}, 422),
    ("cohere too many documents", "/v1/rerank", {"query": "q", "documents": ["d"] * 51}, 413),
    ("tei too many texts", "/rerank", {"query": "q", "texts": ["d"] * 51}, 413),
    ("vllm too many pairs", "/score", {"text_1": "q", "text_2": ["d"] * 51}, 413),
    (
        "cohere huge single document",
        "/v1/rerank",
        {"query": "q", "documents": ["a " * 40_000]},
        422,
    ),
    (
        "tei long text with truncate off",
        "/rerank",
        {"query": "q", "texts": ["a " * 2000, "b"], "truncate": False},
        422,
    ),
    ("cohere oversized payload", "/v1/rerank", {"query": "q", "documents": ["a" * 150_000]}, 413),
    ("tei oversized payload", "/rerank", {"query": "q", "texts": ["a" * 150_000]}, 413),
]


def dialect(path: str, body: Any, status: int) -> str:
    if path == "/rerank" and status == 413 and len(json.dumps(body)) > 100_000:
        return "any"  # refused before the body is read, so both TEI's and Cohere's keys
    if path == "/score":
        return "vllm"
    if path == "/rerank" and isinstance(body, dict) and "texts" in body:
        return "tei"
    return "cohere"


def check_shape(kind: str, status: int, body: Any) -> None:
    if kind == "any":
        assert set(body) == {"error", "error_type", "message", "detail"}
    elif kind == "tei":
        assert set(body) == {"error", "error_type"}
        want = {400: "empty", 413: "validation", 422: "validation"}.get(status)
        if want:
            assert body["error_type"] == want
    elif kind == "vllm":
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["code"] == status
    else:
        assert {"message", "detail"} <= set(body)
        assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize(("name", "path", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(fake: httpx.Client, name: str, path: str, body: Any, status: int) -> None:
    r = fake.post(path, json=body)
    assert r.status_code == status, r.text
    check_shape(dialect(path, body, status), status, r.json())
    assert fake.get("/health").status_code == 200


def test_cohere_validation_detail_lists_fields(fake: httpx.Client) -> None:
    body = fake.post("/v2/rerank", json={"query": "q"}).json()
    assert body["detail"] == [{"loc": ["documents"], "msg": "Field required", "type": "missing"}]


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/rerank", "/score"])
def test_invalid_json_is_400(fake: httpx.Client, path: str) -> None:
    r = fake.post(
        path, content=b'{"query": "q", "documents": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.text


def test_body_without_content_length_is_limited(fake: httpx.Client) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        payload = json.dumps({"query": "q", "documents": ["a" * 150_000]}).encode()
        for i in range(0, len(payload), 10_000):
            yield payload[i : i + 10_000]

    r = fake.post("/v1/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert fake.get("/health").status_code == 200


def test_cohere_ignores_unknown_fields(fake: httpx.Client) -> None:
    r = fake.post("/v1/rerank", json={"query": "router", "documents": DOCS, "return_embeddings": 1})
    assert r.status_code == 200
    assert r.headers["x-ignored-fields"] == "return_embeddings"


def test_long_text_is_chunked_by_default(fake: httpx.Client) -> None:
    r = fake.post("/rerank", json={"query": "q", "texts": ["a " * 2000, "b"]})
    assert r.status_code == 200


def test_model_failure_is_500_without_internal_text(fake: httpx.Client) -> None:
    r = fake.post("/v1/rerank", json={"query": "q", "documents": ["poison pill", "fine"]})
    assert r.status_code == 500
    body = r.json()
    assert "non-finite" not in r.text and "NaN" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] in body["message"]
    tei = fake.post("/rerank", json={"query": "q", "texts": ["poison"]})
    assert tei.status_code == 500 and tei.json()["error_type"] == "backend"
    assert fake.get("/health").status_code == 200


def test_unknown_route_and_method(fake: httpx.Client) -> None:
    assert fake.get("/nope").status_code == 404
    assert fake.get("/v1/rerank").status_code == 405


def test_failures_are_counted_by_reason(fake: httpx.Client) -> None:
    fake.post("/v1/rerank", json={"query": "", "documents": DOCS})
    text = fake.get("/metrics").text
    assert 'rankgate_request_failures_total{reason="empty_query"}' in text
