"""Help pages that read at any terminal width, 80 columns included.

typer's rich help lays every option out as a table of six columns (names, short names, negative
names, their short names, type, help); on an 80-column terminal the table squeezes the help into
a sliver and cuts option names and environment variables short ("--private-playgro…"). Click's
own layout never cuts: names and metavar stay whole on the left, the help wraps on the right, and
a long name puts its help on the next line. These classes keep click's layout and typer's
grouping of options into panels (``rich_help_panel``), one section per panel, and wrap help
only at spaces and after commas in lists, so that values such as ``BAAI/bge-reranker-v2-m3``
stay whole.

Use with ``typer.Typer(cls=PanelGroup, rich_markup_mode=None)`` and
``app.command(cls=PanelCommand)``; ``rich_markup_mode=None`` makes typer format with click.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["PanelCommand", "PanelGroup", "panel_sections"]

_DEFAULT_PANEL = "Options"


def panel_sections(command: Any, ctx: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """The command's help records, grouped: arguments first, then options by panel (unpanelled
    options first, under "Options"), each panel where its first option is declared."""
    arguments: list[tuple[str, str]] = []
    panels: dict[str, list[tuple[str, str]]] = {_DEFAULT_PANEL: []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            arguments.append(record)
        else:
            panel = getattr(param, "rich_help_panel", None) or _DEFAULT_PANEL
            panels.setdefault(panel, []).append(record)
    sections = [("Arguments", arguments)] if arguments else []
    return sections + [(name, rows) for name, rows in panels.items() if rows]


class _Wrapper(textwrap.TextWrapper):
    # Breaks at spaces and after a comma inside a list (a,b,c), never at a hyphen; a word wider
    # than the column is split only as the last resort.
    wordsep_simple_re = re.compile(r"(\s+|(?<=,)(?=[^\s,]))")


def _write_dl(
    self: Any, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
) -> None:
    # click's write_dl, but wrapping at spaces only: never inside a name, value or variable.
    rows = list(rows)
    first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
    indent = " " * (first_col + self.current_indent)
    wrapper = _Wrapper(max(self.width - first_col - 2, 20), break_on_hyphens=False)
    for first, second in rows:
        self.write(f"{'':>{self.current_indent}}{first}")
        if not second:
            self.write("\n")
            continue
        if len(first) <= first_col - col_spacing:
            self.write(" " * (first_col - len(first)))
        else:
            self.write("\n" + indent)
        lines = wrapper.wrap(second) or [""]
        self.write(lines[0] + "\n")
        for line in lines[1:]:
            self.write(indent + line + "\n")


# Subclassed at run time: the context class is click's, or the copy of click that typer carries.
_Formatter = type(
    "_Formatter", (TyperCommand.context_class.formatter_class,), {"write_dl": _write_dl}
)
_Context = type("_Context", (TyperCommand.context_class,), {"formatter_class": _Formatter})


def _write(command: Any, ctx: Any, formatter: Any) -> None:
    for name, rows in panel_sections(command, ctx):
        with formatter.section(name):
            formatter.write_dl(rows)


class PanelCommand(TyperCommand):
    """A command whose plain (click) help groups its options by panel."""

    context_class = _Context

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _write(self, ctx, formatter)


class PanelGroup(TyperGroup):
    """A group whose plain (click) help groups its options by panel, then lists its commands."""

    context_class = _Context

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _write(self, ctx, formatter)
        self.format_commands(ctx, formatter)
