"""The score cache: equal bits on a hit, a miss for every key part changed, bounded memory, LRU
order, and the service's road with it (validation, usage, the queue skipped when all hit)."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import threading
import tracemalloc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from rankgate import InputError, OverloadedError, Reranker, UnavailableError
from rankgate.backends.base import EncodedPair
from rankgate.engine import QueueLimits, RerankCall, RerankService, ScoreCache, ServiceLimits
from rankgate.engine.cache import CachedScore
from rankgate.engine.cached import model_fingerprint, score_keys
from rankgate.engine.service import Timings
from rankgate.testing import SAMPLE_TEXT, KeywordBackend
from rankgate.types import RerankResult

QUERY = "how do I reset the router password"
DOCS = [
    "Hold the reset button of the router for ten seconds to reset the password.",
    "The battery drains in winter.",
    "Log in to the router page and change the admin password.",
]


def key(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "little"), digest_size=16).digest()


def score(i: int) -> CachedScore:
    return CachedScore(i + 0.25, "f", False, 1, 10 + i % 7, 20 + i % 7)


def bits(results: Sequence[RerankResult]) -> list[tuple[Any, ...]]:
    """Everything a result says, its score as its exact float64 bits."""
    return [
        (r.index, struct.pack("<d", r.score), r.document, r.truncated, r.chunks, r.tokens)
        for r in results
    ]


def rerank(service: RerankService, *calls: RerankCall) -> list[list[RerankResult]]:
    async def main() -> list[list[RerankResult]]:
        return [(await service.rerank(c, Timings())).results for c in calls]

    return asyncio.run(main())


# -- the store ---------------------------------------------------------------------------------


def test_lookups_count_hits_and_misses_and_keep_the_first_value() -> None:
    cache = ScoreCache(1 << 20)
    assert cache.get_many([key(1)]) == [None]
    cache.put_many([(key(1), score(1))])
    cache.put_many([(key(1), score(2))])  # a second computation does not replace the first
    assert cache.get_many([key(1), key(2)]) == [score(1), None]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.evictions) == (1, 2, 1, 0)
    assert stats.hit_rate == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="16 bytes"):
        cache.put_many([(b"short", score(1))])
    with pytest.raises(ValueError, match="positive"):
        ScoreCache(0)


def test_least_recently_used_goes_first() -> None:
    probe = ScoreCache(1 << 20)
    probe.put_many((key(i), score(i)) for i in range(8))
    cache = ScoreCache(probe.stats().bytes)  # room for exactly these eight
    cache.put_many((key(i), score(i)) for i in range(8))
    assert cache.stats().evictions == 0
    cache.get_many([key(0)])  # 0 is now the most recently used; 1 the least
    cache.put_many([(key(8), score(8))])
    assert key(1) not in cache and key(0) in cache and key(8) in cache
    cache.put_many([(key(9), score(9))])
    assert key(2) not in cache and key(0) in cache
    assert cache.stats().evictions == 2


def test_memory_stays_within_the_bound_as_measured() -> None:
    bound = 1 << 20
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = ScoreCache(bound)
        for start in range(0, 40_000, 1000):
            cache.put_many((key(i), score(i)) for i in range(start, start + 1000))
            stats = cache.stats()
            assert stats.bytes <= bound
            real = tracemalloc.get_traced_memory()[0] - before
            assert real <= bound + 4096  # the object itself and its lock on top
        assert stats.evictions == 40_000 - stats.entries > 0
        assert real > bound // 2  # the bound is used, not wasted by pessimistic counting
    finally:
        tracemalloc.stop()


def test_what_is_counted_is_what_is_held() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = ScoreCache(1 << 30)
        for start in range(0, 20_000, 1000):
            cache.put_many((key(i), score(i)) for i in range(start, start + 1000))
            real = tracemalloc.get_traced_memory()[0] - before
            counted = cache.stats().bytes
            assert real - 4096 <= counted <= 1.25 * real
    finally:
        tracemalloc.stop()


def test_concurrent_threads_keep_the_counters_consistent() -> None:
    cache = ScoreCache(64 * 1024)

    def work(offset: int) -> None:
        for i in range(2000):
            k = key((i * 7 + offset) % 3000)
            if cache.get_many([k]) == [None]:
                cache.put_many([(k, score(i))])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats.hits + stats.misses == 8000
    assert stats.bytes <= stats.max_bytes and stats.entries == len(cache)
    assert stats.evictions > 0


# -- the key -----------------------------------------------------------------------------------


def keys(**change: Any) -> list[bytes]:
    given: dict[str, Any] = dict(
        query="ab", instruction=None, long_documents=None, max_chunks=None, max_tokens_per_doc=None
    )
    texts = change.pop("texts", ["c"])
    return score_keys(change.pop("fingerprint", b"model"), texts, **{**given, **change})


@pytest.mark.parametrize(
    "change",
    [
        {"query": "a", "texts": ["bc"]},  # the boundary between query and text is kept
        {"query": "abc", "texts": [""]},
        {"instruction": "None"},
        {"instruction": ""},
        {"long_documents": "reject"},
        {"max_chunks": 2},
        {"max_tokens_per_doc": 100},
        {"fingerprint": b"model2"},
        {"texts": ["C"]},
    ],
)
def test_every_key_part_changes_the_key(change: dict[str, Any]) -> None:
    assert keys() == keys(query="ab")
    assert keys(**change) != keys()


class _Decoder(KeywordBackend):
    """A keyword model with an instruction slot, as decoder rerankers have."""

    def format_query(self, query: str, instruction: str | None) -> str:
        return f"{instruction or 'relevant'} {query}"

    def format_document(self, document: str) -> str:
        return document

    def template_for(self, instruction: str | None) -> Any:
        return self.template


def _backend(**attributes: Any) -> KeywordBackend:
    backend = KeywordBackend()
    for name, value in attributes.items():
        setattr(backend, name, value)
    return backend


@pytest.mark.parametrize(
    ("backend", "settings"),
    [
        (_backend(model_id="other"), {}),
        (_backend(name="onnx"), {}),
        (_backend(device="cuda:1"), {}),
        (_backend(dtype="float16"), {}),
        (_backend(packed=True), {}),
        (_Decoder(), {}),
        (None, {"model": "org/other"}),
        (None, {"revision": "v2"}),
        (None, {"onnx_file": "model_int8.onnx"}),
        (None, {"recipe": "qwen3"}),
        (None, {"max_length": 256}),
        (None, {"long_documents": "truncate"}),
        (None, {"chunk_overlap": 8}),
        (None, {"max_chunks": 3}),
        (None, {"prefix_cache": False}),
    ],
)
def test_a_model_that_scores_differently_misses(
    backend: KeywordBackend | None, settings: dict[str, Any]
) -> None:
    """Two services share one cache; the second model finds nothing of the first's."""
    cache = ScoreCache(1 << 20)
    base = RerankService.start(Reranker(backend=KeywordBackend()), cache=cache)
    same = RerankService.start(Reranker(backend=KeywordBackend()), cache=cache)
    other = RerankService.start(
        Reranker(backend=backend or KeywordBackend(), **settings), cache=cache
    )
    try:
        assert model_fingerprint(other.reranker) != model_fingerprint(base.reranker)
        rerank(base, RerankCall(QUERY, DOCS))
        rerank(same, RerankCall(QUERY, DOCS))  # the same model, loaded again, finds them
        assert cache.stats().hits == len(DOCS)
        rerank(other, RerankCall(QUERY, DOCS))
        assert cache.stats().hits == len(DOCS)
        assert cache.stats().entries == 2 * len(DOCS)
    finally:
        for service in (base, same, other):
            service.close()


