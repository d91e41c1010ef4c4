"""Every command's ``--help`` at 80 columns: option names, metavars and environment variables
whole, no line wider than the terminal, options grouped by panel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rankgate.cli import app

runner = CliRunner()
COLUMNS = 80


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = dict(_commands(ROOT))


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {"", "rerank", "serve", "bench", "export", "finetune", "calibrate"}
    assert expected | {"demo", "demo trap", "demo list", "health", "bench-server"} <= names
    assert len(names) >= 19


def _context(path: tuple[str, ...]) -> Any:
    """The context the command's help is written in: its parents' settings (-h) included."""
    ctx = ROOT.make_context("rankgate", [], resilient_parsing=True)
    for n in range(1, len(path) + 1):
        ctx = COMMANDS[path[:n]].make_context(path[n - 1], [], parent=ctx, resilient_parsing=True)
    return ctx


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(
        app, [*path, "--help"], env={"COLUMNS": str(COLUMNS)}, terminal_width=COLUMNS
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "rankgate")
def test_help_fits_80_columns_and_cuts_nothing(path: tuple[str, ...]) -> None:
    out = _help(path)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= COLUMNS
    assert "…" not in out  # rich's mark of a cut cell
    command = COMMANDS[path]
    ctx = _context(path)
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        # Names and metavar ("-p, --port <int>", "--public-playground / --private-playground")
        # stand whole at the start of one line.
        assert any(line.strip().startswith(record[0]) for line in lines), record[0]
        names = [*param.opts, *param.secondary_opts]
        envvar = getattr(param, "envvar", None)
        if envvar and getattr(param, "show_envvar", False):
            names += [envvar] if isinstance(envvar, str) else list(envvar)
        for name in names:
            assert name in out, name


def test_options_are_grouped_by_panel() -> None:
    out = _help(("rerank",))
    assert "\nOptions:\n" in out and "\nModel options:\n" in out
    assert out.index("\nOptions:\n") < out.index("\nModel options:\n")
    model_section = out[out.index("\nModel options:\n") :]
    assert "--max-length <int>" in model_section and "--top-n" not in model_section


def test_help_wraps_at_spaces_not_inside_values() -> None:
    out = _help(("rerank",))
    assert "BAAI/bge-reranker-v2-m3" in out  # a hyphenated default stays on one line
    bench = _help(("bench",))
    # A long comma-separated list breaks after its commas, within the width.
    assert "rankgate,rankgate-padded," in bench


def test_derived_bench_and_rerank_help_names_variables_and_defaults() -> None:
    """At 80 columns, each derived option's help still says its variable and its default."""
    expected = {
        ("bench",): [
            "envvar:RANKGATE_BENCH_DOCS",
            "Default:10,50.",
            "envvar:RANKGATE_BENCH_REPEATS",
            "Default:2.",
            "Default:therepo's.venv-flag.",
            "Default:0.7.",
        ],
        ("bench-server",): [
            "envvar:RANKGATE_BENCH_SERVER_DOCS",
            "Default:8.",
            "envvar:RANKGATE_BENCH_DURATION_S",
            "Default:60.",
            "Default:nolimit.",
            "Default:rankgate,infinity.",
        ],
        ("rerank",): [
            "envvar:RANKGATE_QUERY",
            "required]",
            "envvar:RANKGATE_TOP_N",
            "Default:all.",
            "envvar:RANKGATE_RANK_FIELDS",
            "Default:text.",
            "PrintJSONinsteadofatable(rankgatererank:JSONLines,oneresultaline).",
        ],
    }
    for path, pieces in expected.items():
        squeezed = "".join(_help(path).split())  # the help's words, wherever it wrapped them
        for piece in pieces:
            assert piece in squeezed, (path, piece)
