"""score-batch on a local Ray: equals the library's scores, and resumes after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rankgate import Reranker
from rankgate.config import RerankerSettings
from rankgate.ray import BatchSettings, score_batch
from rankgate.testing import SAMPLE_TEXT

from .conftest import tiny_settings

ROOT = Path(__file__).resolve().parents[3]


def make_pairs(n: int) -> list[dict[str, str]]:
    """Deterministic pairs from the multilingual sample text, of varied lengths."""
    rows = []
    for i in range(n):
        query = SAMPLE_TEXT[i % 7].split("?")[0][: 20 + i % 40]
        doc = " ".join(SAMPLE_TEXT[(i * 3 + k) % len(SAMPLE_TEXT)] for k in range(1 + i % 3))
        rows.append({"id": f"pair-{i}", "query": query, "text": doc[: 40 + (i * 7) % 300]})
    return rows


def library_scores(library: Reranker, rows: list[dict[str, str]]) -> list[float]:
    return library.compute_score([(r["query"], r["text"]) for r in rows])


def test_scores_equal_the_library(
    ray_cluster: str, tiny_model: Path, tiny_library: Reranker, tmp_path: Path
) -> None:
    rows = make_pairs(3000)
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    seen: list[tuple[int, int]] = []
    report = score_batch(
        source,
        tmp_path / "scores.jsonl",
        model_settings=RerankerSettings(**tiny_settings(tiny_model)),
        batch_settings=BatchSettings(actors=2, batch_size=64, shard_rows=500),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (report.rows, report.shards, report.scored_shards) == (3000, 6, 6)
    assert seen[-1] == (3000, 3000)
    out = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == [r["id"] for r in rows]
    assert [o["row"] for o in out] == list(range(3000))
    want = library_scores(tiny_library, rows)
    assert [o["score"] for o in out] == pytest.approx(want, rel=1e-4, abs=5e-5)
    normalized = tiny_library.compute_score([(r["query"], r["text"]) for r in rows], normalize=True)
    assert [o["normalized_score"] for o in out] == pytest.approx(normalized, rel=1e-4, abs=2e-5)


def test_killed_halfway_resumes_without_rescoring(
    ray_cluster: str, tiny_model: Path, tiny_library: Reranker, tmp_path: Path
) -> None:
    rows = make_pairs(4000)
    source = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    target = tmp_path / "scores.parquet"
    parts = tmp_path / "scores.parquet.parts"
    settings = tiny_settings(tiny_model)
    command = [
        sys.executable,
        "-m",
        "rankgate.cli.ray_commands",
        "score-batch",
        str(source),
        str(target),
        "--address",
        ray_cluster,
        "--actors",
        "1",
        "--batch-size",
        "1",  # one pair per forward pass keeps the run long enough to kill in the middle
        "--shard-rows",
        "100",
        "--no-progress",
        "--model",
        settings["model"],
        "--device",
        "cpu",
        "--max-length",
        str(settings["max_length"]),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while len(list(parts.glob("part-*.parquet"))) < 2:
        assert job.poll() is None, job.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no parts written in time"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait(30)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in parts.glob("part-*")}
    assert 2 <= len(before) < 40, f"{len(before)} of 40 parts: not killed halfway"
    assert not target.exists()

    report = score_batch(
        source,
        target,
        model_settings=RerankerSettings(**settings),
        batch_settings=BatchSettings(actors=1, batch_size=64, shard_rows=100),
        address=ray_cluster,
    )
    assert report.skipped_shards == len(before)
    assert report.scored_shards == 40 - len(before)
    for name, stat in before.items():  # finished parts were neither rewritten nor replaced
        path = parts / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stat, name
    out = pq.read_table(target)
    assert out.column("id").to_pylist() == [r["id"] for r in rows]
    want = library_scores(tiny_library, rows)
    assert out.column("score").to_pylist() == pytest.approx(want, rel=1e-4, abs=5e-5)
    assert not list(tmp_path.glob("**/.*.tmp-*")), "a temporary part was left behind"
