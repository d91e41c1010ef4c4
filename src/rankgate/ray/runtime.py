"""Importing and joining Ray: one place for the install hint and the ``ray.init`` options."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from rankgate.errors import MissingDependencyError

__all__ = ["cluster_gpus", "connect", "require_ray"]

log = logging.getLogger(__name__)


def require_ray(purpose: str) -> ModuleType:
    """Import ``ray``, or explain which extra installs it.

    Raises:
        MissingDependencyError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", purpose) from None
    return ray


def connect(address: str | None, purpose: str, **local: Any) -> bool:
    """Join the cluster at ``address``, or start a local Ray when it is None.

    ``local`` holds ``ray.init`` options used only for a local start (``num_cpus``,
    ``object_store_memory``): a running cluster was sized by whoever started it.

    Returns:
        True when this call started or joined Ray; False when Ray was already initialized here.
    """
    ray = require_ray(purpose)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address is None:
        options.update(local)
    else:
        options["address"] = address
    ray.init(**options)
    log.info("Ray resources: %s", ray.cluster_resources())
    return True


def cluster_gpus() -> float:
    """GPUs in the cluster this process is connected to (0 when Ray is not initialized)."""
    ray = require_ray("counting GPUs")
    if not ray.is_initialized():
        return 0.0
    return float(ray.cluster_resources().get("GPU", 0.0))
