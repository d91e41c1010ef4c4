"""A Ray cluster of two test hosts: a head and a worker, each in its own network namespace.

These tests run only inside ``scripts/run-two-hosts.sh`` (which sets RANKGATE_WORKER_NETNS);
the outer suite, tests/ray/test_in_netns.py, starts them there. Collected anywhere else they are
ignored, so a plain ``pytest`` never starts Ray on the host's network.

The pytest process is on the head host and is the driver. Each host runs ``ray start`` with one
CPU, so a deployment of two one-CPU replicas (or a pool of two one-CPU actors) has to use both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rankgate import Reranker, RerankResult

collect_ignore_glob = [] if os.environ.get("RANKGATE_WORKER_NETNS") else ["test_*.py"]

ROOT = Path(__file__).resolve().parents[3]
GCS_PORT = 6380
# A killed host is declared dead after about 3 s instead of Ray's 15 s.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def pytest_configure(config: pytest.Config) -> None:
    """Token authentication, as a cluster reachable over a network should have.

    The token is this cluster's own: left alone, each host would decide from the user's
    ~/.ray/auth_token. Set before anything imports Ray, which reads the mode once per process;
    ``ray start`` on both hosts inherits it.
    """
    if not os.environ.get("RANKGATE_WORKER_NETNS"):
        return
    token_dir = Path(tempfile.mkdtemp(prefix="rg2h-token-"))
    (token_dir / "auth_token").write_text(secrets.token_hex(32))
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_dir / "auth_token"))
    config.add_cleanup(lambda: shutil.rmtree(token_dir, ignore_errors=True))


def interfaces(netns: str | None = None) -> list[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    listed = subprocess.run([*prefix, "ls", "/sys/class/net"], capture_output=True, text=True)
    return sorted(listed.stdout.split())


def routes(netns: str | None = None) -> str:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return subprocess.run([*prefix, "route", "show"], capture_output=True, text=True).stdout


def netns_pids(netns: str) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in listed.stdout.split()]


def kill_all(netns: str, keep: int | None = None) -> None:
    for pid in netns_pids(netns):
        if pid != keep:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Cluster:
    """The two hosts and the Ray cluster on them."""

    head_ip: str
    worker_ip: str
    worker_netns: str
    temp_dir: Path

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{GCS_PORT}"

    def ray_start(self, *args: str, netns: str | None = None, name: str) -> None:
        env = {
            **os.environ,
            **FAST_HEALTH_CHECKS,
            # Ray's workers on both hosts must import this checkout (and tests' helpers).
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        ray = str(Path(sys.executable).with_name("ray"))
        prefix = ["ip", "netns", "exec", netns] if netns else []
        temp = self.temp_dir / name  # per host, as two real hosts would have
        command = [*prefix, ray, "start", *args, "--num-cpus", "1"]
        command += ["--object-store-memory", str(100 * 1024**2), "--temp-dir", str(temp)]
        command += ["--disable-usage-stats"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ray start on {name} failed:\n{done.stdout}{done.stderr}"

    def start_worker(self) -> None:
        """Join the worker host to the head's cluster."""
        self.ray_start(
            "--address", self.address, "--node-ip-address", self.worker_ip,
            netns=self.worker_netns, name="worker",
        )  # fmt: skip

    def kill_worker(self) -> None:
        """Every process of the worker host dies at once, as when a machine is lost."""
        kill_all(self.worker_netns)

    def alive_nodes(self) -> dict[str, str]:
        """Alive nodes as {node id: IP}."""
        import ray

        return {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}

    def wait_for(self, want: Callable[[dict[str, str]], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not want(self.alive_nodes()):
            assert time.monotonic() < deadline, f"{what}: nodes {self.alive_nodes()}"
            time.sleep(0.5)

    def node_of(self, ip: str) -> str:
        return next(node for node, addr in self.alive_nodes().items() if addr == ip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Ray on both hosts, this process its driver; every Ray process is killed at the end."""
    worker_netns = os.environ["RANKGATE_WORKER_NETNS"]
    head_ip, worker_ip = os.environ["RANKGATE_HEAD_IP"], os.environ["RANKGATE_WORKER_IP"]
    # Each host has loopback and its end of the veth pair, and no route off the pair's subnet.
    for netns in (None, worker_netns):
        assert interfaces(netns) == ["lo", "rg0"], f"unexpected interfaces on {netns or 'head'}"
        assert "default" not in routes(netns), routes(netns)
    assert os.environ.get("RAY_USAGE_STATS_ENABLED") == "0"
    import ray

    # Short: Ray's socket paths under it must stay within the 107 bytes of a Unix socket.
    temp_dir = Path(tempfile.mkdtemp(prefix="rg2h-", dir="/tmp"))
    hosts = Cluster(head_ip, worker_ip, worker_netns, temp_dir)
    try:
        hosts.ray_start(
            "--head", "--node-ip-address", head_ip, "--port", str(GCS_PORT),
            "--include-dashboard", "false", name="head",
        )  # fmt: skip
        hosts.start_worker()
        ray.init(address=hosts.address, log_to_driver=False)
        hosts.wait_for(lambda n: sorted(n.values()) == [head_ip, worker_ip], "two hosts", 60)
        yield hosts
    finally:
        ray.shutdown()
        kill_all(worker_netns)
        kill_all(os.environ["RANKGATE_NETNS"], keep=os.getpid())
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_library(tiny_model: Path) -> Reranker:
    """The library on the tiny model: the reference every Ray result must equal."""
    return Reranker(str(tiny_model), device="cpu", max_length=128, threads=1)


class NodeRecorder:
    """A picklable engine factory that notes, in a shared directory, where its engine works.

    Both test hosts share the filesystem, so the driver reads what replicas and actors on either
    host wrote: one file per process, named by its Ray node id, with a line per scoring call.
    """

    def __init__(self, model: Path, marks: Path) -> None:
        self.model = model
        self.marks = marks

    def __call__(self) -> Reranker:
        import ray

        path = self.marks / f"{ray.get_runtime_context().get_node_id()}.{os.getpid()}"
        path.write_text("")  # the engine exists on this node
        return _RecordingReranker(path, str(self.model), device="cpu", max_length=128, threads=1)

    def rows_by_node(self) -> dict[str, int]:
        """Rows (pairs, or a request's documents) scored per node id; 0: built, never used."""
        rows: dict[str, int] = {}
        for path in self.marks.iterdir():
            node = path.name.split(".")[0]
            rows[node] = rows.get(node, 0) + sum(int(n) for n in path.read_text().split())
        return rows


class _RecordingReranker(Reranker):
    """The library's engine, noting in ``marks`` the rows it scores.

    ``compute_score`` is what a score-batch actor calls; ``ranked`` ends every rerank request
    of the server.
    """

    def __init__(self, marks: Path, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self._marks = marks

    def compute_score(self, pairs: Sequence[Sequence[str]], **options: Any) -> list[float]:
        scores = super().compute_score(pairs, **options)
        self._note(len(pairs))
        return scores

    def ranked(self, documents: Sequence[Any], *args: Any, **options: Any) -> list[RerankResult]:
        results = super().ranked(documents, *args, **options)
        self._note(len(documents))
        return results

    def _note(self, rows: int) -> None:
        with self._marks.open("a") as f:
            f.write(f"{rows}\n")
