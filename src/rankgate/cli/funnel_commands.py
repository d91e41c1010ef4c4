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
from rankgate.cli.loading import load_reranker
from rankgate.funnel.corpus import read_corpus
from rankgate.funnel.evaluation import EvalReport, evaluate, load_beir, save_chart
from rankgate.funnel.factory import build_funnel, load_embedder, load_templates
from rankgate.funnel.index import BuildReport, LocalIndex
from rankgate.funnel.settings import DEFAULT_EMBEDDING_MODEL, FunnelSettings, build_funnel_settings
from rankgate.funnel.types import Candidate, FunnelResult

_INDEX = "Index options"
_STAGES = "Funnel options"
_RULES = "Rule options"

IndexDir = Annotated[
    Path | None,
    typer.Option(
        "--index-dir",
        "-i",
        envvar="RANKGATE_INDEX_DIR",
        rich_help_panel=_INDEX,
        help="Directory of the on-disk index. Default: ./rankgate-index.",
        show_default=False,
    ),
]
EmbeddingModel = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_EMBEDDING_MODEL",
        rich_help_panel=_INDEX,
        help="sentence-transformers model for dense retrieval, hub id or directory. Default: "
        f"the one the index was built with, else {DEFAULT_EMBEDDING_MODEL} (2.3 GB; fetch it "
        f"once with rankgate download {DEFAULT_EMBEDDING_MODEL}).",
        show_default=False,
    ),
]
EmbeddingDevice = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_EMBEDDING_DEVICE",
        rich_help_panel=_INDEX,
        help="Device of the embedding model. Default: cpu.",
        show_default=False,
    ),
]
MilvusUri = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_MILVUS_URI",
        rich_help_panel=_INDEX,
        help="Use Milvus instead of the embedded index: a .db path (Milvus Lite) or "
        "http://host:19530. Default: unset.",
        show_default=False,
    ),
]
MilvusCollection = Annotated[
    str | None,
    typer.Option(
        envvar="RANKGATE_MILVUS_COLLECTION",
        rich_help_panel=_INDEX,
        help="Milvus collection. Default: rankgate.",
        show_default=False,
    ),
]
RetrieveTopK = Annotated[
    int | None,
    typer.Option(
        "--retrieve-top-k",
        "-k",
        envvar="RANKGATE_RETRIEVE_TOP_K",
        rich_help_panel=_STAGES,
        help="Candidates the first stage recalls. Default: 50.",
        show_default=False,
    ),
]
Template = Annotated[
    str | None,
    typer.Option(
        "--template",
        "-t",
        envvar="RANKGATE_TEMPLATE",
        rich_help_panel=_STAGES,
        help="Query template for the reranker: name or name@version (see `rankgate templates`). "
        "Default: none.",
        show_default=False,
    ),
]
TemplatesFile = Annotated[
    Path | None,
    typer.Option(
        envvar="RANKGATE_TEMPLATES_FILE",
        rich_help_panel=_STAGES,
        help="TOML file of extra query templates. Default: none.",
        show_default=False,
    ),
]


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
    passage_words: Annotated[
        int | None,
        typer.Option(
            envvar="RANKGATE_PASSAGE_WORDS",
            rich_help_panel=_INDEX,
            help="Longest passage in words (CJK characters count as words). Default: 200.",
            show_default=False,
        ),
    ] = None,
    passage_overlap: Annotated[
        int | None,
        typer.Option(
            envvar="RANKGATE_PASSAGE_OVERLAP",
            rich_help_panel=_INDEX,
            help="Words shared by consecutive passages. Default: 40.",
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            help="Remove indexed documents whose id is not in DOCS.", rich_help_panel=_INDEX
        ),
    ] = False,
    milvus_uri: MilvusUri = None,
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
            passage_words=passage_words,
            passage_overlap=passage_overlap,
            milvus_uri=milvus_uri,
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
                    prune=prune,
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
                    prune=prune,
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
    milvus_uri: MilvusUri = None,
    milvus_collection: MilvusCollection = None,
    retrieve_top_k: RetrieveTopK = None,
    rerank_top_n: Annotated[
        int | None,
        typer.Option(
            envvar="RANKGATE_RERANK_TOP_N",
            rich_help_panel=_STAGES,
            help="Candidates the reranker keeps. Default: 10.",
            show_default=False,
        ),
    ] = None,
    top_n: Annotated[
        int | None,
        typer.Option(
            "--top-n",
            "-n",
            envvar="RANKGATE_FINAL_TOP_N",
            rich_help_panel=_STAGES,
            help="Documents kept after the rules. Default: 3.",
            show_default=False,
        ),
    ] = None,
    template: Template = None,
    templates_file: TemplatesFile = None,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            envvar="RANKGATE_RULES_FILE",
            rich_help_panel=_RULES,
            help="TOML file of rules. Default: built-in rules.",
            show_default=False,
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            envvar="RANKGATE_MIN_SCORE",
            rich_help_panel=_RULES,
            help="Drop rerank scores below this. Default: 0.7.",
            show_default=False,
        ),
    ] = None,
    max_age_days: Annotated[
        int | None,
        typer.Option(
            envvar="RANKGATE_MAX_AGE_DAYS",
            rich_help_panel=_RULES,
            help="Drop documents older than this. Default: 730.",
            show_default=False,
        ),
    ] = None,
    allow_source: Annotated[
        list[str] | None,
        typer.Option(
            envvar="RANKGATE_ALLOW_SOURCES",
            rich_help_panel=_RULES,
            help="Only these sources (repeat; hosts match subdomains). Default: any.",
            show_default=False,
        ),
    ] = None,
    deny_source: Annotated[
        list[str] | None,
        typer.Option(
            envvar="RANKGATE_DENY_SOURCES",
            rich_help_panel=_RULES,
            help="Never these sources (repeat). Default: none.",
            show_default=False,
        ),
    ] = None,
    max_per_source: Annotated[
        int | None,
        typer.Option(
            envvar="RANKGATE_MAX_PER_SOURCE",
            rich_help_panel=_RULES,
            help="At most this many per source. Default: no cap.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON out instead of a table.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list candidates the reranker never kept.")
    ] = False,
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
            milvus_uri=milvus_uri,
            milvus_collection=milvus_collection,
            retrieve_top_k=retrieve_top_k,
            rerank_top_n=rerank_top_n,
            final_top_n=top_n,
            rules_file=rules_file,
            templates_file=templates_file,
        )
        reranker = load_reranker(locals())
        funnel = build_funnel(s, reranker, offline=bool(offline))
        overrides: dict[str, Any] = {
            k: v
            for k, v in {
                "min_score": min_score,
                "max_age_days": max_age_days,
                "allow_sources": allow_source,
                "deny_sources": deny_source,
                "max_per_source": max_per_source,
            }.items()
            if v is not None
        }
        rules = funnel.rules.with_overrides(overrides) if overrides else None
        result = funnel.run(query, template=template, rules=rules)
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
    console.print(_table(result, show_all))
    t = result.timings
    console.print(
        common.literal(
            f"{len(result.kept)} kept of {len(result.candidates)} recalled; "
            f"retrieve {t['retrieve']:.3f}s, rerank {t['rerank']:.3f}s, rules {t['rules']:.3f}s"
            + (f"; template {result.template}" if result.template else "")
        )
    )


