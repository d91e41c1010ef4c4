"""Typed funnel settings; each field is also a ``RANKGATE_*`` environment variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.errors import ConfigError

__all__ = ["DEFAULT_EMBEDDING_MODEL", "FunnelSettings", "build_funnel_settings"]

DEFAULT_EMBEDDING_MODEL = "BAAI/bge-m3"


class FunnelSettings(BaseSettings):
    """Where the index lives, how it is built, and where each funnel stage cuts."""

    # extra="ignore": the same RANKGATE_ namespace also holds the reranker's and server's settings.
    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="ignore", frozen=True)

    index_dir: Path = Field(
        Path("rankgate-index"),
        description="Directory of the on-disk index. The commands default to ./rankgate-index; "
        "the server offers search only when this (or milvus_uri) is set.",
    )
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model (hub id or local directory) for dense vectors. "
        f"Default: the one the index was built with, else {DEFAULT_EMBEDDING_MODEL} (2.3 GB; "
        f"fetch it once with `rankgate download {DEFAULT_EMBEDDING_MODEL}`).",
    )
    embedding_device: str = Field("cpu", description="Device for the embedding model.")
    embedding_batch_size: int = Field(32, ge=1, description="Texts per embedding batch.")
    passage_words: int = Field(
        200, ge=16, description="Longest passage, in words (CJK characters count as words)."
    )
    passage_overlap: int = Field(
        40, ge=0, description="Words shared by consecutive passages of a long text."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    retrieve_top_k: int = Field(50, ge=1, description="Candidates the first stage recalls.")
    rerank_top_n: int = Field(10, ge=1, description="Candidates the reranker keeps.")
    final_top_n: int = Field(3, ge=1, description="Documents that survive the rules and are kept.")
    rules_file: Path | None = Field(None, description="TOML file of funnel rules.")
    templates_file: Path | None = Field(None, description="TOML file of extra query templates.")
    milvus_uri: str | None = Field(
        None, description="Milvus URI (a local .db path for Milvus Lite, or http://host:19530)."
    )
    milvus_token: str | None = Field(None, description="Milvus token (user:password or API key).")
    milvus_collection: str = Field("rankgate", description="Milvus collection name.")


def build_funnel_settings(
    settings: FunnelSettings | None = None, **overrides: object
) -> FunnelSettings:
    """Explicit overrides (``None`` ignored) > environment > defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        if settings is None:
            return FunnelSettings(**given)  # type: ignore[arg-type]
        return FunnelSettings(**{**settings.model_dump(), **given}) if given else settings
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid funnel settings: {problems}") from None
