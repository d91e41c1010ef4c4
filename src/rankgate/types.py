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
DType: TypeAlias = Literal["auto", "float32", "float16", "bfloat16"]

DEFAULT_MODEL = "BAAI/bge-reranker-v2-m3"
DEFAULT_MAX_LENGTH = 1024  # bge-reranker-v2-m3's recommended pair length


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
