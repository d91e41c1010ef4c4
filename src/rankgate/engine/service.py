"""The one road to the model: every scoring path goes through :class:`RerankService`.

Rerank (every HTTP dialect), vLLM-style pair scoring, explanations and the funnel's rerank stage
all come here. Each call gets the same treatment: a document count limit, admission to the model
queue (429 with ``Retry-After`` when it is full), tokenization in worker threads, a per-request
token limit, a deadline (the request stops computing once it passed), the queue's batching and
cancellation, and ranking health. Nothing here knows HTTP: limits are explicit and observers are
plain callables, so the server, Ray Serve and tests build one the same way.

With a :class:`~rankgate.engine.cache.ScoreCache`, rerank and pair scoring look every document
up first (after the same validation) and tokenize and score only what the cache does not hold;
a request the cache answers whole never waits for admission or the queue. Results, usage and
errors are those of the same request without the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar

import numpy as np

from rankgate.engine.cache import ScoreCache
from rankgate.engine.cached import Lookup, model_fingerprint
from rankgate.engine.explain import DEFAULT_MAX_SEGMENTS, Explanation, assemble, occlusions
from rankgate.engine.queue import ModelQueue, Priority, QueueLimits, QueueObserver
from rankgate.engine.reranker import DocFacts, PreparedRequest, Reranker
from rankgate.engine.scoring import aggregate_max
from rankgate.engine.segments import Granularity
from rankgate.errors import (
    EmptyQueryError,
    InputTooLongError,
    NoDocumentsError,
    RequestTimeoutError,
    TooManyDocumentsError,
    UnavailableError,
)
from rankgate.types import Document, LongDocumentPolicy, RerankResult

__all__ = [
    "RankedObserver",
    "RerankCall",
    "RerankOutcome",
    "RerankService",
    "ServiceLimits",
    "Timings",
]

T = TypeVar("T")

RankedObserver = Callable[[list[float], bool], None]
"""Told every ranked request's scores in the order sent, and whether they are normalized."""


@dataclass
class Timings:
    """Seconds spent per phase of one request; feeds histograms, headers and the access log.

    ``tokens`` are the model input tokens computed for it (documents the score cache answered
    cost none); ``documents`` every document ranked.
    """

    started: float = field(default_factory=time.perf_counter)
    tokenize: float = 0.0
    queue: float = 0.0
    inference: float = 0.0
    total: float = 0.0
    tokens: int = 0
    documents: int = 0

    def stop(self) -> None:
        self.total = time.perf_counter() - self.started


@dataclass(frozen=True, slots=True)
class RerankCall:
    """One rerank request in the engine's vocabulary, whatever dialect it came in."""

    query: str
    documents: Sequence[Document]
    top_n: int | None = None
    normalize: bool = True
    rank_fields: Sequence[str] | None = None
    max_chunks: int | None = None
    max_tokens_per_doc: int | None = None
    truncate: bool | None = None  # None: the service's auto_truncate
    instruction: str | None = None  # decoder rerankers; None: the model's default
    isolated: bool = False  # never batched with another request (listwise models)


@dataclass(frozen=True, slots=True)
class RerankOutcome:
    """Ranked results, and the model tokens of all the request's pairs (its usage), whether
    they were computed or came from the score cache."""

    results: list[RerankResult]
    input_tokens: int


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """What one request may ask of the model.

    Attributes:
        max_documents: most documents (or pairs) per request.
        max_request_tokens: most model tokens one request may need after chunking.
        request_timeout_s: seconds from arrival until the request fails and stops computing.
        auto_truncate: truncate or chunk long inputs unless the request opts out.
        tokenizer_workers: threads that tokenize while the model runs.
        max_explain_segments: most sentences or words one explanation occludes.
        probe_timeout_s: seconds the readiness probe may take.
    """

    max_documents: int = 1000
    max_request_tokens: int = 262_144
    request_timeout_s: float = 60.0
    auto_truncate: bool = True
    tokenizer_workers: int = 2
    max_explain_segments: int = DEFAULT_MAX_SEGMENTS
    probe_timeout_s: float = 10.0


