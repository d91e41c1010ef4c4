"""The model-agnostic engine: pair building, batching, scoring, ranking."""

from rankgate.engine.reranker import PreparedRequest, Reranker

__all__ = ["PreparedRequest", "Reranker"]
