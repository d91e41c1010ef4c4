#!/usr/bin/env bash
# Run a command on the first of two test hosts: network namespaces joined by a veth pair.
#
# Usage: scripts/run-two-hosts.sh COMMAND [ARG...]
#
# The multi-host Ray tests run in here: a head host and a worker host, each a fresh network
# namespace with loopback and one end of a veth pair (10.231.0.1/30 and 10.231.0.2/30), and no
# default route, so nothing can leave the machine. COMMAND runs on the head host and reaches the
# worker host with `ip netns exec "$RANKGATE_WORKER_NETNS" ...`. Needs root (ip netns). Both
# namespaces are deleted on exit, after every process left in either (Ray daemons) is killed.
# The command sees RANKGATE_NETNS, RANKGATE_HEAD_IP, RANKGATE_WORKER_NETNS, RANKGATE_WORKER_IP
# and RAY_USAGE_STATS_ENABLED=0.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

tag="$$-${RANDOM}"
head="rg-head-$tag"
worker="rg-worker-$tag"
head_ip=10.231.0.1
worker_ip=10.231.0.2

cleanup() {
    local ns pids
    for ns in "$worker" "$head"; do
        # Processes still inside were started by COMMAND; end them by pid.
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n "$pids" ]]; then
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null || true
        fi
    done
    # Deleting a namespace also deletes its end of the veth pair, and with it the pair.
    ip netns delete "$worker" 2>/dev/null || true
    ip netns delete "$head" 2>/dev/null || true
}
trap cleanup EXIT
# Stopped (a test's timeout), clean up at once: `wait` below returns as soon as a signal comes.
trap 'exit 143' TERM
trap 'exit 130' INT

ip netns add "$head"
ip netns add "$worker"
# Both ends are created inside the namespaces: no interface ever exists on the host's network.
ip -n "$head" link add rg0 type veth peer name rg0 netns "$worker"
for ns in "$head" "$worker"; do
    ip -n "$ns" link set lo up
done
ip -n "$head" addr add "$head_ip/30" dev rg0
ip -n "$worker" addr add "$worker_ip/30" dev rg0
ip -n "$head" link set rg0 up
ip -n "$worker" link set rg0 up

set +e
ip netns exec "$head" env RANKGATE_NETNS="$head" RANKGATE_HEAD_IP="$head_ip" \
    RANKGATE_WORKER_NETNS="$worker" RANKGATE_WORKER_IP="$worker_ip" \
    RAY_USAGE_STATS_ENABLED=0 "$@" &
wait "$!"
status=$?
set -e
exit "$status"
