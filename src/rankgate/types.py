"""Plain data types shared by every layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

Document: TypeAlias = str | Mapping[str, Any]
"""A document: a string, or a mapping with a ``text`` field (other fields are metadata, kept)."""

LongDocumentPolicy: TypeAlias = Literal["chunk", "truncate", "reject"]
"""chunk: score overlapping windows, keep the best; truncate: cut; reject: InputTooLongError."""
Device: TypeAlias = str
DType: TypeAlias = Literal["auto", "float32", "float16", "bfloat16", "bf16-mixed"]
"""``bf16-mixed``: linear layers in bf16, the rest (residual stream, norms, head) in fp32."""
CpuMatmul: TypeAlias = Literal["auto", "blas", "onednn"]
"""The library of the CPU's fp32 linear layers: auto chooses by CPU (:mod:`.backends.cpu`)."""

DEFAULT_MODEL = "BAAI/bge-reranker-v2-m3"
DEFAULT_MAX_LENGTH = 1024  # bge-reranker-v2-m3's recommended pair length


@dataclass(frozen=True)
class PrecisionProbe:
    """How another precision compares with the loaded fp32 model on a fixed set of probe pairs:
    its speed against fp32's and how far it moves the raw scores."""

    dtype: str
    speedup: float
    """fp32 time / this precision's time on the probe pairs (> 1: faster)."""
    max_delta: float
    """Largest |score − fp32 score| (raw logits)."""
    spread: float
    """max − min of the fp32 scores, for scale."""
    spearman: float
    """Rank correlation with the fp32 scores."""
    pairs: int

    def describe(self) -> str:
        return (
            f"{self.dtype} would be {self.speedup:.1f}x the fp32 speed on this CPU and moves "
            f"this model's scores by at most {self.max_delta:.3g} (fp32 spread "
            f"{self.spread:.3g}, Spearman {self.spearman:.3f}, {self.pairs} probe pairs)"
        )


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One ranked document.

    Attributes:
        index: position of the document in the caller's list.
        score: relevance; in [0, 1] when normalized (the default), else the raw logit.
        document: the caller's document, unchanged (string or mapping with its metadata).
        truncated: part of the document was never scored (``truncate`` policy, or more
            windows than ``max_chunks``).
        chunks: how many windows were scored for this document (1 when it fit).
        tokens: document tokens read (without query and special tokens); reading stops a
            little past what can be scored, so a cut document may count fewer than it has.
    """

    index: int
    score: float
    document: Document
    truncated: bool = False
    chunks: int = 1
    tokens: int = 0

    @property
    def text(self) -> str:
        """The document's text (its ``text`` field for mappings)."""
        doc = self.document
        return doc if isinstance(doc, str) else str(doc.get("text", ""))


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is loaded, for ``rankgate info``, ``/info`` and load banners."""

    model: str
    backend: str
    device: str
    dtype: str
    max_length: int
    model_max_length: int
    parameters: int
    load_seconds: float
    long_documents: LongDocumentPolicy
    recipe: str | None = None
    """The decoder recipe (``qwen3``, ``bge-gemma``, ``mxbai-v2``…); None for cross-encoders."""
    calibration: str | None = None
    """``platt`` or ``isotonic`` when scores are calibrated (``rankgate calibrate``), else None."""
    calibration_file: str | None = None
    """The calibration file in use, if any."""
    cpu: str | None = None
    """The CPU's model name, when the model runs on the CPU."""
    cpu_features: tuple[str, ...] = ()
    """The instruction sets that matter for inference (AVX2, AVX-512, AVX512-BF16, AMX-BF16…)."""
    kernels: str | None = None
    """What runs the matrix products (e.g. ``oneDNN AVX-512 FMA fp32, packed``)."""
    bf16_probe: PrecisionProbe | None = None
    """On a CPU with bf16 hardware running fp32: what bf16-mixed would change (speed, scores)."""
