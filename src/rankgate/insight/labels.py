"""Judged (query, document) pairs for calibration, read from JSON Lines.

Two row shapes, mixed freely in one file:

- one judged pair: ``{"query": ..., "document": ..., "label": 0 | 1}``; a graded label (0, 1,
  2, 3, as in BEIR qrels) counts as relevant when it is above 0;
- FlagEmbedding's training rows: ``{"query": ..., "pos": [...], "neg": [...]}``; every ``pos``
  document is relevant and every ``neg`` one is not, so a fine-tuning file calibrates too
  (other keys, such as ``pos_scores`` or ``prompt``, are ignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.errors import LabelsError

__all__ = ["JudgedPairs", "read_labels"]


@dataclass(frozen=True, slots=True)
class JudgedPairs:
    """Pairs and their binary relevance (1: relevant), in file order.

    Attributes:
        pairs: (query, document) pairs.
        labels: 1 for relevant, 0 for not, one per pair.
        source: the file they came from, if any.
    """

    pairs: tuple[tuple[str, str], ...]
    labels: tuple[int, ...]
    source: str | None = None

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, int]], source: str | None = None
    ) -> JudgedPairs:
        """From (query, document, label) triples; a label above 0 is relevant."""
        triples = list(rows)
        return cls(
            pairs=tuple((q, d) for q, d, _ in triples),
            labels=tuple(int(label > 0) for _, _, label in triples),
            source=source,
        )

    @property
    def relevant(self) -> int:
        return sum(self.labels)

    def __len__(self) -> int:
        return len(self.pairs)

    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)


def read_labels(path: Path | str) -> JudgedPairs:
    """Read a labels file (JSON Lines; blank lines are skipped).

    Raises:
        LabelsError: no such file, or a malformed row (its line number named).
    """
    path = Path(path)
    triples: list[tuple[str, str, int]] = []
    try:
        with path.open(encoding="utf-8") as stream:
            for n, text in enumerate(stream, 1):
                if text.strip():
                    triples.extend(_row(text, str(path), n))
    except FileNotFoundError:
        raise LabelsError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise LabelsError("not UTF-8 text", str(path)) from None
    except OSError as exc:
        raise LabelsError(f"cannot read: {exc.strerror}", str(path)) from None
    return JudgedPairs.from_rows(triples, source=str(path))


_SHAPES = 'expected {"query", "document", "label"} or {"query", "pos": [...], "neg": [...]}'


def _row(text: str, path: str, n: int) -> list[tuple[str, str, int]]:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelsError(f"not JSON ({exc.msg}); {_SHAPES}", path, n) from None
    if not isinstance(row, dict):
        raise LabelsError(f"a JSON {type(row).__name__}, not an object; {_SHAPES}", path, n)
    query = _text(row.get("query"), "query", path, n)
    if "label" in row:
        if "pos" in row or "neg" in row:
            raise LabelsError("give either label or pos/neg in a row, not both", path, n)
        document = _text(row.get("document"), "document", path, n)
        return [(query, document, _label(row["label"], path, n))]
    if "pos" in row or "neg" in row:
        pos = _texts(row.get("pos", []), "pos", path, n)
        neg = _texts(row.get("neg", []), "neg", path, n)
        return [(query, d, 1) for d in pos] + [(query, d, 0) for d in neg]
    raise LabelsError(f"no label and no pos/neg; {_SHAPES}", path, n)


def _text(value: Any, name: str, path: str, n: int) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"{type(value).__name__} {value!r}"[:60]
        raise LabelsError(f"{name} must be a non-empty string ({got})", path, n)
    return value


def _texts(value: Any, name: str, path: str, n: int) -> Sequence[str]:
    if not isinstance(value, list):
        raise LabelsError(f"{name} must be a list of strings", path, n)
    return [_text(v, f"{name}[{i}]", path, n) for i, v in enumerate(value)]


def _label(value: Any, path: str, n: int) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise LabelsError(
        f"label must be an integer (0: not relevant, 1 or more: relevant), not {value!r}"[:120],
        path,
        n,
    )
