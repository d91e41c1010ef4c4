#!/usr/bin/env bash
# Create .venv-infinity: infinity-emb 0.0.78, the peer server that benchmarks/bench_server.py
# loads with the same local model as `rankgate serve`. infinity pins sentence-transformers<4
# (so transformers 4), which cannot share the main .venv; pins are in requirements/infinity.txt.
#
# Idempotent (exits at once if infinity_emb's CLI imports) and quiet.
# Usage: scripts/setup-infinity-env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-infinity"
PY="$VENV/bin/python"
CHECK='import infinity_emb.cli, infinity_emb.transformer.crossencoder.torch'

if [ -x "$PY" ] && "$PY" -c "$CHECK" >/dev/null 2>&1; then
    exit 0
fi

python3 -m venv "$VENV"
# -qq also hides pip's WARNING lines (e.g. about missing local index folders).
PIP=("$PY" -m pip install -qq --disable-pip-version-check --no-input)

# torch first, pinned exactly: only this version resolves to the local CPU wheel; any other
# spec (infinity-emb asks for torch>=2.2.1) would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -r "$ROOT/requirements/infinity.txt"

"$PY" -c "$CHECK" >/dev/null 2>&1 || {
    echo "setup-infinity-env: infinity_emb does not import in $VENV" >&2
    "$PY" -c "$CHECK" >&2
    exit 1
}
