#!/usr/bin/env bash
# System packages the tests need: Debian's Chromium and ChromeDriver (playground browser tests)
# and CJK fonts (so screenshots show Chinese and Japanese). Idempotent; needs root or sudo.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-noto-cjk >/dev/null
