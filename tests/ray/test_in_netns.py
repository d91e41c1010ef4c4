"""Runs the Ray suites in network namespaces that the tests make themselves.

Ray probes outside addresses when it starts, and no test may send traffic beyond loopback, so
the suites of tests/ray/netns/ run as one pytest inside ``scripts/run-in-netns.sh`` (only
loopback), sharing one local Ray and one Serve proxy (each module deletes its Serve application
when it ends), and tests/ray/multihost/ inside ``scripts/run-two-hosts.sh``
(two namespaces joined by a veth pair, no route off it) with a Ray cluster across both.
Without root, ``ip`` or Ray the tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
INNER_TIMEOUT_S = 600


def require_netns() -> None:
    missing = None
    if os.geteuid() != 0:
        missing = "network namespaces need root"
    elif shutil.which("ip") is None:
        missing = "the 'ip' command (iproute2) is missing"
    elif importlib.util.find_spec("ray") is None:
        missing = "Ray is not installed: pip install -e '.[ray]'"
    if missing is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(missing)
    pytest.skip(missing)


def run_inside(script: str, tests: str) -> None:
    """Run ``tests`` as their own pytest inside ``script``; fail with the output's tail."""
    require_netns()
    inner = subprocess.Popen(
        [
            str(SCRIPTS / script),
            sys.executable,
            "-m",
            "pytest",
            tests,
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=-ra --strict-markers",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = inner.communicate(timeout=INNER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        inner.terminate()  # not SIGKILL: the script must end what it started in the namespaces
        stdout, stderr = inner.communicate(timeout=60)
        pytest.fail(f"{tests} ran past {INNER_TIMEOUT_S} s:\n{(stdout + stderr)[-6000:]}")
    tail = (stdout + stderr)[-6000:]
    assert inner.returncode == 0, tail
    assert " passed" in stdout, tail
    if "skipped" in stdout:  # e.g. no .venv-clients: as the plain server's tests do
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"inner tests were skipped under CI:\n{tail}")
        pytest.skip(f"some inner tests were skipped:\n{tail[-1500:]}")


@pytest.mark.slow
def test_ray_suites_in_loopback_only_namespace() -> None:
    """Every suite of the folder in one pytest: Ray and Serve start once, not once per suite."""
    run_inside("run-in-netns.sh", "tests/ray/netns")


@pytest.mark.slow
def test_ray_cluster_across_two_namespaced_hosts() -> None:
    run_inside("run-two-hosts.sh", "tests/ray/multihost")
