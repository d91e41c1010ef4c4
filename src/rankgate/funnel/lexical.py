"""BM25 over passages (bm25s) with a tokenizer that works for spaced and unspaced scripts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.errors import MissingDependencyError

__all__ = ["Bm25", "tokenize"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")


def tokenize(text: str) -> list[str]:
    """Lowercased words; a CJK run becomes its characters plus character bigrams.

    Chinese and Japanese have no spaces, so a whitespace tokenizer would make each sentence one
    token; unigrams + bigrams is the usual dictionary-free substitute.
    """
    tokens: list[str] = []
    for piece in _TOKEN.findall(text.lower()):
        if _CJK_RUN.fullmatch(piece):
            tokens.extend(piece)
            tokens.extend(piece[i : i + 2] for i in range(len(piece) - 1))
        else:
            tokens.append(piece)
    return tokens


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise MissingDependencyError("bm25s", "funnel", "the BM25 first stage") from None
    return bm25s


class Bm25:
    """A bm25s index over a fixed list of texts; rows are positions in that list."""

    def __init__(self, model: Any, size: int) -> None:
        self._model = model
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> Bm25:
        model = _bm25s().BM25()
        # bm25s rejects an all-empty corpus; a placeholder token keeps empty passages indexable.
        model.index([tokenize(t) or ["\x00"] for t in texts], show_progress=False)
        return cls(model, len(texts))

    def save(self, folder: Path) -> None:
        self._model.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> Bm25:
        return cls(_bm25s().BM25.load(str(folder)), size)

    def search(self, query: str, top_k: int) -> list[tuple[int, float]]:
        """(row, score) pairs, best first; rows with no query term are left out."""
        tokens = tokenize(query)
        if not tokens or self.size == 0:
            return []
        rows, scores = self._model.retrieve(
            [tokens], k=min(top_k, self.size), show_progress=False, n_threads=1
        )
        return [
            (int(r), float(s))
            for r, s in zip(np.asarray(rows)[0], np.asarray(scores)[0], strict=True)
            if s > 0
        ]
