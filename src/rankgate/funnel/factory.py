"""Building the funnel's parts from :class:`FunnelSettings` (shared by the CLI and the server)."""

from __future__ import annotations

from rankgate.engine import Reranker
from rankgate.funnel.embedders import Embedder, SentenceTransformerEmbedder
from rankgate.funnel.funnel import Funnel, StageCuts
from rankgate.funnel.index import LocalIndex
from rankgate.funnel.rules import Rules
from rankgate.funnel.settings import DEFAULT_EMBEDDING_MODEL, FunnelSettings
from rankgate.funnel.templates import TemplateRegistry
from rankgate.funnel.types import Retriever

__all__ = [
    "build_funnel",
    "embedding_model_for",
    "load_embedder",
    "load_rules",
    "load_templates",
    "open_retriever",
]


def embedding_model_for(settings: FunnelSettings) -> str:
    """The embedding model to load: the one the settings name, else the one the local index
    was built with (so an index is always queried with its own model), else the default."""
    if settings.embedding_model:
        return settings.embedding_model
    if not settings.milvus_uri:
        recorded = LocalIndex.recorded_model(settings.index_dir)
        if recorded:
            return recorded
    return DEFAULT_EMBEDDING_MODEL


def load_embedder(settings: FunnelSettings, *, offline: bool = False) -> Embedder:
    """The sentence-transformers embedder of :func:`embedding_model_for`."""
    return SentenceTransformerEmbedder(
        embedding_model_for(settings),
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
        offline=offline,
    )


def open_retriever(settings: FunnelSettings, embedder: Embedder) -> Retriever:
    """Milvus when ``milvus_uri`` is set, else the embedded index at ``index_dir``."""
    if settings.milvus_uri:
        from rankgate.funnel.milvus import MilvusRetriever

        return MilvusRetriever(
            settings.milvus_uri,
            embedder,
            collection=settings.milvus_collection,
            token=settings.milvus_token,
        )
    return LocalIndex.open(settings.index_dir, embedder, rrf_k=settings.rrf_k)


def load_rules(settings: FunnelSettings) -> Rules:
    """Rules from ``rules_file`` (or the defaults), with the rule settings that are set
    (``min_score``, ``allow_sources``, ...) applied over them."""
    rules = Rules.from_toml(settings.rules_file) if settings.rules_file else Rules()
    overrides = settings.rule_overrides()
    return rules.with_overrides(overrides) if overrides else rules


def load_templates(settings: FunnelSettings) -> TemplateRegistry:
    """Built-in templates plus those of ``templates_file``."""
    registry = TemplateRegistry()
    if settings.templates_file:
        registry.load(settings.templates_file)
    return registry


def build_funnel(
    settings: FunnelSettings,
    reranker: Reranker,
    *,
    embedder: Embedder | None = None,
    offline: bool = False,
) -> Funnel:
    """A ready funnel: retriever, reranker, rules, templates and default template as the
    settings say.

    Raises:
        RulesError: the rules file or a rule setting is invalid.
        UnknownTemplateError: ``template`` names no known template.
    """
    rules = load_rules(settings)
    templates = load_templates(settings)
    if settings.template:
        templates.get(settings.template)  # an unknown default fails here, not at each search
    embedder = embedder or load_embedder(settings, offline=offline)
    return Funnel(
        open_retriever(settings, embedder),
        reranker,
        rules,
        cuts=StageCuts(settings.retrieve_top_k, settings.rerank_top_n, settings.final_top_n),
        templates=templates,
        template=settings.template,
    )
