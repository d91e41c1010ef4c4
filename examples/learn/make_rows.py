"""Regenerate ``train.jsonl`` and ``dev.jsonl`` from the funnel's sample corpus.

Each row is one support question (a product and its problem, in one language) with the
product's official guide as the positive, in FlagEmbedding's schema. Training rows bring no
negatives: ``rankgate finetune --index-dir`` mines them from the index of the same corpus. Dev
rows (other languages than training) bring their negatives, the guides of three other products
in the same language, so they also serve as the labels of ``rankgate calibrate``.

Deterministic. Run: ``python examples/learn/make_rows.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "funnel" / "corpus.jsonl"
TRAIN_LANGUAGES = ("en", "zh", "fr")
DEV_LANGUAGES = ("es", "de")


def _topics() -> dict[tuple[str, str], str]:
    """(product, language) -> the problem, as the corpus generator phrases it."""
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS.with_name("make_corpus.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {(p, lang): prob for p, _, langs in module.TOPICS for lang, (prob, _) in langs.items()}


def rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    problems = _topics()
    guides = {(d["product"], d["lang"]): d for d in docs if d["kind"] == "guide"}
    mirrors = {(d["product"], d["lang"]): d for d in docs if d["kind"] == "mirror"}
    products = sorted({d["product"] for d in docs})
    train, dev = [], []
    for lang in (*TRAIN_LANGUAGES, *DEV_LANGUAGES):
        for n, product in enumerate(products):
            guide = guides[(product, lang)]
            query = f"{product}: {problems[(product, lang)]}"
            if lang in TRAIN_LANGUAGES:
                train.append({"query": query, "pos": [guide["text"]]})
                continue
            others = [products[(n + k) % len(products)] for k in (1, 3, 5)]
            positives = list(dict.fromkeys([guide["text"], mirrors[(product, lang)]["text"]]))
            dev.append(
                {
                    "query": query,
                    "pos": positives,
                    "neg": [guides[(p, lang)]["text"] for p in others],
                }
            )
    return train, dev


if __name__ == "__main__":
    train, dev = rows()
    for name, part in (("train.jsonl", train), ("dev.jsonl", dev)):
        with (HERE / name).open("w", encoding="utf-8") as stream:
            for row in part:
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {len(part)} rows to {HERE / name}")
