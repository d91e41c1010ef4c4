"""What every command shares: model options (each also a RANKGATE_* variable) and error exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from rankgate.errors import (
    BackendError,
    ConfigError,
    InputError,
    ModelLoadError,
    RankgateError,
)
from rankgate.types import DEFAULT_MODEL

err_console = Console(stderr=True)

EXIT_CODES: list[tuple[type[RankgateError], int]] = [
    (InputError, 2),
    (ConfigError, 2),
    (ModelLoadError, 3),
    (BackendError, 4),
    (RankgateError, 1),
]
EXIT_HELP = (
    "Exit codes: 0 ok, 1 other error, 2 bad input or settings, 3 model not loadable, "
    "4 model failure."
)

_PANEL = "Model options"

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="RANKGATE_MODEL",
        rich_help_panel=_PANEL,
        help=f"Hub id or local directory. Default: {DEFAULT_MODEL}.",
        show_default=False,
    ),
]
Backend = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_BACKEND",
        rich_help_panel=_PANEL,
        help="torch or onnx. Default: torch.",
        show_default=False,
    ),
]
OnnxFile = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_ONNX_FILE",
        rich_help_panel=_PANEL,
        help="With --backend onnx: the ONNX file to load, e.g. model_int8.onnx. "
        "Default: model.onnx.",
        show_default=False,
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_DEVICE",
        rich_help_panel=_PANEL,
        help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps. Default: auto.",
        show_default=False,
    ),
]
Recipe = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_RECIPE",
        rich_help_panel=_PANEL,
        help="Decoder (LLM) rerankers: qwen3, bge-gemma, mxbai-v2, or a JSON recipe file. "
        "Default: auto, recognised from the checkpoint.",
        show_default=False,
    ),
]
DType = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_DTYPE",
        rich_help_panel=_PANEL,
        help="auto (float16 on CUDA, float32 elsewhere), float32, float16, bfloat16. "
        "Default: auto.",
        show_default=False,
    ),
]
MaxLength = Annotated[
    int | None,
    typer.Option(
        envvar="RANKGATE_MAX_LENGTH",
        rich_help_panel=_PANEL,
        help="Tokens per pair; the query keeps at most 3/4. Default: 1024, or the model's "
        "limit if smaller; decoder rerankers follow their reference (qwen3 8192, bge-gemma "
        "512 for the passage, mxbai-v2 8192).",
        show_default=False,
    ),
]
LongDocs = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_LONG_DOCUMENTS",
        rich_help_panel=_PANEL,
        help="chunk (score overlapping windows, keep the best), truncate, or reject (error). "
        "Default: chunk.",
        show_default=False,
    ),
]
MaxChunks = Annotated[
    int | None,
    typer.Option(
        envvar="RANKGATE_MAX_CHUNKS",
        rich_help_panel=_PANEL,
        help="Most windows per long document. Default: no limit.",
        show_default=False,
    ),
]
BatchTokens = Annotated[
    int | None,
    typer.Option(
        envvar="RANKGATE_BATCH_TOKENS",
        rich_help_panel=_PANEL,
        help="Tokens computed per forward pass, padding included. Default: 16384 on CUDA, "
        "4096 otherwise.",
        show_default=False,
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        envvar="RANKGATE_THREADS",
        rich_help_panel=_PANEL,
        help="CPU inference threads. Default: one per CPU this process may use.",
        show_default=False,
    ),
]
Offline = Annotated[
    bool | None,
    typer.Option(
        "--offline/--online",
        envvar="RANKGATE_OFFLINE",
        rich_help_panel=_PANEL,
        help="Never contact the hub (also HF_HUB_OFFLINE=1). Default: online.",
        show_default=False,
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        envvar="RANKGATE_CACHE_DIR",
        rich_help_panel=_PANEL,
        help="Hugging Face cache directory. Default: $HF_HOME/hub.",
        show_default=False,
    ),
]


def literal(value: object, style: str = "") -> Text:
    """``value`` as text rich shows exactly as it is: brackets in it are never read as markup.

    Wrap every piece of user text (queries, documents, file names, error messages) in this before
    it reaches ``console.print``, a table cell or a table title.
    """
    return Text(str(value), style=style)


def line(*parts: str | Text | tuple[str, str]) -> Text:
    """One line from pieces shown literally; a ``(text, style)`` piece is styled.

    Example: ``line(("error:", "bold red"), " ", message)``. No piece is parsed as markup.
    """
    return Text.assemble(*parts)


def quiet_libraries() -> None:
    """Keep third-party progress bars and notices off the user's terminal."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


@contextmanager
def exits_on_error() -> Iterator[None]:
    """Print a rankgate error as one clear line (no traceback) and exit with its code."""
    try:
        yield
    except RankgateError as exc:
        code = next(c for cls, c in EXIT_CODES if isinstance(exc, cls))
        err_console.print(line(("error:", "bold red"), " ", str(exc)), soft_wrap=True)
        raise typer.Exit(code) from None


def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()
