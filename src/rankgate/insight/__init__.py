"""Seeing reranking work: score explanations, ranking health, demo scenarios and a playground.

Builds on the engine and never the other way round. Charts need matplotlib (the ``insight``
extra); fitting a calibration needs scikit-learn (the ``eval`` extra); the HTTP router needs the
``server`` extra; the rest needs only the core install.
"""

from rankgate.engine.explain import Explanation, Segment, explain
from rankgate.insight.calibration_fit import CalibrationReport, calibrate, fit_calibration
from rankgate.insight.catalog import Scenario, ScenarioDocument, get_scenario, load_scenarios
from rankgate.insight.demo import DemoRun, run_scenario
from rankgate.insight.health import HealthSettings, HealthSnapshot, Observation
from rankgate.insight.labels import JudgedPairs, read_labels
from rankgate.insight.monitor import AlertEvent, RankingHealth
from rankgate.insight.render import explanation_html, explanation_text

__all__ = [
    "AlertEvent",
    "CalibrationReport",
    "DemoRun",
    "Explanation",
    "HealthSettings",
    "HealthSnapshot",
    "JudgedPairs",
    "Observation",
    "RankingHealth",
    "Scenario",
    "ScenarioDocument",
    "Segment",
    "calibrate",
    "explain",
    "explanation_html",
    "explanation_text",
    "fit_calibration",
    "get_scenario",
    "load_scenarios",
    "read_labels",
    "run_scenario",
]
