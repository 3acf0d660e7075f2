#!/usr/bin/env bash
# rma-broker benchmarks. Every figure is a ratio against a baseline measured in the same
# run; nothing here is a pass/fail test. The broker runs as in production: on a (private)
# system bus, with the cgroup check on, and the claiming process in a cgroup shaped like
# the one libvirt makes for domain "bench" (machine/qemu-1-bench.libvirt-qemu).
#
# Usage (as root): bench/run-bench.sh [PART...]
#   latency     Reserve / Claim / connect+Claim vs (a) bare SCM_RIGHTS, (b) a minimal
#               sd-bus server; pinned to one CPU and unpinned; interleaved rounds
#   callgrind   instructions per Claim, broker vs the minimal server (valgrind)
#   scaling     instructions per Reserve / Claim / lease end / Release at 8, 1024 and
#               4096 slots, with 0 and 4000 leases held
#   throughput  Reserve+Claim with 1, 8 and 64 concurrent clients on 4096 slots, vs the
#               minimal server; final counts checked exact
#   reclaim     holder exit -> slot free for a touched 256 MiB region, vs memset of 256 MiB
#   idle        context switches in 30 s without clients, RSS at 8 and 4096 slots
#   (default: all of these)
# BENCH_ROUNDS (7) and BENCH_ITERATIONS (400) size the latency part.
set -euo pipefail

SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$SOURCE_DIR/build}
export SOURCE_DIR BUILD_DIR
. "$SOURCE_DIR/tests/lib/tap.sh"
. "$SOURCE_DIR/tests/lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "run-bench: run as root (the broker checks uids and cgroups)" >&2
    exit 1
fi
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(latency callgrind scaling throughput reclaim idle)
ROUNDS=${BENCH_ROUNDS:-7}
ITERATIONS=${BENCH_ITERATIONS:-400}

make_test_dir bench
for b in bench-claim bench-ops bench-server; do install -m 0755 "$BUILD_DIR/bench/$b" "$TEST_DIR/bin/"; done
OPS=$TEST_DIR/bin/bench-ops
SERVER_PID=
CGROUP=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    stop_broker || true
    stop_private_bus
    # Processes left in our cgroup have exited by now; an empty group can go.
    [ -n "$CGROUP" ] && rmdir "$CGROUP" "$(dirname "$CGROUP")" 2>/dev/null
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

# A cgroup of libvirt's shape for domain "bench": v2 if the host is pure v2, else the v1
# pids hierarchy. Only processes started with in_domain_cgroup are put there.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CGROUP=/sys/fs/cgroup/machine/qemu-1-bench.libvirt-qemu
else
    CGROUP=/sys/fs/cgroup/pids/machine/qemu-1-bench.libvirt-qemu
fi
mkdir -p "$CGROUP"
in_domain_cgroup() { sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROUP" "$@"; }

SOCK=$TEST_DIR/run/broker.sock
MINIMAL=$TEST_DIR/minimal.sock
start_private_bus

# start PREFIX... -- BROKER-ARGS...: the broker (and the minimal server) under PREFIX
# (taskset, valgrind, or nothing).
start() {
    local prefix=()
    while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
    shift
    "${prefix[@]}" "$BROKERD" --runtime-dir="$TEST_DIR/run" --policy-dir="$TEST_DIR/no-policy" \
        --qemu-users=root --size=1M "$@" >>"$TEST_DIR/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_until 60 busctl --system status org.rmabroker.Broker1 >/dev/null 2>&1
}
stop() { stop_broker || true; }
start_minimal() {
    "$@" "$TEST_DIR/bin/bench-server" "$MINIMAL" &
    SERVER_PID=$!
    wait_until 60 test -S "$MINIMAL"
}
stop_minimal() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; rm -f "$MINIMAL"; }

