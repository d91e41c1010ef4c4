"""One local Ray cluster and one Serve proxy for all the suites, inside the loopback-only namespace.

These tests run only inside ``scripts/run-in-netns.sh`` (which sets RANKGATE_NETNS); the outer
suite, tests/ray/test_in_netns.py, starts them there. Collected anywhere else they are ignored,
so a plain ``pytest`` never starts Ray on the host's network.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rankgate import Reranker

collect_ignore_glob = [] if os.environ.get("RANKGATE_NETNS") else ["test_*.py"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray (small object store, no dashboard); yields its GCS address."""
    interfaces = sorted(os.listdir("/sys/class/net"))
    assert interfaces == ["lo"], f"not in a loopback-only namespace: {interfaces}"
    assert os.environ.get("RAY_USAGE_STATS_ENABLED") == "0"
    import ray

    # Logical CPUs: replicas and actors reserve them; the two real cores are shared anyway.
    ray.init(
        num_cpus=4,
        object_store_memory=200 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_library(tiny_model: Path) -> Reranker:
    """The library on the tiny model: the reference every Ray result must equal."""
    return Reranker(str(tiny_model), device="cpu", max_length=128, threads=1)


def tiny_settings(tiny_model: Path) -> dict[str, Any]:
    return {"model": str(tiny_model), "device": "cpu", "max_length": 128}


@dataclass
class ServeURL:
    """Where a Serve application answers (what the server tests' LiveServer offers)."""

    url: str


@pytest.fixture(scope="session")
def serve_port(ray_cluster: str) -> Iterator[int]:
    """Serve's HTTP proxy on a free loopback port."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


def deploy(port: int, app: object, name: str) -> ServeURL:
    """Run ``app`` at the root of the proxy; waits until its replicas are up."""
    from ray import serve

    serve.run(app, name=name, route_prefix="/")  # type: ignore[arg-type]
    return ServeURL(f"http://127.0.0.1:{port}")
