"""rankgate's HTTP server: Cohere v1/v2, Jina, TEI and vLLM dialects over one batching engine.

Needs the ``server`` extra (``pip install 'rankgate[server]'``). Build the app with
:func:`create_app`; ``rankgate serve`` runs it under uvicorn with a graceful SIGTERM drain.

The names are loaded on first use, so that ``rankgate.server.settings`` (which the command line
derives its options from) imports without the extra: fastapi comes in with :func:`create_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rankgate.server.app import create_app
    from rankgate.server.settings import ServerSettings, build_server_settings

__all__ = ["ServerSettings", "build_server_settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from rankgate.server.app import create_app

        return create_app
    if name in ("ServerSettings", "build_server_settings"):
        from rankgate.server import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'rankgate.server' has no attribute {name!r}")
