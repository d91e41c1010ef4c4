"""Training files: FlagEmbedding's schema, sentence-transformers' layouts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankgate.errors import TrainingDataError
from rankgate.learn import TrainingRow, check_rows, read_rows, write_rows


def _write(path: Path, *records: object) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_flagembedding_rows_with_teacher_scores_and_prompt(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.jsonl",
        {
            "query": "q1",
            "pos": ["p"],
            "neg": ["n1", "n2"],
            "pos_scores": [2.0],
            "neg_scores": [0.5, -1],
            "prompt": "judge",
        },
        {"query": "q2", "pos": "only one", "neg": []},
    )
    first, second = read_rows(path)
    assert first == TrainingRow("q1", ("p",), ("n1", "n2"), (2.0,), (0.5, -1.0), "judge", 1)
    assert first.has_scores and not second.has_scores
    assert second.pos == ("only one",) and second.line == 2


def test_labeled_pairs_and_lists_are_grouped_by_query(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "pairs.jsonl",
        {"query": "a", "document": "yes", "label": 1},
        {"query": "a", "passage": "no", "label": 0},
        {"query": "b", "docs": ["x", "y", "z"], "labels": [0, 2, 0]},
        {"query": "a", "text": "also yes", "label": 0.7},
    )
    rows = {r.query: r for r in read_rows(path)}
    assert rows["a"].pos == ("yes", "also yes") and rows["a"].neg == ("no",)
    assert rows["b"].pos == ("y",) and rows["b"].neg == ("x", "z")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"query": "", "pos": ["p"]}', "'query' must be a non-empty string"),
        ('{"query": "q", "pos": [1]}', "'pos' must be a list of strings"),
        ('{"query": "q", "pos": ["p"], "pos_scores": [1, 2]}', "'pos_scores' must be a list of 1"),
        ('{"query": "q", "docs": ["a"], "labels": [1, 0]}', "one number per document"),
        ('{"query": "q", "document": "d", "label": "yes"}', "'label' must be a number"),
        ('{"query": "q", "answer": "d"}', "expected {'query', 'pos', 'neg'}"),
        ('["q", "d"]', "expected a JSON object"),
    ],
)
def test_malformed_rows_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", {"query": "fine", "pos": ["p"], "neg": ["n"]}, line)
    with pytest.raises(TrainingDataError) as info:
        read_rows(path)
    assert f"{path}:2" in str(info.value) and message in str(info.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no such file"):
        read_rows(tmp_path / "absent.jsonl")
    with pytest.raises(TrainingDataError, match="no rows"):
        read_rows(_write(tmp_path / "empty.jsonl", ""))


def test_check_rows_refuses_what_training_cannot_use(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        {"query": "ok", "pos": ["p"], "neg": ["n"]},
        {"query": "no pos", "pos": [], "neg": ["n"]},
    )
    with pytest.raises(TrainingDataError, match=r"t.jsonl:2: 'pos' is empty"):
        check_rows(read_rows(path), need_negatives=True)
    both = [TrainingRow("q", ("same", "p"), ("same",), line=4, where="f.jsonl")]
    with pytest.raises(TrainingDataError, match=r"f.jsonl:4: 1 document\(s\) are in both"):
        check_rows(both, need_negatives=False)
    bare = [TrainingRow("q", ("p",), line=7, where="f.jsonl")]
    check_rows(bare, need_negatives=False)
    with pytest.raises(TrainingDataError, match=r"f.jsonl:7: no negatives.*--index-dir"):
        check_rows(bare, need_negatives=True, hint="mine them (--index-dir DIR)")


def test_written_rows_read_back_equal(tmp_path: Path) -> None:
    rows = [
        TrainingRow("q", ("p",), ("n1", "n2"), (1.5,), (0.1, -0.2)),
        TrainingRow("多语言", ("文档",), ("无关",), prompt="p"),
    ]
    back = read_rows(write_rows(rows, tmp_path / "out" / "mined.jsonl"))
    assert [(r.query, r.pos, r.neg, r.pos_scores, r.neg_scores, r.prompt) for r in back] == [
        (r.query, r.pos, r.neg, r.pos_scores, r.neg_scores, r.prompt) for r in rows
    ]
