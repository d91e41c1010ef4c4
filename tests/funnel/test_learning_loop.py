"""The loop a user follows on examples/: index -> search -> eval -> finetune (with negatives
mined from the index) -> eval -> calibrate -> serve, each step through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rankgate import Reranker
from rankgate.cli import app
from rankgate.learn import read_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str, env: dict[str, str]) -> str:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_the_whole_loop_on_the_examples(
    tiny_model: Path, minilm_path: Path, tmp_path: Path
) -> None:
    env = {"RANKGATE_EMBEDDING_MODEL": str(minilm_path), "RANKGATE_OFFLINE": "1"}
    index = tmp_path / "index"
    _run("index", str(EXAMPLES / "funnel" / "corpus.jsonl"), "--index-dir", str(index), env=env)
    search = ["search", "router admin password", "--index-dir", str(index), "--json"]
    found = json.loads(_run(*search, "--model", str(tiny_model), env=env))
    assert found["candidates"]
    beir = str(EXAMPLES / "funnel" / "beir-mini")
    before = json.loads(_run("eval", beir, "--model", str(tiny_model), "--json", env=env))

    tuned = tmp_path / "tuned"
    finetune = [
        "finetune", str(tiny_model),
        "--train", str(EXAMPLES / "learn" / "train.jsonl"),
        "--dev", str(EXAMPLES / "learn" / "dev.jsonl"),
        "--index-dir", str(index), "--mine-ranks", "3-30", "--negatives", "3",
        "--out", str(tuned), "--max-steps", "4", "--group-size", "4", "--no-progress", "--json",
    ]  # fmt: skip
    summary = json.loads(_run(*finetune, env=env))
    assert summary["steps"] == 4 and summary["mined"]["negatives"] == 90
    mined = read_rows(Path(summary["mined_file"]))
    assert all(len(r.neg) == 3 for r in mined)
    assert Path(summary["chart"]).stat().st_size > 0
    assert summary["dev_before"]["queries"] == summary["dev_after"]["queries"] == 20

    after = json.loads(_run("eval", beir, "--model", str(tuned), "--json", env=env))
    assert set(after["systems"]) == set(before["systems"])

    _run("calibrate", str(tuned), "--labels", str(EXAMPLES / "learn" / "dev.jsonl"), env=env)
    assert (tuned / "rankgate-calibration.json").is_file()
    info = json.loads(_run("info", "--model", str(tuned), "--json", env=env))
    assert info["calibration"] in {"platt", "isotonic"}
    assert Reranker(str(tuned)).info().calibration == info["calibration"]
