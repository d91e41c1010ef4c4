"""PNG charts with matplotlib (Agg, no display needed): demo scores, health over time and the
reliability diagram of a calibration.

Colours come from the Okabe-Ito palette (told apart with any colour vision), and every colour
has a second cue: hatching, a marker or line style, or a direct label. Legends sit outside the
axes, so they never cover the data. Queries and documents may be in any language: an installed
CJK font (Noto Sans CJK, Source Han Sans, WenQuanYi) is added to matplotlib's font fallback.

Each chart has a ``*_figure`` function that builds the matplotlib figure (for tests, or to
restyle) and a ``*_chart`` function that writes it as PNG.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankgate.errors import InputError, MissingDependencyError
from rankgate.insight.calibration_fit import CalibrationReport, ReliabilityBin
from rankgate.insight.demo import DemoRun
from rankgate.insight.health import HealthSettings, HealthSnapshot, Observation, summarize

__all__ = [
    "PALETTE",
    "HealthPoint",
    "demo_chart",
    "demo_figure",
    "health_chart",
    "health_figure",
    "health_series",
    "reliability_chart",
    "reliability_figure",
]

# Okabe-Ito, plus the neutral grey that usually goes with it.
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "grey": "#999999",
}
_BEFORE, _AFTER, _IDEAL = PALETTE["orange"], PALETTE["blue"], PALETTE["black"]
_LINE, _ALERT, _RECENT = PALETTE["blue"], PALETTE["vermillion"], PALETTE["orange"]
# Per document role in a demo: colour, hatch, legend label.
_ROLES = {
    "best": (PALETTE["bluish green"], "//", "expected best"),
    "worst": (PALETTE["vermillion"], "xx", "expected worst"),
    "other": (PALETTE["grey"], "", "other candidates"),
}
# One is enough: each covers Chinese, Japanese and Korean.
_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans CJK TC",
    "Source Han Sans SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
)
_MARKED_POINTS = 60  # up to this many points, each gets a marker


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "insight", "Drawing charts") from None
    matplotlib.use("Agg")  # never open a window; CI has no display
    import matplotlib.pyplot as plt

    _add_cjk_fallback(matplotlib)
    return plt


def _add_cjk_fallback(matplotlib: Any) -> None:
    """Append the first installed CJK font to ``font.family``: matplotlib takes each glyph from
    the first family that has it, so Latin text keeps its font and CJK text gets one."""
    from matplotlib import font_manager

    family = list(matplotlib.rcParams["font.family"])
    if any(name in family for name in _CJK_FONTS):
        return
    found = _installed_cjk_font(font_manager)
    if found is None:
        # matplotlib lists the fonts it found when it first ran; one installed later is only
        # on disk (fc-list finds it), so add those files and look again.
        for path in _cjk_font_files():
            font_manager.fontManager.addfont(path)
        found = _installed_cjk_font(font_manager)
    if found is not None:
        matplotlib.rcParams["font.family"] = [*family, found]


_CJK_FILE = re.compile(r"cjk|sourcehansans|wqy|droidsansfallback", re.IGNORECASE)


@functools.cache
def _cjk_font_files() -> tuple[str, ...]:
    """The CJK font files on disk, looked for once a process (it runs fc-list): a machine
    without any does not pay for the search on every chart."""
    from matplotlib import font_manager

    return tuple(p for p in font_manager.findSystemFonts() if _CJK_FILE.search(Path(p).name))


def _installed_cjk_font(font_manager: Any) -> str | None:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in installed), None)


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise InputError(f"cannot write the chart to {path}: {exc.strerror}") from None
    finally:
        _pyplot().close(fig)
    return path


def _columns(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` columns (a CJK character counts two), with "…"."""
    flat = " ".join(text.split())
    used = 0
    for n, char in enumerate(flat):
        used += _columns(char)
        if used > width - 1 and n < len(flat) - 1:
            return flat[:n].rstrip() + "…"
    return flat


