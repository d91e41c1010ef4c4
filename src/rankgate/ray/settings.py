"""Settings of the Ray integration, each also an environment variable.

``RaySettings`` (prefix ``RANKGATE_RAY_``) says where Ray runs and how the Serve deployment is
sized; ``BatchSettings`` (prefix ``RANKGATE_BATCH_``) tunes ``score-batch``. Model options stay in
:class:`rankgate.config.RerankerSettings` and HTTP options in
:class:`rankgate.server.ServerSettings`. Precedence: explicit value > environment > default; the
environment is read when an object is built, never at import time.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.config import settings_or_error

__all__ = ["BatchSettings", "RaySettings", "build_batch_settings", "build_ray_settings"]


class RaySettings(BaseSettings):
    """Where Ray runs and how many Serve replicas score requests."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_RAY_", extra="forbid", frozen=True)

    address: str | None = Field(
        None,
        description="Ray cluster to join: auto (the cluster this machine belongs to), HOST:PORT "
        "(its GCS) or ray://HOST:10001 (Ray Client).",
        json_schema_extra={"flags": ["--address"], "default_text": "start a local Ray"},
    )
    replicas: int | None = Field(
        None,
        ge=1,
        description="Fixed number of Serve replicas when no autoscaling bounds are set.",
        json_schema_extra={"default_text": "one per GPU in the cluster, or 1 without GPUs"},
    )
    min_replicas: int | None = Field(
        None,
        ge=0,
        description="Autoscaling lower bound; set with --max-replicas to autoscale.",
        json_schema_extra={"default_text": "no autoscaling"},
    )
    max_replicas: int | None = Field(
        None,
        ge=1,
        description="Autoscaling upper bound; set with --min-replicas to autoscale.",
        json_schema_extra={"default_text": "no autoscaling"},
    )
    target_ongoing_requests: float = Field(
        2.0, gt=0, description="Autoscaling target: requests in flight per replica."
    )
    max_ongoing_requests: int = Field(
        8,
        ge=1,
        description="Requests one replica works on at once (its own batcher merges them into "
        "model steps); further requests wait in Ray Serve's queue.",
    )
    max_queued_requests: int | None = Field(
        64,
        ge=1,
        description="Requests waiting in Ray Serve's queue (per proxy) for a replica; beyond it "
        "requests get 429 with Retry-After; None (from Python) leaves it unbounded.",
    )
    retry_after_s: float = Field(
        1.0, ge=0, description="Retry-After (seconds) sent with a 429 from Ray Serve's queue."
    )
    num_gpus_per_replica: float | None = Field(
        None,
        ge=0,
        description="GPUs each replica reserves.",
        json_schema_extra={"default_text": "1 when the cluster has GPUs, else 0"},
    )
    num_cpus_per_replica: float = Field(
        1.0,
        ge=0,
        description="CPUs each replica reserves; on CPU-only replicas also torch's threads unless "
        "RANKGATE_THREADS is set.",
    )
    app_name: str = Field(
        "rankgate", min_length=1, description="Ray Serve application (and deployment) name."
    )

    @model_validator(mode="after")
    def _bounds(self) -> RaySettings:
        lo, hi = self.min_replicas, self.max_replicas
        if (lo is None) != (hi is None):
            raise ValueError("set both min_replicas and max_replicas to autoscale, or neither")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_replicas ({lo}) exceeds max_replicas ({hi})")
        if lo is not None and self.replicas is not None:
            raise ValueError("replicas is a fixed count; drop it when autoscaling bounds are set")
        return self

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None


class BatchSettings(BaseSettings):
    """How ``score-batch`` splits, batches and spreads the work."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_BATCH_", extra="forbid", frozen=True)

    actors: int = Field(1, ge=1, description="Model actors scoring in parallel (one model each).")
    batch_size: int = Field(
        256,
        ge=1,
        description="Pairs handed to an actor at once (Ray Data's batch size), and the most "
        "pairs per forward pass.",
    )
    shard_rows: int = Field(
        10_000,
        ge=1,
        description="Rows per output part. Each part is written atomically once scored, and a "
        "resumed run skips the parts already written.",
    )
    num_gpus_per_actor: float | None = Field(
        None,
        ge=0,
        description="GPUs each actor reserves.",
        json_schema_extra={"default_text": "1 when the cluster has GPUs, else 0"},
    )
    num_cpus_per_actor: float = Field(
        1.0, ge=0, description="CPUs each actor reserves (and torch's threads on CPU)."
    )
    resume: bool = Field(
        True,
        description="Skip the parts a previous run of the same job wrote (--restart: delete "
        "them and start over).",
        json_schema_extra={"flags": ["--resume/--restart"]},
    )
    progress: bool = Field(
        True,
        description="A progress bar of rows written (off: Ray Data's own bars).",
    )


def build_ray_settings(**overrides: object) -> RaySettings:
    """Ray settings from explicit overrides (``None`` values are ignored), env and defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    return settings_or_error(RaySettings, "Ray settings", overrides)


def build_batch_settings(**overrides: object) -> BatchSettings:
    """Batch settings from explicit overrides (``None`` values are ignored), env and defaults.

    Raises:
        ConfigError: a value is invalid; the message names the setting.
    """
    return settings_or_error(BatchSettings, "batch settings", overrides)
