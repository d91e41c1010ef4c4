"""What reranking gained: nDCG@10, MRR@10 and Recall on BEIR-format data (via ir-measures).

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).
Rankings are per document: a document ranks where its best passage ranks. Rules are not applied;
they filter for a reader, they do not rank.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankgate.engine import Reranker
from rankgate.errors import MissingDependencyError
from rankgate.funnel.corpus import SourceDocument, read_corpus
from rankgate.funnel.errors import CorpusError
from rankgate.funnel.templates import QueryTemplate
from rankgate.funnel.types import Hit, Retriever

__all__ = ["BeirData", "EvalReport", "evaluate", "load_beir", "save_chart"]

FIRST_STAGE = "first stage"
RERANKED = "first stage + rerank"


@dataclass(frozen=True, slots=True)
class BeirData:
    """A BEIR dataset in memory."""

    corpus: list[SourceDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Mean measures per system (``first stage``, ``first stage + rerank``), and per query."""

    measures: list[str]
    systems: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    queries: int
    depth: int


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read a BEIR folder.

    Raises:
        CorpusError: a missing file or a malformed line (file and line named).
    """
    folder = Path(folder)
    corpus = read_corpus(folder / "corpus.jsonl")
    queries: dict[str, str] = {}
    path = folder / "queries.jsonl"
    try:
        with path.open(encoding="utf-8") as stream:
            for n, line in enumerate(stream, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                        queries[str(row["_id"])] = str(row["text"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise CorpusError(f"{path}:{n}: expected {{'_id', 'text'}}") from None
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    qrels: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / f"{split}.tsv"
    try:
        with path.open(encoding="utf-8", newline="") as stream:
            for n, row in enumerate(csv.reader(stream, delimiter="\t"), 1):
                if n == 1 and row and not row[-1].lstrip("-").isdigit():
                    continue  # header
                if not row:
                    continue
                try:
                    qid, did, score = row[0], row[1], int(row[-1])
                except (IndexError, ValueError):
                    raise CorpusError(f"{path}:{n}: expected query-id, corpus-id, score") from None
                qrels.setdefault(qid, {})[did] = score
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file (is the split {split!r} right?)") from None
    return BeirData(corpus, queries, qrels)


def _doc_run(doc_ids: Sequence[str]) -> dict[str, float]:
    # ir-measures orders by score; strictly decreasing scores keep our order, ties impossible.
    run: dict[str, float] = {}
    for doc_id in doc_ids:
        if doc_id not in run:
            run[doc_id] = float(len(doc_ids) - len(run))
    return run


def _measures(names: Sequence[str]) -> list[Any]:
    try:
        import ir_measures
    except ImportError:
        raise MissingDependencyError("ir-measures", "eval", "rankgate eval") from None
    return [ir_measures.parse_measure(name) for name in names]


def evaluate(
    retriever: Retriever,
    reranker: Reranker,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    depth: int = 50,
    template: QueryTemplate | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Score the first stage alone and followed by the reranker.

    Args:
        retriever: the first stage.
        reranker: reorders the first stage's ``depth`` passages.
        queries: query id -> text; queries without judgements are skipped (BEIR does the same).
        qrels: query id -> {document id: graded relevance}.
        depth: passages recalled per query (the ``k`` of Recall@k).
        template: query template for the reranker.
        progress: called with (queries done, total).
    """
    names = ["nDCG@10", "RR@10", "R@10", f"R@{depth}"]
    measures = _measures(names)
    judged = [qid for qid in queries if qid in qrels]
    runs: dict[str, dict[str, dict[str, float]]] = {FIRST_STAGE: {}, RERANKED: {}}
    for done, qid in enumerate(judged, 1):
        query = queries[qid]
        hits: list[Hit] = retriever.search(query, depth)
        runs[FIRST_STAGE][qid] = _doc_run([h.passage.doc_id for h in hits])
        if hits:
            docs = [h.passage.as_document() for h in hits]
            ranked = reranker.rerank(template.apply(query) if template else query, docs)
            runs[RERANKED][qid] = _doc_run([hits[r.index].passage.doc_id for r in ranked])
        else:
            runs[RERANKED][qid] = {}
        if progress is not None:
            progress(done, len(judged))
    import ir_measures

    qrels_dict = {q: dict(v) for q, v in qrels.items() if q in runs[FIRST_STAGE]}
    systems: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for system, run in runs.items():
        aggregate = ir_measures.calc_aggregate(measures, qrels_dict, run)
        systems[system] = {
            name: float(aggregate[m]) for name, m in zip(names, measures, strict=True)
        }
        per_query[system] = {}
        for metric in ir_measures.iter_calc(measures, qrels_dict, run):
            name = names[measures.index(metric.measure)]
            per_query[system].setdefault(metric.query_id, {})[name] = float(metric.value)
    return EvalReport(names, systems, per_query, len(judged), depth)


def save_chart(report: EvalReport, path: Path) -> Path:
    """A grouped bar chart (one group per measure, one bar per system) as PNG.

    Systems differ by Okabe-Ito colour (told apart with any colour vision) and by hatching; each
    bar carries its value, and the legend sits below the axes, clear of the bars.
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "eval", "the evaluation chart") from None
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    colours = ["#999999", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
    hatches = ["", "//", "..", "xx", "\\\\", "++", "oo"]
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=100, layout="constrained")
    width = 0.8 / len(report.systems)
    for i, (system, values) in enumerate(report.systems.items()):
        xs = [m + i * width for m in range(len(report.measures))]
        bars = ax.bar(
            xs,
            [values[m] for m in report.measures],
            width,
            label=system,
            color=colours[i % len(colours)],
            hatch=hatches[i % len(hatches)],
            edgecolor="white",
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks([m + width * (len(report.systems) - 1) / 2 for m in range(len(report.measures))])
    ax.set_xticklabels([m.replace("RR@", "MRR@") for m in report.measures])
    ax.set_ylim(0, 1.1)
    ax.set_title(f"Retrieval quality over {report.queries} queries")
    fig.legend(loc="outside lower center", ncol=len(report.systems), frameon=False)
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
