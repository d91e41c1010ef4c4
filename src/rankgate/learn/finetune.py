"""Fine-tuning a cross-encoder on the user's data with transformers' ``Trainer``.

The pairs are built by the same code that builds them at inference (:class:`PairBuilder`, same
``max_length``, query kept to 3/4 of it, document cut), so what the model learns from is exactly
what it will be asked. Each step takes ``batch_size`` queries, each with a group of one positive
and ``group_size - 1`` negatives, as FlagEmbedding's reranker training does:

- ``group-ce`` (default): cross-entropy over each group, the positive as the class
  (FlagEmbedding's loss);
- ``bce``: binary cross-entropy of every pair against its 0/1 label;
- ``distill``: with teacher scores (``pos_scores`` / ``neg_scores``, or mined with a teacher),
  the group's softmax is pulled to the teacher's (soft-label cross-entropy, temperature ``T``).

``Trainer`` brings the progress bar, checkpoints, resuming after a kill, seeding, fp16/bf16 on
GPU and gradient checkpointing. The result is a plain checkpoint (config, safetensors weights,
the tokenizer files) that FlagReranker, sentence-transformers' CrossEncoder,
text-embeddings-inference and vLLM load unchanged.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.backends.base import EncodedPair, pad_batch
from rankgate.config import RerankerSettings, build_settings, settings_or_error
from rankgate.engine import Reranker
from rankgate.engine.reranker import FINETUNE_RECORD
from rankgate.errors import ConfigError, MissingDependencyError, TrainingDataError
from rankgate.learn.data import TrainingRow, check_rows
from rankgate.learn.report import DevReport, dev_report

__all__ = [
    "FINETUNE_FILE",
    "FinetuneJob",
    "FinetuneOptions",
    "FinetuneResult",
    "Loss",
    "finetune",
    "finetune_options",
]

log = logging.getLogger(__name__)

Loss = Literal["group-ce", "bce", "distill"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]

FINETUNE_FILE = FINETUNE_RECORD
"""Written beside the fine-tuned weights: the base model, the data, the options, the reports."""

# Everything of a model directory but its weights and config: the tokenizer, in every layout.
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


class FinetuneOptions(BaseSettings):
    """How to train; each option is also a ``RANKGATE_FINETUNE_*`` variable. The defaults follow
    FlagEmbedding's reranker recipe where it has one."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_FINETUNE_", frozen=True, extra="forbid")

    loss: Loss = Field(
        "group-ce",
        description="group-ce: cross-entropy over each group, the positive as the class "
        "(FlagEmbedding's); bce: each pair against its 0/1 label; distill: the group's softmax "
        "pulled to the teacher's scores (needs pos_scores/neg_scores, e.g. mined with --teacher).",
    )
    group_size: int = Field(
        8,
        ge=2,
        description="Documents per query in a step: 1 positive + group_size-1 negatives "
        "(FlagEmbedding's train_group_size). A row with fewer negatives repeats them.",
    )
    batch_size: int = Field(4, ge=1, description="Queries per step (each brings group_size pairs).")
    epochs: float = Field(1.0, gt=0, description="Passes over the rows (unless --max-steps).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides --epochs)."
    )
    learning_rate: float = Field(2e-5, gt=0, description="Peak AdamW learning rate.")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="Share of the steps the learning rate warms up over."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    temperature: float = Field(1.0, gt=0, description="Distillation temperature.")
    seed: int = Field(
        42, description="Seeds the weights' dropout, the groups drawn and the data order."
    )
    save_steps: int = Field(
        200, ge=1, description="A checkpoint every this many steps (a rerun resumes from it)."
    )
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept in OUT/checkpoints.")
    precision: Precision = Field(
        "auto", description="auto: bf16 (else fp16) on CUDA, fp32 on CPU; or fp32, fp16, bf16."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, slower."
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Steps whose gradients add up before one update."
    )
    logging_steps: int = Field(10, ge=1, description="Log the loss every this many steps.")
    resume: bool = Field(
        True, description="Continue from the newest checkpoint in OUT/checkpoints, if any."
    )
    progress: bool = Field(True, description="Show the progress bar.")


