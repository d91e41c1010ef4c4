"""The funnel's rule and template settings reach the funnel the same way from the command line,
the environment and the server (build_funnel -> load_rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankgate.errors import ConfigError
from rankgate.funnel import Funnel
from rankgate.funnel.corpus import split_passages
from rankgate.funnel.factory import load_rules
from rankgate.funnel.settings import FunnelSettings, build_funnel_settings
from tests.funnel.conftest import StaticRetriever

QUERY = "iPhone 15 charges slowly"


def test_rule_variables_override_the_rules_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\nmin_score = 0.5\nmax_age_days = 10\n", encoding="utf-8")
    monkeypatch.setenv("RANKGATE_RULES_FILE", str(rules))
    monkeypatch.setenv("RANKGATE_MIN_SCORE", "0.2")
    monkeypatch.setenv("RANKGATE_ALLOW_SOURCES", "apple.com  Apple Support")
    got = load_rules(build_funnel_settings())  # what the server's get_funnel builds
    assert got.min_score == 0.2
    assert got.max_age_days == 10  # the file's, as no variable sets it
    assert got.allow_sources == ("apple.com", "Apple", "Support")  # split as click splits
    assert got.near_duplicate == 0.9


def test_without_rule_settings_the_rules_are_the_file_s_or_the_defaults() -> None:
    assert load_rules(FunnelSettings()).min_score == 0.7
    assert FunnelSettings().rule_overrides() == {}


def test_a_rule_setting_out_of_range_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKGATE_MIN_SCORE", "1.5")
    with pytest.raises(ConfigError, match="min_score"):
        build_funnel_settings()


def test_the_default_template_applies_when_a_search_names_none(corpus, keyword) -> None:
    docs = [d for d in corpus if d.id.startswith("t00-en-")]
    passages = [p for d in docs for p in split_passages(d, 200, 40)]
    funnel = Funnel(StaticRetriever({QUERY: passages}), keyword, template="troubleshooting")
    assert funnel.retrieve(QUERY).template == "troubleshooting@1"
    assert funnel.retrieve(QUERY, template="plain").rerank_query == QUERY
