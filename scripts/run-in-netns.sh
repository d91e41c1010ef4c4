#!/usr/bin/env bash
# Run a command inside a fresh network namespace that has only a loopback interface.
#
# Usage: scripts/run-in-netns.sh COMMAND [ARG...]
#
# The Ray tests run in here: Ray probes outside addresses (node IP discovery, usage stats) and
# no test may send traffic beyond loopback. Needs root (ip netns). The namespace is deleted on
# exit, and any process the command left inside it (Ray daemons after a crash) is killed first.
# The command sees RANKGATE_NETNS=<name> and RAY_USAGE_STATS_ENABLED=0.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

name="rankgate-$$-${RANDOM}"
ip netns add "$name"

cleanup() {
    # Processes still inside the namespace were started by COMMAND; end them by pid.
    local pids
    pids=$(ip netns pids "$name" 2>/dev/null || true)
    if [[ -n "$pids" ]]; then
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
    fi
    ip netns delete "$name" 2>/dev/null || true
}
trap cleanup EXIT
# Stopped (a test's timeout), clean up at once: `wait` below returns as soon as a signal comes.
trap 'exit 143' TERM
trap 'exit 130' INT

ip netns exec "$name" ip link set lo up
set +e
ip netns exec "$name" env RANKGATE_NETNS="$name" RAY_USAGE_STATS_ENABLED=0 "$@" &
wait "$!"
status=$?
set -e
exit "$status"
