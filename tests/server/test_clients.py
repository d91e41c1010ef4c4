"""Real client libraries against a live server on the tiny real model: each gets the library's
ranking.

The clients live in their own environment (.venv-clients, made by scripts/setup-client-env.sh)
and run as a subprocess. Without that environment the test is skipped, except under CI=true,
where a missing client environment fails instead of silently skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from rankgate import Reranker
from rankgate.testing import SAMPLE_TEXT

from .conftest import ROOT, LiveServer

CLIENTS = Path(__file__).parent / "clients"
CLIENT_PY = ROOT / ".venv-clients" / "bin" / "python"
SCRIPT = CLIENTS / "run_clients.py"
MORE_PY = ROOT / ".venv-clients-more" / "bin" / "python"
INFINITY_PY = ROOT / ".venv-clients-infinity" / "bin" / "python"
QUERY = "How do I reset the router password?"
DOCS = SAMPLE_TEXT[:8]
TOP_N = 4
KEY = "test-key"


def client_python(python: Path = CLIENT_PY) -> Path:
    if python.exists():
        return python
    env = python.parents[1].name
    message = f"client environment {env} missing: run scripts/setup-client-env.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def assert_ranking(got: list[list[float]], want: list[tuple[int, float]], name: str) -> None:
    assert [int(i) for i, _ in got] == [i for i, _ in want], name
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4, abs=1e-6), name


def run_clients(
    server: LiveServer, script: Path = SCRIPT, python: Path = CLIENT_PY, **spec: object
) -> dict[str, list[list[float]]]:
    python = client_python(python)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "CO_API_URL": server.url,
    }
    done = subprocess.run(
        [str(python), str(script), server.url, KEY],
        input=json.dumps({"query": QUERY, "documents": DOCS, "top_n": TOP_N, **spec}),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout))


def test_real_clients_get_the_library_ranking(
    model_server: LiveServer, tiny_library: Reranker
) -> None:
    got = run_clients(model_server)
    want = [(r.index, r.score) for r in tiny_library.rerank(QUERY, DOCS, top_n=TOP_N)]
    expected_clients = {
        "cohere_v2",
        "cohere_v1",
        "langchain_cohere",
        "langchain_cohere_compress",
        "llama_index_cohere",
        "llama_index_tei",
    }
    assert set(got) == expected_clients
    for name, ranking in got.items():
        assert_ranking(ranking, want, name)


# Clients that ask for every document (rerankers sends top_n = len(documents)), or whose server
# side ignores top_n (TEI: LiteLLM's huggingface/ sends it, text-embeddings-inference ignores it).
EVERY_DOCUMENT = {"rerankers_cohere", "rerankers_jina", "rerankers_voyage", "rerankers_tei"}
TOP_N_IGNORED = {"litellm_huggingface"}


def test_more_real_clients_get_the_library_ranking(
    model_server: LiveServer, tiny_library: Reranker
) -> None:
    got = run_clients(model_server, CLIENTS / "run_more_clients.py", MORE_PY)
    got.update(run_clients(model_server, CLIENTS / "run_infinity_client.py", INFINITY_PY))
    ranking = [(r.index, r.score) for r in tiny_library.rerank(QUERY, DOCS)]
    expected_clients = {
        "voyageai",
        "xinference_client",
        "dify_xinference",
        *(f"litellm_{p}" for p in ("cohere", "jina_ai", "infinity", "hosted_vllm")),
        "litellm_huggingface",
        "litellm_voyage",
        *EVERY_DOCUMENT,
        *(f"haystack_{r}" for r in ("cohere", "jina", "tei", "vllm")),
        "infinity_client",
    }
    assert set(got) == expected_clients
    for name, returned in got.items():
        if name in EVERY_DOCUMENT:
            assert len(returned) == len(DOCS), name
        elif name in TOP_N_IGNORED:
            assert len(returned) >= TOP_N, name
        else:
            assert len(returned) == TOP_N, name
        assert_ranking(returned, ranking[: len(returned)], name)


def test_open_webui_and_ragflow_requests(model_server: LiveServer, tiny_library: Reranker) -> None:
    """Request replicas, built from the clients' source:

    - Open WebUI's ExternalReranker (open-webui/open-webui @ ab233f82c11b,
      backend/open_webui/retrieval/models/external.py): the full endpoint URL, top_n = every
      document, scores matched to documents by sorting results on index;
    - RAGFlow (infiniflow/ragflow @ b1b8cd623520, rag/llm/rerank_model.py): OpenAI_APIRerank
      (base + "/rerank"), XInferenceRerank ("/v1/rerank", booleans sent as strings), JinaRerank
      (the endpoint verbatim) and LocalAIRerank (urljoin(base, "/rerank"), root-relative).
    """
    scores = {r.index: r.score for r in tiny_library.rerank(QUERY, DOCS)}
    every = [scores[i] for i in range(len(DOCS))]
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    plain = {"model": "reranker", "query": QUERY, "documents": DOCS, "top_n": len(DOCS)}
    cases = {
        "open_webui": ("/v1/rerank", plain),
        "ragflow_openai_api": ("/v1/rerank", {**plain, "model": "bge___OpenAI-API"}),
        "ragflow_xinference": (
            "/v1/rerank",
            {
                "model": "bge-reranker",
                "query": QUERY,
                "return_documents": "true",
                "return_len": "true",
                "documents": DOCS,
            },
        ),
        "ragflow_jina": ("/v1/rerank", plain),
        "ragflow_localai": ("/rerank", plain),
    }
    with httpx.Client(base_url=model_server.url, headers=auth) as c:
        for name, (path, body) in cases.items():
            r = c.post(path, content=json.dumps(body))
            r.raise_for_status()
            results = sorted(r.json()["results"], key=lambda x: x["index"])
            assert [x["index"] for x in results] == list(range(len(DOCS))), name
            got = [x["relevance_score"] for x in results]
            assert got == pytest.approx(every, rel=1e-4, abs=1e-6), name


def test_tei_request_with_httpx(model_server: LiveServer, tiny_library: Reranker) -> None:
    with httpx.Client(base_url=model_server.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        r = c.post(
            "/rerank",
            json={
                "query": QUERY,
                "texts": DOCS,
                "truncate": True,
                "raw_scores": False,
                "return_text": True,
            },
        )
    assert r.status_code == 200
    want = [(x.index, x.score) for x in tiny_library.rerank(QUERY, DOCS)]
    assert_ranking([[x["index"], x["score"]] for x in r.json()], want, "tei-httpx")
    assert all(x["text"] == DOCS[x["index"]] for x in r.json())


def test_real_clients_pick_a_model_of_a_two_model_server(
    serve,  # type: ignore[no-untyped-def]
    tiny_library: Reranker,
    qwen3_dir: Path,
) -> None:
    from rankgate.server import ServerSettings, create_app

    llm = Reranker(str(qwen3_dir), device="cpu")
    app = create_app(ServerSettings(api_keys=[KEY]), {"fast": tiny_library, "llm": llm})
    got = run_clients(serve(app), model="llm")
    want_llm = [(r.index, r.score) for r in llm.rerank(QUERY, DOCS, top_n=TOP_N)]
    want_fast = [(r.index, r.score) for r in tiny_library.rerank(QUERY, DOCS, top_n=TOP_N)]
    for name, ranking in got.items():
        # TEI's client names no model, so the first (default) model answers it.
        assert_ranking(ranking, want_fast if name == "llama_index_tei" else want_llm, name)


def _ragflow_huggingface(base_url: str, query: str, texts: list[str]) -> list[float]:
    """A replica of RAGFlow's HuggingfaceRerank.post (infiniflow/ragflow @ b1b8cd623520,
    rag/llm/rerank_model.py): no Authorization header; ``http://`` added to a bare host;
    ``/rerank`` appended unless the URL already ends with it; batches of 8 texts with
    ``raw_scores: false, truncate: true``; each score placed by its ``index`` within the batch."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"http://{base}"
    endpoint = base if base.endswith("/rerank") else f"{base}/rerank"
    scores = [0.0] * len(texts)
    for start in range(0, len(texts), 8):
        body = {"query": query, "texts": texts[start : start + 8], "raw_scores": False}
        r = httpx.post(
            endpoint,
            headers={"Content-Type": "application/json"},
            json={**body, "truncate": True},
            timeout=30,
        )
        r.raise_for_status()
        for item in r.json():
            scores[item["index"] + start] = item["score"]
    return scores


def test_ragflow_huggingface_provider_on_a_server_without_keys(
    serve,  # type: ignore[no-untyped-def]
    model_server: LiveServer,
    tiny_library: Reranker,
) -> None:
    """RAGFlow's "HuggingFace" (TEI) provider sends no key: it works against a server without
    API keys, whichever of the three URL forms it is given, across its batches of 8; a server
    with keys refuses it with TEI's 401 body instead of a wrong answer."""
    from rankgate.server import ServerSettings, create_app

    docs = SAMPLE_TEXT[:12]
    want = [r.score for r in sorted(tiny_library.rerank(QUERY, docs), key=lambda r: r.index)]
    keyless = serve(create_app(ServerSettings(batch_wait_ms=5), tiny_library))
    host = keyless.url.removeprefix("http://")
    for base in (host, f"{keyless.url}/", f"{keyless.url}/rerank"):
        assert _ragflow_huggingface(base, QUERY, docs) == pytest.approx(want, rel=1e-4, abs=1e-6), (
            base
        )
    with pytest.raises(httpx.HTTPStatusError) as refused:
        _ragflow_huggingface(model_server.url, QUERY, docs)
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error_type"] == "unauthorized"
