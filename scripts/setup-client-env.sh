#!/usr/bin/env bash
# Create the real-client environments the server tests drive (tests/server/test_clients.py),
# each pinned in its own requirements file because their pins do not fit together:
#   .venv-clients          cohere SDK, langchain-cohere, LlamaIndex's Cohere and TEI
#                          postprocessors (requirements/clients.txt; langchain-cohere pins cohere<6)
#   .venv-clients-more     voyageai, xinference-client, LiteLLM, rerankers, Haystack's rankers
#                          (requirements/clients-more.txt; openai>=2, cohere 7, httpx>=0.28)
#   .venv-clients-infinity infinity-client (requirements/clients-infinity.txt; httpx<0.28)
# The tests run small scripts in these environments against a live server.
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-client-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup-venv.sh" .venv-clients "$HERE/../requirements/clients.txt" "
import cohere
from langchain_cohere import CohereRerank
from llama_index.postprocessor.cohere_rerank import CohereRerank as LlamaCohere
from llama_index.postprocessor.tei_rerank import TextEmbeddingInference
"
LITELLM_LOCAL_MODEL_COST_MAP=True HAYSTACK_TELEMETRY_ENABLED=False \
bash "$HERE/setup-venv.sh" .venv-clients-more "$HERE/../requirements/clients-more.txt" "
import voyageai, xinference_client, litellm
from rerankers.models.api_rankers import APIRanker
from haystack_integrations.components.rankers.cohere import CohereRanker
from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker
from haystack_integrations.components.rankers.jina import JinaRanker
from haystack_integrations.components.rankers.vllm import VLLMRanker
"
bash "$HERE/setup-venv.sh" .venv-clients-infinity "$HERE/../requirements/clients-infinity.txt" "
from infinity_client import AuthenticatedClient
from infinity_client.api.default import rerank
from infinity_client.models import RerankInput
"
