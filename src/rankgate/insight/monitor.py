"""``RankingHealth``: the rolling window behind ``/v1/health/ranking``, ``/metrics`` and warnings.

The server calls :meth:`RankingHealth.observe` once per rerank; each call updates the window and
logs a warning on ``rankgate.insight.health`` when a metric crosses its threshold (once, when it
crosses, not on every request while it stays there) and an info line when it recovers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rankgate.insight.health import (
    HealthSettings,
    HealthSnapshot,
    Observation,
    in_retrieval_order,
    measure,
    summarize,
)
from rankgate.insight.requestlog import LoggedRerank, record_line

__all__ = ["AlertEvent", "RankingHealth"]

log = logging.getLogger("rankgate.insight.health")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A metric crossed its threshold (``alerting`` True) or came back (False)."""

    ts: float
    request: int
    metric: str
    alerting: bool
    message: str


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _message(metric: str, snap: HealthSnapshot, s: HealthSettings) -> str:
    if metric == "displacement":
        return (
            f"top-1 displacement rate {_pct(snap.displacement_rate)} over the last "
            f"{snap.requests} reranks is under {_pct(s.displacement_min)}: reranking rarely "
            "changes the top document, so it may not be earning its place"
        )
    if metric == "gap":
        return (
            f"mean top-1/top-2 score gap {snap.mean_gap:.3f} over the last {snap.requests} "
            f"reranks is under {s.gap_min:g}: low discrimination or vague queries"
        )
    return (
        f"low-score document share (score < {s.low_score:g}) is {_pct(snap.low_share)}, "
        f"{_pct(snap.low_share_older)} in the older half of the window and "
        f"{_pct(snap.low_share_recent)} in the recent half: upstream retrieval may be decaying"
    )


class RankingHealth:
    """Thread-safe rolling window of ranking health over the last ``settings.window`` reranks.

    Args:
        settings: window and thresholds (default: ``RANKGATE_HEALTH_*`` variables and defaults).

    Example:
        >>> h = RankingHealth(HealthSettings(min_requests=1))
        >>> _ = h.observe([0.2, 0.9, 0.1])       # retrieval's first lost its place
        >>> h.snapshot().displacement_rate
        1.0
    """

    def __init__(self, settings: HealthSettings | None = None) -> None:
        self.settings = settings or HealthSettings()
        self._window: deque[Observation] = deque(maxlen=self.settings.window)
        self._alerting = {"displacement": False, "gap": False, "low_share": False}
        self._events: deque[AlertEvent] = deque(maxlen=100)
        self._lock = threading.Lock()
        self.total = 0
        self.total_displaced = 0

    def observe(
        self,
        scores: Sequence[float],
        *,
        retrieval_ranks: Sequence[int] | None = None,
        normalized: bool = True,
        timestamp: float | None = None,
        request_id: str | None = None,
    ) -> Observation:
        """Record one rerank.

        Args:
            scores: one score per document, in the order the documents were sent (which is the
                retrieval order unless ``retrieval_ranks`` says otherwise).
            retrieval_ranks: retrieval's rank of each document, lower is better.
            normalized: scores are in [0, 1]; False applies the sigmoid to raw logits first.
            timestamp: Unix time of the rerank (default: now).
            request_id: written to the request log, if one is configured.

        Raises:
            InputError: no scores, non-finite scores, or ranks that do not fit the scores.
        """
        ordered = in_retrieval_order(scores, retrieval_ranks)
        if not normalized:
            ordered = [1.0 / (1.0 + math.exp(-min(max(s, -700.0), 700.0))) for s in ordered]
        ts = time.time() if timestamp is None else timestamp
        obs = measure(ordered, low_score=self.settings.low_score, ts=ts)
        crossed: list[AlertEvent] = []
        with self._lock:
            self._window.append(obs)
            self.total += 1
            self.total_displaced += bool(obs.displaced)
            snap = summarize(self._window, self.settings)
            for metric, now in snap.alerts.items():
                if now != self._alerting[metric]:
                    self._alerting[metric] = now
                    event = AlertEvent(
                        ts, self.total, metric, now, _message(metric, snap, self.settings)
                    )
                    self._events.append(event)
                    crossed.append(event)
            if self.settings.log_path is not None:
                with self.settings.log_path.open("a", encoding="utf-8") as out:
                    out.write(record_line(ts, ordered, request_id) + "\n")
        for event in crossed:
            if event.alerting:
                log.warning("ranking health: %s", event.message)
            else:
                log.info("ranking health: %s is back within its threshold", event.metric)
        return obs

    def replay(self, records: Iterable[LoggedRerank]) -> list[Observation]:
        """Observe logged reranks in order (``rankgate health --log``); returns every observation.

        A line without ``ts`` takes its position in the log as its time.
        """
        return [
            self.observe(
                r.scores,
                retrieval_ranks=r.retrieval_ranks,
                normalized=r.normalized,
                timestamp=r.ts if r.ts is not None else float(n),
            )
            for n, r in enumerate(records)
        ]

    def snapshot(self) -> HealthSnapshot:
        """The current window's numbers and verdicts."""
        with self._lock:
            return summarize(self._window, self.settings)

    def observations(self) -> list[Observation]:
        """The window's observations, oldest first."""
        with self._lock:
            return list(self._window)

    def events(self) -> list[AlertEvent]:
        """The last 100 threshold crossings, oldest first."""
        with self._lock:
            return list(self._events)

    def report(self) -> dict[str, Any]:
        """The ``GET /v1/health/ranking`` body: snapshot, thresholds, window and crossings."""
        with self._lock:
            snap = summarize(self._window, self.settings)
            window = [
                {
                    "ts": o.ts,
                    "documents": o.documents,
                    "displaced": o.displaced,
                    "gap": o.gap,
                    "low": o.low,
                }
                for o in self._window
            ]
            events = [
                {
                    "ts": e.ts,
                    "request": e.request,
                    "metric": e.metric,
                    "alerting": e.alerting,
                    "message": e.message,
                }
                for e in self._events
            ]
            totals = {"reranks": self.total, "displaced": self.total_displaced}
        s = self.settings
        return {
            "snapshot": snap.to_dict(),
            "thresholds": {
                "window": s.window,
                "min_requests": s.min_requests,
                "displacement_min": s.displacement_min,
                "gap_min": s.gap_min,
                "low_score": s.low_score,
                "low_share_rise": s.low_share_rise,
                "low_share_max": s.low_share_max,
            },
            "totals": totals,
            "window": window,
            "events": events,
        }
