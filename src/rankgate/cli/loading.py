"""Building a Reranker from command-line options."""

from __future__ import annotations

from collections.abc import Mapping

from rankgate.cli.common import quiet_libraries
from rankgate.config import RerankerSettings, build_settings
from rankgate.engine import Reranker

__all__ = ["MODEL_OPTIONS", "load_reranker", "model_settings"]

# The model options of cli.common, by parameter name. A command declares the ones it offers.
MODEL_OPTIONS = (
    "model",
    "revision",
    "backend",
    "recipe",
    "onnx_file",
    "device",
    "dtype",
    "max_length",
    "long_documents",
    "chunk_overlap",
    "max_chunks",
    "batch_tokens",
    "max_batch_size",
    "batch_overhead_tokens",
    "threads",
    "reuse_memory",
    "prefix_cache",
    "packed",
    "cpu_matmul",
    "bf16_probe",
    "offline",
    "cache_dir",
    "calibration",
)


def model_settings(options: Mapping[str, object]) -> RerankerSettings:
    """Model settings from a command's parameters (pass ``locals()``).

    Every model option the command declares is forwarded, so a new option cannot be forgotten
    at one call site; ``None`` means "not given" and leaves the environment or default in force.

    Raises:
        ConfigError: an invalid value, named.
    """
    given = {name: options[name] for name in MODEL_OPTIONS if name in options}
    return build_settings(None, **given)


def load_reranker(options: Mapping[str, object]) -> Reranker:
    """Load the model a command's parameters describe (pass ``locals()``)."""
    quiet_libraries()
    return Reranker(settings=model_settings(options))