part_latency() {
    echo "== latency: p50 per round, ${ROUNDS} interleaved rounds of ${ITERATIONS}"
    for placement in "pinned to CPU 0:taskset -c 0" "unpinned:env"; do
        local label=${placement%%:*} prefix
        read -r -a prefix <<<"${placement#*:}"
        echo "-- $label"
        start "${prefix[@]}" -- --count=$((2 * ITERATIONS + 8))
        start_minimal "${prefix[@]}"
        in_domain_cgroup "${prefix[@]}" "$TEST_DIR/bin/bench-claim" "$SOCK" "$MINIMAL" "$ROUNDS" "$ITERATIONS"
        stop_minimal
        stop
    done
}

# callgrind_ir PID: instructions counted since the last zero (dumps, then reads the dump).
callgrind_ir() {
    local before after
    before=$(ls "$TEST_DIR"/callgrind.out.* 2>/dev/null | wc -l)
    callgrind_control --dump "$1" >/dev/null
    for _ in $(seq 200); do
        after=$(ls "$TEST_DIR"/callgrind.out.* 2>/dev/null | wc -l)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    # The newest dump's totals line.
    awk '/^summary:/ {print $2}' "$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)"
}
callgrind_zero() { callgrind_control --zero "$1" >/dev/null; }
VALGRIND=(valgrind --tool=callgrind --callgrind-out-file="$TEST_DIR/callgrind.out.%p.%n" --dump-instr=no
          --collect-atstart=yes)

# hold NAME CMD...: run a holder (claim/storm) in the background until release_hold NAME.
hold() {
    local name=$1; shift
    mkfifo "$TEST_DIR/$name.fifo"
    in_domain_cgroup "$@" <"$TEST_DIR/$name.fifo" >"$TEST_DIR/$name.out" &
    eval "HOLD_PID_$name=$!"
    eval "exec {HOLD_FD_$name}>\"$TEST_DIR/$name.fifo\""
    wait_until 120 grep -q done "$TEST_DIR/$name.out"
}
release_hold() {
    local fd="HOLD_FD_$1" pid="HOLD_PID_$1"
    eval "exec ${!fd}>&-"
    wait "${!pid}" || true
    rm -f "$TEST_DIR/$1.fifo" "$TEST_DIR/$1.out"
}

part_callgrind() {
    local k=200 broker_ir minimal_ir
    echo "== callgrind: instructions per Claim ($k claims), broker (cgroup check and log line included) vs minimal server"
    start "${VALGRIND[@]}" -- --count=$((k + 8))
    "$OPS" reserve "$SOCK" cccc0000 0 $k
    callgrind_zero "$BROKER_PID"
    hold claims "$OPS" claim "$SOCK" cccc0000 0 $k
    broker_ir=$(callgrind_ir "$BROKER_PID")
    release_hold claims
    stop
    start_minimal "${VALGRIND[@]}"
    "$OPS" claim "$MINIMAL" cccc0000 0 1 </dev/null >/dev/null   # warm-up: first connection's setup
    callgrind_zero "$SERVER_PID"
    "$OPS" claim "$MINIMAL" cccc0000 0 $k </dev/null >/dev/null
    minimal_ir=$(callgrind_ir "$SERVER_PID")
    stop_minimal
    printf '  broker  %8d instructions per Claim\n  minimal %8d instructions per Claim\n  ratio   %8.2f x\n' \
        $((broker_ir / k)) $((minimal_ir / k)) "$(echo "$broker_ir / $minimal_ir" | bc -l)"
}

