"""The benchmark's models: built locally with random weights, cached, exported to ONNX once.

Nothing is downloaded. The default model has bge-reranker-v2-m3's architecture (XLM-RoBERTa
large: 24 layers, hidden 1024, 568M parameters, 2.3 GB); ``tiny`` is a 2-layer model for smoke
runs. Builds and exports go to a sibling ``.partial`` directory first and are renamed when
complete, so an interrupted build is never mistaken for a cached one.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BGE_M3_ARCH",
    "TINY_ARCH",
    "BuiltModel",
    "default_model_dir",
    "ensure_model",
    "ensure_onnx",
    "onnx_dir",
    "repo_root",
]

BGE_M3_ARCH: dict[str, float | None] = {
    "layers": 24,
    "hidden": 1024,
    "heads": 16,
    "intermediate": 4096,
    "vocab_size": 250002,
    "max_positions": 8194,
}
# rankgate.testing.build_model's defaults; the vocabulary is the trained tokenizer's own, and a
# wide initialisation spreads the random scores so that score deviations are measurable.
TINY_ARCH: dict[str, float | None] = {
    "layers": 2,
    "hidden": 32,
    "heads": 2,
    "intermediate": 37,
    "vocab_size": None,
    "max_positions": 514,
    "initializer_range": 0.5,
}
_CONFIG_KEYS = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab_size": "vocab_size",
    "max_positions": "max_position_embeddings",
    "initializer_range": "initializer_range",
}


@dataclass(frozen=True)
class BuiltModel:
    """A model directory ready to load, its ``config.json``, and how long building took."""

    path: Path
    config: dict[str, Any]
    build_seconds: float | None
    """None when the cached directory was reused."""


def repo_root() -> Path:
    """The rankgate repository (which holds ``benchmarks/``, ``scripts/`` and the peer
    environments): the source checkout of an editable install, else the working directory."""
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "benchmarks").is_dir() else Path.cwd()


def default_model_dir(tiny: bool = False) -> Path:
    """``benchmarks/.models/<name>`` in the rankgate repository (:func:`repo_root`) if there is
    one, else ``~/.cache/rankgate/bench/<name>``."""
    name = "tiny-xlmr" if tiny else "bge-m3-arch"
    repo = repo_root() / "benchmarks"
    base = repo / ".models" if repo.is_dir() else Path.home() / ".cache" / "rankgate" / "bench"
    return base / name


def _is_cached(model_dir: Path, arch: dict[str, float | None]) -> bool:
    config_path = model_dir / "config.json"
    if not config_path.is_file() or not any(model_dir.glob("*.safetensors")):
        return False
    config = json.loads(config_path.read_text())
    return all(config.get(_CONFIG_KEYS[k]) == v for k, v in arch.items() if v is not None)


def ensure_model(model_dir: Path, *, tiny: bool = False) -> BuiltModel:
    """Return ``model_dir`` holding the random model (tiny or bge-m3-architecture), building it
    if the directory does not already hold one whose ``config.json`` matches.

    Raises:
        MissingDependencyError: torch or transformers is missing (building needs them).
    """
    arch = TINY_ARCH if tiny else BGE_M3_ARCH
    model_dir = model_dir.resolve()
    built: float | None = None
    if not _is_cached(model_dir, arch):
        from rankgate.testing import build_model

        partial = model_dir.with_name(model_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build_model(partial, **{k: v for k, v in arch.items() if v is not None})  # type: ignore[arg-type]
        partial.rename(model_dir)
        built = time.perf_counter() - started
    config = json.loads((model_dir / "config.json").read_text())
    return BuiltModel(model_dir, config, built)


def onnx_dir(model_dir: Path) -> Path:
    """Where the ONNX export of ``model_dir`` is cached: a sibling ``<name>-onnx`` directory."""
    return model_dir.with_name(model_dir.name + "-onnx")


def _export_is_current(out: Path, model_dir: Path) -> bool:
    manifest = out / "rankgate-export.json"
    if not manifest.is_file() or not (out / "model.onnx").is_file():
        return False
    facts = json.loads(manifest.read_text())
    weights = max(p.stat().st_mtime for p in model_dir.glob("*.safetensors"))
    source = Path(str(facts.get("source_dir", ""))).resolve()
    return source == model_dir and manifest.stat().st_mtime > weights


def ensure_onnx(model_dir: Path, *, int8: bool) -> tuple[Path, float | None]:
    """The ONNX export of ``model_dir`` (``model.onnx``, and ``model_int8.onnx`` if ``int8``),
    exported with :func:`rankgate.backends.onnx_export.export_onnx` unless cached.

    A model over 2 GB is written with its weights in ``model.onnx_data`` (protobuf's limit).
    Returns the export directory and the export time (None when reused).
    """
    # onnxruntime's quantizer logs a pre-processing hint on the root logger; not for our output.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return _ensure_onnx(model_dir.resolve(), int8)
    finally:
        root.setLevel(level)


def _ensure_onnx(model_dir: Path, int8: bool) -> tuple[Path, float | None]:
    from rankgate.backends.onnx_export import INT8_FILE, MODEL_FILE, quantize_int8

    out = onnx_dir(model_dir)
    started = time.perf_counter()
    if not _export_is_current(out, model_dir):
        from rankgate.backends.onnx_export import export_onnx

        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        export_onnx(model_dir, partial, int8=int8, offline=True)
        partial.rename(out)
        return out, time.perf_counter() - started
    if int8 and not (out / INT8_FILE).is_file():
        large = (out / f"{MODEL_FILE}_data").is_file()
        quantize_int8(out / MODEL_FILE, out / INT8_FILE, large=large)
        return out, time.perf_counter() - started
    return out, None