def templates(
    templates_file: TemplatesFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON out instead of a table.")] = False,
) -> None:
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
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv to judge with.")] = "test",
    index_dir: Annotated[
        Path | None,
        typer.Option(
            "--index-dir",
            "-i",
            envvar="RANKGATE_EVAL_INDEX_DIR",
            help="Keep the corpus index here (reused next time). Default: a temporary directory.",
            show_default=False,
        ),
    ] = None,
    embedding_model: EmbeddingModel = None,
    embedding_device: EmbeddingDevice = None,
    retrieve_top_k: RetrieveTopK = None,
    template: Template = None,
    templates_file: TemplatesFile = None,
    chart: Annotated[
        Path, typer.Option(envvar="RANKGATE_EVAL_CHART", help="Where to write the PNG chart.")
    ] = Path("rankgate-eval.png"),
    as_json: Annotated[bool, typer.Option("--json", help="JSON out instead of a table.")] = False,
    model: common.Model = None,
    device: common.Device = None,
    max_length: common.MaxLength = None,
    offline: common.Offline = None,
) -> None:
    """nDCG@10, MRR@10 and Recall of the first stage alone and with rerank, plus a PNG chart."""
    with common.exits_on_error(), tempfile.TemporaryDirectory(prefix="rankgate-eval-") as tmp:
        common.quiet_libraries()
        s = _settings(
            index_dir=index_dir or Path(tmp),
            embedding_model=embedding_model,
            embedding_device=embedding_device,
            retrieve_top_k=retrieve_top_k,
            templates_file=templates_file,
        )
        beir = load_beir(data, split)
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
        chosen = load_templates(s).get(template) if template else None
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
        save_chart(report, chart)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "queries": report.queries,
                    "depth": report.depth,
                    "systems": report.systems,
                    "chart": str(chart),
                },
                indent=2,
            )
        )
        return
    Console(soft_wrap=False, width=max(Console().width, 120)).print(_eval_table(report))
    typer.echo(f"chart: {chart}")
