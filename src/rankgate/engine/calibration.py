"""Calibrated relevance: a monotone map from a model's raw logit to the probability of relevance.

``rankgate calibrate`` fits the map on judged pairs and writes it as plain JSON,
``rankgate-calibration.json`` (never a pickle); this module reads it back and applies it with
numpy alone. Two kinds of map:

- Platt scaling: ``p = 1 / (1 + exp(-(a * logit + b)))`` with ``a > 0``;
- isotonic regression: ``p = np.interp(logit, x, y)``, a non-decreasing piecewise-linear curve
  through the points ``(x, y)``, constant beyond its ends.

Both never decrease, so a calibration changes scores and never the order of documents.

The file's keys (format version 1)::

    {"format": "rankgate-calibration", "version": 1,
     "method": "platt" | "isotonic",
     "parameters": {"a": float, "b": float} | {"x": [float, ...], "y": [float, ...]},
     "model": {"id", "revision", "max_length", "long_documents", "backend"},
     "data": {"labels", "rows", "relevant", "folds"},
     "held_out": {"platt": {"brier", "log_loss"}, "isotonic": {"brier", "log_loss"}},
     "ece": {"bins", "before", "after"},
     "thresholds": [{"target", "goal", "threshold", "precision", "recall", "kept", "met"}],
     "created": ISO 8601 time}
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np

from rankgate.engine.scoring import sigmoid
from rankgate.errors import CalibrationError

__all__ = [
    "CALIBRATION_FILE",
    "FORMAT_VERSION",
    "Calibration",
    "FittedFor",
    "HeldOut",
    "IsotonicMap",
    "Method",
    "PlattMap",
    "Target",
    "Threshold",
    "load_calibration",
    "model_identity",
]

log = logging.getLogger(__name__)

CALIBRATION_FILE = "rankgate-calibration.json"
"""The file name ``rankgate calibrate`` writes in a model directory, and loading looks for."""
FORMAT_VERSION = 1
_FORMAT = "rankgate-calibration"

Method: TypeAlias = Literal["platt", "isotonic"]
Target: TypeAlias = Literal["precision", "recall"]


@dataclass(frozen=True, slots=True)
class PlattMap:
    """Platt scaling: ``sigmoid(a * logit + b)``; ``a > 0`` keeps it increasing."""

    a: float
    b: float
    method: ClassVar[Method] = "platt"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a <= 0:
            raise ValueError(f"Platt parameters must be finite with a > 0, not a={self.a}")

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return sigmoid(self.a * np.asarray(raw, dtype=np.float64) + self.b)

    def parameters(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True, eq=False)
class IsotonicMap:
    """Isotonic regression: linear interpolation through ``(x, y)``, clipped at both ends.

    ``x`` and ``y`` are scikit-learn's ``X_thresholds_`` and ``y_thresholds_``; ``np.interp``
    gives what ``IsotonicRegression(out_of_bounds="clip").predict`` gives.
    """

    x: np.ndarray
    y: np.ndarray
    method: ClassVar[Method] = "isotonic"

    def __post_init__(self) -> None:
        x = np.array(self.x, dtype=np.float64)
        y = np.array(self.y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
            raise ValueError("isotonic x and y must be lists of the same, non-zero length")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("isotonic x and y must be finite numbers")
        if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
            raise ValueError("isotonic x and y must both be non-decreasing")
        if y[0] < 0 or y[-1] > 1:
            raise ValueError("isotonic y must lie in [0, 1]")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(raw, dtype=np.float64), self.x, self.y)

    def parameters(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "y": self.y.tolist()}


@dataclass(frozen=True, slots=True)
class FittedFor:
    """The model settings a calibration was fitted with: other settings give other scores."""

    model: str
    revision: str | None
    max_length: int
    long_documents: str
    backend: str = "torch"


@dataclass(frozen=True, slots=True)
class HeldOut:
    """A candidate map's error on held-out pairs (lower is better)."""

    brier: float
    log_loss: float


