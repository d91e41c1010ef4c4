#!/usr/bin/env bash
# Create .venv-st-onnx: sentence-transformers with its ONNX backend (optimum-onnx), the
# `crossencoder-onnx` peer of `rankgate bench`. optimum-onnx pins transformers<4.58, so it
# cannot share the main .venv (transformers 5); pins are in requirements/st-onnx.txt.
#
# Idempotent (exits at once if the backend imports) and quiet.
# Usage: scripts/setup-st-onnx-env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-st-onnx"
PY="$VENV/bin/python"
CHECK='import optimum.onnxruntime, sentence_transformers'

if [ -x "$PY" ] && "$PY" -c "$CHECK" >/dev/null 2>&1; then
    exit 0
fi

python3 -m venv "$VENV"
# -qq also hides pip's WARNING lines (e.g. about missing local index folders).
PIP=("$PY" -m pip install -qq --disable-pip-version-check --no-input)

# torch first, pinned exactly: only this version resolves to the local CPU wheel; any other
# spec would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -r "$ROOT/requirements/st-onnx.txt"

"$PY" -c "$CHECK" >/dev/null 2>&1 || {
    echo "setup-st-onnx-env: sentence-transformers' ONNX backend does not import in $VENV" >&2
    "$PY" -c "$CHECK" >&2
    exit 1
}
