"""``rankgate serve``: the HTTP rerank server (Cohere, Jina, TEI and vLLM dialects)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from rankgate.cli import common
from rankgate.cli import ray_commands as rc
from rankgate.cli.command_settings import ServeCommandSettings
from rankgate.cli.loading import model_settings
from rankgate.cli.options import setting_option, settings_from
from rankgate.config import RerankerSettings
from rankgate.errors import ConfigError
from rankgate.server.settings import ServerSettings

_PANEL = "Server options"


# Each option is derived from its ServerSettings field (type, default, help, environment variable):
# declared once, there (rankgate.cli.options).


def _server(name: str) -> Any:
    return setting_option(ServerSettings, name, panel=_PANEL)


def _command(name: str, panel: str) -> Any:
    return setting_option(ServeCommandSettings, name, panel=panel)


Host = Annotated[str | None, _server("host")]
Port = Annotated[int | None, _server("port")]
ApiKeys = Annotated[str | None, _server("api_keys")]
PublicPlayground = Annotated[bool | None, _server("public_playground")]
ServedName = Annotated[str | None, _server("served_model_name")]
MaxDocuments = Annotated[int | None, _server("max_documents")]
MaxPayload = Annotated[int | None, _server("max_payload_bytes")]
MaxRequestTokens = Annotated[int | None, _server("max_request_tokens")]
MaxQueueTokens = Annotated[int | None, _server("max_queue_tokens")]
BatchWait = Annotated[float | None, _server("batch_wait_ms")]
MaxBatchTokens = Annotated[int | None, _server("max_batch_tokens")]
Timeout = Annotated[float | None, _server("request_timeout_s")]
LowShare = Annotated[float | None, _server("low_priority_queue_share")]
MaxPendingSearches = Annotated[int | None, _server("max_pending_searches")]
KeepAlive = Annotated[float | None, _server("keep_alive_s")]
BodyTimeout = Annotated[float | None, _server("body_timeout_s")]
LivenessStall = Annotated[float | None, _server("liveness_stall_s")]
AutoTruncate = Annotated[bool | None, _server("auto_truncate")]
TokenizerWorkers = Annotated[int | None, _server("tokenizer_workers")]
Grace = Annotated[float | None, _server("shutdown_grace_s")]
CacheSize = Annotated[str | None, _server("cache_size")]  # a size with its unit: 256MiB
LogLevel = Annotated[str | None, _server("log_level")]


def serve(
    host: Host = None,
    port: Port = None,
    api_keys: ApiKeys = None,
    public_playground: PublicPlayground = None,
    served_model_name: ServedName = None,
    max_documents: MaxDocuments = None,
    max_payload_bytes: MaxPayload = None,
    max_request_tokens: MaxRequestTokens = None,
    max_queue_tokens: MaxQueueTokens = None,
    batch_wait_ms: BatchWait = None,
    max_batch_tokens: MaxBatchTokens = None,
    request_timeout_s: Timeout = None,
    low_priority_queue_share: LowShare = None,
    max_pending_searches: MaxPendingSearches = None,
    keep_alive_s: KeepAlive = None,
    body_timeout_s: BodyTimeout = None,
    liveness_stall_s: LivenessStall = None,
    auto_truncate: AutoTruncate = None,
    tokenizer_workers: TokenizerWorkers = None,
    shutdown_grace_s: Grace = None,
    cache_size: CacheSize = None,
    log_level: LogLevel = None,
    model: Annotated[list[str] | None, _command("model", "Model options")] = None,
    revision: common.Revision = None,
    backend: common.Backend = None,
    recipe: common.Recipe = None,
    onnx_file: common.OnnxFile = None,
    device: common.Device = None,
    dtype: common.DType = None,
    max_length: common.MaxLength = None,
    long_documents: common.LongDocs = None,
    calibration: common.Calibration = None,
    chunk_overlap: common.ChunkOverlap = None,
    max_chunks: common.MaxChunks = None,
    batch_tokens: common.BatchTokens = None,
    max_batch_size: common.MaxBatchSize = None,
    batch_overhead_tokens: common.BatchOverhead = None,
    threads: common.Threads = None,
    reuse_memory: common.ReuseMemory = None,
    prefix_cache: common.PrefixCache = None,
    packed: common.Packed = None,
    cpu_matmul: common.CpuMatmul = None,
    bf16_probe: common.Bf16Probe = None,
    offline: common.Offline = None,
    cache_dir: common.CacheDir = None,
    ray: Annotated[bool | None, _command("ray", "Ray options")] = None,
    address: rc.RayAddress = None,
    replicas: rc.Replicas = None,
    min_replicas: rc.MinReplicas = None,
    max_replicas: rc.MaxReplicas = None,
    target_ongoing_requests: rc.TargetOngoing = None,
    max_ongoing_requests: rc.MaxOngoing = None,
    max_queued_requests: rc.MaxQueued = None,
    retry_after_s: rc.RetryAfter = None,
    num_gpus_per_replica: rc.GpusPerReplica = None,
    num_cpus_per_replica: rc.CpusPerReplica = None,
    app_name: rc.AppName = None,
) -> None:
    """Serve reranking over HTTP: Cohere v1/v2, Jina, TEI and vLLM routes, /health, /metrics.

    The model loads before the port opens. SIGTERM drains: /ready turns 503, new requests get
    503 and in-flight requests finish (or get 503 at the deadline); the process exits within
    --shutdown-grace-s. Example: rankgate serve --host 0.0.0.0 --api-keys SECRET
    """
    try:
        from rankgate.server import create_app
        from rankgate.server.runner import listen
        from rankgate.server.runner import serve as run_server
    except ImportError as exc:
        from rankgate.errors import MissingDependencyError

        with common.exits_on_error():
            missing = exc.name or "fastapi"
            raise MissingDependencyError(missing, "server", "rankgate serve") from None
        return
    with common.exits_on_error():
        options = dict(locals())
        settings = settings_from(ServerSettings, options, "server settings")
        command = settings_from(ServeCommandSettings, options, "serve settings")
        served = served_models(command.model, options)
        if command.ray:
            common.quiet_libraries()
            rc.serve_on_ray(settings, served, rc.ray_settings(options))
            return
        common.quiet_libraries()
        logging.getLogger("rankgate").setLevel(settings.log_level.upper())
        # The port first (a port in use fails at once, exit 5), then the model (a bad model
        # fails here with its exit code, not in uvicorn), then requests are served.
        sock = listen(settings.host, settings.port)
        from rankgate.engine import Reranker

        rerankers = {name: Reranker(settings=ms) for name, ms in served.items()}
        app = create_app(settings, rerankers)
    run_server(app, sock)


def served_models(
    specs: Sequence[str] | None, options: dict[str, object]
) -> dict[str | None, RerankerSettings]:
    """Model settings by served name from ``--model`` values (``MODEL`` or ``NAME=MODEL``).

    An unnamed first model is served as ``--served-model-name`` or its id (key None); other
    unnamed models as their id. The other model options apply to every model.

    Raises:
        ConfigError: an empty name or model, or two models under one name.
    """
    if not specs:
        return {None: model_settings({**options, "model": None})}
    out: dict[str | None, RerankerSettings] = {}
    for i, spec in enumerate(specs):
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
        if sep and (not name or not path):
            raise ConfigError(f"--model {spec!r}: use MODEL or NAME=MODEL")
        key: str | None = name or (None if i == 0 else path)
        if key in out:
            raise ConfigError(f"--model {spec!r}: a second model served as {key or path!r}")
        out[key] = model_settings({**options, "model": path})
    return out
