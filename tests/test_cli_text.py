"""What the ``rankgate`` command prints is the user's text as it is, and its hints are right.

rich reads ``[...]`` as markup, so every piece of user text (queries, documents, file names, error
messages) must reach the terminal as a literal ``Text``. Install hints must name an extra that
exists, and nothing the user reads may point at a design document they never saw.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from io import StringIO
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner, Result

from rankgate import Reranker
from rankgate.cli import app, common
from rankgate.errors import (
    InputError,
    MissingDependencyError,
    ModelLoadError,
    RankgateError,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rankgate"

runner = CliRunner()
WIDE = {"COLUMNS": "250"}

# Each one breaks rich's markup parser in its own way: a closing tag with nothing open, a style
# that would swallow the text, and a link that would hide its target.
MARKUP = ["[/]", "[bold red]x[/]", "[link=http://x]y"]


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "MarkupError" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def _code(exc: RankgateError) -> int:
    return next(code for cls, code in common.EXIT_CODES if isinstance(exc, cls))


# --- rerank -----------------------------------------------------------------------------------


def test_rerank_prints_markup_like_documents_and_query_literally(
    tiny_model: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(MARKUP) + "\n", encoding="utf-8")
    query = "why [/] and [bold]this[/bold]"
    result = runner.invoke(app, ["rerank", "-q", query, str(docs), "-m", str(tiny_model)], env=WIDE)
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    for text in MARKUP:
        assert text in result.output
    assert f"Query: {query}" in result.output


def test_rerank_from_stdin_json_documents_with_markup(tiny_model: Path) -> None:
    stdin = "".join(f'{{"text": "{t}"}}\n' for t in MARKUP)
    result = runner.invoke(
        app, ["rerank", "-q", "[/]", "-m", str(tiny_model)], input=stdin, env=WIDE
    )
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    for text in MARKUP:
        assert text in result.output


def test_missing_file_with_brackets_in_its_path_is_printed_literally(
    tiny_model: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "docs[" / "][bold red]x.txt"  # the path reads .../docs[/][bold red]x.txt
    result = runner.invoke(
        app, ["rerank", "-q", "q", str(missing), "-m", str(tiny_model)], env=WIDE
    )
    assert result.exit_code == _code(InputError("")) == 2, result.output
    _no_traceback(result)
    assert "error:" in result.output
    assert f"cannot read {missing}" in result.output.replace("\n", "")


def test_bad_format_value_with_markup_is_printed_literally(tiny_model: Path) -> None:
    result = runner.invoke(
        app, ["rerank", "-q", "q", "--format", "[/]", "-m", str(tiny_model)], input="a\n", env=WIDE
    )
    assert result.exit_code == 2, result.output
    _no_traceback(result)
    assert "--format must be auto, jsonl or lines, not '[/]'" in result.output


def test_bad_jsonl_line_is_an_input_error_without_traceback(
    tiny_model: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad[.jsonl"
    bad.write_text('{"text": "[/]"}\n["[/]", "[bold]x"]\n{not json [/]\n', encoding="utf-8")
    result = runner.invoke(app, ["rerank", "-q", "q", str(bad), "-m", str(tiny_model)], env=WIDE)
    assert result.exit_code == 2, result.output
    _no_traceback(result)
    assert "error: line 2: expected a JSON object with a 'text' field" in result.output


def test_info_shows_a_model_path_with_brackets(tiny_model: Path, tmp_path: Path) -> None:
    odd = tmp_path / "model[" / "][bold]x"  # .../model[/][bold]x
    shutil.copytree(tiny_model, odd)
    result = runner.invoke(app, ["info", "-m", str(odd)], env=WIDE)
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    assert str(odd) in result.output


# --- the error printer ------------------------------------------------------------------------


def _raising(exc: Exception) -> typer.Typer:
    local = typer.Typer()

    @local.command()
    def fail() -> None:
        with common.exits_on_error():
            raise exc

    @local.callback()
    def _root() -> None:
        """Only for this test."""

    return local


@pytest.mark.parametrize(
    "exc",
    [
        InputError("document [/] is [bold red]bad[/]"),
        ModelLoadError("cannot load ./models/[link=http://x]y"),
        RankgateError("something [/] else"),
        MissingDependencyError("fastapi", "server", "rankgate serve"),
    ],
)
def test_errors_are_printed_literally_with_their_exit_code(exc: RankgateError) -> None:
    result = runner.invoke(_raising(exc), ["fail"], env=WIDE)
    assert result.exit_code == _code(exc), result.output
    _no_traceback(result)
    assert f"error: {exc}" in result.output


def test_missing_dependency_hint_keeps_its_extra_on_the_terminal() -> None:
    exc = MissingDependencyError("fastapi", "server", "rankgate serve")
    result = runner.invoke(_raising(exc), ["fail"], env=WIDE)
    assert result.exit_code == 2
    assert "pip install 'rankgate[server]'" in result.output


def test_literal_helpers_never_parse_markup() -> None:
    out = StringIO()
    console = Console(file=out, width=200, color_system=None)
    console.print(common.literal("[/] [bold]x[/bold]"))
    console.print(common.line(("[/]", "bold"), " [link=http://x]y"))
    assert out.getvalue().splitlines() == ["[/] [bold]x[/bold]", "[/] [link=http://x]y"]


# --- funnel and demo output -------------------------------------------------------------------


def _render(renderable: object) -> str:
    out = StringIO()
    Console(file=out, width=250, color_system=None, soft_wrap=False).print(renderable)
    return out.getvalue()


def test_search_table_prints_query_titles_sources_and_reasons_literally() -> None:
    from rankgate.cli.funnel_commands import _table
    from rankgate.funnel.types import Candidate, FunnelResult, Passage

    passage = Passage(
        "d[/]#0", "d[/]", 0, "text [bold red]x[/]", title="T [/]", source="[link=http://x]y"
    )
    kept = Candidate(passage, 1, 1.0, 1, 0.9, "final")
    dropped = Candidate(
        Passage("e#0", "[bold]e", 0, "[/] body"), 2, 0.5, 2, 0.1, "reranked", "min_score", "[/]"
    )
    result = FunnelResult("q [/]", "q [/]", None, [kept, dropped], {})
    text = _render(_table(result, show_all=True))
    for expected in ("Query: q [/]", "d[/] T [/]", "[link=http://x]y", "[bold]e [/] body"):
        assert expected in text, text
    assert "min_score: [/]" in text


def test_templates_lists_user_templates_literally(tmp_path: Path) -> None:
    from rankgate.cli.funnel_commands import templates

    local = typer.Typer()
    local.command()(templates)
    local.callback()(lambda: None)
    toml = tmp_path / "templates.toml"
    toml.write_text(
        "[[templates]]\n"
        'name = "odd"\n'
        "version = 1\n"
        'description = "closes [/] and styles [bold red]x[/]"\n'
        'template = "Q [link=http://x]y: {query}"\n',
        encoding="utf-8",
    )
    result = runner.invoke(local, ["templates", "--templates-file", str(toml)], env=WIDE)
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    assert "closes [/] and styles [bold red]x[/]" in result.output
    assert "Q [link=http://x]y: {query}" in result.output


def test_eval_table_prints_system_names_literally() -> None:
    from rankgate.cli.funnel_commands import _eval_table
    from rankgate.funnel.evaluation import EvalReport

    report = EvalReport(["nDCG@10"], {"first [/] stage": {"nDCG@10": 0.5}}, {}, 3, 10)
    assert "first [/] stage" in _render(_eval_table(report))


def test_demo_output_prints_scenario_text_literally(
    keyword: Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankgate.cli import demo_commands
    from rankgate.insight.catalog import Scenario, ScenarioDocument
    from rankgate.insight.demo import run_scenario

    docs = (
        ScenarioDocument("a", "The [/] router. Reset it with [bold red]x[/]."),
        ScenarioDocument("b", "Other [link=http://x]y. Nothing here."),
    )
    scenario = Scenario(
        id="odd",
        title="Title [/]",
        lang="en",
        query="router [/] reset",
        documents=docs,
        expected_best="a",
        expected_worst="b",
        why={"a": "why [bold]a", "b": "why [/] b"},
        source="made [/] up",
    )
    out = StringIO()
    monkeypatch.setattr(
        demo_commands, "console", Console(file=out, width=250, color_system=None, soft_wrap=True)
    )
    run = run_scenario(keyword, scenario)
    demo_commands._print_simple(run)
    demo_commands._print_trap(run, top_k=2)
    text = out.getvalue()
    for expected in (
        "query: router [/] reset",
        "candidate 1 [a]: The [/] router. Reset it with [bold red]x[/].",
        "Title [/] [en] (made [/] up)",
        "why [bold]a",
        "why [/] b",
        "reranked order: [",
    ):
        assert expected in text, text


def test_demo_banner_prints_a_model_path_with_brackets(tiny_model: Path, tmp_path: Path) -> None:
    odd = tmp_path / "model[" / "][bold red]x"  # .../model[/][bold red]x
    shutil.copytree(tiny_model, odd)
    result = runner.invoke(app, ["demo", "-m", str(odd), "--lang", "en"], env=WIDE)
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    assert f"model loaded | model: {odd} |" in result.output


# --- install hints ----------------------------------------------------------------------------


def _extras() -> dict[str, set[str]]:
    """Each extra of pyproject.toml and the distribution names it installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: dict[str, set[str]] = {}
    for extra, requirements in project["optional-dependencies"].items():
        names = {re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements}  # type: ignore[union-attr]
        out[extra] = {_norm(n) for n in names}
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _text(node: ast.expr | None) -> str | None:
    """The value of a string literal, else None."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _hint_sites() -> list[tuple[str, str | None, str]]:
    """(where, package or None when computed, extra) for every MissingDependencyError raised.

    An extra passed through a helper's parameter (``_import(package, extra)``) is followed to
    every call of that helper in the same module.
    """
    sites: list[tuple[str, str | None, str]] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for call in [n for n in ast.walk(tree) if isinstance(n, ast.Call)]:
            if _call_name(call) != "MissingDependencyError":
                continue
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            package, extra = _argument(call, 0, "package"), _argument(call, 1, "extra")
            if (extra_text := _text(extra)) is not None:
                sites.append((where, _text(package), extra_text))
                continue
            assert isinstance(extra, ast.Name), f"{where}: the extra must be a literal or a name"
            func = parents.get(call)
            while func is not None and not isinstance(func, ast.FunctionDef):
                func = parents.get(func)
            assert func is not None, f"{where}: a computed extra outside a helper"
            params = [a.arg for a in func.args.args]
            assert extra.id in params, f"{where}: extra {extra.id!r} is not a parameter"
            helper_calls = [
                n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == func.name
            ]
            assert helper_calls, f"{where}: {func.name} is never called"
            for helper in helper_calls:
                value = _text(_argument(helper, params.index(extra.id), extra.id))
                assert value is not None, f"{where}: {func.name} at {helper.lineno}"
                pkg = (
                    _text(_argument(helper, params.index(package.id), package.id))
                    if isinstance(package, ast.Name) and package.id in params
                    else None
                )
                sites.append((f"{where} via line {helper.lineno}", pkg, value))
    return sites


def test_every_install_hint_names_an_extra_that_installs_the_package() -> None:
    extras = _extras()
    sites = _hint_sites()
    assert len(sites) >= 10  # the scan found the raise sites
    for where, package, extra in sites:
        assert extra in extras and extra != "dev", f"{where}: no extra {extra!r} in pyproject.toml"
        if package is not None:
            assert _norm(package) in extras[extra], f"{where}: [{extra}] does not install {package}"


@pytest.mark.parametrize("extra", sorted(set(_extras()) - {"dev"}))
def test_the_hint_text_names_the_extra(extra: str) -> None:
    message = str(MissingDependencyError("pkg", extra, "Something"))
    assert f"pip install 'rankgate[{extra}]'" in message


# --- no references to a design document -------------------------------------------------------

INTERNAL = re.compile(
    r"\btest2?\.py\b|\bthe seed's\b|\b(in|from|of) the seed\b|\bthe seed (gives|says)\b"
    r"|\bseed \d+\.\d|\bsection \d+\.\d",
    re.IGNORECASE,
)


def _user_text_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for ext in ("py", "json", "html", "js", "css", "toml", "md"):
        files += sorted(SRC.rglob(f"*.{ext}"))
    return files


def _internal_references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        pieces = [
            (n.lineno, n.value)
            for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
    else:
        pieces = list(enumerate(text.splitlines(), 1))
    return [
        f"{path.relative_to(ROOT)}:{line}: {m.group(0)!r}"
        for line, piece in pieces
        for m in INTERNAL.finditer(piece)
    ]


def test_no_user_facing_text_points_at_a_design_document() -> None:
    found = [ref for path in _user_text_files() for ref in _internal_references(path)]
    assert not found, "\n".join(found)


def test_the_pattern_keeps_a_random_seed_parameter() -> None:
    assert not INTERNAL.search("seed: int = 0, a seeded shuffle, torch.manual_seed(seed)")
    assert INTERNAL.search("seed 4.2 (test2.py)") and INTERNAL.search("the seed's section 5.2")


def test_serve_on_a_port_in_use_exits_5_before_loading_the_model(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        missing = tmp_path / "no-such-model"  # loading it would exit 3: the port comes first
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(missing)]
        result = CliRunner().invoke(app, args)
    finally:
        taken.close()
    assert result.exit_code == 5, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
