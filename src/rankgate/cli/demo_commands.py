"""``rankgate demo``, ``rankgate demo trap``, ``rankgate demo list`` and ``rankgate health``.

The demos run shipped scenarios (``rankgate.insight.catalog``) through whatever model is loaded
and show what it did next to what the scenario expects; they make no claim about the model.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from rankgate.cli import common
from rankgate.cli.common import EXIT_HELP, line, literal
from rankgate.cli.demo_settings import DemoSettings, HealthReportSettings
from rankgate.cli.help import PanelCommand, PanelGroup
from rankgate.cli.loading import load_reranker
from rankgate.cli.options import setting_option, settings_from
from rankgate.engine import Reranker
from rankgate.errors import InputError
from rankgate.insight.catalog import get_scenario, load_scenarios
from rankgate.insight.charts import demo_chart, health_chart, health_series
from rankgate.insight.demo import DemoRun, run_scenario
from rankgate.insight.health import HealthSettings, HealthSnapshot, Observation, summarize
from rankgate.insight.monitor import AlertEvent, RankingHealth
from rankgate.insight.render import explanation_text
from rankgate.insight.requestlog import read_log

__all__ = [
    "DemoSettings",
    "HealthReportSettings",
    "demo",
    "demo_app",
    "demo_list",
    "demo_trap",
    "health",
]

# soft_wrap: long lines stay whole when piped; the terminal wraps them.
console = Console(soft_wrap=True)


_DEMO = "Demo options"
_HEALTH = "Report options"


# Each option is derived from its field (rankgate.cli.options): declared once, above.
def _demo(name: str) -> Any:
    return setting_option(DemoSettings, name, panel=_DEMO)


def _report(name: str) -> Any:
    return setting_option(HealthReportSettings, name, panel=_HEALTH)


Lang = Annotated[str | None, _demo("lang")]
ChartOpt = Annotated[Path | None, _demo("chart")]
NoChart = Annotated[bool | None, _demo("no_chart")]


def _load(options: Mapping[str, object]) -> Reranker:
    with console.status("loading the model"):
        return load_reranker(options)


def banner(reranker: Reranker) -> str:
    """The load line: model, device, dtype, FP16 on/off and load time."""
    info = reranker.info()
    fp16 = "on" if info.dtype == "float16" else "off"
    return (
        f"model loaded | model: {info.model} | device: {info.device} | dtype: {info.dtype} | "
        f"FP16: {fp16} | load time: {info.load_seconds:.2f} s"
    )


def _expectation(run: DemoRun) -> Text:
    s = run.scenario
    top, last = run.reranked[0], run.reranked[-1]
    out = Text()
    out.append(f"expected best: {s.expected_best}  model's top: {top}  ")
    out.append(
        "(same)" if run.best_as_expected else "(differs)",
        "green" if top == s.expected_best else "yellow",
    )
    out.append(f"\nexpected worst: {s.expected_worst}  model's last: {last}  ")
    out.append(
        "(same)" if run.worst_as_expected else "(differs)",
        "green" if run.worst_as_expected else "yellow",
    )
    return out


def _preview(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_simple(run: DemoRun) -> None:
    s = run.scenario
    console.print(literal(f"query: {s.query}"))
    for n, doc in enumerate(s.documents, 1):
        console.print(
            literal(
                f"  candidate {n} [{doc.id}]: {_preview(doc.text)} -> "
                f"score: {run.scores[doc.id]:.4f}"
            )
        )
    console.print(literal(f"reranked order: [{', '.join(run.reranked)}]"))
    console.print(_expectation(run))


def _print_trap(run: DemoRun, top_k: int) -> None:
    s = run.scenario
    console.print(line((s.title, "bold"), f" [{s.lang}] ({s.source})"))
    console.print(literal(f"query: {s.query}"))
    table = Table(title_justify="left")
    for col in ("#", "retrieval order", "reranked order", "score", "moved"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for n, (before, after) in enumerate(zip(run.retrieval, run.reranked, strict=True), 1):
        was = run.retrieval.index(after) + 1
        moved = "=" if was == n else (f"up {was - n}" if was > n else f"down {n - was}")
        table.add_row(str(n), literal(before), literal(after), f"{run.scores[after]:.4f}", moved)
    console.print(table)
    console.print(_expectation(run))
    for doc in s.documents:
        expl = run.explanations.get(doc.id)
        console.print(
            line(
                "\n",
                (doc.id, "bold"),
                f" score {run.scores[doc.id]:.4f}: {s.why.get(doc.id, '')}",
            )
        )
        if expl is None:
            continue
        console.print(explanation_text(expl))
        for seg in expl.top(top_k):
            verb = "raised" if seg.contribution > 0 else "lowered"
            console.print(
                literal(
                    f"  {verb} by {abs(seg.contribution):.3f} logit: "
                    f"{_preview(seg.text.strip(), 80)}"
                )
            )


def demo(
    ctx: typer.Context,
    lang: Lang = None,
    chart: ChartOpt = None,
    explain: Annotated[bool | None, _demo("explain")] = None,
    model: common.Model = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    threads: common.Threads = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Rerank the router-password scenario (reset a router's admin password): load banner,
    each candidate's score and the new order."""
    if ctx.invoked_subcommand is not None:
        return
    with common.exits_on_error():
        s = settings_from(DemoSettings, locals(), "demo settings")
        scenario = get_scenario("router-password", s.lang)
        reranker = _load(locals())
        console.print(literal(banner(reranker)))
        run = run_scenario(reranker, scenario, explain_scores=s.explain)
        _print_simple(run)
        if s.explain:
            for doc in scenario.documents:
                console.print(line((doc.id, "bold"), ": "), end="")
                console.print(explanation_text(run.explanations[doc.id]))
        if s.chart is not None:
            console.print(literal(f"chart: {demo_chart(run, s.chart)}"))