@pytest.fixture
def decoder_service() -> Any:
    service = RerankService.start(Reranker(backend=_Decoder()), cache=ScoreCache(1 << 20))
    yield service
    service.close()


TITLED = [{"title": f"title {i}", "text": d, "id": i} for i, d in enumerate(DOCS)]


@pytest.mark.parametrize(
    "change",
    [
        {"query": "reset the password"},
        {"documents": [*DOCS[:2], DOCS[2] + " Then log in."]},
        {"instruction": "Find the answer"},
        {"rank_fields": ["title", "text"]},
        {"rank_fields": ["text"]},  # scored as "text: ..."
        {"truncate": False},
        {"max_chunks": 1},
        {"max_tokens_per_doc": 5},
    ],
)
def test_a_request_that_scores_differently_misses(
    decoder_service: RerankService, change: dict[str, Any]
) -> None:
    base = {"query": QUERY, "documents": TITLED}
    rerank(decoder_service, RerankCall(**base), RerankCall(**base))
    assert decoder_service.cache is not None
    before = decoder_service.cache.stats()
    assert before.hits == len(DOCS)  # the same request again hits
    rerank(decoder_service, RerankCall(**{**base, **change}))
    after = decoder_service.cache.stats()
    missed = 1 if "documents" in change else len(DOCS)
    assert after.misses - before.misses == missed


