"""The funnel's embedder is explicit: the index's own model is used unless one is named, a
missing one fails at once offline with what to do, and the server never guesses an index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankgate.errors import ModelNotFoundError
from rankgate.funnel import LocalIndex, SentenceTransformerEmbedder
from rankgate.funnel.factory import embedding_model_for
from rankgate.funnel.settings import DEFAULT_EMBEDDING_MODEL, FunnelSettings
from tests.funnel.conftest import EXAMPLES


def test_the_index_s_own_model_is_used_unless_one_is_named(
    local_index: LocalIndex, tmp_path: Path
) -> None:
    recorded = LocalIndex.recorded_model(local_index.root)
    assert recorded and recorded == local_index.manifest["params"]["model"]
    assert embedding_model_for(FunnelSettings(index_dir=local_index.root)) == recorded
    named = FunnelSettings(index_dir=local_index.root, embedding_model="other/model")
    assert embedding_model_for(named) == "other/model"
    nothing_there = FunnelSettings(index_dir=tmp_path / "empty")
    assert embedding_model_for(nothing_there) == DEFAULT_EMBEDDING_MODEL
    assert LocalIndex.recorded_model(tmp_path / "empty") is None


def test_search_finds_the_index_s_embedder_by_itself(
    local_index: LocalIndex, tiny_model: Path, funnel_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RANKGATE_EMBEDDING_MODEL", raising=False)
    args = ["search", "iPhone 15 charges slowly", "--index-dir", str(local_index.root)]
    out = funnel_cli([*args, "--model", str(tiny_model), "--offline", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["candidates"]


def test_a_missing_embedder_offline_is_one_clear_error(funnel_cli, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "hello"}\n', encoding="utf-8")
    args = ["index", str(docs), "--index-dir", str(tmp_path / "i"), "--offline"]
    out = funnel_cli([*args, "--embedding-model", "nobody/no-such-embedder"])
    assert out.exit_code == 3
    assert "--embedding-model" in out.output and "rankgate download" in out.output
    assert "Traceback" not in out.output and "Retry" not in out.output
    with pytest.raises(ModelNotFoundError, match="embedding model"):
        SentenceTransformerEmbedder("nobody/no-such-embedder", offline=True)


@pytest.mark.slow
def test_the_support_eval_set_leaves_the_first_stage_something_to_fix(
    minilm_path: Path, tiny_model: Path, funnel_cli
) -> None:
    env = {"RANKGATE_EMBEDDING_MODEL": str(minilm_path)}
    args = ["eval", str(EXAMPLES / "beir-support"), "--model", str(tiny_model), "--json"]
    out = funnel_cli([*args, "--offline"], env=env)
    assert out.exit_code == 0, out.output
    systems = json.loads(out.stdout)["systems"]
    first = systems["first stage"]
    assert first["nDCG@10"] < 0.95  # the FAQ and the news item share the query's words
    assert systems["first stage + rerank"]["nDCG@10"] != first["nDCG@10"]
