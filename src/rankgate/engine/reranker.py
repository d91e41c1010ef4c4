"""``Reranker``: the public library API over a backend."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rankgate.backends import Backend, EncodedPair, load_backend
from rankgate.backends.base import is_cuda
from rankgate.backends.cpu import cpu_info
from rankgate.config import RerankerSettings, build_settings
from rankgate.engine.batching import ForwardObserver, Keep, Progress, score_pairs
from rankgate.engine.calibration import Calibration, load_calibration
from rankgate.engine.explain import Explanation, explain
from rankgate.engine.inputs import (
    check_instruction,
    check_query,
    check_top_n,
    document_texts,
    normalize_pairs,
)
from rankgate.engine.pairs import DocPlan, PairBuilder
from rankgate.engine.scoring import aggregate_max, rank_order, sigmoid
from rankgate.engine.segments import Granularity
from rankgate.errors import RankgateError, UnavailableError
from rankgate.types import DEFAULT_MAX_LENGTH, Document, LongDocumentPolicy, ModelInfo, RerankResult

__all__ = ["DocFacts", "PreparedRequest", "Reranker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A validated, tokenized rerank request: the pairs to score and how to fold them back."""

    documents: Sequence[Document]
    plans: list[DocPlan]

    @property
    def pairs(self) -> list[EncodedPair]:
        return [pair for plan in self.plans for pair in plan.pairs]

    @property
    def input_tokens(self) -> int:
        return sum(len(pair) for plan in self.plans for pair in plan.pairs)


class DocFacts(Protocol):
    """What a result tells of how its document was read: a :class:`DocPlan`, or a cached score."""

    @property
    def truncated(self) -> bool: ...

    @property
    def chunks(self) -> int: ...

    @property
    def tokens(self) -> int: ...