class FinetuneJob(BaseSettings):
    """What ``rankgate finetune`` trains on, where it writes, and how it mines negatives.

    The same ``RANKGATE_FINETUNE_`` prefix as :class:`FinetuneOptions`, with other names (a test
    keeps them apart); ``index_dir`` is not the funnel's ``RANKGATE_INDEX_DIR``, since naming an
    index turns mining on.
    """

    model_config = SettingsConfigDict(env_prefix="RANKGATE_FINETUNE_", frozen=True, extra="forbid")

    train: Path = Field(
        description="Training rows, JSONL: FlagEmbedding's {query, pos, neg[, pos_scores, "
        "neg_scores]} or sentence-transformers' labeled pairs {query, document, label} or "
        "lists {query, docs, labels}.",
        json_schema_extra={"flags": ["--train", "-t"]},
    )
    out: Path = Field(
        description="Directory for the fine-tuned model (checkpoints in OUT/checkpoints; a rerun "
        "resumes from the newest).",
        json_schema_extra={"flags": ["--out", "-o"]},
    )
    dev: Path | None = Field(
        None,
        description="Held-out rows in the same format: nDCG@10, MRR@10, Recall and ranking health "
        "are measured on them before and after, with a chart.",
    )
    chart: Path | None = Field(
        None,
        description="Where to write the before/after chart (PNG).",
        json_schema_extra={"default_text": "OUT/finetune-dev.png"},
    )
    index_dir: Path | None = Field(
        None,
        description="Mine hard negatives for every row from this index (rankgate index).",
        json_schema_extra={
            "flags": ["--index-dir", "-i"],
            "default_text": "no mining: every row brings its own negatives",
        },
    )
    mine_ranks: str = Field(
        "3-100",
        description="First-stage ranks to draw negatives from, FIRST-LAST (1-based). The top "
        "ranks are skipped: they are often relevant documents nobody labeled.",
    )
    negatives: int = Field(7, ge=1, description="Negatives to mine per row.")
    teacher: str | None = Field(
        None,
        description="A reranker that scores every document (for --loss distill) and, when mining, "
        "vets the candidates: 'self' (the model being tuned) or a hub id or directory.",
    )
    teacher_margin: float = Field(
        0.05,
        description="With --teacher: drop a candidate whose relevance is above the weakest "
        "positive's minus this margin (a likely unlabeled positive).",
    )
    mined: Path | None = Field(
        None,
        description="Where to write the rows with their mined negatives and teacher scores (JSONL; "
        "train on it again with --train).",
        json_schema_extra={"default_text": "OUT/mined.jsonl"},
    )

    @field_validator("train", "dev")
    @classmethod
    def _a_file(cls, path: Path | None) -> Path | None:
        if path is not None and path.is_dir():
            raise ValueError(f"{path} is a directory, not a file")
        return path

    @field_validator("out")
    @classmethod
    def _a_directory(cls, path: Path) -> Path:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file, not a directory")
        return path


def finetune_options(**overrides: Any) -> FinetuneOptions:
    """Options from explicit values (``None`` ignored), ``RANKGATE_FINETUNE_*`` and defaults.

    Raises:
        ConfigError: a value is invalid; the message names the option.
    """
    return settings_or_error(FinetuneOptions, "fine-tuning options", overrides, unnamed="options")


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """Where the model went and what training did."""

    out: Path
    steps: int
    resumed_from: str | None
    train_loss: float | None
    seconds: float
    pairs_truncated: int
    pairs: int
    before: DevReport | None = None
    after: DevReport | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)


def _imports() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingDependencyError("transformers", "train", "rankgate finetune") from None
    try:
        import accelerate  # noqa: F401  # Trainer needs it; a clear error beats its own
    except ImportError:
        raise MissingDependencyError("accelerate", "train", "rankgate finetune") from None
    return torch, transformers


