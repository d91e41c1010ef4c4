"""Training data: FlagEmbedding's JSONL schema and sentence-transformers' labeled pairs and lists.

One row per query, as FlagEmbedding writes it::

    {"query": "...", "pos": ["..."], "neg": ["...", "..."],
     "pos_scores": [..], "neg_scores": [..], "prompt": "..."}

``pos_scores`` / ``neg_scores`` (teacher scores, for distillation) and ``prompt`` are optional.
sentence-transformers' layouts are read too and grouped by query: labeled pairs
(``{"query", "document" | "passage" | "text" | "answer", "label"}``, one pair a line) and labeled
lists (``{"query", "docs" | "documents", "labels"}``); a label above 0 means relevant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rankgate.errors import TrainingDataError

__all__ = [
    "TrainingDataError",
    "TrainingRow",
    "check_rows",
    "parse_records",
    "read_rows",
    "without_scores",
    "write_rows",
]

_DOC_FIELDS = ("document", "passage", "text", "answer")
_LIST_FIELDS = ("docs", "documents")


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One query with its relevant (``pos``) and irrelevant (``neg``) documents.

    ``pos_scores`` / ``neg_scores`` are a teacher's raw scores, one per document, or empty.
    ``line`` is where the row began in its file (0 when built in code), for error messages.
    """

    query: str
    pos: tuple[str, ...]
    neg: tuple[str, ...] = ()
    pos_scores: tuple[float, ...] = ()
    neg_scores: tuple[float, ...] = ()
    prompt: str | None = None
    line: int = 0
    where: str = field(default="", compare=False)

    @property
    def has_scores(self) -> bool:
        return bool(self.pos_scores) and len(self.neg_scores) == len(self.neg)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "pos": list(self.pos), "neg": list(self.neg)}
        if self.pos_scores:
            out["pos_scores"] = list(self.pos_scores)
            out["neg_scores"] = list(self.neg_scores)
        if self.prompt is not None:
            out["prompt"] = self.prompt
        return out


def _texts(value: Any, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TrainingDataError(f"{where}: '{what}' must be a list of strings")
    return tuple(value)


def _scores(value: Any, expected: int, what: str, where: str) -> tuple[float, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) != expected
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise TrainingDataError(
            f"{where}: '{what}' must be a list of {expected} numbers, one per document"
        )
    return tuple(float(v) for v in value)


def _label(value: Any, where: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainingDataError(f"{where}: 'label' must be a number (above 0: relevant)")
    return value > 0


def _query(record: dict[str, Any], where: str) -> str:
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        raise TrainingDataError(f"{where}: 'query' must be a non-empty string")
    return query


def parse_records(records: Iterable[tuple[int, Any]], where: str = "") -> list[TrainingRow]:
    """Rows from ``(line, record)`` pairs of any layout :func:`read_rows` reads.

    Raises:
        TrainingDataError: a malformed record (``where:line`` named).
    """
    rows: list[TrainingRow] = []
    grouped: dict[str, dict[str, Any]] = {}  # labeled pairs and lists, merged by query
    for n, record in records:
        at = f"{where}:{n}"
        if not isinstance(record, dict):
            raise TrainingDataError(f"{at}: expected a JSON object")
        query = _query(record, at)
        if "pos" in record or "neg" in record:
            pos = _texts(record.get("pos"), "pos", at)
            neg = _texts(record.get("neg"), "neg", at)
            prompt = record.get("prompt")
            if prompt is not None and not isinstance(prompt, str):
                raise TrainingDataError(f"{at}: 'prompt' must be a string")
            rows.append(
                TrainingRow(
                    query,
                    pos,
                    neg,
                    _scores(record.get("pos_scores"), len(pos), "pos_scores", at),
                    _scores(record.get("neg_scores"), len(neg), "neg_scores", at),
                    prompt,
                    n,
                    where,
                )
            )
            continue
        doc_field = next((f for f in _DOC_FIELDS if f in record), None)
        list_field = next((f for f in _LIST_FIELDS if f in record), None)
        group = grouped.setdefault(query, {"pos": [], "neg": [], "line": n})
        if doc_field is not None and "label" in record:
            text = record[doc_field]
            if not isinstance(text, str):
                raise TrainingDataError(f"{at}: '{doc_field}' must be a string")
            group["pos" if _label(record["label"], at) else "neg"].append(text)
        elif list_field is not None and "labels" in record:
            docs = _texts(record[list_field], list_field, at)
            labels = record["labels"]
            if not isinstance(labels, list) or len(labels) != len(docs):
                raise TrainingDataError(f"{at}: 'labels' must have one number per document")
            for text, label in zip(docs, labels, strict=True):
                group["pos" if _label(label, at) else "neg"].append(text)
        else:
            raise TrainingDataError(
                f"{at}: expected {{'query', 'pos', 'neg'}} (FlagEmbedding), "
                "{'query', 'document', 'label'} (labeled pair) or "
                "{'query', 'docs', 'labels'} (labeled list)"
            )
    for query, group in grouped.items():
        pos, neg = tuple(group["pos"]), tuple(group["neg"])
        rows.append(TrainingRow(query, pos, neg, line=group["line"], where=where))
    return rows


def read_rows(path: Path) -> list[TrainingRow]:
    """Read a training or dev file (JSONL; a ``.json`` file may hold a list of rows).

    Raises:
        TrainingDataError: the file is missing, empty or has a malformed row (line named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrainingDataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise TrainingDataError(f"{path}: not UTF-8 text") from None
    records: list[tuple[int, Any]] = []
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            records = list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as exc:
            raise TrainingDataError(f"{path}: not JSON ({exc.msg})") from None
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}:{n}: not JSON ({exc.msg})") from None
    if not records:
        raise TrainingDataError(f"{path}: no rows")
    return parse_records(records, str(path))


def write_rows(rows: Sequence[TrainingRow], path: Path) -> Path:
    """Write rows as FlagEmbedding JSONL (so a mined set can be trained on again)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    return path


def check_rows(rows: Sequence[TrainingRow], *, need_negatives: bool, hint: str = "") -> None:
    """Refuse rows training cannot use, naming the first bad one.

    Raises:
        TrainingDataError: a row without positives, a text both relevant and irrelevant, or
        (with ``need_negatives``) a row without negatives; ``hint`` says how to get them.
    """
    for row in rows:
        at = f"{row.where}:{row.line}" if row.where else f"row for query {row.query!r}"
        if not row.pos:
            raise TrainingDataError(
                f"{at}: 'pos' is empty; every row needs at least one relevant document"
            )
        both = set(row.pos) & set(row.neg)
        if both:
            raise TrainingDataError(
                f"{at}: {len(both)} document(s) are in both 'pos' and 'neg', for example "
                f"{next(iter(both))[:60]!r}; a document is either relevant or not"
            )
        if need_negatives and not row.neg:
            raise TrainingDataError(
                f"{at}: no negatives ('neg' is missing or empty); {hint or 'add negatives'}"
            )


def without_scores(rows: Sequence[TrainingRow]) -> list[TrainingRow]:
    """The rows with their teacher scores dropped."""
    return [replace(r, pos_scores=(), neg_scores=()) for r in rows]
