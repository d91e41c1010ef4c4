"""Evaluation: ir-measures numbers equal a hand computation; the command writes table and chart."""

from __future__ import annotations

import json
import math

import pytest

from rankgate.funnel import Passage, evaluate, load_beir
from tests.funnel.conftest import EXAMPLES, StaticRetriever


def _p(doc_id: str, text: str) -> Passage:
    return Passage(id=f"{doc_id}#0", doc_id=doc_id, n=0, text=text)


def test_measures_match_a_hand_computation(keyword):
    # KeywordBackend's logit is 4 * hits / (words + 1) - 2, so the reranked order is known.
    retriever = StaticRetriever(
        {
            "reset router password": [
                _p("d3", "cooking pasta at home"),  # -2
                _p("d1", "router password guide"),  # 4*2/4-2 = 0
                _p("d2", "reset router password"),  # 4*3/4-2 = 1
                _p("d4", "weather today"),  # -2
            ],
            "battery drains fast": [_p("d5", "garden tools"), _p("d6", "battery drains fast")],
        }
    )
    queries = {"q1": "reset router password", "q2": "battery drains fast", "q3": "not judged"}
    qrels = {"q1": {"d1": 1, "d2": 2}, "q2": {"d6": 1, "d7": 1}}
    report = evaluate(retriever, keyword, queries, qrels, depth=50)

    log2 = math.log2
    # first stage: q1 ranks d3 d1 d2 d4, q2 ranks d5 d6
    ndcg_q1 = (1 / log2(3) + 2 / log2(4)) / (2 / log2(2) + 1 / log2(3))
    ndcg_q2 = (1 / log2(3)) / (1 + 1 / log2(3))
    # reranked: q1 d2 d1 d3 d4 (ideal), q2 d6 d5
    ndcg_q2_rr = 1 / (1 + 1 / log2(3))
    expected = {
        "first stage": {
            "nDCG@10": (ndcg_q1 + ndcg_q2) / 2,
            "RR@10": 0.5,
            "R@10": 0.75,
            "R@50": 0.75,
        },
        "first stage + rerank": {
            "nDCG@10": (1 + ndcg_q2_rr) / 2,
            "RR@10": 1.0,
            "R@10": 0.75,
            "R@50": 0.75,
        },
    }
    assert report.queries == 2
    for system, values in expected.items():
        assert report.systems[system] == pytest.approx(values, abs=1e-4)
    assert report.per_query["first stage"]["q1"]["RR@10"] == pytest.approx(0.5)
    assert report.systems["first stage"]["nDCG@10"] == pytest.approx(0.50338, abs=1e-4)


def test_reads_beir_folders():
    data = load_beir(EXAMPLES / "beir-mini")
    assert len(data.corpus) == 8 and data.corpus[0].title == "Router password"
    assert data.queries["q1"] == "how do I reset my router password"
    assert data.qrels["q1"] == {"d1": 2, "d2": 1}


def test_eval_command_prints_a_table_and_writes_a_chart(
    tmp_path, minilm_path, tiny_model, funnel_cli
):
    chart = tmp_path / "eval.png"
    args = [
        "eval",
        str(EXAMPLES / "beir-mini"),
        "--embedding-model",
        str(minilm_path),
        "--model",
        str(tiny_model),
        "--device",
        "cpu",
        "--offline",
        "--chart",
        str(chart),
        "-k",
        "5",
    ]
    result = funnel_cli(args)
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.output and "MRR@10" in result.output and "R@5" in result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    as_json = json.loads(funnel_cli([*args, "--json"]).output)
    first, reranked = as_json["systems"]["first stage"], as_json["systems"]["first stage + rerank"]
    # reranking reorders the same 5 documents, so recall at the recall depth cannot change
    assert first["R@5"] == reranked["R@5"]
    assert 0.0 <= reranked["nDCG@10"] <= 1.0
