"""``ServerState``: what the routes, the gate and the runner share, and the shutdown deadline.

The model is bound once (:meth:`ServerState.bind`): one :class:`~rankgate.engine.ModelQueue`
owns the model thread and one :class:`~rankgate.engine.RerankService` is the road every scoring
route takes. Shutdown has one deadline, ``shutdown_grace_s`` after it began, that every stage
(draining, answering what still runs, closing connections, stopping the model thread) shares.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from rankgate.backends.base import physical_cores
from rankgate.engine import (
    ModelQueue,
    QueueLimits,
    Reranker,
    RerankService,
    ScoreCache,
    ServiceLimits,
)
from rankgate.errors import ConfigError, RankgateError, UnavailableError
from rankgate.funnel.factory import build_funnel
from rankgate.funnel.funnel import Funnel
from rankgate.funnel.settings import FunnelSettings, build_funnel_settings
from rankgate.insight.monitor import RankingHealth
from rankgate.server.errors import ModelNotServedError
from rankgate.server.metrics import ServerMetrics
from rankgate.server.settings import ServerSettings

__all__ = ["Lifecycle", "Served", "ServerState"]

log = logging.getLogger("rankgate.server")

SHUTDOWN_REASON = "the server is shutting down; the request did not finish within the grace"


@dataclass
class Lifecycle:
    """Draining state, the count of model requests in flight, and the shutdown deadline."""

    draining: bool = False
    in_flight: int = 0
    deadline: float | None = None  # time.monotonic() by which the process should be gone
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set: answer what runs, now
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def begin_drain(self, grace_s: float) -> None:
        """Refuse new work from now on; the deadline is set by the first call only."""
        self.draining = True
        if self.deadline is None:
            self.deadline = time.monotonic() + grace_s

    def remaining(self) -> float:
        """Seconds left before the deadline (infinite before a drain began)."""
        if self.deadline is None:
            return float("inf")
        return max(0.0, self.deadline - time.monotonic())

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no model request is in flight; False when ``timeout`` passed first."""
        if self.in_flight == 0:
            return True
        if timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


@dataclass
class Served:
    """One served model: its engine, its own model queue (thread, bound) and its service."""

    name: str
    reranker: Reranker
    queue: ModelQueue
    service: RerankService


