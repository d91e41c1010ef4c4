"""The engine between routes and model: pairs from concurrent requests share forward passes.

One worker thread owns the model. Requests (already tokenized) put their pairs on a queue
bounded in tokens; the worker takes the oldest request, waits a few milliseconds for others
unless the step's token budget is already full, scores all their pairs in one
``score_encoded`` call (which sorts by length and cuts forward passes by the padded-token
budget), and hands every request its slice of the logits. A full queue raises
:class:`~rankgate.errors.OverloadedError` at once (the server's 429), instead of letting latency
grow without bound. Model agnostic: it sees only token ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rankgate.backends.base import EncodedPair
from rankgate.errors import OverloadedError, UnavailableError

__all__ = ["BatchStats", "Batcher"]

log = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[EncodedPair]], np.ndarray]
BatchObserver = Callable[[int, int, float], None]
"""Called after each model step with (pairs, requests, seconds)."""


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What one request saw of the batch that scored it."""

    queue_s: float
    inference_s: float
    batch_pairs: int
    batch_requests: int


@dataclass(eq=False)
class _Job:
    pairs: Sequence[EncodedPair]
    tokens: int
    future: asyncio.Future[tuple[np.ndarray, BatchStats]]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


def _resolve(
    future: asyncio.Future[tuple[np.ndarray, BatchStats]],
    value: tuple[np.ndarray, BatchStats] | None,
    error: BaseException | None,
) -> None:
    if future.done():  # the request timed out or its client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)


class Batcher:
    """Collects pairs from concurrent requests into model steps on one worker thread.

    Args:
        score: raw logits for a list of pairs, in order (``Reranker.score_encoded``).
        max_batch_tokens: tokens gathered for one model step; a larger request goes alone.
        max_queue_tokens: tokens allowed to wait; beyond it ``submit`` raises OverloadedError.
        wait_s: how long a step waits for more requests after the oldest one arrived.
        on_batch: observer of each step (metrics).
    """

    def __init__(
        self,
        score: ScoreFn,
        *,
        max_batch_tokens: int,
        max_queue_tokens: int,
        wait_s: float,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._score = score
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_tokens = max_queue_tokens
        self.wait_s = wait_s
        self._on_batch = on_batch
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._queued_tokens = 0
        self._queued_pairs = 0
        self._running_tokens = 0
        self._tokens_per_s: float | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="rankgate-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_tokens(self) -> int:
        return self._queued_tokens

    @property
    def queued_pairs(self) -> int:
        return self._queued_pairs

    def retry_after(self) -> int:
        """Seconds until the backlog should have cleared, from the observed throughput."""
        backlog = self._queued_tokens + self._running_tokens
        if not self._tokens_per_s:
            return 1
        return max(1, min(60, math.ceil(backlog / self._tokens_per_s)))

    def check_admission(self, tokens: int) -> None:
        """Refuse work the queue cannot take now.

        Raises:
            UnavailableError: the batcher is closing. OverloadedError: the queue is full.
        """
        if self._closing:
            raise UnavailableError("the server is shutting down")
        queued = self._queued_tokens
        if queued and queued + tokens > self.max_queue_tokens:
            raise OverloadedError(
                f"the queue is full ({queued} tokens waiting); retry later",
                retry_after=self.retry_after(),
            )

    async def submit(
        self, pairs: Sequence[EncodedPair], *, force: bool = False
    ) -> tuple[np.ndarray, BatchStats]:
        """Score ``pairs`` together with whatever else is waiting.

        Args:
            pairs: one request's pairs.
            force: skip the queue bound (health probes); a closing batcher still refuses.

        Raises:
            OverloadedError, UnavailableError: see :meth:`check_admission`.
            BackendError: the model failed on this request's pairs.
        """
        loop = asyncio.get_running_loop()
        job = _Job(pairs, sum(len(p) for p in pairs), loop.create_future(), loop)
        with self._cond:
            if force and self._closing:
                raise UnavailableError("the server is shutting down")
            if not force:
                self.check_admission(job.tokens)
            self._queue.append(job)
            self._queued_tokens += job.tokens
            self._queued_pairs += len(pairs)
            self._cond.notify()
        return await job.future

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

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                # Wait for company only while the oldest request is younger than wait_s.
                deadline = self._queue[0].enqueued + self.wait_s
                while self._queued_tokens < self.max_batch_tokens and not self._closing:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._take()
            if batch:
                self._execute(batch)

    def _take(self) -> list[_Job]:
        batch: list[_Job] = []
        tokens = 0
        while self._queue:
            job = self._queue[0]
            if batch and tokens + job.tokens > self.max_batch_tokens:
                break
            self._queue.popleft()
            self._queued_tokens -= job.tokens
            self._queued_pairs -= len(job.pairs)
            if job.future.done():  # cancelled while waiting: do not spend the model on it
                continue
            batch.append(job)
            tokens += job.tokens
        self._running_tokens = tokens
        return batch

    def _execute(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        pairs = [pair for job in batch for pair in job.pairs]
        try:
            logits = self._score(pairs)
        except Exception as exc:
            if len(batch) > 1:
                # One request's bad input (say, a NaN score) must not fail its neighbours.
                for job in batch:
                    self._execute([job])
                return
            log.debug("scoring failed: %s", type(exc).__name__)
            self._deliver(batch[0], None, exc)
            return
        finally:
            self._running_tokens = 0
        elapsed = time.perf_counter() - started
        tokens = sum(job.tokens for job in batch)
        rate = tokens / max(elapsed, 1e-6)
        self._tokens_per_s = (
            rate if self._tokens_per_s is None else (0.8 * self._tokens_per_s + 0.2 * rate)
        )
        if self._on_batch is not None:
            self._on_batch(len(pairs), len(batch), elapsed)
        offset = 0
        for job in batch:
            part = logits[offset : offset + len(job.pairs)]
            offset += len(job.pairs)
            stats = BatchStats(started - job.enqueued, elapsed, len(pairs), len(batch))
            self._deliver(job, (part, stats), None)

    @staticmethod
    def _deliver(
        job: _Job, value: tuple[np.ndarray, BatchStats] | None, error: BaseException | None
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            job.loop.call_soon_threadsafe(_resolve, job.future, value, error)
