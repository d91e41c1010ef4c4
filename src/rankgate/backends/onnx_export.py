"""Export a cross-encoder to ONNX for the onnx backend (needs torch and transformers, once).

The output directory is what :class:`~rankgate.backends.onnx_backend.OnnxBackend` loads:
``model.onnx`` (plus ``model.onnx_data`` for models over 2 GB), optionally ``model_int8.onnx``,
the tokenizer and config files, and a ``rankgate-export.json`` manifest.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.errors import BackendError, ConfigError, MissingDependencyError, ModelLoadError

__all__ = ["ExportResult", "ExportSettings", "export_onnx", "quantize_int8"]

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
MANIFEST_FILE = "rankgate-export.json"
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json")
# protobuf cannot serialize a single message over 2 GiB; larger weights go to an external file
# whose name matches the hub download patterns (``*.onnx_data``).
_EXTERNAL_DATA_BYTES = 1_800_000_000
# Largest |onnx - torch| logit difference accepted by the post-export check; float32 kernels
# differ around 1e-5 on real models, a wrong trace differs by whole units.
_VERIFY_TOLERANCE = 1e-3


class ExportSettings(BaseSettings):
    """What ``rankgate export`` writes (prefix ``RANKGATE_EXPORT_``: ``RANKGATE_OUT`` would be
    every command's output)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_EXPORT_", extra="forbid", frozen=True)

    out: Path = Field(
        description="Directory to write (created; existing files are replaced).",
        json_schema_extra={"flags": ["--out", "-o"]},
    )
    int8: bool = Field(
        False,
        description="Also write model_int8.onnx (dynamic int8 quantization: smaller and faster "
        "on CPU, scores move slightly).",
        json_schema_extra={"flags": ["--int8"]},
    )
    opset: int = Field(17, ge=14, description="ONNX opset version.")
    optimize: bool = Field(
        True,
        description="Fuse attention/GELU/LayerNorm into onnxruntime's transformer kernels "
        "(verified against torch either way).",
    )

    @field_validator("out")
    @classmethod
    def _a_directory(cls, out: Path) -> Path:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out} is a file, not a directory")
        return out


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_onnx` wrote."""

    out_dir: Path
    model_file: Path
    int8_file: Path | None
    max_abs_diff: float
    """Largest |ONNX - torch| logit difference on the verification batch."""


def _import(package: str, extra: str) -> Any:
    try:
        return __import__(package)
    except ImportError:
        raise MissingDependencyError(package, extra, "Exporting to ONNX") from None


def _logits_only(torch: Any, model: Any) -> Any:
    """Wrap ``model`` so it takes positional tensors and returns the logits tensor alone."""

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            names = ("input_ids", "attention_mask", "token_type_ids")[: len(inputs)]
            return self.model(**dict(zip(names, inputs, strict=False))).logits

    return LogitsOnly().eval()


def _example_inputs(
    tokenizer: Any, with_types: bool, queries: list[str], docs: list[str]
) -> dict[str, np.ndarray]:
    enc = tokenizer(queries, docs, padding=True, return_tensors="np", return_token_type_ids=True)
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]
    return {name: np.asarray(enc[name], dtype=np.int64) for name in names}


def export_onnx(
    model_dir_or_id: str | Path,
    out_dir: str | Path,
    *,
    int8: bool = False,
    opset: int = 17,
    optimize: bool = True,
    revision: str | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
) -> ExportResult:
    """Export a sequence-classification cross-encoder to ONNX, and optionally quantize it.

    The graph takes ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` when the
    tokenizer produces them) with dynamic batch and sequence axes, and returns ``logits``. After
    export the ONNX model is run on a batch of a different shape than the traced one and compared
    with torch, so a trace that baked in a shape fails here rather than in production.

    Args:
        model_dir_or_id: local directory or hub id (resolved like the torch backend does).
        out_dir: directory to write; created if missing, existing files are overwritten.
        int8: also write ``model_int8.onnx``, dynamically quantized (int8 weights).
        opset: ONNX opset version.
        optimize: fuse attention, GELU and LayerNorm into onnxruntime's transformer kernels
            (several times faster on CPU; the graph then needs onnxruntime to run).
        revision: hub revision, for hub ids.
        cache_dir: Hugging Face cache directory.
        offline: never contact the hub.

    Raises:
        MissingDependencyError: torch, transformers, onnx or onnxruntime is missing.
        ModelNotFoundError, ModelLoadError: the model cannot be found or loaded.
        BackendError: the exported graph does not reproduce torch's logits.

    Example:
        >>> export_onnx("BAAI/bge-reranker-v2-m3", "out/bge-onnx", int8=True)  # doctest: +SKIP
    """
    from rankgate.backends.hub import resolve_model_dir

    torch = _import("torch", "torch")
    transformers = _import("transformers", "torch")
    onnx = _import("onnx", "onnx")
    ort = _import("onnxruntime", "onnx")

    source = resolve_model_dir(
        str(model_dir_or_id), revision=revision, cache_dir=cache_dir, offline=offline
    )
    from rankgate.backends.decoder import is_causal_lm

    if is_causal_lm(source):
        raise ConfigError(
            f"'{model_dir_or_id}' is a decoder (LLM) reranker; ONNX export covers cross-encoders "
            "only, and decoder rerankers run on the torch backend"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source))
        # Eager attention exports to plain MatMul/Softmax, the pattern onnxruntime's attention
        # fusion recognises; SDPA exports correctly too but is left unfused.
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(source), dtype=torch.float32, attn_implementation="eager"
        ).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"could not load '{model_dir_or_id}' from {source}: {exc}") from exc
    labels = int(getattr(model.config, "num_labels", 1))
    if labels != 1:
        raise ModelLoadError(f"'{model_dir_or_id}' has {labels} output labels; a reranker has one")

    with_types = "token_type_ids" in tokenizer.model_input_names
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]
    example = _example_inputs(tokenizer, with_types, ["query", "a longer query"], ["doc", "x"])
    wrapper = _logits_only(torch, model)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    model_path = out / MODEL_FILE

    with tempfile.TemporaryDirectory() as tmp:
        traced = Path(tmp) / MODEL_FILE
        with warnings.catch_warnings(), torch.inference_mode():
            # The TracerWarnings concern Python branches on shapes in transformers' mask code;
            # the verification below runs another shape to prove the graph is not specialised.
            warnings.simplefilter("ignore")
            # The legacy (TorchScript) exporter: the dynamo exporter needs the onnxscript
            # package, and the traced graph of an encoder has no data-dependent control flow.
            torch.onnx.export(
                wrapper,
                tuple(torch.from_numpy(example[n]) for n in names),
                str(traced),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={
                    **{n: {0: "batch", 1: "sequence"} for n in names},
                    "logits": {0: "batch"},
                },
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        graph = onnx.load(str(traced))
        fused: dict[str, int] = {}
        if optimize:
            graph, fused = _fuse(graph, model.config)
        # Re-save in one place: one file, or one external-data file for models over 2 GB.
        large = weight_bytes > _EXTERNAL_DATA_BYTES
        _remove_stale(out, MODEL_FILE)
        onnx.save_model(
            graph,
            str(model_path),
            save_as_external_data=large,
            all_tensors_to_one_file=True,
            location=f"{MODEL_FILE}_data",
        )
        del graph

    diff = _verify(ort, torch, model, tokenizer, with_types, model_path, names)
    for name in COPIED_FILES:
        src = source / name
        if src.is_file() and src.resolve() != (out / name).resolve():
            shutil.copyfile(src, out / name)

    int8_path = None
    if int8:
        int8_path = quantize_int8(model_path, out / INT8_FILE, large=large)

    manifest = {
        "source": str(model_dir_or_id),
        "source_dir": str(source),
        "revision": revision,
        "opset": opset,
        "int8": int8,
        "files": [p.name for p in (model_path, int8_path) if p is not None],
        "inputs": names,
        "fused_operators": fused,
        "max_abs_diff": diff,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("exported %s to %s (max |onnx - torch| = %.2g)", model_dir_or_id, out, diff)
    return ExportResult(out, model_path, int8_path, diff)


def _fuse(graph: Any, config: Any) -> tuple[Any, dict[str, int]]:
    """``graph`` with onnxruntime's transformer fusions applied, and counts of fused operators.

    onnxruntime's session-level optimizer does not fuse attention; its BERT fusions (which also
    match RoBERTa-family encoders) do. Other architectures may match nothing or fail: the plain
    graph is kept then, and the verification step checks whatever is kept.
    """
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        # opt_level 0: Python fusions only, so the file stays free of hardware-specific nodes.
        fused = optimize_model(
            graph,
            model_type="bert",
            num_heads=int(getattr(config, "num_attention_heads", 0)),
            hidden_size=int(getattr(config, "hidden_size", 0)),
            opt_level=0,
        )
    except Exception as exc:  # a fusion failing on an unknown architecture is not an error
        log.warning("operator fusion failed (%s); keeping the unfused graph", exc)
        return graph, {}
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
        log.warning("onnxruntime fused no attention in this model; keeping the unfused graph")
        return graph, {}
    proto = fused.model
    # The fused kernels live in onnxruntime's domain, which checkers and quantizers need declared.
    if not any(op.domain == "com.microsoft" for op in proto.opset_import):
        proto.opset_import.add(domain="com.microsoft", version=1)
    return proto, stats


def _remove_stale(out: Path, file: str) -> None:
    # A previous export's external data would otherwise sit beside a new single-file model.
    (out / f"{file}_data").unlink(missing_ok=True)


def _verify(
    ort: Any,
    torch: Any,
    model: Any,
    tokenizer: Any,
    with_types: bool,
    model_path: Path,
    names: list[str],
) -> float:
    """Largest |ONNX - torch| logit on a padded batch unlike the traced one; raise if too large."""
    queries = ["what is a reranker", "q", "multilingual: 如何重置路由器密码"]
    docs = ["a cross-encoder reads both texts " * 6, "short", "长按复位键十秒钟 " * 3]
    inputs = _example_inputs(tokenizer, with_types, queries, docs)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], inputs)[0]
    with torch.inference_mode():
        want = model(**{n: torch.from_numpy(inputs[n]) for n in names}).logits.numpy()
    diff = float(np.max(np.abs(got - want)))
    if not diff <= _VERIFY_TOLERANCE:  # also catches NaN
        raise BackendError(
            f"the exported graph does not reproduce torch's logits (max difference {diff:.3g})"
        )
    return diff


def quantize_int8(model_path: Path, out_path: Path, *, large: bool = False) -> Path:
    """Write a dynamically quantized copy of ``model_path``: int8 weights, activations at runtime.

    Dynamic quantization needs no calibration data. Weights are quantized per output channel,
    which keeps the error of MatMuls with uneven weight ranges down at no runtime cost.

    Raises:
        MissingDependencyError: onnxruntime (or onnx) is missing.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", "Quantizing to int8") from None
    _remove_stale(out_path.parent, out_path.name)
    quantize_dynamic(
        model_path,
        out_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        use_external_data_format=large,
        # Shape inference cannot type the outputs of onnxruntime's fused (com.microsoft) nodes;
        # every activation of these models is float32.
        extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
    )
    return out_path
