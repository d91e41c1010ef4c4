"""onnxruntime backend: serves an exported cross-encoder with neither torch nor transformers.

It loads a directory written by ``rankgate export`` (or a hub repository with ONNX files):
``model.onnx`` (or ``onnx/model.onnx``, or a quantized ``model_int8.onnx`` /
``model_quantized.onnx`` picked with ``file``), ``tokenizer.json`` and ``config.json``.
Tokenization runs on ``tokenizers`` alone, from ``tokenizer.json`` exactly as saved, which is what
transformers 4 (FlagEmbedding's reference environment) does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair, pad_batch, physical_cores
from rankgate.backends.cpu import choose_kernels, cpu_info
from rankgate.backends.tokenization import FileTokenizer, usable_positions
from rankgate.errors import (
    BackendError,
    ConfigError,
    DeviceOutOfMemoryError,
    MissingDependencyError,
    ModelLoadError,
)

__all__ = ["MODEL_FILES", "OnnxBackend"]

log = logging.getLogger(__name__)

# Tried in order when no file is named: full precision first, quantized only as a last resort.
MODEL_FILES = (
    "model.onnx",
    "onnx/model.onnx",
    "model_int8.onnx",
    "onnx/model_int8.onnx",
    "model_quantized.onnx",
    "onnx/model_quantized.onnx",
)
# Operators that only appear in quantized graphs (dynamic or static quantization).
_QUANTIZED_OPS = frozenset(
    {
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "QAttention",
        "QLinearMatMul",
        "DequantizeLinear",
        "QGemm",
    }
)
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", "The onnx backend") from None
    return onnxruntime


def find_model_file(model_dir: Path, file: str | None = None) -> Path:
    """The ONNX file to load: ``file`` (relative to ``model_dir`` or its ``onnx/``), else the first
    of :data:`MODEL_FILES` that exists.

    Raises:
        ModelLoadError: no such file.
    """
    candidates = [file, f"onnx/{file}"] if file else list(MODEL_FILES)
    for name in candidates:
        if name and (model_dir / name).is_file():
            return model_dir / name
    present = sorted(str(p.relative_to(model_dir)) for p in model_dir.glob("**/*.onnx"))
    wanted = f"'{file}'" if file else "model.onnx"
    found = f"; it holds {', '.join(present)}" if present else ", and no .onnx file at all"
    raise ModelLoadError(
        f"{model_dir} has no {wanted}{found}. Export one with `rankgate export MODEL --out DIR`."
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not read {path}: {exc}") from exc
    return value if isinstance(value, dict) else {}


def _token_text(value: Any) -> str | None:
    # tokenizer_config.json stores special tokens as strings or as serialized AddedToken dicts.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _graph_facts(path: Path) -> tuple[int, bool]:
    """(parameter count, quantized?) read from the graph's initializers and operators."""
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "onnx", "The onnx backend") from None
    # Shapes are in the proto itself; external weight data need not be read to count them.
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    weights |= {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    count = 0
    for init in graph.initializer:
        # Quantization adds a scale and zero point per weight (or channel); they are not
        # parameters of the model, and integer shape constants from constant folding are not
        # either.
        if init.data_type in weights and not init.name.endswith(("_scale", "_zero_point")):
            count += int(np.prod(init.dims, dtype=np.int64))
    quantized = any(node.op_type in _QUANTIZED_OPS for node in graph.node)
    return count, quantized


class OnnxBackend:
    """Runs an ONNX sequence-classification cross-encoder with onnxruntime.

    Args:
        model_dir: directory with the ONNX file, ``tokenizer.json`` and ``config.json``.
        model_id: the name reported in model info.
        threads: intra-op threads (None: one per core this process may use).
        file: which ONNX file, e.g. ``model_int8.onnx`` (None: ``model.onnx``, see
            :data:`MODEL_FILES`).
        device: ``auto`` (CUDA when onnxruntime has the CUDA provider, else CPU), ``cpu``,
            ``cuda`` or ``cuda:N``.

    Raises:
        MissingDependencyError: onnxruntime or onnx is not installed.
        ModelLoadError: a file is missing or does not load.
        ConfigError: an unsupported or unavailable device.

    Example:
        >>> b = OnnxBackend(Path("out"), model_id="bge", file="model_int8.onnx")  # doctest: +SKIP
        >>> b.dtype, b.device  # doctest: +SKIP
        ('int8', 'cpu')
    """

    name = "onnx"
    packed = False  # the exported graph takes a padded (batch, width) block
    shares_prefix = False
    shared_prefix_tokens_saved = 0

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        threads: int | None = None,
        file: str | None = None,
        device: str = "auto",
    ) -> None:
        ort = _ort()
        model_dir = Path(model_dir)
        self.model_id = model_id
        self.model_file = find_model_file(model_dir, file)
        # tokenizer.json sits beside config.json, or beside the ONNX file in an onnx/ folder.
        tok_dir = next(
            (d for d in (model_dir, self.model_file.parent) if (d / "tokenizer.json").is_file()),
            model_dir,
        )
        self._tokenizer = FileTokenizer(tok_dir)

        config_path = model_dir / "config.json"
        config = _read_json(config_path) if config_path.is_file() else {}
        self.model_max_length = usable_positions(config)
        self.pad_token_id = self._pad_token_id(model_dir, config)

        self.parameters, quantized = _graph_facts(self.model_file)
        self.dtype = "int8" if quantized else "float32"
        self._session = self._open_session(ort, threads, device)
        self.device = (
            "cuda" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        )
        self._inputs = {
            i.name: _INT_TYPES.get(i.type, np.int64) for i in self._session.get_inputs()
        }
        known = {"input_ids", "attention_mask", "token_type_ids"}
        if not {"input_ids", "attention_mask"} <= set(self._inputs) <= known:
            raise ModelLoadError(
                f"{self.model_file} takes {', '.join(self._inputs)}; the onnx backend feeds "
                "input_ids, attention_mask and optionally token_type_ids"
            )
        self._output = self._check_output(config)
        template = self._tokenizer.template
        if "token_type_ids" not in self._inputs:  # the graph has no segment input
            template = dataclasses.replace(template, first_type=None, second_type=None)
        self.template = template

    def _open_session(self, ort: Any, threads: int | None, device: str) -> Any:
        options = ort.SessionOptions()
        # Affinity-aware: onnxruntime's own default counts the host's cores, which oversubscribes
        # a container limited to a few of them.
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Exported graphs trigger harmless "unused initializer" warnings on every load.
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(
                str(self.model_file), options, providers=self._providers(ort, device)
            )
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelLoadError(f"onnxruntime could not load {self.model_file}: {exc}") from exc

    @staticmethod
    def _providers(ort: Any, device: str) -> list[Any]:
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        kind, _, index = device.partition(":")
        if device == "auto":
            kind = "cuda" if has_cuda else "cpu"
        if kind == "cpu":
            return ["CPUExecutionProvider"]
        if kind != "cuda":
            raise ConfigError(f"the onnx backend runs on auto, cpu, cuda or cuda:N, not '{device}'")
        if not has_cuda:
            raise ConfigError(
                f"device '{device}' was asked for, but onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu)"
            )
        cuda = ("CUDAExecutionProvider", {"device_id": int(index or 0)})
        return [cuda, "CPUExecutionProvider"]

    def _pad_token_id(self, model_dir: Path, config: dict[str, Any]) -> int:
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = model_dir / name
            token = _token_text(_read_json(path).get("pad_token")) if path.is_file() else None
            token_id = self._tokenizer.token_id(token) if token is not None else None
            if token_id is not None:
                return int(token_id)
        return int(config.get("pad_token_id") or 0)

    def _check_output(self, config: dict[str, Any]) -> str:
        output = self._session.get_outputs()[0]
        width = output.shape[-1] if len(output.shape) > 1 else 1
        labels = width if isinstance(width, int) else len(config.get("id2label") or {0: ""})
        if labels != 1:
            raise ModelLoadError(
                f"'{self.model_id}' has {labels} output labels; a reranker has exactly one"
            )
        return str(output.name)

    @property
    def kernels(self) -> str:
        """What runs the matrix products, for ``rankgate info`` and ``/info``."""
        if self.device != "cpu":
            return f"onnxruntime {self.device}, {self.dtype}"
        chosen = choose_kernels(cpu_info())
        isa = chosen.int8 if self.dtype == "int8" else chosen.isa
        return f"onnxruntime MLAS, {self.dtype} on {isa}"

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        return self._tokenizer.tokenize(texts, max_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(ids)

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        ids, mask, types = pad_batch(pairs, self.pad_token_id)
        feeds = {"input_ids": ids, "attention_mask": mask}
        feeds["token_type_ids"] = types if types is not None else np.zeros_like(ids)
        inputs = {name: feeds[name].astype(kind, copy=False) for name, kind in self._inputs.items()}
        try:
            logits = self._session.run([self._output], inputs)[0]
        except Exception as exc:  # onnxruntime's exception types are not importable by name
            text = str(exc)
            if "allocate" in text.lower() or "out of memory" in text.lower():
                raise DeviceOutOfMemoryError(
                    f"out of memory on {self.device} for {len(pairs)} pairs of up to "
                    f"{ids.shape[1]} tokens"
                ) from exc
            raise BackendError(f"onnxruntime failed on {len(pairs)} pairs: {text}") from exc
        logits = np.asarray(logits, dtype=np.float32)
        return logits[:, 0] if logits.ndim > 1 else logits
