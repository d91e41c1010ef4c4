"""Decoder rerankers over HTTP: every dialect answers the library's scores, instructions included,
and a cross-encoder refuses an instruction with a 422 in the dialect's shape."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rankgate import Reranker
from rankgate.server import ServerSettings, create_app
from rankgate.server.protocol.errors import CohereError, TEIError, VLLMError

from .conftest import LiveServer, free_port, parse_metric

QUERY = "how do I reset the router password?"
DOCS = [
    "Hold the reset button for ten seconds, then log in again.",
    "The router has four gigabit ports.",
    "长按复位键十秒钟恢复出厂设置。",
]
INSTRUCTION = "Find the passage that gives the steps"


@pytest.fixture(scope="module")
def qwen3_library(qwen3_dir: Path) -> Reranker:
    return Reranker(str(qwen3_dir), device="cpu")


@pytest.fixture(scope="module")
def qwen3_server(serve, qwen3_library: Reranker) -> LiveServer:  # type: ignore[no-untyped-def]
    return serve(create_app(ServerSettings(batch_wait_ms=2), qwen3_library))


def by_index(results: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in sorted(results, key=lambda r: r["index"])]


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_every_dialect_answers_the_library_scores(
    qwen3_server: LiveServer, qwen3_library: Reranker, instruction: str | None
) -> None:
    pairs = [(QUERY, d) for d in DOCS]
    expected = qwen3_library.compute_score(pairs, normalize=True, instruction=instruction)
    extra = {"instruction": instruction} if instruction else {}
    with qwen3_server.client() as c:
        for path in ("/v1/rerank", "/v2/rerank"):
            r = c.post(path, json={"query": QUERY, "documents": DOCS, **extra})
            assert r.status_code == 200, r.text
            got = by_index(r.json()["results"], "relevance_score")
            assert got == pytest.approx(expected, abs=1e-5), path
        r = c.post("/rerank", json={"query": QUERY, "texts": DOCS, **extra})
        assert by_index(r.json(), "score") == pytest.approx(expected, abs=1e-5)
        r = c.post("/score", json={"text_1": QUERY, "text_2": DOCS, **extra})
        assert [d["score"] for d in r.json()["data"]] == pytest.approx(expected, abs=1e-5)
        r = c.get("/info")
        assert r.json()["rankgate"]["backend"] == "torch"
        metrics = c.get("/metrics").text
    saved = parse_metric(metrics, "rankgate_shared_prefix_tokens_saved")
    assert saved > 0  # each request's documents shared its prompt and query


def test_an_instruction_moves_the_scores_over_http(qwen3_server: LiveServer) -> None:
    with qwen3_server.client() as c:
        plain = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True})
        told = c.post(
            "/rerank",
            json={"query": QUERY, "texts": DOCS, "raw_scores": True, "instruction": INSTRUCTION},
        )
    assert by_index(plain.json(), "score") != pytest.approx(by_index(told.json(), "score"))


def test_a_cross_encoder_refuses_an_instruction_in_every_dialect(model_server: LiveServer) -> None:
    auth = {"Authorization": "Bearer test-key"}
    cases = [
        ("/v1/rerank", {"query": QUERY, "documents": DOCS}, CohereError),
        ("/v2/rerank", {"query": QUERY, "documents": DOCS}, CohereError),
        ("/rerank", {"query": QUERY, "texts": DOCS}, TEIError),
        ("/score", {"text_1": QUERY, "text_2": DOCS}, VLLMError),
    ]
    with model_server.client(headers=auth) as c:
        for path, body, shape in cases:
            r = c.post(path, json={**body, "instruction": INSTRUCTION})
            assert r.status_code == 422, (path, r.text)
            shape.model_validate(r.json())
            assert "no instruction slot" in r.text


@pytest.mark.slow
def test_rankgate_serve_runs_a_gemma_style_directory(gemma_dir: Path) -> None:
    port = free_port()
    code = (
        "import sys, typer; from rankgate.cli.serve import serve; a = typer.Typer(); "
        "a.command()(serve); a.command('noop')(lambda: None); a(sys.argv[1:])"
    )
    args = ["serve", "--model", str(gemma_dir), "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--log-level", "warning"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        body = {"query": QUERY, "documents": DOCS, "instruction": "Is B an answer to A?"}
        r = httpx.post(f"{url}/v2/rerank", json=body, timeout=30)
        assert r.status_code == 200, r.text
        library = Reranker(str(gemma_dir), device="cpu")
        expected = library.compute_score(
            [(QUERY, d) for d in DOCS], normalize=True, instruction="Is B an answer to A?"
        )
        assert by_index(r.json()["results"], "relevance_score") == pytest.approx(expected, abs=1e-5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
