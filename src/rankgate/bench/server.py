"""The server benchmark: ``rankgate serve`` against infinity-emb, same model, same load.

Each server runs as a subprocess on 127.0.0.1 (one at a time, so they never share the cores),
serving the same local model directory offline with the same CPU threads. The load generator
(:mod:`rankgate.bench.load`) drives each at 1, 8 and 32 concurrent clients; every request is
``POST /rerank`` with ``{"query", "documents"}`` (1 query × N documents), a body both servers
speak. The library's own pairs/s on the same requests is measured first, in this process, for
the "server keeps ≥ 90% of the library" ratio.

With ``repeat_share`` above 0 the requests repeat earlier ones at that rate
(:class:`~rankgate.bench.workload.RepeatedRequests`), and rankgate runs twice, with its score
cache off and on (``--cache-size``): requests/s, p99 and the cache's hit rate side by side.
"""

from __future__ import annotations

import functools
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rankgate.bench.load import LoadResult, run_load
from rankgate.bench.measure import machine, timed
from rankgate.bench.measure import versions as package_versions
from rankgate.bench.models import default_model_dir, ensure_model, repo_root
from rankgate.bench.workload import (
    DEFAULT_SPREAD,
    QUERY,
    RepeatedRequests,
    check_spread,
    make_documents,
    token_counter,
)

__all__ = ["CACHED", "SERVERS", "ServerOptions", "run_server_bench"]

SERVERS = ("rankgate", "infinity")
CACHED = "rankgate+cache"
"""rankgate with its score cache on: run next to rankgate when requests repeat."""
POOL_DOCS = 64
"""Distinct documents the requests rotate through (so no cache could answer a repeat)."""


@dataclass(frozen=True)
class ServerOptions:
    """Options of :func:`run_server_bench` (and ``rankgate bench-server``)."""

    model_dir: Path | None = None
    tiny: bool = False
    docs: int = 8
    """Documents per request."""
    short: bool = False
    spread: float = DEFAULT_SPREAD
    """Document lengths within target × (1 ± spread), as in :class:`.core.CoreOptions`."""
    clients: tuple[int, ...] = (1, 8, 32)
    duration_s: float = 60.0
    """Seconds of load per concurrency level (requests in flight then are still waited for)."""
    max_requests: int | None = None
    """Most requests per level (None: only the duration bounds it)."""
    threads: int = 2
    servers: tuple[str, ...] = SERVERS
    infinity_bin: Path = field(
        default_factory=lambda: repo_root() / ".venv-infinity/bin/infinity_emb"
    )
    library_repeats: int = 3
    startup_timeout_s: float = 600.0
    request_timeout_s: float = 600.0
    repeat_share: float = 0.0
    """Share of requests that repeat an earlier one; above 0, rankgate also runs cached."""
    cache_size: str = "256MiB"
    """``--cache-size`` of the cached rankgate."""
    out: Path | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.servers if s not in SERVERS]
        if unknown:
            raise ValueError(
                f"unknown server(s) {', '.join(unknown)}; choose from rankgate, infinity"
            )
        if self.docs < 1 or not self.clients or min(self.clients) < 1 or self.duration_s <= 0:
            raise ValueError("docs, clients and duration must be positive")
        check_spread(self.spread)
        if not 0 <= self.repeat_share < 1:
            raise ValueError(f"the repeat share must be in [0, 1), not {self.repeat_share}")
        from rankgate.server.settings import parse_size

        if parse_size(self.cache_size) <= 0:
            raise ValueError("the cache size must be positive")

    @property
    def runs(self) -> tuple[str, ...]:
        """The servers to run, in order: rankgate's cached run right after rankgate's."""
        if self.repeat_share <= 0:
            return self.servers
        pairs = ((name, CACHED) if name == "rankgate" else (name,) for name in self.servers)
        return tuple(name for pair in pairs for name in pair)


