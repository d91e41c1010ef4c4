"""The one table from exceptions to HTTP status, and the error body of each dialect.

======================================  ======  ===========  =============================
exception                               status  error_type   message shown
======================================  ======  ===========  =============================
InvalidJSONError                        400     validation   what is wrong with the JSON
EmptyQueryError, NoDocumentsError       400     empty        the exception's text
AuthenticationError                     401     unauthorized fixed
RouteNotFoundError (404, 405)           404/405 not_found    fixed (405 has an Allow header)
ModelNotServedError                     404     not_found    names the served models
BodyTimeoutError                        408     timeout      the exception's text
TooManyDocumentsError                   413     validation   the exception's text
PayloadTooLargeError                    413     validation   the exception's text
RequestValidationError, InputError      422     validation   field and problem
OverloadedError                         429     overloaded   the exception's text
BackendError                            500     backend      fixed (details only in the log)
any other exception                     500     internal     fixed (details only in the log)
UnavailableError                        503     unhealthy    the exception's text
RequestTimeoutError                     504     timeout      the exception's text
ClientDisconnectedError                 (499)   -            nothing is sent; counted as 499
======================================  ======  ===========  =============================

Bodies: TEI ``{"error", "error_type"}``; Cohere and Jina ``{"message", "detail"}`` (``detail`` is
a list of ``{loc, msg, type}`` for 422 validation errors, else the message); vLLM
``{"error": {"message", "type", "param", "code"}}``. Where the dialect is unknown (a body that
is not JSON on ``/rerank``, the GET routes) the body has both the TEI and the Cohere keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import JSONResponse

from rankgate.errors import (
    BackendError,
    EmptyQueryError,
    InputError,
    NoDocumentsError,
    OverloadedError,
    RankgateError,
    RequestTimeoutError,
    TooManyDocumentsError,
    UnavailableError,
)

__all__ = [
    "AuthenticationError",
    "BodyTimeoutError",
    "ClientDisconnectedError",
    "Dialect",
    "ErrorKind",
    "InvalidJSONError",
    "InvalidRequestError",
    "ModelNotServedError",
    "PayloadTooLargeError",
    "RouteNotFoundError",
    "classify",
    "error_response",
    "rerank_dialect",
]

Dialect = Literal["cohere", "tei", "vllm", "any"]


def rerank_dialect(body: object) -> Literal["tei", "cohere"]:
    """The dialect of a ``POST /rerank`` body: TEI when it has ``texts``, else Cohere v1 / Jina.

    ``body`` is the parsed JSON, or the raw bytes of a body that did not parse (then a
    ``"texts"`` key anywhere in it decides, so that its error still comes in TEI's shape).
    """
    if isinstance(body, bytes | bytearray):
        return "tei" if b'"texts"' in body else "cohere"
    return "tei" if isinstance(body, dict) and "texts" in body else "cohere"


class PayloadTooLargeError(InputError):
    """The request body is larger than the server accepts."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body exceeds the limit of {limit} bytes")


class InvalidJSONError(InputError):
    """The request body is not valid JSON."""


class InvalidRequestError(InputError):
    """The body is JSON but does not match the dialect's request schema."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        text = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        super().__init__(f"invalid request: {text}")


class BodyTimeoutError(RankgateError):
    """The client did not send the whole request body in time."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"the request body did not arrive within {timeout_s:g} s")


class ClientDisconnectedError(RankgateError):
    """The client went away before its answer; nothing can be sent."""


class ModelNotServedError(RankgateError):
    """A request named a model this server does not serve (with several models served)."""

    def __init__(self, model: str, served: list[str]) -> None:
        self.model = model
        self.served = served
        super().__init__(
            f"model {model!r} is not served here; the served models are "
            + ", ".join(repr(name) for name in served)
        )


class AuthenticationError(RankgateError):
    """No API key, or one the server does not know."""


