"""``rankgate export``: write an ONNX copy of a model for the onnx backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rankgate.cli import common


def export(
    model: Annotated[str, typer.Argument(help="Hub id or local directory of the model to export.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Directory to write (created; existing files are replaced).",
            file_okay=False,
        ),
    ],
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write model_int8.onnx (dynamic int8 quantization: smaller and faster "
            "on CPU, scores move slightly).",
        ),
    ] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset version.", min=14)] = 17,
    optimize: Annotated[
        bool,
        typer.Option(
            help="Fuse attention/GELU/LayerNorm into onnxruntime's transformer kernels "
            "(verified against torch either way)."
        ),
    ] = True,
    revision: Annotated[
        str | None, typer.Option(help="Hub branch, tag or commit.", show_default=False)
    ] = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Export a cross-encoder to ONNX; serve it with --backend onnx --model OUT.

    Needs torch and transformers (the torch extra) to export; serving the result needs neither.
    """
    from rankgate.backends.onnx_export import export_onnx

    with common.exits_on_error():
        common.quiet_libraries()
        result = export_onnx(
            model,
            out,
            int8=int8,
            opset=opset,
            optimize=optimize,
            revision=revision,
            cache_dir=cache_dir,
            offline=bool(offline),
        )
    typer.echo(
        f"wrote {result.model_file} (max |onnx - torch| logit difference {result.max_abs_diff:.1e})"
    )
    if result.int8_file is not None:
        typer.echo(f"wrote {result.int8_file}")
