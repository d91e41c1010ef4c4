"""Live servers on 127.0.0.1 for the server tests: a fast fake model, and the tiny real one."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from rankgate import Reranker
from rankgate.server import ServerSettings, create_app
from rankgate.server.runner import uvicorn_config
from rankgate.testing import KeywordBackend

os.environ["HF_HUB_OFFLINE"] = "1"  # also set by tests/conftest.py; kept for running alone

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A uvicorn server in a background thread."""

    app: FastAPI
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_server(app: FastAPI) -> LiveServer:
    port = free_port()
    # The production settings (keep-alive, graceful shutdown), on a free loopback port.
    config = uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return LiveServer(app, f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture(scope="session")
def serve() -> Iterator[object]:
    """Start a server for an app; every server started is stopped at the end of the session."""
    started: list[LiveServer] = []

    def _serve(app: FastAPI) -> LiveServer:
        live = start_server(app)
        started.append(live)
        return live

    yield _serve
    for live in started:
        live.stop()


FAKE_SETTINGS = dict(
    max_documents=50, max_payload_bytes=100_000, max_request_tokens=20_000, max_queue_tokens=200_000
)


@pytest.fixture(scope="session")
def fake_server(serve) -> LiveServer:  # type: ignore[no-untyped-def]
    """The fast keyword backend: for shapes, errors and limits, where the model does not matter."""
    reranker = Reranker(backend=KeywordBackend(nan_on="poison"))
    return serve(create_app(ServerSettings(**FAKE_SETTINGS), reranker))


@pytest.fixture(scope="session")
def fake(fake_server: LiveServer) -> Iterator[httpx.Client]:
    with fake_server.client() as client:
        yield client


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model: Path) -> Path:
    """The core's tiny random cross-encoder (tests/conftest.py), built once per session."""
    return tiny_model


@pytest.fixture(scope="session")
def tiny_reranker(tiny_model_dir: Path) -> Reranker:
    return Reranker(str(tiny_model_dir), device="cpu", max_length=128, threads=1)


@pytest.fixture(scope="session")
def model_server(serve, tiny_reranker: Reranker) -> LiveServer:  # type: ignore[no-untyped-def]
    """The tiny real XLM-R cross-encoder, for score parity with the library."""
    settings = ServerSettings(api_keys=["test-key"], batch_wait_ms=5)
    return serve(create_app(settings, tiny_reranker))


@pytest.fixture(scope="session")
def tiny_library(tiny_model_dir: Path) -> Reranker:
    """The library itself on the same weights: the reference the server must agree with."""
    return Reranker(str(tiny_model_dir), device="cpu", max_length=128, threads=1)


def parse_metric(text: str, name: str) -> float:
    """The value of a sample: ``name`` or ``name{label="value",...}``; the labels given must
    match, others (such as ``model``) are summed over.

    Raises:
        KeyError: no sample matches.
    """
    from prometheus_client.parser import text_string_to_metric_families

    base, _, rest = name.partition("{")
    wanted = dict(
        (k, v.strip('"'))
        for k, v in (part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
    )
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == base and wanted.items() <= sample.labels.items()
    ]
    if not found:
        raise KeyError(name)
    return float(sum(found))
