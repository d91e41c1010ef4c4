"""Calibration: fitting on synthetic scores with a known link, the JSON file, the labels file, and
what the library and the funnel do with a calibration (and without one)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import rankgate
from rankgate import Calibration, CalibrationError, LabelsError, Reranker
from rankgate.engine.calibration import CALIBRATION_FILE, FittedFor, IsotonicMap, PlattMap
from rankgate.engine.scoring import rank_order, sigmoid
from rankgate.funnel import Funnel, Rules
from rankgate.funnel.types import Hit, Passage
from rankgate.insight.calibration_fit import (
    MIN_PAIRS,
    choose_threshold,
    expected_calibration_error,
    fit_calibration,
)
from rankgate.insight.labels import JudgedPairs, read_labels
from rankgate.testing import KeywordBackend

FOR_KEYWORD = FittedFor(model="keyword", revision=None, max_length=1024, long_documents="chunk")


def _bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.uniform(size=p.shape) < p).astype(np.int64)


@pytest.fixture(scope="module")
def logistic() -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true probability of relevance is sigmoid(2x - 1)."""
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 2.0, 4000)
    return x, _bernoulli(sigmoid(2 * x - 1), rng)


@pytest.fixture(scope="module")
def step() -> tuple[np.ndarray, np.ndarray]:
    """Logits whose probability of relevance jumps from 0.1 to 0.8 at x = 0.5: not logistic."""
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 2.0, 4000)
    return x, _bernoulli(np.where(x > 0.5, 0.8, 0.1), rng)


# --- fitting ------------------------------------------------------------------------------------


def test_platt_recovers_a_known_logistic_link(logistic) -> None:
    x, y = logistic
    report = fit_calibration(x, y, fitted_for=FOR_KEYWORD)
    cal = report.calibration
    assert cal.method == "platt"
    assert isinstance(cal.map, PlattMap)
    assert cal.map.a == pytest.approx(2.0, abs=0.15)
    assert cal.map.b == pytest.approx(-1.0, abs=0.15)
    assert cal.held_out["platt"].brier < cal.held_out["isotonic"].brier
    assert cal.held_out["platt"].log_loss < cal.held_out["isotonic"].log_loss


def test_isotonic_is_chosen_for_a_step_link_and_recovers_it(step) -> None:
    x, y = step
    report = fit_calibration(x, y, fitted_for=FOR_KEYWORD)
    cal = report.calibration
    assert cal.method == "isotonic"
    assert cal.held_out["isotonic"].brier < cal.held_out["platt"].brier
    truth = np.where(x > 0.5, 0.8, 0.1)
    assert np.mean(np.abs(cal.apply(x) - truth)) < 0.03
    assert cal.apply(np.array([-2.0, -1.0, 1.5, 2.5])) == pytest.approx(
        [0.1, 0.1, 0.8, 0.8], abs=0.05
    )
    # Platt, forced through the same pairs, cannot draw the step.
    assert np.mean(np.abs(report.held_out["platt"] - truth)) > 0.05


@pytest.mark.parametrize("data", ["logistic", "step"])
def test_expected_calibration_error_drops(data: str, request: pytest.FixtureRequest) -> None:
    x, y = request.getfixturevalue(data)
    report = fit_calibration(x, y, fitted_for=FOR_KEYWORD)
    cal = report.calibration
    assert cal.ece_before == pytest.approx(expected_calibration_error(sigmoid(x), y))
    assert cal.ece_before > 0.1
    assert cal.ece_after < 0.03
    assert cal.ece_after == pytest.approx(
        expected_calibration_error(report.held_out[cal.method], y)
    )
    assert sum(b.count for b in report.after) == len(y) == cal.rows


def test_ece_of_a_hand_computed_case() -> None:
    scores = np.array([0.05, 0.15, 0.95, 1.0])
    labels = np.array([0, 1, 1, 1])
    # bins [0, .1): 0.05 vs 0; [.1, .2): 0.15 vs 1; [.9, 1]: 0.975 vs 1
    expected = (0.05 + 0.85 + 2 * 0.025) / 4
    assert expected_calibration_error(scores, labels, bins=10) == pytest.approx(expected)


