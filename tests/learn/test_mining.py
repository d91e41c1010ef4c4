"""Hard-negative mining: the rank window, positives never mined, the teacher's margin, seeds."""

from __future__ import annotations

import pytest

from rankgate import Reranker
from rankgate.errors import ConfigError
from rankgate.funnel.types import Hit, Passage
from rankgate.learn import RankWindow, TrainingRow, mine_negatives, parse_ranks
from rankgate.testing import KeywordBackend


class RankedRetriever:
    """Answers every query with the same ranked passages: rank r holds the text ``doc r``."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.asked: list[tuple[str, int]] = []

    def search(self, query: str, top_k: int) -> list[Hit]:
        self.asked.append((query, top_k))
        return [
            Hit(Passage(f"d{r}#0", f"d{r}", 0, text), 1.0 / r, r)
            for r, text in enumerate(self.texts[:top_k], 1)
        ]


def _ranked(n: int) -> RankedRetriever:
    return RankedRetriever([f"doc {r}" for r in range(1, n + 1)])


def test_negatives_come_from_the_rank_window_only() -> None:
    retriever = _ranked(40)
    rows = [TrainingRow(f"query {i}", ("the answer",)) for i in range(20)]
    mined, report = mine_negatives(rows, retriever, ranks=RankWindow(5, 12), count=4, seed=1)
    allowed = {f"doc {r}" for r in range(5, 13)}
    for row in mined:
        assert len(row.neg) == 4 and set(row.neg) <= allowed
    assert report.negatives == 80 and report.short_rows == 0
    assert {k for _, k in retriever.asked} == {12}  # no deeper search than the window needs
    # the draw is random over the window, not its top
    assert set().union(*(set(r.neg) for r in mined)) == allowed


def test_positives_and_their_passages_are_never_mined() -> None:
    texts = ["doc 1", "doc 2", "The Answer", "a passage of the answer text here", "doc 5", "doc 6"]
    rows = [TrainingRow("q", ("the answer text",), ("doc 5",))]
    mined, report = mine_negatives(rows, RankedRetriever(texts), ranks=RankWindow(1, 6), count=10)
    assert set(mined[0].neg) == {"doc 1", "doc 2", "doc 5", "doc 6"}
    assert mined[0].neg[0] == "doc 5"  # the row's own negatives stay first
    assert report.skipped_as_positive == 2 and report.short_rows == 1


def test_the_same_seed_mines_the_same_rows() -> None:
    rows = [TrainingRow(f"q{i}", ("p",)) for i in range(5)]
    first, _ = mine_negatives(rows, _ranked(30), count=3, seed=7)
    again, _ = mine_negatives(rows, _ranked(30), count=3, seed=7)
    other, _ = mine_negatives(rows, _ranked(30), count=3, seed=8)
    assert first == again and first != other


def test_a_teacher_drops_likely_positives_and_scores_every_document() -> None:
    teacher = Reranker(backend=KeywordBackend())
    # KeywordBackend scores the share of document words found in the query.
    texts = ["x", "y", "router reset password", "reset router password", "banana", "cherry"]
    rows = [TrainingRow("router reset password", ("router reset password help",))]
    mined, report = mine_negatives(
        rows, RankedRetriever(texts), ranks=RankWindow(3, 6), count=5, teacher=teacher, margin=0.0
    )
    row = mined[0]
    # rank 3 is a passage of the positive; rank 4 scores above the positive: both stay out
    assert set(row.neg) == {"banana", "cherry"}
    assert report.dropped_by_teacher == 1 and report.skipped_as_positive == 1
    assert row.has_scores
    want = teacher.compute_score([(row.query, d) for d in (*row.pos, *row.neg)])
    assert [*row.pos_scores, *row.neg_scores] == want


@pytest.mark.parametrize("text", ["3", "0-5", "9-3", "a-b", "3-"])
def test_bad_rank_windows_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="rank window"):
        parse_ranks(text)


def test_rank_window_parses() -> None:
    assert parse_ranks(" 2 - 200 ") == RankWindow(2, 200)


def test_teacher_scores_every_document_of_rows_that_bring_their_negatives() -> None:
    from rankgate.learn import teacher_scores

    teacher = Reranker(backend=KeywordBackend())
    rows = [TrainingRow("router reset", ("router reset help",), ("banana", "router"))]
    (scored,) = teacher_scores(rows, teacher)
    assert scored.has_scores and scored.neg == rows[0].neg
    want = teacher.compute_score(
        [("router reset", d) for d in ("router reset help", "banana", "router")]
    )
    assert [*scored.pos_scores, *scored.neg_scores] == want
