"""Speed benchmarks of rankgate against its peers, side by side in one run (``rankgate bench``).

- :mod:`~rankgate.bench.models`: the random bge-reranker-v2-m3-architecture model (or a tiny
  one), built locally and cached, and its ONNX export;
- :mod:`~rankgate.bench.workload`: deterministic documents of a given token length;
- :mod:`~rankgate.bench.measure`: timing, the FLOP model, the matmul peak, score deviation;
- :mod:`~rankgate.bench.peers`: rankgate (torch, ONNX, int8), sentence-transformers
  ``CrossEncoder`` (torch, ONNX) and FlagEmbedding ``FlagReranker``;
- :mod:`~rankgate.bench.core`: the library benchmark; :mod:`~rankgate.bench.server`: the HTTP
  load benchmark against infinity-emb, driven by :mod:`~rankgate.bench.load`;
- :mod:`~rankgate.bench.settings`: the settings of ``rankgate bench`` and ``bench-server``
  (``RANKGATE_BENCH_*``), from which the commands' options are derived.

Random weights measure speed only. Nothing here is imported by the rest of rankgate, and the
heavy libraries (torch, transformers, sentence-transformers, httpx) are imported lazily.
"""

from __future__ import annotations

from rankgate.bench.core import PEERS, CoreOptions, run_core
from rankgate.bench.load import LoadResult, run_load
from rankgate.bench.server import ServerOptions, run_server_bench

__all__ = [
    "PEERS",
    "CoreOptions",
    "LoadResult",
    "ServerOptions",
    "run_core",
    "run_load",
    "run_server_bench",
]
