"""The model queue: pairs from concurrent requests share forward passes on one worker thread.

One worker thread owns the model. Requests (already tokenized) put their pairs on a queue
bounded in tokens; the worker takes the oldest request of the highest priority, waits a few
milliseconds for others unless the step's token budget is already full, scores their pairs in
one call (which sorts by length and cuts forward passes by the token budget), and hands every
request its slice of the logits. A request larger than one step is cut into steps, longest
pairs first, and stays at the head of its priority: between two of its steps, higher-priority
work goes first, so a big explanation never holds a rerank request for longer than one step.

- **Admission**: a full queue raises :class:`~rankgate.errors.OverloadedError` at once (the
  server's 429 with ``Retry-After``) instead of letting latency grow without bound. Low-priority
  work (explanations, search) may fill only its share of the queue, so a flood of it is refused
  while rerank requests still get in.
- **Priority**: probes first, then normal requests, then low-priority ones; a low-priority request
  waits behind at most the step that is running when a rerank request arrives.
- **Cancellation**: a request whose caller went away (client disconnect, deadline) leaves the
  queue at once, and a step that is running skips its remaining pairs at the next forward pass.
- **Progress**: the worker's heartbeat (last finished pass, current step's start) tells liveness
  apart from a long backlog.

Model agnostic: it sees only token ids. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from rankgate.backends.base import EncodedPair
from rankgate.engine.batching import ForwardObserver, Keep
from rankgate.errors import OverloadedError, UnavailableError

__all__ = [
    "PRIORITIES",
    "BatchStats",
    "ModelQueue",
    "Priority",
    "QueueLimits",
    "QueueObserver",
    "ScoreFn",
]

log = logging.getLogger(__name__)

Priority = Literal["probe", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("probe", "normal", "low")


class ScoreFn(Protocol):
    """Raw logits for pairs in order (``Reranker.score_encoded``); ``keep`` is asked per pair."""

    def __call__(
        self,
        pairs: Sequence[EncodedPair],
        *,
        keep: Keep | None = None,
        on_forward: ForwardObserver | None = None,
    ) -> np.ndarray: ...


class QueueObserver:
    """What the queue reports (metrics); every method is a no-op here, override what you need."""

    def on_step(self, pairs: int, requests: int, seconds: float) -> None:
        """A model step finished: its pairs, the requests they came from, its seconds."""

    def on_forward(self, pairs: int, real_tokens: int, padded_tokens: int) -> None:
        """A forward pass finished."""

    def on_cancelled(self, tokens: int, stage: Literal["queued", "running"]) -> None:
        """Tokens not computed because their request was cancelled while waiting or running."""


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """How much the queue gathers and holds.

    Attributes:
        max_batch_tokens: tokens gathered for one model step; a larger request goes alone.
        max_queue_tokens: tokens allowed to wait; beyond it ``submit`` raises OverloadedError.
        wait_s: how long a step waits for more requests after the oldest one arrived.
        low_priority_share: the share of ``max_queue_tokens`` low-priority work may hold.
    """

    max_batch_tokens: int
    max_queue_tokens: int
    wait_s: float = 0.003
    low_priority_share: float = 0.25

    def __post_init__(self) -> None:
        if self.max_batch_tokens < 1 or self.max_queue_tokens < 1:
            raise ValueError("max_batch_tokens and max_queue_tokens must be at least 1")
        if not 0 < self.low_priority_share <= 1:
            raise ValueError("low_priority_share must be in (0, 1]")

    @property
    def max_low_tokens(self) -> int:
        return max(1, int(self.max_queue_tokens * self.low_priority_share))


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What one request saw of the steps that scored it.

    Attributes:
        queue_s: from arrival to the start of its first step.
        inference_s: seconds of the steps that computed its pairs.
        batch_pairs: most pairs of a step it shared.
        batch_requests: most requests of a step it shared.
    """

    queue_s: float
    inference_s: float
    batch_pairs: int
    batch_requests: int


Outcome = tuple[np.ndarray, BatchStats]


