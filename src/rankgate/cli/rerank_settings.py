"""The per-call settings of ``rankgate rerank``: its options are derived from these fields
(:mod:`rankgate.cli.options`), and the docs' table too. How the model is loaded is
:class:`~rankgate.config.RerankerSettings`; ``--json`` is the output switch every command shares
(:class:`~rankgate.cli.command_settings.OutputSettings`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.config import SpaceSeparated

__all__ = ["RerankCallSettings"]


class RerankCallSettings(BaseSettings):
    """What ``rankgate rerank`` asks and how it reads and shows it (prefix ``RANKGATE_``)."""

    # The same RANKGATE_ namespace holds the model's settings: the environment sets both.
    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="forbid", frozen=True)

    query: str = Field(
        description="The question to rank documents for.",
        json_schema_extra={"flags": ["--query", "-q"]},
    )
    top_n: int | None = Field(
        None,
        ge=1,
        description="Show the best N.",
        json_schema_extra={"flags": ["--top-n", "-n"], "default_text": "all"},
    )
    raw_scores: bool = Field(
        False,
        description="Raw logits instead of 0-1 scores.",
        json_schema_extra={"flags": ["--raw-scores"]},
    )
    rank_fields: SpaceSeparated = Field(
        None,
        description="For JSON documents: a field to score (repeat, in order; the variable takes "
        "them space-separated).",
        json_schema_extra={"flags": ["--rank-field"], "default_text": "text"},
    )
    format: str = Field(
        "auto",
        description="auto, jsonl or lines.",
        json_schema_extra={"flags": ["--format"]},
    )
    instruction: str | None = Field(
        None,
        description="What relevance means here, for decoder rerankers (Qwen3-Reranker's "
        "Instruct, bge-reranker-v2-gemma's prompt, mxbai-rerank-v2's instruction).",
        json_schema_extra={
            "flags": ["--instruction", "-i"],
            "default_text": "the model's own; cross-encoders have none",
        },
    )
