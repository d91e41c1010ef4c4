"""PyTorch + transformers backend for sequence-classification cross-encoders (XLM-RoBERTa etc.)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair, is_cuda, pad_batch
from rankgate.backends.runtime import reuse_freed_memory
from rankgate.backends.tokenization import FileTokenizer, usable_positions
from rankgate.errors import (
    ConfigError,
    DeviceOutOfMemoryError,
    MissingDependencyError,
    ModelLoadError,
)

__all__ = ["TorchBackend", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)

# Texts of the load-time check of the packed forward: a query and two documents of different
# lengths, so that the check covers concatenation, per-pair attention and the first-token head.
PROBE_TEXTS = (
    "how do I reset the router password?",
    "Hold the reset button for ten seconds.",
    "Forgot the admin password? Hold the reset button for ten seconds, wait for the lights, "
    "then log in with the default password printed on the label under the router.",
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


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is float16 on CUDA and float32 elsewhere; float16 on CPU falls back to float32."""
    if dtype == "auto":
        return "float16" if is_cuda(device) else "float32"
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
    """

    name = "torch"
    shares_prefix = False

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
    ) -> None:
        torch = _torch()
        from transformers import AutoConfig, AutoModelForSequenceClassification

        self.model_id = model_id
        self.model_dir = Path(model_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
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
            self._model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), dtype=getattr(torch, self.dtype)
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(f"could not load '{model_id}' from {model_dir}: {exc}") from exc
        self._model.eval().to(self.device)
        self._torch = torch
        self.model_max_length = usable_positions(self._model.config.to_dict())
        self.pad_token_id = int(self._model.config.pad_token_id or 0)
        self.parameters = sum(p.numel() for p in self._model.parameters())
        self.template = self._tokenizer.template
        wanted = self.device == "cpu" if packed is None else packed
        self._packed = self._packed_encoder() if wanted else None
        self.packed = self._packed is not None

    def _packed_encoder(self) -> Any:
        """The packed encoder if it is built for this model and matches the stock forward on
        two probe pairs of different lengths; None (with a log line saying why) otherwise."""
        from rankgate.backends.packed import packed_encoder

        encoder = packed_encoder(self._model, self._torch)
        if encoder is None:
            log.info("%s: no packed forward for this architecture; padded batches", self.model_id)
            return None
        query, short, long = self.tokenize(PROBE_TEXTS)
        probe = [self.template.build(query, long), self.template.build(query, short)]
        try:
            with self._torch.inference_mode():
                got = encoder.forward(probe).float().cpu().numpy()
            want = self._padded_forward(probe)
        except Exception as exc:  # any failure of the fast path leaves the stock one
            log.warning("%s: packed forward failed (%s); padded batches", self.model_id, exc)
            return None
        tolerance = 1e-4 if self.dtype == "float32" else 5e-2
        if not np.allclose(got, want, rtol=tolerance, atol=tolerance):
            log.warning(
                "%s: packed forward differs from the stock forward (%s vs %s); padded batches",
                self.model_id,
                got.tolist(),
                want.tolist(),
            )
            return None
        return encoder

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

    def _padded_forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        """The stock transformers forward on a right-padded batch."""
        torch = self._torch
        ids, mask, types = pad_batch(pairs, self.pad_token_id)
        inputs = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        if types is not None:
            inputs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        with torch.inference_mode():
            logits = self._model(**inputs).logits
        return logits[:, 0].float().cpu().numpy()
