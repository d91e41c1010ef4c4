"""``score_batch``: score a file of (query, document) pairs on Ray, resumably.

The driver reads the input, cuts it into shards (:mod:`rankgate.ray.shards`) and hands the rows
of the shards not yet written to Ray Data, whose ``map_batches`` spreads them over model actors
(one model per actor, on a GPU when the cluster has any). Only row numbers and scores come
back; the driver fills each shard and writes it as a part file the moment its last row is
scored. Killed at any point, a rerun with the same arguments skips the parts already on disk.
The same call runs on a laptop (a local Ray) and on a cluster (``address``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rankgate.config import RerankerSettings
from rankgate.engine import Reranker
from rankgate.engine.scoring import sigmoid
from rankgate.errors import NoDocumentsError, RankgateError
from rankgate.ray.runtime import cluster_gpus, connect, require_ray
from rankgate.ray.settings import BatchSettings
from rankgate.ray.shards import (
    Manifest,
    PartStore,
    Shard,
    fingerprint,
    pair_columns,
    plan_shards,
    read_pairs,
)

__all__ = ["BatchReport", "score_batch"]

log = logging.getLogger(__name__)

RerankerFactory = Callable[[], Reranker]
ProgressFn = Callable[[int, int], None]
"""Called with (rows written, rows in total) after each part is written."""

# Settings that change the scores: a resumed run must use the same ones.
_SCORE_FIELDS = (
    "model",
    "revision",
    "backend",
    "dtype",
    "max_length",
    "long_documents",
    "chunk_overlap",
    "max_chunks",
)


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one ``score_batch`` call did."""

    output: Path
    rows: int
    shards: int
    scored_shards: int
    skipped_shards: int
    seconds: float


class _Scorer:
    """A Ray Data actor: loads one model, then scores every batch handed to it."""

    def __init__(
        self, model: dict[str, Any], batch_size: int, factory: RerankerFactory | None
    ) -> None:
        self.reranker = (
            factory() if factory is not None else Reranker(settings=RerankerSettings(**model))
        )
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = list(zip(batch["query"].tolist(), batch["document"].tolist(), strict=True))
        scores = self.reranker.compute_score(pairs, batch_size=self.batch_size)
        return {"row": batch["row"], "score": np.asarray(scores, dtype=np.float64)}


class _Assembler:
    """Collects scored rows per shard and writes each shard once it is complete."""

    def __init__(
        self, table: pa.Table, shards: list[Shard], store: PartStore, shard_rows: int
    ) -> None:
        self.table = table
        self.store = store
        self.shard_rows = shard_rows
        self.pending = {s.index: s for s in shards}
        self.scores: dict[int, np.ndarray] = {}
        self.filled: dict[int, int] = {}

    def add(self, rows: np.ndarray, scores: np.ndarray) -> int:
        """Place scores by row number; returns the rows of the shards this completed."""
        written = 0
        owners = rows // self.shard_rows
        for index in np.unique(owners):
            shard = self.pending[int(index)]
            mine = owners == index
            buf = self.scores.setdefault(shard.index, np.full(shard.rows, np.nan))
            buf[rows[mine] - shard.start] = scores[mine]
            self.filled[shard.index] = self.filled.get(shard.index, 0) + int(mine.sum())
            if self.filled[shard.index] == shard.rows:
                self._write(shard, self.scores.pop(shard.index))
                del self.pending[shard.index]
                written += shard.rows
        return written

    def _write(self, shard: Shard, raw: np.ndarray) -> None:
        part = self.table.slice(shard.start, shard.rows)
        part = part.append_column("row", pa.array(np.arange(shard.start, shard.stop)))
        part = part.append_column("score", pa.array(raw))
        part = part.append_column("normalized_score", pa.array(sigmoid(raw)))
        self.store.write(shard, part)


def _work_table(table: pa.Table, doc: str, shards: list[Shard]) -> list[pa.Table]:
    """Only what the actors need, one table per shard (so Ray Data starts with shard blocks)."""
    slim = pa.table(
        {
            "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
            "query": table.column("query"),
            "document": table.column(doc),
        }
    )
    return [slim.slice(s.start, s.rows) for s in shards]