def demo_trap(
    lang: Lang = None,
    scenario: Annotated[str | None, _demo("scenario")] = None,
    chart: ChartOpt = None,
    no_chart: NoChart = None,
    top: Annotated[int | None, _demo("top")] = None,
    model: common.Model = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    threads: common.Threads = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """A keyword trap (a document that repeats the query's words but does not answer it):
    retrieval vs reranked order, chart, and the sentences that moved each score.
    Default chart: rankgate-SCENARIO-LANG.png."""
    with common.exits_on_error():
        s = settings_from(DemoSettings, locals(), "demo settings")
        picked = get_scenario(s.scenario, s.lang)
        reranker = _load(locals())
        console.print(literal(banner(reranker)))
        run = run_scenario(reranker, picked)
        _print_trap(run, s.top)
        if not s.no_chart:
            path = s.chart or Path(f"rankgate-{picked.id}-{picked.lang}.png")
            console.print(literal(f"\nchart: {demo_chart(run, path)}"))


def demo_list() -> None:
    """List the demo scenarios and their languages."""
    table = Table("languages", "best / worst", "title")
    table.columns.insert(0, Column("scenario", no_wrap=True))
    by_id: dict[str, list[str]] = {}
    for s in load_scenarios():
        by_id.setdefault(s.id, []).append(s.lang)
    for sid, langs in by_id.items():
        s = get_scenario(sid, langs[0])
        best_worst = f"{s.expected_best} / {s.expected_worst}"
        table.add_row(*(literal(v) for v in (sid, " ".join(langs), best_worst, s.title)))
    console.print(table)


demo_app = typer.Typer(
    name="demo",
    help="See reranking work on shipped multilingual scenarios.",
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=PanelGroup,
    rich_markup_mode=None,  # click's help layout: it reads at 80 columns (rankgate.cli.help)
)
demo_app.callback(invoke_without_command=True, epilog=EXIT_HELP, cls=PanelGroup)(demo)
demo_app.command("trap", epilog=EXIT_HELP, cls=PanelCommand)(demo_trap)
demo_app.command("list", cls=PanelCommand)(demo_list)


def _fetch_report(url: str, api_key: str | None) -> dict[str, Any]:
    request = urllib.request.Request(url.rstrip("/") + "/v1/health/ranking")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(f"cannot read ranking health from {url}: {exc}") from None


def _from_server(
    report: dict[str, Any],
) -> tuple[HealthSettings, list[Observation], list[AlertEvent]]:
    settings = HealthSettings(**report["thresholds"])
    obs = [Observation(**o) for o in report["window"]]
    events = [AlertEvent(**e) for e in report.get("events", [])]
    return settings, obs, events


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _report_table(snap: HealthSnapshot, s: HealthSettings) -> Table:
    def verdict(metric: str) -> str:
        if not snap.ready:
            return f"[dim]needs {s.min_requests} reranks[/]"
        return "[bold red]ALERT[/]" if snap.alerts[metric] else "[green]ok[/]"

    table = Table(
        title=f"Ranking health over the last {snap.requests} reranks", title_justify="left"
    )
    for col in ("metric", "value", "alert when", "status", "meaning"):
        table.add_column(col)
    gap = "n/a" if snap.mean_gap is None else f"{snap.mean_gap:.3f}"
    ceiling = f" or > {_pct(s.low_share_max)}" if s.low_share_max is not None else ""
    table.add_row(
        "top-1 displacement rate",
        _pct(snap.displacement_rate),
        f"< {_pct(s.displacement_min)}",
        verdict("displacement"),
        "reranking rarely changes the top: not earning its place",
    )
    table.add_row(
        "mean top-1/top-2 gap",
        gap,
        f"< {s.gap_min:g} (healthy > 0.25)",
        verdict("gap"),
        "low discrimination or vague queries",
    )
    table.add_row(
        f"low-score share (< {s.low_score:g})",
        f"{_pct(snap.low_share)} ({_pct(snap.low_share_older)} -> {_pct(snap.low_share_recent)})",
        f"rise > {_pct(s.low_share_rise)}{ceiling}",
        verdict("low_share"),
        "rising: upstream retrieval is decaying",
    )
    return table


def health(
    log: Annotated[Path | None, _report("log")] = None,
    url: Annotated[str | None, _report("url")] = None,
    chart: Annotated[Path | None, _report("chart")] = None,
    no_chart: Annotated[bool | None, _report("no_chart")] = None,
    api_key: Annotated[str | None, _report("api_key")] = None,
) -> None:
    """Report ranking health (top-1 displacement, top-1/top-2 gap, low-score share) from a
    request log or a running server, with a chart over time. Thresholds: RANKGATE_HEALTH_*.
    Exits 1 when any metric is alerting, 0 when all are healthy."""
    with common.exits_on_error():
        report = settings_from(HealthReportSettings, locals(), "health report settings")
        log, url = report.log, report.url
        if (log is None) == (url is None):
            raise InputError("give exactly one of --log FILE or --url URL")
        if log is not None:
            settings = HealthSettings()
            monitor = RankingHealth(settings)
            # The report lists every crossing; the monitor's own warnings would repeat them.
            health_log = logging.getLogger("rankgate.insight.health")
            level = health_log.level
            health_log.setLevel(logging.ERROR)
            try:
                observations = monitor.replay(read_log(log))
            finally:
                health_log.setLevel(level)
            snap, events = monitor.snapshot(), monitor.events()
        else:
            settings, observations, events = _from_server(_fetch_report(str(url), report.api_key))
            snap = summarize(observations, settings)
        if not observations:
            raise InputError("no reranks to report on")
        console.print(_report_table(snap, settings))
        for e in events:
            state = ("crossed", "red") if e.alerting else ("recovered", "green")
            console.print(line(f"rerank {e.request}: {e.metric} ", state, f": {e.message}"))
        if not report.no_chart:
            path = health_chart(health_series(observations, settings), settings, report.chart)
            console.print(literal(f"chart: {path}"))
        if any(snap.alerts.values()):
            raise typer.Exit(1)  # an alert: non-zero, so that a check or a cron job sees it
