"""``rankgate index``, ``search``, ``templates`` and ``eval``: the funnel from the command line.

Register with ``app.command()(index)``, ``app.command()(search)``, ``app.command()(templates)``
and ``app.command("eval")(eval_command)``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rankgate.cli import common
from rankgate.cli.command_settings import SearchOutputSettings
from rankgate.cli.loading import load_reranker
from rankgate.cli.options import setting_option, settings_from
from rankgate.funnel.corpus import read_corpus
from rankgate.funnel.evaluation import EvalReport, evaluate, load_beir, save_chart
from rankgate.funnel.factory import build_funnel, load_embedder, load_templates
from rankgate.funnel.index import BuildReport, LocalIndex
from rankgate.funnel.settings import (
    EvalSettings,
    FunnelSettings,
    build_eval_settings,
    build_funnel_settings,
)
from rankgate.funnel.types import Candidate, FunnelResult

_INDEX = "Index options"
_STAGES = "Funnel options"
_RULES = "Rule options"
_EVAL = "Evaluation options"


# Each option is derived from its FunnelSettings (or EvalSettings) field: type, default, help and
# environment variable are declared once, there (rankgate.cli.options).
def _funnel(name: str, panel: str) -> Any:
    return setting_option(FunnelSettings, name, panel=panel)


IndexDir = Annotated[Path | None, _funnel("index_dir", _INDEX)]
EmbeddingModel = Annotated[str | None, _funnel("embedding_model", _INDEX)]
EmbeddingDevice = Annotated[str | None, _funnel("embedding_device", _INDEX)]
EmbeddingBatchSize = Annotated[int | None, _funnel("embedding_batch_size", _INDEX)]
PassageWords = Annotated[int | None, _funnel("passage_words", _INDEX)]
PassageOverlap = Annotated[int | None, _funnel("passage_overlap", _INDEX)]
Prune = Annotated[bool | None, _funnel("prune", _INDEX)]
MilvusUri = Annotated[str | None, _funnel("milvus_uri", _INDEX)]
MilvusToken = Annotated[str | None, _funnel("milvus_token", _INDEX)]
MilvusCollection = Annotated[str | None, _funnel("milvus_collection", _INDEX)]
RrfK = Annotated[int | None, _funnel("rrf_k", _STAGES)]
RetrieveTopK = Annotated[int | None, _funnel("retrieve_top_k", _STAGES)]
RerankTopN = Annotated[int | None, _funnel("rerank_top_n", _STAGES)]
FinalTopN = Annotated[int | None, _funnel("final_top_n", _STAGES)]
Template = Annotated[str | None, _funnel("template", _STAGES)]
TemplatesFile = Annotated[Path | None, _funnel("templates_file", _STAGES)]
RulesFile = Annotated[Path | None, _funnel("rules_file", _RULES)]
MinScore = Annotated[float | None, _funnel("min_score", _RULES)]
MaxAgeDays = Annotated[int | None, _funnel("max_age_days", _RULES)]
AllowSources = Annotated[list[str] | None, _funnel("allow_sources", _RULES)]
DenySources = Annotated[list[str] | None, _funnel("deny_sources", _RULES)]
MaxPerSource = Annotated[int | None, _funnel("max_per_source", _RULES)]

EvalSplit = Annotated[str | None, setting_option(EvalSettings, "split", panel=_EVAL)]
EvalIndexDir = Annotated[Path | None, setting_option(EvalSettings, "index_dir", panel=_EVAL)]
EvalChart = Annotated[Path | None, setting_option(EvalSettings, "chart", panel=_EVAL)]


def _settings(**overrides: Any) -> FunnelSettings:
    return build_funnel_settings(**overrides)


def index(
    docs: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines (id, text, title, source, published, ...) or a folder "
            "of .txt/.md files."
        ),
    ],
    index_dir: IndexDir = None,
    embedding_model: EmbeddingModel = None,
    embedding_device: EmbeddingDevice = None,
    embedding_batch_size: EmbeddingBatchSize = None,
    passage_words: PassageWords = None,
    passage_overlap: PassageOverlap = None,
    prune: Prune = None,
    milvus_uri: MilvusUri = None,
    milvus_token: MilvusToken = None,
    milvus_collection: MilvusCollection = None,
    offline: common.Offline = None,
) -> None:
    """Build or update the index of DOCS (incremental by id; a crash never breaks the index).

    Dense retrieval needs an embedding model beside the reranker: BAAI/bge-m3 (2.3 GB) unless
    --embedding-model names another. Fetch it once with: rankgate download BAAI/bge-m3
    """
    with common.exits_on_error():
        common.quiet_libraries()
        s = _settings(
            index_dir=index_dir,
            embedding_model=embedding_model,
            embedding_device=embedding_device,
            embedding_batch_size=embedding_batch_size,
            passage_words=passage_words,
            passage_overlap=passage_overlap,
            prune=prune,
            milvus_uri=milvus_uri,
            milvus_token=milvus_token,
            milvus_collection=milvus_collection,
        )
        documents = read_corpus(docs)
        embedder = load_embedder(s, offline=bool(offline))
        with common.progress("embedding passages") as progress:
            if s.milvus_uri:
                from rankgate.funnel.milvus import MilvusRetriever

                store = MilvusRetriever(
                    s.milvus_uri, embedder, collection=s.milvus_collection, token=s.milvus_token
                )
                report = store.add(
                    documents,
                    passage_words=s.passage_words,
                    passage_overlap=s.passage_overlap,
                    prune=s.prune,
                    progress=progress,
                )
                where = f"{s.milvus_uri} ({s.milvus_collection})"
            else:
                report = LocalIndex.build(
                    s.index_dir,
                    documents,
                    embedder,
                    passage_words=s.passage_words,
                    passage_overlap=s.passage_overlap,
                    prune=s.prune,
                    progress=progress,
                )
                where = str(s.index_dir)
    typer.echo(_report_line(report, where))


def _report_line(r: BuildReport, where: str) -> str:
    return (
        f"indexed {r.documents} documents ({r.passages} passages) in {where}: {r.added} added, "
        f"{r.updated} updated, {r.unchanged} unchanged, {r.removed} removed; "
        f"{r.embedded} passages embedded"
    )


def _preview(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _fmt(score: float | None) -> str:
    return "" if score is None else f"{score:.3f}"


def _table(result: FunnelResult, show_all: bool) -> Table:
    table = Table(title=common.literal(f"Query: {result.query}"), title_justify="left")
    for name, justify in [
        ("#", "right"),
        ("document", "left"),
        ("source", "left"),
        ("first", "right"),
        ("rerank", "right"),
        ("score", "right"),
        ("stage", "left"),
        ("why", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows: list[Candidate] = (
        result.candidates if show_all else [c for c in result.candidates if c.stage != "retrieved"]
    )
    for n, c in enumerate(rows, 1):
        p = c.passage
        label = common.line((p.doc_id, "bold"), " ", _preview(p.title or p.text, 50))
        why = "kept" if c.kept else f"{c.dropped_by}: {c.reason}"
        style = "green" if c.kept else "dim"
        table.add_row(
            str(n),
            label,
            common.literal(p.source or ""),
            str(c.retrieval_rank),
            str(c.rerank_rank or ""),
            _fmt(c.rerank_score),
            c.stage,
            common.literal(why),
            style=style,
        )
    return table


def _candidate_json(c: Candidate) -> dict[str, Any]:
    p = c.passage
    return {
        "id": p.id,
        "doc_id": p.doc_id,
        "title": p.title,
        "text": p.text,
        "source": p.source,
        "published": p.published,
        "metadata": dict(p.metadata),
        "stage": c.stage,
        "kept": c.kept,
        "retrieval_rank": c.retrieval_rank,
        "retrieval_score": c.retrieval_score,
        "rerank_rank": c.rerank_rank,
        "rerank_score": c.rerank_score,
        "dropped_by": c.dropped_by,
        "reason": c.reason,
    }


def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    index_dir: IndexDir = None,
    embedding_model: EmbeddingModel = None,
    embedding_device: EmbeddingDevice = None,
    embedding_batch_size: EmbeddingBatchSize = None,
    milvus_uri: MilvusUri = None,
    milvus_token: MilvusToken = None,
    milvus_collection: MilvusCollection = None,
    rrf_k: RrfK = None,
    retrieve_top_k: RetrieveTopK = None,
    rerank_top_n: RerankTopN = None,
    final_top_n: FinalTopN = None,
    template: Template = None,
    templates_file: TemplatesFile = None,
    rules_file: RulesFile = None,
    min_score: MinScore = None,
    max_age_days: MaxAgeDays = None,
    allow_sources: AllowSources = None,
    deny_sources: DenySources = None,
    max_per_source: MaxPerSource = None,
    as_json: common.Json = None,
    show_all: Annotated[bool | None, setting_option(SearchOutputSettings, "show_all")] = None,
    model: common.Model = None,
    device: common.Device = None,
    max_length: common.MaxLength = None,
    calibration: common.Calibration = None,
    offline: common.Offline = None,
) -> None:
    """Retrieve, rerank and filter: print each candidate with the stage it reached and why."""
    with common.exits_on_error():
        s = _settings(
            index_dir=index_dir,
            embedding_model=embedding_model,
            embedding_device=embedding_device,
            embedding_batch_size=embedding_batch_size,
            milvus_uri=milvus_uri,
            milvus_token=milvus_token,
            milvus_collection=milvus_collection,
            rrf_k=rrf_k,
            retrieve_top_k=retrieve_top_k,
            rerank_top_n=rerank_top_n,
            final_top_n=final_top_n,
            template=template,
            templates_file=templates_file,
            rules_file=rules_file,
            min_score=min_score,
            max_age_days=max_age_days,
            allow_sources=allow_sources,
            deny_sources=deny_sources,
            max_per_source=max_per_source,
        )
        listing = settings_from(SearchOutputSettings, locals(), "search settings")
        reranker = load_reranker(locals())
        # The rule and template settings reach the funnel as the server's do (build_funnel).
        result = build_funnel(s, reranker, offline=bool(offline)).run(query)
    if as_json:
        out = {
            "query": result.query,
            "rerank_query": result.rerank_query,
            "template": result.template,
            "timings": dict(result.timings),
            "candidates": [_candidate_json(c) for c in result.candidates],
        }
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    console = Console(soft_wrap=False, width=max(Console().width, 160))
    console.print(_table(result, listing.show_all))
    t = result.timings
    console.print(
        common.literal(
            f"{len(result.kept)} kept of {len(result.candidates)} recalled; "
            f"retrieve {t['retrieve']:.3f}s, rerank {t['rerank']:.3f}s, rules {t['rules']:.3f}s"
            + (f"; template {result.template}" if result.template else "")
        )
    )


def templates(templates_file: TemplatesFile = None, as_json: common.Json = None) -> None:
    """List the query templates (built-in and from --templates-file)."""
    with common.exits_on_error():
        registry = load_templates(_settings(templates_file=templates_file))
    items = registry.all()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "version": t.version,
                        "description": t.description,
                        "template": t.template,
                        "origin": t.origin,
                    }
                    for t in items
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = Table(title="Query templates", title_justify="left")
    for col in ("template", "description", "text", "origin"):
        table.add_column(col)
    for t in items:
        table.add_row(
            *(common.literal(v) for v in (t.ref, t.description, _preview(t.template, 60), t.origin))
        )
    Console(soft_wrap=False, width=max(Console().width, 140)).print(table)


def _eval_table(report: EvalReport) -> Table:
    table = Table(
        title=f"{report.queries} queries, first stage depth {report.depth}", title_justify="left"
    )
    table.add_column("system")
    for m in report.measures:
        table.add_column(common.literal(m.replace("RR@", "MRR@")), justify="right")
    for system, values in report.systems.items():
        table.add_row(common.literal(system), *(f"{values[m]:.4f}" for m in report.measures))
    return table


def eval_command(
    data: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: EvalSplit = None,
    index_dir: EvalIndexDir = None,
    embedding_model: EmbeddingModel = None,
    embedding_device: EmbeddingDevice = None,
    embedding_batch_size: EmbeddingBatchSize = None,
    passage_words: PassageWords = None,
    passage_overlap: PassageOverlap = None,
    rrf_k: RrfK = None,
    retrieve_top_k: RetrieveTopK = None,
    template: Template = None,
    templates_file: TemplatesFile = None,
    chart: EvalChart = None,
    as_json: common.Json = None,
    model: common.Model = None,
    device: common.Device = None,
    max_length: common.MaxLength = None,
    offline: common.Offline = None,
) -> None:
    """nDCG@10, MRR@10 and Recall of the first stage alone and with rerank, plus a PNG chart."""
    with common.exits_on_error(), tempfile.TemporaryDirectory(prefix="rankgate-eval-") as tmp:
        common.quiet_libraries()
        e = build_eval_settings(split=split, index_dir=index_dir, chart=chart)
        s = _settings(
            index_dir=e.index_dir or Path(tmp),
            embedding_model=embedding_model,
            embedding_device=embedding_device,
            embedding_batch_size=embedding_batch_size,
            passage_words=passage_words,
            passage_overlap=passage_overlap,
            rrf_k=rrf_k,
            retrieve_top_k=retrieve_top_k,
            template=template,
            templates_file=templates_file,
        )
        beir = load_beir(data, e.split)
        embedder = load_embedder(s, offline=bool(offline))
        with common.progress("indexing corpus") as progress:
            LocalIndex.build(
                s.index_dir,
                beir.corpus,
                embedder,
                passage_words=s.passage_words,
                passage_overlap=s.passage_overlap,
                progress=progress,
            )
        retriever = LocalIndex.open(s.index_dir, embedder, rrf_k=s.rrf_k)
        reranker = load_reranker(locals())
        chosen = load_templates(s).get(s.template) if s.template else None
        with common.progress("evaluating queries") as progress:
            report = evaluate(
                retriever,
                reranker,
                beir.queries,
                beir.qrels,
                depth=s.retrieve_top_k,
                template=chosen,
                progress=progress,
            )
        save_chart(report, e.chart)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "queries": report.queries,
                    "depth": report.depth,
                    "systems": report.systems,
                    "chart": str(e.chart),
                },
                indent=2,
            )
        )
        return
    Console(soft_wrap=False, width=max(Console().width, 120)).print(_eval_table(report))
    typer.echo(f"chart: {e.chart}")
