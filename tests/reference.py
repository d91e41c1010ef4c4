"""The reference environment (.venv-flag: FlagEmbedding, mxbai-rerank, transformers 4), as one
long-lived worker process for the whole test session (scripts/reference_worker.py).

Locally the reference tests are skipped when the environment is absent; under CI (CI=true) its
absence is a failure, so parity is never silently lost.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAG_PYTHON = ROOT / ".venv-flag" / "bin" / "python"

_worker: subprocess.Popen[str] | None = None


def _stop() -> None:
    if _worker is not None and _worker.poll() is None:
        assert _worker.stdin is not None
        _worker.stdin.close()
        try:
            _worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _worker.kill()


def _running() -> subprocess.Popen[str]:
    global _worker
    if not FLAG_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("the reference environment is missing; run scripts/setup-flag-env.sh")
        pytest.skip("no .venv-flag (scripts/setup-flag-env.sh builds it)")
    if _worker is None or _worker.poll() is not None:
        _worker = subprocess.Popen(
            [str(FLAG_PYTHON), str(ROOT / "scripts" / "reference_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        atexit.register(_stop)
    return _worker


def run_reference(script: str, request: dict[str, Any], *argv: str) -> dict[str, Any]:
    """Run ``scripts/<script>`` on ``request`` in the reference worker; its JSON reply."""
    worker = _running()
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(json.dumps({"script": script, "argv": list(argv), "request": request}))
    worker.stdin.write("\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    assert line, "the reference worker died (run scripts/reference_worker.py by hand to see why)"
    reply = json.loads(line)
    assert reply["rc"] == 0 and reply["error"] is None, reply["error"] or reply["stdout"][-2000:]
    return dict(json.loads(reply["stdout"]))
