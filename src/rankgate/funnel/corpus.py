"""Reading documents (JSON Lines, or a folder of text files) and cutting them into passages."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankgate.funnel.errors import CorpusError
from rankgate.funnel.types import Passage

__all__ = ["SourceDocument", "read_corpus", "split_passages", "word_units"]

_KNOWN = ("id", "text", "title", "source", "published")
_FOLDER_SUFFIXES = (".txt", ".md")
# A "word" is a run of letters/digits, or one CJK/kana/hangul character: those scripts do not put
# spaces between words, so counting characters keeps passage sizes comparable across languages.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_UNIT = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document as the user gave it."""

    id: str
    text: str
    title: str | None = None
    source: str | None = None
    published: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Content hash: a re-index skips documents whose fingerprint did not change."""
        payload = json.dumps(
            [self.text, self.title, self.source, self.published, dict(self.metadata)],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _from_record(record: Mapping[str, Any], where: str) -> SourceDocument:
    doc_id = record.get("id", record.get("_id"))
    text = record.get("text")
    if doc_id is None or str(doc_id).strip() == "":
        raise CorpusError(f"{where}: missing 'id'")
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{where}: 'text' must be a non-empty string")
    optional = {k: record.get(k) for k in ("title", "source", "published")}
    for key, value in optional.items():
        if value is not None and not isinstance(value, str):
            raise CorpusError(f"{where}: '{key}' must be a string")
    meta = {k: v for k, v in record.items() if k not in _KNOWN and k != "_id"}
    return SourceDocument(
        id=str(doc_id),
        text=text,
        title=optional["title"] or None,
        source=optional["source"] or None,
        published=optional["published"] or None,
        metadata=meta,
    )


def _read_jsonl(path: Path) -> Iterator[SourceDocument]:
    with path.open(encoding="utf-8") as stream:
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{n}: expected a JSON object")
            yield _from_record(record, f"{path}:{n}")


def _read_folder(folder: Path) -> Iterator[SourceDocument]:
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in _FOLDER_SUFFIXES):
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            continue
        first = text.lstrip().splitlines()[0]
        title = first.lstrip("# ").strip() if first.startswith("#") else path.stem
        rel = path.relative_to(folder).as_posix()
        yield SourceDocument(id=rel, text=text, title=title, source=None, metadata={"path": rel})


def read_corpus(path: Path) -> list[SourceDocument]:
    """Documents from a JSON Lines file or a folder of ``.txt`` / ``.md`` files.

    JSON Lines objects need ``id`` (or BEIR's ``_id``) and ``text``; ``title``, ``source`` and
    ``published`` are optional and every other field is kept as metadata. In a folder, the id is
    the path relative to the folder and the title the first Markdown heading or the file name.
    A later document with an id seen before replaces the earlier one.

    Raises:
        CorpusError: the path does not exist, or a line is malformed (file and line named).
    """
    path = Path(path)
    if path.is_dir():
        docs: Iterable[SourceDocument] = _read_folder(path)
    elif path.is_file():
        docs = _read_jsonl(path)
    else:
        raise CorpusError(f"{path}: no such file or folder")
    by_id = {doc.id: doc for doc in docs}
    if not by_id:
        raise CorpusError(f"{path}: no documents")
    return list(by_id.values())


def word_units(text: str) -> list[str]:
    """Words of any script (one CJK character per unit), for sizing passages."""
    return _UNIT.findall(text)


def split_passages(doc: SourceDocument, max_words: int, overlap: int) -> list[Passage]:
    """Cut a document into overlapping passages of at most ``max_words`` units.

    Cuts fall on unit boundaries and keep the original spacing, so a CJK passage stays unspaced.
    """
    if overlap >= max_words:
        overlap = max_words // 2
    spans = [m.span() for m in _UNIT.finditer(doc.text)]
    if len(spans) <= max_words:
        pieces = [doc.text.strip()]
    else:
        pieces = []
        step = max_words - overlap
        for start in range(0, len(spans), step):
            window = spans[start : start + max_words]
            pieces.append(doc.text[window[0][0] : window[-1][1]])
            if start + max_words >= len(spans):
                break
    return [
        Passage(
            id=f"{doc.id}#{n}",
            doc_id=doc.id,
            n=n,
            text=piece,
            title=doc.title,
            source=doc.source,
            published=doc.published,
            metadata=doc.metadata,
        )
        for n, piece in enumerate(pieces)
    ]
