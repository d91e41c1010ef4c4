"""Server load benchmark: ``rankgate serve`` against infinity-emb on the same model and load.

A thin wrapper: the benchmark is ``rankgate bench-server`` (:mod:`rankgate.bench.server`), with
the same options. See benchmarks/README.md.

Usage:
    .venv/bin/python benchmarks/bench_server.py [--docs 8] [--clients 1,8,32] [--duration 60]
"""

from __future__ import annotations

import typer

from rankgate.cli.bench import bench_server

if __name__ == "__main__":
    typer.run(bench_server)
