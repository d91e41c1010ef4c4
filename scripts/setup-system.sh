#!/usr/bin/env bash
# System packages the tests need, from Debian: Chromium and ChromeDriver (playground browser
# tests), CJK fonts (so screenshots show Chinese and Japanese) and iproute2 (`ip netns`, the
# loopback-only network namespace the Ray tests run in). Idempotent; needs root or sudo.
set -euo pipefail
want=()
command -v chromium >/dev/null || want+=(chromium)
command -v chromedriver >/dev/null || want+=(chromium-driver)
command -v ip >/dev/null || want+=(iproute2)
fc-list 2>/dev/null | grep -qi "noto.*cjk" || want+=(fonts-noto-cjk)
[ ${#want[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
