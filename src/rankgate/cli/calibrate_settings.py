"""The settings of ``rankgate calibrate``: its options are derived from these fields
(:mod:`rankgate.cli.options`), and the table of the README's calibration section too."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.engine.calibration import CALIBRATION_FILE
from rankgate.insight.calibration_fit import DEFAULT_BINS, DEFAULT_FOLDS, MIN_PAIRS

__all__ = ["CalibrateSettings"]


class CalibrateSettings(BaseSettings):
    """The options of ``rankgate calibrate`` (prefix ``RANKGATE_CALIBRATE_``); how the model is
    loaded is :class:`~rankgate.config.RerankerSettings`."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_CALIBRATE_", extra="forbid", frozen=True)

    labels: Path = Field(
        description='JSON Lines of judged pairs: {"query", "document", "label"} rows (relevant: '
        'label above 0, so graded labels work) or FlagEmbedding training rows {"query", "pos": '
        f'[...], "neg": [...]}}. At least {MIN_PAIRS} pairs, 10 of each kind.',
        json_schema_extra={"flags": ["--labels", "-l"]},
    )
    out: Path | None = Field(
        None,
        description="Where to write the calibration (JSON); a directory gets "
        f"{CALIBRATION_FILE} in it. A hub id needs it.",
        json_schema_extra={
            "flags": ["--out", "-o"],
            "default_text": f"{CALIBRATION_FILE} in MODEL's directory, where loading finds it",
        },
    )
    plot: Path | None = Field(
        None,
        description="Where to draw the reliability diagram (PNG).",
        json_schema_extra={"default_text": "beside the calibration, with a .png suffix"},
    )
    precision: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Recommend the lowest calibrated-score threshold whose kept documents are "
        "at least this precise (e.g. 0.9).",
    )
    recall: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Recommend the highest calibrated-score threshold that still keeps this "
        "share of the relevant documents (e.g. 0.8).",
    )
    folds: int = Field(
        DEFAULT_FOLDS,
        ge=2,
        le=20,
        description="Cross-validation folds: each pair is judged by a map fitted without it (the "
        "same folds on every run).",
    )
    bins: int = Field(
        DEFAULT_BINS,
        ge=2,
        le=100,
        description="Equal-width score bins of the calibration error and the diagram.",
    )
