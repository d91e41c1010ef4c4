#!/usr/bin/env bash
# Create .venv-infinity: infinity-emb 0.0.78, the peer server that benchmarks/bench_server.py
# loads with the same local model as `rankgate serve`. infinity pins sentence-transformers<4
# (so transformers 4), which cannot share the main .venv; pins are in requirements/infinity.txt.
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-infinity-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/setup-venv.sh" .venv-infinity "$HERE/../requirements/infinity.txt" \
    'import infinity_emb.cli, infinity_emb.transformer.crossencoder.torch'
