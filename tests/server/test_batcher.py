"""The batcher on its own: requests share model steps, failures stay with their request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from rankgate.backends.base import EncodedPair
from rankgate.errors import NonFiniteScoreError, OverloadedError, UnavailableError
from rankgate.server.batcher import Batcher


def pair(value: int, length: int = 4) -> EncodedPair:
    return EncodedPair((value,) * length)


class Model:
    """Scores a pair by its first token id; a pair starting with 666 fails the whole call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        self.calls.append(len(pairs))
        if any(p.input_ids[0] == 666 for p in pairs):
            raise NonFiniteScoreError("nan")
        return np.array([float(p.input_ids[0]) for p in pairs], dtype=np.float32)


def make(model: Model, **kwargs: float) -> Batcher:
    options = dict(max_batch_tokens=1000, max_queue_tokens=10_000, wait_s=0.05)
    options.update(kwargs)
    batcher = Batcher(model, **options)  # type: ignore[arg-type]
    batcher.start()
    return batcher


def test_concurrent_requests_share_one_step_and_get_their_own_scores() -> None:
    model, seen = Model(), []
    batcher = make(model)
    batcher._on_batch = lambda pairs, requests, s: seen.append(requests)

    async def main() -> list[list[float]]:
        jobs = [batcher.submit([pair(i), pair(i + 100)]) for i in range(5)]
        return [out[0].tolist() for out in await asyncio.gather(*jobs)]

    assert asyncio.run(main()) == [[float(i), float(i + 100)] for i in range(5)]
    assert model.calls == [10]
    assert seen == [5]
    batcher.close()
    assert batcher.join(5)


def test_a_failing_request_does_not_fail_its_neighbours() -> None:
    batcher = make(Model())

    async def main() -> list[object]:
        jobs = [batcher.submit([pair(1)]), batcher.submit([pair(666)]), batcher.submit([pair(3)])]
        return await asyncio.gather(*jobs, return_exceptions=True)

    good, bad, other = asyncio.run(main())
    assert good[0].tolist() == [1.0]  # type: ignore[index]
    assert isinstance(bad, NonFiniteScoreError)
    assert other[0].tolist() == [3.0]  # type: ignore[index]
    batcher.close()


def test_step_budget_splits_the_queue() -> None:
    model = Model()
    batcher = make(model, max_batch_tokens=8)

    async def main() -> None:
        await asyncio.gather(*[batcher.submit([pair(i)]) for i in range(4)])

    asyncio.run(main())
    assert sum(model.calls) == 4 and max(model.calls) <= 2
    batcher.close()


def test_full_queue_is_overloaded_with_retry_after() -> None:
    batcher = Batcher(Model(), max_batch_tokens=100, max_queue_tokens=10, wait_s=0)
    # Not started: nothing leaves the queue.

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit([pair(1, 8)]))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as info:
            await batcher.submit([pair(2, 8)])
        assert info.value.retry_after >= 1
        assert batcher.queued_tokens == 8 and batcher.queued_pairs == 1
        first.cancel()

    asyncio.run(main())


def test_closed_batcher_refuses_but_finishes_the_queue() -> None:
    batcher = Batcher(Model(), max_batch_tokens=100, max_queue_tokens=100, wait_s=0)

    async def main() -> None:
        queued = asyncio.ensure_future(batcher.submit([pair(7)]))
        await asyncio.sleep(0)
        batcher.close()
        with pytest.raises(UnavailableError):
            await batcher.submit([pair(1)])
        batcher.start()
        assert (await queued)[0].tolist() == [7.0]

    asyncio.run(main())
    assert batcher.join(5)
