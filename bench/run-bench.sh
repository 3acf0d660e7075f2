#!/usr/bin/env bash
# Run bench-claim against a freshly started broker, once with broker and client pinned
# to one CPU and once unpinned (a wakeup across vCPUs dominates on small VMs).
# Usage: bench/run-bench.sh [ITERATIONS]   (as root; BUILD_DIR defaults to ./build)
set -euo pipefail
BUILD_DIR=${BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
n=${1:-500}
dir=$(mktemp -d /tmp/rma-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

run() { # LABEL TASKSET-PREFIX...
    local label=$1; shift
    # Never the host's bus: the broker serves broker.sock only here.
    DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent \
        "$@" "$BUILD_DIR/daemon/rma-brokerd" --runtime-dir="$dir/run" --count=1024 --size=1M \
        --qemu-users=root --no-check-cgroup --policy-dir="$dir/none" 2>"$dir/broker.log" &
    pid=$!
    for _ in $(seq 100); do [ -S "$dir/run/broker.sock" ] && break; sleep 0.05; done
    echo "$label ($n iterations):"
    DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent RMA_BROKER_SOCKET="$dir/run/broker.sock" \
        "$@" "$BUILD_DIR/bench/bench-claim" "$n"
    kill $pid; wait $pid 2>/dev/null || true; pid=
}
run "pinned to CPU 0" taskset -c 0
run "unpinned" env
