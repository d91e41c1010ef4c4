"""The model queue on its own: shared steps, isolation, admission, priority, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from rankgate.backends.base import EncodedPair
from rankgate.engine.batching import ForwardObserver, Keep
from rankgate.engine.queue import ModelQueue, QueueLimits, QueueObserver
from rankgate.errors import NonFiniteScoreError, OverloadedError, UnavailableError


def pair(value: int, length: int = 4) -> EncodedPair:
    return EncodedPair((value,) * length)


class Model:
    """Scores a pair by its first token id, one forward pass per pair (so cancellation points
    exist between pairs); a pair starting with 666 fails the whole call. ``gate`` holds every
    forward pass until it is set."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.computed: list[int] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(
        self,
        pairs: Sequence[EncodedPair],
        *,
        keep: Keep | None = None,
        on_forward: ForwardObserver | None = None,
    ) -> np.ndarray:
        self.calls.append(len(pairs))
        if any(p.input_ids[0] == 666 for p in pairs):
            raise NonFiniteScoreError("nan")
        out = np.full(len(pairs), np.nan, dtype=np.float32)
        for i, p in enumerate(pairs):
            if keep is not None and not keep(i):
                continue
            self.entered.set()
            self.gate.wait(10)
            time.sleep(self.delay)
            out[i] = float(p.input_ids[0])
            self.computed.append(p.input_ids[0])
            if on_forward is not None:
                on_forward(1, len(p), len(p))
        return out


class Recorder(QueueObserver):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.cancelled: dict[str, int] = {"queued": 0, "running": 0}

    def on_step(self, pairs: int, requests: int, seconds: float) -> None:
        self.steps.append(requests)

    def on_cancelled(self, tokens: int, stage: str) -> None:  # type: ignore[override]
        self.cancelled[stage] += tokens


def wait_idle(queue: ModelQueue) -> None:
    for _ in range(500):
        if queue.stalled_s() == 0.0 and not queue._running:
            return
        time.sleep(0.01)
    raise AssertionError("the worker did not go idle")


def make(model: Model, observer: QueueObserver | None = None, **kwargs: float) -> ModelQueue:
    options: dict[str, float] = dict(max_batch_tokens=1000, max_queue_tokens=10_000, wait_s=0.05)
    options.update(kwargs)
    queue = ModelQueue(model, QueueLimits(**options), observer)  # type: ignore[arg-type]
    queue.start()
    return queue


def test_concurrent_requests_share_one_step_and_get_their_own_scores() -> None:
    model, seen = Model(), Recorder()
    queue = make(model, seen)

    async def main() -> list[list[float]]:
        jobs = [queue.submit([pair(i), pair(i + 100)]) for i in range(5)]
        return [out[0].tolist() for out in await asyncio.gather(*jobs)]

    assert asyncio.run(main()) == [[float(i), float(i + 100)] for i in range(5)]
    assert model.calls == [10]
    assert seen.steps == [5]
    queue.close()
    assert queue.join(5)


def test_a_failing_request_does_not_fail_its_neighbours() -> None:
    queue = make(Model())

    async def main() -> list[object]:
        jobs = [queue.submit([pair(1)]), queue.submit([pair(666)]), queue.submit([pair(3)])]
        return await asyncio.gather(*jobs, return_exceptions=True)

    good, bad, other = asyncio.run(main())
    assert good[0].tolist() == [1.0]  # type: ignore[index]
    assert isinstance(bad, NonFiniteScoreError)
    assert other[0].tolist() == [3.0]  # type: ignore[index]
    queue.close()


def test_step_budget_splits_the_queue() -> None:
    model = Model()
    queue = make(model, max_batch_tokens=8)

    async def main() -> None:
        await asyncio.gather(*[queue.submit([pair(i)]) for i in range(4)])

    asyncio.run(main())
    assert sum(model.calls) == 4 and max(model.calls) <= 2
    queue.close()


