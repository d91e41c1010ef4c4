"""Reciprocal rank fusion (Cormack et al., 2009)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["reciprocal_rank_fusion"]

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[K]], k: int = 60
) -> list[tuple[K, float, dict[str, int]]]:
    """Fuse ranked lists: each item scores ``sum(1 / (k + rank))`` over the lists holding it.

    Args:
        rankings: method name -> items, best first.
        k: damping constant; 60 is the paper's and everyone's default.

    Returns:
        (item, fused score, {method: 1-based rank}) best first; ties keep first-seen order.

    Example:
        >>> [item for item, _, _ in reciprocal_rank_fusion({"a": [1, 2], "b": [2, 3]})]
        [2, 1, 3]
    """
    scores: dict[K, float] = {}
    ranks: dict[K, dict[str, int]] = {}
    for method, items in rankings.items():
        for rank, item in enumerate(items, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(item, {})[method] = rank
    order = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in order]
