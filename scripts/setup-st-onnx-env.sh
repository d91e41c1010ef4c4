#!/usr/bin/env bash
# Create .venv-st-onnx: sentence-transformers with its ONNX backend (optimum-onnx), the
# `crossencoder-onnx` peer of `rankgate bench`. optimum-onnx pins transformers<4.58, so it
# cannot share the main .venv (transformers 5); pins are in requirements/st-onnx.txt.
#
# Idempotent and quiet (scripts/setup-venv.sh).
# Usage: scripts/setup-st-onnx-env.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/setup-venv.sh" .venv-st-onnx "$HERE/../requirements/st-onnx.txt" \
    'import optimum.onnxruntime, sentence_transformers'
