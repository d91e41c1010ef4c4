"""What every command shares: model options (each also a RANKGATE_* variable) and error exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from rankgate.cli.command_settings import OutputSettings
from rankgate.cli.options import setting_option
from rankgate.config import RerankerSettings
from rankgate.errors import (
    AddressInUseError,
    BackendError,
    ConfigError,
    InputError,
    ModelLoadError,
    RankgateError,
)

err_console = Console(stderr=True)

EXIT_CODES: list[tuple[type[RankgateError], int]] = [
    (InputError, 2),
    (ConfigError, 2),
    (ModelLoadError, 3),
    (BackendError, 4),
    (AddressInUseError, 5),
    (RankgateError, 1),
]
EXIT_HELP = (
    "Exit codes: 0 ok, 1 other error (rankgate health: an alert), 2 bad input or settings, "
    "3 model not loadable, 4 model failure, 5 cannot listen on the host and port."
)

_PANEL = "Model options"


def _model(name: str) -> Any:
    return setting_option(RerankerSettings, name, panel=_PANEL)


# Each model option is derived from its RerankerSettings field (type, default, help, environment
# variable), declared once there (rankgate.cli.options).
Model = Annotated[str | None, _model("model")]
Revision = Annotated[str | None, _model("revision")]
Backend = Annotated[str | None, _model("backend")]
OnnxFile = Annotated[str | None, _model("onnx_file")]
Device = Annotated[str | None, _model("device")]
Recipe = Annotated[str | None, _model("recipe")]
DType = Annotated[str | None, _model("dtype")]
MaxLength = Annotated[int | None, _model("max_length")]
LongDocs = Annotated[str | None, _model("long_documents")]
ChunkOverlap = Annotated[int | None, _model("chunk_overlap")]
MaxChunks = Annotated[int | None, _model("max_chunks")]
BatchTokens = Annotated[int | None, _model("batch_tokens")]
MaxBatchSize = Annotated[int | None, _model("max_batch_size")]
BatchOverhead = Annotated[int | None, _model("batch_overhead_tokens")]
Threads = Annotated[int | None, _model("threads")]
ReuseMemory = Annotated[bool | None, _model("reuse_memory")]
PrefixCache = Annotated[bool | None, _model("prefix_cache")]
Packed = Annotated[bool | None, _model("packed")]
CpuMatmul = Annotated[str | None, _model("cpu_matmul")]
Bf16Probe = Annotated[bool | None, _model("bf16_probe")]
Offline = Annotated[bool | None, _model("offline")]
CacheDir = Annotated[Path | None, _model("cache_dir")]
Calibration = Annotated[str | None, _model("calibration")]


# --json is one setting for every command (RANKGATE_JSON), declared once in OutputSettings.
Json = Annotated[bool | None, setting_option(OutputSettings, "as_json")]


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


@contextmanager
def progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (only on a terminal), as a ``(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()