class RerankService:
    """Admits, tokenizes (in worker threads), queues and ranks requests for every route.

    Args:
        reranker: the loaded engine (pairs, chunking, folding scores back).
        queue: the started model queue that owns the model thread.
        limits: per-request limits.
        on_ranked: observer of each ranked request (ranking health).
        cache: scores kept for later requests (None: every document is scored).

    Example:
        >>> service = RerankService(reranker, queue, ServiceLimits())        # doctest: +SKIP
        >>> outcome = await service.rerank(RerankCall("q", ["a", "b"]), Timings())  # doctest: +SKIP
    """

    def __init__(
        self,
        reranker: Reranker,
        queue: ModelQueue,
        limits: ServiceLimits | None = None,
        on_ranked: RankedObserver | None = None,
        cache: ScoreCache | None = None,
    ) -> None:
        self.reranker = reranker
        self.queue = queue
        self.limits = limits or ServiceLimits()
        self._on_ranked = on_ranked
        self.cache = cache
        # Computed once: it names this model in every key, so a cache shared by several
        # services never answers one model with another's scores.
        self._fingerprint = model_fingerprint(reranker) if cache is not None else b""
        self._tokenizers = ThreadPoolExecutor(
            self.limits.tokenizer_workers, thread_name_prefix="rankgate-tokenize"
        )
        self._probe: asyncio.Future[None] | None = None
        self._owns_queue = False

    @classmethod
    def start(
        cls,
        reranker: Reranker,
        limits: ServiceLimits | None = None,
        queue_limits: QueueLimits | None = None,
        *,
        observer: QueueObserver | None = None,
        on_ranked: RankedObserver | None = None,
        cache: ScoreCache | None = None,
    ) -> RerankService:
        """A service over its own, started model queue (closed with the service).

        ``queue_limits`` defaults to one forward pass per step and a queue of 1M tokens.

        Example:
            >>> cache = ScoreCache(256 << 20)  # keep up to 256 MiB of scores
            >>> service = RerankService.start(reranker, cache=cache)  # doctest: +SKIP
        """
        queue = ModelQueue(
            reranker.score_encoded,
            queue_limits or QueueLimits(reranker.batch_tokens, 1 << 20),
            observer,
        )
        queue.start()
        service = cls(reranker, queue, limits, on_ranked, cache)
        service._owns_queue = True
        return service

    def close(self) -> None:
        """Stop the tokenizer threads (and the queue, when :meth:`start` made it)."""
        self._tokenizers.shutdown(wait=False, cancel_futures=True)
        if self._owns_queue:
            self.queue.close()

    # -- scoring paths -----------------------------------------------------------------------

    async def rerank(
        self, call: RerankCall, timings: Timings, *, priority: Priority = "normal"
    ) -> RerankOutcome:
        """Rank one query's documents.

        Raises:
            InputError: invalid or too large input. OverloadedError: the queue is full.
            BackendError: the model failed. UnavailableError: the service is shutting down.
            RequestTimeoutError: the deadline passed (the request stopped computing).
        """
        return await self.bounded(self._rerank(call, timings, priority))

    async def score(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        normalize: bool,
        timings: Timings,
        *,
        instruction: str | None = None,
    ) -> tuple[list[float], int]:
        """Scores of (queries[i], documents[i]) pairs, in their order, and the tokens used."""
        work = self._score_pairs(queries, documents, normalize, timings, instruction)
        return await self.bounded(work)

    async def explain(
        self,
        query: str,
        document: Document,
        granularity: Granularity,
        timings: Timings,
        *,
        instruction: str | None = None,
    ) -> Explanation:
        """Occlusion attribution of one document's score, scored at low priority.

        Raises:
            InputError: empty query or document, too many segments, too many tokens.
            OverloadedError, UnavailableError, RequestTimeoutError, BackendError: as rerank.
        """
        return await self.bounded(self._explain(query, document, granularity, timings, instruction))

    async def bounded(self, work: Awaitable[T]) -> T:
        """``work`` within the request deadline; past it, it is cancelled (stops computing).

        Raises:
            RequestTimeoutError: the deadline passed first.
        """
        timeout = self.limits.request_timeout_s
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeoutError(f"the request took longer than {timeout:g} s") from None

    def check_admission(self, priority: Priority = "normal") -> None:
        """Refuse at once when the queue (or ``priority``'s share of it) is full."""
        self.queue.check_admission(0, priority)

    # -- health ------------------------------------------------------------------------------

    def check_alive(self, stall_limit_s: float) -> None:
        """Liveness: the model thread runs and finished a pass within ``stall_limit_s``.

        A long backlog is not a failure: only a worker that stopped, or one stuck in a single
        step with no forward pass finishing, is.

        Raises:
            UnavailableError: the worker stopped or is stuck.
        """
        if not self.queue.alive:
            raise UnavailableError("the model thread is not running")
        stalled = self.queue.stalled_s()
        if stalled > stall_limit_s:
            raise UnavailableError(
                f"no forward pass finished in the last {stalled:.0f} s (limit {stall_limit_s:g} s)"
            )

    async def probe(self) -> None:
        """Readiness: score a fixed pair end to end, at the head of the queue.

        Concurrent probes share one scoring.

        Raises:
            UnavailableError: the probe failed or did not finish within ``probe_timeout_s``.
        """
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._run_probe())
        await asyncio.shield(self._probe)

    async def _run_probe(self) -> None:
        try:
            prepared = self.reranker.prepare("health check", ["the model answers"])
            logits, _ = await asyncio.wait_for(
                self.queue.submit(prepared.pairs, "probe"), self.limits.probe_timeout_s
            )
        except asyncio.TimeoutError:
            raise UnavailableError("health probe timed out") from None
        except UnavailableError:
            raise
        except Exception as exc:
            raise UnavailableError("health probe failed") from exc
        if not np.all(np.isfinite(logits)):
            raise UnavailableError("health probe returned a non-finite score")

    def abort(self, reason: str) -> int:
        """Fail everything queued or running with UnavailableError(reason); returns the count."""
        return self.queue.abort(UnavailableError(reason))

    # -- the road ----------------------------------------------------------------------------

    async def _rerank(
        self, call: RerankCall, timings: Timings, priority: Priority
    ) -> RerankOutcome:
        self._check_count(len(call.documents))
        [(raw, facts)], tokens = await self._scored([call], timings, priority, call.isolated)
        ranked = self.reranker.ranked(call.documents, raw, facts, normalize=call.normalize)
        if self._on_ranked is not None:
            # Every document's score in the order sent (the retrieval order), before top_n.
            sent_order = sorted(ranked, key=lambda r: r.index)
            self._on_ranked([r.score for r in sent_order], call.normalize)
        results = ranked if call.top_n is None else ranked[: call.top_n]
        return RerankOutcome(results, tokens)

    async def _score_pairs(
        self,
        queries: Sequence[str],
        documents: Sequence[str],
        normalize: bool,
        timings: Timings,
        instruction: str | None,
    ) -> tuple[list[float], int]:
        if not queries:
            raise EmptyQueryError("no query was given")
        if not documents:
            raise NoDocumentsError("no documents were given; send at least one")
        self._check_count(len(documents))
        groups: dict[str, list[int]] = {}
        for i, query in enumerate(queries):
            groups.setdefault(query, []).append(i)
        calls = [
            RerankCall(q, [documents[i] for i in idx], instruction=instruction)
            for q, idx in groups.items()
        ]
        scored, tokens = await self._scored(calls, timings, "normal")
        scores = [0.0] * len(documents)
        for idx, call, (raw, facts) in zip(groups.values(), calls, scored, strict=True):
            for result in self.reranker.ranked(call.documents, raw, facts, normalize=normalize):
                scores[idx[result.index]] = result.score
        return scores, tokens

    async def _scored(
        self,
        calls: list[RerankCall],
        timings: Timings,
        priority: Priority,
        isolated: bool = False,
    ) -> tuple[list[tuple[np.ndarray, Sequence[DocFacts]]], int]:
        """Each call's raw (aggregated) scores and how each document was read, and the model
        tokens of all their pairs (computed or cached: what the request is worth)."""
        # A listwise model's scores depend on the whole candidate set: none is kept alone.
        if self.cache is not None and not isolated:
            if self.queue.closing:  # even what the cache holds: the service is going away
                raise UnavailableError("the server is shutting down")
            lookups = await self._look_up(calls, timings, priority)
            missing = [lookup.prepared for lookup in lookups if lookup.prepared is not None]
            logits = iter(await self._submit(missing, timings, priority) if missing else [])
            scored: list[tuple[np.ndarray, Sequence[DocFacts]]] = [
                lookup.complete(self.cache, next(logits) if lookup.prepared else None)
                for lookup in lookups
            ]
            return scored, sum(lookup.input_tokens for lookup in lookups)
        self.queue.check_admission(0, priority)  # refuse before spending time tokenizing
        prepared = await self._tokenize(timings, lambda: [self._prepare(c) for c in calls])
        window_logits = await self._submit(prepared, timings, priority, isolated=isolated)
        return [
            (aggregate_max(lg, [plan.chunks for plan in p.plans]), p.plans)
            for p, lg in zip(prepared, window_logits, strict=True)
        ], sum(p.input_tokens for p in prepared)

    async def _explain(
        self,
        query: str,
        document: Document,
        granularity: Granularity,
        timings: Timings,
        instruction: str | None,
    ) -> Explanation:
        self.queue.check_admission(0, "low")
        limit = self.limits.max_explain_segments
        holder: list[tuple[str, list[tuple[int, int]]]] = []

        def prepare() -> list[PreparedRequest]:
            text, spans, variants = occlusions(document, granularity, limit)
            holder.append((text, spans))
            return [self.reranker.prepare(query, variants, instruction=instruction)]

        prepared = await self._tokenize(timings, prepare)
        logits = await self._submit(prepared, timings, "low")
        plans = prepared[0].plans
        scores = aggregate_max(logits[0], [len(p.pairs) for p in plans])
        text, spans = holder[0]
        return assemble(query, text, granularity, spans, [float(s) for s in scores])

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_documents:
            raise TooManyDocumentsError(count, self.limits.max_documents)

    async def _tokenize(
        self, timings: Timings, work: Callable[[], list[PreparedRequest]]
    ) -> list[PreparedRequest]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self._tokenizers, work)
        timings.tokenize = time.perf_counter() - started
        tokens = sum(p.input_tokens for p in prepared)
        self._check_tokens(tokens)
        timings.tokens = tokens
        timings.documents = sum(len(p.plans) for p in prepared)
        return prepared

    def _check_tokens(self, tokens: int) -> None:
        if tokens > self.limits.max_request_tokens:
            raise InputTooLongError(
                f"the request needs {tokens} tokens after chunking; the limit is "
                f"{self.limits.max_request_tokens} (send fewer or shorter documents, or set "
                "max_chunks_per_doc / max_tokens_per_doc)"
            )

    async def _look_up(
        self, calls: list[RerankCall], timings: Timings, priority: Priority
    ) -> list[Lookup]:
        """Each call's documents looked up, after the validation ``prepare`` does, and the
        missing ones tokenized (in a worker thread). Admission is asked only when something is
        missing: a request the cache answers whole needs no room in the queue."""
        cache = self.cache
        assert cache is not None
        admitted: list[bool] = []

        def admit() -> None:
            if not admitted:
                self.queue.check_admission(0, priority)  # before tokenizing
                admitted.append(True)

        def work() -> list[Lookup]:
            return [
                Lookup.request(
                    cache,
                    self.reranker,
                    self._fingerprint,
                    call.query,
                    call.documents,
                    rank_fields=call.rank_fields,
                    instruction=call.instruction,
                    **self._long_options(call),
                    admit=admit,
                )
                for call in calls
            ]

        started = time.perf_counter()
        lookups = await asyncio.get_running_loop().run_in_executor(self._tokenizers, work)
        timings.tokenize = time.perf_counter() - started
        # The limit is on what the request needs, as without the cache: whether a request is
        # refused never depends on what earlier requests left in the cache.
        self._check_tokens(sum(lookup.input_tokens for lookup in lookups))
        timings.tokens = sum(lookup.computed_tokens for lookup in lookups)
        timings.documents = sum(len(lookup.keys) for lookup in lookups)
        return lookups

    async def _submit(
        self,
        prepared: list[PreparedRequest],
        timings: Timings,
        priority: Priority,
        *,
        isolated: bool = False,
    ) -> list[np.ndarray]:
        pairs = [pair for p in prepared for pair in p.pairs]
        logits, batch = await self.queue.submit(pairs, priority, isolated=isolated)
        timings.queue, timings.inference = batch.queue_s, batch.inference_s
        out, start = [], 0
        for p in prepared:
            n = sum(len(plan.pairs) for plan in p.plans)
            out.append(logits[start : start + n])
            start += n
        return out

    def _long_options(self, call: RerankCall) -> _LongOptions:
        """The long-document options ``prepare`` gets (policy None: the model's)."""
        truncate = self.limits.auto_truncate if call.truncate is None else call.truncate
        return {
            "long_documents": None if truncate else "reject",
            "max_chunks": call.max_chunks,
            "max_tokens_per_doc": call.max_tokens_per_doc,
        }

    def _prepare(self, call: RerankCall) -> PreparedRequest:
        return self.reranker.prepare(
            call.query,
            call.documents,
            rank_fields=call.rank_fields,
            instruction=call.instruction,
            **self._long_options(call),
        )


class _LongOptions(TypedDict):
    long_documents: LongDocumentPolicy | None
    max_chunks: int | None
    max_tokens_per_doc: int | None