def test_isotonic_map_with_np_interp_is_sklearn_predict_exactly() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, 3000)
    y = _bernoulli(sigmoid(x), rng).astype(np.float64)
    model = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip").fit(x, y)
    mapping = IsotonicMap(model.X_thresholds_, model.y_thresholds_)
    fresh = rng.uniform(-12, 12, 20000)  # beyond both ends too: clipped
    for points in (fresh, x, model.X_thresholds_):
        np.testing.assert_array_equal(mapping(points), model.predict(points))


def test_scores_that_fall_with_relevance_are_refused(logistic) -> None:
    x, y = logistic
    with pytest.raises(LabelsError, match="do not rise with relevance"):
        fit_calibration(x, 1 - y, fitted_for=FOR_KEYWORD)


# --- thresholds ---------------------------------------------------------------------------------

SCORES = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
LABELS = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0])


def test_precision_threshold_is_the_lowest_that_meets_the_target() -> None:
    t = choose_threshold(SCORES, LABELS, "precision", 0.8)
    # keeping >= 0.6 gives 4 of 5 relevant (0.8); >= 0.4 gives 5 of 7; >= 0.5 gives 4 of 6
    assert (t.threshold, t.met) == (0.6, True)
    assert (t.precision, t.recall, t.kept) == pytest.approx((0.8, 0.8, 0.5))


def test_unreachable_precision_reports_the_best() -> None:
    t = choose_threshold(SCORES, np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 0]), "precision", 0.99)
    assert not t.met
    assert t.precision == pytest.approx(0.6)  # best: >= 0.6, 3 of 5
    assert t.threshold == 0.6


def test_recall_threshold_is_the_highest_that_keeps_the_target() -> None:
    t = choose_threshold(SCORES, LABELS, "recall", 0.8)
    assert (t.threshold, t.met) == (0.6, True)  # >= 0.6 keeps 4 of the 5 relevant
    assert choose_threshold(SCORES, LABELS, "recall", 1.0).threshold == 0.4


def test_thresholds_are_printed_exactly_as_they_are_stored() -> None:
    scores = np.array([0.912345678, 0.8, 0.1])
    t = choose_threshold(scores, np.array([1, 1, 0]), "precision", 1.0)
    assert t.threshold == 0.8 and f"{t.threshold:.4f}" == "0.8000"
    assert choose_threshold(scores, np.array([1, 0, 0]), "precision", 1.0).threshold == 0.9123


def test_fit_stores_the_thresholds(logistic) -> None:
    x, y = logistic
    cal = fit_calibration(x, y, fitted_for=FOR_KEYWORD, precision=0.9, recall=0.8).calibration
    precision, recall = cal.thresholds
    assert (precision.target, precision.goal, precision.met) == ("precision", 0.9, True)
    assert precision.precision >= 0.9 and recall.recall >= 0.8
    assert recall.target == "recall"


# --- the file -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["logistic", "step"])
def test_json_round_trip_is_exact(data: str, request: pytest.FixtureRequest, tmp_path) -> None:
    x, y = request.getfixturevalue(data)
    cal = fit_calibration(x, y, fitted_for=FOR_KEYWORD, precision=0.9).calibration
    saved = cal.save(tmp_path / CALIBRATION_FILE)
    text = saved.path.read_text(encoding="utf-8")
    data_on_disk = json.loads(text)
    assert (data_on_disk["format"], data_on_disk["version"]) == ("rankgate-calibration", 1)
    assert data_on_disk["method"] == cal.method
    assert data_on_disk["model"] == {
        "id": "keyword",
        "revision": None,
        "max_length": 1024,
        "long_documents": "chunk",
        "backend": "torch",
    }
    assert data_on_disk["data"]["rows"] == len(y)
    assert set(data_on_disk["held_out"]) == {"platt", "isotonic"}
    assert data_on_disk["ece"]["bins"] == 10
    loaded = Calibration.load(tmp_path)  # a directory means its rankgate-calibration.json
    assert loaded.to_dict() == cal.to_dict()
    probe = np.linspace(-10, 10, 1001)
    np.testing.assert_array_equal(loaded.apply(probe), cal.apply(probe))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something-else"}', "not a rankgate calibration"),
        ('{"format": "rankgate-calibration", "version": 99}', "format version 99"),
        ('{"format": "rankgate-calibration", "version": 1, "method": "platt"}', "parameters"),
    ],
)
def test_unreadable_files_are_config_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalibrationError, match=message) as info:
        Calibration.load(path)
    assert isinstance(info.value, rankgate.ConfigError)


