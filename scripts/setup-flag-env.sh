#!/usr/bin/env bash
# Create .venv-flag: a reference environment with FlagEmbedding 1.4.2 (the
# reference implementation for parity tests and benchmarks). FlagEmbedding does
# not import under transformers 5, so it cannot live in the main .venv.
#
# Idempotent (exits at once if FlagReranker already imports) and quiet.
# Usage: scripts/setup-flag-env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-flag"
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c 'from FlagEmbedding import FlagReranker' >/dev/null 2>&1; then
    exit 0
fi

python3 -m venv "$VENV"
# -qq also hides pip's WARNING lines (e.g. about missing local index folders).
PIP=("$PY" -m pip install -qq --disable-pip-version-check --no-input)

# torch first, pinned exactly: only this version resolves to the local CPU
# wheel; any other spec would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"

# FlagEmbedding 1.4.2 declares transformers<6 but breaks on 5.x; the other
# pins are the set known to import together with transformers 4.57.6.
"${PIP[@]}" \
    "torch==2.13.0" \
    "FlagEmbedding==1.4.2" \
    "transformers==4.57.6" \
    "tokenizers==0.22.2" \
    "huggingface_hub==0.36.2" \
    "sentence-transformers==5.7.0" \
    "peft==0.21.2" \
    "accelerate==1.15.0" \
    "datasets==5.0.1"

"$PY" -c 'from FlagEmbedding import FlagReranker' >/dev/null 2>&1 || {
    echo "setup-flag-env: FlagEmbedding does not import in $VENV" >&2
    "$PY" -c 'from FlagEmbedding import FlagReranker' >&2
    exit 1
}
