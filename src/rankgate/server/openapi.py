"""Write the server's OpenAPI document: ``python -m rankgate.server.openapi > docs/openapi.json``.

The committed document is tested against the running server (tests/server/test_openapi.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rankgate.server.app import create_app
from rankgate.server.settings import ServerSettings

__all__ = ["openapi_document", "render"]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of an app with default settings (no model is loaded)."""
    return create_app(ServerSettings(api_keys=[])).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(openapi_document()))
