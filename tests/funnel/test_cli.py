"""`rankgate index`, `search` and `templates` on the sample corpus."""

from __future__ import annotations

import json

import pytest

from tests.funnel.conftest import EXAMPLES


@pytest.mark.slow
def test_index_then_search(tmp_path, minilm_path, tiny_model, funnel_cli):
    env = {"RANKGATE_EMBEDDING_MODEL": str(minilm_path), "RANKGATE_INDEX_DIR": str(tmp_path / "i")}
    docs = tmp_path / "docs.jsonl"
    lines = (EXAMPLES / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    docs.write_text("".join(lines[:60]), encoding="utf-8")
    out = funnel_cli(["index", str(docs), "--offline"], env=env)
    assert out.exit_code == 0, out.output
    assert "indexed 60 documents (60 passages)" in out.output
    again = funnel_cli(["index", str(docs), "--offline"], env=env)
    assert "60 unchanged" in again.output and "0 passages embedded" in again.output

    args = [
        "search",
        "iPhone 15 charges slowly",
        "--model",
        str(tiny_model),
        "--device",
        "cpu",
        "--offline",
        "--min-score",
        "0",
        "--allow-source",
        "apple.com",
        "-n",
        "2",
    ]
    table = funnel_cli(args, env=env)
    assert table.exit_code == 0, table.output
    assert "allow_sources" in table.output and "kept" in table.output
    # Candidates the reranker never kept are listed only when asked for (--all).
    everything = funnel_cli(args, env={**env, "RANKGATE_SEARCH_ALL": "true"})
    assert everything.exit_code == 0, everything.output
    assert "retrieved" in everything.output and "retrieved" not in table.output
    result = json.loads(funnel_cli([*args, "--json"], env=env).output)
    kept = [c for c in result["candidates"] if c["kept"]]
    assert 1 <= len(kept) <= 2
    assert all("apple.com" in c["source"] for c in kept)
    assert all(c["dropped_by"] for c in result["candidates"] if not c["kept"])


def test_search_without_an_index_exits_with_a_clear_error(
    tmp_path, minilm_path, tiny_model, funnel_cli
):
    out = funnel_cli(
        [
            "search",
            "q",
            "-i",
            str(tmp_path / "none"),
            "--embedding-model",
            str(minilm_path),
            "--model",
            str(tiny_model),
            "--offline",
        ]
    )
    assert out.exit_code == 2
    assert "rankgate index" in out.output


def test_templates_lists_builtin_and_user_templates(funnel_cli):
    out = funnel_cli(["templates", "--templates-file", str(EXAMPLES / "templates.toml"), "--json"])
    refs = [f"{t['name']}@{t['version']}" for t in json.loads(out.output)]
    assert {"troubleshooting@1", "troubleshooting-zh@1", "support@2"} <= set(refs)
    assert "RANKGATE_TEMPLATES_FILE" in funnel_cli(["templates", "--help"]).output
