"""Decoder (LLM) rerankers side by side in one run: rankgate against its peers on one model.

A thin wrapper: the benchmark is ``rankgate bench --llm`` (:mod:`rankgate.bench.llm`), with the
same options. See benchmarks/README.md.

Usage:
    .venv/bin/python benchmarks/bench_llm.py [--docs 10,50] [--repeats 2] [--tiny]
"""

from __future__ import annotations

import sys

import typer

from rankgate.cli.bench import bench

if __name__ == "__main__":
    sys.argv.insert(1, "--llm")
    typer.run(bench)