def _rankgate_cause(exc: BaseException) -> RankgateError | None:
    """A rankgate error raised inside an actor, unwrapped from Ray's exception wrappers."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RankgateError):
            return seen
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return None


def score_batch(
    input: Path,
    output: Path,
    *,
    model_settings: RerankerSettings | None = None,
    batch_settings: BatchSettings | None = None,
    address: str | None = None,
    resume: bool = True,
    progress: ProgressFn | None = None,
    reranker_factory: RerankerFactory | None = None,
) -> BatchReport:
    """Score every (query, document) row of ``input`` and write the scores to ``output``.

    Args:
        input: ``.parquet`` or ``.jsonl`` with a ``query`` column and a ``document`` (or
            ``text`` / ``passage``) column; other columns (an ``id``) are copied to the output.
        output: a ``.parquet`` or ``.jsonl`` file (parts are kept in ``OUTPUT.parts/`` until
            the merge), or a directory that keeps the Parquet parts and their manifest.
        model_settings: the model each actor loads.
        batch_settings: actors, batch size, shard size, resources per actor.
        address: Ray cluster to join; None starts a local Ray (or uses one already started).
        resume: skip the shards a previous run of the same job wrote; False starts over.
        progress: called with (rows written, rows in total), also for skipped shards.
        reranker_factory: builds each actor's engine instead of ``model_settings`` (tests,
            custom backends); must be picklable.

    Returns:
        The report; each output row adds ``row`` (input row number), ``score`` (raw logit)
        and ``normalized_score`` (sigmoid), as ``Reranker.compute_score`` gives them.

    Raises:
        InputError: the input is unreadable or lacks its columns. ConfigError: the output
            holds another job's parts. BackendError: the model failed in an actor.
    """
    started = time.perf_counter()
    model_settings = model_settings or RerankerSettings()
    batch_settings = batch_settings or BatchSettings()
    table = read_pairs(input)
    if table.num_rows == 0:
        raise NoDocumentsError(f"{input} holds no pairs")
    _, doc = pair_columns(table)
    shards = plan_shards(table.num_rows, batch_settings.shard_rows)
    model = {k: v for k, v in model_settings.model_dump(mode="json").items() if k in _SCORE_FIELDS}
    manifest = Manifest(
        str(input), fingerprint(input), table.num_rows, batch_settings.shard_rows, doc, model
    )
    store = PartStore(output)
    done = store.open(manifest, resume=resume)
    todo = [s for s in shards if s.index not in done]
    written = sum(s.rows for s in shards if s.index in done)
    if progress is not None:
        progress(written, table.num_rows)
    if todo:
        _run(
            table,
            doc,
            todo,
            store,
            model_settings,
            batch_settings,
            address,
            progress,
            written,
            reranker_factory,
        )
    final = store.merge(shards) if store.merge_to is not None else store.dir
    return BatchReport(
        final,
        table.num_rows,
        len(shards),
        len(todo),
        len(shards) - len(todo),
        time.perf_counter() - started,
    )


def _run(
    table: pa.Table,
    doc: str,
    todo: list[Shard],
    store: PartStore,
    model_settings: RerankerSettings,
    batch: BatchSettings,
    address: str | None,
    progress: ProgressFn | None,
    written: int,
    factory: RerankerFactory | None,
) -> None:
    require_ray("rankgate score-batch")
    import ray
    import ray.data

    started_here = connect(address, "rankgate score-batch")
    try:
        gpus = batch.num_gpus_per_actor
        if gpus is None:
            gpus = 1.0 if cluster_gpus() > 0 else 0.0
        model = model_settings.model_dump()
        if gpus == 0 and model["threads"] is None:
            # Actors share a node's cores; one torch thread per reserved CPU avoids contention.
            model["threads"] = max(1, int(batch.num_cpus_per_actor))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress is None  # ours replaces Ray Data's bars
        dataset = ray.data.from_arrow(_work_table(table, doc, todo)).map_batches(
            _Scorer,
            fn_constructor_kwargs={
                "model": model,
                "batch_size": batch.batch_size,
                "factory": factory,
            },
            batch_size=batch.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=batch.actors),
            num_cpus=batch.num_cpus_per_actor,
            num_gpus=gpus,
        )
        assembler = _Assembler(table, todo, store, batch.shard_rows)
        total = table.num_rows
        try:
            for out in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                done_now = assembler.add(out["row"], out["score"])
                if done_now:
                    written += done_now
                    if progress is not None:
                        progress(written, total)
        except Exception as exc:
            cause = _rankgate_cause(exc)
            if cause is not None:
                raise cause from None
            raise
    finally:
        if started_here and address is None:
            ray.shutdown()
