"""Hard negatives mined from a real index (BM25 + all-MiniLM-L6-v2) respect the rank window."""

from __future__ import annotations

from rankgate.funnel import LocalIndex, SourceDocument
from rankgate.learn import RankWindow, TrainingRow, mine_negatives


def test_mined_negatives_are_index_passages_inside_the_window(
    local_index: LocalIndex, corpus: list[SourceDocument]
) -> None:
    docs = corpus[:12]
    rows = [TrainingRow(d.title or d.text[:40], (d.text,)) for d in docs]
    window = RankWindow(3, 20)
    mined, report = mine_negatives(rows, local_index, ranks=window, count=5, seed=3)
    assert report.negatives == 5 * len(rows)
    for row, doc in zip(mined, docs, strict=True):
        ranked = [h.passage.text for h in local_index.search(row.query, window.last)]
        for negative in row.neg:
            rank = ranked.index(negative) + 1
            assert window.first <= rank <= window.last
            assert negative != doc.text
