"""Dense embedders: a small protocol and the sentence-transformers adapter.

This is the funnel's only model-family adapter; it imports sentence-transformers (and through it
torch) lazily, when the first embedder is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rankgate.errors import MissingDependencyError, ModelLoadError
from rankgate.funnel.types import ProgressFn

__all__ = ["Embedder", "SentenceTransformerEmbedder"]


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors (one row per text)."""

    name: str
    dim: int

    def embed(
        self, texts: Sequence[str], *, query: bool = False, progress: ProgressFn | None = None
    ) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers bi-encoder (``BAAI/bge-m3`` by default in the settings).

    Args:
        model: hub id or local directory.
        device: ``cpu``, ``cuda``, ...
        batch_size: texts per forward pass.
        offline: never contact the hub.

    Raises:
        MissingDependencyError: sentence-transformers is not installed.
        ModelLoadError: the model cannot be loaded.
    """

    def __init__(
        self, model: str, *, device: str = "cpu", batch_size: int = 32, offline: bool = False
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependencyError(
                "sentence-transformers", "funnel", "dense retrieval"
            ) from None
        from rankgate.backends.hub import resolve_model_dir
        from rankgate.errors import ModelNotFoundError

        try:
            # The cache first and one download attempt at most, as for the reranker: no retry
            # storm when the hub is unreachable, and one message that says what to do.
            local = resolve_model_dir(model, offline=offline)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                model,
                f"{exc.reason}; it is the funnel's embedding model (dense retrieval), so choose "
                "another with --embedding-model (RANKGATE_EMBEDDING_MODEL) or fetch this one",
            ) from None
        try:
            self._model = SentenceTransformer(str(local), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load embedding model {model!r}: {exc}") from None
        self.name = model
        self.batch_size = batch_size
        # sentence-transformers 5 renamed the method; keep working with 3 and 4
        getter = getattr(self._model, "get_embedding_dimension", None)
        getter = getter or self._model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            raise ModelLoadError(f"embedding model {model!r} does not report its dimension")
        self.dim = int(dim)

    def embed(
        self, texts: Sequence[str], *, query: bool = False, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Embed ``texts``; ``progress(done, total)`` is called after each batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            vectors = self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[start : start + len(batch)] = vectors
            if progress is not None:
                progress(start + len(batch), len(texts))
        return out
