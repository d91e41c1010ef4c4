"""Seeing reranking work: score explanations, ranking health, demo scenarios and a playground.

Builds on the engine and never the other way round. Charts need matplotlib (the ``insight``
extra); the HTTP router needs the ``server`` extra; the rest needs only the core install.
"""

from rankgate.engine.explain import Explanation, Segment, explain
from rankgate.insight.catalog import Scenario, ScenarioDocument, get_scenario, load_scenarios
from rankgate.insight.demo import DemoRun, run_scenario
from rankgate.insight.health import HealthSettings, HealthSnapshot, Observation
from rankgate.insight.monitor import AlertEvent, RankingHealth
from rankgate.insight.render import explanation_html, explanation_text

__all__ = [
    "AlertEvent",
    "DemoRun",
    "Explanation",
    "HealthSettings",
    "HealthSnapshot",
    "Observation",
    "RankingHealth",
    "Scenario",
    "ScenarioDocument",
    "Segment",
    "explain",
    "explanation_html",
    "explanation_text",
    "get_scenario",
    "load_scenarios",
    "run_scenario",
]
