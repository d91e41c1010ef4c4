"""Every route fuzzed from the OpenAPI document: no 5xx, and every response as documented.

Schemathesis draws valid and invalid requests for each operation of the committed OpenAPI
document and sends them over loopback to a live server (the keyword backend, and a small funnel so
that /v1/search answers too). A bounded number of cases per operation keeps it to a few minutes.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from rankgate import Reranker  # noqa: E402
from rankgate.server import ServerSettings, create_app  # noqa: E402
from rankgate.testing import KeywordBackend  # noqa: E402

from .conftest import FAKE_SETTINGS, ROOT  # noqa: E402
from .test_hostile import search_funnel  # noqa: E402

CASES_PER_OPERATION = int(os.environ.get("RANKGATE_FUZZ_CASES", "150"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_url(serve) -> str:  # type: ignore[no-untyped-def]
    app = create_app(
        ServerSettings(**FAKE_SETTINGS), Reranker(backend=KeywordBackend()), funnel=search_funnel()
    )
    return str(serve(app).url)


# The committed document, which tests/server/test_openapi.py holds equal to the app's own.
schema = schemathesis.openapi.from_path(str(ROOT / "docs" / "openapi.json"))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("RANKGATE_FUZZ_RANDOM") is None,
)
def test_no_5xx_and_every_response_as_documented(case, fuzzed_url: str) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(base_url=fuzzed_url, checks=CHECKS, timeout=30)
