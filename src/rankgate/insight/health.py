"""Ranking health: three numbers that tell whether reranking still earns its place.

For each rerank whose retrieval order is known (the order documents were sent in, or ranks sent
with them) three things are measured, and over a rolling window of requests they become:

* **top-1 displacement rate**: the share of reranks whose best document was not retrieval's
  first. Under 15%, reranking rarely changes what the user sees: it may not earn its cost.
* **mean top-1/top-2 gap**: the mean difference between the two best scores. Under 0.1 the
  model barely tells the candidates apart: low discrimination or vague queries (healthy > 0.25).
* **low-score share**: the share of all documents scoring under ``low_score``. When it rises,
  upstream retrieval is sending worse candidates. "Rising" is measured by halving the window:
  an alert when the recent half's share exceeds the older half's by more than ``low_share_rise``
  or, when ``low_share_max`` is set, when the whole window's share exceeds it.

Thresholds assume normalized scores in [0, 1] (sigmoid of the logit). The functions here are
pure; :class:`~rankgate.insight.monitor.RankingHealth` keeps the window and raises the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.errors import InputError

__all__ = [
    "HealthSettings",
    "HealthSnapshot",
    "Observation",
    "in_retrieval_order",
    "low_count",
    "measure",
    "summarize",
    "top1_displaced",
    "top_gap",
]


_EPS = 1e-9


class HealthSettings(BaseSettings):
    """Window and thresholds of the ranking health monitor (env prefix ``RANKGATE_HEALTH_``)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_HEALTH_", extra="forbid", frozen=True)

    window: int = Field(500, ge=2, description="Reranks kept in the rolling window.")
    min_requests: int = Field(
        20, ge=1, description="Reranks in the window before any verdict or warning."
    )
    displacement_min: float = Field(
        0.15, ge=0, le=1, description="Warn when the top-1 displacement rate falls under this."
    )
    gap_min: float = Field(
        0.1, ge=0, le=1, description="Warn when the mean top-1/top-2 score gap falls under this."
    )
    low_score: float = Field(
        0.1, ge=0, le=1, description="A normalized score under this counts as a low-score document."
    )
    low_share_rise: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Warn when the recent half's low-score share exceeds the older half's by more.",
    )
    low_share_max: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="Warn when the window's low-score share exceeds this (None: off).",
    )
    log_path: Path | None = Field(
        None, description="Append one JSON line per observed rerank here (the request log)."
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """What one rerank says about ranking health.

    Attributes:
        ts: Unix time of the rerank.
        documents: how many documents were ranked.
        displaced: the best document was not retrieval's first (None for a single document).
        gap: best score minus second best (None for a single document).
        low: documents scoring under the low-score threshold.
    """

    ts: float
    documents: int
    displaced: bool | None
    gap: float | None
    low: int


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """The window's numbers and verdicts. A rate is None when no rerank in the window has one.

    Attributes:
        requests: reranks in the window.
        ready: at least ``min_requests`` reranks, so verdicts are given.
        displacement_rate: share of reranks (with 2+ documents) whose top-1 changed.
        mean_gap: mean top-1/top-2 gap over reranks with 2+ documents.
        low_share: low-score documents over all documents in the window.
        low_share_older: the same over the older half of the window.
        low_share_recent: the same over the recent half.
        alerts: metric name (``displacement``, ``gap``, ``low_share``) to whether it is alerting.
    """

    requests: int
    ready: bool
    displacement_rate: float | None
    mean_gap: float | None
    low_share: float | None
    low_share_older: float | None
    low_share_recent: float | None
    alerts: dict[str, bool]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_retrieval_order(
    scores: Sequence[float], retrieval_ranks: Sequence[int] | None = None
) -> list[float]:
    """Scores reordered so that retrieval's best comes first.

    Args:
        scores: one score per document, in the order the documents were sent.
        retrieval_ranks: retrieval's rank of each document (lower is better; 0- or 1-based).
            None: the sent order is the retrieval order.

    Raises:
        InputError: ranks of another length than the scores, or repeated ranks.
    """
    if retrieval_ranks is None:
        return [float(s) for s in scores]
    if len(retrieval_ranks) != len(scores):
        raise InputError(
            f"{len(retrieval_ranks)} retrieval ranks for {len(scores)} documents; give one each"
        )
    if len(set(retrieval_ranks)) != len(retrieval_ranks):
        raise InputError("retrieval ranks must not repeat")
    order = sorted(range(len(scores)), key=lambda i: retrieval_ranks[i])
    return [float(scores[i]) for i in order]


def top1_displaced(scores: Sequence[float]) -> bool | None:
    """Whether reranking put another document than retrieval's first on top.

    ``scores`` are in retrieval order. Ties keep retrieval's order, as ``rerank`` does, so a
    tie with the first document is not a displacement. None for fewer than two documents.
    """
    if len(scores) < 2:
        return None
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return best != 0


def top_gap(scores: Sequence[float]) -> float | None:
    """Best score minus second best; None for fewer than two documents."""
    if len(scores) < 2:
        return None
    first, second = sorted(scores, reverse=True)[:2]
    return first - second


def low_count(scores: Sequence[float], threshold: float) -> int:
    """How many scores are strictly under ``threshold``."""
    return sum(1 for s in scores if s < threshold)


def measure(
    scores_in_retrieval_order: Sequence[float], *, low_score: float, ts: float
) -> Observation:
    """The observation of one rerank.

    Raises:
        InputError: no scores, or a score that is NaN or infinite.
    """
    scores = list(scores_in_retrieval_order)
    if not scores:
        raise InputError("a rerank without documents says nothing about ranking health")
    if not all(math.isfinite(s) for s in scores):
        raise InputError("scores must be finite numbers")
    return Observation(
        ts=ts,
        documents=len(scores),
        displaced=top1_displaced(scores),
        gap=top_gap(scores),
        low=low_count(scores, low_score),
    )


def _low_share(observations: Sequence[Observation]) -> float | None:
    docs = sum(o.documents for o in observations)
    return sum(o.low for o in observations) / docs if docs else None


def summarize(observations: Sequence[Observation], settings: HealthSettings) -> HealthSnapshot:
    """The window's rates and verdicts (a verdict alerts only once ``ready``).

    Every comparison is strict: a displacement rate of exactly 15% or a gap of exactly 0.1 does
    not alert, a rate just under does. "Exactly" allows for float rounding (``_EPS``), so that a
    mean gap that is 0.1 on paper but 0.09999999999999998 in floats does not alert.
    """
    obs = list(observations)
    ranked = [o for o in obs if o.displaced is not None]
    rate = sum(bool(o.displaced) for o in ranked) / len(ranked) if ranked else None
    gaps = [o.gap for o in obs if o.gap is not None]
    gap = sum(gaps) / len(gaps) if gaps else None
    half = len(obs) // 2
    older, recent = _low_share(obs[:half]), _low_share(obs[half:])
    share = _low_share(obs)
    ready = len(obs) >= settings.min_requests
    rising = (
        older is not None and recent is not None and recent - older > settings.low_share_rise + _EPS
    )
    too_high = (
        settings.low_share_max is not None
        and share is not None
        and share > settings.low_share_max + _EPS
    )
    alerts = {
        "displacement": ready and rate is not None and rate < settings.displacement_min - _EPS,
        "gap": ready and gap is not None and gap < settings.gap_min - _EPS,
        "low_share": ready and (rising or too_high),
    }
    return HealthSnapshot(len(obs), ready, rate, gap, share, older, recent, alerts)
