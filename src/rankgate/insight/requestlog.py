"""The ranking request log: one JSON object per line, one line per rerank.

Fields (``scores`` is the only one required)::

    {"ts": 1767225600.25, "scores": [0.91, 0.12, 0.55], "retrieval_ranks": [2, 1, 3],
     "normalized": true, "request_id": "7f3a"}

* ``ts``: when the rerank happened, Unix seconds or an ISO 8601 string (default: the line's
  position stands in for time).
* ``scores``: one score per document, in the order the documents were sent.
* ``retrieval_ranks``: retrieval's rank of each document, lower is better. Absent: the sent order
  is the retrieval order (documents are usually sent as retrieval returned them).
* ``normalized``: whether ``scores`` are in [0, 1] (default true); raw logits are passed through
  the sigmoid before the thresholds apply.
* anything else (``request_id``, ``model``...) is kept out of the way and ignored.

The server writes this format when ``RANKGATE_HEALTH_LOG_PATH`` is set (already normalized and in
retrieval order); ``rankgate health --log FILE`` reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rankgate.errors import InputError

__all__ = ["LoggedRerank", "parse_line", "read_log", "record_line"]


@dataclass(frozen=True, slots=True)
class LoggedRerank:
    """One line of the request log, checked."""

    ts: float | None
    scores: tuple[float, ...]
    retrieval_ranks: tuple[int, ...] | None = None
    normalized: bool = True


def _timestamp(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise InputError(f"{where}: 'ts' must be Unix seconds or an ISO 8601 time, not {value!r}")


def parse_line(line: str, where: str = "line") -> LoggedRerank:
    """Check one log line.

    Raises:
        InputError: not JSON, not an object, or ``scores`` / ``retrieval_ranks`` malformed.
    """
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object with a 'scores' list")
    scores = value.get("scores")
    if not isinstance(scores, list) or not scores:
        raise InputError(f"{where}: 'scores' must be a non-empty list of numbers")
    if not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores
    ):
        raise InputError(f"{where}: every score must be a finite number")
    ranks = value.get("retrieval_ranks")
    if ranks is not None and (
        not isinstance(ranks, list)
        or len(ranks) != len(scores)
        or not all(isinstance(r, int) and not isinstance(r, bool) for r in ranks)
    ):
        raise InputError(f"{where}: 'retrieval_ranks' must be one integer per score")
    return LoggedRerank(
        ts=_timestamp(value.get("ts"), where),
        scores=tuple(float(s) for s in scores),
        retrieval_ranks=tuple(ranks) if ranks is not None else None,
        normalized=bool(value.get("normalized", True)),
    )


def _lines(stream: Iterable[str], name: str) -> Iterator[LoggedRerank]:
    for n, line in enumerate(stream, 1):
        if line.strip():
            yield parse_line(line, f"{name}:{n}")


def read_log(path: Path) -> list[LoggedRerank]:
    """Every rerank in a request log file, in file order.

    Raises:
        InputError: the file cannot be read or a line is malformed (the message names it).
    """
    try:
        with path.open(encoding="utf-8") as stream:
            return list(_lines(stream, str(path)))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def record_line(
    ts: float, scores_in_retrieval_order: Sequence[float], request_id: str | None = None
) -> str:
    """The log line for one observed rerank (normalized scores, retrieval order)."""
    out: dict[str, Any] = {
        "ts": round(ts, 3),
        "scores": [round(s, 6) for s in scores_in_retrieval_order],
    }
    if request_id is not None:
        out["request_id"] = request_id
    return json.dumps(out)
