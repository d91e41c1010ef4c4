"""PNG charts with matplotlib (Agg, no display needed): demo scores, health over time and the
reliability diagram of a calibration.

Labels are ASCII (document ids, metric names) so that no CJK font is needed on the machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankgate.errors import InputError, MissingDependencyError
from rankgate.insight.calibration_fit import CalibrationReport, ReliabilityBin
from rankgate.insight.demo import DemoRun
from rankgate.insight.health import HealthSettings, HealthSnapshot, Observation, summarize

__all__ = ["HealthPoint", "demo_chart", "health_chart", "health_series", "reliability_chart"]

_GOOD, _BAD, _PLAIN = "#2e9e2e", "#c83737", "#7f8c9a"
# Okabe-Ito colours, told apart with any colour vision; markers and line styles differ too.
_BEFORE, _AFTER, _IDEAL = "#E69F00", "#0072B2", "#555555"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "insight", "Drawing charts") from None
    matplotlib.use("Agg")  # never open a window; CI has no display
    import matplotlib.pyplot as plt

    return plt


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


def demo_chart(run: DemoRun, path: Path) -> Path:
    """Bar chart of a demo run: one bar per document in retrieval order, the expected best green,
    the expected worst red, each bar labelled with its reranked position."""
    plt = _pyplot()
    s = run.scenario
    ids = list(run.retrieval)
    scores = [run.scores[i] for i in ids]
    colors = [
        _GOOD if i == s.expected_best else _BAD if i == s.expected_worst else _PLAIN for i in ids
    ]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.6 * len(ids)))
    bars = ax.barh(range(len(ids)), scores, color=colors)
    ax.set_yticks(range(len(ids)), [f"{i} (retrieval #{n})" for n, i in enumerate(ids, 1)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("normalized score")
    for bar, doc_id in zip(bars, ids, strict=True):
        rank = run.reranked.index(doc_id) + 1
        ax.text(
            bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{run.scores[doc_id]:.3f}  reranked #{rank}",
            va="center",
            fontsize=8,
        )
    ax.set_title(
        f"{s.id} [{s.lang}]: expected best {s.expected_best} (green), worst "
        f"{s.expected_worst} (red)",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, path)


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


def health_chart(series: Sequence[HealthPoint], settings: HealthSettings, path: Path) -> Path:
    """Three stacked panels over time (displacement rate, mean gap, low-score share), each with
    its threshold as a dashed line. The x axis is the rerank count."""
    if not series:
        raise InputError("no reranks to chart")
    plt = _pyplot()
    x = [p.request for p in series]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    panels = [
        ("top-1 displacement rate", "displacement_rate", settings.displacement_min, "displacement"),
        ("mean top-1/top-2 gap", "mean_gap", settings.gap_min, "gap"),
        ("low-score share", "low_share", settings.low_share_max, "low_share"),
    ]
    for ax, (title, attr, threshold, metric) in zip(axes, panels, strict=True):
        values = [getattr(p.snapshot, attr) for p in series]
        ax.plot(x, [float("nan") if v is None else v for v in values], color="#1f5fa8")
        if threshold is not None:
            ax.axhline(threshold, color=_BAD, linestyle="--", linewidth=1)
        alerts = [p.request for p in series if p.snapshot.alerts[metric]]
        if alerts:
            ax.plot(alerts, [0] * len(alerts), "|", color=_BAD, markersize=8, label="alerting")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9, loc="left")
    if any(p.snapshot.low_share_recent is not None for p in series):
        axes[2].plot(
            x,
            [p.snapshot.low_share_recent for p in series],
            color="#d08a1f",
            linewidth=0.8,
            label="recent half",
        )
        axes[2].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(f"reranks (window of {settings.window})")
    fig.tight_layout()
    return _save(fig, path)


def reliability_chart(report: CalibrationReport, path: Path) -> Path:
    """Reliability diagram of a calibration: per equal-width bin, the share of relevant pairs
    against the mean score, before (the plain sigmoid) and after (held-out calibrated scores),
    with the diagonal of perfect calibration; below, how many pairs fall in each bin."""
    plt = _pyplot()
    cal = report.calibration
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(6.4, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
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
    ax.legend(loc="upper left", fontsize=8)
    # The model's name is the caller's text: never read as mathtext (a $ in a path).
    ax.set_title(
        f"Reliability of {_short(report.model)}\n{cal.rows} judged pairs, held-out scores, "
        f"{cal.bins} equal-width bins",
        fontsize=9,
        parse_math=False,
    )
    counts.set_xlabel("score")
    counts.set_ylabel("pairs")
    fig.tight_layout()
    return _save(fig, path)


def _short(model: str, width: int = 60) -> str:
    return model if len(model) <= width else "..." + model[-(width - 3) :]
