"""Typed settings. Precedence: explicit argument > ``RANKGATE_*`` environment variable > default.

This is the only module that reads the environment, and it does so when a settings object is
built, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rankgate.errors import ConfigError
from rankgate.types import DEFAULT_MODEL, CpuMatmul, DType, LongDocumentPolicy

__all__ = ["RerankerSettings", "SpaceSeparated", "build_settings", "settings_or_error"]


def _words(value: Any) -> Any:
    return tuple(value.split()) if isinstance(value, str) else value


SpaceSeparated = Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(_words)]
"""A setting of several words (a repeatable option): space-separated in its environment
variable, as click splits a repeatable option's variable, so that the variable means the same to
the command line and to a settings class read elsewhere (the server)."""


class RerankerSettings(BaseSettings):
    """How the model is loaded and how pairs are built and batched."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="forbid", frozen=True)

    model: str = Field(
        DEFAULT_MODEL,
        description="Hub id or local directory of a reranker (a cross-encoder or an LLM reranker).",
        json_schema_extra={"flags": ["--model", "-m"]},
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    cache_dir: Path | None = Field(
        None,
        description="Hugging Face cache directory.",
        json_schema_extra={"default_text": "$HF_HOME/hub"},
    )
    offline: bool = Field(
        False,
        description="Never contact the hub (HF_HUB_OFFLINE=1 also works); load only from a "
        "directory or the cache.",
        json_schema_extra={"flags": ["--offline/--online"]},
    )
    backend: Literal["torch", "onnx"] = Field(
        "torch", description="Inference backend: torch, or onnx (a directory rankgate export made)."
    )
    recipe: str = Field(
        "auto",
        description="Decoder (LLM) rerankers: the prompt and how the score is read. auto: "
        "recognised from the checkpoint (architecture, tokenizer, name); qwen3, bge-gemma, "
        "mxbai-v2, bge-gemma2-lightweight, bge-minicpm-layerwise; or the path of a JSON recipe "
        "file (its fields, or a built-in base and the fields that differ, e.g. cutoff_layer).",
    )
    onnx_file: str | None = Field(
        None,
        description="With the onnx backend: the ONNX file in the model directory, e.g. "
        "model_int8.onnx.",
        json_schema_extra={"default_text": "model.onnx, then onnx/model.onnx"},
    )
    device: str = Field(
        "auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."
    )
    dtype: DType = Field(
        "auto",
        description="auto (float16 on CUDA, float32 elsewhere), float32, float16, bfloat16, "
        "bf16-mixed (cross-encoders: linear layers in bf16, residual stream, norms and head in "
        "fp32; fast on CPUs with AMX or AVX512-BF16).",
    )
    cpu_matmul: CpuMatmul = Field(
        "auto",
        description="Library of the fp32 linear layers on the CPU (cross-encoders' packed passes, "
        "decoder rerankers' every pass): blas (torch's, MKL), onednn, or auto (oneDNN on AMD "
        "CPUs with AVX-512, where MKL runs fp32 at about half the speed; MKL elsewhere). Both "
        "are exact fp32.",
    )
    bf16_probe: bool | None = Field(
        None,
        description="At load, score a fixed probe set in fp32 and bf16-mixed and report the "
        "speed-up and the largest score change (rankgate info, /info, the load log).",
        json_schema_extra={
            "default_text": "on CPUs with AMX or AVX512-BF16 when dtype is auto",
            "flags": ["--bf16-probe/--no-bf16-probe"],
        },
    )
    max_length: int | None = Field(
        None,
        ge=32,
        description="Tokens per pair (query + document + special tokens); the query keeps at most "
        "3/4. Decoder rerankers follow their reference: qwen3 the whole prompt (8192), "
        "bge-gemma the passage (512; the prompt comes on top), mxbai-v2 query and document "
        "(8192).",
        json_schema_extra={"default_text": "1024, or the model's limit if smaller"},
    )
    long_documents: LongDocumentPolicy = Field(
        "chunk",
        description="chunk: overlapping windows, keep the best; truncate: cut; reject: error.",
    )
    chunk_overlap: int = Field(
        64,
        ge=0,
        description="Tokens shared by consecutive windows of a long document (at most half one).",
    )
    max_chunks: int | None = Field(
        None,
        ge=1,
        description="Most windows scored per long document.",
        json_schema_extra={"default_text": "no limit"},
    )
    batch_tokens: int | None = Field(
        None,
        ge=1,
        description="Tokens computed per forward pass, padding included (a prefix several "
        "pairs share counted once).",
        json_schema_extra={"default_text": "16384 on CUDA, 4096 elsewhere"},
    )
    max_batch_size: int = Field(128, ge=1, description="Most pairs per forward pass.")
    batch_overhead_tokens: int | None = Field(
        None,
        ge=0,
        description="What one more forward pass costs, in padded tokens: the batch planner "
        "trades padding against passes.",
        json_schema_extra={
            "default_text": "from the model's size on CPU (64 for bge-reranker-v2-m3), 2048 on "
            "accelerators"
        },
    )
    reuse_memory: bool = Field(
        True,
        description="CPU inference on Linux: keep freed memory for reuse (glibc mallopt) rather "
        "than paying page faults again on every forward pass; the process keeps its peak memory.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads for inference.",
        json_schema_extra={"default_text": "one per CPU this process may use"},
    )
    prefix_cache: bool = Field(
        True,
        description="Decoder (LLM) rerankers: compute the prompt and the query once for all the "
        "documents that share them and reuse their key/value cache (exact with causal "
        "attention; packed passes keep it for a request's later passes); false scores every "
        "pair whole.",
    )
    packed: bool | None = Field(
        None,
        description="torch backend, BERT-family and decoder (LLM) rerankers: run forward passes "
        "on real tokens only (pairs concatenated, attention per pair; encoders: the last layer "
        "on the first token; decoders: a shared prefix once), checked against the stock forward "
        "when the model loads; off on CUDA unless asked for (not yet measured there).",
        json_schema_extra={"flags": ["--packed/--padded"], "default_text": "on CPU"},
    )
    calibration: str | None = Field(
        None,
        description="A calibration file written by rankgate calibrate (or the directory that "
        "holds rankgate-calibration.json): scores become the calibrated probability that a "
        "document is relevant (raw logits unchanged). none: plain sigmoid scores, even when "
        "the model directory holds a calibration.",
        json_schema_extra={
            "default_text": "rankgate-calibration.json in a local model directory, if there"
        },
    )


def build_settings(
    settings: RerankerSettings | None = None, **overrides: object
) -> RerankerSettings:
    """Build settings from explicit overrides (``None`` values are ignored), env and defaults.

    Raises:
        ConfigError: when a value is invalid; the message names the setting.
    """
    return settings_or_error(RerankerSettings, "settings", overrides, settings)


Settings = TypeVar("Settings", bound=BaseModel)


def settings_or_error(
    model: type[Settings],
    what: str,
    overrides: Mapping[str, object],
    base: Settings | None = None,
    unnamed: str = "settings",
    missing: Callable[[str], str] | None = None,
) -> Settings:
    """``model`` from explicit overrides (``None`` values are ignored) over ``base`` (or the
    environment and the defaults): the one way every settings class is built.

    Raises:
        ConfigError: a value is invalid; ``invalid {what}: field: problem; ...`` (``unnamed``
            stands for a problem of the whole object; ``missing(field)``, when given, says how
            to supply a required setting that was neither given nor in the environment).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        if base is None:
            return model(**given)
        return model(**{**base.model_dump(), **given}) if given else base
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {_problems(exc, unnamed, missing)}") from None


def _problems(exc: ValidationError, unnamed: str, missing: Callable[[str], str] | None) -> str:
    texts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if missing is not None and e["type"] == "missing" and len(e["loc"]) == 1:
            texts.append(missing(loc))
        else:
            texts.append(f"{loc or unnamed}: {e['msg']}")
    return "; ".join(texts)
