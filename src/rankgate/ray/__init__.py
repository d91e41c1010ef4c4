"""Scale out on Ray: a Ray Serve deployment of the server, and resumable batch scoring.

Needs the ``ray`` extra (``pip install 'rankgate[ray]'``). Settings import without Ray; the
rest imports it on first use, so ``import rankgate.ray`` is cheap and a missing Ray gives an
install hint instead of an ImportError.

Example:
    >>> from rankgate.ray import score_batch                        # doctest: +SKIP
    >>> score_batch(Path("pairs.parquet"), Path("scores.parquet"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rankgate.ray.settings import (
    BatchSettings,
    RaySettings,
    build_batch_settings,
    build_ray_settings,
)

if TYPE_CHECKING:
    from rankgate.ray.batch import BatchReport, score_batch
    from rankgate.ray.serving import app_builder, run, serve_app

__all__ = [
    "BatchReport",
    "BatchSettings",
    "RaySettings",
    "app_builder",
    "build_batch_settings",
    "build_ray_settings",
    "run",
    "score_batch",
    "serve_app",
]

_LAZY = {
    "BatchReport": "rankgate.ray.batch",
    "score_batch": "rankgate.ray.batch",
    "app_builder": "rankgate.ray.serving",
    "run": "rankgate.ray.serving",
    "serve_app": "rankgate.ray.serving",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankgate.ray' has no attribute '{name}'")
    if module == "rankgate.ray.serving":
        from rankgate.ray.runtime import require_ray

        require_ray("rankgate.ray.serve_app")  # a clear install hint before Serve's ImportError
    return getattr(importlib.import_module(module), name)
