"""Regenerate ``beir-support/``: a BEIR set whose first stage does not already get it right.

The corpus is the English and Chinese part of ``corpus.jsonl`` (10 products x 6 kinds of
document each). Every query asks what to do about one product's problem. Judgements follow what
answers it: the official guide and its word-for-word mirror (2), the forum thread whose answer
gives the fix and the archived article with an older fix (1); the FAQ and the news item name the
product and the problem without a fix (0). Both share the query's words, so BM25 and dense
retrieval rank them high: reranking has something to change.

Deterministic. Run: ``python examples/funnel/make_beir_support.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from make_corpus import TOPICS, documents

OUT = Path(__file__).with_name("beir-support")
LANGUAGES = ("en", "zh")
QUESTIONS = {"en": "{p} {q}, what should I do?", "zh": "{p}{q}，该怎么办？"}
GRADES = {"guide": 2, "mirror": 2, "forum": 1, "archive": 1, "faq": 0, "news": 0}


def build() -> tuple[list[dict[str, str]], list[dict[str, str]], list[tuple[str, str, int]]]:
    docs = [d for d in documents() if d["lang"] in LANGUAGES]
    corpus = [{"_id": str(d["id"]), "title": str(d["title"]), "text": str(d["text"])} for d in docs]
    queries, qrels = [], []
    for t, (product, _, phrases) in enumerate(TOPICS):
        for lang in LANGUAGES:
            qid = f"q{t:02d}-{lang}"
            problem = phrases[lang][0]
            queries.append({"_id": qid, "text": QUESTIONS[lang].format(p=product, q=problem)})
            for kind, grade in GRADES.items():
                qrels.append((qid, f"t{t:02d}-{lang}-{kind}", grade))
    return corpus, queries, qrels


if __name__ == "__main__":
    corpus, queries, qrels = build()
    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (OUT / name).open("w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (OUT / "qrels" / "test.tsv").open("w", encoding="utf-8") as stream:
        stream.write("query-id\tcorpus-id\tscore\n")
        for qid, did, grade in qrels:
            stream.write(f"{qid}\t{did}\t{grade}\n")
    print(f"wrote {len(corpus)} documents, {len(queries)} queries to {OUT}")
