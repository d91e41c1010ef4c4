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

CLIENT_PY = ROOT / ".venv-clients" / "bin" / "python"
SCRIPT = Path(__file__).parent / "clients" / "run_clients.py"
QUERY = "How do I reset the router password?"
DOCS = SAMPLE_TEXT[:8]
TOP_N = 4
KEY = "test-key"


def client_python() -> Path:
    if CLIENT_PY.exists():
        return CLIENT_PY
    message = "client environment missing: run scripts/setup-client-env.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def assert_ranking(got: list[list[float]], want: list[tuple[int, float]], name: str) -> None:
    assert [int(i) for i, _ in got] == [i for i, _ in want], name
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4, abs=1e-6), name


def run_clients(server: LiveServer, **spec: object) -> dict[str, list[list[float]]]:
    python = client_python()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "CO_API_URL": server.url,
    }
    done = subprocess.run(
        [str(python), str(SCRIPT), server.url, KEY],
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
