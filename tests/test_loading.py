"""Loading: local directories, the hub cache, offline errors, device and dtype choices, settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rankgate import ConfigError, ModelLoadError, ModelNotFoundError, Reranker


def test_missing_hub_model_offline_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        Reranker("BAAI/bge-reranker-v2-m3", cache_dir=tmp_path, offline=True)
    message = str(info.value)
    assert "BAAI/bge-reranker-v2-m3" in message
    assert "rankgate download BAAI/bge-reranker-v2-m3" in message
    assert "HF_HOME" in message and "local directory" in message


def test_missing_hub_model_with_hub_unreachable(tmp_path: Path) -> None:
    # conftest sets HF_HUB_OFFLINE=1, as a machine without network would behave
    with pytest.raises(ModelNotFoundError, match="cannot be reached"):
        Reranker("BAAI/bge-reranker-v2-m3", cache_dir=tmp_path)


def _fake_cache(cache: Path, repo: str, model_dir: Path) -> None:
    """Lay out ``model_dir`` as huggingface_hub caches a downloaded repo."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, root / "snapshots" / commit)


def test_cached_hub_model_loads_offline(tmp_path: Path, tiny_model: Path) -> None:
    _fake_cache(tmp_path, "acme/tiny-reranker", tiny_model)
    rr = Reranker("acme/tiny-reranker", cache_dir=tmp_path, offline=True)
    direct = Reranker(str(tiny_model))
    pair = [("reset password", "router admin password reset")]
    assert rr.compute_score(pair) == pytest.approx(direct.compute_score(pair))
    assert rr.info().model == "acme/tiny-reranker"


def test_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such directory"):
        Reranker(str(tmp_path / "nope"))


def test_directory_without_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        Reranker(str(tmp_path))


def test_model_with_several_labels_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    target = tmp_path / "two-labels"
    shutil.copytree(tiny_model, target)
    config = json.loads((target / "config.json").read_text())
    config["id2label"] = {"0": "A", "1": "B"}
    config["label2id"] = {"A": 0, "B": 1}
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="2 output labels"):
        Reranker(str(target))


def test_fp16_on_cpu_warns_and_uses_fp32(tiny_model: Path) -> None:
    with pytest.warns(RuntimeWarning, match="float16"):
        rr = Reranker(str(tiny_model), device="cpu", dtype="float16")
    assert rr.info().dtype == "float32"
    assert len(rr.compute_score([("a", "b")])) == 1


def test_bfloat16_on_cpu_runs(tiny_model: Path) -> None:
    rr = Reranker(str(tiny_model), device="cpu", dtype="bfloat16")
    fp32 = Reranker(str(tiny_model), device="cpu")
    pair = [("reset password", "router admin password reset")]
    assert rr.compute_score(pair) == pytest.approx(fp32.compute_score(pair), abs=0.1)


def test_auto_device_and_dtype_on_this_machine(reranker: Reranker) -> None:
    info = reranker.info()
    assert (info.device, info.dtype, info.backend) == ("cpu", "float32", "torch")
    assert info.max_length == 512  # 1024 by default, capped by the tiny model's positions
    assert info.parameters > 10_000


@pytest.mark.parametrize(("device", "message"), [("cuda", "CUDA"), ("tpu", "unknown device")])
def test_unavailable_devices(tiny_model: Path, device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Reranker(str(tiny_model), device=device)


def test_max_length_beyond_the_model(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="512"):
        Reranker(str(tiny_model), max_length=4096)


def test_invalid_setting_names_it() -> None:
    with pytest.raises(ConfigError, match="long_documents"):
        Reranker("x", long_documents="squash")
    with pytest.raises(ConfigError, match="max_length"):
        Reranker("x", max_length=4)


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    monkeypatch.setenv("RANKGATE_MAX_LENGTH", "64")
    monkeypatch.setenv("RANKGATE_MODEL", str(tiny_model))
    assert Reranker().max_length == 64  # env over default
    assert Reranker(max_length=128).max_length == 128  # explicit over env


def test_reuse_freed_memory_on_linux() -> None:
    import sys

    from rankgate.backends.runtime import reuse_freed_memory

    applied = reuse_freed_memory()
    assert applied is sys.platform.startswith("linux")  # this project's machines run glibc
    assert reuse_freed_memory() is applied  # idempotent
