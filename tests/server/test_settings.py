"""Server settings: each option is a flag and a RANKGATE_* variable; bad values are ConfigErrors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from rankgate.cli.serve import serve
from rankgate.errors import ConfigError
from rankgate.server import ServerSettings, build_server_settings

from .conftest import ROOT, free_port


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve)
    app.command("noop")(lambda: None)  # two commands, so "serve" is a subcommand as in rankgate
    return app


def test_environment_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKGATE_API_KEYS", "alpha, beta,")
    monkeypatch.setenv("RANKGATE_PORT", "9001")
    monkeypatch.setenv("RANKGATE_MAX_DOCUMENTS", "7")
    s = build_server_settings(max_documents=9)
    assert s.api_keys == ["alpha", "beta"]
    assert s.port == 9001
    assert s.max_documents == 9  # explicit beats the environment
    assert s.cache_size == 0  # off unless asked for


@pytest.mark.parametrize(
    ("given", "size"),
    [("268435456", 1 << 28), ("256MiB", 1 << 28), ("1GB", 10**9), ("1.5 gib", 3 << 29), ("0", 0)],
)
def test_cache_size_takes_bytes_or_a_unit(
    monkeypatch: pytest.MonkeyPatch, given: str, size: int
) -> None:
    monkeypatch.setenv("RANKGATE_CACHE_SIZE", given)
    assert build_server_settings().cache_size == size
    assert build_server_settings(cache_size="64KiB").cache_size == 65536


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"port": 70000}, "port"),
        ({"batch_wait_ms": -1}, "batch_wait_ms"),
        ({"max_request_tokens": 10, "max_queue_tokens": 5}, "max_queue_tokens"),
        ({"cache_size": "lots"}, "cache_size: .*'lots' is not a size"),
        ({"cache_size": "512M"}, "cache_size: .*write MB or MiB"),
        ({"cache_size": "-1GB"}, "cache_size"),
        ({"cache_size": 256}, "cache_size: .*too small"),
    ],
)
def test_invalid_settings_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_server_settings(**overrides)


def test_help_documents_every_setting_and_its_variable() -> None:
    result = CliRunner().invoke(cli(), ["serve", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for name in ServerSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in result.output, name
        assert f"RANKGATE_{name.upper()}" in result.output, name


def test_bad_flag_value_exits_2_before_loading_a_model() -> None:
    result = CliRunner().invoke(cli(), ["serve", "--port", "70000"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_serve_command_loads_the_model_and_drains_on_sigterm(tiny_model_dir: Path) -> None:
    port = free_port()
    code = (
        "import sys, typer; from rankgate.cli.serve import serve; a = typer.Typer(); "
        "a.command()(serve); a.command('noop')(lambda: None); a(sys.argv[1:])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RANKGATE_API_KEYS": "k"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--model",
            str(tiny_model_dir),
            "--port",
            str(port),
            "--device",
            "cpu",
            "--max-length",
            "128",
            "--log-level",
            "warning",
        ],
        env=env,
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
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        info = httpx.get(f"{url}/info", headers={"Authorization": "Bearer k"}).json()
        assert info["model_id"] == str(tiny_model_dir)
        assert info["max_input_length"] == 128
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_http_api_doc_has_every_setting() -> None:
    doc = (ROOT / "docs" / "http-api.md").read_text()
    for name in ServerSettings.model_fields:
        assert f"`--{name.replace('_', '-')}" in doc, name
        assert f"`RANKGATE_{name.upper()}`" in doc, name