@dataclass(frozen=True, slots=True)
class Threshold:
    """A score threshold for a precision or recall target, measured on held-out pairs.

    Attributes:
        target: ``precision`` or ``recall``.
        goal: the value asked for, e.g. 0.9.
        threshold: keep documents whose calibrated score is at least this (the funnel's
            ``min_score``).
        precision: the share of kept pairs that are relevant.
        recall: the share of relevant pairs that are kept.
        kept: the share of all judged pairs that are kept.
        met: whether the goal is reached; when not, the threshold is the best there is.
    """

    target: Target
    goal: float
    threshold: float
    precision: float
    recall: float
    kept: float
    met: bool


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted calibration: the map, what it was fitted for, and how well it did.

    Example:
        >>> cal = Calibration.load("model/rankgate-calibration.json")  # doctest: +SKIP
        >>> cal.apply(np.array([-2.0, 0.0, 3.5]))                       # doctest: +SKIP
        array([0.04, 0.31, 0.93])
    """

    map: PlattMap | IsotonicMap
    fitted_for: FittedFor
    rows: int
    relevant: int
    folds: int
    bins: int
    ece_before: float
    ece_after: float
    held_out: Mapping[str, HeldOut] = field(default_factory=dict)
    thresholds: tuple[Threshold, ...] = ()
    labels: str | None = None
    created: str | None = None
    path: Path | None = None
    """Where it was read from or written to (not stored in the file)."""

    @property
    def method(self) -> Method:
        return self.map.method

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of raw aggregated logits; NaN stays NaN."""
        return self.map(raw)

    def to_dict(self) -> dict[str, Any]:
        f = self.fitted_for
        return {
            "format": _FORMAT,
            "version": FORMAT_VERSION,
            "method": self.method,
            "parameters": self.map.parameters(),
            "model": {
                "id": f.model,
                "revision": f.revision,
                "max_length": f.max_length,
                "long_documents": f.long_documents,
                "backend": f.backend,
            },
            "data": {
                "labels": self.labels,
                "rows": self.rows,
                "relevant": self.relevant,
                "folds": self.folds,
            },
            "held_out": {
                name: {"brier": h.brier, "log_loss": h.log_loss}
                for name, h in self.held_out.items()
            },
            "ece": {"bins": self.bins, "before": self.ece_before, "after": self.ece_after},
            "thresholds": [
                {
                    "target": t.target,
                    "goal": t.goal,
                    "threshold": t.threshold,
                    "precision": t.precision,
                    "recall": t.recall,
                    "kept": t.kept,
                    "met": t.met,
                }
                for t in self.thresholds
            ],
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "calibration") -> Calibration:
        """Read :meth:`to_dict`'s layout back.

        Raises:
            CalibrationError: not a rankgate calibration, a newer format, or a missing or
                invalid value (named).
        """
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise CalibrationError(f"{source} is not a rankgate calibration file")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CalibrationError(
                f"{source} has format version {version!r}; this rankgate reads version "
                f"{FORMAT_VERSION} (upgrade rankgate, or calibrate again)"
            )
        try:
            params = data["parameters"]
            method = data["method"]
            if method == "platt":
                mapping: PlattMap | IsotonicMap = PlattMap(float(params["a"]), float(params["b"]))
            elif method == "isotonic":
                mapping = IsotonicMap(np.asarray(params["x"]), np.asarray(params["y"]))
            else:
                raise ValueError(f"unknown method {method!r} (platt or isotonic)")
            model, stats, ece = data["model"], data["data"], data["ece"]
            return cls(
                map=mapping,
                fitted_for=FittedFor(
                    model=str(model["id"]),
                    revision=model.get("revision"),
                    max_length=int(model["max_length"]),
                    long_documents=str(model["long_documents"]),
                    backend=str(model.get("backend", "torch")),
                ),
                rows=int(stats["rows"]),
                relevant=int(stats["relevant"]),
                folds=int(stats["folds"]),
                labels=stats.get("labels"),
                bins=int(ece["bins"]),
                ece_before=float(ece["before"]),
                ece_after=float(ece["after"]),
                held_out={
                    name: HeldOut(float(h["brier"]), float(h["log_loss"]))
                    for name, h in data.get("held_out", {}).items()
                },
                thresholds=tuple(Threshold(**t) for t in data.get("thresholds", [])),
                created=data.get("created"),
            )
        except KeyError as exc:
            raise CalibrationError(f"{source}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{source}: {exc}") from None

    def save(self, path: Path | str) -> Calibration:
        """Write the JSON file; returns the calibration with its ``path`` set.

        Raises:
            CalibrationError: the file cannot be written.
        """
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CalibrationError(f"cannot write {path}: {exc.strerror}") from None
        return replace(self, path=path)

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        """Read a calibration file (or the ``rankgate-calibration.json`` of a directory).

        Raises:
            CalibrationError: no such file, not JSON, or not a valid calibration.
        """
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / CALIBRATION_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(
                f"calibration file {path}: no such file (run rankgate calibrate first, or "
                "pass --calibration none)"
            ) from None
        except OSError as exc:
            raise CalibrationError(f"cannot read {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CalibrationError(f"{path} is not valid JSON ({exc})") from None
        return replace(cls.from_dict(data, source=str(path)), path=path)

    def check(
        self,
        *,
        model: str,
        revision: str | None,
        max_length: int,
        long_documents: str,
        beside_model: bool = False,
    ) -> None:
        """Refuse a calibration fitted for another model or ``max_length``.

        A file in the model's own directory belongs to that model, whatever the directory is
        called now. Another revision or long-document policy gives somewhat different scores:
        a warning, not an error.

        Raises:
            CalibrationError: another model, or another ``max_length``.
        """
        f = self.fitted_for
        where = self.path or "the calibration"
        if not beside_model and model_identity(model) != f.model:
            raise CalibrationError(
                f"{where} was fitted for model {f.model!r}, not {model!r}: calibrate this "
                f"model (rankgate calibrate {model} --labels FILE), or pass --calibration none"
            )
        if max_length != f.max_length:
            raise CalibrationError(
                f"{where} was fitted with max_length {f.max_length}, but the model runs with "
                f"max_length {max_length}, which changes its scores: run with --max-length "
                f"{f.max_length}, or calibrate again with --max-length {max_length}"
            )
        if revision != f.revision:
            log.warning(
                "%s was fitted for revision %s of the model, which now loads revision %s; "
                "calibrate again if the weights changed",
                where,
                f.revision or "(default)",
                revision or "(default)",
            )
        if long_documents != f.long_documents:
            log.warning(
                "%s was fitted with long_documents=%s; the model now runs with %s, so scores "
                "of long documents may be calibrated less well",
                where,
                f.long_documents,
                long_documents,
            )


def model_identity(model: str) -> str:
    """How a calibration names its model: a local directory by its absolute path, else the id."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def load_calibration(
    setting: str | None,
    *,
    model: str,
    revision: str | None,
    max_length: int,
    long_documents: str,
) -> Calibration | None:
    """The calibration a model runs with, checked against it.

    Args:
        setting: the ``calibration`` setting: a file or directory, ``none`` for none, or None
            for the model directory's ``rankgate-calibration.json`` when there is one.
        model: the model's id or local directory.
        revision, max_length, long_documents: what the model runs with.

    Raises:
        CalibrationError: the file is missing or invalid, or fitted for another model or
            ``max_length``.
    """
    if setting is not None and setting.strip().lower() == "none":
        return None
    given = Path(model).expanduser()
    model_dir = given.resolve() if given.is_dir() else None
    if setting is None:
        if model_dir is None or not (model_dir / CALIBRATION_FILE).is_file():
            return None
        calibration = Calibration.load(model_dir / CALIBRATION_FILE)
    else:
        calibration = Calibration.load(setting)
    beside = (
        model_dir is not None
        and calibration.path is not None
        and calibration.path.resolve().parent == model_dir
    )
    calibration.check(
        model=model,
        revision=revision,
        max_length=max_length,
        long_documents=long_documents,
        beside_model=beside,
    )
    return calibration