def _role(run: DemoRun, doc_id: str) -> str:
    s = run.scenario
    if doc_id == s.expected_best:
        return "best"
    return "worst" if doc_id == s.expected_worst else "other"


def demo_figure(run: DemoRun) -> Any:
    """Bar chart of a demo run, titled with the query: one bar per document in retrieval order,
    labelled with its id and the start of its text; the expected best and worst told apart by
    colour, hatching and a direct label, with each bar's score and reranked position."""
    plt = _pyplot()
    s = run.scenario
    ids = list(run.retrieval)
    texts = {d.id: d.text for d in s.documents}
    fig, ax = plt.subplots(figsize=(9, 2.2 + 0.7 * len(ids)), layout="constrained")
    seen: set[str] = set()
    for n, doc_id in enumerate(ids):
        role = _role(run, doc_id)
        colour, hatch, label = _ROLES[role]
        ax.barh(
            n,
            run.scores[doc_id],
            color=colour,
            hatch=hatch,
            edgecolor="white",
            label=label if role not in seen else "_nolegend_",
        )
        seen.add(role)
        rank = run.reranked.index(doc_id) + 1
        note = {"best": "  (expected best)", "worst": "  (expected worst)"}.get(role, "")
        ax.text(
            run.scores[doc_id] + 0.01,
            n,
            f"{run.scores[doc_id]:.3f}  reranked #{rank}{note}",
            va="center",
            fontsize=8,
        )
    # Document text is the caller's: never read as mathtext (a $ in a price).
    ax.set_yticks(
        range(len(ids)),
        [f"{i}: {_clip(texts[i], 34)}\nretrieval #{n}" for n, i in enumerate(ids, 1)],
        fontsize=8,
        parse_math=False,
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1.45)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("normalized score")
    ax.set_title(
        f"{_clip(s.query, 80)}\n{s.title} [{s.lang}]", fontsize=9, loc="left", parse_math=False
    )
    fig.legend(loc="outside lower center", ncol=len(seen), fontsize=8, frameon=False)
    return fig


def demo_chart(run: DemoRun, path: Path) -> Path:
    """Write :func:`demo_figure` as PNG."""
    return _save(demo_figure(run), path)


@dataclass(frozen=True, slots=True)
class HealthPoint:
    """The window's snapshot right after the ``request``-th rerank."""

    request: int
    ts: float
    snapshot: HealthSnapshot


