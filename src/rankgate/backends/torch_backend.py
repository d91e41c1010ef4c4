"""PyTorch + transformers backend for sequence-classification cross-encoders (XLM-RoBERTa etc.)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair, is_cuda, pad_batch
from rankgate.backends.cpu import CpuInfo, Kernels, choose_kernels, cpu_info, native_bf16
from rankgate.backends.runtime import reuse_freed_memory
from rankgate.backends.tokenization import FileTokenizer, usable_positions
from rankgate.errors import (
    ConfigError,
    DeviceOutOfMemoryError,
    MissingDependencyError,
    ModelLoadError,
)
from rankgate.types import PrecisionProbe

__all__ = ["MIXED", "TorchBackend", "resolve_device", "resolve_dtype"]

MIXED = "bf16-mixed"
"""Linear layers in bf16 (their inputs rounded, products accumulated in fp32 by the kernel),
everything else in fp32: embeddings, residual stream, layer norms, head, sigmoid."""

log = logging.getLogger(__name__)

# Texts of the load-time check of the packed forward: a query and two documents of different
# lengths, so that the check covers concatenation, per-pair attention and the first-token head.
PROBE_TEXTS = (
    "how do I reset the router password?",
    "Hold the reset button for ten seconds.",
    "Forgot the admin password? Hold the reset button for ten seconds, wait for the lights, "
    "then log in with the default password printed on the label under the router.",
)

# The pairs of the bf16 probe (TorchBackend.bf16_probe): three queries, documents from a few
# words to a paragraph, relevant and not, so that the scores spread as a real request's do.
PROBE_SET = (
    ("how do I reset the router password?", "Hold the reset button for ten seconds."),
    ("how do I reset the router password?", PROBE_TEXTS[2]),
    ("how do I reset the router password?", "The router supports WPA3 and has four ports."),
    ("how do I reset the router password?", "Bananas are rich in potassium."),
    (
        "what is the capital of Australia?",
        "Canberra is the capital city of Australia; Sydney is its largest city.",
    ),
    ("what is the capital of Australia?", "Australia is a country and a continent."),
    ("what is the capital of Australia?", "Vienna is the capital of Austria."),
    (
        "what is the capital of Australia?",
        "The parliament of Australia sits in Canberra, which was chosen as a compromise between "
        "Sydney and Melbourne and founded in 1913.",
    ),
    ("如何重置路由器密码", "按住路由器背面的复位键十秒钟, 然后使用默认密码登录。"),
    ("如何重置路由器密码", "今天天气很好。"),
    ("如何重置路由器密码", "Hold the reset button for ten seconds, then log in again."),
    ("如何重置路由器密码", "路由器有四个网口和两个天线。"),
)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "The torch backend") from None
    return torch


def resolve_device(device: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; explicit devices are checked to exist."""
    torch = _torch()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":", 1)[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was asked for, but CUDA is not available here")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{device}' was asked for, but MPS is not available here")
    if kind not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"unknown device '{device}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


def resolve_dtype(dtype: str, device: str, cpu: CpuInfo | None = None) -> str:
    """``auto`` is float16 on CUDA and float32 elsewhere; float16 on CPU falls back to float32;
    bf16 (pure or mixed) on a CPU without bf16 hardware warns that it is slower than fp32."""
    if dtype == "auto":
        return "float16" if is_cuda(device) else "float32"
    if dtype in {"bfloat16", MIXED} and device == "cpu":
        cpu = cpu or cpu_info()
        if not native_bf16(cpu):
            warnings.warn(
                f"{dtype} was asked for on a CPU without bf16 instructions ({cpu.model}: no "
                "AMX-BF16 or AVX512-BF16), where bf16 products are converted to fp32 and run "
                "slower than float32 itself; float32 is exact and faster here",
                RuntimeWarning,
                stacklevel=3,
            )
    if dtype == "float16" and device == "cpu":
        # Half-precision LayerNorm has no CPU kernel in many torch builds ("LayerNormKernelImpl"
        # not implemented for 'Half'), and where it runs it is slower than float32.
        warnings.warn(
            "float16 was asked for on CPU, which is slow or unsupported there; using float32",
            RuntimeWarning,
            stacklevel=3,
        )
        return "float32"
    return dtype


