"""Hard negatives from the user's own first stage (``rankgate index``: BM25 + dense).

For each row the index is searched with the query; the passages found at ranks ``first`` to
``last`` (1-based, inclusive) that are not a positive become candidates, and ``count`` of them
are drawn at random (seeded). The top ranks are skipped on purpose: on real data they are often
relevant documents nobody labeled, and training on them as negatives teaches the model to push
answers down. With a teacher, candidates the teacher scores within ``margin`` of the row's
weakest positive are dropped for the same reason, and the teacher's scores are kept for
distillation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rankgate.engine import Reranker
from rankgate.errors import ConfigError
from rankgate.funnel.types import Retriever
from rankgate.learn.data import TrainingRow

__all__ = ["MiningReport", "RankWindow", "mine_negatives", "parse_ranks", "teacher_scores"]


@dataclass(frozen=True, slots=True)
class RankWindow:
    """Ranks ``first`` to ``last`` of the first stage (1-based, both included)."""

    first: int = 3
    last: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.last:
            raise ConfigError(
                f"rank window {self.first}-{self.last}: need 1 <= first <= last, e.g. 3-100"
            )


def parse_ranks(text: str) -> RankWindow:
    """``"3-100"`` -> RankWindow(3, 100).

    Raises:
        ConfigError: not two integers joined by a dash, or first > last.
    """
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"rank window {text!r}: expected FIRST-LAST, e.g. 3-100")
    return RankWindow(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class MiningReport:
    """What mining did: rows mined, negatives kept, candidates dropped and why."""

    rows: int
    negatives: int
    skipped_as_positive: int
    dropped_by_teacher: int
    short_rows: int  # rows that got fewer negatives than asked


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _is_positive(candidate: str, positives: Sequence[str]) -> bool:
    # A passage is a piece of a document: it is the positive when it equals it or either
    # contains the other (the index splits long documents into overlapping passages).
    c = _norm(candidate)
    return any(c == p or c in p or p in c for p in positives)


def mine_negatives(
    rows: Sequence[TrainingRow],
    retriever: Retriever,
    *,
    ranks: RankWindow | None = None,
    count: int = 7,
    teacher: Reranker | None = None,
    margin: float = 0.05,
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[TrainingRow], MiningReport]:
    """Rows with ``count`` mined negatives each, and what mining did.

    Existing negatives are kept and mined ones added after them (duplicates skipped). With a
    ``teacher``, a candidate whose relevance (sigmoid) is above the weakest positive's minus
    ``margin`` is dropped, and every row gets the teacher's raw scores for distillation.

    Args:
        rows: rows with at least one positive.
        retriever: the first stage to mine from (a :class:`~rankgate.funnel.LocalIndex`).
        ranks: the rank window (default 3-100).
        count: negatives to add per row.
        teacher: a reranker that vets candidates and scores every document.
        margin: how far below the weakest positive a vetted candidate must score.
        seed: the draw's seed; the same inputs give the same rows.
        progress: called with (rows done, total).
    """
    window = ranks or RankWindow()
    if count < 1:
        raise ConfigError(f"negatives to mine: {count}; need at least 1")
    rng = random.Random(seed)
    out: list[TrainingRow] = []
    skipped = dropped = short = total = 0
    for done, row in enumerate(rows, 1):
        hits = retriever.search(row.query, window.last)[window.first - 1 : window.last]
        positives = [_norm(p) for p in row.pos]
        seen = {_norm(n) for n in row.neg} | set(positives)
        candidates: list[str] = []
        for hit in hits:
            text = hit.passage.text
            if _is_positive(text, positives):
                skipped += 1
            elif _norm(text) not in seen:
                seen.add(_norm(text))
                candidates.append(text)
        if teacher is not None:
            docs = (*row.pos, *row.neg, *candidates)
            raw = teacher.compute_score([(row.query, t) for t in docs])
            relevance = teacher.relevance(np.asarray(raw)).tolist()
            p, n = len(row.pos), len(row.neg)
            bar = min(relevance[:p]) - margin
            kept = [i for i in range(p + n, len(docs)) if relevance[i] <= bar]
            dropped += len(candidates) - len(kept)
            picked = rng.sample(kept, min(count, len(kept)))
            mined = [docs[i] for i in picked]
            row = replace(
                row,
                neg=(*row.neg, *mined),
                pos_scores=tuple(raw[:p]),
                neg_scores=(*raw[p : p + n], *(raw[i] for i in picked)),
            )
        else:
            mined = rng.sample(candidates, min(count, len(candidates)))
            row = replace(row, neg=(*row.neg, *mined), pos_scores=(), neg_scores=())
        short += len(mined) < count
        total += len(mined)
        out.append(row)
        if progress is not None:
            progress(done, len(rows))
    return out, MiningReport(len(rows), total, skipped, dropped, short)


def teacher_scores(rows: Sequence[TrainingRow], teacher: Reranker) -> list[TrainingRow]:
    """The rows with ``teacher``'s raw score of every document, for distillation."""
    out = []
    for row in rows:
        raw = teacher.compute_score([(row.query, d) for d in (*row.pos, *row.neg)])
        p = len(row.pos)
        out.append(replace(row, pos_scores=tuple(raw[:p]), neg_scores=tuple(raw[p:])))
    return out
