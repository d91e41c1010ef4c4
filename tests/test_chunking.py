"""Long documents: overlapping windows, best window wins, and every cut is reported."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rankgate import Reranker
from rankgate.engine.pairs import window_starts
from tests.samples import QUERY


@pytest.mark.parametrize(
    ("length", "window", "overlap", "max_windows", "expected"),
    [
        (10, 10, 2, None, [0]),
        (11, 10, 2, None, [0, 1]),
        (30, 10, 2, None, [0, 8, 16, 20]),
        (30, 10, 0, None, [0, 10, 20]),
        (30, 10, 2, 2, [0, 8]),
        (0, 10, 2, None, [0]),
    ],
)
def test_window_starts(length, window, overlap, max_windows, expected) -> None:
    starts = window_starts(length, window, overlap, max_windows)
    assert starts == expected
    if max_windows is None:
        assert starts[-1] + window >= length  # every token is covered
        assert all(b - a <= window - overlap for a, b in itertools.pairwise(starts))


def test_long_document_is_chunked_and_scored_by_its_best_window(short_reranker: Reranker) -> None:
    rr = short_reranker
    doc = " ".join(
        f"paragraph {i}: the router admin password is reset with the button." for i in range(12)
    )
    (result,) = rr.rerank(QUERY, [doc], normalize=False)
    plan = rr.prepare(QUERY, [doc]).plans[0]
    assert result.chunks == len(plan.pairs) > 3
    assert not result.truncated
    assert all(len(p) <= rr.max_length for p in plan.pairs)
    # independent check: score each window alone and take the best
    window_logits = rr.backend.forward(list(plan.pairs))
    assert result.score == pytest.approx(float(np.max(window_logits)), abs=1e-5)
    # consecutive windows overlap and together cover the whole document
    doc_tokens = rr.backend.tokenize([doc])[0]
    assert result.tokens == len(doc_tokens)


def test_truncate_policy_reports_truncation(short_reranker: Reranker) -> None:
    doc = "router password reset " * 40
    (r,) = short_reranker.rerank(QUERY, [doc], long_documents="truncate")
    assert (r.truncated, r.chunks) == (True, 1)


def test_max_chunks_stops_and_reports_truncation(short_reranker: Reranker) -> None:
    doc = "router password reset " * 80
    (full,) = short_reranker.rerank(QUERY, [doc])
    (capped,) = short_reranker.rerank(QUERY, [doc], max_chunks=2)
    assert full.chunks > 2 and not full.truncated
    assert capped.chunks == 2 and capped.truncated


def test_max_tokens_per_doc_cuts_first(short_reranker: Reranker) -> None:
    doc = "router password reset " * 80
    (r,) = short_reranker.rerank(QUERY, [doc], max_tokens_per_doc=10)
    assert (r.truncated, r.chunks) == (True, 1)


def test_short_documents_are_not_marked(short_reranker: Reranker) -> None:
    results = short_reranker.rerank(QUERY, ["short one", "another"])
    assert all(r.chunks == 1 and not r.truncated for r in results)


def test_compute_score_chunks_long_passages(short_reranker: Reranker) -> None:
    doc = "router password reset " * 40
    (score,) = short_reranker.compute_score([(QUERY, doc)])
    (result,) = short_reranker.rerank(QUERY, [doc], normalize=False)
    assert score == pytest.approx(result.score, abs=1e-6)
