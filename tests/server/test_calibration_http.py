"""A calibrated model over HTTP: ``/info`` says so, ``relevance_score`` is the calibrated
probability in every dialect, and the raw logit stays one flag away."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from rankgate import Reranker
from rankgate.engine.calibration import Calibration, FittedFor, PlattMap
from rankgate.engine.scoring import sigmoid
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend

QUERY = "reset router password"
DOCS = ["reset router password now", "the router", "winter range", "router password"]
A, B = 1.5, 2.0


@pytest.fixture(scope="module")
def calibrated(serve, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("calibration") / "keyword.json"
    Calibration(
        map=PlattMap(A, B),
        fitted_for=FittedFor("keyword", None, 1024, "chunk"),
        rows=100,
        relevant=50,
        folds=5,
        bins=10,
        ece_before=0.2,
        ece_after=0.02,
    ).save(path)
    reranker = Reranker(backend=KeywordBackend(), calibration=str(path))
    live = serve(create_app(ServerSettings(), reranker))
    with live.client() as client:
        yield client, reranker, path


def _raw(reranker: Reranker) -> np.ndarray:
    return np.array(reranker.compute_score([(QUERY, d) for d in DOCS]))


def test_info_names_the_calibration(calibrated) -> None:
    client, _, path = calibrated
    details = client.get("/info").json()["rankgate"]
    assert (details["calibration"], details["calibration_file"]) == ("platt", str(path))
    assert details["models"][0]["calibration"] == "platt"


def test_relevance_score_is_calibrated_and_raw_scores_give_the_logit(calibrated) -> None:
    client, reranker, _ = calibrated
    raw = _raw(reranker)
    expected = sigmoid(A * raw + B)
    for route in ("/v1/rerank", "/v2/rerank"):
        body = {"query": QUERY, "documents": DOCS}
        results = client.post(route, json=body).json()["results"]
        got = {r["index"]: r["relevance_score"] for r in results}
        assert got == pytest.approx(dict(enumerate(expected)), abs=1e-12), route
        assert [r["index"] for r in results] == list(np.argsort(-raw, kind="stable"))
        logits = client.post(route, json={**body, "raw_scores": True}).json()["results"]
        assert {r["index"]: r["relevance_score"] for r in logits} == pytest.approx(
            dict(enumerate(raw))
        )


def test_tei_and_vllm_dialects(calibrated) -> None:
    client, reranker, _ = calibrated
    raw = _raw(reranker)
    expected = sigmoid(A * raw + B)
    tei = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
    assert {r["index"]: r["score"] for r in tei} == pytest.approx(dict(enumerate(expected)))
    tei_raw = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True})
    assert {r["index"]: r["score"] for r in tei_raw.json()} == pytest.approx(dict(enumerate(raw)))
    body = {"text_1": QUERY, "text_2": DOCS}
    vllm = client.post("/score", json=body).json()["data"]
    assert [d["score"] for d in vllm] == pytest.approx(list(expected))
    vllm_raw = client.post("/score", json={**body, "use_activation": False}).json()["data"]
    assert [d["score"] for d in vllm_raw] == pytest.approx(list(raw))


def test_an_uncalibrated_model_adds_nothing_to_info(fake: httpx.Client) -> None:
    details = fake.get("/info").json()["rankgate"]
    assert "calibration" not in details and "calibration_file" not in details
    assert "calibration" not in details["models"][0]
