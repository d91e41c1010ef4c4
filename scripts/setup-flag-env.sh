#!/usr/bin/env bash
# Create .venv-flag: a reference environment with FlagEmbedding 1.4.2 (the reference
# implementation for parity tests and benchmarks). FlagEmbedding does not import under
# transformers 5, so it cannot live in the main .venv; pins are in requirements/flag.txt.
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-flag-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/setup-venv.sh" .venv-flag "$HERE/../requirements/flag.txt" \
    'from FlagEmbedding import FlagReranker'
