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
from rankgate.bench.settings import BenchServerSettings, BenchSettings
from rankgate.cli import app
from rankgate.cli.calibrate_settings import CalibrateSettings
from rankgate.cli.command_settings import (
    DownloadSettings,
    OutputSettings,
    SearchOutputSettings,
    ServeCommandSettings,
)
from rankgate.cli.demo_settings import DemoSettings, HealthReportSettings
from rankgate.cli.options import (
    REFERENCE_DOCS,
    _settings_classes,
    env_var,
    flags,
    settings_table,
    with_reference,
)
from rankgate.cli.rerank_settings import RerankCallSettings
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
    ("serve", ServeCommandSettings, None),
    ("serve", RerankerSettings, tuple(n for n in RerankerSettings.model_fields if n != "model")),
    ("serve", RaySettings, None),
    ("rerank", RerankerSettings, None),
    ("rerank", RerankCallSettings, None),
    ("index", FunnelSettings, _INDEX),
    ("search", FunnelSettings, _SEARCH),
    ("search", SearchOutputSettings, None),
    ("download", DownloadSettings, None),
    ("download", RerankerSettings, ("revision", "cache_dir")),
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
    ("bench", BenchSettings, None),
    ("bench-server", BenchServerSettings, None),
    ("calibrate", CalibrateSettings, None),
] + [
    (command, OutputSettings, None)
    for command in ("rerank", "info", "search", "templates", "eval", "finetune", "calibrate")
]

# The variables these commands read before their options were derived, by flag: a user's
# environment keeps working (bench-server's --docs and --duration are not bench's names).
KEPT_VARIABLES = {
    "rerank": {
        "--query": "RANKGATE_QUERY",
        "--top-n": "RANKGATE_TOP_N",
        "--json": "RANKGATE_JSON",
        "--raw-scores": "RANKGATE_RAW_SCORES",
        "--rank-field": "RANKGATE_RANK_FIELDS",
        "--format": "RANKGATE_FORMAT",
        "--instruction": "RANKGATE_INSTRUCTION",
    },
    "bench": {
        "--docs": "RANKGATE_BENCH_DOCS",
        "--repeats": "RANKGATE_BENCH_REPEATS",
        "--peers": "RANKGATE_BENCH_PEERS",
        "--llm": "RANKGATE_BENCH_LLM",
        "--model-dir": "RANKGATE_BENCH_MODEL_DIR",
        "--tiny": "RANKGATE_BENCH_TINY",
        "--short": "RANKGATE_BENCH_SHORT",
        "--spread": "RANKGATE_BENCH_SPREAD",
        "--threads": "RANKGATE_BENCH_THREADS",
        "--device": "RANKGATE_BENCH_DEVICE",
        "--flag-python": "RANKGATE_BENCH_FLAG_PYTHON",
        "--st-onnx-python": "RANKGATE_BENCH_ST_ONNX_PYTHON",
        "--out": "RANKGATE_BENCH_OUT",
    },
    "calibrate": {
        "--labels": "RANKGATE_CALIBRATE_LABELS",
        "--out": "RANKGATE_CALIBRATE_OUT",
        "--plot": "RANKGATE_CALIBRATE_PLOT",
        "--precision": "RANKGATE_CALIBRATE_PRECISION",
        "--recall": "RANKGATE_CALIBRATE_RECALL",
        "--folds": "RANKGATE_CALIBRATE_FOLDS",
        "--bins": "RANKGATE_CALIBRATE_BINS",
        "--json": "RANKGATE_JSON",
    },
    "bench-server": {
        "--docs": "RANKGATE_BENCH_SERVER_DOCS",
        "--clients": "RANKGATE_BENCH_CLIENTS",
        "--duration": "RANKGATE_BENCH_DURATION_S",
        "--max-requests": "RANKGATE_BENCH_MAX_REQUESTS",
        "--servers": "RANKGATE_BENCH_SERVERS",
        "--infinity-bin": "RANKGATE_BENCH_INFINITY_BIN",
        "--repeat-share": "RANKGATE_BENCH_REPEAT_SHARE",
        "--cache-size": "RANKGATE_BENCH_CACHE_SIZE",
        "--model-dir": "RANKGATE_BENCH_MODEL_DIR",
        "--tiny": "RANKGATE_BENCH_TINY",
        "--short": "RANKGATE_BENCH_SHORT",
        "--spread": "RANKGATE_BENCH_SPREAD",
        "--threads": "RANKGATE_BENCH_THREADS",
        "--out": "RANKGATE_BENCH_OUT",
    },
}


def _command(path: str) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return command


