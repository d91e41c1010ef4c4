"""``rankgate calibrate`` end to end on the tiny model: the files it writes, what it prints, and the
library loading the calibration afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rankgate import CalibrationError, Reranker
from rankgate.cli import app
from rankgate.engine.calibration import CALIBRATION_FILE, Calibration
from rankgate.engine.scoring import sigmoid
from rankgate.testing import SAMPLE_TEXT

runner = CliRunner()


@pytest.fixture(scope="module")
def judged(tiny_model: Path, reranker: Reranker, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the tiny model (so that no other test finds a calibration beside it) and a
    labels file whose relevance follows a known link to its logits: sigmoid(2 x - 2)."""
    root = tmp_path_factory.mktemp("calibrate")
    model = shutil.copytree(tiny_model, root / "model")
    rng = np.random.default_rng(11)
    words = " ".join(SAMPLE_TEXT).split()
    pairs = [(" ".join(rng.choice(words, 3)), " ".join(rng.choice(words, 9))) for _ in range(240)]
    raw = np.array(reranker.compute_score(pairs))
    labels = (rng.uniform(size=len(pairs)) < sigmoid(2 * raw - 2)).astype(int)
    rows = [
        {"query": q, "document": d, "label": int(y)}
        for (q, d), y in zip(pairs[:200], labels[:200], strict=True)
    ]
    # the last 40 pairs in FlagEmbedding's training shape, one row per query
    for (q, d), y in zip(pairs[200:], labels[200:], strict=True):
        rows.append({"query": q, "pos": [d]} if y else {"query": q, "neg": [d]})
    path = root / "judged.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return model, path, pairs, raw


@pytest.fixture(scope="module")
def calibrated(judged):
    model, labels, _, _ = judged
    result = runner.invoke(
        app,
        [
            "calibrate",
            str(model),
            "--labels",
            str(labels),
            "--precision",
            "0.8",
            "--recall",
            "0.9",
            "--device",
            "cpu",
        ],
    )
    return result


def test_calibrate_writes_the_json_and_the_diagram_beside_the_model(judged, calibrated) -> None:
    model, labels, pairs, _ = judged
    assert calibrated.exit_code == 0, calibrated.output
    path = model / CALIBRATION_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["model"]["id"] == str(model.resolve())
    assert data["model"]["max_length"] == 512 and data["model"]["long_documents"] == "chunk"
    assert data["data"]["rows"] == len(pairs) and data["data"]["labels"] == str(labels)
    assert data["ece"]["after"] < data["ece"]["before"]
    assert [t["target"] for t in data["thresholds"]] == ["precision", "recall"]
    png = (model / "rankgate-calibration.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    out = calibrated.output
    assert "held-out" in out and "chosen" in out and "platt" in out and "isotonic" in out
    assert "expected calibration error (10 equal-width bins, held-out)" in out
    assert "precision >= 0.8" in out and "min_score = " in out
    assert "--calibration none" in out


def test_the_library_then_uses_it(judged, calibrated) -> None:
    model, _, pairs, raw = judged
    cal = Calibration.load(model)
    rr = Reranker(str(model), device="cpu")
    info = rr.info()
    assert (info.calibration, info.calibration_file) == (
        cal.method,
        str(model.resolve() / CALIBRATION_FILE),
    )
    scores = rr.compute_score(pairs[:20], normalize=True)
    np.testing.assert_array_equal(scores, cal.apply(raw[:20].astype(np.float32)))
    assert rr.compute_score(pairs[:20]) == raw[:20].tolist()
    ranked = rr.rerank(pairs[0][0], [d for _, d in pairs[:20]])
    plain = Reranker(str(model), device="cpu", calibration="none")
    assert [r.index for r in ranked] == [
        r.index for r in plain.rerank(pairs[0][0], [d for _, d in pairs[:20]])
    ]
    with pytest.raises(CalibrationError, match="max_length 512"):
        Reranker(str(model), device="cpu", max_length=128)


def test_recalibrating_ignores_the_calibration_already_there(judged, calibrated, tmp_path) -> None:
    model, labels, _, _ = judged
    before = Calibration.load(model)
    out = tmp_path / "again.json"
    result = runner.invoke(
        app, ["calibrate", str(model), "--labels", str(labels), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["file"] == str(out) and body["plot"] == str(tmp_path / "again.png")
    # fitted on the same raw logits, not on the calibrated scores
    assert body["ece"]["before"] == pytest.approx(before.ece_before)
    assert (tmp_path / "again.png").is_file()


def test_a_hub_id_needs_out(judged) -> None:
    _, labels, _, _ = judged
    result = runner.invoke(app, ["calibrate", "BAAI/bge-reranker-v2-m3", "--labels", str(labels)])
    assert result.exit_code == 2
    assert "--out PATH" in result.output and "RANKGATE_CALIBRATION" in result.output


def test_a_bad_labels_file_exits_2_with_its_line(judged, tmp_path) -> None:
    model, _, _, _ = judged
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "document": "d", "label": 1}\n{"query": "q"}\n')
    result = runner.invoke(
        app, ["calibrate", str(model), "--labels", str(bad), "--out", str(tmp_path / "c.json")]
    )
    assert result.exit_code == 2
    assert f"{bad}:2: no label and no pos/neg" in " ".join(result.output.split())
    assert "Traceback" not in result.output
