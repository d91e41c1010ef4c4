"""Run the real server process (uvicorn, SIGTERM drain) on the keyword backend, for tests.

Settings come from RANKGATE_* variables; RANKGATE_TEST_DELAY is the fake seconds per pair.
"""

from __future__ import annotations

import os

from rankgate import Reranker
from rankgate.server import build_server_settings, create_app
from rankgate.server.runner import serve
from rankgate.testing import KeywordBackend

if __name__ == "__main__":
    delay = float(os.environ.get("RANKGATE_TEST_DELAY", "0"))
    serve(create_app(build_server_settings(), Reranker(backend=KeywordBackend(delay=delay))))