def _names(model: type[BaseModel], name: str) -> list[str]:
    """A setting's option names as click lists them (``--a/--no-a`` is two)."""
    return [f for names in flags(model, name) for f in names.split("/")]


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
        assert field.description and field.description in (param.help or ""), name
        assert param.opts + param.secondary_opts == _names(settings, name), (command, name)


@pytest.mark.parametrize("command", list(KEPT_VARIABLES))
def test_derived_options_keep_their_flags_and_variables(command: str) -> None:
    loads = command in ("rerank", "calibrate")
    ours = set(RerankerSettings.model_fields) if loads else set()
    options = {
        p.opts[0]: p
        for p in _command(command).params
        if p.param_type_name == "option" and p.name not in _EXEMPT | ours
    }
    assert {flag: p.envvar for flag, p in options.items()} == KEPT_VARIABLES[command]
    short = {p.opts[0]: p.opts[1:] for p in options.values() if p.opts[1:]}
    if command == "rerank":
        assert short == {"--query": ["-q"], "--top-n": ["-n"], "--instruction": ["-i"]}
        assert options["--query"].required
    elif command == "calibrate":
        assert short == {"--labels": ["-l"], "--out": ["-o"]}
    else:
        assert short == {}
    # Switches stay what they were: --json and --raw-scores have no --no- form; bench's have.
    negated = {flag for flag, p in options.items() if p.secondary_opts}
    expected = {"bench": {"--llm", "--tiny", "--short"}, "bench-server": {"--tiny", "--short"}}
    assert negated == expected.get(command, set())


def test_bench_defaults_and_bounds_are_the_settings() -> None:
    bench, server = BenchSettings(), BenchServerSettings()
    assert (bench.docs, bench.repeats, bench.threads, bench.device) == ("10,50", 2, 2, "cpu")
    assert (server.server_docs, server.clients, server.duration_s) == (8, "1,8,32", 60.0)
    assert (server.servers, server.repeat_share, server.cache_size) == (
        "rankgate,infinity",
        0,
        "256MiB",
    )
    bounds = {
        (BenchSettings, "repeats"): 0,
        (BenchSettings, "threads"): 0,
        (BenchSettings, "spread"): -0.1,
        (BenchServerSettings, "server_docs"): 0,
        (BenchServerSettings, "duration_s"): 0.05,
        (BenchServerSettings, "max_requests"): 0,
        (BenchServerSettings, "repeat_share"): -0.5,
    }
    for (settings, name), bad in bounds.items():
        with pytest.raises(ValueError, match=name):
            settings(**{name: bad})


def test_rerank_fields_variable_is_space_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKGATE_RANK_FIELDS", "title text")
    monkeypatch.setenv("RANKGATE_TOP_N", "3")
    call = RerankCallSettings(query="q")
    assert call.rank_fields == ("title", "text") and call.top_n == 3
    assert RerankCallSettings(query="q", rank_fields=["body"]).rank_fields == ("body",)


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
    # Declared twice on purpose: serve's --model repeats (ServeCommandSettings).
    allowed = {"RANKGATE_MODEL"}
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


def test_every_option_of_every_command_is_derived_from_a_setting() -> None:
    """No option is written by hand: each one's names, variable and help are a settings field's
    (rankgate.cli.options.setting_option), so none can drift from its class and its table."""
    fields = [
        (model, name) for model in _settings_classes().values() for name in model.model_fields
    ]

    def derived(p: Any) -> bool:
        return any(
            p.envvar == env_var(model, name)
            and p.opts + p.secondary_opts == _names(model, name)
            and (model.model_fields[name].description or "?") in (p.help or "")
            for model, name in fields
        )

    def walk(command: Any, path: str) -> list[str]:
        found = [
            f"{path} {p.opts[0]}"
            for p in command.params
            if p.param_type_name == "option" and p.name not in _EXEMPT and not derived(p)
        ]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    by_hand = walk(typer.main.get_command(app), "rankgate")
    assert not by_hand, "options not derived from a settings field:\n" + "\n".join(by_hand)


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
        RerankCallSettings: ("README.md",),
        BenchSettings: ("benchmarks/README.md",),
        BenchServerSettings: ("benchmarks/README.md",),
        CalibrateSettings: ("README.md",),
        OutputSettings: ("README.md",),
        DownloadSettings: ("README.md",),
        ServeCommandSettings: ("README.md",),
        SearchOutputSettings: ("docs/funnel.md",),
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


def test_a_bench_variable_out_of_bounds_is_a_usage_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    cases = [
        ("bench", "RANKGATE_BENCH_REPEATS", "0", "repeats"),
        ("bench", "RANKGATE_BENCH_THREADS", "0", "threads"),
        ("bench-server", "RANKGATE_BENCH_SERVER_DOCS", "0", "server_docs"),
        ("bench-server", "RANKGATE_BENCH_DURATION_S", "0.05", "duration_s"),
    ]
    for command, variable, value, name in cases:
        result = runner.invoke(
            app, [command, "--tiny", "--model-dir", str(tmp_path)], env={variable: value}
        )
        assert result.exit_code == 2, (variable, result.output)
        assert f"invalid {command} settings: {name}:" in result.output, result.output
        assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # refused before any model was built


