"""The committed OpenAPI document matches the running server."""

from __future__ import annotations

import json

import httpx

from rankgate.server.openapi import openapi_document, render

from .conftest import ROOT

COMMITTED = ROOT / "docs" / "openapi.json"
FIX = "regenerate with: python -m rankgate.server.openapi > docs/openapi.json"


def test_committed_document_matches_the_app() -> None:
    assert COMMITTED.read_text() == render(openapi_document()), FIX


def test_running_server_serves_the_committed_document(fake: httpx.Client) -> None:
    served = fake.get("/openapi.json").json()
    assert served == json.loads(COMMITTED.read_text()), FIX


def test_every_route_is_documented() -> None:
    paths = json.loads(COMMITTED.read_text())["paths"]
    assert {
        "/v1/rerank",
        "/v2/rerank",
        "/rerank",
        "/score",
        "/info",
        "/health",
        "/ready",
        "/metrics",
    } <= set(paths)