@dataclass(eq=False)
class _Job:
    pairs: Sequence[EncodedPair]
    tokens: int
    priority: Priority
    future: asyncio.Future[Outcome]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    isolated: bool = False  # never shares a step with another request (listwise models)
    running: bool = False  # a step has taken some of its pairs
    order: list[int] = field(init=False)  # pair indices, longest first: the order steps take
    taken: int = 0  # how many of ``order`` steps have taken
    untaken_tokens: int = field(init=False)
    done: int = 0
    logits: np.ndarray = field(init=False)
    started: float | None = None
    inference_s: float = 0.0
    step_pairs: int = 0
    step_requests: int = 0

    def __post_init__(self) -> None:
        self.order = sorted(range(len(self.pairs)), key=lambda i: -len(self.pairs[i]))
        self.untaken_tokens = self.tokens
        self.logits = np.full(len(self.pairs), np.nan, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class _Part:
    """The pairs of one job that one step computes."""

    job: _Job
    indices: list[int]


def _resolve(
    future: asyncio.Future[Outcome], value: Outcome | None, error: BaseException | None
) -> None:
    if future.done():  # cancelled: the caller went away or its deadline passed
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)


class ModelQueue:
    """Collects pairs from concurrent requests into model steps on one worker thread.

    Args:
        score: raw logits for a list of pairs, in order (``Reranker.score_encoded``).
        limits: step and queue sizes.
        observer: told of steps, forward passes and cancelled work (metrics).
        on_start: run first in the worker thread (per-thread settings such as CPU threads).

    Example:
        >>> queue = ModelQueue(reranker.score_encoded, QueueLimits(4096, 1 << 20))  # doctest: +SKIP
        >>> queue.start()                                                          # doctest: +SKIP
        >>> logits, stats = await queue.submit(prepared.pairs)                     # doctest: +SKIP
    """

    def __init__(
        self,
        score: ScoreFn,
        limits: QueueLimits,
        observer: QueueObserver | None = None,
        *,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self._score = score
        self._on_start = on_start
        self.limits = limits
        self._observer = observer or QueueObserver()
        self._queues: dict[Priority, deque[_Job]] = {p: deque() for p in PRIORITIES}
        self._cond = threading.Condition()
        self._queued_tokens = 0
        self._queued_low_tokens = 0
        self._queued_pairs = 0
        self._running: list[_Part] = []
        self._running_tokens = 0
        self._tokens_per_s: float | None = None
        self._closing = False
        self._step_started: float | None = None
        self._last_progress = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rankgate-model", daemon=True)

    # -- state -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_tokens(self) -> int:
        return self._queued_tokens

    @property
    def queued_pairs(self) -> int:
        return self._queued_pairs

    @property
    def closing(self) -> bool:
        """:meth:`close` was called: no new work is taken."""
        return self._closing

    @property
    def alive(self) -> bool:
        """The worker thread is running (it stops only after :meth:`close`)."""
        return self._thread.is_alive()

    def stalled_s(self) -> float:
        """Seconds the worker has been busy without finishing a forward pass; 0 when idle."""
        started = self._step_started
        if started is None:
            return 0.0
        return time.monotonic() - max(started, self._last_progress)

    def retry_after(self) -> int:
        """Seconds until the backlog should have cleared, from the observed throughput."""
        backlog = self._queued_tokens + self._running_tokens
        if not self._tokens_per_s:
            return 1
        return max(1, min(60, math.ceil(backlog / self._tokens_per_s)))

    # -- admission ---------------------------------------------------------------------------

    def check_admission(self, tokens: int, priority: Priority = "normal") -> None:
        """Refuse work the queue cannot take now.

        Raises:
            UnavailableError: the queue is closing. OverloadedError: the queue (or the share
            of it that ``priority`` may use) is full.
        """
        if self._closing:
            raise UnavailableError("the server is shutting down")
        if priority == "probe":
            return
        queued = self._queued_tokens
        if queued and queued + tokens > self.limits.max_queue_tokens:
            raise OverloadedError(
                f"the queue is full ({queued} tokens waiting); retry later",
                retry_after=self.retry_after(),
            )
        low = self._queued_low_tokens
        if priority == "low" and low and low + tokens > self.limits.max_low_tokens:
            raise OverloadedError(
                f"the queue's share for explanations and search is full ({low} tokens "
                "waiting); retry later",
                retry_after=self.retry_after(),
            )

    async def submit(
        self, pairs: Sequence[EncodedPair], priority: Priority = "normal", *, isolated: bool = False
    ) -> Outcome:
        """Score ``pairs`` together with whatever else is waiting.

        Cancelling the awaiting task (client gone, deadline passed) takes the request off the
        queue, or makes a running step skip its remaining pairs.

        Args:
            pairs: one request's pairs.
            priority: ``probe`` (health checks: no queue bound, served first), ``normal``
                (rerank) or ``low`` (explanations, search; their own share of the queue).
            isolated: never batch these pairs with another request's (a listwise model's
                scores depend on the whole candidate set).

        Raises:
            OverloadedError, UnavailableError: see :meth:`check_admission`.
            BackendError: the model failed on this request's pairs.
        """
        if not pairs:
            return np.empty(0, dtype=np.float32), BatchStats(0.0, 0.0, 0, 0)
        loop = asyncio.get_running_loop()
        job = _Job(pairs, sum(len(p) for p in pairs), priority, loop.create_future(), loop)
        job.isolated = isolated
        with self._cond:
            self.check_admission(job.tokens, priority)
            self._enqueue(job)
            self._cond.notify()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    def abort(self, error: BaseException) -> int:
        """Fail every queued and running request with ``error`` (the shutdown deadline).

        Returns the number of requests failed; running steps skip their remaining pairs.
        """
        with self._cond:
            jobs = list(
                dict.fromkeys(
                    [job for q in self._queues.values() for job in q]
                    + [part.job for part in self._running]
                )
            )
            for q in self._queues.values():
                for job in q:
                    self._observer.on_cancelled(
                        job.untaken_tokens, "running" if job.running else "queued"
                    )
                    self._unqueue(job)
                q.clear()
            for job in jobs:
                job.cancelled = True
        for job in jobs:
            self._deliver(job, None, error)
        return len(jobs)

    def close(self) -> None:
        """Refuse new work; the worker finishes what is queued, then stops."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to stop; True when it did."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- worker ------------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        self._queues[job.priority].append(job)
        self._queued_tokens += job.tokens
        self._queued_pairs += len(job.pairs)
        if job.priority == "low":
            self._queued_low_tokens += job.tokens

    def _take_tokens(self, job: _Job, tokens: int, pairs: int) -> None:
        """Account for ``tokens`` of ``job`` that leave the queue (taken, or dropped)."""
        job.untaken_tokens -= tokens
        self._queued_tokens -= tokens
        self._queued_pairs -= pairs
        if job.priority == "low":
            self._queued_low_tokens -= tokens

    def _unqueue(self, job: _Job) -> None:
        """Drop what is left of ``job`` from the counts (its deque entry is the caller's)."""
        self._take_tokens(job, job.untaken_tokens, len(job.order) - job.taken)
        job.taken = len(job.order)

    def _cancel(self, job: _Job) -> None:
        with self._cond:
            if job.cancelled:
                return
            job.cancelled = True
            queue = self._queues[job.priority]
            if job in queue:
                self._observer.on_cancelled(
                    job.untaken_tokens, "running" if job.running else "queued"
                )
                queue.remove(job)
                self._unqueue(job)
            # Pairs a running step already holds are skipped at its next forward pass.

    def _oldest(self) -> _Job | None:
        for priority in PRIORITIES:
            if self._queues[priority]:
                return self._queues[priority][0]
        return None

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            with self._cond:
                while self._oldest() is None and not self._closing:
                    self._cond.wait()
                first = self._oldest()
                if first is None:
                    return
                # Wait for company only while the oldest request is younger than wait_s.
                deadline = first.enqueued + self.limits.wait_s
                while (
                    self._queued_tokens < self.limits.max_batch_tokens
                    and not self._closing
                    and first.priority != "probe"
                ):
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                parts = self._take()
                self._running = parts
                self._step_started = time.monotonic() if parts else None
            if parts:
                try:
                    self._execute(parts)
                finally:
                    with self._cond:
                        self._running = []
                        self._running_tokens = 0
                        self._step_started = None
                        self._last_progress = time.monotonic()

    def _take(self) -> list[_Part]:
        """The next step: whole jobs while they fit, and the head of one that does not."""
        parts: list[_Part] = []
        budget = self.limits.max_batch_tokens
        tokens = 0
        for priority in PRIORITIES:
            queue = self._queues[priority]
            while queue and tokens < budget:
                job = queue[0]
                if parts and (job.isolated or parts[0].job.isolated):
                    break  # an isolated request has its steps to itself
                if parts and not job.running and tokens + job.tokens > budget >= job.tokens:
                    break  # a request that fits a step waits for the next one, whole
                indices: list[int] = []
                taken_tokens = 0
                while job.taken < len(job.order):
                    i = job.order[job.taken]
                    size = len(job.pairs[i])
                    if (parts or indices) and tokens + taken_tokens + size > budget:
                        break
                    indices.append(i)
                    taken_tokens += size
                    job.taken += 1
                if not indices:
                    break
                self._take_tokens(job, taken_tokens, len(indices))
                job.running = True
                parts.append(_Part(job, indices))
                tokens += taken_tokens
                if job.taken == len(job.order):
                    queue.popleft()
                else:
                    break  # the step is full; the job keeps its place at the head
            if queue:
                break  # a lower priority never jumps a higher one that did not fit
        self._running_tokens = tokens
        return parts

    def _keeper(self, parts: list[_Part]) -> Keep:
        starts = list(np.cumsum([0] + [len(part.indices) for part in parts[:-1]]))
        pairs = [part.job.pairs[i] for part in parts for i in part.indices]

        def keep(i: int) -> bool:
            job = parts[bisect.bisect_right(starts, i) - 1].job
            if job.cancelled:
                self._observer.on_cancelled(len(pairs[i]), "running")
                return False
            return True

        return keep

    def _on_forward(self, pairs: int, real: int, padded: int) -> None:
        self._last_progress = time.monotonic()
        self._observer.on_forward(pairs, real, padded)

    def _execute(self, parts: list[_Part]) -> None:
        live = [part for part in parts if not part.job.cancelled]
        if not live:
            return
        started = time.perf_counter()
        pairs = [part.job.pairs[i] for part in live for i in part.indices]
        try:
            logits = self._score(pairs, keep=self._keeper(live), on_forward=self._on_forward)
        except Exception as exc:
            if len(live) > 1:
                # One request's bad input (say, a NaN score) must not fail its neighbours.
                for part in live:
                    self._execute([part])
                return
            log.debug("scoring failed: %s", type(exc).__name__)
            self._fail(live[0].job, exc)
            return
        elapsed = time.perf_counter() - started
        if not any(part.job.cancelled for part in live):
            rate = sum(len(p) for p in pairs) / max(elapsed, 1e-6)
            self._tokens_per_s = (
                rate if self._tokens_per_s is None else (0.8 * self._tokens_per_s + 0.2 * rate)
            )
        self._observer.on_step(len(pairs), len(live), elapsed)
        offset = 0
        for part in live:
            job = part.job
            n = len(part.indices)
            job.logits[part.indices] = logits[offset : offset + n]
            offset += n
            job.done += n
            if job.started is None:
                job.started = started
            job.inference_s += elapsed
            job.step_pairs = max(job.step_pairs, len(pairs))
            job.step_requests = max(job.step_requests, len(live))
            if job.cancelled or job.done < len(job.pairs):
                continue
            stats = BatchStats(
                job.started - job.enqueued, job.inference_s, job.step_pairs, job.step_requests
            )
            self._deliver(job, (job.logits, stats), None)

    def _fail(self, job: _Job, error: BaseException) -> None:
        """The model failed on ``job``: it gets the error and leaves the queue."""
        with self._cond:
            job.cancelled = True
            queue = self._queues[job.priority]
            if job in queue:
                queue.remove(job)
                self._unqueue(job)
        self._deliver(job, None, error)

    @staticmethod
    def _deliver(job: _Job, value: Outcome | None, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            job.loop.call_soon_threadsafe(_resolve, job.future, value, error)
