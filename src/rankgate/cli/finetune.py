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
from rankgate.cli.options import setting_option
from rankgate.learn.finetune import FinetuneOptions

_TRAIN = "Training options"
_MINE = "Mining options"


def _opt(name: str) -> Any:
    return setting_option(FinetuneOptions, name, panel=_TRAIN)


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
    train: Annotated[
        Path,
        typer.Option(
            "--train",
            "-t",
            help="Training rows, JSONL: FlagEmbedding's {query, pos, neg[, pos_scores, "
            "neg_scores]} or sentence-transformers' labeled pairs {query, document, label} or "
            "lists {query, docs, labels}.",
            dir_okay=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Directory for the fine-tuned model (checkpoints in OUT/checkpoints; a rerun "
            "resumes from the newest).",
            file_okay=False,
        ),
    ],
    dev: Annotated[
        Path | None,
        typer.Option(
            help="Held-out rows in the same format: nDCG@10, MRR@10, Recall and ranking health "
            "are measured on them before and after, with a chart.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the before/after chart (PNG). Default: OUT/finetune-dev.png.",
            show_default=False,
        ),
    ] = None,
    index_dir: Annotated[
        Path | None,
        typer.Option(
            "--index-dir",
            "-i",
            rich_help_panel=_MINE,
            help="Mine hard negatives for every row from this index (rankgate index). Without "
            "it, every row must bring its own negatives.",
            show_default=False,
        ),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option(
            envvar="RANKGATE_EMBEDDING_MODEL",
            rich_help_panel=_MINE,
            help="The index's embedding model. Default: the one the funnel uses.",
            show_default=False,
        ),
    ] = None,
    mine_ranks: Annotated[
        str,
        typer.Option(
            rich_help_panel=_MINE,
            help="First-stage ranks to draw negatives from, FIRST-LAST (1-based). The top "
            "ranks are skipped: they are often relevant documents nobody labeled.",
        ),
    ] = "3-100",
    negatives: Annotated[
        int, typer.Option(rich_help_panel=_MINE, help="Negatives to mine per row.", min=1)
    ] = 7,
    teacher: Annotated[
        str | None,
        typer.Option(
            rich_help_panel=_MINE,
            help="A reranker that scores every document (for --loss distill) and, when mining, "
            "vets the candidates: 'self' (the model being tuned) or a hub id or directory.",
            show_default=False,
        ),
    ] = None,
    teacher_margin: Annotated[
        float,
        typer.Option(
            rich_help_panel=_MINE,
            help="With --teacher: drop a candidate whose relevance is above the weakest "
            "positive's minus this margin (a likely unlabeled positive).",
        ),
    ] = 0.05,
    mined: Annotated[
        Path | None,
        typer.Option(
            rich_help_panel=_MINE,
            help="Where to write the rows with their mined negatives and teacher scores (JSONL; "
            "train on it again with --train). Default: OUT/mined.jsonl.",
            show_default=False,
        ),
    ] = None,
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
    as_json: Annotated[bool, typer.Option("--json", help="JSON out instead of a table.")] = False,
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
        model_options: dict[str, Any] = {
            "revision": revision,
            "device": device,
            "max_length": max_length,
            "offline": offline,
            "cache_dir": cache_dir,
        }
        rows = read_rows(train)
        dev_rows = read_rows(dev) if dev else None
        mining = None
        judge = _teacher(teacher, model, model_options)
        if index_dir is not None:
            rows, mining = mine_negatives(
                rows,
                _open_index(index_dir, embedding_model, bool(offline)),
                ranks=parse_ranks(mine_ranks),
                count=negatives,
                teacher=judge,
                margin=teacher_margin,
                seed=options.seed,
            )
        elif judge is not None:
            rows = teacher_scores(rows, judge)
        if mining is not None or judge is not None:
            write_rows(rows, mined or out / "mined.jsonl")
        # Trainer prints its loss logs; stdout is kept for the result (--json).
        with contextlib.redirect_stdout(sys.stderr):
            result = run_finetune(model, rows, out, options=options, dev=dev_rows, **model_options)
        chart_path = None
        if result.before is not None and result.after is not None:
            chart_path = save_comparison_chart(
                result.before, result.after, chart or out / "finetune-dev.png", title=str(dev)
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
        "mined_file": str(mined or out / "mined.jsonl") if mining or judge else None,
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