class Reranker:
    """Scores (query, document) pairs with a cross-encoder such as BAAI/bge-reranker-v2-m3.

    Scores equal FlagEmbedding's ``FlagReranker`` on the same weights and ``max_length``.

    Args:
        model: hub id or local directory (default ``BAAI/bge-reranker-v2-m3``).
        settings: a full settings object; keyword options override it.
        backend: ``"torch"`` or ``"onnx"``, or an already loaded backend object (tests,
            custom models), which skips loading.
        **options: any :class:`~rankgate.config.RerankerSettings` field, e.g. ``device="cpu"``,
            ``dtype="float16"``, ``max_length=512``, ``long_documents="truncate"``,
            ``calibration="none"``.

    A ``rankgate-calibration.json`` in a local model directory (or the ``calibration``
    setting) makes normalized scores calibrated probabilities of relevance; see
    :attr:`calibration`.

    Raises:
        CalibrationError: the calibration is unreadable, or fitted for another model or
            ``max_length``.

    Example:
        >>> rr = Reranker("path/to/model", device="cpu")            # doctest: +SKIP
        >>> [r.index for r in rr.rerank("reset router password", [
        ...     "Router specifications", "How to reset the admin password"])]  # doctest: +SKIP
        [1, 0]
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        settings: RerankerSettings | None = None,
        backend: Backend | str | None = None,
        **options: Any,
    ) -> None:
        if isinstance(backend, str):
            options["backend"], backend = backend, None
        self.settings = build_settings(settings, model=model, **options)
        started = time.perf_counter()
        self.backend = backend if backend is not None else load_backend(self.settings)
        self.load_seconds = time.perf_counter() - started
        s = self.settings
        default = getattr(self.backend, "default_max_length", DEFAULT_MAX_LENGTH)
        self.max_length = s.max_length or min(default, self.backend.model_max_length)
        _warn_if_trained_shorter(getattr(self.backend, "model_dir", None), self.max_length)
        # Subtracted before the sigmoid (mxbai-rerank-v2's calibration); 0 for most models.
        self.score_offset = float(getattr(self.backend, "score_offset", 0.0))
        self.calibration: Calibration | None = load_calibration(
            s.calibration,
            model=self.backend.model_id,
            revision=s.revision,
            max_length=self.max_length,
            long_documents=s.long_documents,
        )
        """The calibration normalized scores go through (``rankgate calibrate``), or None."""
        self._builder = PairBuilder(
            self.backend,
            max_length=self.max_length,
            policy=s.long_documents,
            chunk_overlap=s.chunk_overlap,
            max_chunks=s.max_chunks,
        )
        on_gpu = is_cuda(self.backend.device)
        self.batch_tokens = s.batch_tokens or (16384 if on_gpu else 4096)
        self.batch_overhead_tokens = (
            s.batch_overhead_tokens
            if s.batch_overhead_tokens is not None
            else _default_pass_cost(self.backend.device, self.backend.parameters, self.batch_tokens)
        )

    def info(self) -> ModelInfo:
        b = self.backend
        recipe = getattr(b, "recipe", None)
        cpu = cpu_info() if b.device == "cpu" else None
        return ModelInfo(
            cpu=cpu.model if cpu else None,
            cpu_features=tuple(cpu.features) if cpu else (),
            kernels=getattr(b, "kernels", None),
            bf16_probe=getattr(b, "bf16_probe", None),
            recipe=getattr(recipe, "name", None),
            model=self.backend.model_id,
            backend=b.name,
            device=b.device,
            dtype=b.dtype,
            max_length=self.max_length,
            model_max_length=b.model_max_length,
            parameters=b.parameters,
            load_seconds=self.load_seconds,
            long_documents=self.settings.long_documents,
            calibration=self.calibration.method if self.calibration else None,
            calibration_file=(
                str(self.calibration.path) if self.calibration and self.calibration.path else None
            ),
        )

    def score_encoded(
        self,
        pairs: Sequence[EncodedPair],
        *,
        batch_size: int | None = None,
        progress: Progress | None = None,
        on_forward: ForwardObserver | None = None,
        keep: Keep | None = None,
    ) -> np.ndarray:
        """Raw logits for already built pairs (the engine's model queue calls this).

        ``on_forward`` sees each forward pass's pairs, real tokens and padded tokens; ``keep``
        is asked for each pair before its pass, and a refused pair is skipped (NaN logit).
        """
        return score_pairs(
            self.backend,
            pairs,
            max_tokens=self.batch_tokens,
            max_size=batch_size or self.settings.max_batch_size,
            overhead_tokens=self.batch_overhead_tokens,
            progress=progress,
            on_forward=on_forward,
            keep=keep,
        )

    def compute_score(
        self,
        pairs: Sequence[Sequence[str]],
        *,
        normalize: bool = False,
        instruction: str | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> list[float]:
        """Score (query, passage) pairs with FlagEmbedding's semantics.

        Returns a list even for a single pair; raw logits unless ``normalize`` (sigmoid, or the
        calibrated probability when the model has a calibration). A long passage is chunked
        (best window) or truncated as the ``long_documents`` setting says.
        ``instruction`` is the task description of a decoder reranker (its default otherwise).

        Raises:
            InputError: malformed or empty pairs; an instruction for a model without one.
            NonFiniteScoreError: the model returned NaN.
        """
        checked = normalize_pairs(pairs)
        plans = self._builder.plan(
            [q for q, _ in checked], [p for _, p in checked], instruction=instruction
        )
        self._warn_cut(plans)
        flat = [pair for plan in plans for pair in plan.pairs]
        logits = self.score_encoded(flat, batch_size=batch_size, progress=progress)
        scores = aggregate_max(logits, [len(p.pairs) for p in plans])
        return [float(s) for s in (self.relevance(scores) if normalize else scores)]

    def relevance(self, raw: np.ndarray) -> np.ndarray:
        """Relevance scores in [0, 1] from raw (aggregated) logits: what ``normalize`` returns.

        With a calibration, the calibrated probability that the document is relevant;
        without, :meth:`uncalibrated_relevance`.
        """
        if self.calibration is not None:
            return self.calibration.apply(raw)
        return self.uncalibrated_relevance(raw)

    def uncalibrated_relevance(self, raw: np.ndarray) -> np.ndarray:
        """The model's own [0, 1] scores: the sigmoid of the logit (less the model's offset)."""
        return sigmoid(raw - self.score_offset) if self.score_offset else sigmoid(raw)

    def prepare(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        rank_fields: Sequence[str] | None = None,
        long_documents: LongDocumentPolicy | None = None,
        max_chunks: int | None = None,
        max_tokens_per_doc: int | None = None,
        instruction: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> PreparedRequest:
        """Validate and tokenize a rerank request without scoring it.

        ``positions``: where ``documents`` sit in the caller's request when they are only some
        of its documents, so that an error names the caller's index.

        Raises:
            InputError: empty query, no documents, a malformed document, an instruction for a
            model without one.
        """
        query = check_query(query)
        texts = document_texts(documents, rank_fields)
        plans = self._builder.plan(
            [query] * len(texts),
            texts,
            instruction=check_instruction(instruction),
            policy=long_documents,
            max_chunks=max_chunks,
            max_tokens_per_doc=max_tokens_per_doc,
            positions=positions,
        )
        self._warn_cut(plans)
        return PreparedRequest(documents, plans)

    def finish(
        self,
        prepared: PreparedRequest,
        logits: np.ndarray,
        *,
        top_n: int | None = None,
        normalize: bool = True,
    ) -> list[RerankResult]:
        """Fold window logits back into ranked documents."""
        plans = prepared.plans
        raw = aggregate_max(logits, [len(p.pairs) for p in plans])
        return self.ranked(prepared.documents, raw, plans, top_n=top_n, normalize=normalize)

    def ranked(
        self,
        documents: Sequence[Document],
        raw: np.ndarray,
        facts: Sequence[DocFacts],
        *,
        top_n: int | None = None,
        normalize: bool = True,
    ) -> list[RerankResult]:
        """Ranked results from one raw (aggregated) logit per document and how each was read."""
        scores = self.relevance(raw) if normalize else raw.astype(np.float64)
        # An isotonic calibration gives one probability to a whole range of logits: order by
        # the logit, so that calibrating never reorders documents.
        order_by = raw.astype(np.float64) if normalize and self.calibration else scores
        return [
            RerankResult(
                index=i,
                score=float(scores[i]),
                document=documents[i],
                truncated=facts[i].truncated,
                chunks=facts[i].chunks,
                tokens=facts[i].tokens,
            )
            for i in rank_order(order_by.tolist(), top_n)
        ]

    def rerank(
        self,
        query: str,
        documents: Sequence[Document],
        *,
        top_n: int | None = None,
        normalize: bool = True,
        rank_fields: Sequence[str] | None = None,
        long_documents: LongDocumentPolicy | None = None,
        max_chunks: int | None = None,
        max_tokens_per_doc: int | None = None,
        instruction: str | None = None,
        progress: Progress | None = None,
    ) -> list[RerankResult]:
        """Rank ``documents`` by relevance to ``query``, best first.

        Args:
            query: the question.
            documents: strings, or mappings with a ``text`` field; metadata is kept in results.
            top_n: keep the best ``top_n`` (None: all).
            normalize: scores in [0, 1] (sigmoid, or calibrated when the model has a
                calibration); False gives raw logits.
            rank_fields: for mapping documents, the fields to score, in order.
            long_documents: override the ``chunk`` / ``truncate`` setting for this call.
            max_chunks: most windows per document for this call.
            max_tokens_per_doc: cut each document to this many tokens first.
            instruction: what relevance means for this request, for decoder rerankers that
                take one (Qwen3-Reranker's ``<Instruct>``, bge-reranker-v2-gemma's prompt,
                mxbai-rerank-v2's ``instruction:``); their default when None.
            progress: called with (pairs done, pairs total) after each batch.

        Raises:
            InputError: empty query, no documents, a malformed document or top_n; an
                instruction for a cross-encoder, which has no instruction slot.
            NonFiniteScoreError: the model returned NaN or infinity.
        """
        top_n = check_top_n(top_n)
        prepared = self.prepare(
            query,
            documents,
            rank_fields=rank_fields,
            long_documents=long_documents,
            max_chunks=max_chunks,
            max_tokens_per_doc=max_tokens_per_doc,
            instruction=instruction,
        )
        logits = self.score_encoded(prepared.pairs, progress=progress)
        return self.finish(prepared, logits, top_n=top_n, normalize=normalize)

    def explain(
        self,
        query: str,
        document: Document,
        *,
        granularity: Granularity = "sentence",
    ) -> Explanation:
        """Which sentences (or words) carry the score: occlusion, scored in one batch.

        Each segment's contribution is the logit drop when it is removed from the document.

        Example:
            >>> exp = reranker.explain("range", "It is cold. Range drops 30%.")  # doctest: +SKIP
            >>> exp.top(1)[0].text  # doctest: +SKIP
            'Range drops 30%.'
        """
        return explain(self, query, document, granularity=granularity)

    def health(self) -> None:
        """Score a fixed pair end to end.

        Raises:
            UnavailableError: the model did not return a finite score.
        """
        try:
            self.compute_score([("health check", "the model answers")])
        except RankgateError as exc:
            raise UnavailableError(f"health probe failed: {exc}") from exc

    def _warn_cut(self, plans: list[DocPlan]) -> None:
        if any(p.query_truncated for p in plans):
            log.warning(
                "a query longer than %d tokens (3/4 of max_length) was truncated",
                self._builder.query_max_length,
            )
        cut = sum(p.truncated for p in plans)
        if cut:
            log.info("%d of %d documents were truncated", cut, len(plans))


FINETUNE_RECORD = "rankgate-finetune.json"
"""What ``rankgate finetune`` writes beside the weights it trained (base model, max_length, ...)."""


def _warn_if_trained_shorter(model_dir: object, max_length: int) -> None:
    """Warn when a model rankgate fine-tuned scores pairs cut differently than it trained on."""
    if model_dir is None:
        return
    try:
        trained = json.loads((Path(str(model_dir)) / FINETUNE_RECORD).read_text())["max_length"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if trained != max_length:
        log.warning(
            "this model was fine-tuned on pairs cut to %s tokens but scores with max_length %d; "
            "pass max_length=%s to score pairs as it was trained",
            trained,
            max_length,
            trained,
        )


def _default_pass_cost(device: str, parameters: int, batch_tokens: int) -> int:
    """What one more forward pass costs, in tokens, when the settings do not say.

    On CPU a pass costs about 2 ms of fixed work plus smaller, slower matrix products. For
    bge-reranker-v2-m3 (about 1.1 GFLOP a token) that is worth about 64 tokens: splitting 10 pairs
    of 276-345 tokens where their lengths jump beat one padded batch by ~5% (measured on a 2-core
    VM). A small model does so little per token that the fixed 2 ms (~2e8 FLOP at CPU speed)
    dominates, so it keeps full batches. Accelerators pay more per pass than per token.
    """
    if device != "cpu" or parameters <= 0:
        return 2048
    return max(64, min(batch_tokens, int(2e8 / (2 * parameters))))
