"""Backends: one model family each; only these modules import torch, transformers or onnxruntime."""

from __future__ import annotations

from rankgate.backends.base import Backend, EncodedPair, PairTemplate
from rankgate.config import RerankerSettings

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
    return TorchBackend(
        model_dir,
        model_id=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        threads=settings.threads,
        reuse_memory=settings.reuse_memory,
        packed=settings.packed,
    )
