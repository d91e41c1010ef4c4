"""The funnel end to end: real index and tiny reranker, and exact rule outcomes with fakes."""

from __future__ import annotations

from datetime import date

import pytest

from rankgate.errors import EmptyQueryError
from rankgate.funnel import Funnel, Rules, StageCuts, UnknownTemplateError
from rankgate.funnel.corpus import split_passages
from tests.funnel.conftest import StaticRetriever

TODAY = date(2026, 1, 1)
QUERY = "iPhone 15 charges slowly"


@pytest.mark.slow
def test_real_index_and_reranker_trace_every_stage(local_index, reranker):
    funnel = Funnel(local_index, reranker, Rules(min_score=None, today=TODAY))
    result = funnel.run(QUERY)
    assert len(result.candidates) == 50
    assert len(result.at_stage("reranked")) == 10
    assert 1 <= len(result.kept) <= 3
    assert set(result.timings) == {"retrieve", "rerank", "rules", "total"}
    ranks = sorted(c.rerank_rank for c in result.candidates if c.rerank_rank)
    assert ranks == list(range(1, 51))
    scores = [c.rerank_score for c in sorted(result.candidates, key=lambda c: c.rerank_rank or 0)]
    assert scores == sorted(scores, reverse=True)
    for c in result.candidates:
        assert c.kept == (c.dropped_by is None)
        if not c.kept:
            assert c.reason
        if c.dropped_by == "rerank_top_n":
            assert c.rerank_rank is not None and c.rerank_rank > 10
        if c.dropped_by == "max_age":
            assert c.passage.published == "2019-03-01"
        if c.dropped_by == "near_duplicate":
            assert c.passage.metadata["kind"] in {"guide", "mirror"}
    assert result.candidates[: len(result.kept)] == result.kept


def test_the_seeds_default_rules_run_on_the_real_index(local_index, reranker):
    result = Funnel(local_index, reranker, cuts=StageCuts(50, 10, 3)).run(QUERY)
    for c in result.at_stage("reranked"):
        if c.kept:
            assert c.rerank_score is not None and c.rerank_score >= 0.7
        elif c.rerank_score is not None and c.rerank_score < 0.7:
            assert c.dropped_by == "min_score"


@pytest.fixture
def topic_funnel(corpus, keyword):
    """The six English documents of the iPhone topic, recalled in corpus order."""
    docs = [d for d in corpus if d.id.startswith("t00-en-")]
    passages = [p for d in docs for p in split_passages(d, 200, 40)]
    return Funnel(StaticRetriever({QUERY: passages}), keyword, cuts=StageCuts(50, 6, 3))


def test_rules_drop_exactly_what_they_should(topic_funnel):
    rules = Rules(min_score=None, today=TODAY, allow_sources=("apple.com",))
    result = topic_funnel.run(QUERY, rules=rules)
    verdicts = {c.passage.doc_id: (c.stage, c.dropped_by) for c in result.candidates}
    assert verdicts == {
        "t00-en-guide": ("final", None),
        "t00-en-faq": ("final", None),
        "t00-en-archive": ("reranked", "max_age"),
        "t00-en-forum": ("reranked", "allow_sources"),
        "t00-en-news": ("reranked", "allow_sources"),
        "t00-en-mirror": ("reranked", "allow_sources"),
    }
    archive = next(c for c in result.candidates if c.passage.doc_id == "t00-en-archive")
    assert archive.reason == "published 2019-03-01 is 2498 days old (> 730)"


def test_near_duplicate_and_cuts(topic_funnel):
    # KeywordBackend ranks: news, faq, forum, archive, then guide and mirror (same text, tie
    # broken by recall order)
    rules = Rules(min_score=None, today=TODAY)
    result = topic_funnel.run(QUERY, rules=rules)
    assert {c.passage.doc_id: (c.stage, c.dropped_by) for c in result.candidates} == {
        "t00-en-news": ("final", None),
        "t00-en-faq": ("final", None),
        "t00-en-forum": ("final", None),
        "t00-en-archive": ("reranked", "max_age"),
        "t00-en-guide": ("ruled", "final_top_n"),
        "t00-en-mirror": ("reranked", "near_duplicate"),
    }
    cut = topic_funnel.run(QUERY, rules=rules, rerank_top_n=5, final_top_n=2)
    verdicts = {c.passage.doc_id: (c.stage, c.dropped_by) for c in cut.candidates}
    assert verdicts["t00-en-mirror"] == ("retrieved", "rerank_top_n")
    assert verdicts["t00-en-forum"] == ("ruled", "final_top_n")
    assert [c.passage.doc_id for c in cut.kept] == ["t00-en-news", "t00-en-faq"]


def test_templates_change_only_the_rerank_query(topic_funnel):
    result = topic_funnel.run(QUERY, template="troubleshooting", rules=Rules(min_score=None))
    assert result.template == "troubleshooting@1"
    assert result.query == QUERY
    assert result.rerank_query.startswith(f"A user reports a problem: {QUERY} Possible causes")
    with pytest.raises(UnknownTemplateError):
        topic_funnel.run(QUERY, template="nope")
    with pytest.raises(EmptyQueryError):
        topic_funnel.run("  ")


def test_nothing_recalled_is_an_empty_result(keyword):
    result = Funnel(StaticRetriever({}), keyword).run("unknown")
    assert result.candidates == [] and result.kept == []