part_scaling() {
    local k=8
    echo "== scaling: instructions per operation (callgrind, $k operations each)"
    printf '  %-6s %-7s %10s %10s %10s %10s\n' slots leases Reserve Claim "lease end" Release
    for config in "8 0" "1024 0" "4096 0" "4096 4000"; do
        local slots=${config% *} leases=${config#* } reserve claim end release
        start "${VALGRIND[@]}" -- --count="$slots"
        if [ "$leases" -gt 0 ]; then hold filler "$OPS" storm "$SOCK" f1110000 0 "$leases"; fi
        "$OPS" reserve "$SOCK" dddd0000 0 1 && "$OPS" release "$SOCK" dddd0000 0 1   # warm-up
        callgrind_zero "$BROKER_PID"; "$OPS" reserve "$SOCK" dddd0000 0 $k; reserve=$(callgrind_ir "$BROKER_PID")
        callgrind_zero "$BROKER_PID"; hold claims "$OPS" claim "$SOCK" dddd0000 0 $k; claim=$(callgrind_ir "$BROKER_PID")
        callgrind_zero "$BROKER_PID"; release_hold claims
        "$OPS" wait-free "$SOCK" $((slots - leases)); end=$(callgrind_ir "$BROKER_PID")
        "$OPS" reserve "$SOCK" eeee0000 0 $k
        callgrind_zero "$BROKER_PID"; "$OPS" release "$SOCK" eeee0000 0 $k; release=$(callgrind_ir "$BROKER_PID")
        [ "$leases" -gt 0 ] && release_hold filler
        stop
        printf '  %-6s %-7s %10d %10d %10d %10d\n' "$slots" "$leases" $((reserve / k)) $((claim / k)) $((end / k)) \
            $((release / k))
    done
    echo "  (Reserve and Release include connecting once; lease end includes wait-free's polling calls)"
}

part_throughput() {
    local total=3840
    echo "== throughput: $total Reserve+Claim on 4096 slots, split over C concurrent clients"
    start -- --count=4096
    start_minimal env
    for c in 1 8 64; do
        local per=$((total / c)) t0 t1 m0 m1 pids=()
        t0=$(date +%s%N)
        for i in $(seq 0 $((c - 1))); do
            in_domain_cgroup "$OPS" storm "$SOCK" "$(printf 'a%07x' "$i")" 0 "$per" </dev/null >/dev/null &
            pids+=($!)
        done
        wait "${pids[@]}"
        t1=$(date +%s%N)
        "$OPS" wait-free "$SOCK" 4096
        pids=()
        m0=$(date +%s%N)
        for i in $(seq 0 $((c - 1))); do
            "$OPS" claim "$MINIMAL" "$(printf 'b%07x' "$i")" 0 "$per" </dev/null >/dev/null &
            pids+=($!)
        done
        wait "${pids[@]}"
        m1=$(date +%s%N)
        printf '  %2d clients: broker %7.0f Reserve+Claim/s   minimal server %7.0f Claim/s   ratio %.2f   final counts: %s\n' \
            "$c" "$(echo "$total * 1e9 / ($t1 - $t0)" | bc -l)" "$(echo "$total * 1e9 / ($m1 - $m0)" | bc -l)" \
            "$(echo "($m1 - $m0) / ($t1 - $t0)" | bc -l)" \
            "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas) scrubbing=$(prop ScrubbingRmas)"
    done
    stop_minimal
    stop
}

part_reclaim() {
    echo "== reclaim: holder exit -> slot free for a touched 256 MiB region, vs memset of 256 MiB (ms)"
    start -- --count=4 --size=256M
    local out=()
    for i in 1 2 3 4 5; do out+=("$(in_domain_cgroup "$OPS" reclaim "$SOCK" $((256 << 20)))"); done
    stop
    printf '  %s\n' "${out[@]}" | sort -n | awk '{r[NR]=$1; m[NR]=$2} END {
        printf "  reclaim  min %.2f  median %.2f  max %.2f ms\n", r[1], r[3], r[5];
        printf "  (memset of the same size in the same runs: %.2f to %.2f ms; the ratio is reclaim / memset per run)\n", m[1], m[5] }'
    printf '  %s\n' "${out[@]}" | awk '{printf "  run: reclaim %.2f ms, memset %.2f ms, ratio %.2f\n", $1, $2, $1 / $2}'
}

part_idle() {
    echo "== idle: 30 s without clients"
    for slots in 8 4096; do
        local c0 c1 rss
        start -- --count=$slots
        sleep 1
        c0=$(awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$BROKER_PID/status")
        sleep 30
        c1=$(awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$BROKER_PID/status")
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status")
        stop
        printf '  %4d slots: %d context switches in 30 s, RSS %d kB\n' "$slots" $((c1 - c0)) "$rss"
    done
}

date -u "+# %Y-%m-%d %H:%M UTC, $(nproc) CPUs, kernel $(uname -r)"
for p in "${parts[@]}"; do "part_$p"; done
