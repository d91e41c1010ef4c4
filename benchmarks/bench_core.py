"""Library speed benchmark: rankgate against its peers, side by side, in one run.

A thin wrapper: the benchmark is ``rankgate bench`` (:mod:`rankgate.bench.core`), with the same
options. See benchmarks/README.md.

Usage:
    .venv/bin/python benchmarks/bench_core.py [--docs 10,50] [--repeats 2] [--short] [--tiny]
"""

from __future__ import annotations

import typer

from rankgate.cli.bench import bench

if __name__ == "__main__":
    typer.run(bench)
