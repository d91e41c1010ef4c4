#!/usr/bin/env bash
# Build one of the side environments (.venv-flag, .venv-clients, .venv-infinity, .venv-st-onnx):
# a venv at the repo root named NAME, holding the pins of REQUIREMENTS, in which the Python
# statement CHECK must run. The setup-*-env.sh scripts call it, each with its own pins and check.
#
# Idempotent: exits at once when the environment was built from the same pins and CHECK (the
# stamp is written only once CHECK has run there). A `torch==` pin in REQUIREMENTS is installed first, alone: only torch==2.13.0 resolves to
# the local CPU wheel, and letting pip pick torch while resolving the rest may pull a multi-GB
# CUDA build. Quiet: -qq also hides pip's WARNING lines (e.g. about missing local index folders).
# Usage: scripts/setup-venv.sh NAME REQUIREMENTS CHECK
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 NAME REQUIREMENTS CHECK" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="$1"
REQS="$2"
CHECK="$3"
VENV="$ROOT/$NAME"
PY="$VENV/bin/python"
STAMP="$VENV/.requirements.sha256"
WANT="$( (cat "$REQS"; printf '%s' "$CHECK") | sha256sum | cut -d' ' -f1)"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    exit 0
fi

python3 -m venv "$VENV"
PIP=("$PY" -m pip install -qq --disable-pip-version-check --no-input)
TORCH="$(grep -E '^torch==' "$REQS" || true)"
if [ -n "$TORCH" ]; then
    "${PIP[@]}" "$TORCH"
fi
"${PIP[@]}" -r "$REQS"

"$PY" -c "$CHECK" >/dev/null 2>&1 || {
    echo "setup-venv: the check of $NAME fails after installing $REQS:" >&2
    "$PY" -c "$CHECK" >&2
    exit 1
}
echo "$WANT" > "$STAMP"
