"""The embedded index: corpus reading, passages, crash safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from rankgate.funnel import (
    CorpusError,
    IndexMissingError,
    LocalIndex,
    SourceDocument,
    read_corpus,
    split_passages,
)
from rankgate.funnel.lexical import tokenize
from tests.funnel.conftest import EXAMPLES


def test_reads_jsonl_with_metadata(corpus):
    assert len(corpus) == 300
    doc = next(d for d in corpus if d.id == "t00-zh-guide")
    assert doc.source == "https://support.apple.com/zh/help"
    assert doc.published == "2025-06-01"
    assert doc.metadata == {"lang": "zh", "kind": "guide", "product": "iPhone 15"}


def test_reads_a_folder_of_text_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Reset guide\nHold the button.", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("Plain text.", encoding="utf-8")
    (tmp_path / "skip.bin").write_text("ignored", encoding="utf-8")
    docs = {d.id: d for d in read_corpus(tmp_path)}
    assert set(docs) == {"a.md", "sub/b.txt"}
    assert docs["a.md"].title == "Reset guide"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "no id"}', "missing 'id'"),
        ('{"id": 1, "text": ""}', "non-empty"),
        ("not json", "not valid JSON"),
        ('{"id": 1, "text": "x", "source": 3}', "'source'"),
    ],
)
def test_malformed_corpus_names_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=f"bad.jsonl:2: .*{message}"):
        read_corpus(path)


def test_long_texts_become_overlapping_passages():
    words = [f"w{i}" for i in range(50)]
    doc = SourceDocument(id="x", text=" ".join(words), title="T")
    parts = split_passages(doc, max_words=20, overlap=5)
    assert [p.id for p in parts] == ["x#0", "x#1", "x#2"]
    assert parts[0].text.split() == words[:20] and parts[1].text.split() == words[15:35]
    assert parts[-1].text.split()[-1] == "w49"
    assert all(p.title == "T" and p.doc_id == "x" for p in parts)


def test_cjk_passages_count_characters_and_keep_spacing():
    doc = SourceDocument(id="zh", text="长按复位键十秒钟然后登录")
    parts = split_passages(doc, max_words=6, overlap=2)
    assert [p.text for p in parts] == ["长按复位键十", "键十秒钟然后", "然后登录"]


def test_bm25_tokenizer_handles_unspaced_scripts():
    assert tokenize("Reset 密码") == ["reset", "密", "码", "密码"]


def test_opening_a_missing_index_is_a_clear_error(tmp_path, embedder):
    with pytest.raises(IndexMissingError, match="rankgate index"):
        LocalIndex.open(tmp_path / "nothing", embedder)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import rankgate.funnel.index as index
    from rankgate.funnel import LocalIndex, SentenceTransformerEmbedder, read_corpus

    model, root, corpus, where = sys.argv[1:]
    embedder = SentenceTransformerEmbedder(model, offline=True, batch_size=8)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def progress(done, total):
        if done >= 16:
            die()

    if where == "before-commit":  # the generation is fully written, the pointer not yet swapped
        index.commit_generation = die
    LocalIndex.build(Path(root), read_corpus(Path(corpus)), embedder,
                     progress=progress if where == "embedding" else None)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["embedding", "before-commit"])
def test_an_index_killed_mid_build_stays_readable_and_a_rerun_completes_it(
    tmp_path, minilm_path, corpus, embedder, where
):
    root = tmp_path / "idx"
    first = corpus[:40]
    LocalIndex.build(root, first, embedder)
    full = tmp_path / "full.jsonl"
    # 80 documents keep the killed child quick; the first 40 are already indexed
    lines = (EXAMPLES / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    full.write_text("".join(lines[:80]), encoding="utf-8")

    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(minilm_path), str(root), str(full), where],
        capture_output=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(list(root.glob("gen-*"))) == 2  # the abandoned half-built generation is there

    survived = LocalIndex.open(root, embedder)
    assert survived.documents == 40 and len(survived.passages) == 40
    assert survived.search("iPhone 15 charges slowly", 5)[0].passage.doc_id.startswith("t00")

    report = LocalIndex.build(root, read_corpus(full), embedder)
    assert (report.unchanged, report.added, report.documents) == (40, 40, 80)
    complete = LocalIndex.open(root, embedder)
    assert {p.doc_id for p in complete.passages} == {d.id for d in corpus[:80]}
    assert len(list(root.glob("gen-*"))) == 1
    assert complete.search("Tesla Model Y winter range", 3)[0].passage.doc_id.startswith("t02")
