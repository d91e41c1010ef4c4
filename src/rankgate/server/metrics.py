"""Prometheus metrics, in a registry of the app's own (two apps in one process never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from rankgate.engine.cache import CacheStats
from rankgate.engine.queue import QueueObserver
from rankgate.engine.service import Timings

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_PAIRS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
_REQUESTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class ServerMetrics:
    """Counters of requests, failures, documents and tokens; per-phase timings; batch shapes.

    Each model queue reports its steps, forward passes and cancelled work through
    :meth:`for_model`, under its model's label.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rankgate_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.failures = Counter(
            "rankgate_request_failures", "Failed requests by reason.", ["reason"], registry=r
        )
        self.documents = Counter("rankgate_documents", "Documents ranked.", registry=r)
        self.tokens = Counter("rankgate_input_tokens", "Model input tokens.", registry=r)
        self.phase = Histogram(
            "rankgate_request_phase_seconds",
            "Seconds per request phase: tokenize, queue, inference, total.",
            ["phase"],
            buckets=_SECONDS,
            registry=r,
        )
        m = ["model"]
        self.batch_pairs = Histogram(
            "rankgate_batch_pairs", "Pairs per model step.", m, buckets=_PAIRS, registry=r
        )
        self.batch_requests = Histogram(
            "rankgate_batch_requests",
            "Requests whose pairs shared one model step.",
            m,
            buckets=_REQUESTS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "rankgate_batch_seconds", "Seconds per model step.", m, buckets=_SECONDS, registry=r
        )
        self.forward_pairs = Histogram(
            "rankgate_forward_pairs", "Pairs per forward pass.", m, buckets=_PAIRS, registry=r
        )
        self.forward_real_tokens = Counter(
            "rankgate_forward_real_tokens",
            "Real tokens computed by forward passes.",
            m,
            registry=r,
        )
        self.forward_padded_tokens = Counter(
            "rankgate_forward_padded_tokens",
            "Tokens computed by forward passes: padding included, a prefix shared by several pairs "
            "counted once per request, not at all in passes that reused it (real / padded = "
            "efficiency).",
            m,
            registry=r,
        )
        self.cancelled_tokens = Counter(
            "rankgate_cancelled_tokens",
            "Tokens not computed because their request was cancelled (client gone, deadline "
            "passed, shutdown), by where it was: queued or running.",
            ["model", "stage"],
            registry=r,
        )
        self.disconnects = Counter(
            "rankgate_client_disconnects",
            "Requests whose client went away before the answer; their work was cancelled.",
            registry=r,
        )
        self.prefix_saved = Gauge(
            "rankgate_shared_prefix_tokens_saved",
            "Decoder rerankers: prompt and query tokens not computed again because documents "
            "of a request shared them (their keys and values were computed once and reused, "
            "in the same forward pass or a later one); grows only.",
            m,
            registry=r,
        )
        self.queue_tokens = Gauge("rankgate_queue_tokens", "Tokens waiting.", m, registry=r)
        self.queue_pairs = Gauge("rankgate_queue_pairs", "Pairs waiting.", m, registry=r)
        self.in_flight = Gauge("rankgate_requests_in_flight", "Requests being served.", registry=r)
        self._caches = _CacheCollector()
        r.register(self._caches)

    def watch_cache(self, model: str, stats: Callable[[], CacheStats]) -> None:
        """Read a model's score cache counters when scraped."""
        self._caches.stats[model] = stats

    def watch_prefix_saved(self, model: str, saved: Callable[[], float]) -> None:
        """Read a model's count of shared-prefix tokens saved when scraped."""
        self.prefix_saved.labels(model).set_function(saved)

    def watch_queue(
        self, model: str, tokens: Callable[[], float], pairs: Callable[[], float]
    ) -> None:
        """Read a model queue's depth when scraped."""
        self.queue_tokens.labels(model).set_function(tokens)
        self.queue_pairs.labels(model).set_function(pairs)

    def for_model(self, model: str) -> QueueObserver:
        """The observer of one model's queue: its steps, passes and cancelled work."""
        for stage in ("queued", "running"):
            self.cancelled_tokens.labels(model, stage)
        for family in (
            self.batch_pairs,
            self.batch_requests,
            self.batch_seconds,
            self.forward_pairs,
            self.forward_real_tokens,
            self.forward_padded_tokens,
        ):
            family.labels(model)  # exported as zero from the start
        return _ModelObserver(self, model)

    def observe_request(self, timings: Timings) -> None:
        """Record a successful scoring request."""
        self.documents.inc(timings.documents)
        self.tokens.inc(timings.tokens)
        for name in ("tokenize", "queue", "inference", "total"):
            self.phase.labels(name).observe(getattr(timings, name))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ModelObserver(QueueObserver):
    def __init__(self, metrics: ServerMetrics, model: str) -> None:
        self.m = metrics
        self.model = model

    def on_step(self, pairs: int, requests: int, seconds: float) -> None:
        self.m.batch_pairs.labels(self.model).observe(pairs)
        self.m.batch_requests.labels(self.model).observe(requests)
        self.m.batch_seconds.labels(self.model).observe(seconds)

    def on_forward(self, pairs: int, real_tokens: int, padded_tokens: int) -> None:
        self.m.forward_pairs.labels(self.model).observe(pairs)
        self.m.forward_real_tokens.labels(self.model).inc(real_tokens)
        self.m.forward_padded_tokens.labels(self.model).inc(padded_tokens)

    def on_cancelled(self, tokens: int, stage: Literal["queued", "running"]) -> None:
        self.m.cancelled_tokens.labels(self.model, stage).inc(tokens)


class _CacheCollector(Collector):
    """``rankgate_cache_*`` per model, read from each score cache's own counters when scraped
    (they are exact there; nothing is counted twice)."""

    def __init__(self) -> None:
        self.stats: dict[str, Callable[[], CacheStats]] = {}

    def collect(self) -> Iterator[Metric]:
        m = ["model"]
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "hits": CounterMetricFamily(
                "rankgate_cache_hits", "Documents whose score the score cache held.", labels=m
            ),
            "misses": CounterMetricFamily(
                "rankgate_cache_misses",
                "Documents looked up in the score cache and not found (then scored).",
                labels=m,
            ),
            "evictions": CounterMetricFamily(
                "rankgate_cache_evictions",
                "Scores dropped, least recently used first, to stay within --cache-size.",
                labels=m,
            ),
            "bytes": GaugeMetricFamily(
                "rankgate_cache_bytes", "Memory the score cache holds (entries, table).", labels=m
            ),
            "entries": GaugeMetricFamily(
                "rankgate_cache_entries", "Scores in the score cache.", labels=m
            ),
            "max_bytes": GaugeMetricFamily(
                "rankgate_cache_max_bytes", "The score cache's memory bound.", labels=m
            ),
        }
        for model, read in self.stats.items():
            snap = read()
            for name, family in families.items():
                family.add_metric([model], getattr(snap, name))
        yield from families.values()
