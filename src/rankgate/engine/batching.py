"""Batches that waste little: length-sorted, cut by a padded-token budget, OOM-safe."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rankgate.backends.base import Backend, EncodedPair
from rankgate.errors import DeviceOutOfMemoryError, NonFiniteScoreError

__all__ = ["plan_batches", "score_pairs"]

Progress = Callable[[int, int], None]
ForwardObserver = Callable[[int, int, int], None]
"""Called after each forward pass with (pairs, real tokens, padded tokens computed)."""


def plan_batches(lengths: Sequence[int], max_tokens: int, max_size: int) -> list[list[int]]:
    """Group indices into batches of similar length.

    Longest first (as FlagEmbedding does, so an out-of-memory shows up at once); a batch grows
    while ``size * longest`` stays within ``max_tokens`` padded tokens and ``max_size`` pairs.
    Every batch holds at least one pair, however long.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        grown = max(width, lengths[i])
        if current and (len(current) >= max_size or (len(current) + 1) * grown > max_tokens):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        width = grown
    if current:
        batches.append(current)
    return batches


def _forward(backend: Backend, pairs: list[EncodedPair]) -> np.ndarray:
    try:
        return backend.forward(pairs)
    except DeviceOutOfMemoryError:
        if len(pairs) == 1:
            raise
        half = len(pairs) // 2
        return np.concatenate([_forward(backend, pairs[:half]), _forward(backend, pairs[half:])])


def score_pairs(
    backend: Backend,
    pairs: Sequence[EncodedPair],
    *,
    max_tokens: int,
    max_size: int,
    progress: Progress | None = None,
    on_forward: ForwardObserver | None = None,
) -> np.ndarray:
    """Raw logits for ``pairs``, in the caller's order.

    Raises:
        NonFiniteScoreError: the model returned NaN or infinity for any pair.
        DeviceOutOfMemoryError: a single pair does not fit on the device.
    """
    logits = np.empty(len(pairs), dtype=np.float32)
    done = 0
    for batch in plan_batches([len(p) for p in pairs], max_tokens, max_size):
        chosen = [pairs[i] for i in batch]
        logits[batch] = _forward(backend, chosen)
        done += len(batch)
        if on_forward is not None:
            lengths = [len(p) for p in chosen]
            on_forward(len(chosen), sum(lengths), len(chosen) * max(lengths))
        if progress is not None:
            progress(done, len(pairs))
    bad = int(np.count_nonzero(~np.isfinite(logits)))
    if bad:
        raise NonFiniteScoreError(
            f"the model produced non-finite scores (NaN or infinity) for {bad} of {len(pairs)} "
            "pairs; the weights may be broken or the dtype may overflow (try float32)"
        )
    return logits
