"""``rankgate info`` and ``rankgate download``."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rankgate.cli import common
from rankgate.cli.command_settings import DownloadSettings
from rankgate.cli.loading import load_reranker
from rankgate.cli.options import setting_option, settings_from
from rankgate.types import DEFAULT_MODEL


def info(
    as_json: common.Json = None,
    model: common.Model = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    onnx_file: common.OnnxFile = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    long_documents: common.LongDocs = None,
    calibration: common.Calibration = None,
    threads: common.Threads = None,
    packed: common.Packed = None,
    cpu_matmul: common.CpuMatmul = None,
    bf16_probe: common.Bf16Probe = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Load the model and show what runs: model, device, dtype, max_length, parameters."""
    with common.exits_on_error():
        reranker = load_reranker(locals())
    details = dataclasses.asdict(reranker.info())
    if as_json:
        typer.echo(json.dumps(details))
        return
    table = Table(show_header=False)
    for key, value in details.items():
        shown = (
            f"{value:,}"
            if key == "parameters"
            else (f"{value:.2f} s" if key == "load_seconds" else str(value))
        )
        table.add_row(key.replace("_", " "), common.literal(shown))
    Console().print(table)


def download(
    model: Annotated[str, typer.Argument(help="Hub id to fetch.")] = DEFAULT_MODEL,
    revision: common.Revision = None,
    onnx: Annotated[bool | None, setting_option(DownloadSettings, "onnx")] = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Download a model into the Hugging Face cache, for later offline use."""
    from rankgate.backends.hub import MODEL_PATTERNS, ONNX_PATTERNS, download_model

    with common.exits_on_error():
        fetch = settings_from(DownloadSettings, locals(), "download settings")
        path = download_model(
            model,
            revision=revision,
            cache_dir=cache_dir,
            patterns=ONNX_PATTERNS if fetch.onnx else MODEL_PATTERNS,
        )
    typer.echo(str(path))
