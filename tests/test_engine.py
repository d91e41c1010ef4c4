"""Engine behaviour on a fake backend: batching, ordering, input errors, NaN and OOM."""

from __future__ import annotations

import math

import pytest

from rankgate import (
    DeviceOutOfMemoryError,
    EmptyQueryError,
    InputError,
    InvalidDocumentError,
    NoDocumentsError,
    NonFiniteScoreError,
    Reranker,
)
from rankgate.engine.batching import plan_batches
from rankgate.testing import KeywordBackend


def _cost(batches: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(b) * max(lengths[i] for i in b) + overhead for b in batches)


@pytest.mark.parametrize("overhead", [0, 64, 10_000])
def test_plan_batches_respects_budget_and_covers_all(overhead: int) -> None:
    lengths = [5, 50, 7, 48, 49, 6, 100, 3]
    batches = plan_batches(lengths, max_tokens=110, max_size=3, overhead_tokens=overhead)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 110
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)  # longest first, contiguous in length order
    assert batches[0] == [6]  # 100 tokens: no partner fits the budget


def test_plan_batches_trades_padding_against_passes() -> None:
    lengths = [345, 340, 338, 301, 299, 297, 280, 278, 276, 275]
    one = plan_batches(lengths, max_tokens=4096, max_size=128, overhead_tokens=10_000)
    assert len(one) == 1  # passes are dear: one padded batch
    split = plan_batches(lengths, max_tokens=4096, max_size=128, overhead_tokens=64)
    assert [len(b) for b in split] == [3, 3, 4]  # split where the lengths jump
    assert _cost(split, lengths, 64) < _cost(one, lengths, 64)
    alone = plan_batches(lengths, max_tokens=4096, max_size=128, overhead_tokens=0)
    assert all(len(b) == 1 for b in alone)  # passes are free: no padding at all


def test_one_oversized_pair_still_gets_a_batch() -> None:
    assert plan_batches([500, 2], max_tokens=100, max_size=8) == [[0], [1]]


def test_rerank_orders_by_score_and_keeps_metadata(keyword: Reranker) -> None:
    docs = [
        {"text": "nothing relevant here", "id": "a", "source": "wiki"},
        {"text": "reset the router password", "id": "b"},
        "router password",
    ]
    results = keyword.rerank("reset router password", docs)
    assert [r.index for r in results] == [2, 1, 0]
    assert results[1].document == {"text": "reset the router password", "id": "b"}
    assert results[1].text == "reset the router password"
    assert all(0.0 <= r.score <= 1.0 for r in results)
    assert results[0].score > results[1].score > results[2].score


def test_raw_scores_are_logits(keyword: Reranker) -> None:
    raw = keyword.rerank("a b", ["a b", "c"], normalize=False)
    norm = keyword.rerank("a b", ["a b", "c"])
    for r, n in zip(raw, norm, strict=True):
        assert n.score == pytest.approx(1 / (1 + math.exp(-r.score)))


def test_ties_keep_input_order(keyword: Reranker) -> None:
    results = keyword.rerank("query", ["x", "y", "z", "query", "w"])
    assert [r.index for r in results] == [3, 0, 1, 2, 4]


def test_top_n(keyword: Reranker) -> None:
    assert [r.index for r in keyword.rerank("a", ["b", "a", "c"], top_n=1)] == [1]
    assert len(keyword.rerank("a", ["b", "a"], top_n=10)) == 2
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InputError, match="top_n"):
            keyword.rerank("a", ["b"], top_n=bad)


def test_rank_fields(keyword: Reranker) -> None:
    docs = [{"title": "router password", "text": "unrelated"}, {"title": "x", "text": "y"}]
    by_title = keyword.rerank("router password", docs, rank_fields=["title"])
    assert by_title[0].index == 0
    with pytest.raises(InvalidDocumentError, match="document 1"):
        keyword.rerank("q", [{"title": "a"}, {"body": "b"}], rank_fields=["title"])


