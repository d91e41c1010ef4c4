"""``rankgate score-batch`` and the Ray options of ``rankgate serve --ray``.

Nothing here imports Ray at import time; a missing extra exits with its install hint.
Run standalone as ``python -m rankgate.cli.ray_commands score-batch INPUT OUTPUT``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from rankgate.cli import common
from rankgate.cli.loading import model_settings
from rankgate.cli.options import setting_option
from rankgate.config import RerankerSettings
from rankgate.ray.settings import (
    BatchSettings,
    RaySettings,
    build_batch_settings,
    build_ray_settings,
)

__all__ = ["ray_settings", "score_batch", "serve_on_ray"]

_RAY = "Ray options"
_BATCH = "Batch options"


# Each option is derived from its RaySettings or BatchSettings field (type, default, help,
# environment variable), declared once there (rankgate.cli.options).
def _ray(name: str) -> Any:
    return setting_option(RaySettings, name, panel=_RAY)


def _batch(name: str) -> Any:
    return setting_option(BatchSettings, name, panel=_BATCH)


RayAddress = Annotated[str | None, _ray("address")]
Replicas = Annotated[int | None, _ray("replicas")]
MinReplicas = Annotated[int | None, _ray("min_replicas")]
MaxReplicas = Annotated[int | None, _ray("max_replicas")]
TargetOngoing = Annotated[float | None, _ray("target_ongoing_requests")]
MaxOngoing = Annotated[int | None, _ray("max_ongoing_requests")]
MaxQueued = Annotated[int | None, _ray("max_queued_requests")]
RetryAfter = Annotated[float | None, _ray("retry_after_s")]
GpusPerReplica = Annotated[float | None, _ray("num_gpus_per_replica")]
CpusPerReplica = Annotated[float | None, _ray("num_cpus_per_replica")]
AppName = Annotated[str | None, _ray("app_name")]

Actors = Annotated[int | None, _batch("actors")]
BatchSize = Annotated[int | None, _batch("batch_size")]
ShardRows = Annotated[int | None, _batch("shard_rows")]
GpusPerActor = Annotated[float | None, _batch("num_gpus_per_actor")]
CpusPerActor = Annotated[float | None, _batch("num_cpus_per_actor")]
Resume = Annotated[bool | None, _batch("resume")]
ShowProgress = Annotated[bool | None, _batch("progress")]

RAY_OPTIONS = tuple(RaySettings.model_fields)
BATCH_OPTIONS = tuple(BatchSettings.model_fields)


def ray_settings(options: Mapping[str, object]) -> RaySettings:
    """Ray settings from a command's parameters (pass ``locals()``): every Ray option the
    command declares is forwarded; ``None`` leaves the environment or default in force.

    Raises:
        ConfigError: an invalid value, named.
    """
    return build_ray_settings(**{n: options[n] for n in RAY_OPTIONS if n in options})


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
    resume: Resume = None,
    progress: ShowProgress = None,
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
        options = locals()
        batch = build_batch_settings(**{n: options[n] for n in BATCH_OPTIONS})
        reranker_settings = model_settings(options)
        common.quiet_libraries()
        from rankgate.ray.runtime import require_ray

        require_ray("rankgate score-batch")
        from rankgate.ray.batch import score_batch as run_batch

        with _progress(batch.progress) as bar:
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
                resume=batch.resume,
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
    ray: RaySettings,
) -> None:
    """What ``rankgate serve --ray`` runs after building its server, model and Ray settings.

    ``settings`` is the command's ServerSettings (typed loosely so this module does not import
    the server, which needs the ``server`` extra). Blocks until SIGTERM or Ctrl+C.
    """
    with common.exits_on_error():
        from rankgate.ray.runtime import require_ray

        require_ray("rankgate serve --ray")
        from rankgate.ray.serving import run
        from rankgate.server import ServerSettings

        assert isinstance(settings, ServerSettings)
        logging.getLogger("rankgate").setLevel(settings.log_level.upper())
        run(settings, model_settings, ray)


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