def test_bench_variables_are_parsed_as_the_flags_are(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["bench", "--tiny", "--model-dir", str(tmp_path)]
    result = runner.invoke(app, args, env={"RANKGATE_BENCH_PEERS": "rankgate,nope"})
    assert result.exit_code == 2 and "--peers: choose from" in result.output
    result = runner.invoke(app, args, env={"RANKGATE_BENCH_DOCS": "10,x"})
    assert result.exit_code == 2
    assert "--docs must be comma-separated integers" in result.output
    server = ["bench-server", "--tiny", "--model-dir", str(tmp_path)]
    result = runner.invoke(app, server, env={"RANKGATE_BENCH_CLIENTS": "0,8"})
    assert result.exit_code == 2 and "--clients must be positive integers" in result.output
    result = runner.invoke(app, server, env={"RANKGATE_BENCH_SERVERS": "tei"})
    assert result.exit_code == 2 and "--servers: choose from rankgate, infinity" in result.output
    assert not any(tmp_path.iterdir())


def test_a_rerank_variable_is_checked_before_the_model_loads(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-model")
    result = CliRunner().invoke(
        app, ["rerank", "-q", "q", "-m", missing], input="a\n", env={"RANKGATE_TOP_N": "0"}
    )
    assert result.exit_code == 2, result.output  # not 3: the model was never looked for
    assert "invalid rerank settings: top_n:" in result.output


def test_calibrate_settings_are_checked_before_the_model_loads(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = str(tmp_path / "no-model")
    result = runner.invoke(app, ["calibrate", missing])
    assert result.exit_code == 2, result.output
    assert "--labels is required (or RANKGATE_CALIBRATE_LABELS)" in result.output
    labels = str(tmp_path / "judged.jsonl")
    cases = [
        ({"RANKGATE_CALIBRATE_FOLDS": "1"}, [], "folds"),
        ({}, ["--precision", "1.5"], "precision"),
        ({"RANKGATE_CALIBRATE_BINS": "101"}, [], "bins"),
    ]
    for env, args, name in cases:
        result = runner.invoke(app, ["calibrate", missing, "-l", labels, *args], env=env)
        assert result.exit_code == 2, (name, result.output)  # not 3: no model was looked for
        assert f"invalid calibrate settings: {name}:" in result.output, result.output
    assert not any(tmp_path.iterdir())


def test_a_calibrate_labels_variable_stands_for_the_flag(tmp_path: Path) -> None:
    labels = tmp_path / "judged.jsonl"  # not there: the labels are read before the model loads
    env = {"RANKGATE_CALIBRATE_LABELS": str(labels)}
    args = ["calibrate", str(tmp_path / "no-model"), "-o", str(tmp_path / "cal.json")]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert f"{labels}: no such file" in result.output, result.output


def test_a_download_variable_takes_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    from rankgate.backends import hub

    asked: list[object] = []

    def fake(model: str, **kwargs: object) -> Path:
        asked.append(kwargs["patterns"])
        return Path("/nowhere")

    monkeypatch.setattr(hub, "download_model", fake)
    runner = CliRunner()
    assert runner.invoke(app, ["download", "some/model"]).exit_code == 0
    result = runner.invoke(app, ["download", "some/model"], env={"RANKGATE_DOWNLOAD_ONNX": "1"})
    assert result.exit_code == 0, result.output
    assert asked == [hub.MODEL_PATTERNS, hub.ONNX_PATTERNS]


def test_serve_models_variable_is_space_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKGATE_MODEL", "small=./a big=./b")
    monkeypatch.setenv("RANKGATE_RAY", "true")
    served = ServeCommandSettings()
    assert served.model == ("small=./a", "big=./b") and served.ray
    assert ServeCommandSettings(model=["./c"], ray=False).model == ("./c",)


def test_a_field_named_by_its_alias_keeps_that_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_var(OutputSettings, "as_json") == "RANKGATE_JSON"
    assert env_var(HealthReportSettings, "api_key") == "RANKGATE_API_KEY"
    assert env_var(SearchOutputSettings, "show_all") == "RANKGATE_SEARCH_ALL"
    monkeypatch.setenv("RANKGATE_JSON", "yes")
    monkeypatch.setenv("RANKGATE_SEARCH_ALL", "1")
    assert OutputSettings().as_json and SearchOutputSettings().show_all
    assert not OutputSettings(as_json=False).as_json  # by name, as a command passes it