@pytest.mark.parametrize(
    ("method", "parameters", "message"),
    [
        ("platt", {"a": -1.0, "b": 0.0}, "a > 0"),
        ("isotonic", {"x": [0.0, 1.0], "y": [0.9, 0.1]}, "non-decreasing"),
        ("isotonic", {"x": [0.0, 1.0], "y": [0.5]}, "same"),
        ("sigmoid", {}, "unknown method"),
    ],
)
def test_invalid_maps_are_refused(tmp_path: Path, method: str, parameters, message: str) -> None:
    data = _platt(1.0, 0.0).to_dict()
    data.update(method=method, parameters=parameters)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CalibrationError, match=message):
        Calibration.load(path)


def test_a_missing_file_says_how_to_go_on(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"no such file.*calibration none"):
        Calibration.load(tmp_path / "nope.json")


# --- labels -------------------------------------------------------------------------------------


def _write(path: Path, rows: list[object]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_labels_read_both_shapes_and_graded_labels(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "labels.jsonl",
        [
            {"query": "q1", "document": "d1", "label": 1},
            {"query": "q1", "document": "d2", "label": 0},
            "",
            {"query": "q2", "document": "d3", "label": 3},  # graded: above 0 is relevant
            {"query": "q3", "pos": ["p1", "p2"], "neg": ["n1"], "pos_scores": [1, 1]},
            {"query": "q4", "neg": ["n2"]},
            {"query": "q5", "document": "d4", "label": True},
        ],
    )
    judged = read_labels(path)
    assert judged.pairs == (
        ("q1", "d1"),
        ("q1", "d2"),
        ("q2", "d3"),
        ("q3", "p1"),
        ("q3", "p2"),
        ("q3", "n1"),
        ("q4", "n2"),
        ("q5", "d4"),
    )
    assert judged.labels == (1, 0, 1, 1, 1, 0, 0, 1)
    assert judged.source == str(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ({"document": "d", "label": 1}, "query must be a non-empty string"),
        ({"query": "q", "label": 1}, "document must be a non-empty string"),
        ({"query": "q", "document": "d", "label": 0.5}, "label must be an integer"),
        ({"query": "q", "document": "d", "label": "yes"}, "label must be an integer"),
        ({"query": "q", "document": "d", "label": 1, "pos": ["p"]}, "not both"),
        ({"query": "q", "pos": "p"}, "pos must be a list"),
        ({"query": "q", "neg": ["", "x"]}, r"neg\[0\] must be a non-empty string"),
        ({"query": "q", "document": "d"}, "no label and no pos/neg"),
    ],
)
def test_malformed_rows_name_their_line(tmp_path: Path, row: object, message: str) -> None:
    good = {"query": "q", "document": "d", "label": 1}
    path = _write(tmp_path / "labels.jsonl", [good, "", row, good])
    with pytest.raises(LabelsError, match=message) as info:
        read_labels(path)
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: ")
    assert isinstance(info.value, rankgate.InputError)


