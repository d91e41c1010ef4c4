"""The translation step every dialect shares: limits, tokenization, batching, ranking, timings.

Routes turn a wire request into a :class:`RerankCall` (or query/document pairs for vLLM), call
:class:`RerankService`, and turn the outcome back into their dialect. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from rankgate.engine import PreparedRequest, Reranker
from rankgate.errors import InputTooLongError, TooManyDocumentsError, UnavailableError
from rankgate.insight.monitor import RankingHealth
from rankgate.server.batcher import Batcher
from rankgate.server.settings import ServerSettings
from rankgate.types import Document, RerankResult

__all__ = ["RerankCall", "RerankOutcome", "RerankService", "Timings"]


@dataclass
class Timings:
    """Seconds spent per phase of one request; feeds histograms, headers and the access log."""

    started: float = field(default_factory=time.perf_counter)
    tokenize: float = 0.0
    queue: float = 0.0
    inference: float = 0.0
    total: float = 0.0
    tokens: int = 0
    documents: int = 0

    def stop(self) -> None:
        self.total = time.perf_counter() - self.started

    def headers(self) -> dict[str, str]:
        """TEI's timing headers, in whole milliseconds."""

        def ms(seconds: float) -> str:
            return str(round(seconds * 1000))

        return {
            "x-tokenization-time": ms(self.tokenize),
            "x-queue-time": ms(self.queue),
            "x-inference-time": ms(self.inference),
            "x-total-time": ms(self.total),
            "x-compute-time": ms(self.tokenize + self.inference),
            "x-compute-tokens": str(self.tokens),
        }


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
    truncate: bool | None = None  # None: the server's auto_truncate


@dataclass(frozen=True, slots=True)
class RerankOutcome:
    results: list[RerankResult]
    input_tokens: int


class RerankService:
    """Admits, tokenizes (in worker threads), batches and ranks requests for every route."""

    def __init__(
        self,
        reranker: Reranker,
        batcher: Batcher,
        settings: ServerSettings,
        health: RankingHealth | None = None,
    ) -> None:
        self.reranker = reranker
        self.ranking_health = health
        self.batcher = batcher
        self.settings = settings
        self._tokenizers = ThreadPoolExecutor(
            settings.tokenizer_workers, thread_name_prefix="rankgate-tokenize"
        )

    def close(self) -> None:
        self._tokenizers.shutdown(wait=False, cancel_futures=True)

    async def rerank(self, call: RerankCall, timings: Timings) -> RerankOutcome:
        """Rank one query's documents.

        Raises:
            InputError: invalid or too large input. OverloadedError: the queue is full.
            BackendError: the model failed. UnavailableError: the server is shutting down.
        """
        self._check_count(len(call.documents))
        self.batcher.check_admission(0)  # refuse before spending time on tokenization
        prepared = await self._tokenize(timings, lambda: [self._prepare(call)])
        logits = await self._score(prepared, timings)
        ranked = self.reranker.finish(prepared[0], logits[0], normalize=call.normalize)
        if self.ranking_health is not None:
            # Every document's score in the order sent (the retrieval order), before top_n.
            sent_order = sorted(ranked, key=lambda r: r.index)
            self.ranking_health.observe([r.score for r in sent_order], normalized=call.normalize)
        results = ranked if call.top_n is None else ranked[: call.top_n]
        return RerankOutcome(results, prepared[0].input_tokens)

    async def score(
        self, queries: Sequence[str], documents: Sequence[str], normalize: bool, timings: Timings
    ) -> tuple[list[float], int]:
        """Scores of (queries[i], documents[i]) pairs, in their order, and the tokens used."""
        self._check_count(len(documents))
        self.batcher.check_admission(0)
        groups: dict[str, list[int]] = {}
        for i, query in enumerate(queries):
            groups.setdefault(query, []).append(i)

        def prepare_all() -> list[PreparedRequest]:
            return [
                self._prepare(RerankCall(q, [documents[i] for i in idx]))
                for q, idx in groups.items()
            ]

        prepared = await self._tokenize(timings, prepare_all)
        logits = await self._score(prepared, timings)
        scores = [0.0] * len(documents)
        for idx, prep, lg in zip(groups.values(), prepared, logits, strict=True):
            for result in self.reranker.finish(prep, lg, normalize=normalize):
                scores[idx[result.index]] = result.score
        return scores, sum(p.input_tokens for p in prepared)

    async def health(self, timeout: float) -> None:
        """Score a fixed pair through tokenizer, queue and model.

        Raises:
            UnavailableError: the probe failed or did not finish within ``timeout`` seconds.
        """
        try:
            prepared = self.reranker.prepare("health check", ["the model answers"])
            logits, _ = await asyncio.wait_for(
                self.batcher.submit(prepared.pairs, force=True), timeout
            )
        except asyncio.TimeoutError:
            raise UnavailableError("health probe timed out") from None
        except Exception as exc:
            raise UnavailableError("health probe failed") from exc
        if not np.all(np.isfinite(logits)):
            raise UnavailableError("health probe returned a non-finite score")

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_documents:
            raise TooManyDocumentsError(count, self.settings.max_documents)

    async def _tokenize(
        self, timings: Timings, work: Callable[[], list[PreparedRequest]]
    ) -> list[PreparedRequest]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self._tokenizers, work)
        timings.tokenize = time.perf_counter() - started
        tokens = sum(p.input_tokens for p in prepared)
        if tokens > self.settings.max_request_tokens:
            raise InputTooLongError(
                f"the request needs {tokens} tokens after chunking; the limit is "
                f"{self.settings.max_request_tokens} (send fewer or shorter documents, or set "
                "max_chunks_per_doc / max_tokens_per_doc)"
            )
        timings.tokens = tokens
        timings.documents = sum(len(p.plans) for p in prepared)
        return prepared

    async def _score(self, prepared: list[PreparedRequest], timings: Timings) -> list[np.ndarray]:
        pairs = [pair for p in prepared for pair in p.pairs]
        logits, batch = await self.batcher.submit(pairs)
        timings.queue, timings.inference = batch.queue_s, batch.inference_s
        out, start = [], 0
        for p in prepared:
            n = sum(len(plan.pairs) for plan in p.plans)
            out.append(logits[start : start + n])
            start += n
        return out

    def _prepare(self, call: RerankCall) -> PreparedRequest:
        truncate = self.settings.auto_truncate if call.truncate is None else call.truncate
        return self.reranker.prepare(
            call.query,
            call.documents,
            rank_fields=call.rank_fields,
            long_documents=None if truncate else "reject",
            max_chunks=call.max_chunks,
            max_tokens_per_doc=call.max_tokens_per_doc,
        )
