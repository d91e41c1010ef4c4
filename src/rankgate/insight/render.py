"""Explanations as highlighted text: rich for the terminal, HTML with ``<mark>`` for pages.

Blue segments raised the score, vermillion ones lowered it (Okabe-Ito colours, told apart with
every common colour-vision deficiency), and a lowering segment is also underlined, so the sign
never rests on colour alone. The stronger the colour, the larger the change relative to the
segment that moved it most. Segments that changed it by less than a tenth of that stay plain,
so the eye goes to what mattered.
"""

from __future__ import annotations

import html

from rich.text import Text

from rankgate.engine.explain import Explanation, Segment

__all__ = ["explanation_html", "explanation_text", "strength"]

_QUIET = 0.1
# Terminal backgrounds by (sign, level); three levels read well on dark and light themes.
_RICH = {
    (1, 1): "on #d6e9f5",
    (1, 2): "on #8fc1e3",
    (1, 3): "bold white on #0072b2",
    (-1, 1): "underline on #fbe3cf",
    (-1, 2): "underline on #f0a86b",
    (-1, 3): "bold underline white on #d55e00",
}
_RAISED, _LOWERED = "0, 114, 178", "213, 94, 0"  # Okabe-Ito blue and vermillion


def strength(segment: Segment, explanation: Explanation) -> float:
    """The segment's contribution relative to the largest one, in [-1, 1]."""
    scale = max((abs(s.contribution) for s in explanation.segments), default=0.0)
    return segment.contribution / scale if scale > 0 else 0.0


def _level(value: float) -> int:
    size = abs(value)
    if size < _QUIET:
        return 0
    return 1 if size < 0.4 else 2 if size < 0.75 else 3


def explanation_text(explanation: Explanation) -> Text:
    """The document with each segment's background coloured by its contribution."""
    out = Text()
    for seg in explanation.segments:
        value = strength(seg, explanation)
        level = _level(value)
        style = _RICH[(1 if value > 0 else -1, level)] if level else ""
        # Colour the words, not the trailing whitespace or line breaks.
        body = seg.text.rstrip()
        out.append(body, style=style)
        out.append(seg.text[len(body) :])
    return out


def explanation_html(explanation: Explanation) -> str:
    """The document as HTML: each moving segment in a ``<mark>`` with an inline background.

    Text is escaped, so a document cannot inject markup. The ``title`` of each mark gives its
    contribution in logits.

    Example:
        >>> from rankgate.engine.explain import Explanation, Segment
        >>> e = Explanation("q", "<b>x</b>", "sentence", 1.0, (Segment(0, 0, 8, "<b>x</b>", 1.0),))
        >>> explanation_html(e)
        '<span class="rg-explanation"><mark style="background: rgba(0, 114, 178, 0.75)" \
title="+1.000">&lt;b&gt;x&lt;/b&gt;</mark></span>'
    """
    parts = []
    for seg in explanation.segments:
        value = strength(seg, explanation)
        body = html.escape(seg.text)
        if _level(value) == 0:
            parts.append(body)
            continue
        alpha = round(0.15 + 0.6 * abs(value), 2)
        style = (
            f"background: rgba({_RAISED}, {alpha})"
            if value > 0
            else f"background: rgba({_LOWERED}, {alpha}); text-decoration: underline dotted"
        )
        parts.append(f'<mark style="{style}" title="{seg.contribution:+.3f}">{body}</mark>')
    return '<span class="rg-explanation">' + "".join(parts) + "</span>"
