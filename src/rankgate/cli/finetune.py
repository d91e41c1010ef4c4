"""``rankgate finetune``: train a cross-encoder on the user's data, with mined hard negatives."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rankgate.cli import common
from rankgate.cli.options import setting_option, settings_from
from rankgate.funnel.settings import FunnelSettings
from rankgate.learn.finetune import FinetuneJob, FinetuneOptions

_DATA = "Data options"
_TRAIN = "Training options"
_MINE = "Mining options"


def _opt(name: str) -> Any:
    return setting_option(FinetuneOptions, name, panel=_TRAIN)


def _job(name: str, panel: str) -> Any:
    return setting_option(FinetuneJob, name, panel=panel)


LossOpt = Annotated[str | None, _opt("loss")]
GroupSize = Annotated[int | None, _opt("group_size")]
BatchSize = Annotated[int | None, _opt("batch_size")]
Epochs = Annotated[float | None, _opt("epochs")]
MaxSteps = Annotated[int | None, _opt("max_steps")]
LearningRate = Annotated[float | None, _opt("learning_rate")]
WarmupRatio = Annotated[float | None, _opt("warmup_ratio")]
WeightDecay = Annotated[float | None, _opt("weight_decay")]
Temperature = Annotated[float | None, _opt("temperature")]
Seed = Annotated[int | None, _opt("seed")]
SaveSteps = Annotated[int | None, _opt("save_steps")]
SaveTotalLimit = Annotated[int | None, _opt("save_total_limit")]
PrecisionOpt = Annotated[str | None, _opt("precision")]
GradientCheckpointing = Annotated[bool | None, _opt("gradient_checkpointing")]
GradientAccumulation = Annotated[int | None, _opt("gradient_accumulation_steps")]
LoggingSteps = Annotated[int | None, _opt("logging_steps")]
Resume = Annotated[bool | None, _opt("resume")]
ProgressOpt = Annotated[bool | None, _opt("progress")]

TRAINING_OPTIONS = tuple(FinetuneOptions.model_fields)


def _report_table(result: Any) -> Table:
    from rankgate.learn.report import MEASURES

    table = Table(title="dev set, before and after fine-tuning")
    table.add_column("measure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    rows: list[tuple[str, float | None, float | None]] = [
        (m.replace("RR@", "MRR@"), result.before.measures[m], result.after.measures[m])
        for m in MEASURES
    ]
    rows += [
        ("top-1 displaced", result.before.top1_displaced, result.after.top1_displaced),
        ("top-1/top-2 gap", result.before.mean_gap, result.after.mean_gap),
        ("low-score share", result.before.low_share, result.after.low_share),
    ]
    for name, before, after in rows:
        table.add_row(name, *("-" if v is None else f"{v:.3f}" for v in (before, after)))
    return table


def finetune(
    model: Annotated[
        str, typer.Argument(help="Hub id or local directory of the cross-encoder to start from.")
    ],
    train: Annotated[Path, _job("train", _DATA)],
    out: Annotated[Path, _job("out", _DATA)],
    dev: Annotated[Path | None, _job("dev", _DATA)] = None,
    chart: Annotated[Path | None, _job("chart", _DATA)] = None,
    index_dir: Annotated[Path | None, _job("index_dir", _MINE)] = None,
    embedding_model: Annotated[
        str | None, setting_option(FunnelSettings, "embedding_model", panel=_MINE)
    ] = None,
    mine_ranks: Annotated[str | None, _job("mine_ranks", _MINE)] = None,
    negatives: Annotated[int | None, _job("negatives", _MINE)] = None,
    teacher: Annotated[str | None, _job("teacher", _MINE)] = None,
    teacher_margin: Annotated[float | None, _job("teacher_margin", _MINE)] = None,
    mined: Annotated[Path | None, _job("mined", _MINE)] = None,
    loss: LossOpt = None,
    group_size: GroupSize = None,
    batch_size: BatchSize = None,
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    learning_rate: LearningRate = None,
    warmup_ratio: WarmupRatio = None,
    weight_decay: WeightDecay = None,
    temperature: Temperature = None,
    seed: Seed = None,
    save_steps: SaveSteps = None,
    save_total_limit: SaveTotalLimit = None,
    precision: PrecisionOpt = None,
    gradient_checkpointing: GradientCheckpointing = None,
    gradient_accumulation_steps: GradientAccumulation = None,
    logging_steps: LoggingSteps = None,
    resume: Resume = None,
    progress: ProgressOpt = None,
    as_json: common.Json = None,
    revision: common.Revision = None,
    device: common.Device = None,
    max_length: common.MaxLength = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Fine-tune a cross-encoder (bge-reranker-v2-m3 and other one-logit encoders).

    Pairs are built and cut exactly as inference builds them (same --max-length).
    With --index-dir, hard negatives are mined from your own first stage.
    The output is a plain checkpoint that FlagReranker, CrossEncoder, TEI and
    vLLM load unchanged.

    Example: rankgate finetune ./model --train t.jsonl --index-dir idx --out tuned
    """
    from rankgate.learn import finetune as run_finetune
    from rankgate.learn import (
        finetune_options,
        mine_negatives,
        parse_ranks,
        read_rows,
        save_comparison_chart,
        teacher_scores,
        write_rows,
    )

    given = locals()
    with common.exits_on_error():
        common.quiet_libraries()
        options = finetune_options(**{n: given[n] for n in TRAINING_OPTIONS})
        job = settings_from(FinetuneJob, given, "fine-tuning options")
        out = job.out
        model_options: dict[str, Any] = {
            "revision": revision,
            "device": device,
            "max_length": max_length,
            "offline": offline,
            "cache_dir": cache_dir,
        }
        rows = read_rows(job.train)
        dev_rows = read_rows(job.dev) if job.dev else None
        mining = None
        judge = _teacher(job.teacher, model, model_options)
        if job.index_dir is not None:
            rows, mining = mine_negatives(
                rows,
                _open_index(job.index_dir, embedding_model, bool(offline)),
                ranks=parse_ranks(job.mine_ranks),
                count=job.negatives,
                teacher=judge,
                margin=job.teacher_margin,
                seed=options.seed,
            )
        elif judge is not None:
            rows = teacher_scores(rows, judge)
        if mining is not None or judge is not None:
            write_rows(rows, job.mined or out / "mined.jsonl")
        # Trainer prints its loss logs; stdout is kept for the result (--json).
        with contextlib.redirect_stdout(sys.stderr):
            result = run_finetune(model, rows, out, options=options, dev=dev_rows, **model_options)
        chart_path = None
        if result.before is not None and result.after is not None:
            chart_path = save_comparison_chart(
                result.before,
                result.after,
                job.chart or out / "finetune-dev.png",
                title=str(job.dev),
            )
    summary = {
        "out": str(result.out),
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "train_loss": result.train_loss,
        "seconds": round(result.seconds, 1),
        "pairs": result.pairs,
        "pairs_truncated": result.pairs_truncated,
        "mined": None if mining is None else asdict(mining),
        "mined_file": str(job.mined or out / "mined.jsonl") if mining or judge else None,
        "dev_before": result.before.to_dict() if result.before else None,
        "dev_after": result.after.to_dict() if result.after else None,
        "chart": str(chart_path) if chart_path else None,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = Console(soft_wrap=False)
    if mining is not None:
        console.print(
            common.literal(
                f"mined {mining.negatives} negatives for {mining.rows} rows "
                f"({mining.skipped_as_positive} candidates skipped as positives, "
                f"{mining.dropped_by_teacher} dropped by the teacher, {mining.short_rows} rows "
                f"short); written to {summary['mined_file']}"
            )
        )
    console.print(
        common.literal(
            f"trained {result.steps} steps in {result.seconds:.0f} s"
            + (f" (resumed from {result.resumed_from})" if result.resumed_from else "")
            + f"; {result.pairs_truncated} of {result.pairs} pairs cut to max_length"
        )
    )
    if result.before is not None and result.after is not None:
        console.print(_report_table(result))
        console.print(common.literal(f"chart: {chart_path}"))
    console.print(common.literal(f"model: {result.out}"))


def _teacher(teacher: str | None, model: str, model_options: dict[str, Any]) -> Any:
    if teacher is None:
        return None
    from rankgate.engine import Reranker

    return Reranker(model if teacher == "self" else teacher, **model_options)


def _open_index(index_dir: Path, embedding_model: str | None, offline: bool) -> Any:
    from rankgate.funnel.factory import load_embedder
    from rankgate.funnel.index import LocalIndex
    from rankgate.funnel.settings import build_funnel_settings

    settings = build_funnel_settings(index_dir=index_dir, embedding_model=embedding_model)
    return LocalIndex.open(settings.index_dir, load_embedder(settings, offline=offline))