class TorchBackend:
    """Runs a ``AutoModelForSequenceClassification`` with one output logit.

    With ``packed`` (None: on CPU), BERT-family models run unpadded forward passes
    (:mod:`rankgate.backends.packed`) once a probe at load time has matched the stock forward;
    otherwise, and for other architectures, the stock forward on right-padded batches.

    ``dtype="bf16-mixed"`` (:data:`MIXED`) runs linear layers in bf16 and the rest in fp32 (the
    stock forward under ``torch.autocast`` with an fp32 head, or the packed forward with bf16
    weight copies). ``cpu_matmul`` picks the library of fp32 linear layers in packed passes
    (``auto``: by CPU, :func:`rankgate.backends.cpu.choose_kernels`). ``bf16_probe`` (None: on
    a CPU with bf16 hardware when ``dtype`` is ``auto``) measures at load what bf16-mixed would
    change for this model (:attr:`bf16_probe`).
    """

    name = "torch"
    shares_prefix = False
    shared_prefix_tokens_saved = 0

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        device: str = "auto",
        dtype: str = "auto",
        threads: int | None = None,
        reuse_memory: bool = True,
        packed: bool | None = None,
        cpu_matmul: str = "auto",
        bf16_probe: bool | None = None,
    ) -> None:
        torch = _torch()
        from transformers import AutoConfig, AutoModelForSequenceClassification

        self.model_id = model_id
        self.model_dir = Path(model_dir)
        self.device = resolve_device(device)
        self.cpu: CpuInfo | None = cpu_info() if self.device == "cpu" else None
        self.dtype = resolve_dtype(dtype, self.device, self.cpu)
        self.cpu_kernels: Kernels | None = (
            choose_kernels(self.cpu, cpu_matmul) if self.cpu is not None else None
        )
        if threads:
            torch.set_num_threads(threads)
        if reuse_memory and self.device == "cpu":
            reuse_freed_memory()
        try:
            config = AutoConfig.from_pretrained(str(model_dir))
            labels = int(getattr(config, "num_labels", 1))
            if labels != 1:
                raise ModelLoadError(
                    f"'{model_id}' has {labels} output labels; a reranker has exactly one"
                )
            heads = getattr(config, "architectures", None) or []
            if heads and not any(a.endswith("ForSequenceClassification") for a in heads):
                # Loading it anyway would score with a randomly initialised head.
                raise ModelLoadError(
                    f"'{model_id}' is a base encoder ({', '.join(heads)}) without a reranking "
                    "head; train one with rankgate finetune, or pick a reranker"
                )
            self._tokenizer = FileTokenizer(model_dir)
            loaded = "float32" if self.dtype == MIXED else self.dtype
            self._model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), dtype=getattr(torch, loaded)
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(f"could not load '{model_id}' from {model_dir}: {exc}") from exc
        self._model.eval().to(self.device)
        self._torch = torch
        if self.dtype == MIXED:
            from rankgate.backends.packed import encoder_linears

            # The encoder's linear layers only ever run in bf16 now (autocast or the packed
            # pass): keep them in bf16 rather than fp32 beside a bf16 copy.
            for linear in encoder_linears(self._model, torch):
                linear.to(torch.bfloat16)
        self.model_max_length = usable_positions(self._model.config.to_dict())
        self.pad_token_id = int(self._model.config.pad_token_id or 0)
        self.parameters = sum(p.numel() for p in self._model.parameters())
        self.template = self._tokenizer.template
        wanted = self.device == "cpu" if packed is None else packed
        self._packed = self._packed_encoder() if wanted else None
        self.packed = self._packed is not None
        self.bf16_probe: PrecisionProbe | None = None
        """What bf16-mixed would change for this model on this CPU (see :meth:`probe_bf16`)."""
        if bf16_probe is None:
            bf16_probe = (
                dtype == "auto"
                and self.cpu_kernels is not None
                and self.cpu_kernels.bf16_native
                and self.packed
            )
        if bf16_probe and self.dtype == "float32":
            self.bf16_probe = self.probe_bf16()
            log.info("%s: %s", model_id, self.bf16_probe.describe())

    @property
    def kernels(self) -> str:
        """What runs the matrix products, for ``rankgate info`` and ``/info``."""
        if self._packed is None:
            how = "torch.autocast bf16, fp32 head" if self.dtype == MIXED else self.dtype
            return f"padded (stock transformers), {how}"
        onednn = self._packed.linears.onednn
        isa = f" {self.cpu_kernels.isa}" if self.cpu_kernels is not None else ""
        if self.dtype in {MIXED, "bfloat16"}:
            where = self.cpu_kernels.bf16 if self.cpu_kernels and onednn else "torch"
            around = "fp32 around them" if self.dtype == MIXED else "everything in bf16"
            return f"packed, bf16 linear layers on {where}, {around}"
        return f"packed, {self.dtype} linear layers on {'oneDNN' if onednn else 'torch'}{isa}"

    def _packed_encoder(self, *, bf16: bool | None = None) -> Any:
        """The packed encoder if it is built for this model and matches the stock forward on
        two probe pairs of different lengths; None (with a log line saying why) otherwise.
        ``bf16``: its products in bf16 (None: as the loaded dtype says)."""
        from rankgate.backends.packed import packed_encoder

        onednn = self.cpu_kernels is not None and self.cpu_kernels.fp32_onednn
        if bf16 is None:
            bf16 = self.dtype == MIXED
        if (bf16 or self.dtype == "bfloat16") and self.cpu_kernels is not None:
            onednn = self.cpu_kernels.bf16_native  # oneDNN's bf16 kernels need bf16 hardware
        encoder = packed_encoder(self._model, self._torch, onednn=onednn, bf16=bf16)
        if encoder is None:
            log.info("%s: no packed forward for this architecture; padded batches", self.model_id)
            return None
        query, short, long = self.tokenize(PROBE_TEXTS)
        probe = [self.template.build(query, long), self.template.build(query, short)]
        try:
            with self._torch.inference_mode():
                got = encoder.forward(probe).float().cpu().numpy()
            want = self._padded_forward(probe, mixed=bf16)
        except Exception as exc:  # any failure of the fast path leaves the stock one
            log.warning("%s: packed forward failed (%s); padded batches", self.model_id, exc)
            return None
        tolerance = 2e-2 if bf16 else {"float32": 1e-4}.get(self.dtype, 5e-2)
        if not np.allclose(got, want, rtol=tolerance, atol=tolerance):
            log.warning(
                "%s: packed forward differs from the stock forward (%s vs %s); padded batches",
                self.model_id,
                got.tolist(),
                want.tolist(),
            )
            return None
        return encoder

    def probe_bf16(self) -> PrecisionProbe:
        """Score :data:`PROBE_SET` in fp32 and in bf16-mixed (packed, on bf16 copies of the
        weights, dropped afterwards): speed ratio and score movement. The fp32 model must be
        loaded; about three forward passes of some 250 tokens."""
        torch = self._torch
        mixed = self._packed_encoder(bf16=True)
        if mixed is None or self._packed is None:
            raise ModelLoadError(f"{self.model_id}: no packed forward to probe bf16 with")
        texts = sorted({t for pair in PROBE_SET for t in pair})
        tokens = dict(zip(texts, self.tokenize(texts), strict=True))
        pairs = [self.template.build(tokens[q], tokens[d]) for q, d in PROBE_SET]

        def run(encoder: Any) -> tuple[float, np.ndarray]:
            started = time.perf_counter()
            with torch.inference_mode():
                out = encoder.forward(pairs).float().cpu().numpy()
            return time.perf_counter() - started, out

        run(mixed)  # warm-up: oneDNN builds its bf16 kernels on first use
        fp32_time, exact = min(run(self._packed), run(self._packed), key=lambda r: r[0])
        bf16_time, rounded = min(run(mixed), run(mixed), key=lambda r: r[0])
        del mixed
        return PrecisionProbe(
            dtype=MIXED,
            speedup=fp32_time / max(bf16_time, 1e-9),
            max_delta=float(np.abs(rounded - exact).max()),
            spread=float(exact.max() - exact.min()),
            spearman=float(np.corrcoef(_ranks(rounded), _ranks(exact))[0, 1]),
            pairs=len(pairs),
        )

    @property
    def module(self) -> Any:
        """The transformers model itself (fine-tuning trains it in place)."""
        return self._model

    def set_threads(self, threads: int) -> None:
        """CPU threads of the calling thread's forward passes (a model queue's worker)."""
        self._torch.set_num_threads(threads)

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        return self._tokenizer.tokenize(texts, max_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(ids)

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        torch = self._torch
        try:
            if self._packed is None:
                return self._padded_forward(pairs)
            with torch.inference_mode():
                return self._packed.forward(pairs).float().cpu().numpy()
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise DeviceOutOfMemoryError(
                f"out of memory on {self.device} for {len(pairs)} pairs of up to "
                f"{max(len(p) for p in pairs)} tokens"
            ) from exc

    def _padded_forward(
        self, pairs: Sequence[EncodedPair], *, mixed: bool | None = None
    ) -> np.ndarray:
        """The stock transformers forward on a right-padded batch (``mixed``: in bf16-mixed;
        None: as loaded)."""
        torch = self._torch
        ids, mask, types = pad_batch(pairs, self.pad_token_id)
        inputs = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        if types is not None:
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        with torch.inference_mode():
            if not (self.dtype == MIXED if mixed is None else mixed):
                return self._model(**inputs).logits[:, 0].float().cpu().numpy()
            return self._mixed_padded_forward(inputs).float().cpu().numpy()

    def _mixed_padded_forward(self, inputs: dict[str, Any]) -> Any:
        """bf16-mixed on the stock forward: the encoder under ``torch.autocast`` (linear layers
        and attention in bf16, the rest in fp32), the head in fp32 on the first token."""
        from rankgate.backends.packed import classify, encoder_linears

        torch = self._torch
        autocast = torch.autocast(self.device.split(":", 1)[0], dtype=torch.bfloat16)
        if not encoder_linears(self._model, torch):  # unknown layout: all of it under autocast
            with autocast:
                return self._model(**inputs).logits[:, 0]
        with autocast:
            hidden = self._model.base_model(**inputs).last_hidden_state
        return classify(self._model, hidden[:, :1].float())


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` (ties, improbable for float logits, broken by position)."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks
