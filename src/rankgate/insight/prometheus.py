"""Ranking health as Prometheus metrics, computed from the window when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from rankgate.insight.monitor import RankingHealth

__all__ = ["HealthCollector"]


class HealthCollector(Collector):
    """Gauges ``rankgate_ranking_*`` over the rolling window; NaN while a rate is undefined."""

    def __init__(self, health: RankingHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        h = self.health
        snap = h.snapshot()

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=float("nan") if value is None else value)

        yield gauge(
            "rankgate_ranking_window_reranks", "Reranks in the health window.", snap.requests
        )
        yield gauge(
            "rankgate_ranking_top1_displacement_rate",
            "Share of reranks in the window whose top document was not retrieval's first.",
            snap.displacement_rate,
        )
        yield gauge(
            "rankgate_ranking_top_gap_mean",
            "Mean top-1 minus top-2 normalized score over the window.",
            snap.mean_gap,
        )
        share = GaugeMetricFamily(
            "rankgate_ranking_low_score_share",
            "Share of documents under the low-score threshold: whole window, older, recent half.",
            labels=["part"],
        )
        for part, value in (
            ("window", snap.low_share),
            ("older", snap.low_share_older),
            ("recent", snap.low_share_recent),
        ):
            share.add_metric([part], float("nan") if value is None else value)
        yield share
        alert = GaugeMetricFamily(
            "rankgate_ranking_alert",
            "1 while a health metric is past its threshold.",
            labels=["metric"],
        )
        for metric, on in snap.alerts.items():
            alert.add_metric([metric], 1.0 if on else 0.0)
        yield alert
        yield CounterMetricFamily(
            "rankgate_ranking_reranks", "Reranks observed for ranking health.", value=h.total
        )
        yield CounterMetricFamily(
            "rankgate_ranking_top1_displaced",
            "Reranks whose top document was not retrieval's first.",
            value=h.total_displaced,
        )