# -- the service's road ------------------------------------------------------------------------

LONG = " ".join(SAMPLE_TEXT[:6])  # several windows at max_length 64
WORDY = "reset the router password " * 30  # four windows of the keyword model at 64


@pytest.mark.parametrize("normalize", [True, False])
def test_a_hit_gives_the_same_bits_as_the_computation(
    short_reranker: Reranker, normalize: bool
) -> None:
    docs = [*DOCS, LONG, {"text": LONG, "id": 7}]
    calls = [
        RerankCall(QUERY, docs, normalize=normalize),
        RerankCall(QUERY, docs, normalize=normalize, max_chunks=1),  # truncated windows
    ]
    plain = RerankService.start(short_reranker)
    cached = RerankService.start(short_reranker, cache=ScoreCache(1 << 20))
    try:
        want = rerank(plain, *calls)
        first = rerank(cached, *calls)
        assert cached.cache is not None and cached.cache.stats().entries == 2 * 4  # LONG once
        again = rerank(cached, *calls)
        assert cached.cache.stats().hits == 2 * len(docs)
    finally:
        plain.close()
        cached.close()
    assert [bits(r) for r in again] == [bits(r) for r in first]
    # Computed again (in other batches), a score may differ in its last bits; a hit never does.
    # (Last bits of fp32 sums: ~1e-6 absolute, so a raw logit near 0 needs an absolute bound.)
    for got, ref in zip(first, want, strict=True):
        scores = [r.score for r in ref]
        assert [r.score for r in got] == pytest.approx(scores, rel=1e-5, abs=1e-5)
        assert [b[:1] + b[2:] for b in bits(got)] == [b[:1] + b[2:] for b in bits(ref)]
    assert any(r.chunks > 1 for r in again[0]) and any(r.truncated for r in again[1])


def test_hits_skip_tokenization_and_the_model_and_keep_usage() -> None:
    backend = KeywordBackend()
    service = RerankService.start(Reranker(backend=backend), cache=ScoreCache(1 << 20))
    docs = [DOCS[0], DOCS[1], DOCS[0], {"text": DOCS[1], "id": "meta"}]  # duplicates inside

    async def main() -> list[tuple[Timings, Any]]:
        out = []
        for _ in range(2):
            timings = Timings()
            out.append((timings, await service.rerank(RerankCall(QUERY, docs), timings)))
        return out

    try:
        (t1, o1), (t2, o2) = asyncio.run(main())
        assert backend.pairs_computed == 2  # each distinct text once, and nothing the 2nd time
        plain = RerankService.start(Reranker(backend=KeywordBackend()))
        want = asyncio.run(plain.rerank(RerankCall(QUERY, docs), Timings()))
        plain.close()
    finally:
        service.close()
    assert bits(o1.results) == bits(o2.results) == bits(want.results)
    assert [r.document for r in o2.results if r.index == 3] == [docs[3]]  # the caller's object
    assert o1.input_tokens == o2.input_tokens == want.input_tokens  # usage: what it is worth
    assert (t1.documents, t2.documents) == (4, 4)
    assert t1.tokens == want.input_tokens // 2 and t2.tokens == 0  # what the model computed
    assert t2.queue == t2.inference == 0