@dataclass
class ServerRun:
    """One server's results by concurrency, or why it did not run."""

    name: str
    levels: dict[int, LoadResult] = field(default_factory=dict)
    hit_rates: dict[int, float] = field(default_factory=dict)
    startup_s: float | None = None
    skipped: str | None = None
    command: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(name: str, model_dir: Path, port: int, options: ServerOptions) -> list[str]:
    if name in ("rankgate", CACHED):
        cache = ["--cache-size", options.cache_size] if name == CACHED else []
        return [
            sys.executable, "-m", "rankgate", "serve",
            "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", "--threads", str(options.threads), "--offline",
            "--log-level", "warning", "--request-timeout-s", str(options.request_timeout_s),
            *cache,
        ]  # fmt: skip
    # infinity's defaults, on CPU with its torch engine; the disk cache is off (its default)
    # and stays off, since repeated requests must not be answered from a cache. Its start-up
    # warm-up (batches of 32 pairs of ~1,000 tokens) takes many minutes on a CPU and is not
    # measured anyway; both servers get the same untimed warm-up requests instead.
    return [
        str(options.infinity_bin), "v2",
        "--model-id", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        "--device", "cpu", "--engine", "torch", "--no-vector-disk-cache", "--no-model-warmup",
        "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def _running(command: list[str], threads: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (output to ``log``) and stop it, by its own pid, when done."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": str(threads),  # infinity's torch takes its thread count from here
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log: Path) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited with code {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/health", timeout=5, trust_env=False).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")


def _library_pairs_per_s(
    model_dir: Path, bodies: list[dict[str, Any]], options: ServerOptions
) -> float:
    """rankgate's library on the same requests: pairs / median seconds per request."""
    from rankgate import Reranker

    rr = Reranker(str(model_dir), device="cpu", threads=options.threads)
    calls = iter(bodies * (options.library_repeats + 1))

    def call() -> None:
        body = next(calls)
        rr.rerank(body["query"], body["documents"])

    seconds, _ = timed(call, options.library_repeats)
    return options.docs / float(np.median(seconds))


