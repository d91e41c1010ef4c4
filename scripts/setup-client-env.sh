#!/usr/bin/env bash
# Create .venv-clients: the real client libraries the server tests drive (cohere SDK,
# langchain-cohere, LlamaIndex's Cohere and TEI postprocessors), pinned in
# requirements/clients.txt. They live apart from the main .venv because they pull langchain and
# llama-index and pin an older cohere SDK. The tests run small scripts in this environment
# against a live server (tests/server/test_clients.py).
#
# Idempotent (exits at once when the pinned set is already installed) and quiet.
# Usage: scripts/setup-client-env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-clients"
PY="$VENV/bin/python"
REQS="$ROOT/requirements/clients.txt"
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

python3 -m venv "$VENV"
"$PY" -m pip install -qq --disable-pip-version-check --no-input -r "$REQS"
"$PY" - <<'PY'
import cohere  # noqa: F401
from langchain_cohere import CohereRerank  # noqa: F401
from llama_index.postprocessor.cohere_rerank import CohereRerank as LlamaCohere  # noqa: F401
from llama_index.postprocessor.tei_rerank import TextEmbeddingInference  # noqa: F401
PY
echo "$WANT" > "$STAMP"
