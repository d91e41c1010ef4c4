"""Backends: one model family each; only these modules import torch, transformers or onnxruntime."""

from __future__ import annotations

from rankgate.backends.base import Backend, EncodedPair, PairTemplate
from rankgate.config import RerankerSettings
from rankgate.errors import ConfigError

__all__ = ["Backend", "EncodedPair", "PairTemplate", "load_backend"]


def load_backend(settings: RerankerSettings) -> Backend:
    """Resolve the model's files and load the backend the settings name.

    Raises:
        ModelNotFoundError: the model is neither local, cached nor downloadable.
        ModelLoadError: the files are there but do not load as a reranker.
        MissingDependencyError: the backend's extra is not installed.
    """
    from rankgate.backends.hub import resolve_model_dir

    if settings.backend == "onnx":
        if settings.dtype not in {"auto", "float32"}:
            raise ConfigError(
                f"dtype {settings.dtype} is for the torch backend; the ONNX backend runs the "
                "exported graph (model.onnx in fp32, model_int8.onnx in int8)"
            )
        if settings.recipe != "auto":
            raise ConfigError("--recipe is for decoder (LLM) rerankers, which run on torch only")
        from rankgate.backends.hub import ONNX_PATTERNS
        from rankgate.backends.onnx_backend import OnnxBackend

        model_dir = resolve_model_dir(
            settings.model,
            revision=settings.revision,
            cache_dir=settings.cache_dir,
            offline=settings.offline,
            patterns=ONNX_PATTERNS,
        )
        return OnnxBackend(
            model_dir,
            model_id=settings.model,
            threads=settings.threads,
            file=settings.onnx_file,
            device=settings.device,
        )
    from rankgate.backends.torch_backend import TorchBackend

    model_dir = resolve_model_dir(
        settings.model,
        revision=settings.revision,
        cache_dir=settings.cache_dir,
        offline=settings.offline,
    )
    from rankgate.backends.decoder import DecoderBackend, is_causal_lm

    if is_causal_lm(model_dir):
        return DecoderBackend(
            model_dir,
            model_id=settings.model,
            recipe=settings.recipe,
            device=settings.device,
            dtype=settings.dtype,
            threads=settings.threads,
            reuse_memory=settings.reuse_memory,
            prefix_cache=settings.prefix_cache,
            packed=settings.packed,
            cpu_matmul=settings.cpu_matmul,
        )
    if settings.recipe != "auto":
        raise ConfigError(
            f"'{settings.model}' is an encoder cross-encoder; --recipe is for decoder (LLM) "
            "rerankers only"
        )
    return TorchBackend(
        model_dir,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        threads=settings.threads,
        reuse_memory=settings.reuse_memory,
        packed=settings.packed,
        cpu_matmul=settings.cpu_matmul,
        bf16_probe=settings.bf16_probe,
    )