class RouteNotFoundError(RankgateError):
    """No route for this path or method."""

    def __init__(self, status: int, allow: str | None = None) -> None:
        self.status = status
        self.allow = allow
        super().__init__("no such route" if status == 404 else "method not allowed")


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """How one family of exceptions is answered."""

    status: int
    error_type: str
    reason: str  # label of the failures counter
    fixed_message: str | None = None  # shown instead of the exception's text


_TABLE: list[tuple[type[BaseException], ErrorKind]] = [
    (InvalidJSONError, ErrorKind(400, "validation", "invalid_json")),
    (EmptyQueryError, ErrorKind(400, "empty", "empty_query")),
    (NoDocumentsError, ErrorKind(400, "empty", "no_documents")),
    (
        AuthenticationError,
        ErrorKind(
            401,
            "unauthorized",
            "unauthorized",
            "invalid or missing API key; send 'Authorization: Bearer KEY'",
        ),
    ),
    (ModelNotServedError, ErrorKind(404, "not_found", "unknown_model")),
    (BodyTimeoutError, ErrorKind(408, "timeout", "body_timeout")),
    (ClientDisconnectedError, ErrorKind(499, "disconnected", "client_disconnected")),
    (TooManyDocumentsError, ErrorKind(413, "validation", "too_many_documents")),
    (PayloadTooLargeError, ErrorKind(413, "validation", "payload_too_large")),
    (InputError, ErrorKind(422, "validation", "validation")),
    (OverloadedError, ErrorKind(429, "overloaded", "overloaded")),
    (BackendError, ErrorKind(500, "backend", "backend", "the model failed to score this request")),
    (UnavailableError, ErrorKind(503, "unhealthy", "unavailable")),
    (RequestTimeoutError, ErrorKind(504, "timeout", "timeout")),
]
_INTERNAL = ErrorKind(500, "internal", "internal", "internal server error")

_VLLM_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "NotFoundError",
    408: "TimeoutError",
    413: "BadRequestError",
    422: "BadRequestError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
    504: "TimeoutError",
}


def classify(exc: BaseException) -> ErrorKind:
    """The table's row for ``exc`` (first match wins; unknown exceptions are 500s)."""
    if isinstance(exc, RouteNotFoundError):
        return ErrorKind(exc.status, "not_found", "not_found")
    for cls, kind in _TABLE:
        if isinstance(exc, cls):
            return kind
    return _INTERNAL


def error_body(exc: BaseException, dialect: Dialect, request_id: str) -> tuple[int, Any]:
    """Status and JSON body for ``exc`` in ``dialect``; 500s never carry the exception's text."""
    kind = classify(exc)
    if kind.fixed_message is not None:
        message = kind.fixed_message
        if kind.status >= 500:
            message = f"{message} (request id {request_id})"
    else:
        message = str(exc)
    detail: Any = message
    if isinstance(exc, InvalidRequestError):
        detail = exc.problems
    if dialect == "tei":
        return kind.status, {"error": message, "error_type": kind.error_type}
    if dialect == "cohere":
        return kind.status, {"message": message, "detail": detail}
    if dialect == "vllm":
        error_type = _VLLM_TYPES.get(kind.status, "InternalServerError")
        return kind.status, {
            "error": {"message": message, "type": error_type, "param": None, "code": kind.status}
        }
    return kind.status, {
        "error": message,
        "error_type": kind.error_type,
        "message": message,
        "detail": detail,
    }


def error_response(exc: BaseException, dialect: Dialect, request_id: str) -> JSONResponse:
    """The response for ``exc``, with Retry-After on 429 and WWW-Authenticate on 401."""
    status, body = error_body(exc, dialect, request_id)
    headers = {"x-request-id": request_id}
    if isinstance(exc, OverloadedError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RouteNotFoundError) and exc.allow:
        headers["Allow"] = exc.allow
    if isinstance(exc, BodyTimeoutError):  # the rest of the body may still be on its way
        headers["Connection"] = "close"
    return JSONResponse(body, status_code=status, headers=headers)
