from __future__ import annotations

from collections.abc import Sequence

import pytest
from rich.text import Text

from rankgate import InputError, Reranker
from rankgate.engine.explain import explain
from rankgate.insight.render import explanation_html, explanation_text


class CountingScorer:
    """Passes calls through to a real reranker and records each call's size."""

    def __init__(self, reranker: Reranker) -> None:
        self.reranker = reranker
        self.calls: list[int] = []

    def compute_score(
        self, pairs: Sequence[Sequence[str]], *, normalize: bool = False
    ) -> list[float]:
        self.calls.append(len(pairs))
        return self.reranker.compute_score(pairs, normalize=normalize)


def test_the_deciding_sentence_is_named(keyword: Reranker) -> None:
    # The keyword model scores the share of document words found in the query: only the middle
    # sentence shares words with the query, so removing it collapses the score.
    doc = "Foxes sleep in dens. Reset router password here. Dogs bark at night."
    e = explain(keyword, "reset router password here", doc)
    assert [s.text for s in e.segments] == [
        "Foxes sleep in dens. ",
        "Reset router password here. ",
        "Dogs bark at night.",
    ]
    assert e.top(1)[0].index == 1
    assert e.segments[1].contribution > 0
    assert all(s.contribution < 0 for s in (e.segments[0], e.segments[2]))
    assert e.top(1, sign="negative")[0].index in (0, 2)


def test_contributions_equal_occluded_scores_in_one_call(reranker: Reranker) -> None:
    doc = (
        "如何重置华为路由器管理员密码？长按复位键十秒钟。"
        "The quick brown fox jumps. 然后登录网页管理界面。"
    )
    scorer = CountingScorer(reranker)
    e = explain(scorer, "reset the router password", doc)
    assert scorer.calls == [len(e.segments) + 1] and len(e.segments) == 4
    full = reranker.compute_score([("reset the router password", doc)])[0]
    assert e.score == pytest.approx(full, abs=1e-5)
    for seg in e.segments:
        rest = doc[: seg.start] + doc[seg.end :]
        without = reranker.compute_score([("reset the router password", rest)])[0]
        assert seg.contribution == pytest.approx(full - without, abs=1e-5)
    assert 0 < e.normalized_score < 1


def test_word_granularity_and_mapping_documents(keyword: Reranker) -> None:
    e = explain(keyword, "router", {"text": "the router works", "id": 7}, granularity="word")
    assert [s.text for s in e.segments] == ["the ", "router ", "works"]
    assert e.top(1)[0].text == "router "


@pytest.mark.parametrize(
    ("query", "document", "kwargs", "message"),
    [
        ("q", "   ", {}, "empty"),
        ("q", "a. b. c.", {"max_segments": 2}, "at most 2"),
        ("q", "a", {"granularity": "line"}, "granularity"),
        ("", "a", {}, "query"),
    ],
)
def test_bad_input_is_refused(keyword: Reranker, query, document, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        explain(keyword, query, document, **kwargs)


def test_terminal_and_html_rendering(keyword: Reranker) -> None:
    doc = "Foxes <b>sleep</b> & dream. Reset router password here. Dogs bark."
    e = explain(keyword, "reset router password here", doc)
    text = explanation_text(e)
    assert isinstance(text, Text) and text.plain == doc
    # Contributions -0.62, +1.09, -0.24: mid vermillion, strongest blue, light vermillion; the
    # lowering ones underlined too, so the sign does not rest on colour alone.
    assert [str(span.style) for span in text.spans] == [
        "underline on #f0a86b",
        "bold white on #0072b2",
        "underline on #fbe3cf",
    ]
    html = explanation_html(e)
    assert "<b>" not in html and "&lt;b&gt;sleep&lt;/b&gt; &amp; dream." in html
    assert 'rgba(0, 114, 178, 0.75)" title="+' in html  # the deciding sentence, strongest blue
    assert html.count("underline dotted") == 2  # the two sentences that lowered it
    assert html.count("<mark") == 3
