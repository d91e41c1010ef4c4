"""The switches of single commands that belong to no feature's settings class: how output is
printed, what ``download`` fetches, ``search --all``, and which models ``serve`` serves and
where. Their options are derived from these fields (:mod:`rankgate.cli.options`), as every other
option is, and the docs' tables too.

A field whose environment variable is not its class's prefix plus its name (``--json`` is
``RANKGATE_JSON`` for every command) names it as its ``validation_alias``; ``validate_by_name``
lets the command still pass it by field name.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.config import SpaceSeparated
from rankgate.types import DEFAULT_MODEL

__all__ = ["DownloadSettings", "OutputSettings", "SearchOutputSettings", "ServeCommandSettings"]


class OutputSettings(BaseSettings):
    """How a command prints its result (``RANKGATE_JSON``, shared by every command)."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_by_name=True)

    as_json: bool = Field(
        False,
        validation_alias="RANKGATE_JSON",
        description="Print JSON instead of a table (rankgate rerank: JSON Lines, one result a "
        "line).",
        json_schema_extra={"flags": ["--json"]},
    )


class SearchOutputSettings(BaseSettings):
    """What ``rankgate search`` lists (prefix ``RANKGATE_SEARCH_``)."""

    model_config = SettingsConfigDict(
        env_prefix="RANKGATE_SEARCH_", extra="forbid", frozen=True, validate_by_name=True
    )

    show_all: bool = Field(
        False,
        validation_alias="RANKGATE_SEARCH_ALL",
        description="Also list the candidates the reranker did not keep.",
        json_schema_extra={"flags": ["--all"]},
    )


class DownloadSettings(BaseSettings):
    """What ``rankgate download`` fetches (prefix ``RANKGATE_DOWNLOAD_``; the model and its
    revision are the model settings)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_DOWNLOAD_", extra="forbid", frozen=True)

    onnx: bool = Field(
        False,
        description="Fetch the ONNX files (for --backend onnx) instead of the safetensors.",
        json_schema_extra={"flags": ["--onnx"]},
    )


class ServeCommandSettings(BaseSettings):
    """Which models ``rankgate serve`` serves and whether on Ray (prefix ``RANKGATE_``, as the
    model settings: ``RANKGATE_MODEL`` is the one model every command loads)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="forbid", frozen=True)

    model: SpaceSeparated = Field(
        None,
        description="Hub id or local directory; repeat to serve several, each as NAME=MODEL to "
        "give its served name (a request's 'model' picks one; the first is the default; the "
        "variable takes them space-separated).",
        json_schema_extra={"flags": ["--model", "-m"], "default_text": DEFAULT_MODEL},
    )
    ray: bool = Field(
        False,
        description="Serve on Ray Serve replicas (needs the ray extra); see docs/ray.md.",
        json_schema_extra={"flags": ["--ray"]},
    )
