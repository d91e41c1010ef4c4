"""The model-agnostic engine: pair building, batching, scoring, ranking, the model queue."""

from rankgate.engine.cache import CacheStats, ScoreCache
from rankgate.engine.queue import ModelQueue, QueueLimits, QueueObserver
from rankgate.engine.reranker import PreparedRequest, Reranker
from rankgate.engine.service import (
    RerankCall,
    RerankOutcome,
    RerankService,
    ServiceLimits,
    Timings,
)

__all__ = [
    "CacheStats",
    "ModelQueue",
    "PreparedRequest",
    "QueueLimits",
    "QueueObserver",
    "RerankCall",
    "RerankOutcome",
    "RerankService",
    "Reranker",
    "ScoreCache",
    "ServiceLimits",
    "Timings",
]
