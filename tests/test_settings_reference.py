"""Settings declared once: every command's options, their environment variables and the docs'
tables come from the settings classes (rankgate.cli.options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel
from typer.testing import CliRunner

from rankgate.backends.onnx_export import ExportSettings
from rankgate.cli import app
from rankgate.cli.demo_settings import DemoSettings, HealthReportSettings
from rankgate.cli.options import REFERENCE_DOCS, env_var, settings_table, with_reference
from rankgate.config import RerankerSettings
from rankgate.funnel.settings import EvalSettings, FunnelSettings
from rankgate.learn.finetune import FinetuneJob, FinetuneOptions
from rankgate.ray.settings import BatchSettings, RaySettings
from rankgate.server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[1]
# --help and --version act before any setting is read; typer's own completion options too.
_EXEMPT = {"help", "version", "install_completion", "show_completion"}

_INDEX = (
    "index_dir",
    "embedding_model",
    "embedding_device",
    "embedding_batch_size",
    "passage_words",
    "passage_overlap",
    "prune",
    "milvus_uri",
    "milvus_token",
    "milvus_collection",
)
_SEARCH = tuple(n for n in FunnelSettings.model_fields if n not in _INDEX[4:7])
_EVAL = (
    "embedding_model",
    "embedding_device",
    "embedding_batch_size",
    "passage_words",
    "passage_overlap",
    "rrf_k",
    "retrieve_top_k",
    "template",
    "templates_file",
)
# (command, settings class, the fields it offers; None: every field)
DERIVED: list[tuple[str, type[BaseModel], tuple[str, ...] | None]] = [
    ("serve", ServerSettings, None),
    ("serve", RerankerSettings, None),
    ("serve", RaySettings, None),
    ("rerank", RerankerSettings, None),
    ("index", FunnelSettings, _INDEX),
    ("search", FunnelSettings, _SEARCH),
    ("templates", FunnelSettings, ("templates_file",)),
    ("eval", FunnelSettings, _EVAL),
    ("eval", EvalSettings, None),
    ("score-batch", BatchSettings, None),
    ("score-batch", RaySettings, ("address",)),
    ("export", ExportSettings, None),
    ("finetune", FinetuneJob, None),
    ("finetune", FinetuneOptions, None),
    ("finetune", FunnelSettings, ("embedding_model",)),
    ("health", HealthReportSettings, None),
    ("demo", DemoSettings, ("lang", "chart", "explain")),
    ("demo trap", DemoSettings, ("lang", "scenario", "chart", "no_chart", "top")),
]


def _command(path: str) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return command


def _params(command_name: str) -> dict[str, Any]:
    return {p.name: p for p in _command(command_name).params}


@pytest.mark.parametrize(
    ("command", "settings", "names"),
    DERIVED,
    ids=[f"{c}-{s.__name__}" for c, s, _ in DERIVED],
)
def test_every_setting_is_an_option_with_its_environment_variable(
    command: str, settings: type[BaseModel], names: tuple[str, ...] | None
) -> None:
    params = _params(command)
    for name in names or settings.model_fields:
        field = settings.model_fields[name]
        assert name in params, f"rankgate {command} has no option for {name}"
        param = params[name]
        assert param.envvar == env_var(settings, name), (command, name)
        assert param.envvar.startswith("RANKGATE_")
        if not (command == "serve" and name == "model"):  # repeatable there, with its own help
            assert field.description and field.description in (param.help or ""), name


def test_every_funnel_setting_is_an_option_of_index_or_search() -> None:
    assert set(_INDEX) | set(_SEARCH) == set(FunnelSettings.model_fields)


def test_classes_sharing_a_prefix_share_no_name() -> None:
    # FinetuneOptions and FinetuneJob are both RANKGATE_FINETUNE_*.
    assert not set(FinetuneOptions.model_fields) & set(FinetuneJob.model_fields)


def test_one_variable_means_one_thing_across_commands() -> None:
    meanings: dict[str, dict[str, list[str]]] = {}

    def walk(command: Any, path: str) -> None:
        for p in command.params:
            if p.param_type_name == "option" and p.envvar:
                meanings.setdefault(p.envvar, {}).setdefault(p.help, []).append(
                    f"{path} {p.opts[0]}"
                )
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "rankgate")
    # Declared twice on purpose: serve's --model repeats; rerank's --json writes JSON Lines.
    allowed = {"RANKGATE_MODEL", "RANKGATE_JSON"}
    shared = {var: helps for var, helps in meanings.items() if len(helps) > 1}
    assert set(shared) <= allowed, shared


def test_every_option_of_every_command_has_an_environment_variable() -> None:
    # typer vendors its own click, so its options are no click.Option: ask the parameter.
    def walk(command: Any, path: str) -> list[str]:
        missing = [
            f"{path} {p.opts[0]}"
            for p in command.params
            if p.param_type_name == "option" and not p.envvar and p.name not in _EXEMPT
        ]
        for name, sub in getattr(command, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    missing = walk(typer.main.get_command(app), "rankgate")
    assert not missing, "options without an environment variable:\n" + "\n".join(missing)


def test_the_docs_tables_are_generated_from_the_settings() -> None:
    texts = {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in REFERENCE_DOCS}
    for doc, text in texts.items():
        assert with_reference(text) == text, f"{doc} is stale: run make reference"
    where = {
        ServerSettings: ("README.md", "docs/http-api.md"),
        RerankerSettings: ("README.md", "docs/http-api.md"),
        FinetuneOptions: ("docs/finetuning.md",),
        FinetuneJob: ("docs/finetuning.md",),
        FunnelSettings: ("docs/funnel.md",),
        EvalSettings: ("docs/funnel.md",),
        RaySettings: ("docs/ray.md",),
        BatchSettings: ("docs/ray.md",),
        ExportSettings: ("README.md",),
        DemoSettings: ("docs/insight.md",),
        HealthReportSettings: ("docs/insight.md",),
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


def test_a_funnel_variable_takes_effect() -> None:
    runner = CliRunner()
    templates = str(ROOT / "examples" / "funnel" / "templates.toml")
    out = runner.invoke(
        app, ["templates"], env={"RANKGATE_TEMPLATES_FILE": templates, "RANKGATE_JSON": "1"}
    )
    assert out.exit_code == 0, out.output
    assert "support@2" in {f"{t['name']}@{t['version']}" for t in json.loads(out.output)}

    without = runner.invoke(app, ["templates", "--json"])
    assert "support@2" not in without.output


def test_an_export_variable_takes_effect(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["export", "some-model"], env={"RANKGATE_EXPORT_OUT": str(taken)}
    )
    assert result.exit_code == 2
    assert "out:" in result.output and "is a file, not a directory" in result.output


def test_a_health_report_variable_takes_effect(tmp_path: Path) -> None:
    log = tmp_path / "ranking.jsonl"
    lines = [{"ts": 1000 + i, "scores": [0.9, 0.5, 0.05]} for i in range(30)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    env = {"RANKGATE_HEALTH_REPORT_LOG": str(log), "RANKGATE_HEALTH_REPORT_NO_CHART": "true"}
    result = CliRunner().invoke(app, ["health"], env=env)
    assert "over the last 30 reranks" in result.output, result.output
    assert result.exit_code == 1  # the log's displacement alerts; no chart was asked for
    assert "chart:" not in result.output
