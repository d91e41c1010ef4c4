"""Resumable output for ``score-batch``: deterministic shards, atomic part files, a manifest.

The input's rows are cut into fixed row ranges (shards). Once every row of a shard is scored,
its part file is written to a temporary name, flushed to disk and renamed into place, so a part
either exists whole or not at all. A manifest written before any part records what the parts
belong to (input fingerprint, row count, shard size, model); a resumed run checks it and skips
the shards whose part exists. Only pyarrow here, no Ray, so it is tested without a cluster::

    OUTPUT.parts/               (or OUTPUT itself when OUTPUT is a directory)
    ├── manifest.json
    ├── part-00000.parquet      rows [0, shard_rows)
    └── part-00001.parquet      rows [shard_rows, 2 * shard_rows) ...
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from rankgate.errors import ConfigError, InputError

__all__ = [
    "DOCUMENT_COLUMNS",
    "OUTPUT_COLUMNS",
    "Manifest",
    "PartStore",
    "Shard",
    "fingerprint",
    "pair_columns",
    "plan_shards",
    "read_pairs",
]

DOCUMENT_COLUMNS = ("document", "text", "passage")
OUTPUT_COLUMNS = ("row", "score", "normalized_score")
FILE_SUFFIXES = (".parquet", ".jsonl")
MANIFEST = "manifest.json"


def read_pairs(path: Path) -> pa.Table:
    """The input table, from Parquet (``.parquet``) or JSON Lines (``.jsonl``, ``.json``).

    Raises:
        InputError: unknown suffix, unreadable file, or rows that are not objects.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix in (".jsonl", ".json"):
            return pa_json.read_json(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    raise InputError(f"{path}: expected a .parquet or .jsonl file of (query, document) pairs")


def pair_columns(table: pa.Table) -> tuple[str, str]:
    """Names of the query and document columns (``document``, else ``text``, else ``passage``).

    Raises:
        InputError: a column is missing, not text, null or (the query) blank, or an input
            column would be overwritten by an output column.
    """
    names = table.column_names
    if "query" not in names:
        raise InputError(f"the input has no 'query' column (columns: {', '.join(names)})")
    doc = next((c for c in DOCUMENT_COLUMNS if c in names), None)
    if doc is None:
        raise InputError(
            "the input has no document column: expected one of " + ", ".join(DOCUMENT_COLUMNS)
        )
    clash = [c for c in OUTPUT_COLUMNS if c in names]
    if clash:
        raise InputError(f"input columns {clash} would be overwritten by the output's")
    for name in ("query", doc):
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InputError(f"column '{name}' must hold text, not {column.type}")
        if column.null_count:
            first = pc.index(pc.is_null(column), True).as_py()
            raise InputError(f"row {first}: '{name}' is missing (null)")
    blank = pc.equal(pc.utf8_trim_whitespace(table.column("query")), "")
    if pc.any(blank).as_py():
        raise InputError(f"row {pc.index(blank, True).as_py()}: the query is empty")
    return "query", doc


def fingerprint(path: Path) -> str:
    """SHA-256 of the file: a resumed run must read exactly the same input."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Shard:
    """Rows ``[start, stop)`` of the input, written as one part file."""

    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.parquet"


def plan_shards(rows: int, shard_rows: int) -> list[Shard]:
    """Cut ``rows`` into consecutive shards of ``shard_rows`` (the last may be shorter)."""
    return [
        Shard(i, start, min(start + shard_rows, rows))
        for i, start in enumerate(range(0, rows, shard_rows))
    ]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a directory of parts belongs to; a resumed run must match it exactly."""

    input: str
    fingerprint: str
    rows: int
    shard_rows: int
    document_column: str
    model: dict[str, Any]

    def mismatch(self, other: Manifest) -> str | None:
        """The first field (other than the input's path) that differs, or None."""
        mine, theirs = asdict(self), asdict(other)
        for key in ("fingerprint", "rows", "shard_rows", "document_column", "model"):
            if mine[key] != theirs[key]:
                return key
        return None


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # The rename is the commit; make it durable too.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartStore:
    """The parts directory of one ``score-batch`` output.

    Args:
        output: a ``.parquet`` / ``.jsonl`` file to produce (parts go to ``OUTPUT.parts/``
            beside it), or a directory that keeps the parts as the result.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        self.merge_to: Path | None = output if output.suffix.lower() in FILE_SUFFIXES else None
        self.dir = output.with_name(output.name + ".parts") if self.merge_to else output

    def open(self, manifest: Manifest, *, resume: bool) -> set[int]:
        """Create or check the manifest; return the indexes of the shards already written.

        Raises:
            ConfigError: the directory holds parts of another job and ``resume`` is on, or the
                final output file already exists.
        """
        if self.merge_to is not None and self.merge_to.exists():
            raise ConfigError(f"{self.merge_to} already exists; delete it or choose another path")
        path = self.dir / MANIFEST
        if path.exists() and resume:
            found = Manifest(**json.loads(path.read_text()))
            differs = found.mismatch(manifest)
            if differs is not None:
                raise ConfigError(
                    f"{self.dir} holds parts of another job ({differs} differs); "
                    "delete it, choose another output, or run without resuming"
                )
            return self.done()
        if self.dir.exists() and not path.exists() and any(self.dir.iterdir()):
            raise ConfigError(f"{self.dir} exists and is not a score-batch output; not touching it")
        self.dir.mkdir(parents=True, exist_ok=True)
        for part in self.dir.glob("part-*.parquet"):  # not resuming: start over
            part.unlink()
        _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(asdict(manifest), indent=2)))
        return set()

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.dir.glob("part-*.parquet")}

    def write(self, shard: Shard, table: pa.Table) -> Path:
        """Write one finished shard; the part appears whole or not at all."""
        path = self.dir / shard.name
        _write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        return path

    def parts(self, shards: Iterable[Shard]) -> list[Path]:
        return [self.dir / s.name for s in shards]

    def merge(self, shards: list[Shard]) -> Path:
        """Concatenate every part, in row order, into the output file; returns its path."""
        assert self.merge_to is not None
        target = self.merge_to
        parts = self.parts(shards)
        if target.suffix.lower() == ".parquet":

            def write(tmp: Path) -> None:
                schema = pq.read_schema(parts[0])
                with pq.ParquetWriter(tmp, schema) as writer:
                    for part in parts:
                        writer.write_table(pq.read_table(part, schema=schema))

        else:

            def write(tmp: Path) -> None:
                with tmp.open("w", encoding="utf-8") as f:
                    for part in parts:
                        for row in pq.read_table(part).to_pylist():
                            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

        _write_atomic(target, write)
        return target
