"""Cutting a document into sentences or words, as spans that tile it exactly.

Spans tile the text (their concatenation is the text), so a segment can be removed by slicing and
the rest rendered without losing a character. Each span carries its trailing whitespace.

Sentence ends: CJK and full-width marks (``。！？；．｡…``) end a sentence wherever they stand,
as Chinese and Japanese are written without spaces; Latin ``. ! ? ;`` end one only when
whitespace or the end of the text follows, so ``3.5 kWh`` and ``v2.1`` stay whole. A line
break also ends a sentence (lists, headings). Closing quotes and brackets stay with the sentence
they close. Abbreviations such as "e.g. " do cut a sentence: occlusion still works, a little finer.

Words: runs of letters, digits and marks between spaces; each Han ideograph or kana is a word of
its own, because Chinese and Japanese put no spaces between words. Hangul runs are words, as
Korean is written with spaces.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

__all__ = ["Granularity", "split", "split_sentences", "split_words"]

Granularity: TypeAlias = Literal["sentence", "word"]

_CLOSERS = "」』”’\"'）)\\]】》〉"
_SENTENCE_END = re.compile(
    rf"(?:[。！？；．｡…]+|[.!?;]+(?=\s|$))[{_CLOSERS}]*\s*"
    r"|\n\s*"
)
# Han, kana (with the prolonged-sound mark) and CJK symbols: one word per character.
_CJK_CHAR = r"[\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]"
# CJK and full-width punctuation stays with the word before it rather than standing alone.
_CJK_PUNCT = r"[\u3000-\u3004\u3006-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
_WORD = re.compile(
    rf"(?:{_CJK_CHAR}|[^\s\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff9f]+)"
    rf"{_CJK_PUNCT}*\s*"
)


def _tile(text: str, ends: list[int]) -> list[tuple[int, int]]:
    """Spans from cut positions; blank pieces join their neighbour so every span has content."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in [*ends, len(text)]:
        if end <= start:
            continue
        if not text[start:end].strip() and spans:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        start = end
    if len(spans) > 1 and not text[spans[0][0] : spans[0][1]].strip():
        # Leading whitespace belongs to the first real segment.
        spans[1] = (0, spans[1][1])
        spans.pop(0)
    return spans


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` as ``(start, end)`` offsets that tile it.

    Example:
        >>> t = "重置密码。长按复位键！Then log in. Done"
        >>> [t[s:e] for s, e in split_sentences(t)]
        ['重置密码。', '长按复位键！', 'Then log in. ', 'Done']
    """
    return _tile(text, [m.end() for m in _SENTENCE_END.finditer(text)])


def split_words(text: str) -> list[tuple[int, int]]:
    """Word spans of ``text`` (CJK: one per character) as ``(start, end)`` offsets that tile it.

    Example:
        >>> t = "Model Y 续航"
        >>> [t[s:e] for s, e in split_words(t)]
        ['Model ', 'Y ', '续', '航']
    """
    return _tile(text, [m.end() for m in _WORD.finditer(text)])


def split(text: str, granularity: Granularity = "sentence") -> list[tuple[int, int]]:
    """Spans of ``text`` at the given granularity."""
    if granularity == "sentence":
        return split_sentences(text)
    if granularity == "word":
        return split_words(text)
    raise ValueError(f"granularity must be 'sentence' or 'word', not {granularity!r}")