def health_series(
    observations: Sequence[Observation], settings: HealthSettings, points: int = 400
) -> list[HealthPoint]:
    """Rolling snapshots over a stream of observations, at most ``points`` of them.

    Each point summarizes the ``settings.window`` reranks up to it, as the live monitor would
    have at that moment; sampling keeps a long log cheap to chart.
    """
    n = len(observations)
    step = max(1, -(-n // points))
    out = []
    for end in [*range(step, n, step), n] if n else []:
        window = observations[max(0, end - settings.window) : end]
        out.append(HealthPoint(end, observations[end - 1].ts, summarize(window, settings)))
    return out


def health_figure(series: Sequence[HealthPoint], settings: HealthSettings) -> Any:
    """Three stacked panels over time (displacement rate, mean gap, low-score share), each with
    its threshold as a dashed line and alerting points marked. The x axis is the rerank count,
    with integer ticks; with few points each is marked, so even one shows."""
    if not series:
        raise InputError("no reranks to chart")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    x = [p.request for p in series]
    marker = "o" if len(series) <= _MARKED_POINTS else None
    fig, axes = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True, layout="constrained")
    panels = [
        ("top-1 displacement rate", "displacement_rate", settings.displacement_min, "displacement"),
        ("mean top-1/top-2 gap", "mean_gap", settings.gap_min, "gap"),
        ("low-score share", "low_share", settings.low_share_max, "low_share"),
    ]
    for ax, (title, attr, threshold, metric) in zip(axes, panels, strict=True):
        values = [getattr(p.snapshot, attr) for p in series]
        ax.plot(
            x,
            [float("nan") if v is None else v for v in values],
            color=_LINE,
            marker=marker,
            markersize=4,
            label="value over the window",
        )
        if threshold is not None:
            ax.axhline(
                threshold, color=_ALERT, linestyle="--", linewidth=1, label="alert threshold"
            )
        alerts = [p.request for p in series if p.snapshot.alerts[metric]]
        if alerts:
            ax.plot(
                alerts,
                [0] * len(alerts),
                linestyle="none",
                marker="^",
                color=_ALERT,
                markersize=7,
                clip_on=False,
                label="alerting",
            )
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9, loc="left")
    if any(p.snapshot.low_share_recent is not None for p in series):
        axes[2].plot(
            x,
            [p.snapshot.low_share_recent for p in series],
            color=_RECENT,
            linestyle="-.",
            marker="s" if marker else None,
            markersize=3,
            linewidth=0.8,
            label="low-score share, recent half",
        )
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(x)) == 1:  # one point: give it room, or the axis shrinks to fractions around it
        axes[-1].set_xlim(x[0] - 1, x[0] + 1)
    axes[-1].set_xlabel(f"reranks (window of {settings.window})")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=min(4, len(handles)),
        fontsize=8,
        frameon=False,
    )
    return fig


def health_chart(series: Sequence[HealthPoint], settings: HealthSettings, path: Path) -> Path:
    """Write :func:`health_figure` as PNG."""
    return _save(health_figure(series, settings), path)


def reliability_figure(report: CalibrationReport) -> Any:
    """Reliability diagram of a calibration: per equal-width bin, the share of relevant pairs
    against the mean score, before (the plain sigmoid) and after (held-out calibrated scores),
    with the diagonal of perfect calibration; below, how many pairs fall in each bin."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    cal = report.calibration
    fig, (ax, counts) = plt.subplots(
        2,
        1,
        figsize=(6.4, 7.6),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
        layout="constrained",
    )
    ax.plot([0, 1], [0, 1], linestyle=":", color=_IDEAL, label="perfectly calibrated")
    series: list[tuple[str, tuple[ReliabilityBin, ...], str, str, str]] = [
        (f"plain score, sigmoid (ECE {cal.ece_before:.3f})", report.before, _BEFORE, "s", "--"),
        (f"calibrated, {cal.method} (ECE {cal.ece_after:.3f})", report.after, _AFTER, "o", "-"),
    ]
    width = 0.4 / cal.bins
    for n, (label, bins, colour, marker, style) in enumerate(series):
        ax.plot(
            [b.mean_score for b in bins],
            [b.observed for b in bins],
            marker=marker,
            linestyle=style,
            color=colour,
            label=label,
        )
        centres = [(b.lower + b.upper) / 2 + (n - 0.5) * width for b in bins]
        counts.bar(
            centres,
            [b.count for b in bins],
            width=width,
            color=colour,
            hatch="//" if n == 0 else None,
            edgecolor="white",
        )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share of pairs that are relevant")
    # The model's name is the caller's text: never read as mathtext (a $ in a path).
    fig.suptitle(
        f"Reliability of {_short(report.model)}\n{cal.rows} judged pairs, held-out scores, "
        f"{cal.bins} equal-width bins",
        fontsize=9,
        parse_math=False,
    )
    counts.set_xlabel("score")
    counts.set_ylabel("pairs")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(
        *ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8, frameon=False
    )
    return fig


def reliability_chart(report: CalibrationReport, path: Path) -> Path:
    """Write :func:`reliability_figure` as PNG."""
    return _save(reliability_figure(report), path)


def _short(model: str, width: int = 60) -> str:
    return model if len(model) <= width else "..." + model[-(width - 3) :]
