"""``rankgate export``: write an ONNX copy of a model for the onnx backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rankgate.backends.onnx_export import ExportSettings, export_onnx
from rankgate.cli import common
from rankgate.cli.options import setting_option, settings_from

_PANEL = "Export options"


def _export(name: str) -> Any:
    return setting_option(ExportSettings, name, panel=_PANEL)


def export(
    model: Annotated[str, typer.Argument(help="Hub id or local directory of the model to export.")],
    out: Annotated[Path, _export("out")],
    int8: Annotated[bool | None, _export("int8")] = None,
    opset: Annotated[int | None, _export("opset")] = None,
    optimize: Annotated[bool | None, _export("optimize")] = None,
    revision: common.Revision = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Export a cross-encoder to ONNX; serve it with --backend onnx --model OUT.

    Needs torch and transformers (the torch extra) to export; serving the result needs neither.
    """
    with common.exits_on_error():
        settings = settings_from(ExportSettings, locals(), "export settings")
        common.quiet_libraries()
        result = export_onnx(
            model,
            settings.out,
            int8=settings.int8,
            opset=settings.opset,
            optimize=settings.optimize,
            revision=revision,
            cache_dir=cache_dir,
            offline=bool(offline),
        )
    typer.echo(
        f"wrote {result.model_file} (max |onnx - torch| logit difference {result.max_abs_diff:.1e})"
    )
    if result.int8_file is not None:
        typer.echo(f"wrote {result.int8_file}")