def run_server_bench(options: ServerOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the library baseline, then each server under each load level; print and return it.

    Raises:
        ValueError: bad options.
    """
    import torch

    console = console or Console(width=max(Console().width, 120))
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    model = ensure_model(options.model_dir or default_model_dir(options.tiny), tiny=options.tiny)
    target = 60 if options.short else 280
    pool = make_documents(POOL_DOCS, target, token_counter(model.path), spread=options.spread)
    k = options.docs
    bodies = [
        {"query": QUERY, "documents": [pool[(i * k + j) % POOL_DOCS] for j in range(k)]}
        for i in range(POOL_DOCS)
    ]
    repeated = RepeatedRequests(QUERY, tuple(pool), k, options.repeat_share)

    def body(level: int, i: int) -> dict[str, Any]:
        if options.repeat_share > 0:
            return repeated.body(level, i)
        return bodies[i % len(bodies)]

    host = machine()
    console.print(
        f"[bold]machine[/]: {host['cpu']}; {host['usable_cores']} usable cores; threads "
        f"{options.threads} per server; load average {host['loadavg'][0]:.2f}\n"
        f"[bold]model[/]: {model.path}; [bold]requests[/]: 1 query × {k} documents of "
        f"~{target} tokens (±{options.spread:.0%}); {options.duration_s:.0f} s per level "
        "(then in-flight requests finish)"
        + (
            f"; {options.repeat_share:.0%} of requests repeat an earlier one"
            if options.repeat_share > 0
            else ""
        ),
        highlight=False,
    )
    library = _library_pairs_per_s(model.path, bodies, options)
    gc.collect()  # the library's copy of the model goes before a server loads its own
    console.print(
        f"[bold]library[/] (rankgate Reranker.rerank, same requests): {library:.2f} pairs/s"
    )

    runs = []
    for name in options.runs:
        run = ServerRun(name)
        runs.append(run)
        if name == "infinity" and not options.infinity_bin.exists():
            run.skipped = f"no {options.infinity_bin} (build it with scripts/setup-infinity-env.sh)"
            console.print(f"[yellow]infinity skipped: {run.skipped}[/]")
            continue
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        run.command = _command(name, model.path, port, options)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / f"{name}.log"
            with _running(run.command, options.threads, log) as proc:
                try:
                    run.startup_s = _wait_ready(proc, url, options.startup_timeout_s, log)
                except RuntimeError as exc:
                    run.skipped = f"did not start: {exc}"
                    console.print(Text(f"{name} {run.skipped}", style="red"))
                    continue
                _drive(run, url, body, options, console)
    report = {
        "machine": host,
        "versions": package_versions(("rankgate", "torch", "transformers", "httpx")),
        "model_dir": str(model.path),
        "docs_per_request": k,
        "doc_tokens_target": target,
        "duration_s": options.duration_s,
        "threads": options.threads,
        "library_pairs_per_s": library,
        "repeat_share": options.repeat_share,
        "servers": {
            r.name: {
                "command": r.command,
                "startup_s": r.startup_s,
                "skipped": r.skipped,
                "levels": [
                    {**lv.summary(), **({"hit_rate": r.hit_rates[c]} if c in r.hit_rates else {})}
                    for c, lv in r.levels.items()
                ],
            }
            for r in runs
        },
    }
    console.print()
    console.print(_table(runs, library))
    if options.repeat_share > 0:
        console.print(_cache_table(runs, options.repeat_share))
    _print_summary(console, runs, library, options)
    report["runtime_s"] = time.perf_counter() - started
    if options.out:
        import json

        options.out.write_text(json.dumps(report, indent=2))
        console.print(Text(f"wrote {options.out}"))
    return report


def _drive(
    run: ServerRun,
    url: str,
    body: Callable[[int, int], dict[str, Any]],
    options: ServerOptions,
    console: Console,
) -> None:
    """Warm the server up (untimed), then run every concurrency level against it; level ``n``
    sends ``body(n, i)``. A cached rankgate also reports its hit rate per level."""
    levels = [(1, 2), *((c, options.max_requests) for c in options.clients)]
    for step, (clients, limit) in enumerate(levels):
        before = _cache_counts(url) if run.name == CACHED else None
        result = run_load(
            f"{url}/rerank",
            functools.partial(body, step),
            clients=clients,
            pairs_per_request=options.docs,
            duration_s=options.duration_s,
            max_requests=limit,
            timeout_s=options.request_timeout_s,
        )
        if step == 0:
            continue  # the warm-up: 2 requests, not reported
        run.levels[clients] = result
        if before is not None:
            hits, misses = (a - b for a, b in zip(_cache_counts(url), before, strict=True))
            run.hit_rates[clients] = hits / (hits + misses) if hits + misses else 0.0
        console.print(
            f"  {run.name} × {clients} clients: {result.requests} requests "
            f"({result.errors} errors) in {result.elapsed_s:.1f} s",
            highlight=False,
        )


def _cache_counts(url: str) -> tuple[float, float]:
    """The score cache's hits and misses so far, from the server's /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=30, trust_env=False).text
    counts = {"rankgate_cache_hits_total": 0.0, "rankgate_cache_misses_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in counts:
                counts[sample.name] += sample.value
    return counts["rankgate_cache_hits_total"], counts["rankgate_cache_misses_total"]


def _table(runs: list[ServerRun], library: float) -> Table:
    by_name = {r.name: r for r in runs}
    infinity = by_name.get("infinity")
    table = Table(title="HTTP load: POST /rerank, 1 query × N documents per request")
    table.add_column("server")
    for col in ("clients", "requests", "errors", "req/s", "pairs/s", "p50 s", "p99 s"):
        table.add_column(col, justify="right")
    table.add_column("×infinity req/s", justify="right")
    table.add_column("% of library", justify="right")
    for run in runs:
        for clients, lv in run.levels.items():
            other = infinity.levels.get(clients) if infinity else None
            vs = (
                lv.requests_per_s / other.requests_per_s if other and other.requests_per_s else None
            )
            table.add_row(
                run.name,
                str(clients),
                str(lv.requests),
                str(lv.errors),
                f"{lv.requests_per_s:.3f}",
                f"{lv.pairs_per_s:.2f}",
                f"{lv.percentile_s(50):.3f}",
                f"{lv.percentile_s(99):.3f}",
                f"{vs:.2f}×" if vs is not None else "n/a",
                f"{lv.pairs_per_s / library:.0%}",
            )
    return table


def _cache_table(runs: list[ServerRun], share: float) -> Table:
    by_name = {r.name: r for r in runs}
    off, on = by_name.get("rankgate"), by_name.get(CACHED)
    table = Table(title=f"Score cache off and on: {share:.0%} of requests repeat an earlier one")
    for col in ("clients", "off req/s", "on req/s", "on/off", "off p99 s", "on p99 s", "hit rate"):
        table.add_column(col, justify="right")
    for clients, lv in (on.levels if on else {}).items():
        base = off.levels.get(clients) if off else None
        ratio = lv.requests_per_s / base.requests_per_s if base and base.requests_per_s else None
        table.add_row(
            str(clients),
            f"{base.requests_per_s:.3f}" if base else "n/a",
            f"{lv.requests_per_s:.3f}",
            f"{ratio:.2f}×" if ratio is not None else "n/a",
            f"{base.percentile_s(99):.3f}" if base else "n/a",
            f"{lv.percentile_s(99):.3f}",
            f"{on.hit_rates.get(clients, 0.0):.0%}" if on else "n/a",
        )
    return table


def _print_summary(
    console: Console, runs: list[ServerRun], library: float, options: ServerOptions
) -> None:
    by_name = {r.name: r for r in runs}
    rg, inf = by_name.get("rankgate"), by_name.get("infinity")
    level = 8 if 8 in options.clients else max(options.clients)
    ours = rg.levels.get(level) if rg else None
    theirs = inf.levels.get(level) if inf else None
    if ours:
        console.print(
            f"\nat {level} clients: rankgate serves {ours.pairs_per_s / library:.0%} of the "
            f"library's pairs/s ({ours.pairs_per_s:.2f} of {library:.2f})",
            highlight=False,
        )
    if ours and theirs and theirs.requests_per_s:
        console.print(
            f"at {level} clients: rankgate {ours.requests_per_s / theirs.requests_per_s:.2f}× "
            f"infinity's requests/s; p99 {ours.percentile_s(99):.3f} s vs "
            f"{theirs.percentile_s(99):.3f} s",
            highlight=False,
        )
    cached = by_name.get(CACHED)
    on = cached.levels.get(level) if cached else None
    if on and ours and ours.requests_per_s and cached:
        console.print(
            f"at {level} clients, {options.repeat_share:.0%} of requests repeated: the score "
            f"cache gives {on.requests_per_s / ours.requests_per_s:.2f}× the requests/s; p99 "
            f"{on.percentile_s(99):.3f} s vs {ours.percentile_s(99):.3f} s; "
            f"{cached.hit_rates.get(level, 0.0):.0%} of documents from the cache",
            highlight=False,
        )
    for run in runs:
        if run.startup_s is not None:
            console.print(f"{run.name}: ready in {run.startup_s:.0f} s; {' '.join(run.command)}")
    console.print(
        "req/s and pairs/s = answered requests (pairs) / time from the first request to the "
        "last answer; p50/p99 = latency percentiles of answered requests (with few requests "
        "p99 is close to the slowest one); % of library = server pairs/s over the library's "
        "pairs/s on the same requests in this process; hit rate = documents answered from the "
        "score cache over documents looked up; random weights: speed only.",
        highlight=False,
    )