def test_full_queue_is_overloaded_with_retry_after() -> None:
    queue = ModelQueue(Model(), QueueLimits(100, 10, wait_s=0))
    # Not started: nothing leaves the queue.

    async def main() -> None:
        first = asyncio.ensure_future(queue.submit([pair(1, 8)]))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as info:
            await queue.submit([pair(2, 8)])
        assert info.value.retry_after >= 1
        assert queue.queued_tokens == 8 and queue.queued_pairs == 1
        first.cancel()

    asyncio.run(main())


def test_closed_queue_refuses_but_finishes_what_is_queued() -> None:
    queue = ModelQueue(Model(), QueueLimits(100, 100, wait_s=0))

    async def main() -> None:
        queued = asyncio.ensure_future(queue.submit([pair(7)]))
        await asyncio.sleep(0)
        queue.close()
        with pytest.raises(UnavailableError):
            await queue.submit([pair(1)])
        queue.start()
        assert (await queued)[0].tolist() == [7.0]

    asyncio.run(main())
    assert queue.join(5)


def test_low_priority_work_fills_only_its_share_of_the_queue() -> None:
    queue = ModelQueue(Model(), QueueLimits(100, 40, wait_s=0, low_priority_share=0.25))

    async def main() -> None:
        low = asyncio.ensure_future(queue.submit([pair(1, 8)], "low"))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="explanations and search"):
            await queue.submit([pair(2, 8)], "low")
        normal = asyncio.ensure_future(queue.submit([pair(3, 8)]))  # still admitted
        await asyncio.sleep(0)
        assert queue.queued_tokens == 16
        low.cancel()
        normal.cancel()
        await asyncio.sleep(0)
        assert queue.queued_tokens == 0

    asyncio.run(main())


def test_normal_requests_are_served_before_low_priority_ones() -> None:
    model = Model()
    queue = ModelQueue(model, QueueLimits(4, 1000, wait_s=0))  # one pair per step

    async def main() -> None:
        low = [asyncio.ensure_future(queue.submit([pair(100 + i)], "low")) for i in range(3)]
        await asyncio.sleep(0)
        normal = [asyncio.ensure_future(queue.submit([pair(i)])) for i in range(3)]
        await asyncio.sleep(0)
        queue.start()
        await asyncio.gather(*low, *normal)

    asyncio.run(main())
    assert model.computed == [0, 1, 2, 100, 101, 102]
    queue.close()


def test_cancelled_while_queued_costs_no_model_time() -> None:
    model, seen = Model(), Recorder()
    queue = ModelQueue(model, QueueLimits(1000, 1000, wait_s=0), seen)

    async def main() -> None:
        gone = asyncio.ensure_future(queue.submit([pair(9), pair(9)]))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        queue.start()
        assert (await queue.submit([pair(1)]))[0].tolist() == [1.0]

    asyncio.run(main())
    assert 9 not in model.computed
    assert seen.cancelled == {"queued": 8, "running": 0}
    assert queue.queued_tokens == 0
    queue.close()


def test_a_running_request_stops_at_the_next_forward_pass_when_cancelled() -> None:
    model, seen = Model(), Recorder()
    model.gate.clear()
    queue = make(model, seen, wait_s=0)

    async def main() -> None:
        job = asyncio.ensure_future(queue.submit([pair(i) for i in range(10)]))
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        job.cancel()  # during the first pass
        await asyncio.sleep(0.01)
        model.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await job
        for _ in range(200):
            if seen.steps:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert model.computed == [0]  # the pass under way finished; the other nine never ran
    assert seen.cancelled == {"queued": 0, "running": 36}
    queue.close()


