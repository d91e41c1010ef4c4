"""rankgate's HTTP server: Cohere v1/v2, Jina, TEI and vLLM dialects over one batching engine.

Needs the ``server`` extra (``pip install 'rankgate[server]'``). Build the app with
:func:`create_app`; ``rankgate serve`` runs it under uvicorn with a graceful SIGTERM drain.
"""

from rankgate.server.app import create_app
from rankgate.server.settings import ServerSettings, build_server_settings

__all__ = ["ServerSettings", "build_server_settings", "create_app"]
