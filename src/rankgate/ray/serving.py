"""A Ray Serve deployment of the rankgate server: the same HTTP API on many replicas.

Each replica builds the whole FastAPI app of :func:`rankgate.server.create_app` (routes, error
table, limits, metrics) around its own model, so a client cannot tell one replica from the plain
server. Ray Serve's proxy routes requests to replicas; a replica works on at most
``max_ongoing_requests`` at once and merges them into model steps with its own batcher. Beyond
that, requests wait in Serve's queue; past ``max_queued_requests`` Serve itself answers
``429`` with ``Retry-After`` (configured through ``BackpressureConfig``), and a replica whose own
token queue is full answers 429 as the plain server does.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.config import AutoscalingConfig, BackpressureConfig

from rankgate.config import RerankerSettings
from rankgate.engine import Reranker
from rankgate.errors import ConfigError
from rankgate.ray.runtime import cluster_gpus, connect
from rankgate.ray.settings import RaySettings
from rankgate.server import ServerSettings, create_app

__all__ = ["ReplicaPlan", "app_builder", "plan_replicas", "run", "serve_app"]

log = logging.getLogger(__name__)

RerankerFactory = Callable[[], Reranker]


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    """How many replicas, with what resources: the options handed to ``serve.deployment``."""

    num_replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    num_gpus: float
    num_cpus: float

    def deployment_options(self, s: RaySettings, grace_s: float) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_ongoing_requests": s.max_ongoing_requests,
            "max_queued_requests": -1 if s.max_queued_requests is None else s.max_queued_requests,
            # Serve's own backpressure answers like the plain server: 429 with Retry-After.
            "backpressure_config": BackpressureConfig(
                status_code=429, retry_after_s=s.retry_after_s
            ),
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "graceful_shutdown_timeout_s": grace_s,
        }
        if self.min_replicas is not None:
            options["autoscaling_config"] = AutoscalingConfig(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                target_ongoing_requests=s.target_ongoing_requests,
            )
        else:
            options["num_replicas"] = self.num_replicas
        return options


def plan_replicas(settings: RaySettings, gpus: float) -> ReplicaPlan:
    """Size the deployment for a cluster with ``gpus`` GPUs.

    With GPUs and no explicit choice, each replica takes one GPU and there is one replica per GPU.
    """
    per_replica = settings.num_gpus_per_replica
    if per_replica is None:
        per_replica = 1.0 if gpus > 0 else 0.0
    if per_replica > 0 and gpus < per_replica:
        # Not an error: an autoscaling cluster adds GPU nodes when replicas ask for them.
        log.warning(
            "each replica asks for %g GPUs and the cluster has %g now; replicas stay pending "
            "until GPU nodes join (RANKGATE_RAY_NUM_GPUS_PER_REPLICA=0 serves on CPUs)",
            per_replica,
            gpus,
        )
    if settings.autoscaling:
        return ReplicaPlan(
            None,
            settings.min_replicas,
            settings.max_replicas,
            per_replica,
            settings.num_cpus_per_replica,
        )
    count = settings.replicas
    if count is None:
        count = max(1, int(gpus // per_replica)) if per_replica > 0 else 1
    return ReplicaPlan(count, None, None, per_replica, settings.num_cpus_per_replica)


@serve.ingress()
class RankgateReplica:
    """One replica: the rankgate app over the models loaded in this replica's process.

    Settings travel as plain dicts and are rebuilt here, so the replica never reads the
    environment of the driver that deployed it. ``models`` is one model's settings, or
    ``[served name, settings]`` pairs for several (the first is the default).
    """

    def __init__(
        self,
        server: Mapping[str, Any],
        models: Mapping[str, Any] | list[tuple[str | None, Mapping[str, Any]]],
        reranker_factory: RerankerFactory | None = None,
    ) -> None:
        self._server = ServerSettings(**server)
        pairs = [(None, models)] if isinstance(models, Mapping) else list(models)
        self._models = {name: RerankerSettings(**model) for name, model in pairs}
        self._factory = reranker_factory

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Called once per replica after __init__; the app's lifespan then loads the model
        # (unless a factory gave one), and Serve runs that lifespan before routing traffic here.
        reranker = self._factory() if self._factory is not None else None
        return create_app(self._server, reranker, model_settings=self._models)


def serve_app(
    settings: ServerSettings | None = None,
    model_settings: RerankerSettings | Mapping[str | None, RerankerSettings] | None = None,
    ray_settings: RaySettings | None = None,
    *,
    reranker_factory: RerankerFactory | None = None,
) -> Application:
    """The rankgate server as a Ray Serve application, ready for ``serve.run``.

    Args:
        settings: HTTP options of every replica (limits, API keys, batching).
        model_settings: the model each replica loads, or several by served name (each with
            its own model queue in every replica; the first is the default).
        ray_settings: replicas, autoscaling bounds, resources and Serve's queue limits.
        reranker_factory: builds each replica's engine instead of ``model_settings``
            (tests, custom backends); must be picklable.

    Returns:
        A bound application; GPUs are counted in the cluster this process is connected to.

    Example:
        >>> from ray import serve                                   # doctest: +SKIP
        >>> serve.run(serve_app(model_settings=RerankerSettings(model="/models/bge")))  # +SKIP
    """
    settings = settings or ServerSettings()
    given = (
        dict(model_settings)
        if isinstance(model_settings, Mapping)
        else {None: model_settings or RerankerSettings()}
    )
    ray_settings = ray_settings or RaySettings()
    plan = plan_replicas(ray_settings, cluster_gpus())
    models: list[tuple[str | None, dict[str, Any]]] = []
    for name, ms in given.items():
        model = ms.model_dump()
        if plan.num_gpus == 0 and model["threads"] is None:
            # Replicas share a node's cores, and a replica's models share its CPUs; torch would
            # otherwise start one thread per core in every model and they would fight over them.
            model["threads"] = max(1, int(plan.num_cpus) // len(given))
        models.append((name, model))
    options = plan.deployment_options(ray_settings, settings.shutdown_grace_s)
    deployment = serve.deployment(name=ray_settings.app_name, **options)(RankgateReplica)
    payload: Any = models[0][1] if len(models) == 1 and models[0][0] is None else models
    return deployment.bind(settings.model_dump(), payload, reranker_factory)


def app_builder(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run`` / ``serve deploy`` / KubeRay's RayService.

    Every field of RerankerSettings, ServerSettings and RaySettings may be given in ``args``
    (the ``args:`` of a Serve config file); the rest come from ``RANKGATE_*`` variables.

    Example:
        ``serve run rankgate.ray.serving:app_builder model=/models/bge-reranker-v2-m3``
    """
    pick: dict[str, dict[str, Any]] = {"model": {}, "server": {}, "ray": {}}
    for key, value in args.items():
        if key in RaySettings.model_fields:
            pick["ray"][key] = value
        elif key in RerankerSettings.model_fields:
            pick["model"][key] = value
        elif key in ServerSettings.model_fields:
            pick["server"][key] = value
        else:
            raise ConfigError(f"unknown Serve application argument '{key}'")
    return serve_app(
        ServerSettings(**pick["server"]),
        RerankerSettings(**pick["model"]),
        RaySettings(**pick["ray"]),
    )


def run(
    settings: ServerSettings,
    model_settings: RerankerSettings | Mapping[str | None, RerankerSettings],
    ray_settings: RaySettings,
    *,
    stop: threading.Event | None = None,
) -> None:
    """Serve on Ray until SIGTERM or Ctrl+C (or ``stop`` is set): ``rankgate serve --ray``.

    Joins ``ray_settings.address`` (or starts a local Ray), starts Serve's HTTP proxy on the
    server settings' host and port, deploys the app and waits. On exit the application is
    deleted; a local Ray started here is shut down.
    """
    started = connect(ray_settings.address, "rankgate serve --ray")
    import ray

    stop = stop or threading.Event()
    previous = {}
    # Installed before deploying (Ray's own handler would kill the process without cleanup);
    # a signal during the deployment stops right after it.
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _SIGNALS}
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(serve_app(settings, model_settings, ray_settings), name=ray_settings.app_name)
        log.info("serving on Ray at http://%s:%d", settings.host, settings.port)
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("deleting the Serve application %s", ray_settings.app_name)
        serve.delete(ray_settings.app_name)
        if started and ray_settings.address is None:
            serve.shutdown()
            ray.shutdown()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
