"""Resumable output of score-batch: shards, columns, manifest checks, atomic parts, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rankgate.ray
from rankgate.errors import ConfigError, InputError
from rankgate.ray.shards import Manifest, PartStore, Shard, pair_columns, plan_shards, read_pairs


def test_public_names_resolve() -> None:
    pytest.importorskip("ray")
    for name in rankgate.ray.__all__:
        assert getattr(rankgate.ray, name) is not None, name


def test_shards_cover_every_row_once() -> None:
    shards = plan_shards(2501, 1000)
    assert [(s.start, s.stop) for s in shards] == [(0, 1000), (1000, 2000), (2000, 2501)]
    assert [s.name for s in shards][-1] == "part-00002.parquet"


@pytest.mark.parametrize(
    ("columns", "want"),
    [
        ({"query": ["q"], "document": ["d"], "text": ["t"]}, "document"),
        ({"query": ["q"], "text": ["t"]}, "text"),
        ({"id": [1], "query": ["q"], "passage": ["p"]}, "passage"),
    ],
)
def test_document_column_is_found(columns: dict[str, list[object]], want: str) -> None:
    assert pair_columns(pa.table(columns)) == ("query", want)


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"q": ["x"], "document": ["d"]}, "no 'query' column"),
        ({"query": ["x"], "body": ["d"]}, "no document column"),
        ({"query": ["x", None], "text": ["d", "e"]}, "row 1: 'query' is missing"),
        ({"query": ["x", "  "], "text": ["d", "e"]}, "row 1: the query is empty"),
        ({"query": ["x"], "text": [3]}, "must hold text"),
        ({"query": ["x"], "text": ["d"], "score": [1.0]}, "overwritten"),
    ],
)
def test_bad_inputs_are_refused_before_scoring(
    columns: dict[str, list[object]], problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        pair_columns(pa.table(columns))


def test_reads_jsonl_and_parquet_and_refuses_other_files(tmp_path: Path) -> None:
    rows = [{"query": "q", "text": "d", "id": "a"}]
    (tmp_path / "in.jsonl").write_text(json.dumps(rows[0]) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    assert read_pairs(tmp_path / "in.jsonl").to_pylist() == rows
    assert read_pairs(tmp_path / "in.parquet").to_pylist() == rows
    with pytest.raises(InputError, match=r"\.parquet or \.jsonl"):
        read_pairs(tmp_path / "in.csv")


def manifest(**changes: object) -> Manifest:
    base: dict[str, object] = dict(
        input="in.jsonl", fingerprint="abc", rows=3, shard_rows=2, document_column="text", model={}
    )
    return Manifest(**{**base, **changes})  # type: ignore[arg-type]


def part(rows: range) -> pa.Table:
    return pa.table({"row": list(rows), "score": [float(r) for r in rows]})


def test_resume_keeps_parts_and_restart_drops_them(tmp_path: Path) -> None:
    store = PartStore(tmp_path / "out")
    assert store.open(manifest(), resume=True) == set()
    store.write(Shard(0, 0, 2), part(range(2)))
    assert PartStore(tmp_path / "out").open(manifest(), resume=True) == {0}
    assert PartStore(tmp_path / "out").open(manifest(), resume=False) == set()
    assert not list((tmp_path / "out").glob("part-*"))


def test_parts_of_another_job_are_not_mixed_in(tmp_path: Path) -> None:
    PartStore(tmp_path / "out").open(manifest(), resume=True)
    with pytest.raises(ConfigError, match="fingerprint differs"):
        PartStore(tmp_path / "out").open(manifest(fingerprint="other"), resume=True)
    with pytest.raises(ConfigError, match="model differs"):
        PartStore(tmp_path / "out").open(manifest(model={"model": "x"}), resume=True)


def test_a_foreign_directory_is_not_touched(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a score-batch output"):
        PartStore(tmp_path / "out").open(manifest(), resume=True)


def test_merge_writes_rows_in_order(tmp_path: Path) -> None:
    for name in ("out.parquet", "out.jsonl"):
        store = PartStore(tmp_path / name)
        assert store.dir == tmp_path / f"{name}.parts"
        store.open(manifest(), resume=True)
        shards = plan_shards(3, 2)
        store.write(shards[1], part(range(2, 3)))
        store.write(shards[0], part(range(2)))
        target = store.merge(shards)
        rows = (
            pq.read_table(target).to_pylist()
            if name.endswith(".parquet")
            else [json.loads(line) for line in target.read_text().splitlines()]
        )
        assert [r["row"] for r in rows] == [0, 1, 2]
        assert not list(tmp_path.glob("**/.*.tmp-*"))
        with pytest.raises(ConfigError, match="already exists"):
            PartStore(tmp_path / name).open(manifest(), resume=True)