@dataclass
class ServerState:
    """What the routes share; ``models`` is empty until the models are loaded.

    The first model is the default: it answers requests that name no model (TEI sends none)
    and, when it is the only one, requests that name any model (clients send their own
    provider's names). With several models, a request's ``model`` picks one by its served name.
    """

    settings: ServerSettings
    metrics: ServerMetrics
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    models: dict[str, Served] = field(default_factory=dict)
    health: RankingHealth = field(default_factory=RankingHealth)
    funnel_settings: FunnelSettings | None = None
    _funnel: Funnel | None = None
    _funnel_error: str | None = None
    _funnel_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def default(self) -> Served | None:
        return next(iter(self.models.values()), None)

    @property
    def model_name(self) -> str:
        return self.default.name if self.default else "rankgate"

    @property
    def reranker(self) -> Reranker | None:
        return self.default.reranker if self.default else None

    @property
    def service(self) -> RerankService | None:
        return self.default.service if self.default else None

    def served(self, model: str | None = None) -> Served:
        """The model a request names (None: the default).

        Raises:
            UnavailableError: nothing is loaded yet. ModelNotServedError: several models are
            served and none has this name.
        """
        default = self.default
        if default is None:
            raise UnavailableError("the model is not loaded yet")
        if model is None or len(self.models) == 1:
            return default
        found = self.models.get(model)
        if found is None:
            raise ModelNotServedError(model, list(self.models))
        return found

    def get_reranker(self, model: str | None = None) -> Reranker:
        return self.served(model).reranker

    def get_service(self, model: str | None = None) -> RerankService:
        return self.served(model).service

    def get_funnel(self) -> Funnel:
        """The search funnel, built on first use from the funnel settings.

        A failed build (no index, an embedder that cannot load) is remembered, so every later
        search answers the same 503 at once instead of trying to load the embedder again.

        Raises:
            UnavailableError: search is not configured or its parts could not be loaded.
        """
        with self._funnel_lock:
            if self._funnel is None and self._funnel_error is None:
                try:
                    settings = self.funnel_settings or build_funnel_settings()
                    if not settings.milvus_uri and "index_dir" not in settings.model_fields_set:
                        # Never a silent ./rankgate-index from wherever the server started.
                        raise UnavailableError(
                            "no index is configured; set RANKGATE_INDEX_DIR to the directory "
                            "`rankgate index` built (or RANKGATE_MILVUS_URI) and restart"
                        )
                    self._funnel = build_funnel(settings, self.get_reranker())
                except RankgateError as exc:
                    self._funnel_error = f"search is not available: {exc}"
                except Exception as exc:  # an embedder's own failure, say
                    log.error("the search funnel could not be built", exc_info=exc)
                    self._funnel_error = (
                        f"search is not available: its embedding model or index could not be "
                        f"loaded ({type(exc).__name__}; see the server log); fix the funnel "
                        "settings and restart"
                    )
                if self._funnel_error is not None:
                    log.warning("%s", self._funnel_error)
            if self._funnel is None:
                raise UnavailableError(self._funnel_error or "search is not available")
            return self._funnel

    def bind(self, rerankers: Mapping[str | None, Reranker] | Reranker) -> None:
        """Start serving: one model queue (its own thread) and one service per model.

        Args:
            rerankers: one engine, or engines by served name (None: the server's
                ``served_model_name``, else the model's id), the default first.

        Raises:
            ConfigError: two models would be served under one name.
        """
        given = rerankers if isinstance(rerankers, Mapping) else {None: rerankers}
        threads = _split_threads(list(given.values()))
        self.models = {}  # a new lifespan serves what it was given
        for i, (name, reranker) in enumerate(given.items()):
            served_name = (
                name
                or (self.settings.served_model_name if i == 0 else None)
                or reranker.info().model
            )
            if served_name in self.models:
                raise ConfigError(f"two models are served as {served_name!r}; name them apart")
            self.models[served_name] = self._serve_one(served_name, reranker, threads)

    def _serve_one(self, name: str, reranker: Reranker, threads: int | None) -> Served:
        s = self.settings
        observer = self.metrics.for_model(name)
        set_threads = getattr(reranker.backend, "set_threads", None)
        queue = ModelQueue(
            reranker.score_encoded,
            QueueLimits(
                # One forward pass per step by default: a request finishes with its pass instead
                # of waiting for a step several passes long (lower latency, same throughput).
                max_batch_tokens=s.max_batch_tokens or reranker.batch_tokens,
                max_queue_tokens=s.max_queue_tokens,
                wait_s=s.batch_wait_ms / 1000,
                low_priority_share=s.low_priority_queue_share,
            ),
            observer,
            on_start=(lambda: set_threads(threads)) if threads and set_threads else None,
        )
        self.metrics.watch_queue(name, lambda: queue.queued_tokens, lambda: queue.queued_pairs)
        backend = reranker.backend
        self.metrics.watch_prefix_saved(name, lambda: float(backend.shared_prefix_tokens_saved))
        queue.start()
        # Its own cache per model: one model's traffic never evicts another's scores.
        cache = ScoreCache(s.cache_size) if s.cache_size else None
        if cache is not None:
            self.metrics.watch_cache(name, cache.stats)
        service = RerankService(
            reranker,
            queue,
            ServiceLimits(
                max_documents=s.max_documents,
                max_request_tokens=s.max_request_tokens,
                request_timeout_s=s.request_timeout_s,
                auto_truncate=s.auto_truncate,
                tokenizer_workers=s.tokenizer_workers,
                probe_timeout_s=min(10.0, s.request_timeout_s),
            ),
            on_ranked=self._observe_ranking,
            cache=cache,
        )
        return Served(name, reranker, queue, service)

    def _observe_ranking(self, scores: list[float], normalized: bool) -> None:
        self.health.observe(scores, normalized=normalized)

    def final_stretch(self) -> float:
        """Seconds kept at the end of the grace to answer what still runs and to exit."""
        return min(1.0, 0.25 * self.settings.shutdown_grace_s)

    def exit_reserve(self) -> float:
        """Seconds kept at the very end for the interpreter to exit."""
        return 0.4 * self.final_stretch()

    async def drain(self) -> None:
        """Refuse new work, let what is in flight finish until the deadline's final stretch,
        then answer the rest 503 (their work is cancelled) and stalled uploads too."""
        lc = self.lifecycle
        lc.begin_drain(self.settings.shutdown_grace_s)
        final = self.final_stretch()
        if await lc.wait_idle(lc.remaining() - final):
            return
        log.warning(
            "%d requests still in flight at the shutdown deadline; answering them 503",
            lc.in_flight,
        )
        lc.stop.set()
        for served in self.models.values():
            served.service.abort(SHUTDOWN_REASON)
        await lc.wait_idle(lc.remaining() - final / 2)

    async def shutdown(self) -> None:
        """Drain (see :meth:`drain`), then stop the model thread, all within the deadline."""
        await self.drain()
        for served in self.models.values():
            served.queue.close()
        for served in self.models.values():
            # A worker may be inside a forward pass that cannot be interrupted; it is a daemon
            # thread, so the process can still exit on time.
            wait = self.lifecycle.remaining() - self.exit_reserve()
            await asyncio.to_thread(served.queue.join, max(0.0, wait))
            served.service.close()


def _split_threads(rerankers: list[Reranker]) -> int | None:
    """CPU threads for each model thread when several CPU models share the machine, so that
    they split the cores instead of each claiming all of them; None: leave as configured."""
    on_cpu = [r for r in rerankers if r.info().device == "cpu"]
    if len(on_cpu) < 2 or any(r.settings.threads for r in on_cpu):
        return None
    return max(1, physical_cores() // len(on_cpu))
