"""The ``rankgate`` command, run as a user runs it (subprocess) and in-process for the details."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rankgate import Reranker
from rankgate.cli import app
from rankgate.cli.rerank import read_documents

runner = CliRunner()


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rankgate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.mark.slow
def test_rerank_local_model_prints_ranked_table(tiny_model: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("Router specifications\n\nHow to reset the admin password\nWAN port FAQ\n")
    out = run_cli("rerank", "-q", "reset router password", str(docs), "-m", str(tiny_model))
    assert out.returncode == 0, out.stderr
    assert "How to reset the admin password" in out.stdout
    assert "rank" in out.stdout and "score" in out.stdout
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_rerank_json_from_stdin_matches_library(tiny_model: Path, reranker) -> None:
    lines = [
        {"text": "Huawei router password reset", "id": "a"},
        {"text": "WAN port", "id": "b"},
        {"text": "路由器管理员密码", "id": "c", "source": "forum"},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    out = run_cli(
        "rerank",
        "-q",
        "reset router password",
        "--json",
        "-n",
        "2",
        stdin=stdin,
        env={"RANKGATE_MODEL": str(tiny_model)},
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    expected = reranker.rerank("reset router password", lines, top_n=2)
    assert [r["index"] for r in rows] == [e.index for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e.score for e in expected], abs=1e-6)
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["document"] == lines[expected[0].index]  # metadata kept


@pytest.mark.slow
def test_missing_weights_offline_is_a_clear_error(tmp_path: Path) -> None:
    out = run_cli(
        "rerank",
        "-q",
        "hello",
        stdin="a document\n",
        env={"HF_HOME": str(tmp_path / "hf"), "RANKGATE_MODEL": "BAAI/bge-reranker-v2-m3"},
    )
    assert out.returncode == 3
    assert "Traceback" not in out.stderr
    assert "rankgate download BAAI/bge-reranker-v2-m3" in out.stderr
    assert out.stdout == ""


@pytest.mark.slow
def test_info_json(tiny_model: Path) -> None:
    out = run_cli("info", "--json", "-m", str(tiny_model), "--max-length", "128")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["max_length"] == 128 and info["parameters"] > 10_000


def test_help_documents_env_vars() -> None:
    result = runner.invoke(app, ["rerank", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for var in (
        "RANKGATE_MODEL",
        "RANKGATE_DEVICE",
        "RANKGATE_DTYPE",
        "RANKGATE_MAX_LENGTH",
        "RANKGATE_LONG_DOCUMENTS",
        "RANKGATE_BATCH_TOKENS",
        "RANKGATE_OFFLINE",
    ):
        assert var in result.output


def test_bad_inputs_exit_2_without_traceback(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n[1, 2]\n')
    cases = [
        ["rerank", "-q", "q", str(bad), "-m", str(tiny_model)],
        ["rerank", "-q", "q", str(tmp_path / "missing.txt"), "-m", str(tiny_model)],
        ["rerank", "-q", "  ", str(bad), "-m", str(tiny_model), "--format", "lines"],
        ["rerank", "-q", "q", str(bad), "-m", str(tiny_model), "--format", "xml"],
        ["rerank", "-q", "q", str(bad), "-m", str(tiny_model), "--long-documents", "squash"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_read_documents_formats() -> None:
    from io import StringIO

    assert read_documents(StringIO("a\n\nb\n"), "auto") == ["a", "b"]
    assert read_documents(StringIO('{"text": "a", "k": 1}\n'), "auto") == [{"text": "a", "k": 1}]
    assert read_documents(StringIO('{"text": "a"}\n'), "lines") == ['{"text": "a"}']


@pytest.mark.parametrize(
    "command", ["rerank", "info", "download", "serve", "bench", "bench-server"]
)
def test_every_option_is_an_env_var(command: str) -> None:
    import typer.main

    group = typer.main.get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    for param in cmd.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.envvar and str(param.envvar).startswith("RANKGATE_"), param.name


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen3_dir", "gemma_dir"])
def test_rerank_runs_an_llm_reranker_directory(family: str, request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue(family)
    docs = ["Hold the reset button for ten seconds.", "WAN port settings", "路由器管理员密码"]
    instruction = "Find the passage with the steps"
    out = run_cli(
        "rerank",
        "--model",
        str(model_dir),
        "-q",
        "reset router password",
        "--instruction",
        instruction,
        "--json",
        stdin="\n".join(docs) + "\n",
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    library = Reranker(str(model_dir), device="cpu")
    expected = library.rerank("reset router password", docs, instruction=instruction)
    assert [r["index"] for r in rows] == [e.index for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e.score for e in expected], abs=1e-6)
    info = run_cli("info", "--model", str(model_dir), "--json")
    assert json.loads(info.stdout)["recipe"] in {"qwen3", "bge-gemma"}


@pytest.mark.slow
def test_rerank_refuses_an_instruction_for_a_cross_encoder(tiny_model: Path) -> None:
    out = run_cli("rerank", "--model", str(tiny_model), "-q", "q", "-i", "x", stdin="a document\n")
    assert out.returncode == 2
    assert "no instruction slot" in out.stderr
