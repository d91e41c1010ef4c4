"""``rankgate demo``, ``demo trap`` and ``health`` on the tiny random model, offline.

The commands are mounted on a local Typer app as ``rankgate.cli`` mounts them, so these tests
do not depend on the registration order of other commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rankgate.cli.demo_commands import demo_app, health

PNG = b"\x89PNG\r\n\x1a\n"

app = typer.Typer()
app.add_typer(demo_app, name="demo")
app.command()(health)


@app.callback()
def _root() -> None:
    """rankgate, as far as these tests need it."""


runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_prints_banner_scores_and_order(tiny_model: Path, tmp_path: Path) -> None:
    chart = tmp_path / "demo.png"
    out = invoke("demo", "--lang", "zh", "-m", str(tiny_model), "--chart", str(chart))
    assert "model loaded | model: " in out and "device: cpu" in out
    assert "dtype: float32 | FP16: off | load time:" in out
    assert "如何重置华为路由器管理员密码？" in out
    assert out.count("-> score: ") == 3
    assert "reranked order: [" in out and "expected best: A" in out
    assert chart.read_bytes().startswith(PNG)


def test_demo_trap_in_japanese(tiny_model: Path, tmp_path: Path) -> None:
    chart = tmp_path / "trap.png"
    out = invoke("demo", "trap", "--lang", "ja", "-m", str(tiny_model), "--chart", str(chart))
    assert "テスラ・モデルYは冬に航続距離が大きく落ちますか？" in out
    assert "retrieval order" in out and "reranked order" in out
    assert "expected best: C" in out and "expected worst: B" in out
    assert "logit:" in out  # the sentences that moved each score
    assert f"chart: {chart}" in out and chart.read_bytes().startswith(PNG)


def test_demo_trap_default_chart_and_cross_lingual(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = invoke("demo", "trap", "-s", "sony-xm5-vs-xm4", "-l", "zh-en", "-m", str(tiny_model))
    assert "索尼WH-1000XM5" in out and "adaptive sound control" in out
    assert (tmp_path / "rankgate-sony-xm5-vs-xm4-zh-en.png").read_bytes().startswith(PNG)


def test_unknown_language_exits_2_with_choices(tiny_model: Path) -> None:
    result = runner.invoke(app, ["demo", "trap", "--lang", "xx", "-m", str(tiny_model)])
    assert result.exit_code == 2 and "zh-en" in result.output


def test_demo_list() -> None:
    out = invoke("demo", "list")
    assert "tesla-winter-range" in out and "ko" in out


def test_health_from_a_request_log(tmp_path: Path) -> None:
    log = tmp_path / "ranking.jsonl"
    lines = [{"ts": 1000 + i, "scores": [0.9, 0.5, 0.05]} for i in range(30)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    chart = tmp_path / "health.png"
    result = runner.invoke(app, ["health", "--log", str(log), "--chart", str(chart)])
    out = result.output
    assert "over the last 30 reranks" in out
    assert "0.0%" in out and "0.400" in out and "33.3%" in out  # rate, gap, low share
    assert "rerank 20: displacement crossed" in out  # min_requests is 20 by default
    assert result.exit_code == 1  # an alert: a check or a cron job sees it
    assert chart.read_bytes().startswith(PNG)


def test_health_exits_0_when_every_metric_is_healthy(tmp_path: Path) -> None:
    log = tmp_path / "ranking.jsonl"
    # a third of the reranks change the top document; the best stands clear of the second
    scores = ([0.4, 0.95, 0.3], [0.95, 0.4, 0.3], [0.95, 0.3, 0.4])
    lines = [{"ts": 1000 + i, "scores": scores[i % 3]} for i in range(30)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = invoke("health", "--log", str(log), "--no-chart")  # asserts exit 0
    assert "crossed" not in out


def test_health_needs_one_source() -> None:
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 2 and "--log" in result.output


def test_health_from_a_running_server(live_url: str, tmp_path: Path) -> None:
    import httpx

    for docs in (["x y", "router password"], ["router password", "x"]):
        httpx.post(f"{live_url}/v1/rerank", json={"query": "router password", "documents": docs})
    out = invoke("health", "--url", live_url, "--chart", str(tmp_path / "h.png"))
    assert "over the last 2 reranks" in out and "50.0%" in out
    assert (tmp_path / "h.png").read_bytes().startswith(PNG)


def test_health_sends_the_client_key_of_its_flag_or_variable(keyed_url: str) -> None:
    import httpx

    from tests.insight.conftest import API_KEY

    headers = {"Authorization": f"Bearer {API_KEY}"}
    for docs in (["x y", "router password"], ["router password", "x"]):
        body = {"query": "router password", "documents": docs}
        httpx.post(f"{keyed_url}/v1/rerank", json=body, headers=headers).raise_for_status()
    refused = runner.invoke(app, ["health", "--url", keyed_url, "--no-chart"])
    assert refused.exit_code == 2 and "401" in refused.output, refused.output
    flag = ["health", "--url", keyed_url, "--no-chart", "--api-key", API_KEY]
    assert "over the last 2 reranks" in invoke(*flag)
    by_variable = runner.invoke(
        app, ["health", "--url", keyed_url, "--no-chart"], env={"RANKGATE_API_KEY": API_KEY}
    )
    assert by_variable.exit_code == 0 and "over the last 2 reranks" in by_variable.output