class _Groups:
    """Training groups; the draw of each depends only on (seed, epoch, index), so a resumed run
    sees the groups an uninterrupted one would."""

    def __init__(
        self,
        encoded: list[tuple[list[EncodedPair], list[EncodedPair]]],
        rows: Sequence[TrainingRow],
        group_size: int,
        seed: int,
        teacher: bool,
    ) -> None:
        self.encoded = encoded
        self.rows = rows
        self.group_size = group_size
        self.seed = seed
        self.teacher = teacher
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        pos, neg = self.encoded[index]
        row = self.rows[index]
        p = rng.randrange(len(pos))
        wanted = self.group_size - 1
        if len(neg) >= wanted:
            picks = rng.sample(range(len(neg)), wanted)
        else:  # FlagEmbedding repeats a short negative list rather than shrink the group
            picks = rng.sample(list(range(len(neg))) * (wanted // len(neg) + 1), wanted)
        item: dict[str, Any] = {
            "pairs": [pos[p], *(neg[i] for i in picks)],
            "labels": [1.0] + [0.0] * wanted,
        }
        if self.teacher:
            item["teacher"] = [row.pos_scores[p], *(row.neg_scores[i] for i in picks)]
        return item


def _collate(pad_token_id: int, torch: Any) -> Any:
    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = [pair for item in items for pair in item["pairs"]]
        ids, mask, types = pad_batch(pairs, pad_token_id)
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.tensor([v for item in items for v in item["labels"]]),
        }
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        if "teacher" in items[0]:
            batch["teacher"] = torch.tensor([v for item in items for v in item["teacher"]])
        return batch

    return collate


def _loss(options: FinetuneOptions, torch: Any) -> Any:
    functional = torch.nn.functional
    group, temperature = options.group_size, options.temperature

    def compute(logits: Any, labels: Any, teacher: Any) -> Any:
        logits = logits.float()
        if options.loss == "bce":
            return functional.binary_cross_entropy_with_logits(logits, labels.float())
        scores = logits.view(-1, group)
        if options.loss == "distill":
            target = torch.softmax(teacher.float().view(-1, group) / temperature, dim=-1)
            log_probs = torch.log_softmax(scores / temperature, dim=-1)
            return -(target * log_probs).sum(dim=-1).mean()
        positive = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
        return functional.cross_entropy(scores, positive)

    return compute


def _trainer_class(transformers: Any) -> Any:
    class RerankTrainer(transformers.Trainer):
        def __init__(self, *args: Any, rerank_loss: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rerank_loss = rerank_loss
            # The loss is a mean per step: let Trainer scale it for gradient accumulation.
            self.model_accepts_loss_kwargs = False

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.pop("labels")
            teacher = inputs.pop("teacher", None)
            logits = model(**inputs).logits[:, 0]
            loss = self.rerank_loss(logits, labels, teacher)
            return (loss, {"logits": logits}) if return_outputs else loss

    return RerankTrainer


def _epoch_callback(transformers: Any, groups: _Groups) -> Any:
    class EpochSeed(transformers.TrainerCallback):
        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            groups.epoch = int(state.epoch or 0)

    return EpochSeed()


def _checkpointing(transformers: Any, on: bool) -> dict[str, bool]:
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing.
    fields = transformers.TrainingArguments.__dataclass_fields__
    return {
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing": on
    }


def _precision(options: FinetuneOptions, device: str, torch: Any) -> dict[str, bool]:
    wanted = options.precision
    if wanted == "auto":
        if not device.startswith("cuda"):
            return {}
        wanted = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if wanted != "fp32" and not device.startswith("cuda"):
        raise ConfigError(f"precision {wanted} needs a CUDA device; on {device} use fp32")
    return {"bf16": wanted == "bf16", "fp16": wanted == "fp16"}


def _encode(
    reranker: Reranker, rows: Sequence[TrainingRow]
) -> tuple[list[tuple[list[EncodedPair], list[EncodedPair]]], int, int]:
    encoded, truncated, total = [], 0, 0
    for row in rows:
        plans = reranker.prepare(row.query, [*row.pos, *row.neg], long_documents="truncate").plans
        pairs = [plan.pairs[0] for plan in plans]
        truncated += sum(plan.truncated or plan.query_truncated for plan in plans)
        total += len(plans)
        encoded.append((pairs[: len(row.pos)], pairs[len(row.pos) :]))
    return encoded, truncated, total


def _starting_point(
    settings: RerankerSettings, out: Path, transformers: Any, seed: int
) -> tuple[Path, bool]:
    """The model directory to train, and whether it got a new one-logit head.

    A reranker (one output logit) is trained as it is. A base encoder (``BertModel``,
    ``XLMRobertaModel``, an embedding model, or a classifier with several labels) gets a fresh
    one-logit sequence-classification head first, saved under ``OUT/start``, as FlagEmbedding
    and sentence-transformers do when they train a reranker from a base model.
    """
    from rankgate.backends.hub import resolve_model_dir
    from rankgate.backends.tokenization import read_config

    source = resolve_model_dir(
        settings.model,
        revision=settings.revision,
        cache_dir=settings.cache_dir,
        offline=settings.offline,
    )
    from rankgate.backends.decoder import is_causal_lm

    if is_causal_lm(source):
        raise ConfigError(
            f"'{settings.model}' is a decoder (LLM) reranker; rankgate finetune trains "
            "cross-encoders (bge-reranker-v2-m3 and other one-logit encoders). LoRA fine-tuning "
            "of decoder rerankers is not built yet"
        )
    config = read_config(source)
    architectures = config.get("architectures") or []
    labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 2))
    if labels == 1 and any(a.endswith("ForSequenceClassification") for a in architectures):
        return source, False
    start = out / "start"
    if not (start / "config.json").is_file():
        log.info("%s is not a one-logit reranker: training a new head on it", settings.model)
        transformers.set_seed(seed)
        head = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(source), num_labels=1
        )
        head.save_pretrained(str(start))
        _copy_tokenizer(source, start)
    return start, True


