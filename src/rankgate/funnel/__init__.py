"""The funnel: first-stage retrieval → rerank → rules, with evaluation.

Heavy dependencies (bm25s, sentence-transformers, pymilvus, ir-measures, matplotlib, fastapi) are
imported only when the part that needs them is used. ``rankgate.funnel.http`` (the FastAPI route)
is not imported here, so the library works without the ``server`` extra.
"""

from __future__ import annotations

from rankgate.funnel.corpus import SourceDocument, read_corpus, split_passages
from rankgate.funnel.embedders import Embedder, SentenceTransformerEmbedder
from rankgate.funnel.errors import (
    CorpusError,
    IndexMismatchError,
    IndexMissingError,
    RulesError,
    UnknownTemplateError,
)
from rankgate.funnel.evaluation import EvalReport, evaluate, load_beir, save_chart
from rankgate.funnel.factory import build_funnel, open_retriever
from rankgate.funnel.funnel import Funnel, StageCuts
from rankgate.funnel.index import BuildReport, LocalIndex
from rankgate.funnel.milvus import MilvusRetriever
from rankgate.funnel.rules import Rules
from rankgate.funnel.settings import (
    EvalSettings,
    FunnelSettings,
    build_eval_settings,
    build_funnel_settings,
)
from rankgate.funnel.templates import QueryTemplate, TemplateRegistry
from rankgate.funnel.types import Candidate, FunnelResult, Hit, Passage, Retriever

__all__ = [
    "BuildReport",
    "Candidate",
    "CorpusError",
    "Embedder",
    "EvalReport",
    "EvalSettings",
    "Funnel",
    "FunnelResult",
    "FunnelSettings",
    "Hit",
    "IndexMismatchError",
    "IndexMissingError",
    "LocalIndex",
    "MilvusRetriever",
    "Passage",
    "QueryTemplate",
    "Retriever",
    "Rules",
    "RulesError",
    "SentenceTransformerEmbedder",
    "SourceDocument",
    "StageCuts",
    "TemplateRegistry",
    "UnknownTemplateError",
    "build_eval_settings",
    "build_funnel",
    "build_funnel_settings",
    "evaluate",
    "load_beir",
    "open_retriever",
    "read_corpus",
    "save_chart",
    "split_passages",
]
