"""Typed funnel settings; each field is also a ``RANKGATE_*`` environment variable.

The options of ``rankgate index``, ``search``, ``templates`` and ``eval`` are derived from these
fields (:mod:`rankgate.cli.options`), and the server's ``/v1/search`` reads the same ones, so a
variable means the same on the command line and on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.config import SpaceSeparated, settings_or_error

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "RULE_SETTINGS",
    "EvalSettings",
    "FunnelSettings",
    "build_eval_settings",
    "build_funnel_settings",
]

DEFAULT_EMBEDDING_MODEL = "BAAI/bge-m3"

RULE_SETTINGS = ("min_score", "max_age_days", "allow_sources", "deny_sources", "max_per_source")
"""The fields of :class:`FunnelSettings` that override a rule (:class:`~rankgate.funnel.Rules`)."""


class FunnelSettings(BaseSettings):
    """Where the index lives, how it is built, and where each funnel stage cuts."""

    # extra="ignore": the same RANKGATE_ namespace also holds the reranker's and server's settings.
    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="ignore", frozen=True)

    index_dir: Path = Field(
        Path("rankgate-index"),
        description="Directory of the on-disk index. The server offers search only when this "
        "(or milvus_uri) is set.",
        json_schema_extra={"flags": ["--index-dir", "-i"]},
    )
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model (hub id or local directory) for dense vectors; "
        f"fetch {DEFAULT_EMBEDDING_MODEL} (2.3 GB) once with "
        f"`rankgate download {DEFAULT_EMBEDDING_MODEL}`.",
        json_schema_extra={
            "default_text": f"the one the index was built with, else {DEFAULT_EMBEDDING_MODEL}"
        },
    )
    embedding_device: str = Field("cpu", description="Device for the embedding model.")
    embedding_batch_size: int = Field(32, ge=1, description="Texts per embedding batch.")
    passage_words: int = Field(
        200, ge=16, description="Longest passage, in words (CJK characters count as words)."
    )
    passage_overlap: int = Field(
        40, ge=0, description="Words shared by consecutive passages of a long text."
    )
    prune: bool = Field(
        False, description="When indexing: remove indexed documents whose id is not in DOCS."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    retrieve_top_k: int = Field(
        50,
        ge=1,
        description="Candidates the first stage recalls.",
        json_schema_extra={"flags": ["--retrieve-top-k", "-k"]},
    )
    rerank_top_n: int = Field(10, ge=1, description="Candidates the reranker keeps.")
    final_top_n: int = Field(
        3,
        ge=1,
        description="Documents that survive the rules and are kept.",
        json_schema_extra={"flags": ["--top-n", "-n"]},
    )
    template: str | None = Field(
        None,
        description="Query template for the reranker when a search names none: name or "
        "name@version (see `rankgate templates`; plain is the query unchanged).",
        json_schema_extra={"flags": ["--template", "-t"]},
    )
    templates_file: Path | None = Field(None, description="TOML file of extra query templates.")
    rules_file: Path | None = Field(
        None,
        description="TOML file of funnel rules; the rule settings below override it.",
        json_schema_extra={"default_text": "the built-in rules"},
    )
    min_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Rule: drop candidates whose rerank score is below this.",
        json_schema_extra={"default_text": "the rules file's, else 0.7"},
    )
    max_age_days: int | None = Field(
        None,
        ge=0,
        description="Rule: drop documents older than this many days.",
        json_schema_extra={"default_text": "the rules file's, else 730"},
    )
    allow_sources: SpaceSeparated = Field(
        None,
        description="Rule: only these sources pass (repeat the option; the variable takes them "
        "space-separated; hosts match their subdomains).",
        json_schema_extra={
            "flags": ["--allow-source"],
            "default_text": "the rules file's, else any",
        },
    )
    deny_sources: SpaceSeparated = Field(
        None,
        description="Rule: these sources never pass (repeat, or space-separated).",
        json_schema_extra={
            "flags": ["--deny-source"],
            "default_text": "the rules file's, else none",
        },
    )
    max_per_source: int | None = Field(
        None,
        ge=1,
        description="Rule: at most this many documents per source.",
        json_schema_extra={"default_text": "the rules file's, else no cap"},
    )
    milvus_uri: str | None = Field(
        None,
        description="Use Milvus instead of the embedded index: a local .db path (Milvus Lite) or "
        "http://host:19530.",
    )
    milvus_token: str | None = Field(None, description="Milvus token (user:password or API key).")
    milvus_collection: str = Field("rankgate", description="Milvus collection name.")

    def rule_overrides(self) -> dict[str, Any]:
        """The rule settings that are set, by rule name (for ``Rules.with_overrides``)."""
        values = {name: getattr(self, name) for name in RULE_SETTINGS}
        return {name: value for name, value in values.items() if value is not None}


class EvalSettings(BaseSettings):
    """What ``rankgate eval`` judges and where it writes (prefix ``RANKGATE_EVAL_``)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_EVAL_", extra="forbid", frozen=True)

    split: str = Field(
        "test", min_length=1, description="The qrels to judge with: qrels/SPLIT.tsv."
    )
    index_dir: Path | None = Field(
        None,
        description="Keep the corpus index here (reused next time).",
        json_schema_extra={"flags": ["--index-dir", "-i"], "default_text": "a temporary directory"},
    )
    chart: Path = Field(Path("rankgate-eval.png"), description="Where to write the PNG chart.")


def build_funnel_settings(
    settings: FunnelSettings | None = None, **overrides: object
) -> FunnelSettings:
    """Explicit overrides (``None`` ignored) > environment > defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    return settings_or_error(FunnelSettings, "funnel settings", overrides, settings)


def build_eval_settings(**overrides: object) -> EvalSettings:
    """Explicit overrides (``None`` ignored) > environment > defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    return settings_or_error(EvalSettings, "eval settings", overrides)
