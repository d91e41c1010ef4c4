"""Batches that waste little: length-sorted, cut to minimise padding within a budget, OOM-safe."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rankgate.backends.base import Backend, EncodedPair
from rankgate.errors import DeviceOutOfMemoryError, NonFiniteScoreError

__all__ = ["batch_tokens", "plan_batches", "score_pairs"]

Progress = Callable[[int, int], None]
ForwardObserver = Callable[[int, int, int], None]
"""Called after each forward pass with (pairs, real tokens, tokens computed: padding included, a
shared prefix once, and not at all where an earlier pass's keys and values were kept for it)."""
Keep = Callable[[int], bool]
"""Asked for each pair (by its index) just before its forward pass; False skips it (cancelled)."""


def batch_tokens(lengths: Sequence[int], packed: bool, shared: Sequence[int] | None = None) -> int:
    """Tokens a forward pass computes for pairs of these lengths: their sum when the backend
    packs them (with ``shared``, the pairs' shared prefixes counted once: the longest of them),
    else the batch padded to its longest pair."""
    if not packed:
        return len(lengths) * max(lengths, default=0)
    if shared is None or len(lengths) < 2:
        return sum(lengths)
    return sum(lengths) - sum(shared) + max(shared)


def plan_batches(
    lengths: Sequence[int],
    max_tokens: int,
    max_size: int,
    overhead_tokens: int = 0,
    *,
    packed: bool = False,
    shared: Sequence[int] | None = None,
) -> list[list[int]]:
    """Group indices into batches that waste little, longest first.

    Pairs are sorted by length (longest first, as FlagEmbedding does, so an out-of-memory shows
    up at once) and cut into contiguous batches that minimise the tokens computed plus
    ``overhead_tokens`` per forward pass: the cost of one more pass (smaller matrix products,
    per-call work) expressed in tokens. A large overhead gives few full batches; a small one
    splits where lengths jump, so little padding is computed. With ``packed`` (a backend that
    computes real tokens only) there is no padding, and the fewest passes win; ``shared`` (each
    pair's prefix shared with the others of its request, which such a backend computes once per
    pass) is then counted once per batch, as :func:`batch_tokens` does. A batch holds at
    most ``max_size`` pairs and ``max_tokens`` computed tokens, except that a single pair
    always fits.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    size_sorted = [lengths[i] for i in order]
    shared_sorted = [shared[i] for i in order] if packed and shared is not None else None
    n = len(order)
    # best[k]: least cost of batching the k longest pairs; start[k]: where its last batch begins.
    best = [0.0] + [float("inf")] * n
    start = [0] * (n + 1)
    for end in range(1, n + 1):
        real = common = longest_common = 0
        for first in range(end - 1, max(-1, end - 1 - max_size), -1):
            size = end - first
            real += size_sorted[first]
            if shared_sorted is not None:
                common += shared_sorted[first]
                longest_common = max(longest_common, shared_sorted[first])
            if not packed:
                computed = size * size_sorted[first]
            elif size > 1:
                computed = real - common + longest_common
            else:
                computed = real
            if size > 1 and computed > max_tokens:
                break  # moving ``first`` back only grows the batch
            cost = best[first] + computed + overhead_tokens
            if cost < best[end]:
                best[end], start[end] = cost, first
    batches: list[list[int]] = []
    end = n
    while end > 0:
        batches.append(order[start[end] : end])
        end = start[end]
    return batches[::-1]


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
    overhead_tokens: int = 0,
    progress: Progress | None = None,
    on_forward: ForwardObserver | None = None,
    keep: Keep | None = None,
) -> np.ndarray:
    """Raw logits for ``pairs``, in the caller's order.

    ``keep`` is the cancellation point: a pair it refuses is not computed and its logit is NaN
    (the caller dropped the request it belongs to); a pass whose pairs are all refused is skipped.

    Raises:
        NonFiniteScoreError: the model returned NaN or infinity for any pair.
        DeviceOutOfMemoryError: a single pair does not fit on the device.
    """
    logits = np.empty(len(pairs), dtype=np.float32)
    done = 0
    packed = backend.packed
    lengths = [len(p) for p in pairs]
    shared = [p.shared for p in pairs] if packed and backend.shares_prefix else None
    plan = plan_batches(
        lengths, max_tokens, max_size, overhead_tokens, packed=packed, shared=shared
    )
    skipped = np.zeros(len(pairs), dtype=bool)
    for planned in plan:
        batch = planned if keep is None else [i for i in planned if keep(i)]
        if len(batch) < len(planned):
            dropped = sorted(set(planned) - set(batch))
            skipped[dropped] = True
            logits[dropped] = np.nan
        done += len(planned)
        if not batch:
            continue
        chosen = [pairs[i] for i in batch]
        saved_before = backend.shared_prefix_tokens_saved
        logits[batch] = _forward(backend, chosen)
        if on_forward is not None:
            sizes = [lengths[i] for i in batch]
            # packed: the real tokens less those the pass did not compute (a shared prefix past
            # its first pair, or all of one kept from an earlier pass), as the backend counted
            saved = backend.shared_prefix_tokens_saved - saved_before
            computed = sum(sizes) - saved if packed else batch_tokens(sizes, packed=False)
            on_forward(len(chosen), sum(sizes), computed)
        if progress is not None:
            progress(done, len(pairs))
    bad = int(np.count_nonzero(~np.isfinite(logits) & ~skipped))
    if bad:
        raise NonFiniteScoreError(
            f"the model produced non-finite scores (NaN or infinity) for {bad} of {len(pairs)} "
            "pairs; the weights may be broken or the dtype may overflow (try float32)"
        )
    return logits
