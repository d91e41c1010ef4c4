"""``rankgate rerank``: rank documents from a file or stdin.

Its per-call options are derived from :class:`~rankgate.cli.rerank_settings.RerankCallSettings`,
its model options from :class:`~rankgate.config.RerankerSettings` (:mod:`rankgate.cli.options`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from rankgate.cli import common
from rankgate.cli.loading import load_reranker
from rankgate.cli.options import setting_option, settings_from
from rankgate.cli.rerank_settings import RerankCallSettings
from rankgate.errors import InputError
from rankgate.types import Document, RerankResult

PROGRESS_MIN_DOCUMENTS = 32


def read_documents(stream: TextIO, fmt: str) -> list[Document]:
    """Documents from JSON Lines (objects with ``text`` and any metadata) or plain lines.

    ``auto`` reads JSON Lines when the first non-blank line starts with ``{``.

    Raises:
        InputError: a JSON Lines line that is not a JSON object.
    """
    lines = [(n, line.rstrip("\n")) for n, line in enumerate(stream, 1) if line.strip()]
    if fmt == "auto":
        fmt = "jsonl" if lines and lines[0][1].lstrip().startswith("{") else "lines"
    if fmt == "lines":
        return [line for _, line in lines]
    docs: list[Document] = []
    for n, line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise InputError(f"line {n}: expected a JSON object with a 'text' field")
        docs.append(value)
    return docs


def _preview(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _notes(r: RerankResult) -> str:
    notes = []
    if r.chunks > 1:
        notes.append(f"{r.chunks} windows")
    if r.truncated:
        notes.append("truncated")
    return ", ".join(notes)


def _table(query: str, results: list[RerankResult], raw: bool) -> Table:
    table = Table(title=common.literal(f"Query: {query}"), title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("logit" if raw else "score", justify="right")
    table.add_column("doc", justify="right")
    table.add_column("text")
    table.add_column("notes", style="dim")
    for rank, r in enumerate(results, 1):
        table.add_row(
            str(rank), f"{r.score:.4f}", str(r.index), common.literal(_preview(r.text)), _notes(r)
        )
    return table


def _json_line(rank: int, r: RerankResult) -> str:
    out: dict[str, Any] = {
        "rank": rank,
        "index": r.index,
        "score": r.score,
        "document": r.document,
        "truncated": r.truncated,
        "chunks": r.chunks,
    }
    return json.dumps(out, ensure_ascii=False)


def _call(name: str) -> Any:
    return setting_option(RerankCallSettings, name)


def rerank(
    query: Annotated[str, _call("query")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="JSON Lines (objects with 'text' and metadata) or plain lines; "
            "'-' or nothing reads stdin.",
            show_default=False,
        ),
    ] = None,
    top_n: Annotated[int | None, _call("top_n")] = None,
    as_json: common.Json = None,
    raw_scores: Annotated[bool | None, _call("raw_scores")] = None,
    rank_fields: Annotated[list[str] | None, _call("rank_fields")] = None,
    format: Annotated[str | None, _call("format")] = None,
    instruction: Annotated[str | None, _call("instruction")] = None,
    model: common.Model = None,
    revision: common.Revision = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    onnx_file: common.OnnxFile = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    long_documents: common.LongDocs = None,
    calibration: common.Calibration = None,
    chunk_overlap: common.ChunkOverlap = None,
    max_chunks: common.MaxChunks = None,
    batch_tokens: common.BatchTokens = None,
    max_batch_size: common.MaxBatchSize = None,
    batch_overhead_tokens: common.BatchOverhead = None,
    threads: common.Threads = None,
    reuse_memory: common.ReuseMemory = None,
    prefix_cache: common.PrefixCache = None,
    packed: common.Packed = None,
    cpu_matmul: common.CpuMatmul = None,
    bf16_probe: common.Bf16Probe = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Rank documents by relevance to a query, best first."""
    with common.exits_on_error():
        s = settings_from(RerankCallSettings, locals(), "rerank settings")
        fmt = s.format
        if fmt not in {"auto", "jsonl", "lines"}:
            raise InputError(f"--format must be auto, jsonl or lines, not {fmt!r}")
        if file is None or str(file) == "-":
            if common.stdin_is_terminal():
                raise InputError("give a FILE of documents, or pipe them on stdin")
            documents = read_documents(sys.stdin, fmt)
        else:
            try:
                with file.open(encoding="utf-8") as stream:
                    documents = read_documents(stream, fmt)
            except OSError as exc:
                raise InputError(f"cannot read {file}: {exc.strerror}") from None
        reranker = load_reranker(locals())
        show_progress = len(documents) >= PROGRESS_MIN_DOCUMENTS and common.err_console.is_terminal
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=common.err_console,
            transient=True,
            disable=not show_progress,
        ) as bar:
            task = bar.add_task("scoring pairs", total=None)
            results = reranker.rerank(
                s.query,
                documents,
                top_n=s.top_n,
                normalize=not s.raw_scores,
                rank_fields=s.rank_fields,
                instruction=s.instruction,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    if as_json:
        for rank, r in enumerate(results, 1):
            typer.echo(_json_line(rank, r))
    else:
        Console(soft_wrap=False).print(_table(s.query, results, s.raw_scores))