def test_abort_fails_queued_and_running_requests() -> None:
    model = Model()
    model.gate.clear()
    queue = make(model, wait_s=0, max_batch_tokens=4)

    async def main() -> list[object]:
        jobs = [asyncio.ensure_future(queue.submit([pair(i), pair(i)])) for i in range(3)]
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        assert queue.abort(UnavailableError("deadline")) == 3
        model.gate.set()
        return await asyncio.gather(*jobs, return_exceptions=True)

    out = asyncio.run(main())
    assert all(isinstance(o, UnavailableError) for o in out)
    wait_idle(queue)
    assert len(model.computed) == 1  # the pass under way; nothing after it
    queue.close()


def test_heartbeat_tells_a_busy_worker_from_a_stuck_one() -> None:
    model = Model()
    model.gate.clear()
    queue = make(model, wait_s=0)
    assert queue.alive and queue.stalled_s() == 0.0

    async def main() -> None:
        job = asyncio.ensure_future(queue.submit([pair(1)]))
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert queue.stalled_s() >= 0.05  # inside one pass, nothing finished
        model.gate.set()
        await job

    asyncio.run(main())
    # The answer is handed over just before the worker marks its step done: wait for that.
    deadline = time.monotonic() + 5
    while queue.stalled_s() != 0.0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert queue.stalled_s() == 0.0  # idle again
    queue.close()
    assert queue.join(5)
    assert not queue.alive


def test_a_request_larger_than_a_step_yields_to_higher_priority_between_its_steps() -> None:
    model = Model()
    queue = ModelQueue(model, QueueLimits(8, 1000, wait_s=0))  # two 4-token pairs per step

    async def main() -> list[list[float]]:
        big = asyncio.ensure_future(queue.submit([pair(100 + i) for i in range(6)], "low"))
        await asyncio.sleep(0)
        model.gate.clear()
        queue.start()
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        urgent = asyncio.ensure_future(queue.submit([pair(1)]))  # arrives during step one
        await asyncio.sleep(0.01)
        model.gate.set()
        return [(await big)[0].tolist(), (await urgent)[0].tolist()]

    big, urgent = asyncio.run(main())
    assert big == [float(100 + i) for i in range(6)]  # in its own order, whatever the steps
    assert urgent == [1.0]
    # Step one held two of the big request's pairs; the urgent pair went next (the rest of its
    # step filled from the big request), not after all six.
    assert model.computed == [100, 101, 1, 102, 103, 104, 105]
    assert model.calls == [2, 2, 2, 1]
    queue.close()


def test_cancelling_a_request_between_its_steps_drops_the_rest() -> None:
    model, seen = Model(), Recorder()
    queue = ModelQueue(model, QueueLimits(8, 1000, wait_s=0), seen)

    async def main() -> None:
        model.gate.clear()
        job = asyncio.ensure_future(queue.submit([pair(i) for i in range(6)]))
        await asyncio.sleep(0)
        queue.start()
        while not model.entered.is_set():
            await asyncio.sleep(0.001)
        job.cancel()
        await asyncio.sleep(0.01)
        model.gate.set()
        for _ in range(200):
            if seen.steps:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert model.computed == [0]
    assert seen.cancelled == {"queued": 0, "running": 20}  # 1 skipped in the step, 4 never taken
    assert queue.queued_tokens == 0
    queue.close()


def test_an_isolated_request_never_shares_a_step() -> None:
    model, seen = Model(), Recorder()
    queue = ModelQueue(model, QueueLimits(1000, 1000, wait_s=0), seen)

    async def main() -> list[list[float]]:
        jobs = [
            asyncio.ensure_future(queue.submit([pair(1)])),
            asyncio.ensure_future(queue.submit([pair(2), pair(3)], isolated=True)),
            asyncio.ensure_future(queue.submit([pair(4)])),
            asyncio.ensure_future(queue.submit([pair(5)])),
        ]
        await asyncio.sleep(0)
        queue.start()
        return [(await j)[0].tolist() for j in jobs]

    assert asyncio.run(main()) == [[1.0], [2.0, 3.0], [4.0], [5.0]]
    assert model.calls == [1, 2, 2]  # before it, itself alone, after it
    assert seen.steps == [1, 1, 2]
    queue.close()
