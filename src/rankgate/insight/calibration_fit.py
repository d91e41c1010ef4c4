"""Fitting a calibration: Platt scaling and isotonic regression, chosen on held-out pairs.

Judged pairs are scored through the library (:meth:`Reranker.compute_score`, raw logits) with the
model's own settings, so that the map fits the scores the model serves. Both maps are fitted in
k-fold cross-validation (stratified, the same folds on every run): every pair gets a held-out
prediction from a map fitted without it. The map with the lower held-out Brier score wins (Brier
stays finite where isotonic regression predicts exactly 0 or 1; log loss is reported too) and is
refitted on all the pairs. Expected calibration error, reliability bins and thresholds are all
measured on the held-out predictions. Needs scikit-learn, imported when fitting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rankgate.engine import Reranker
from rankgate.engine.batching import Progress
from rankgate.engine.calibration import (
    Calibration,
    FittedFor,
    HeldOut,
    IsotonicMap,
    Method,
    PlattMap,
    Target,
    Threshold,
    model_identity,
)
from rankgate.engine.scoring import sigmoid
from rankgate.errors import InputError, LabelsError, MissingDependencyError
from rankgate.insight.labels import JudgedPairs, read_labels

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_FOLDS",
    "MIN_PAIRS",
    "CalibrationReport",
    "ReliabilityBin",
    "calibrate",
    "check_judged",
    "choose_threshold",
    "expected_calibration_error",
    "fit_calibration",
    "reliability",
]

DEFAULT_BINS = 10
DEFAULT_FOLDS = 5
MIN_PAIRS = 40
"""Fewest judged pairs a calibration is fitted on (and at least 10 of each kind)."""
_MIN_PER_CLASS = 10
# Platt's slope is lightly regularized so that perfectly separated labels still give a finite
# slope; at a few dozen pairs and more it moves a and b by well under a percent.
_PLATT_C = 100.0
_LOG_LOSS_EPS = 1e-6
_GRID = 1e4  # thresholds on a 0.0001 grid, so that the printed value is the exact one


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One equal-width score bin of a reliability diagram."""

    lower: float
    upper: float
    count: int
    mean_score: float
    observed: float
    """The share of the bin's pairs that are relevant."""


@dataclass(frozen=True, slots=True, eq=False)
class CalibrationReport:
    """What :func:`calibrate` found: the calibration and the numbers behind it.

    Attributes:
        calibration: the chosen map, fitted on every pair, with its held-out figures.
        model: the model's id or directory, for titles.
        labels: 1 for relevant, per pair.
        raw: the model's raw logits, per pair.
        uncalibrated: the model's plain [0, 1] scores (sigmoid), per pair.
        held_out: per method, each pair's prediction by a map fitted without it.
        before: reliability bins of the plain scores.
        after: reliability bins of the chosen method's held-out predictions.
    """

    calibration: Calibration
    model: str
    labels: np.ndarray
    raw: np.ndarray
    uncalibrated: np.ndarray
    held_out: Mapping[str, np.ndarray]
    before: tuple[ReliabilityBin, ...]
    after: tuple[ReliabilityBin, ...]