def _copy_tokenizer(source: Path, out: Path) -> None:
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint. Trainer writes ``trainer_state.json`` last, so a run
    killed while saving leaves a folder without it (or with it cut short): that one is skipped."""
    if not folder.is_dir():
        return None
    found = []
    for path in folder.glob("checkpoint-*"):
        if path.is_dir() and path.name.removeprefix("checkpoint-").isdigit():
            found.append((int(path.name.removeprefix("checkpoint-")), path))
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            log.warning("skipping %s: it was not completely written", path)
            continue
        return str(path)
    return None


def finetune(
    model: str,
    rows: Sequence[TrainingRow],
    out: Path,
    *,
    options: FinetuneOptions | None = None,
    settings: RerankerSettings | None = None,
    dev: Sequence[TrainingRow] | None = None,
    **model_options: Any,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``rows`` and write a plain checkpoint to ``out``.

    Args:
        model: hub id or local directory of a cross-encoder (one output logit).
        rows: training rows; every row needs a positive and a negative (mine them first with
            :func:`~rankgate.learn.mine_negatives` when the data has none).
        out: the output directory; checkpoints go to ``out/checkpoints``.
        options: the training options.
        settings: model settings (device, max_length, revision, offline, ...); keyword
            ``model_options`` override them, as for :class:`~rankgate.Reranker`.
        dev: held-out rows: nDCG@10, MRR@10, Recall and ranking health are measured on them
            before and after training.

    Raises:
        TrainingDataError: a row without a positive or a negative, or with teacher scores
            missing for ``distill``.
        ConfigError: a decoder (LLM) reranker, or options that contradict each other.
        MissingDependencyError: transformers or accelerate is not installed.

    Example:
        >>> rows = read_rows(Path("train.jsonl"))                        # doctest: +SKIP
        >>> finetune("BAAI/bge-reranker-v2-m3", rows, Path("tuned"))     # doctest: +SKIP
    """
    options = options or FinetuneOptions()
    torch, transformers = _imports()
    started = time.perf_counter()
    check_rows(
        rows,
        need_negatives=True,
        hint="mine them from your index (rankgate finetune --index-dir DIR) or add 'neg'",
    )
    if options.loss == "distill" and not all(r.has_scores for r in rows):
        raise _scores_missing(next(r for r in rows if not r.has_scores))
    out = Path(out)
    # fp32 master weights and the stock forward: training needs autograd through the model.
    model_settings = build_settings(
        settings, model=model, **{**model_options, "dtype": "float32", "packed": False}
    )
    start, new_head = _starting_point(model_settings, out, transformers, options.seed)
    if new_head:
        model_settings = build_settings(model_settings, model=str(start))
    reranker = Reranker(settings=model_settings)
    backend: Any = reranker.backend
    if getattr(backend, "recipe", None) is not None or not hasattr(backend, "module"):
        raise ConfigError(
            f"'{model}' is a decoder (LLM) reranker or not a torch cross-encoder; rankgate "
            "finetune trains cross-encoders (bge-reranker-v2-m3 and other one-logit encoders). "
            "LoRA fine-tuning of decoder rerankers is not built yet"
        )
    before = dev_report(reranker, dev) if dev else None
    encoded, truncated, total = _encode(reranker, rows)
    if truncated:
        log.info(
            "%d of %d training pairs were cut to max_length %d, as inference cuts them",
            truncated,
            total,
            reranker.max_length,
        )
    groups = _Groups(encoded, rows, options.group_size, options.seed, options.loss == "distill")
    checkpoints = out / "checkpoints"
    args = transformers.TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_ratio,  # a float under 1 is a share of all steps
        weight_decay=options.weight_decay,
        lr_scheduler_type="linear",
        seed=options.seed,
        data_seed=options.seed,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        logging_steps=options.logging_steps,
        **_checkpointing(transformers, options.gradient_checkpointing),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=not options.progress,
        use_cpu=backend.device == "cpu",
        **_precision(options, backend.device, torch),
    )
    module = backend.module
    module.train()
    trainer = _trainer_class(transformers)(
        model=module,
        args=args,
        train_dataset=groups,
        data_collator=_collate(backend.pad_token_id, torch),
        callbacks=[_epoch_callback(transformers, groups)],
        rerank_loss=_loss(options, torch),
    )
    resume = _last_checkpoint(checkpoints) if options.resume else None
    if resume:
        log.info("resuming from %s", resume)
    output = trainer.train(resume_from_checkpoint=resume)
    module.eval()
    trainer.save_model(str(out))
    _copy_tokenizer(Path(backend.model_dir), out)
    after = None
    if dev:
        tuned = Reranker(settings=build_settings(model_settings, model=str(out), dtype="auto"))
        after = dev_report(tuned, dev)
    result = FinetuneResult(
        out=out,
        steps=int(trainer.state.global_step),
        resumed_from=resume,
        train_loss=float(output.training_loss) if output.training_loss is not None else None,
        seconds=time.perf_counter() - started,
        pairs_truncated=truncated,
        pairs=total,
        before=before,
        after=after,
        log_history=list(trainer.state.log_history),
    )
    _write_record(result, model, model_settings, options, reranker.max_length, len(rows))
    return result


def _scores_missing(row: TrainingRow) -> TrainingDataError:
    at = f"{row.where}:{row.line}" if row.where else f"row for query {row.query!r}"
    return TrainingDataError(
        f"{at}: the distill loss needs teacher scores ('pos_scores' and 'neg_scores', one per "
        "document); mine with a teacher (--teacher) to get them, or use --loss group-ce"
    )


def _write_record(
    result: FinetuneResult,
    model: str,
    settings: RerankerSettings,
    options: FinetuneOptions,
    max_length: int,
    rows: int,
) -> None:
    record = {
        "base_model": model,
        "revision": settings.revision,
        "max_length": max_length,
        "rows": rows,
        "pairs": result.pairs,
        "pairs_truncated": result.pairs_truncated,
        "steps": result.steps,
        "train_loss": result.train_loss,
        "seconds": round(result.seconds, 1),
        "options": options.model_dump(),
        "dev_before": result.before.to_dict() if result.before else None,
        "dev_after": result.after.to_dict() if result.after else None,
    }
    (result.out / FINETUNE_FILE).write_text(json.dumps(record, indent=2) + "\n")
