"""The settings of ``rankgate demo`` and ``rankgate health``: their options are derived from these
fields (:mod:`rankgate.cli.options`), and the docs' tables too."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DemoSettings", "HealthReportSettings"]


class DemoSettings(BaseSettings):
    """The options of ``rankgate demo`` and ``rankgate demo trap`` (prefix ``RANKGATE_DEMO_``)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_DEMO_", extra="forbid", frozen=True)

    lang: str = Field(
        "en",
        description="Scenario language: zh en ja ko fr es de ru pt it, or a cross-lingual pair "
        "such as zh-en (Chinese query, English documents). `rankgate demo list` shows all.",
        json_schema_extra={"flags": ["--lang", "-l"]},
    )
    scenario: str = Field(
        "tesla-winter-range",
        description="demo trap: the scenario id (`rankgate demo list`).",
        json_schema_extra={"flags": ["--scenario", "-s"]},
    )
    chart: Path | None = Field(
        None,
        description="Write a PNG bar chart of the scores here.",
        json_schema_extra={"default_text": "none; demo trap: rankgate-SCENARIO-LANG.png"},
    )
    no_chart: bool = Field(
        False,
        description="demo trap: do not write a chart.",
        json_schema_extra={"flags": ["--no-chart"]},
    )
    explain: bool = Field(False, description="demo: also explain each score by sentence.")
    top: int = Field(2, ge=0, description="demo trap: sentences to list per document.")


class HealthReportSettings(BaseSettings):
    """The options of ``rankgate health`` (prefix ``RANKGATE_HEALTH_REPORT_``; the monitor's own
    thresholds are :class:`~rankgate.insight.health.HealthSettings`, ``RANKGATE_HEALTH_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="RANKGATE_HEALTH_REPORT_", extra="forbid", frozen=True, validate_by_name=True
    )

    log: Path | None = Field(None, description="A JSON Lines request log (see docs/insight.md).")
    url: str | None = Field(None, description="A running server, e.g. http://127.0.0.1:8000.")
    chart: Path = Field(Path("rankgate-health.png"), description="PNG chart over time.")
    no_chart: bool = Field(
        False, description="Do not write a chart.", json_schema_extra={"flags": ["--no-chart"]}
    )
    # The key a client of the server sends, one variable for every client on this machine (the
    # server's own are RANKGATE_API_KEYS).
    api_key: str | None = Field(
        None,
        validation_alias="RANKGATE_API_KEY",
        description="Bearer key for --url (one of the server's --api-keys).",
        json_schema_extra={"flags": ["--api-key"]},
        repr=False,
    )
