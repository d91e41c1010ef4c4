"""Hugging Face text-embeddings-inference wire types: ``POST /rerank`` (``texts``), ``/info``.

Unknown request fields are ignored, as text-embeddings-inference itself ignores them (its
``RerankRequest`` does not deny unknown fields): LiteLLM's ``huggingface/`` provider sends
``top_n`` and ``model``, AnswerDotAI ``rerankers`` sends ``model``. They are listed in the
``x-ignored-fields`` response header, so that a misspelt ``raw_score`` is visible there. A
``model`` that names a served model picks it (several models in one server); any other is
ignored, as TEI does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from rankgate.engine.service import RerankCall
from rankgate.types import RerankResult

__all__ = ["ServedModel", "TEIInfo", "TEIRerankRequest", "TEIRerankResponse", "tei_response"]


class TEIRerankRequest(BaseModel):
    """TEI ``POST /rerank``."""

    model_config = ConfigDict(extra="allow")

    query: str = Field(description="The search query.")
    texts: list[str] = Field(description="The documents.")
    truncate: bool | None = Field(
        None,
        description="Truncate (or chunk) inputs longer than max_length; false makes them a 422. "
        "Default: the server's auto_truncate.",
    )
    truncation_direction: Literal["right", "Right"] = Field(
        "right", description="Only right truncation is supported."
    )
    raw_scores: bool = Field(
        False, description="Raw logits instead of sigmoid (or calibrated) scores."
    )
    return_text: bool = Field(False, description="Include each text in its result.")
    instruction: str | None = Field(
        None,
        description="rankgate extension: what relevance means, for decoder rerankers such as "
        "Qwen3-Reranker (their default when absent); a cross-encoder answers 422.",
    )

    def to_call(self) -> RerankCall:
        return RerankCall(
            query=self.query,
            documents=self.texts,
            top_n=None,
            normalize=not self.raw_scores,
            truncate=self.truncate,
            instruction=self.instruction,
        )

    def requested_model(self, served: Iterable[str]) -> str | None:
        """The extra ``model`` field when it names a served model, else None (the default)."""
        name = (self.model_extra or {}).get("model")
        return name if isinstance(name, str) and name in set(served) else None

    def ignored_fields(self, used_model: bool) -> list[str]:
        extra = set(self.model_extra or {})
        if used_model:
            extra.discard("model")
        return sorted(extra)


class TEIRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class TEIRerankResponse(RootModel[list[TEIRank]]):
    """A bare array, best first."""


def tei_response(results: list[RerankResult], return_text: bool) -> list[TEIRank]:
    return [
        TEIRank(index=r.index, score=r.score, text=r.text if return_text else None) for r in results
    ]


class TEIReranker(BaseModel):
    id2label: dict[str, str]
    label2id: dict[str, int]


class TEIModelType(BaseModel):
    reranker: TEIReranker


class PrecisionProbeInfo(BaseModel):
    """Another precision against the loaded fp32 model, on the load-time probe pairs."""

    dtype: str
    speedup: float = Field(description="fp32 time / this precision's time (> 1: faster).")
    max_delta: float = Field(description="Largest change of a raw score (logit).")
    spread: float = Field(description="max - min of the fp32 raw scores, for scale.")
    spearman: float = Field(description="Rank correlation with the fp32 scores.")
    pairs: int


class CpuDetails(BaseModel):
    """Where a model runs on the CPU and on which kernels (``/info``, for every model)."""

    cpu: str | None = Field(None, description="The CPU's model name, when the model runs on it.")
    cpu_features: list[str] = Field(
        [],
        description="The CPU's instruction sets that matter for inference (AVX2, AVX-512, "
        "AVX512-BF16, AVX512-FP16, AVX512-VNNI, AVX-VNNI, AMX-BF16, AMX-FP16, AMX-INT8).",
    )
    kernels: str | None = Field(None, description="What runs the model's matrix products.")
    bf16_probe: PrecisionProbeInfo | None = Field(
        None,
        description="On a CPU with bf16 hardware running fp32: what dtype bf16-mixed would "
        "change, measured at load on a fixed probe set.",
    )


class ServedModel(CpuDetails):
    """One model the server serves, by the name a request's ``model`` may give."""

    name: str
    model: str
    backend: str
    device: str
    dtype: str
    max_length: int
    recipe: str | None = None
    parameters: int
    calibration: str | None = Field(
        None,
        description="platt or isotonic when relevance_score is a calibrated probability "
        "(rankgate calibrate); null: the sigmoid of the logit.",
    )
    calibration_file: str | None = Field(None, description="The calibration file in use.")
    cache_size: int = 0
    """The score cache's memory bound in bytes (``--cache-size``); 0: no cache."""


class RankgateDetails(CpuDetails):
    """rankgate's own details next to TEI's fields (the default model's, and every model)."""

    backend: str
    device: str
    long_documents: str
    parameters: int
    recipe: str | None = None
    calibration: str | None = Field(
        None,
        description="platt or isotonic when scores are calibrated probabilities of relevance "
        "(rankgate calibrate); null: the sigmoid of the logit. Raw logits stay available "
        "(raw_scores, use_activation false).",
    )
    calibration_file: str | None = Field(None, description="The calibration file in use.")
    models: list[ServedModel] = []


class TEIInfo(BaseModel):
    """``GET /info`` in TEI's shape."""

    model_id: str
    model_sha: str | None = None
    model_dtype: str
    model_type: TEIModelType
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None = None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None = None
    docker_label: str | None = None
    rankgate: RankgateDetails
