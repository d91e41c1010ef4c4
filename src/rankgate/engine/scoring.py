"""From logits to ranked results: sigmoid, per-document aggregation, stable order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["aggregate_max", "rank_order", "sigmoid"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, as FlagEmbedding applies it for ``normalize=True``."""
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def aggregate_max(logits: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """One score per document: the best of its windows (``counts[i]`` windows each, in order)."""
    bounds = np.cumsum([0, *counts])
    return np.array([logits[bounds[i] : bounds[i + 1]].max() for i in range(len(counts))])


def rank_order(scores: Sequence[float], top_n: int | None = None) -> list[int]:
    """Indices by descending score; ties keep the caller's order."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order if top_n is None else order[:top_n]
