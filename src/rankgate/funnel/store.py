"""Crash-safe index directories: every build writes a new generation, then swaps a pointer.

Layout::

    INDEX/CURRENT        name of the live generation (replaced atomically with os.replace)
    INDEX/gen-00000007/  a complete, never modified generation

A build killed at any point leaves the previous generation live and readable; its half-written
generation is never pointed at and is removed by the next build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rankgate.funnel.errors import IndexMissingError

__all__ = ["commit_generation", "live_generation", "new_generation"]

_POINTER = "CURRENT"
_PREFIX = "gen-"


def live_generation(root: Path) -> Path:
    """The directory of the live generation.

    Raises:
        IndexMissingError: no index was ever committed at ``root``.
    """
    pointer = Path(root) / _POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissingError(
            f"no index at {root}; build one with `rankgate index DOCS --index-dir {root}`"
        ) from None
    gen = Path(root) / name
    if not gen.is_dir():
        raise IndexMissingError(f"index at {root} points at a missing generation {name!r}")
    return gen


def new_generation(root: Path) -> Path:
    """Create an empty directory for the next generation (after sweeping abandoned ones)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        live = live_generation(root).name
    except IndexMissingError:
        live = None
    numbers = [int(p.name[len(_PREFIX) :]) for p in root.glob(f"{_PREFIX}*") if p.is_dir()]
    for stale in root.glob(f"{_PREFIX}*"):
        if stale.name != live:
            shutil.rmtree(stale, ignore_errors=True)
    gen = root / f"{_PREFIX}{max(numbers, default=0) + 1:08d}"
    gen.mkdir()
    return gen


def commit_generation(root: Path, gen: Path) -> None:
    """Make ``gen`` the live generation, durably, then drop the old one."""
    root = Path(root)
    for path in gen.rglob("*"):
        if path.is_file():
            _fsync(path)
    try:
        old: Path | None = live_generation(root)
    except IndexMissingError:
        old = None
    tmp = root / f"{_POINTER}.tmp"
    with tmp.open("w", encoding="utf-8") as stream:
        stream.write(gen.name)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, root / _POINTER)
    _fsync_dir(root)
    if old is not None and old != gen:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable on POSIX; Windows cannot open directories.
    if os.name == "posix":
        _fsync(path)
