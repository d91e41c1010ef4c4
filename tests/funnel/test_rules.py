"""Rules: each drops exactly what it should, and says why."""

from __future__ import annotations

from datetime import date

import pytest

from rankgate.funnel import Candidate, Passage, Rules, RulesError
from rankgate.funnel.rules import source_matches

TODAY = date(2026, 1, 1)


def cand(
    i: int,
    score: float,
    *,
    source="https://support.apple.com/x",
    published="2025-06-01",
    text=None,
    **meta,
) -> Candidate:
    p = Passage(
        id=f"d{i}#0",
        doc_id=f"d{i}",
        n=0,
        text=text or f"unique text number {i} " * 3,
        source=source,
        published=published,
        metadata=meta,
    )
    return Candidate(
        p,
        retrieval_rank=i,
        retrieval_score=0.0,
        rerank_rank=i,
        rerank_score=score,
        stage="reranked",
    )


def verdicts(rules: Rules, cands) -> dict[str, str | None]:
    return {c.passage.doc_id: c.dropped_by for c in rules.apply(cands)}


def test_default_rules_are_the_seeds():
    r = Rules()
    assert (r.min_score, r.max_age_days, r.allow_sources) == (0.7, 730, ())


def test_min_score():
    out = verdicts(Rules(today=TODAY), [cand(1, 0.95), cand(2, 0.7), cand(3, 0.69)])
    assert out == {"d1": None, "d2": None, "d3": "min_score"}


def test_max_age_by_date_field_and_undated():
    cands = [
        cand(1, 0.9, published="2024-01-02"),
        cand(2, 0.9, published="2023-12-31"),
        cand(3, 0.9, published=None),
        cand(4, 0.9, published="2025-01-01T10:00:00Z"),
    ]
    assert verdicts(Rules(today=TODAY), cands) == {
        "d1": None,
        "d2": "max_age",
        "d3": None,
        "d4": None,
    }
    strict = Rules(today=TODAY, keep_undated=False)
    assert verdicts(strict, cands)["d3"] == "max_age"
    by_meta = Rules(today=TODAY, date_field="updated")
    fresh = cand(5, 0.9, published="2001-01-01", updated="2025-12-01")
    assert verdicts(by_meta, [fresh]) == {"d5": None}


def test_allow_and_deny_sources():
    cands = [
        cand(1, 0.9),
        cand(2, 0.9, source="https://forum.example"),
        cand(3, 0.9, source="Apple Support"),
        cand(4, 0.9, source=None),
        cand(5, 0.9, source="https://evilapple.com"),
    ]
    rules = Rules(today=TODAY, allow_sources=("apple.com", "Apple Support"))
    assert verdicts(rules, cands) == {
        "d1": None,
        "d2": "allow_sources",
        "d3": None,
        "d4": "allow_sources",
        "d5": "allow_sources",
    }
    deny = Rules(today=TODAY, deny_sources=("forum.example",))
    assert verdicts(deny, cands)["d2"] == "deny_sources"


def test_per_source_cap_counts_only_kept_candidates():
    cands = [cand(1, 0.9), cand(2, 0.5), cand(3, 0.9), cand(4, 0.9)]
    rules = Rules(today=TODAY, max_per_source=2)
    assert verdicts(rules, cands) == {
        "d1": None,
        "d2": "min_score",
        "d3": None,
        "d4": "max_per_source",
    }


def test_near_duplicates_of_better_candidates_are_dropped():
    text = "Hold the reset button for ten seconds, then log in and set a new password."
    cands = [
        cand(1, 0.9, text=text),
        cand(2, 0.9, text="  " + text.upper().replace(" ", "\n ") + "!"),
        cand(3, 0.9, text="Something else entirely about printers and paper."),
    ]
    out = Rules(today=TODAY).apply(cands)
    assert [c.dropped_by for c in out] == [None, "near_duplicate", None]
    assert "similar to kept candidate #1" in (out[1].reason or "")
    assert Rules(today=TODAY, near_duplicate=None).apply(cands)[1].dropped_by is None


def test_every_drop_has_a_reason_and_passing_ones_reach_ruled():
    out = Rules(today=TODAY).apply([cand(1, 0.9), cand(2, 0.1)])
    assert out[0].stage == "ruled" and out[0].reason is None
    assert out[1].stage == "reranked" and out[1].reason == "rerank score 0.100 < 0.7"


def test_rules_from_toml(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[rules]\nmin_score = 0.5\nallow_sources = ["apple.com"]\n'
        'max_age_days = 365\ntoday = "2026-01-01"\n',
        encoding="utf-8",
    )
    rules = Rules.from_toml(path)
    assert (rules.min_score, rules.allow_sources, rules.max_age_days) == (0.5, ("apple.com",), 365)
    assert rules.today == TODAY
    assert rules.with_overrides({"min_score": None}).min_score is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("min_score = 2", "min_score"),
        ("max_age = 3", "unknown rule"),
        ("allow_sources = 'x'", "list of strings"),
        ("max_per_source = 0", "max_per_source"),
        ("min_score = [", "not valid TOML"),
    ],
)
def test_bad_rules_files_are_config_errors(tmp_path, body, message):
    path = tmp_path / "rules.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        Rules.from_toml(path)


def test_source_matching():
    assert source_matches("https://support.apple.com/en/help", "apple.com")
    assert source_matches("support.apple.com", "apple.com")
    assert not source_matches("https://notapple.com", "apple.com")
    assert source_matches("Apple Support", "apple support")
