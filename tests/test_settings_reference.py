"""Settings declared once: the options of rankgate serve and rerank, their environment variables
and the docs' tables all come from ServerSettings and RerankerSettings (rankgate.cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from rankgate.cli import app
from rankgate.cli.options import REFERENCE_DOCS, env_var, settings_table, with_reference
from rankgate.config import RerankerSettings
from rankgate.server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[1]


def _params(command_name: str) -> dict[str, Any]:
    command = typer.main.get_command(app)
    return {p.name: p for p in command.commands[command_name].params}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "settings"),
    [("serve", ServerSettings), ("serve", RerankerSettings), ("rerank", RerankerSettings)],
)
def test_every_setting_is_an_option_with_its_environment_variable(
    command: str, settings: type[BaseModel]
) -> None:
    params = _params(command)
    for name, field in settings.model_fields.items():
        assert name in params, f"rankgate {command} has no option for {name}"
        param = params[name]
        assert param.envvar == env_var(settings, name) == f"RANKGATE_{name.upper()}"
        if not (command == "serve" and name == "model"):  # repeatable there, with its own help
            assert field.description and field.description in (param.help or ""), name


def test_every_option_of_every_command_has_an_environment_variable() -> None:
    import click

    def walk(command: click.Command, path: str) -> list[str]:
        missing = [
            f"{path} {p.opts[0]}"
            for p in command.params
            if isinstance(p, click.Option) and not p.envvar and p.name != "help"
        ]
        for name, sub in getattr(command, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    missing = walk(typer.main.get_command(app), "rankgate")
    assert not missing, "options without an environment variable:\n" + "\n".join(missing)


def test_the_docs_tables_are_generated_from_the_settings() -> None:
    from rankgate.learn.finetune import FinetuneOptions

    texts = {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in REFERENCE_DOCS}
    for doc, text in texts.items():
        assert with_reference(text) == text, f"{doc} is stale: run make reference"
    where = {
        ServerSettings: ("README.md", "docs/http-api.md"),
        RerankerSettings: ("README.md", "docs/http-api.md"),
        FinetuneOptions: ("docs/finetuning.md",),
    }
    for settings, docs in where.items():
        for doc in docs:
            assert settings_table(settings) in texts[doc], (doc, settings.__name__)


def test_a_new_setting_reaches_the_table_with_its_default() -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="RANKGATE_")
        wait_s: float = Field(2.0, description="How long.")
        strict: bool = Field(True, description="Refuse.")
        name: str | None = Field(None, description="Who.", json_schema_extra={"flags": ["-n"]})

    table = settings_table(Example)
    assert "| `--wait-s` | `RANKGATE_WAIT_S` | 2 | How long. |" in table
    assert "| `--strict / --no-strict` | `RANKGATE_STRICT` | on | Refuse. |" in table
    assert "| `-n` | `RANKGATE_NAME` | none | Who. |" in table


def test_the_command_line_imports_without_the_server_extra() -> None:
    """Deriving serve's options from ServerSettings must not pull fastapi in: without the
    server extra, every other command (and serve's own clear message) still works."""
    import subprocess
    import sys

    code = (
        "import sys, rankgate.cli; print([m for m in ('fastapi', 'uvicorn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
