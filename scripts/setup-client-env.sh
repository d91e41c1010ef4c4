#!/usr/bin/env bash
# Create .venv-clients: the real client libraries the server tests drive (cohere SDK,
# langchain-cohere, LlamaIndex's Cohere and TEI postprocessors), pinned in
# requirements/clients.txt. They live apart from the main .venv because they pull langchain and
# llama-index and pin an older cohere SDK. The tests run small scripts in this environment
# against a live server (tests/server/test_clients.py).
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-client-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/setup-venv.sh" .venv-clients "$HERE/../requirements/clients.txt" "
import cohere
from langchain_cohere import CohereRerank
from llama_index.postprocessor.cohere_rerank import CohereRerank as LlamaCohere
from llama_index.postprocessor.tei_rerank import TextEmbeddingInference
"