@pytest.mark.parametrize(
    ("query", "documents", "error", "message"),
    [
        ("", ["a"], EmptyQueryError, "empty"),
        ("   ", ["a"], EmptyQueryError, "empty"),
        (None, ["a"], EmptyQueryError, "missing"),
        (42, ["a"], InputError, "must be a string"),
        ("q", [], NoDocumentsError, "no documents"),
        ("q", None, InputError, "list"),
        ("q", "just a string", InputError, "list"),
        ("q", ["ok", None], InvalidDocumentError, "document 1: is None"),
        ("q", ["ok", 3], InvalidDocumentError, "document 1"),
        ("q", [{"title": "no text"}], InvalidDocumentError, "'text'"),
        ("q", [{"text": 5}], InvalidDocumentError, "int"),
    ],
)
def test_bad_input_raises_typed_errors(keyword, query, documents, error, message) -> None:
    with pytest.raises(error, match=message):
        keyword.rerank(query, documents)


@pytest.mark.parametrize(
    "pairs",
    [[], [("q",)], [("q", None)], [("", "d")], "q", [(None, "d")], 5],
)
def test_bad_pairs(keyword: Reranker, pairs) -> None:
    with pytest.raises(InputError):
        keyword.compute_score(pairs)


def test_single_pair_returns_a_list(keyword: Reranker) -> None:
    assert len(keyword.compute_score(("a", "a b"))) == 1
    assert len(keyword.compute_score([("a", "a b")])) == 1


def test_nan_scores_raise() -> None:
    rr = Reranker(backend=KeywordBackend(nan_on="poison"))
    with pytest.raises(NonFiniteScoreError, match="1 of 3"):
        rr.rerank("q", ["fine", "poison pill", "also fine"])


def test_out_of_memory_splits_the_batch() -> None:
    backend = KeywordBackend(max_pairs=2)
    rr = Reranker(backend=backend)
    docs = [f"doc {i} reset" for i in range(9)]
    expected = Reranker(backend=KeywordBackend()).compute_score([("reset", d) for d in docs])
    assert rr.compute_score([("reset", d) for d in docs]) == pytest.approx(expected)
    assert max(backend.batches) <= 2


def test_out_of_memory_on_one_pair_is_raised() -> None:
    rr = Reranker(backend=KeywordBackend(max_pairs=0))
    with pytest.raises(DeviceOutOfMemoryError):
        rr.compute_score([("a", "b")])


def test_progress_callback_reports_all_pairs(keyword: Reranker) -> None:
    seen: list[tuple[int, int]] = []
    keyword.rerank("a", [f"d{i}" for i in range(5)], progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5)


def test_health_probe(keyword: Reranker) -> None:
    keyword.health()


def test_forward_observer_counts_real_and_padded_tokens() -> None:
    rr = Reranker(backend=KeywordBackend(), batch_tokens=64, max_batch_size=4)
    docs = ["a " * 3, "a " * 20, "a " * 5, "a " * 19, "a"]
    seen: list[tuple[int, int, int]] = []
    prepared = rr.prepare("a", docs)
    rr.score_encoded(prepared.pairs, on_forward=lambda *s: seen.append(s))
    assert sum(s[0] for s in seen) == len(docs)
    assert sum(s[1] for s in seen) == sum(len(p) for p in prepared.pairs)
    assert all(real <= padded <= 64 or pairs == 1 for pairs, real, padded in seen)
    assert sum(s[2] for s in seen) > sum(s[1] for s in seen)  # lengths differ: some padding


def test_default_pass_cost_follows_model_size_and_device() -> None:
    from rankgate.engine.reranker import _default_pass_cost

    assert _default_pass_cost("cpu", 567_755_777, 4096) == 64  # bge-reranker-v2-m3
    assert _default_pass_cost("cpu", 42_891, 4096) > 2000  # tiny: passes are dear, keep batches
    assert _default_pass_cost("cpu", 10, 4096) == 4096  # never beyond the budget
    assert _default_pass_cost("cuda", 567_755_777, 16384) == 2048
    assert _default_pass_cost("cpu", 0, 4096) == 2048  # a fake backend without parameters
