"""Error bodies of each dialect as wire types, so the OpenAPI document says what is sent.

The bodies themselves are built in :mod:`rankgate.server.errors` (the one table); these models
describe them, and :func:`error_responses` gives a route's documented error responses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "AnyError",
    "CohereError",
    "Problem",
    "TEIError",
    "VLLMError",
    "error_responses",
]


class Problem(BaseModel):
    """One schema problem of a 422: where (``loc``), what (``msg``) and its kind (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class TEIError(BaseModel):
    """TEI's error body."""

    error: str
    error_type: str


class CohereError(BaseModel):
    """Cohere's and Jina's error body; ``detail`` lists the problems of a 422."""

    message: str
    detail: str | list[Problem]


class VLLMErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class VLLMError(BaseModel):
    """vLLM's (OpenAI-style) error body."""

    error: VLLMErrorInfo


class AnyError(BaseModel):
    """Where the dialect is not known (rankgate's own routes, a body that is not JSON): both
    TEI's and Cohere's keys."""

    error: str
    error_type: str
    message: str
    detail: str | list[Problem]


DialectName = Literal["cohere", "tei", "vllm", "any", "rerank"]

_MODELS: dict[str, Any] = {
    "cohere": CohereError,
    "tei": TEIError,
    "vllm": VLLMError,
    "any": AnyError,
    "rerank": TEIError | CohereError,  # POST /rerank: TEI with "texts", else Cohere
}

_WHEN: dict[int, str] = {
    400: "Empty query or no documents; the body is not JSON.",
    401: "Missing or unknown API key.",
    404: "No such model or resource.",
    408: "The request body did not arrive within body_timeout_s.",
    413: "Too many documents, or the body is too large.",
    422: "The body does not match the schema (non-finite numbers and invalid Unicode "
    "included), or the input is too long.",
    429: "The queue (or its share for explanations and search) is full; retry after the "
    "Retry-After header's seconds.",
    500: "The model failed; the body carries only the request id.",
    503: "Loading, shutting down, or not available (search without an index).",
    504: "The request took longer than request_timeout_s; its work was stopped.",
}

SCORING_STATUSES = (400, 401, 408, 413, 422, 429, 500, 503, 504)


def error_responses(
    dialect: DialectName, statuses: tuple[int, ...] = SCORING_STATUSES
) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for a route: each status with its dialect's error body."""
    model = _MODELS[dialect]
    return {status: {"description": _WHEN[status], "model": model} for status in statuses}
