"""Ranking health on constructed request streams, against hand-computed values."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rankgate import InputError
from rankgate.insight.health import (
    HealthSettings,
    in_retrieval_order,
    low_count,
    measure,
    summarize,
    top1_displaced,
    top_gap,
)
from rankgate.insight.monitor import RankingHealth
from rankgate.insight.prometheus import HealthCollector
from rankgate.insight.requestlog import parse_line, read_log

HIT = [0.2, 0.9, 0.5]  # reranking moved retrieval's second document to the top
KEEP = [0.9, 0.2, 0.5]  # retrieval's first stays first; gap 0.4


def test_per_request_measures() -> None:
    assert top1_displaced([0.2, 0.9, 0.1]) is True
    assert top1_displaced([0.9, 0.2]) is False
    assert top1_displaced([0.5, 0.5]) is False  # a tie keeps retrieval's order, as rerank does
    assert top1_displaced([0.4]) is None
    assert top_gap([0.3, 0.8, 0.6]) == pytest.approx(0.2)
    assert top_gap([0.4]) is None
    assert low_count([0.05, 0.1, 0.09999, 0.7], 0.1) == 2  # strictly under
    assert in_retrieval_order([0.1, 0.2, 0.3], [3, 1, 2]) == [0.2, 0.3, 0.1]
    with pytest.raises(InputError, match="repeat"):
        in_retrieval_order([0.1, 0.2], [1, 1])
    with pytest.raises(InputError, match="finite"):
        measure([float("nan")], low_score=0.1, ts=0)


def test_window_values_equal_hand_computed() -> None:
    streams = [[0.9, 0.2, 0.05], [0.3, 0.8, 0.6], [0.05, 0.02], [0.7]]
    obs = [measure(s, low_score=0.1, ts=i) for i, s in enumerate(streams)]
    snap = summarize(obs, HealthSettings(min_requests=1))
    assert snap.requests == 4
    assert snap.displacement_rate == pytest.approx(1 / 3)  # one of three multi-document reranks
    assert snap.mean_gap == pytest.approx((0.7 + 0.2 + 0.03) / 3)
    assert snap.low_share == pytest.approx(3 / 9)  # 3 low documents of 9
    assert snap.low_share_older == pytest.approx(1 / 6)
    assert snap.low_share_recent == pytest.approx(2 / 3)


def test_displacement_warning_fires_exactly_under_15_percent(caplog) -> None:
    health = RankingHealth(HealthSettings(window=20, min_requests=20, low_share_max=None))
    caplog.set_level(logging.INFO, logger="rankgate.insight.health")
    for scores in [HIT] * 3 + [KEEP] * 17:
        health.observe(scores)
    assert health.snapshot().displacement_rate == 0.15  # exactly the threshold: no alert
    assert not health.snapshot().alerts["displacement"] and not caplog.records
    health.observe(KEEP)  # the first HIT leaves the window: 2/20 = 10%
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "displacement rate 10.0%" in caplog.records[0].getMessage()
    health.observe(KEEP)  # still under: no second warning
    assert len(caplog.records) == 1
    for _ in range(3):
        health.observe(HIT)  # 1/20, 2/20, then 3/20 = 15% again: recovered, once
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert [(e.request, e.alerting) for e in health.events()] == [(21, True), (25, False)]


def test_no_verdict_before_min_requests(caplog) -> None:
    health = RankingHealth(HealthSettings(window=50, min_requests=5))
    caplog.set_level(logging.WARNING)
    for _ in range(4):
        health.observe([0.5, 0.5])  # no displacement, no gap: would alert on both
    assert not health.snapshot().ready and not caplog.records
    health.observe([0.5, 0.5])
    assert {r.getMessage().split(" ")[2] for r in caplog.records} == {"top-1", "mean"}


def test_gap_warning_fires_under_0_1_and_not_at_it(caplog) -> None:
    health = RankingHealth(HealthSettings(window=10, min_requests=1, displacement_min=0))
    caplog.set_level(logging.WARNING)
    health.observe([0.6, 0.5])  # 0.6 - 0.5 is 0.09999999999999998 in floats: still "exactly" 0.1
    assert not caplog.records
    health.observe([0.6, 0.5])
    health.observe([0.55, 0.5])  # mean gap (0.1 + 0.1 + 0.05) / 3 = 0.0833
    assert len(caplog.records) == 1 and "gap 0.083" in caplog.records[0].getMessage()


def test_low_share_warning_fires_when_the_recent_half_rises(caplog) -> None:
    settings = HealthSettings(
        window=10, min_requests=10, low_share_rise=0.1, low_share_max=None, displacement_min=0
    )
    health = RankingHealth(settings)
    caplog.set_level(logging.WARNING)
    for _ in range(10):
        health.observe([0.9, 0.5])
    health.observe([0.9, 0.05])  # recent half 1/10 low, older 0/10: a rise of exactly 0.1
    assert not caplog.records
    health.observe([0.9, 0.05])  # recent half 2/10: rise 0.2
    snap = health.snapshot()
    assert (snap.low_share_older, snap.low_share_recent) == (0.0, 0.2)
    assert len(caplog.records) == 1 and "upstream retrieval" in caplog.records[0].getMessage()


def test_low_share_ceiling() -> None:
    health = RankingHealth(HealthSettings(window=4, min_requests=1, low_share_max=0.5))
    health.observe([0.9, 0.05])  # 1 of 2: exactly the ceiling
    assert not health.snapshot().alerts["low_share"]
    health.observe([0.9, 0.05, 0.01])  # 3 of 5
    assert health.snapshot().alerts["low_share"]


def test_retrieval_ranks_and_raw_logits() -> None:
    health = RankingHealth(HealthSettings(min_requests=1))
    # Sent in another order; by rank the first is index 2, which the model rates lowest.
    obs = health.observe([2.0, -1.0, -3.0], retrieval_ranks=[2, 3, 1], normalized=False)
    assert obs.displaced is True
    assert obs.gap == pytest.approx(0.8808 - 0.2689, abs=1e-4)
    assert obs.low == 1  # sigmoid(-3) = 0.047


def test_prometheus_gauges(health: RankingHealth) -> None:
    registry = CollectorRegistry()
    registry.register(HealthCollector(health))
    assert registry.get_sample_value("rankgate_ranking_window_reranks") == 0
    for scores in (HIT, KEEP, [0.9, 0.05]):
        health.observe(scores)
    value = registry.get_sample_value
    assert value("rankgate_ranking_top1_displacement_rate") == pytest.approx(1 / 3)
    assert value("rankgate_ranking_top_gap_mean") == pytest.approx((0.4 + 0.4 + 0.85) / 3)
    assert value("rankgate_ranking_low_score_share", {"part": "window"}) == pytest.approx(1 / 8)
    assert value("rankgate_ranking_reranks_total") == 3
    assert value("rankgate_ranking_top1_displaced_total") == 1
    assert value("rankgate_ranking_alert", {"metric": "displacement"}) == 0


def test_request_log_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ranking.jsonl"
    live = RankingHealth(HealthSettings(min_requests=1, log_path=path))
    live.observe([0.1, 0.2, 0.9], retrieval_ranks=[3, 2, 1], timestamp=100.0, request_id="r1")
    live.observe([0.7, 0.3], timestamp=101.0)
    records = read_log(path)
    assert records[0].scores == (0.9, 0.2, 0.1) and records[0].ts == 100.0
    replayed = RankingHealth(HealthSettings(min_requests=1))
    replayed.replay(records)
    assert replayed.snapshot() == live.snapshot()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"scores": []}', "non-empty"),
        ('{"scores": [0.1, "x"]}', "finite number"),
        ('{"scores": [0.1], "retrieval_ranks": [1, 2]}', "one integer per score"),
        ('{"scores": [0.1], "ts": "yesterday"}', "ISO 8601"),
    ],
)
def test_malformed_log_lines(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_line(line, "log:3")
    assert parse_line('{"scores": [1], "ts": "2026-01-01T00:00:00Z"}').ts == 1767225600.0


def test_observe_is_thread_safe() -> None:
    health = RankingHealth(HealthSettings(window=1000, min_requests=1))

    def work() -> None:
        for _ in range(250):
            health.observe(HIT)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert health.total == 1000 and health.snapshot().requests == 1000
    assert health.total_displaced == 1000
