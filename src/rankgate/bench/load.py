"""A closed-loop HTTP load generator for rerank servers on this machine (loopback only).

``clients`` concurrent clients each send one request, wait for its answer, and send the next,
until ``duration_s`` has passed or ``max_requests`` were sent; requests in flight at that moment
are waited for (up to the request timeout) and counted, and the elapsed time runs until the last
one finished, so every server is charged for all the work it accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

__all__ = ["LoadResult", "check_loopback", "run_load"]


def check_loopback(url: str) -> None:
    """Refuse any target but this machine: the load generator is for local servers only.

    Raises:
        ValueError: ``url``'s host is not ``localhost`` or a loopback address.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"load is only sent to this machine (127.0.0.1, ::1); not to {host!r}")


@dataclass(frozen=True)
class LoadResult:
    """What one load level measured."""

    clients: int
    requests: int
    """Requests answered with HTTP 200."""
    errors: int
    """Requests that failed (non-200 status or transport error)."""
    pairs_per_request: int
    elapsed_s: float
    latencies_s: list[float] = field(repr=False)
    """Latency of each successful request, in completion order."""
    error_samples: list[str] = field(default_factory=list, repr=False)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def pairs_per_s(self) -> float:
        return self.requests_per_s * self.pairs_per_request

    def percentile_s(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in seconds; NaN without a successful request."""
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else float("nan")

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "pairs_per_request": self.pairs_per_request,
            "elapsed_s": self.elapsed_s,
            "requests_per_s": self.requests_per_s,
            "pairs_per_s": self.pairs_per_s,
            "p50_s": self.percentile_s(50),
            "p99_s": self.percentile_s(99),
            "error_samples": self.error_samples[:3],
        }


async def _load(
    url: str,
    body: Callable[[int], dict[str, Any]],
    clients: int,
    duration_s: float,
    max_requests: int | None,
    timeout_s: float,
) -> tuple[list[float], list[str], float]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits, trust_env=False) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def one_client() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
                payload = body(sent)
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, json=payload)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one_client() for _ in range(clients)))
        return latencies, errors, time.perf_counter() - started


def run_load(
    url: str,
    body: Callable[[int], dict[str, Any]],
    *,
    clients: int,
    pairs_per_request: int,
    duration_s: float,
    max_requests: int | None = None,
    timeout_s: float = 300.0,
) -> LoadResult:
    """Send ``body(i)`` (the i-th request's JSON) to ``url`` from ``clients`` concurrent clients.

    Bounded by ``duration_s`` and ``max_requests``; each request by ``timeout_s``.

    Raises:
        ValueError: ``url`` is not on this machine, or a bound is not positive.

    Example:
        >>> r = run_load("http://127.0.0.1:8080/rerank",  # doctest: +SKIP
        ...     lambda i: {"query": "q", "documents": ["a", "b"]},
        ...     clients=8, pairs_per_request=2, duration_s=10)
        >>> r.requests_per_s, r.percentile_s(99)  # doctest: +SKIP
    """
    check_loopback(url)
    if clients < 1 or duration_s <= 0 or (max_requests is not None and max_requests < 1):
        raise ValueError("clients, duration_s and max_requests must be positive")
    latencies, errors, elapsed = asyncio.run(
        _load(url, body, clients, duration_s, max_requests, timeout_s)
    )
    return LoadResult(
        clients, len(latencies), len(errors), pairs_per_request, elapsed, latencies, errors
    )