def test_a_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="no such file"):
        read_labels(tmp_path / "none.jsonl")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1] * 50, "all 50 pairs are labelled relevant: a calibration needs not relevant pairs"),
        ([0] * 50, "all 50 pairs are labelled not relevant: a calibration needs relevant pairs"),
        ([1, 0] * 10, f"20 judged pairs .10 relevant, 10 not.; .*at least {MIN_PAIRS}"),
        ([1] * 5 + [0] * 60, "at least 10 relevant"),
    ],
)
def test_pairs_a_calibration_cannot_be_fitted_on(labels: list[int], message: str) -> None:
    x = np.linspace(-3, 3, len(labels))
    with pytest.raises(LabelsError, match=message):
        fit_calibration(x, labels, fitted_for=FOR_KEYWORD)


def test_calibrate_refuses_before_scoring(keyword: Reranker) -> None:
    judged = JudgedPairs.from_rows([("q", f"d{i}", 1) for i in range(60)])
    with pytest.raises(LabelsError, match="not relevant pairs too"):
        rankgate.calibrate(keyword, judged)
    assert keyword.backend.pairs_computed == 0


# --- the library --------------------------------------------------------------------------------

QUERY = "reset router password"
DOCS = [
    "reset router password now",
    "the router",
    "winter range of the car",
    "password reset for the router admin",
    "nothing relevant here at all",
    "router password",
]


def _platt(a: float, b: float, model: str = "keyword", max_length: int = 1024) -> Calibration:
    return Calibration(
        map=PlattMap(a, b),
        fitted_for=FittedFor(model, None, max_length, "chunk"),
        rows=100,
        relevant=50,
        folds=5,
        bins=10,
        ece_before=0.2,
        ece_after=0.02,
    )


def _keyword_at(model_dir: Path) -> KeywordBackend:
    """The keyword model, as if it had been loaded from ``model_dir``."""
    backend = KeywordBackend()
    backend.model_id = str(model_dir)
    return backend


def test_no_calibration_is_bit_for_bit_the_sigmoid(keyword: Reranker) -> None:
    assert keyword.calibration is None
    raw = np.array(keyword.compute_score([(QUERY, d) for d in DOCS]))
    normalized = keyword.compute_score([(QUERY, d) for d in DOCS], normalize=True)
    expected = sigmoid(raw.astype(np.float32))
    assert np.array(normalized).tobytes() == expected.tobytes()
    ranked = keyword.rerank(QUERY, DOCS)
    assert [r.index for r in ranked] == rank_order(expected.tolist())
    assert (
        np.array([r.score for r in ranked]).tobytes()
        == expected[[r.index for r in ranked]].tobytes()
    )
    info = keyword.info()
    assert (info.calibration, info.calibration_file) == (None, None)


def test_a_calibration_beside_the_model_is_found_and_applied(tmp_path: Path) -> None:
    cal = _platt(1.5, 2.0, model="some/other-name").save(tmp_path / CALIBRATION_FILE)
    rr = Reranker(backend=_keyword_at(tmp_path))
    assert rr.calibration is not None and rr.calibration.map == cal.map
    raw = np.array(rr.compute_score([(QUERY, d) for d in DOCS]))
    calibrated = rr.compute_score([(QUERY, d) for d in DOCS], normalize=True)
    np.testing.assert_array_equal(calibrated, sigmoid(1.5 * raw + 2.0))
    assert rr.compute_score([(QUERY, d) for d in DOCS]) == raw.tolist()  # raw logits unchanged
    info = rr.info()
    assert (info.calibration, info.calibration_file) == ("platt", str(tmp_path / CALIBRATION_FILE))


def test_calibration_none_turns_a_found_calibration_off(tmp_path: Path, keyword: Reranker) -> None:
    _platt(1.5, 2.0).save(tmp_path / CALIBRATION_FILE)
    rr = Reranker(backend=_keyword_at(tmp_path), calibration="none")
    assert rr.calibration is None
    pairs = [(QUERY, d) for d in DOCS]
    assert rr.compute_score(pairs, normalize=True) == keyword.compute_score(pairs, normalize=True)


