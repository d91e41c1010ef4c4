"""Validation of what callers hand the engine: queries, documents and pairs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rankgate.errors import EmptyQueryError, InputError, InvalidDocumentError, NoDocumentsError
from rankgate.types import Document

__all__ = ["check_instruction", "check_query", "check_top_n", "document_texts", "normalize_pairs"]


def check_query(query: object) -> str:
    if query is None:
        raise EmptyQueryError("the query is missing (None)")
    if not isinstance(query, str):
        raise InputError(f"the query must be a string, not {type(query).__name__}")
    if not query.strip():
        raise EmptyQueryError("the query is empty")
    return query


def check_instruction(instruction: object) -> str | None:
    """None (the model's default), or a non-blank string."""
    if instruction is None:
        return None
    if not isinstance(instruction, str):
        raise InputError(f"the instruction must be a string, not {type(instruction).__name__}")
    if not instruction.strip():
        raise InputError("the instruction is empty; leave it out to use the model's default")
    return instruction


def check_top_n(top_n: object) -> int | None:
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise InputError(f"top_n must be a positive integer or None, not {top_n!r}")
    if top_n < 1:
        raise InputError(f"top_n must be at least 1, not {top_n}")
    return top_n


def _field_text(doc: Mapping[str, Any], field: str, index: int) -> str | None:
    value = doc.get(field)
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise InvalidDocumentError(index, f"field '{field}' is NaN")
    if isinstance(value, (list, dict, set, tuple, bytes)):
        raise InvalidDocumentError(
            index, f"field '{field}' must be text, not {type(value).__name__}"
        )
    return str(value)


def document_texts(
    documents: Sequence[Document], rank_fields: Sequence[str] | None = None
) -> list[str]:
    """The text to score for each document.

    Strings are used as they are. Mappings use their ``text`` field, or with ``rank_fields`` the
    named fields in order, as ``field: value`` lines (the layout Cohere documents for
    ``rank_fields``); metadata is never scored unless named.

    Raises:
        NoDocumentsError: ``documents`` is empty.
        InvalidDocumentError: a document is None, not text, or has none of the fields.
    """
    if documents is None or isinstance(documents, (str, bytes, Mapping)):
        raise InputError("documents must be a list of strings or objects with a 'text' field")
    if len(documents) == 0:
        raise NoDocumentsError("no documents were given")
    texts = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
        elif isinstance(doc, Mapping):
            if rank_fields:
                parts = [(f, _field_text(doc, f, i)) for f in rank_fields]
                present = [f"{f}: {v}" for f, v in parts if v is not None]
                if not present:
                    raise InvalidDocumentError(i, f"has none of the fields {list(rank_fields)}")
                texts.append("\n".join(present))
            else:
                text = doc.get("text")
                if not isinstance(text, str):
                    what = "no 'text' field" if text is None else f"a {type(text).__name__} 'text'"
                    raise InvalidDocumentError(
                        i, f"an object document needs a string 'text' field, got {what}"
                    )
                texts.append(text)
        elif doc is None:
            raise InvalidDocumentError(i, "is None")
        else:
            raise InvalidDocumentError(
                i, f"must be a string or an object with 'text', not {type(doc).__name__}"
            )
    return texts


def normalize_pairs(pairs: object) -> list[tuple[str, str]]:
    """Accept FlagEmbedding's shapes: a list of (query, passage) pairs, or one pair.

    Raises:
        NoDocumentsError: no pairs.
        InputError / EmptyQueryError / InvalidDocumentError: a malformed pair.
    """
    if (
        isinstance(pairs, (list, tuple))
        and len(pairs) == 2
        and all(isinstance(p, str) for p in pairs)
    ):
        pairs = [pairs]
    if not isinstance(pairs, (list, tuple)):
        raise InputError(
            f"pairs must be a list of (query, passage) pairs, not {type(pairs).__name__}"
        )
    if not pairs:
        raise NoDocumentsError("no pairs were given")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InputError(f"pair {i} must be a (query, passage) pair")
        query, passage = pair
        try:
            check_query(query)
        except InputError as exc:
            raise type(exc)(f"pair {i}: {exc}") from None
        if not isinstance(passage, str):
            raise InvalidDocumentError(i, f"passage must be a string, not {type(passage).__name__}")
        out.append((query, passage))
    return out
