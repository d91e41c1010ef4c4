"""What is checked at the edge, before a route sees a request: the body and echoed names.

- :func:`read_body` reads the whole body under a size limit and a deadline (a stalled upload
  gets 408, not a connection and an in-flight slot held for ever) and gives up when the server's
  shutdown deadline comes (503).
- :func:`check_json` refuses what JSON allows but no response can carry: non-finite numbers
  (``NaN``, ``Infinity``, ``1e400``) and strings that are not valid Unicode (a lone UTF-16
  surrogate such as ``"\\ud800"``), anywhere in the body, with the location of the first one.
- :func:`ignored_fields_header` lists caller-chosen field names in a header only when they are
  printable ASCII, capped in count and length.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from typing import Any

from starlette.types import Message, Receive

from rankgate.errors import UnavailableError
from rankgate.server.errors import (
    BodyTimeoutError,
    ClientDisconnectedError,
    InvalidJSONError,
    InvalidRequestError,
    PayloadTooLargeError,
)

__all__ = [
    "MAX_IGNORED_NAME",
    "MAX_IGNORED_SHOWN",
    "check_json",
    "ignored_fields_header",
    "read_body",
]

MAX_IGNORED_SHOWN = 16
"""Most ignored field names listed in ``x-ignored-fields``; the rest are counted."""
MAX_IGNORED_NAME = 64
"""Longest field name listed; longer ones are counted, not shown."""


async def read_body(
    receive: Receive, *, limit: int, timeout_s: float, stop: asyncio.Event
) -> bytes:
    """The whole request body.

    Raises:
        PayloadTooLargeError: more than ``limit`` bytes arrived.
        BodyTimeoutError: the body was not complete within ``timeout_s``.
        UnavailableError: ``stop`` was set (the shutdown deadline) while waiting.
        ClientDisconnectedError: the client went away first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await _next(receive, deadline - loop.time(), stop, timeout_s)
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _next(
    receive: Receive, remaining: float, stop: asyncio.Event, timeout_s: float
) -> Message:
    if stop.is_set():
        raise UnavailableError("the server is shutting down")
    if remaining <= 0:
        raise BodyTimeoutError(timeout_s)
    get = asyncio.ensure_future(receive())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {get, stopped}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
    if get in done:
        return get.result()
    get.cancel()
    if stopped in done:
        raise UnavailableError("the server is shutting down")
    raise BodyTimeoutError(timeout_s)


class _NonFinite:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def check_json(body: bytes) -> Any:
    """The parsed body, refused when it holds what no response could carry back.

    Returns None for an empty body; a body that is not JSON is left to the route's own parsing
    (which answers 400 with the parser's reason).

    Raises:
        InvalidRequestError: a non-finite number or an invalid Unicode string, with its location.
        InvalidJSONError: numbers too large to parse.
    """
    if not body.strip():
        return None
    try:
        parsed = json.loads(body, parse_constant=_NonFinite, parse_float=_float)
    except UnicodeDecodeError:
        raise InvalidJSONError("the body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidJSONError("the body is nested too deeply") from None
    except json.JSONDecodeError:
        return None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidJSONError(f"the body is not valid JSON: {exc}") from None
    problem = _find_problem(parsed)
    if problem is not None:
        loc, msg, kind = problem
        raise InvalidRequestError([{"loc": loc or ["body"], "msg": msg, "type": kind}])
    return parsed


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _find_problem(value: Any) -> tuple[list[str | int], str, str] | None:
    """The location and description of the first value no JSON response can carry."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, _NonFinite):
            return loc, f"non-finite number {item.text!r} is not allowed", "finite_number"
        if isinstance(item, str):
            if not _valid_text(item):
                return loc, "string is not valid Unicode (a lone UTF-16 surrogate)", "unicode"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if not _valid_text(key):
                    return loc, "a field name is not valid Unicode (a lone surrogate)", "unicode"
                stack.append(([*loc, key], child))
        elif isinstance(item, list):
            stack.extend(([*loc, i], child) for i, child in reversed(list(enumerate(item))))
    return None


def _printable(name: str) -> bool:
    return 0 < len(name) <= MAX_IGNORED_NAME and all(" " < c <= "~" and c != "," for c in name)


def ignored_fields_header(names: Iterable[str]) -> dict[str, str]:
    """``x-ignored-fields`` for these names: printable ASCII names only, at most
    :data:`MAX_IGNORED_SHOWN`, then ``...and N more``; no header when there are none."""
    names = sorted(names)
    if not names:
        return {}
    shown = [n for n in names if _printable(n)][:MAX_IGNORED_SHOWN]
    rest = len(names) - len(shown)
    value = ",".join(shown)
    if rest:
        value = f"{value},...and {rest} more" if value else f"...and {rest} more"
    return {"x-ignored-fields": value}
