#!/usr/bin/env bash
# Create .venv-flag: the transformers-4 reference environment, with FlagEmbedding 1.4.2 (the
# reference implementation for parity tests and benchmarks) and mxbai-rerank 0.1.6. Neither
# runs under transformers 5, so they cannot live in the main .venv; pins are in
# requirements/flag.txt.
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-flag-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/setup-venv.sh" .venv-flag "$HERE/../requirements/flag.txt" \
    'from FlagEmbedding import FlagReranker, FlagLLMReranker; from mxbai_rerank import MxbaiRerankV2'