def expected_calibration_error(
    scores: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    """ECE over ``bins`` equal-width bins of [0, 1]: the pair-weighted mean gap between each
    bin's mean score and its share of relevant pairs."""
    return sum(
        b.count * abs(b.mean_score - b.observed) for b in reliability(scores, labels, bins)
    ) / max(1, len(scores))


def reliability(
    scores: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> tuple[ReliabilityBin, ...]:
    """The non-empty equal-width bins of [0, 1] (a score of 1 falls in the last)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    index = np.clip((s * bins).astype(np.int64), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                ReliabilityBin(
                    b / bins,
                    (b + 1) / bins,
                    int(mask.sum()),
                    float(s[mask].mean()),
                    float(y[mask].mean()),
                )
            )
    return tuple(out)


def choose_threshold(
    scores: np.ndarray, labels: np.ndarray, target: Target, goal: float
) -> Threshold:
    """The threshold that meets a precision or recall goal when documents scoring at least it
    are kept.

    Precision: the lowest threshold whose kept pairs are at least ``goal`` relevant (keeping
    the most); when none is, the one with the best precision, marked not met. Recall: the
    highest threshold that still keeps ``goal`` of the relevant pairs (dropping the most).

    Raises:
        InputError: ``goal`` outside (0, 1], or no relevant pair.
    """
    if not 0.0 < goal <= 1.0:
        raise InputError(f"a {target} target must be in (0, 1], not {goal}")
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    positives = int(y.sum())
    if positives == 0:
        raise InputError("no relevant pair to measure a threshold on")
    grid = np.unique(np.floor(s * _GRID) / _GRID)
    order = np.argsort(s, kind="stable")
    sorted_s, sorted_y = s[order], y[order]
    start = np.searchsorted(sorted_s, grid, side="left")
    relevant_from = np.concatenate([np.cumsum(sorted_y[::-1])[::-1], [0]])
    kept = len(s) - start
    hits = relevant_from[start]
    precision = hits / np.maximum(kept, 1)
    recall = hits / positives
    if target == "precision":
        ok = np.flatnonzero(precision >= goal)
        i = int(ok[0]) if len(ok) else int(np.argmax(precision))
    else:
        ok = np.flatnonzero(recall >= goal)
        i = int(ok[-1]) if len(ok) else 0
    return Threshold(
        target=target,
        goal=goal,
        threshold=float(grid[i]),
        precision=float(precision[i]),
        recall=float(recall[i]),
        kept=float(kept[i] / len(s)),
        met=bool(len(ok)),
    )


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("scikit-learn", "eval", "Fitting a calibration") from None


def _fit_platt(raw: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=_PLATT_C).fit(raw.reshape(-1, 1), labels)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def _fit_isotonic(raw: np.ndarray, labels: np.ndarray) -> IsotonicMap:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(raw, labels.astype(np.float64))
    return IsotonicMap(model.X_thresholds_, model.y_thresholds_)


def _held_out_score(p: np.ndarray, labels: np.ndarray) -> HeldOut:
    clipped = np.clip(p, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    log_loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return HeldOut(brier=float(np.mean((p - labels) ** 2)), log_loss=float(log_loss))


def check_judged(relevant: int, total: int, folds: int, source: str | None = None) -> None:
    """Refuse pairs a calibration cannot be fitted on: one kind only, or too few.

    Raises:
        LabelsError: what is missing and how much is needed.
    """
    per_class = max(_MIN_PER_CLASS, folds)
    need = (
        f"calibration needs at least {MIN_PAIRS} judged pairs, with at least {per_class} "
        "relevant and as many not relevant (a few hundred give a steadier fit)"
    )
    if total == 0:
        raise LabelsError(f"no judged pairs; {need}", source)
    if relevant in (0, total):
        kind, other = ("relevant", "not relevant") if relevant else ("not relevant", "relevant")
        how = "label 0, or a 'neg' list" if relevant else "label 1 or more, or a 'pos' list"
        raise LabelsError(
            f"all {total} pairs are labelled {kind}: a calibration needs {other} pairs too "
            f"({how}); {need}",
            source,
        )
    if total < MIN_PAIRS or min(relevant, total - relevant) < per_class:
        raise LabelsError(
            f"{total} judged pairs ({relevant} relevant, {total - relevant} not); {need}", source
        )


def fit_calibration(
    raw: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    fitted_for: FittedFor,
    uncalibrated: np.ndarray | None = None,
    folds: int = DEFAULT_FOLDS,
    bins: int = DEFAULT_BINS,
    precision: float | None = None,
    recall: float | None = None,
    source: str | None = None,
) -> CalibrationReport:
    """Fit both maps on raw logits and binary labels and keep the better on held-out pairs.

    Args:
        raw: the model's raw logits, one per judged pair.
        labels: 1 for relevant, 0 for not.
        fitted_for: the model settings the logits were scored with.
        uncalibrated: the model's plain scores, for the "before" figures (default: sigmoid).
        folds: cross-validation folds (2 to 20).
        bins: equal-width bins of the calibration error and the reliability diagram.
        precision, recall: targets to find a threshold for.
        source: where the labels came from, for messages and the file.

    Raises:
        LabelsError: one kind of label only, too few pairs, or scores that fall as relevance
            rises. InputError: folds, bins or a target out of range.
        MissingDependencyError: scikit-learn is not installed.
    """
    x = np.asarray(raw, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError("raw scores and labels must be two lists of the same length")
    if not np.all(np.isfinite(x)):
        raise InputError("the raw scores must be finite numbers")
    if not 2 <= folds <= 20:
        raise InputError(f"folds must be between 2 and 20, not {folds}")
    if not 2 <= bins <= 100:
        raise InputError(f"bins must be between 2 and 100, not {bins}")
    check_judged(int(y.sum()), len(y), folds, source)
    _require_sklearn()
    from sklearn.model_selection import StratifiedKFold

    held_out = {"platt": np.empty_like(x), "isotonic": np.empty_like(x)}
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(
        x.reshape(-1, 1), y
    )
    for train, test in splits:
        a, b = _fit_platt(x[train], y[train])
        held_out["platt"][test] = sigmoid(a * x[test] + b)
        held_out["isotonic"][test] = _fit_isotonic(x[train], y[train])(x[test])
    scores = {name: _held_out_score(p, y) for name, p in held_out.items()}
    a, b = _fit_platt(x, y)
    if a <= 0:
        raise LabelsError(
            f"the model's scores do not rise with relevance on these pairs (Platt slope {a:.3g}): "
            "check that label 1 means relevant, and that the pairs are (query, document)",
            source,
        )
    chosen: Method = "isotonic" if scores["isotonic"].brier < scores["platt"].brier else "platt"
    mapping = _fit_isotonic(x, y) if chosen == "isotonic" else PlattMap(a, b)
    before = np.asarray(uncalibrated, dtype=np.float64) if uncalibrated is not None else sigmoid(x)
    after = held_out[chosen]
    targets: list[tuple[Target, float]] = []
    if precision is not None:
        targets.append(("precision", precision))
    if recall is not None:
        targets.append(("recall", recall))
    calibration = Calibration(
        map=mapping,
        fitted_for=fitted_for,
        rows=len(y),
        relevant=int(y.sum()),
        folds=folds,
        bins=bins,
        ece_before=expected_calibration_error(before, y, bins),
        ece_after=expected_calibration_error(after, y, bins),
        held_out=scores,
        thresholds=tuple(choose_threshold(after, y, t, g) for t, g in targets),
        labels=source,
        created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    )
    return CalibrationReport(
        calibration=calibration,
        model=fitted_for.model,
        labels=y,
        raw=x,
        uncalibrated=before,
        held_out=held_out,
        before=reliability(before, y, bins),
        after=reliability(after, y, bins),
    )


def calibrate(
    reranker: Reranker,
    labels: JudgedPairs | Path | str,
    *,
    folds: int = DEFAULT_FOLDS,
    bins: int = DEFAULT_BINS,
    precision: float | None = None,
    recall: float | None = None,
    progress: Progress | None = None,
) -> CalibrationReport:
    """Score judged pairs with ``reranker`` and fit a calibration of its scores.

    The pairs are scored as the model serves them (its ``max_length`` and long-document
    policy); the calibration is not written anywhere: ``report.calibration.save(path)`` does.

    Args:
        reranker: the model to calibrate; a calibration it already has is ignored.
        labels: judged pairs, or a labels file (see :mod:`rankgate.insight.labels`).
        folds, bins, precision, recall: as :func:`fit_calibration`.
        progress: called with (pairs scored, pairs total).

    Example:
        >>> report = calibrate(Reranker("my-model"), "judged.jsonl", precision=0.9)  # +SKIP
        >>> report.calibration.save("my-model/rankgate-calibration.json")        # +SKIP

    Raises:
        LabelsError: a malformed labels file (line named), one kind of label, too few pairs.
        MissingDependencyError: scikit-learn is not installed.
    """
    judged = labels if isinstance(labels, JudgedPairs) else read_labels(labels)
    check_judged(judged.relevant, len(judged), folds, judged.source)
    raw = np.asarray(
        reranker.compute_score(judged.pairs, normalize=False, progress=progress), dtype=np.float64
    )
    s = reranker.settings
    fitted_for = FittedFor(
        model=model_identity(reranker.backend.model_id),
        revision=s.revision,
        max_length=reranker.max_length,
        long_documents=s.long_documents,
        backend=reranker.backend.name,
    )
    return fit_calibration(
        raw,
        judged.label_array(),
        fitted_for=fitted_for,
        uncalibrated=reranker.uncalibrated_relevance(raw),
        folds=folds,
        bins=bins,
        precision=precision,
        recall=recall,
        source=judged.source,
    )
