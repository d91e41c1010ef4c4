"""Cohere v1, Cohere v2 and Jina rerank wire types (``/v1/rerank``, ``/v2/rerank``, ``/rerank``).

Cohere v1, Jina, Voyage and Xinference share ``/v1/rerank`` and overlap in shape, so one
response carries every dialect's keys: ``id`` and ``meta`` for Cohere and Xinference, ``model``
and ``usage`` for Jina (with ``usage.prompt_tokens``), ``data`` for Voyage (whose results name
the document as a string). Voyage's ``top_k`` and ``truncation`` are read too, and the nulls
xinference-client sends for options it was not given. No ``object`` key: the infinity client
refuses any but its own ``"rerank"``, which ``/infinity/rerank`` answers (with the document as
a string, as infinity does). Unknown request
fields are accepted and ignored: the Cohere SDKs add fields release after release and Jina clients
send ``return_embeddings`` and the like, so being strict would break real clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rankgate.engine.service import RerankCall
from rankgate.types import RerankResult

__all__ = [
    "CohereRerankResponse",
    "CohereV1Request",
    "CohereV2Request",
    "CohereV2Response",
    "InfinityRerankResponse",
    "ResultDocument",
    "infinity_response",
    "v1_response",
    "v2_response",
]

Documents = list[str | dict[str, Any]]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="Accepted and echoed; the server's model answers.")
    query: str = Field(description="The search query.")
    documents: Documents = Field(
        description="Strings, or objects with a 'text' field (or the fields in rank_fields)."
    )
    top_n: int | None = Field(None, ge=1, description="Return the best N. Default: all.")
    top_k: int | None = Field(
        None, ge=1, description="Voyage's name for top_n (top_n wins when both are given)."
    )
    truncation: bool | None = Field(
        None,
        description="Voyage: false makes a document over max_length an error instead of "
        "truncating or chunking it. Default: the server's auto_truncate.",
    )
    rank_fields: list[str] | None = Field(
        None, description="For object documents: the fields to score, in order."
    )
    return_documents: bool | None = Field(
        False, description="Include each document in its result (null: false)."
    )
    max_chunks_per_doc: int | None = Field(
        None, ge=1, description="Most windows scored per long document (best window wins)."
    )
    max_tokens_per_doc: int | None = Field(
        None, ge=1, description="Cut each document to this many tokens before scoring."
    )
    raw_scores: bool = Field(
        False,
        description="rankgate extension: raw logits instead of scores in [0, 1] (the sigmoid, "
        "or the calibrated probability of relevance when the model has a calibration).",
    )
    instruction: str | None = Field(
        None,
        description="What relevance means for this request, for decoder rerankers such as "
        "Qwen3-Reranker (their default when absent); a cross-encoder answers 422.",
    )

    def to_call(self) -> RerankCall:
        return RerankCall(
            query=self.query,
            documents=self.documents,
            top_n=self.top_n if self.top_n is not None else self.top_k,
            normalize=not self.raw_scores,
            truncate=self.truncation,
            rank_fields=self.rank_fields,
            max_chunks=self.max_chunks_per_doc,
            max_tokens_per_doc=self.max_tokens_per_doc,
            instruction=self.instruction,
        )

    def ignored_fields(self) -> list[str]:
        return sorted(self.model_extra or {})


class CohereV1Request(_Request):
    """Cohere v1 and Jina: ``POST /v1/rerank`` (and ``POST /rerank`` without ``texts``)."""


class CohereV2Request(_Request):
    """Cohere v2: ``POST /v2/rerank``. ``model`` is optional here, unlike Cohere's API."""

    priority: int | None = Field(None, description="Accepted for compatibility; ignored.")


class ResultDocument(BaseModel):
    """The document of a result: ``{"text": ...}`` for strings, the caller's object otherwise."""

    model_config = ConfigDict(extra="allow")

    text: str | None = None


class RerankItem(BaseModel):
    index: int
    relevance_score: float
    document: ResultDocument | None = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int = 0


class Meta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: Tokens


class Usage(BaseModel):
    total_tokens: int
    prompt_tokens: int


class VoyageItem(BaseModel):
    """A Voyage result: the document, when asked for, is its text."""

    index: int
    relevance_score: float
    document: str | None = None


class CohereV2Response(BaseModel):
    """Cohere v2 response."""

    id: str
    results: list[RerankItem]
    meta: Meta


class CohereRerankResponse(CohereV2Response):
    """Cohere v1, Jina, Voyage and Xinference in one: Cohere and Xinference read ``id`` and
    ``meta``, Jina ``model`` and ``usage``, Voyage ``data`` and ``usage``."""

    model: str
    usage: Usage
    data: list[VoyageItem]


class InfinityRerankResponse(BaseModel):
    """infinity's rerank response (``/infinity/rerank``): documents as strings."""

    object: str = "rerank"
    id: str
    created: int
    model: str
    results: list[VoyageItem]
    usage: Usage


def _document(doc: object) -> ResultDocument:
    if isinstance(doc, Mapping):
        return ResultDocument(**doc)
    return ResultDocument(text=str(doc))


def _items(results: list[RerankResult], with_documents: bool) -> list[RerankItem]:
    return [
        RerankItem(
            index=r.index,
            relevance_score=r.score,
            document=_document(r.document) if with_documents else None,
        )
        for r in results
    ]


def _meta(version: str, tokens: int) -> Meta:
    return Meta(
        api_version=ApiVersion(version=version),
        billed_units=BilledUnits(search_units=1),
        tokens=Tokens(input_tokens=tokens),
    )


def v1_response(
    request_id: str, model: str, results: list[RerankResult], tokens: int, with_documents: bool
) -> CohereRerankResponse:
    return CohereRerankResponse(
        id=request_id,
        model=model,
        results=_items(results, with_documents),
        meta=_meta("1", tokens),
        usage=Usage(total_tokens=tokens, prompt_tokens=tokens),
        data=[
            VoyageItem(
                index=r.index,
                relevance_score=r.score,
                document=r.text if with_documents else None,
            )
            for r in results
        ],
    )


def infinity_response(
    request_id: str,
    created: int,
    model: str,
    results: list[RerankResult],
    tokens: int,
    with_documents: bool,
) -> InfinityRerankResponse:
    return InfinityRerankResponse(
        id=request_id,
        created=created,
        model=model,
        results=[
            VoyageItem(
                index=r.index, relevance_score=r.score, document=r.text if with_documents else None
            )
            for r in results
        ],
        usage=Usage(total_tokens=tokens, prompt_tokens=tokens),
    )


def v2_response(
    request_id: str, results: list[RerankResult], tokens: int, with_documents: bool
) -> CohereV2Response:
    return CohereV2Response(
        id=request_id, results=_items(results, with_documents), meta=_meta("2", tokens)
    )
