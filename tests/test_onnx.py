"""The onnx backend and exporter, on a tiny random cross-encoder generated on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("torch")
pytest.importorskip("transformers")

import typer
from typer.testing import CliRunner

from rankgate import Reranker
from rankgate.backends import Backend, EncodedPair
from rankgate.backends.onnx_backend import OnnxBackend
from rankgate.backends.onnx_export import export_onnx
from rankgate.cli.export import export
from rankgate.config import build_settings
from rankgate.errors import MissingDependencyError, ModelLoadError
from rankgate.testing import SAMPLE_TEXT, build_model

# transformers 5's XLMRobertaTokenizer rebuilds its pipeline and drops tokenizer.json's normalizer
# (NFKC here), so the torch backend and tokenizer.json disagree on e.g. full-width "？". NFKC text
# is where both agree; score parity is checked on it, raw text is covered by the forward test.
TEXTS = [unicodedata.normalize("NFKC", t) for t in SAMPLE_TEXT]
QUERIES = [TEXTS[0], "battery range in winter", TEXTS[3], "пароль роутера", "a"]
LONG_DOCS = [" ".join(TEXTS), " ".join(reversed(TEXTS)) * 2]
DOCS = [*TEXTS, *LONG_DOCS]


@pytest.fixture(scope="module", autouse=True)
def _offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A wide initializer range gives logits of order 1, so 1e-4 parity is a real check.
    return build_model(tmp_path_factory.mktemp("tiny"), initializer_range=0.5)


@pytest.fixture(scope="module")
def exported(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    result = export_onnx(tiny, out, int8=True)
    assert result.max_abs_diff < 1e-4
    return out


@pytest.fixture(scope="module")
def torch_reranker(tiny: Path) -> Reranker:
    return Reranker(str(tiny), max_length=64)


@pytest.fixture(scope="module")
def onnx_reranker(exported: Path) -> Reranker:
    return Reranker(settings=build_settings(model=str(exported), backend="onnx", max_length=64))


def test_export_layout_and_manifest(exported: Path, tiny: Path) -> None:
    for name in (
        "model.onnx",
        "model_int8.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
    ):
        assert (exported / name).is_file(), name
    manifest = json.loads((exported / "rankgate-export.json").read_text())
    assert manifest["source"] == str(tiny)
    assert manifest["opset"] == 17
    assert manifest["int8"] is True
    assert manifest["files"] == ["model.onnx", "model_int8.onnx"]
    assert {"torch", "transformers"} <= set(manifest["versions"])
    assert manifest["fused_operators"]["Attention"] == 2  # one per layer of the tiny model


def test_backend_describes_itself(onnx_reranker: Reranker, torch_reranker: Reranker) -> None:
    onnx, ref = onnx_reranker.backend, torch_reranker.backend
    assert isinstance(onnx, Backend)
    assert (onnx.name, onnx.device, onnx.dtype) == ("onnx", "cpu", "float32")
    assert onnx.template == ref.template
    assert onnx.pad_token_id == ref.pad_token_id
    assert onnx.model_max_length == ref.model_max_length == 512
    # The exporter stores identical tensors once (random init repeats zero biases and unit
    # LayerNorm weights), so the count can fall a little short of torch's.
    assert 0.95 * ref.parameters <= onnx.parameters <= ref.parameters


def test_tokenize_equals_tokenizer_json_pipeline(exported: Path, tiny: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    # PreTrainedTokenizerFast runs tokenizer.json as saved, as transformers 4 does for this model
    # (FlagEmbedding's reference environment); the raw texts include full-width punctuation.
    reference = PreTrainedTokenizerFast.from_pretrained(str(tiny))
    backend = OnnxBackend(exported, model_id="tiny")
    texts = [*SAMPLE_TEXT, "", " ", "  spaced   out  ", "tab\tand\nnewline", "ＡＢＣ ﬁ 🙂"]
    want = reference(texts, add_special_tokens=False)["input_ids"]
    assert backend.tokenize(texts) == want
    cut = reference(texts, add_special_tokens=False, truncation=True, max_length=7)["input_ids"]
    assert backend.tokenize(texts, max_tokens=7) == cut
    specials = {backend.template.prefix[0], backend.template.suffix[0], backend.pad_token_id}
    assert not specials & {t for ids in backend.tokenize(texts) for t in ids}
    assert backend.tokenize([]) == []


def test_tokenize_equals_torch_backend_on_normalized_text(
    onnx_reranker: Reranker, torch_reranker: Reranker
) -> None:
    onnx, ref = onnx_reranker.backend, torch_reranker.backend
    assert onnx.tokenize(DOCS) == ref.tokenize(DOCS)
    assert onnx.tokenize(DOCS, max_tokens=20) == ref.tokenize(DOCS, max_tokens=20)
    ids = onnx.tokenize(TEXTS)
    assert [onnx.decode(i) for i in ids] == [ref.decode(i) for i in ids]


def test_forward_matches_torch_on_the_same_pairs(
    onnx_reranker: Reranker, torch_reranker: Reranker
) -> None:
    onnx, ref = onnx_reranker.backend, torch_reranker.backend
    ids = onnx.tokenize(SAMPLE_TEXT, max_tokens=40)
    pairs = [onnx.template.build(ids[i], ids[j]) for i in range(len(ids)) for j in (0, 5, i)]
    assert len({len(p) for p in pairs}) > 5  # rows of many lengths: padding is exercised
    got = onnx.forward(pairs)
    assert got.dtype == np.float32 and got.shape == (len(pairs),)
    np.testing.assert_allclose(got, ref.forward(pairs), atol=1e-4, rtol=0)
    one = onnx.forward([EncodedPair((0, 10, 2, 2, 11, 2))])
    assert one.shape == (1,)


def test_scores_match_torch(onnx_reranker: Reranker, torch_reranker: Reranker) -> None:
    pairs = [(q, d) for q in QUERIES for d in DOCS]
    got = onnx_reranker.compute_score(pairs)
    want = torch_reranker.compute_score(pairs)
    assert got == pytest.approx(want, abs=1e-4)
    assert np.std(want) > 0.1  # the scores differ enough for the comparison to mean something

    for query in QUERIES[:3]:
        got_ranked = onnx_reranker.rerank(query, DOCS)
        want_ranked = torch_reranker.rerank(query, DOCS)
        assert [r.chunks for r in got_ranked] == [r.chunks for r in want_ranked]
        assert max(r.chunks for r in got_ranked) > 1  # long documents were windowed
        assert [r.score for r in got_ranked] == pytest.approx(
            [r.score for r in want_ranked], abs=1e-4
        )
        assert {r.index for r in got_ranked[:3]} == {r.index for r in want_ranked[:3]}


def test_int8_loads_and_scores(exported: Path, onnx_reranker: Reranker) -> None:
    backend = OnnxBackend(exported, model_id="tiny", file="model_int8.onnx")
    assert backend.dtype == "int8"
    assert backend.parameters == onnx_reranker.backend.parameters
    int8 = Reranker(str(exported), backend=backend, max_length=64)
    pairs = [(q, d) for q in QUERIES for d in DOCS]
    got = np.array(int8.compute_score(pairs))
    want = np.array(onnx_reranker.compute_score(pairs))
    assert np.isfinite(got).all()
    # Quality is model-specific: report, don't assert (random 32-wide weights quantize badly).
    n = len(DOCS)
    top3 = [
        len(set(np.argsort(-got[k : k + n])[:3]) & set(np.argsort(-want[k : k + n])[:3])) / 3
        for k in range(0, len(pairs), n)
    ]
    print(
        f"\nint8 vs fp32 on the tiny model: max |logit diff| {np.abs(got - want).max():.3f}, "
        f"mean {np.abs(got - want).mean():.3f}, logit std {want.std():.3f}, "
        f"top-3 agreement {np.mean(top3):.2f}, correlation {np.corrcoef(got, want)[0, 1]:.3f}"
    )


def test_serves_without_torch_or_transformers(exported: Path, onnx_reranker: Reranker) -> None:
    code = """
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"torch", "transformers"}:
            raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
        return None

