import rankgate


def test_all_names_exist_and_are_sorted() -> None:
    for name in rankgate.__all__:
        assert hasattr(rankgate, name), name
    public = [n for n in rankgate.__all__ if not n.startswith("__")]
    assert public == sorted(public, key=lambda n: (not n.isupper(), n))


def test_every_error_is_a_rankgate_error() -> None:
    errors = [getattr(rankgate, n) for n in rankgate.__all__ if n.endswith("Error")]
    assert len(errors) >= 15
    for cls in errors:
        assert issubclass(cls, rankgate.RankgateError)


def test_import_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, rankgate; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_calibration_is_public() -> None:
    assert {"Calibration", "CalibrationError", "LabelsError", "calibrate"} <= set(rankgate.__all__)
    assert issubclass(rankgate.CalibrationError, rankgate.ConfigError)
    assert issubclass(rankgate.LabelsError, rankgate.InputError)


def test_a_calibrated_model_scores_with_numpy_alone(tmp_path) -> None:
    import subprocess
    import sys

    code = f"""
import sys, numpy as np
from rankgate import Reranker
from rankgate.engine.calibration import Calibration, FittedFor, IsotonicMap
from rankgate.testing import KeywordBackend
Calibration(map=IsotonicMap(np.array([-2.0, 2.0]), np.array([0.1, 0.9])),
            fitted_for=FittedFor("keyword", None, 1024, "chunk"), rows=100, relevant=50,
            folds=5, bins=10, ece_before=0.2, ece_after=0.02).save({str(tmp_path / "c.json")!r})
rr = Reranker(backend=KeywordBackend(), calibration={str(tmp_path / "c.json")!r})
rr.rerank("q", ["q a", "b"])
print(sorted(m for m in ("sklearn", "scipy", "matplotlib", "torch") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
