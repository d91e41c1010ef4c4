"""``rankgate calibrate``: fit a calibration of a model's scores on judged pairs."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rankgate.cli import common
from rankgate.cli.calibrate_settings import CalibrateSettings
from rankgate.cli.loading import load_reranker
from rankgate.cli.options import setting_option, settings_from
from rankgate.engine.calibration import CALIBRATION_FILE, Calibration, Threshold
from rankgate.errors import InputError
from rankgate.insight.calibration_fit import calibrate
from rankgate.insight.labels import read_labels

_PANEL = "Calibration options"
_calibrate = functools.partial(setting_option, CalibrateSettings, panel=_PANEL)


def _output(model: str, out: Path | None) -> Path:
    if out is not None:
        return out / CALIBRATION_FILE if out.is_dir() else out
    model_dir = Path(model).expanduser()
    if model_dir.is_dir():
        return model_dir / CALIBRATION_FILE
    raise InputError(
        f"{model} is not a local directory, so there is no model directory to write the "
        "calibration into: say where with --out PATH (then load it with --calibration PATH "
        "or RANKGATE_CALIBRATION=PATH)"
    )


def calibrate_command(
    model: Annotated[
        str, typer.Argument(help="Hub id or local directory of the reranker to calibrate.")
    ],
    labels: Annotated[Path | None, _calibrate("labels")] = None,
    out: Annotated[Path | None, _calibrate("out")] = None,
    plot: Annotated[Path | None, _calibrate("plot")] = None,
    precision: Annotated[float | None, _calibrate("precision")] = None,
    recall: Annotated[float | None, _calibrate("recall")] = None,
    folds: Annotated[int | None, _calibrate("folds")] = None,
    bins: Annotated[int | None, _calibrate("bins")] = None,
    as_json: common.Json = None,
    revision: common.Revision = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    onnx_file: common.OnnxFile = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    long_documents: common.LongDocs = None,
    chunk_overlap: common.ChunkOverlap = None,
    max_chunks: common.MaxChunks = None,
    batch_tokens: common.BatchTokens = None,
    max_batch_size: common.MaxBatchSize = None,
    threads: common.Threads = None,
    prefix_cache: common.PrefixCache = None,
    packed: common.Packed = None,
    cpu_matmul: common.CpuMatmul = None,
    bf16_probe: common.Bf16Probe = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Calibrate MODEL's scores to the probability that a document is relevant.

    The judged pairs are scored as the model serves them (same --max-length).
    Platt scaling and isotonic regression are fitted; the lower held-out Brier
    score wins. Writes the calibration (JSON) and a reliability diagram (PNG),
    and reports the expected calibration error before and after. The library,
    rankgate serve and the funnel's min_score rule then use the calibration.

    Example: rankgate calibrate ./my-model --labels judged.jsonl --precision 0.9
    """
    with common.exits_on_error():
        s = settings_from(CalibrateSettings, locals(), "calibrate settings")
        path = _output(model, s.out)
        plot_path = s.plot if s.plot is not None else path.with_suffix(".png")
        judged = read_labels(s.labels)
        # Fitted on the model's own scores: a calibration it already has must not apply.
        reranker = load_reranker({**locals(), "calibration": "none"})
        with common.progress("scoring judged pairs") as progress:
            report = calibrate(
                reranker,
                judged,
                folds=s.folds,
                bins=s.bins,
                precision=s.precision,
                recall=s.recall,
                progress=progress,
            )
        saved = report.calibration.save(path)
        from rankgate.insight.charts import reliability_chart

        reliability_chart(report, plot_path)
    if as_json:
        body = {**saved.to_dict(), "file": str(path), "plot": str(plot_path)}
        typer.echo(json.dumps(body))
        return
    _print_report(saved, model, path, plot_path, beside=s.out is None)


def _print_report(cal: Calibration, model: str, path: Path, plot: Path, *, beside: bool) -> None:
    console = Console(soft_wrap=True)
    console.print(
        common.line(
            "calibrated ",
            common.literal(model, "bold"),
            f" on {cal.rows} judged pairs ({cal.relevant} relevant) from ",
            common.literal(cal.labels or "the labels"),
        )
    )
    table = Table(
        title=f"held-out error, {cal.folds}-fold cross-validation (lower is better)",
        title_justify="left",
    )
    for name, justify in [("method", "left"), ("Brier", "right"), ("log loss", "right")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("")
    for name, held in cal.held_out.items():
        chosen = "chosen" if name == cal.method else ""
        table.add_row(name, f"{held.brier:.4f}", f"{held.log_loss:.4f}", chosen)
    console.print(table)
    console.print(
        f"expected calibration error ({cal.bins} equal-width bins, held-out): "
        f"{cal.ece_before:.3f} before (sigmoid) -> {cal.ece_after:.3f} after ({cal.method})"
    )
    for t in cal.thresholds:
        console.print(_threshold_line(t))
    console.print(common.line("wrote ", common.literal(path)))
    console.print(common.line("wrote ", common.literal(plot), " (reliability diagram)"))
    if beside:
        console.print(
            "Loading the model from its directory now applies it (--calibration none turns it "
            "off): the library's and the server's scores are calibrated probabilities, raw "
            "logits are unchanged."
        )
    else:
        console.print(
            common.line(
                "Use it with --calibration ",
                common.literal(path),
                " (rankgate serve, rerank, search, info) or RANKGATE_CALIBRATION=",
                common.literal(path),
                " (any command, and the library).",
            )
        )


def _threshold_line(t: Threshold) -> str:
    stats = f"precision {t.precision:.3f}, recall {t.recall:.3f}, keeps {t.kept:.1%} of the pairs"
    if t.met:
        return (
            f"{t.target} >= {t.goal:g}: keep scores >= {t.threshold:.4f} ({stats}); as a funnel "
            f"rule: min_score = {t.threshold:.4f}"
        )
    return (
        f"{t.target} >= {t.goal:g} cannot be met on these pairs; the best is scores >= "
        f"{t.threshold:.4f} ({stats})"
    )
