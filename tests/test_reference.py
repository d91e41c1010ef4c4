"""Parity with FlagEmbedding's FlagReranker itself, run in its own environment (transformers 4).

``make test`` builds that environment (scripts/setup-flag-env.sh). Locally the test is skipped
when it is absent; under CI (CI=true) its absence is a failure, so parity is never silently lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankgate import Reranker
from tests.reference import run_reference
from tests.samples import DOCUMENTS, QUERY

pytestmark = pytest.mark.reference


def flag_scores(
    model: Path, pairs: list[tuple[str, str]], max_length: int, **extra: object
) -> list[float]:
    request = {"model": str(model), "pairs": pairs, "max_length": max_length, **extra}
    return list(run_reference("flag_reference.py", request)["scores"])


def test_scores_equal_flag_reranker(tiny_model: Path) -> None:
    long_query = " ".join(["router admin password reset"] * 20)
    pairs = [(QUERY, d) for d in DOCUMENTS] + [
        (QUERY, DOCUMENTS[6] * 4),
        (long_query, DOCUMENTS[0]),
        (long_query, "short"),
    ]
    for max_length in (48, 512):
        expected = flag_scores(tiny_model, pairs, max_length, batch_size=4)
        ours = Reranker(str(tiny_model), max_length=max_length, long_documents="truncate")
        assert ours.compute_score(pairs) == pytest.approx(expected, abs=1e-5)
        normalized = flag_scores(tiny_model, pairs, max_length, normalize=True)
        assert ours.compute_score(pairs, normalize=True) == pytest.approx(normalized, abs=1e-5)


def test_tokenizer_json_is_followed_where_transformers_5_would_differ(
    tiny_model: Path, tmp_path: Path
) -> None:
    """A tokenizer.json with an NFKC normalizer: transformers 5 rebuilds XLM-R's pipeline without
    it (full-width "？" becomes <unk>), transformers 4 and FlagEmbedding use the file as written.
    rankgate tokenizes from the file, so it must still equal FlagReranker."""
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "nfkc"
    shutil.copytree(tiny_model, model)
    spec = json.loads((model / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "NFKC"}
    (model / "tokenizer.json").write_text(json.dumps(spec))
    text = "如何重置路由器密码？长按复位键十秒钟。"
    ours = Reranker(str(model))
    rebuilt = AutoTokenizer.from_pretrained(str(model))(text, add_special_tokens=False)["input_ids"]
    assert ours.backend.tokenize([text])[0] != rebuilt  # the case this test is about exists
    pairs = [(QUERY, text), ("密码？", "复位键？ ＡＢＣ １２３")]
    assert ours.compute_score(pairs) == pytest.approx(flag_scores(model, pairs, 512), abs=1e-5)
