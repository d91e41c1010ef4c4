"""Dev-set reports: ranking quality (ir-measures) and ranking health, before and after training.

Each dev row is one query whose candidates are its positives and negatives in the order the
file lists them; the reranker ranks them. Measures: nDCG@10, MRR@10, R@1 and R@3 (relevant =
a positive). Ranking health, as the server's monitor measures it: the share of queries whose
first listed candidate is not ranked first (top-1 displacement; with mined rows, positives
come first), the mean gap between the top two scores, and the share of scores under the low-score
threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rankgate.engine import Reranker
from rankgate.errors import MissingDependencyError
from rankgate.insight.health import HealthSettings, measure
from rankgate.learn.data import TrainingRow

__all__ = ["MEASURES", "DevReport", "dev_report", "save_comparison_chart"]

MEASURES = ("nDCG@10", "RR@10", "R@1", "R@3")


@dataclass(frozen=True, slots=True)
class DevReport:
    """Mean measures over the dev queries, and ranking health."""

    queries: int
    measures: dict[str, float]
    top1_displaced: float | None
    mean_gap: float | None
    low_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dev_report(
    reranker: Reranker, rows: Sequence[TrainingRow], *, low_score: float | None = None
) -> DevReport:
    """Rank each dev row's documents with ``reranker`` and measure the ranking.

    Args:
        reranker: the model to measure.
        rows: dev rows (rows without positives are skipped: they cannot be judged).
        low_score: the low-score threshold of ranking health (default: the monitor's).
    """
    try:
        import ir_measures
    except ImportError:
        raise MissingDependencyError("ir-measures", "eval", "the dev-set report") from None
    threshold = HealthSettings().low_score if low_score is None else low_score
    measures = [ir_measures.parse_measure(m) for m in MEASURES]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    displaced: list[bool] = []
    gaps: list[float] = []
    low = docs = 0
    judged = [r for r in rows if r.pos]
    for n, row in enumerate(judged):
        qid = f"q{n}"
        texts = [*row.pos, *row.neg]
        ranked = reranker.rerank(row.query, texts)
        scores = [0.0] * len(texts)
        for result in ranked:
            scores[result.index] = result.score
        qrels[qid] = {f"d{i}": int(i < len(row.pos)) for i in range(len(texts))}
        # ir-measures breaks ties by id; a rank-derived score keeps the reranker's order.
        run[qid] = {f"d{r.index}": float(len(ranked) - k) for k, r in enumerate(ranked)}
        seen = measure(scores, low_score=threshold, ts=0.0)
        if seen.displaced is not None:
            displaced.append(seen.displaced)
        if seen.gap is not None:
            gaps.append(seen.gap)
        low += seen.low
        docs += seen.documents
    if not judged:
        return DevReport(0, dict.fromkeys(MEASURES, 0.0), None, None, None)
    means = ir_measures.calc_aggregate(measures, qrels, run)
    return DevReport(
        queries=len(judged),
        measures={name: float(means[m]) for name, m in zip(MEASURES, measures, strict=True)},
        top1_displaced=sum(displaced) / len(displaced) if displaced else None,
        mean_gap=sum(gaps) / len(gaps) if gaps else None,
        low_share=low / docs if docs else None,
    )


def save_comparison_chart(
    before: DevReport, after: DevReport, path: Path, *, title: str = "Dev set"
) -> Path:
    """Grouped bars, before and after, for each measure and the health rates, as PNG."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "eval", "the fine-tuning chart") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*MEASURES, "top-1 displaced", "low-score share"]

    def values(r: DevReport) -> list[float]:
        return [*(r.measures[m] for m in MEASURES), r.top1_displaced or 0.0, r.low_share or 0.0]

    # Okabe-Ito blue and orange: distinguishable with every common colour-vision deficiency.
    colours = {"before": "#0072B2", "after": "#E69F00"}
    fig, ax = plt.subplots(figsize=(8, 4.4), dpi=100, layout="constrained")
    width = 0.4
    for i, (label, report) in enumerate((("before", before), ("after", after))):
        xs = [m + i * width for m in range(len(names))]
        bars = ax.bar(
            xs,
            values(report),
            width,
            label=label,
            color=colours[label],
            hatch="" if i == 0 else "//",
            edgecolor="white",
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([m + width / 2 for m in range(len(names))])
    ax.set_xticklabels([n.replace("RR@", "MRR@") for n in names], fontsize=8)
    ax.set_ylim(0, 1.15)
    # The title names the caller's file: never read as mathtext (a $ in a path).
    ax.set_title(
        f"{title}: {after.queries} queries, before and after fine-tuning", parse_math=False
    )
    fig.legend(loc="outside lower center", ncol=2, frameon=False)  # below, clear of the bars
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
