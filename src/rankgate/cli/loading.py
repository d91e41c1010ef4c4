"""Building a Reranker from command-line options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rankgate.cli.common import quiet_libraries
from rankgate.engine import Reranker


def load_reranker(
    *,
    model: str | None,
    backend: str | None = None,
    onnx_file: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    max_length: int | None = None,
    long_documents: str | None = None,
    max_chunks: int | None = None,
    batch_tokens: int | None = None,
    threads: int | None = None,
    offline: bool | None = None,
    cache_dir: Path | None = None,
) -> Reranker:
    quiet_libraries()
    options: dict[str, Any] = dict(
        backend=backend,
        onnx_file=onnx_file,
        device=device,
        dtype=dtype,
        max_length=max_length,
        long_documents=long_documents,
        max_chunks=max_chunks,
        batch_tokens=batch_tokens,
        threads=threads,
        offline=offline,
        cache_dir=cache_dir,
    )
    return Reranker(model, **options)
