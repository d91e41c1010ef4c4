from __future__ import annotations

import pytest

from rankgate import InputError
from rankgate.engine.segments import split_sentences
from rankgate.insight.catalog import get_scenario, load_scenarios


def test_scenarios_cover_eight_languages_and_cross_lingual_pairs() -> None:
    scenarios = load_scenarios()
    query_langs = {s.lang.split("-")[0] for s in scenarios}
    assert {"zh", "en", "ja", "ko", "fr", "es", "de", "ru"} <= query_langs
    assert len(query_langs) >= 8
    cross = {s.lang for s in scenarios if s.cross_lingual}
    assert {"zh-en", "ja-en", "en-zh"} <= cross
    assert {s.id for s in scenarios} >= {
        "router-password",
        "tesla-winter-range",
        "iphone-charging-port",
        "sony-xm5-vs-xm4",
    }


def test_every_variant_is_consistent_with_its_expectation() -> None:
    for s in load_scenarios():
        ids = [d.id for d in s.documents]
        assert s.expected_best in ids and s.expected_worst in ids, (s.id, s.lang)
        assert s.expected_best != s.expected_worst
        assert set(s.why) == set(ids), (s.id, s.lang)
        assert s.query.strip() and all(d.text.strip() for d in s.documents)
        # Explanations need sentences to point at.
        assert all(len(split_sentences(d.text)) >= 2 for d in s.documents), (s.id, s.lang)


def test_the_seed_trap_keeps_its_shape() -> None:
    s = get_scenario("tesla-winter-range", "zh")
    assert s.query == "特斯拉Model Y冬季续航缩水严重吗？"
    assert (s.expected_best, s.expected_worst) == ("C", "B")
    assert "320km" in s.documents[2].text and "不存在" in s.documents[1].text
    assert get_scenario("tesla-winter-range", "zh-en").documents[2].text.startswith("A northern")


def test_unknown_scenario_or_language_lists_the_choices() -> None:
    with pytest.raises(InputError, match="tesla-winter-range"):
        get_scenario("nope", "en")
    with pytest.raises(InputError, match="zh-en"):
        get_scenario("tesla-winter-range", "xx")