def _error(service: RerankService, call: RerankCall) -> tuple[type, str]:
    with pytest.raises(InputError) as caught:
        rerank(service, call)
    return type(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        RerankCall("", DOCS),
        RerankCall(QUERY, []),
        RerankCall(QUERY, [DOCS[0], None]),  # type: ignore[list-item]
        RerankCall(QUERY, [DOCS[0], {"title": "no text"}]),
        RerankCall(QUERY, DOCS, instruction="a cross-encoder has no slot for it"),
        RerankCall(QUERY, DOCS * 4),  # too many documents
        RerankCall(QUERY, [*DOCS, WORDY], truncate=False),  # document 3 is too long
        RerankCall(QUERY, [WORDY] * 3),  # more tokens than the request may have
    ],
)
def test_errors_are_the_same_with_the_cache(call: RerankCall) -> None:
    limits = ServiceLimits(max_documents=10, max_request_tokens=300)
    reranker = Reranker(backend=KeywordBackend(), max_length=64)
    plain = RerankService.start(reranker, limits)
    cached = RerankService.start(reranker, limits, cache=ScoreCache(1 << 20))
    try:
        warm = [RerankCall(QUERY, DOCS), RerankCall(QUERY, DOCS, truncate=False)]
        rerank(cached, *warm, RerankCall(QUERY, [WORDY]))  # what the cache holds already
        assert _error(cached, call) == _error(plain, call)
    finally:
        plain.close()
        cached.close()


class _Gated(KeywordBackend):
    """Blocks any forward pass with 'block' in it until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        if any(self._id("block") in pair.input_ids for pair in pairs):
            self.entered.set()
            self.gate.wait(30)
        return super().forward(pairs)


def test_a_request_the_cache_answers_whole_skips_a_full_queue() -> None:
    backend = _Gated()
    backend.gate.set()
    service = RerankService.start(
        Reranker(backend=backend),
        queue_limits=QueueLimits(max_batch_tokens=4096, max_queue_tokens=8),
        cache=ScoreCache(1 << 20),
    )
    known = RerankCall(QUERY, DOCS)

    async def main() -> None:
        first = await service.rerank(known, Timings())
        pairs, tokens = await service.score([QUERY], [DOCS[1]], True, Timings())
        backend.gate.clear()
        stuck = asyncio.ensure_future(service.rerank(RerankCall(QUERY, ["block"]), Timings()))
        await asyncio.to_thread(backend.entered.wait, 10)
        waiting = asyncio.ensure_future(service.rerank(RerankCall(QUERY, [LONG]), Timings()))
        while service.queue.queued_tokens <= 8 and not waiting.done():
            await asyncio.sleep(0.01)
        try:
            with pytest.raises(OverloadedError):  # the queue is full for new work...
                await service.rerank(RerankCall(QUERY, ["something new"]), Timings())
            # ...while what the cache holds is answered without it (the model is blocked)
            again = await asyncio.wait_for(service.rerank(known, Timings()), 10)
            assert bits(again.results) == bits(first.results)
            scored = await asyncio.wait_for(service.score([QUERY], [DOCS[1]], True, Timings()), 10)
            assert scored == (pairs, tokens)
            assert not stuck.done() and not waiting.done()
        finally:
            backend.gate.set()
            await asyncio.gather(stuck, waiting)

    try:
        asyncio.run(main())
    finally:
        service.close()


class _Calibrated(Reranker):
    """Relevance from a fitted transform that can change after scores were cached."""

    scale = 1.0

    def relevance(self, raw: np.ndarray) -> np.ndarray:
        return super().relevance(raw * self.scale)


def test_relevance_is_applied_to_cached_raw_scores_on_the_way_out() -> None:
    reranker = _Calibrated(backend=KeywordBackend())
    service = RerankService.start(reranker, cache=ScoreCache(1 << 20))
    try:
        rerank(service, RerankCall(QUERY, DOCS))
        reranker.scale = 2.0
        [hit] = rerank(service, RerankCall(QUERY, DOCS))
        assert service.cache is not None and service.cache.stats().hits == len(DOCS)
        want = reranker.rerank(QUERY, DOCS)
        assert bits(hit) == bits(want)
    finally:
        service.close()


def test_isolated_calls_bypass_the_cache() -> None:
    service = RerankService.start(Reranker(backend=KeywordBackend()), cache=ScoreCache(1 << 20))
    try:
        rerank(service, RerankCall(QUERY, DOCS, isolated=True))
        assert service.cache is not None and service.cache.stats().misses == 0
        assert len(service.cache) == 0
    finally:
        service.close()


def test_a_closed_service_refuses_even_what_the_cache_holds() -> None:
    service = RerankService.start(Reranker(backend=KeywordBackend()), cache=ScoreCache(1 << 20))
    rerank(service, RerankCall(QUERY, DOCS))
    service.close()
    with pytest.raises(UnavailableError):
        rerank(service, RerankCall(QUERY, DOCS))