sys.meta_path.insert(0, Block())
from rankgate import Reranker
from rankgate.config import build_settings

reranker = Reranker(settings=build_settings(model=sys.argv[1], backend="onnx", max_length=64))
scores = reranker.compute_score(json.loads(sys.argv[2]))
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {"torch", "transformers"})
print(json.dumps({"scores": scores, "loaded": loaded}))
"""
    pairs = [(q, d) for q in QUERIES[:2] for d in DOCS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(exported), json.dumps(pairs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["loaded"] == []
    assert reply["scores"] == pytest.approx(onnx_reranker.compute_score(pairs), abs=1e-6)


def test_missing_files_raise_model_load_error(exported: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "config.json", "tokenizer_config.json"):
        shutil.copyfile(exported / name, tmp_path / name)
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        OnnxBackend(tmp_path, model_id="broken")
    with pytest.raises(ModelLoadError, match=r"model_int8\.onnx"):
        OnnxBackend(exported, model_id="tiny", file="nope.onnx")
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match="rankgate export"):
        OnnxBackend(tmp_path, model_id="broken")


def test_model_in_onnx_subdirectory(exported: Path, tmp_path: Path) -> None:
    # The layout of hub repositories that ship ONNX next to safetensors (onnx/model.onnx).
    (tmp_path / "onnx").mkdir()
    shutil.copyfile(exported / "model.onnx", tmp_path / "onnx" / "model.onnx")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(exported / name, tmp_path / name)
    backend = OnnxBackend(tmp_path, model_id="sub", threads=1)
    assert backend.model_file == tmp_path / "onnx" / "model.onnx"


def test_missing_onnxruntime_names_the_extra(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"rankgate\[onnx\]"):
        OnnxBackend(exported, model_id="tiny")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(export)
    return app


def test_cli_export(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(_cli(), [str(tiny), "--out", str(out), "--no-optimize"])
    assert result.exit_code == 0, result.output
    assert "model.onnx" in result.output
    assert (out / "model.onnx").is_file() and not (out / "model_int8.onnx").exists()
    assert json.loads((out / "rankgate-export.json").read_text())["fused_operators"] == {}
    backend = OnnxBackend(out, model_id="cli")
    assert backend.dtype == "float32"


def test_cli_export_reports_a_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), [str(tmp_path / "absent"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3  # ModelLoadError
    assert "no such directory" in result.output
