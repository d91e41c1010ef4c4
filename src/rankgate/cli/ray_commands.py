"""``rankgate score-batch`` and the Ray options of ``rankgate serve --ray``.

Nothing here imports Ray at import time; a missing extra exits with its install hint.
Run standalone as ``python -m rankgate.cli.ray_commands score-batch INPUT OUTPUT``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from rankgate.cli import common
from rankgate.cli.loading import model_settings
from rankgate.config import RerankerSettings
from rankgate.ray.settings import build_batch_settings, build_ray_settings

__all__ = ["score_batch", "serve_on_ray"]

_RAY = "Ray options"
_BATCH = "Batch options"


def _opt(env: str, help: str, *names: str, panel: str = _RAY) -> typer.models.OptionInfo:
    return typer.Option(
        *names, envvar=f"RANKGATE_{env}", rich_help_panel=panel, help=help, show_default=False
    )


RayAddress = Annotated[
    str | None,
    _opt(
        "RAY_ADDRESS",
        "Ray cluster to join: auto, HOST:PORT or ray://HOST:10001. Default: start a local Ray.",
        "--address",
    ),
]
Replicas = Annotated[
    int | None,
    _opt("RAY_REPLICAS", "Fixed number of replicas. Default: one per GPU, or 1 without GPUs."),
]
MinReplicas = Annotated[
    int | None, _opt("RAY_MIN_REPLICAS", "Autoscaling lower bound (with --max-replicas).")
]
MaxReplicas = Annotated[
    int | None, _opt("RAY_MAX_REPLICAS", "Autoscaling upper bound (with --min-replicas).")
]
MaxOngoing = Annotated[
    int | None,
    _opt("RAY_MAX_ONGOING_REQUESTS", "Requests one replica works on at once. Default: 8."),
]
MaxQueued = Annotated[
    int | None,
    _opt(
        "RAY_MAX_QUEUED_REQUESTS",
        "Requests waiting for a replica; beyond it 429 with Retry-After. Default: 64.",
    ),
]
GpusPerReplica = Annotated[
    float | None,
    _opt("RAY_NUM_GPUS_PER_REPLICA", "GPUs per replica. Default: 1 if the cluster has GPUs."),
]
CpusPerReplica = Annotated[
    float | None, _opt("RAY_NUM_CPUS_PER_REPLICA", "CPUs per replica. Default: 1.")
]

Actors = Annotated[
    int | None, _opt("BATCH_ACTORS", "Model actors (one model each). Default: 1.", panel=_BATCH)
]
BatchSize = Annotated[
    int | None,
    _opt("BATCH_BATCH_SIZE", "Pairs handed to an actor at once. Default: 256.", panel=_BATCH),
]
ShardRows = Annotated[
    int | None,
    _opt(
        "BATCH_SHARD_ROWS",
        "Rows per output part, the unit of resumption. Default: 10000.",
        panel=_BATCH,
    ),
]
GpusPerActor = Annotated[
    float | None,
    _opt(
        "BATCH_NUM_GPUS_PER_ACTOR",
        "GPUs per actor. Default: 1 if the cluster has GPUs.",
        panel=_BATCH,
    ),
]
CpusPerActor = Annotated[
    float | None,
    _opt("BATCH_NUM_CPUS_PER_ACTOR", "CPUs per actor. Default: 1.", panel=_BATCH),
]


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=common.err_console,
        transient=False,
    )
    with bar:
        yield bar


def score_batch(
    input: Annotated[Path, typer.Argument(help="Parquet or JSON Lines of (query, document).")],
    output: Annotated[
        Path,
        typer.Argument(
            help="A .parquet or .jsonl file (parts wait in OUTPUT.parts/), or a directory that "
            "keeps the Parquet parts."
        ),
    ],
    address: RayAddress = None,
    actors: Actors = None,
    batch_size: BatchSize = None,
    shard_rows: ShardRows = None,
    num_gpus_per_actor: GpusPerActor = None,
    num_cpus_per_actor: CpusPerActor = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--restart",
            help="Skip the parts a previous run of the same job wrote, or start over.",
        ),
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    model: common.Model = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    long_documents: common.LongDocs = None,
    max_chunks: common.MaxChunks = None,
    batch_tokens: common.BatchTokens = None,
    threads: common.Threads = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
) -> None:
    """Score a file of (query, document) pairs on Ray: local, or a cluster with --address.

    Adds score (raw logit) and normalized_score (sigmoid) to every row. Parts are written as
    they finish; rerun the same command after a crash and finished parts are not rescored.
    Example: rankgate score-batch pairs.parquet scores.parquet --actors 4 --address auto
    """
    with common.exits_on_error():
        batch = build_batch_settings(
            actors=actors,
            batch_size=batch_size,
            shard_rows=shard_rows,
            num_gpus_per_actor=num_gpus_per_actor,
            num_cpus_per_actor=num_cpus_per_actor,
        )
        reranker_settings = model_settings(locals())
        common.quiet_libraries()
        from rankgate.ray.runtime import require_ray

        require_ray("rankgate score-batch")
        from rankgate.ray.batch import score_batch as run_batch

        with _progress(progress) as bar:
            task = bar.add_task("scoring pairs", total=None) if bar is not None else None

            def report(done: int, total: int) -> None:
                if bar is not None and task is not None:
                    bar.update(task, completed=done, total=total)

            result = run_batch(
                input,
                output,
                model_settings=reranker_settings,
                batch_settings=batch,
                address=address,
                resume=resume,
                progress=report if bar is not None else None,
            )
    common.err_console.print(
        common.literal(
            f"scored {result.scored_shards} of {result.shards} parts ({result.skipped_shards} "
            f"already done), {result.rows} rows in {result.seconds:.1f} s -> {result.output}"
        )
    )


def serve_on_ray(
    settings: object,
    model_settings: RerankerSettings | Mapping[str | None, RerankerSettings],
    *,
    address: str | None = None,
    replicas: int | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    max_ongoing_requests: int | None = None,
    max_queued_requests: int | None = None,
    num_gpus_per_replica: float | None = None,
    num_cpus_per_replica: float | None = None,
) -> None:
    """What ``rankgate serve --ray`` runs after building its server and model settings.

    ``settings`` is the command's ServerSettings (typed loosely so this module does not import
    the server, which needs the ``server`` extra). Blocks until SIGTERM or Ctrl+C.
    """
    with common.exits_on_error():
        ray_settings = build_ray_settings(
            address=address,
            replicas=replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            max_ongoing_requests=max_ongoing_requests,
            max_queued_requests=max_queued_requests,
            num_gpus_per_replica=num_gpus_per_replica,
            num_cpus_per_replica=num_cpus_per_replica,
        )
        from rankgate.ray.runtime import require_ray

        require_ray("rankgate serve --ray")
        from rankgate.ray.serving import run
        from rankgate.server import ServerSettings

        assert isinstance(settings, ServerSettings)
        logging.getLogger("rankgate").setLevel(settings.log_level.upper())
        run(settings, model_settings, ray_settings)


def _standalone() -> typer.Typer:
    app = typer.Typer(
        help="Ray commands of rankgate.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.command("score-batch", epilog=common.EXIT_HELP)(score_batch)

    @app.callback()
    def _root() -> None:
        """Ray commands of rankgate."""

    return app


if __name__ == "__main__":
    _standalone()()
