"""``ServerSettings``: every option of ``rankgate serve``, each also a ``RANKGATE_*`` variable.

Model options (which model, device, ``max_length``, chunking) stay in
:class:`rankgate.config.RerankerSettings`; this object holds what only the HTTP server needs.
Precedence is the one of :func:`rankgate.config.build_settings`: explicit value > environment >
default. The environment is read when an object is built, never at import time.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rankgate.config import settings_or_error

__all__ = ["ServerSettings", "build_server_settings", "parse_size"]

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}b": 1000**n for n, p in enumerate("kmgt", 1)},
    **{f"{p}ib": 1024**n for n, p in enumerate("kmgt", 1)},
    **{f"{p}i": 1024**n for n, p in enumerate("kmgt", 1)},  # Kubernetes' Mi, Gi
}
MIN_CACHE_BYTES = 64 * 1024


def parse_size(text: str) -> int:
    """Bytes from ``"268435456"``, ``"256MiB"``, ``"1GB"``, ``"1.5 GiB"``: kB/MB/GB/TB are
    powers of 1000, KiB/MiB/GiB/TiB (or Ki/Mi/Gi/Ti) powers of 1024; case does not matter.

    Raises:
        ValueError: not a size, or a bare K/M/G/T (which could mean either).
    """
    found = _SIZE.fullmatch(text)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _UNITS:
        hint = (
            f"; {unit.upper()!r} could mean 1000 or 1024: write {unit.upper()}B or {unit.upper()}iB"
            if found is not None and unit in ("k", "m", "g", "t")
            else ""
        )
        raise ValueError(
            f"{text!r} is not a size: give bytes, or a number with a unit such as 256MiB or "
            f"1GB{hint}"
        )
    return int(float(found.group(1)) * _UNITS[unit])


class ServerSettings(BaseSettings):
    """How the HTTP server listens, admits, batches and limits requests."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_", extra="ignore", frozen=True)

    host: str = Field(
        "127.0.0.1", description="Address to listen on; 0.0.0.0 to accept other machines."
    )
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="TCP port to listen on.",
        json_schema_extra={"flags": ["--port", "-p"]},
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer API keys, comma-separated. Once set, every route except /health, "
        "/ready, /metrics and /v1/cluster/auth needs 'Authorization: Bearer KEY'; none: no "
        "authentication.",
    )
    public_playground: bool = Field(
        False,
        description="Serve the playground page (/ and its assets, no data) without an API key; "
        "the page's API calls still need one.",
        json_schema_extra={"flags": ["--public-playground/--private-playground"]},
    )
    served_model_name: str | None = Field(
        None,
        description="Model name shown in responses and /info.",
        json_schema_extra={"default_text": "the model's id"},
    )
    max_documents: int = Field(
        1000, ge=1, description="Most documents (or vLLM pairs) per request; more gives 413."
    )
    max_payload_bytes: int = Field(
        2_000_000, ge=1024, description="Largest request body in bytes; larger gives 413."
    )
    max_request_tokens: int = Field(
        262_144,
        ge=1,
        description="Most model tokens one request may need after chunking; more gives 422.",
    )
    max_queue_tokens: int = Field(
        1_048_576,
        ge=1,
        description="Tokens waiting for the model across all requests; beyond it requests get "
        "429 with Retry-After.",
    )
    batch_wait_ms: float = Field(
        3.0,
        ge=0,
        le=1000,
        description="How long an idle model waits for more requests to batch with the first.",
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=1,
        description="Tokens gathered from the queue for one model step (the model then splits "
        "them into forward passes of --batch-tokens).",
        json_schema_extra={"default_text": "--batch-tokens (one pass)"},
    )
    request_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Seconds a request may take before it fails with 504; it then stops "
        "computing at the next forward pass.",
    )
    low_priority_queue_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Share of max_queue_tokens that explanations and search may hold; beyond "
        "it they get 429 while rerank requests still get in (and are served first).",
    )
    max_pending_searches: int = Field(
        8,
        ge=1,
        description="Searches allowed in the first stage (embedding, retrieval) at once; more "
        "get 429 with Retry-After.",
    )
    keep_alive_s: float = Field(
        75.0,
        gt=0,
        description="Seconds an idle kept-alive connection stays open; above the 60 s most "
        "client pools reuse connections for, so a reused connection is never closed under them.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a client has to send the whole request body; a slower or stalled "
        "upload gets 408 and its connection is closed.",
    )
    liveness_stall_s: float = Field(
        120.0,
        gt=0,
        description="/health turns 503 when the model thread is busy and has finished no "
        "forward pass for this many seconds (stuck); a long queue alone is not a failure.",
    )
    auto_truncate: bool = Field(
        True,
        description="Truncate or chunk inputs longer than max_length. A TEI request's "
        "'truncate: false' opts out per request; too-long input then gives 422.",
    )
    tokenizer_workers: int = Field(
        2, ge=1, le=64, description="Threads that tokenize requests while the model runs."
    )
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM: /ready turns 503, new requests get 503, and in-flight "
        "requests have this many seconds to finish; what still runs at the deadline gets 503 "
        "and the process exits within this many seconds of the signal.",
    )
    cache_size: int = Field(
        0,
        ge=0,
        description="Memory for the score cache of each served model: bytes, or a size such as "
        "256MiB or 1GB; 0: off. A document scored before (same model, options, instruction, "
        "query and text) skips tokenization and the model, and its kept score comes back bit for "
        "bit; a request the cache answers whole never waits in the queue. The least recently "
        "used scores go first.",
        json_schema_extra={"default_text": "0 (off)"},
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Server log level: debug, info, warning or error."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("an API key is empty")
        return value

    @field_validator("cache_size", mode="before")
    @classmethod
    def _parse_size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("cache_size")
    @classmethod
    def _cache_holds_something(cls, value: int) -> int:
        if 0 < value < MIN_CACHE_BYTES:
            raise ValueError(
                f"{value} bytes is too small for a score cache (at least 64KiB; 0: off); "
                "did you mean a unit, such as 256MiB?"
            )
        return value

    @model_validator(mode="after")
    def _request_fits_queue(self) -> ServerSettings:
        if self.max_request_tokens > self.max_queue_tokens:
            raise ValueError(
                f"max_request_tokens ({self.max_request_tokens}) exceeds max_queue_tokens "
                f"({self.max_queue_tokens}); such a request could never be admitted"
            )
        return self


def build_server_settings(**overrides: object) -> ServerSettings:
    """Server settings from explicit overrides (``None`` values are ignored), env and defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    return settings_or_error(ServerSettings, "server settings", overrides)