def test_the_setting_loads_a_file_from_elsewhere(tmp_path: Path) -> None:
    path = _platt(2.0, 0.0).save(tmp_path / "elsewhere.json").path
    rr = Reranker(backend=KeywordBackend(), calibration=str(path))
    assert rr.info().calibration == "platt"


def test_isotonic_steps_never_reorder_documents(keyword: Reranker) -> None:
    raw = np.array(keyword.compute_score([(QUERY, d) for d in DOCS]))
    # One flat step over every logit: all calibrated scores tie.
    flat = Calibration(
        map=IsotonicMap(np.array([raw.min() - 1, raw.max() + 1]), np.array([0.4, 0.4])),
        fitted_for=FOR_KEYWORD,
        rows=100,
        relevant=40,
        folds=5,
        bins=10,
        ece_before=0.1,
        ece_after=0.05,
    )
    rr = Reranker(backend=KeywordBackend())
    rr.calibration = flat
    ranked = rr.rerank(QUERY, DOCS)
    assert [r.index for r in ranked] == [r.index for r in keyword.rerank(QUERY, DOCS)]
    assert {r.score for r in ranked} == {0.4}
    # the order really comes from the logits, not from the (tied) scores
    assert [r.index for r in ranked] != list(range(len(DOCS)))


def test_a_calibration_for_another_model_is_refused(tmp_path: Path) -> None:
    path = _platt(1.0, 0.0, model="BAAI/bge-reranker-v2-m3").save(tmp_path / "c.json").path
    with pytest.raises(CalibrationError, match="fitted for model 'BAAI/bge-reranker-v2-m3'"):
        Reranker(backend=KeywordBackend(), calibration=str(path))


def test_a_calibration_for_another_max_length_is_refused(tmp_path: Path) -> None:
    path = _platt(1.0, 0.0, max_length=512).save(tmp_path / "c.json").path
    with pytest.raises(CalibrationError, match=r"max_length 512.*--max-length 512"):
        Reranker(backend=KeywordBackend(), calibration=str(path))


def test_another_revision_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _platt(1.0, 0.0).save(tmp_path / "c.json").path
    with caplog.at_level(logging.WARNING, logger="rankgate"):
        rr = Reranker(backend=KeywordBackend(), calibration=str(path), revision="v2")
    assert rr.calibration is not None
    assert "revision" in caplog.text and "v2" in caplog.text


# --- the funnel ---------------------------------------------------------------------------------


class _Static:
    def __init__(self, texts: list[str]) -> None:
        self.passages = [
            Passage(id=f"d{i}#0", doc_id=f"d{i}", n=0, text=t) for i, t in enumerate(texts)
        ]

    def search(self, query: str, top_k: int) -> list[Hit]:
        return [Hit(p, 1.0 / r, r) for r, p in enumerate(self.passages[:top_k], 1)]


def test_the_min_score_rule_uses_the_calibrated_score(keyword: Reranker) -> None:
    rules = Rules(min_score=0.7, max_age_days=None, near_duplicate=None)
    retriever = _Static(DOCS)
    plain = Funnel(retriever, keyword, rules).run(QUERY, rerank_top_n=10, final_top_n=10)
    calibrated_rr = Reranker(backend=KeywordBackend())
    calibrated_rr.calibration = _platt(1.0, 3.0)  # lifts every score
    calibrated = Funnel(retriever, calibrated_rr, rules).run(QUERY, rerank_top_n=10, final_top_n=10)

    def fates(result) -> dict[str, tuple[float, str | None]]:
        return {c.passage.doc_id: (c.rerank_score, c.dropped_by) for c in result.candidates}

    before, after = fates(plain), fates(calibrated)
    lifted = [d for d, (score, why) in before.items() if why == "min_score" and after[d][1] is None]
    assert lifted, (before, after)
    for doc_id, (score, _) in after.items():
        raw = np.log(before[doc_id][0] / (1 - before[doc_id][0]))  # the logit back from sigmoid
        assert score == pytest.approx(float(sigmoid(np.array([raw + 3.0]))[0]))
