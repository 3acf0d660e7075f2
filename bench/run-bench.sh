#!/usr/bin/env bash
# rma-broker benchmarks. Every figure is a ratio against a baseline measured in the same
# run; nothing here is a pass/fail test. The broker runs as in production: on a (private)
# system bus, with the cgroup check on, and the claiming process in a cgroup shaped like
# the one libvirt makes for domain "bench" (machine/qemu-ID-bench.libvirt-qemu, ID this
# run's pid: two benches at once never share it).
#
# Usage (as root): bench/run-bench.sh [PART...]
#   latency     Reserve / Claim / connect+Claim vs (a) bare SCM_RIGHTS, (b) a minimal
#               sd-bus server; pinned to one CPU and unpinned; interleaved rounds
#   callgrind   instructions per Claim, broker vs the minimal server (valgrind)
#   profile     where the instructions of a Claim and of connect + Claim go, by function
#               (callgrind_annotate), broker vs minimal server (not run by default)
#   scaling     instructions per Reserve / Claim / lease end / Release at 8, 1024 and
#               4096 slots, with 0 and 4000 leases held
#   throughput  Reserve+Claim with 1, 8 and 64 concurrent clients on 4096 slots, vs the
#               minimal server; final counts checked exact
#   reclaim     holder exit -> slot free for a touched 256 MiB region, per backend (kvm, memfd,
#               hugetlb with 2 MiB pages reserved for the run), vs memset of 256 MiB
#   scrub       the kvm backend's zeroing of a 256 MiB RMA (kvm_rma_scrub) vs memset of the
#               same size, and vs the per-page faults it replaced (bench-scrub)
#   scale       start of memfd pools of 8 to 16384 slots: exec to serving with a full pool (where
#               READY=1 is sent), RSS, the lease registry's size; Count=65536 where the
#               hard RLIMIT_NOFILE allows it (the broker holds one fd per slot)
#   idle        context switches in 30 s without clients, RSS at 8 and 4096 slots
#   restart     exec -> serving after a kill -9, memfd pools of 1024, 4096 and 16384 slots:
#               all leased by one holder, all leased by many holders (16 each, as QEMUs),
#               all holders gone while the broker was down, half held-elsewhere; vs a start
#               of the same pool empty (BENCH_RESTART_RUNS, 3; BENCH_RESTART_SIZES)
#   flood       VM starts (root's Reserve, then the QEMU user's Claim, each on a connection
#               of its own, as the hook and the wrapper make them) while 6 processes of
#               nobody flood broker.sock with nonblocking connects, or the bus name with
#               method calls; p50/p99/max per run vs the same starts without a flood,
#               interleaved (BENCH_FLOOD_RUNS, 3; BENCH_FLOOD_STARTS, 100)
#   virsh       virsh start of a 1 GiB pseries TCG guest without NUMA cells: opted in vs a
#               libvirtd without hook or wrapper; not opted in, through the wrapper as
#               default emulator and the hook, vs the same; the floor, a libvirtd whose
#               only qemu hook is /bin/true (what libvirt charges for any hook), vs both;
#               8 parallel starts of each (private libvirtds from
#               tests/e2e/libvirt-sandbox.sh, the real hook and wrapper, without shims;
#               BENCH_VIRSH_RUNS, 15; BENCH_VIRSH_PARALLEL, 8; BENCH_VIRSH_PARALLEL_RUNS,
#               5), interleaved; BENCH_VIRSH_LOGS=DIR keeps each libvirtd's debug log
#               of hook and emulator runs (util.command, qemu_process) there
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
[ ${#parts[@]} -gt 0 ] || parts=(latency callgrind scaling throughput reclaim scrub idle restart flood virsh)
# The benches' pools of 1 MiB regions serve no pseries guest: the broker takes them only
# for a test (daemon/backends/guest-size.c).
export RMA_BROKER_TEST_SMALL_RMAS=1
ROUNDS=${BENCH_ROUNDS:-7}
ITERATIONS=${BENCH_ITERATIONS:-400}

make_test_dir bench
for b in bench-claim bench-ops bench-server; do install -m 0755 "$BUILD_DIR/bench/$b" "$TEST_DIR/bin/"; done
install -m 0755 "$BUILD_DIR/tests/rma-flood" "$TEST_DIR/bin/"
OPS=$TEST_DIR/bin/bench-ops
SERVER_PID=
CGROUP=
FLOODERS=()
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    [ ${#FLOODERS[@]} -gt 0 ] && kill "${FLOODERS[@]}" 2>/dev/null
    stop_broker || true
    stop_private_bus
    # Processes left in our cgroup have exited by now; an empty group can go.
    # machine/ may still be in use (another bench, a libvirtd); under set -e a failing
    # rmdir here would end the trap before TEST_DIR goes.
    [ -n "$CGROUP" ] && rmdir "$CGROUP" "$(dirname "$CGROUP")" 2>/dev/null || true
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

# A cgroup of libvirt's shape for domain "bench": v2 if the host is pure v2, else the v1
# pids hierarchy. Only processes started with in_domain_cgroup are put there. Its domain
# ID is our pid, unique among running benches (the broker accepts any ID libvirt could
# give): a fixed qemu-1 was shared by concurrent benches, and each one's clean-up failed.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CGROUP=/sys/fs/cgroup/machine/qemu-$$-bench.libvirt-qemu
else
    CGROUP=/sys/fs/cgroup/pids/machine/qemu-$$-bench.libvirt-qemu
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
    if [ "${DBUS_SYSTEM_BUS_ADDRESS:-}" = "$NO_BUS" ]; then
        wait_until 60 test -S "$SOCK"
    else
        wait_until 60 busctl --system status org.rmabroker.Broker1 >/dev/null 2>&1
    fi
}
NO_BUS=unix:path=/nonexistent
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
    "$CALLGRIND_CONTROL" --dump "$1" >/dev/null 2>&1
    for _ in $(seq 200); do
        after=$(ls "$TEST_DIR"/callgrind.out.* 2>/dev/null | wc -l)
        [ "$after" -gt "$before" ] && break
        sleep 0.05
    done
    # The newest dump's totals line.
    awk '/^summary:/ {print $2}' "$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)"
}
# BENCH_VALGRIND=PATH: another valgrind (3.19, Debian 12's, has no pidfd_open or
# pidfd_getfd: under it a restart's re-adoption fails).
VALGRIND_BIN=${BENCH_VALGRIND:-valgrind}
CALLGRIND_CONTROL=$(dirname "$(command -v "$VALGRIND_BIN")")/callgrind_control
callgrind_zero() { "$CALLGRIND_CONTROL" --zero "$1" >/dev/null 2>&1; }
VALGRIND=("$VALGRIND_BIN" --tool=callgrind --callgrind-out-file="$TEST_DIR/callgrind.out.%p.%n" --dump-instr=no
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

# profile_top FILE LABEL: the functions that cost the most instructions, inclusive (whole
# subsystems: registry write, logging, sd-bus) and self (hot spots), per operation.
profile_top() {
    local file=$1 label=$2 k=$3
    # BENCH_PROFILE_OUT=DIR keeps each dump, for callgrind_annotate or kcachegrind.
    if [ -n "${BENCH_PROFILE_OUT:-}" ]; then
        mkdir -p "$BENCH_PROFILE_OUT"
        cp "$file" "$BENCH_PROFILE_OUT/callgrind.out.${label//[^a-zA-Z0-9]/-}"
    fi
    echo "-- $label: top functions, inclusive, instructions per operation"
    callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
        awk -v k="$k" '/^ *[0-9,]+ .*[:(]/ {gsub(",", "", $1); if (n++ < 25) printf "  %9d  %s\n", $1 / k, $0}' |
        sed -E 's/^(  *[0-9]+  ) *[0-9,]+ \([ 0-9.]+%\) /\1/' | cut -c1-150
    echo "-- $label: top functions, self"
    callgrind_annotate "$file" 2>/dev/null |
        awk -v k="$k" '/^ *[0-9,]+ .*[:(]/ {gsub(",", "", $1); if (n++ < 15) printf "  %9d  %s\n", $1 / k, $0}' |
        sed -E 's/^(  *[0-9]+  ) *[0-9,]+ \([ 0-9.]+%\) /\1/' | cut -c1-150
}

# profile: where a Claim's instructions go in the broker and in the minimal server, and
# where connect + Claim's go (one connection per Claim), from callgrind's per-function
# counts (callgrind_annotate).
part_profile() {
    local k=200 newest
    echo "== profile: instructions per Claim by function (callgrind_annotate), broker vs minimal server"
    start "${VALGRIND[@]}" -- --count=$((2 * k + 8))
    "$OPS" reserve "$SOCK" cccc0000 0 $((2 * k))
    callgrind_zero "$BROKER_PID"
    hold claims "$OPS" claim "$SOCK" cccc0000 0 $k
    callgrind_ir "$BROKER_PID" >/dev/null
    newest=$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)
    profile_top "$newest" "broker, $k Claims on one connection" $k
    callgrind_zero "$BROKER_PID"
    hold claims1 "$OPS" connect-claim "$SOCK" cccc0000 $k $k
    callgrind_ir "$BROKER_PID" >/dev/null
    newest=$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)
    profile_top "$newest" "broker, $k connect + Claim" $k
    release_hold claims1
    release_hold claims
    stop
    start_minimal "${VALGRIND[@]}"
    "$OPS" claim "$MINIMAL" cccc0000 0 1 </dev/null >/dev/null
    callgrind_zero "$SERVER_PID"
    "$OPS" claim "$MINIMAL" cccc0000 0 $k </dev/null >/dev/null
    callgrind_ir "$SERVER_PID" >/dev/null
    newest=$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)
    profile_top "$newest" "minimal server, $k Claims on one connection" $k
    callgrind_zero "$SERVER_PID"
    "$OPS" connect-claim "$MINIMAL" cccc0000 0 $k </dev/null >/dev/null
    callgrind_ir "$SERVER_PID" >/dev/null
    newest=$(ls -t "$TEST_DIR"/callgrind.out.* | head -1)
    profile_top "$newest" "minimal server, $k connect + Claim" $k
    stop_minimal
}

# scaling_run SLOTS LEASES K: prints broker instructions for K Reserves, K Claims, K lease
# ends and K Releases, each on one connection of its own.
scaling_run() {
    local slots=$1 leases=$2 k=$3 reserve claim end release
    "$OPS" reserve "$SOCK" dddd0000 0 "$k" >/dev/null
    "$OPS" release "$SOCK" dddd0000 0 "$k"                     # warm-up: every path taken once
    callgrind_zero "$BROKER_PID"; "$OPS" reserve "$SOCK" dddd0000 0 "$k"; reserve=$(callgrind_ir "$BROKER_PID")
    callgrind_zero "$BROKER_PID"; hold claims "$OPS" claim "$SOCK" dddd0000 0 "$k"; claim=$(callgrind_ir "$BROKER_PID")
    callgrind_zero "$BROKER_PID"; release_hold claims
    sleep 2   # the leases end and their regions are torn down and refilled, unobserved
    end=$(callgrind_ir "$BROKER_PID")
    "$OPS" wait-free "$SOCK" $((slots - leases))
    "$OPS" reserve "$SOCK" eeee0000 0 "$k"
    callgrind_zero "$BROKER_PID"; "$OPS" release "$SOCK" eeee0000 0 "$k"; release=$(callgrind_ir "$BROKER_PID")
    echo "$reserve $claim $end $release"
}

part_scaling() {
    echo "== scaling: broker instructions per operation (callgrind; runs of 4 and of 8 operations,"
    echo "   per operation = (run of 8 - run of 4) / 4, so a connection's own cost drops out;"
    echo "   no bus here: PropertiesChanged goes out per 10 ms window, which makes counts depend on timing;"
    echo "   a timer that fires inside a window adds to it: median of BENCH_SCALING_RUNS interleaved runs,"
    echo "   Reserve's min-max, and its median against the first row's)"
    local -x DBUS_SYSTEM_BUS_ADDRESS=$NO_BUS
    local configs=("8 0" "1024 0" "4096 0" "4096 4000" "16384 0") runs=${BENCH_SCALING_RUNS:-3} i
    # BENCH_SCALING_CONFIGS="SLOTS:LEASES ...": other rows.
    [ -n "${BENCH_SCALING_CONFIGS:-}" ] && read -r -a configs <<<"${BENCH_SCALING_CONFIGS//:/_}"
    : >"$TEST_DIR/scaling.counts"
    for ((i = 0; i < runs; i++)); do
        for config in "${configs[@]}"; do
            config=${config/_/ }
            local slots=${config% *} leases=${config#* } four eight
            start "${VALGRIND[@]}" -- --count="$slots"
            if [ "$leases" -gt 0 ]; then hold filler "$OPS" storm "$SOCK" f1110000 0 "$leases"; fi
            read -r -a four <<<"$(scaling_run "$slots" "$leases" 4)"
            read -r -a eight <<<"$(scaling_run "$slots" "$leases" 8)"
            if [ "$leases" -gt 0 ]; then release_hold filler; fi
            stop
            echo "$slots $leases $(((eight[0] - four[0]) / 4)) $(((eight[1] - four[1]) / 4))" \
                "$(((eight[2] - four[2]) / 4)) $(((eight[3] - four[3]) / 4))" >>"$TEST_DIR/scaling.counts"
        done
    done
    python3 - "$TEST_DIR/scaling.counts" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    v = [int(x) for x in line.split()]
    rows.setdefault((v[0], v[1]), []).append(v[2:])
print(f"  {'slots':6s} {'leases':7s} {'Reserve':>10s} {'Claim':>10s} {'lease end':>10s} {'Release':>10s}"
      f"   {'Reserve min-max':>17s} {'ratio':>6s}")
base = None
for (slots, leases), runs in rows.items():
    med = [statistics.median(r[i] for r in runs) for i in range(4)]
    reserve = [r[0] for r in runs]
    base = base or med[0]
    print(f"  {slots:<6d} {leases:<7d} {med[0]:10.0f} {med[1]:10.0f} {med[2]:10.0f} {med[3]:10.0f}"
          f"   {min(reserve):8d}-{max(reserve):<8d} {med[0] / base:6.2f}")
PY
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
        printf '  %2d clients: broker %7.0f Reserve+Claim/s   minimal server %7.0f Claim/s   broker/minimal %.2f   final counts: %s\n' \
            "$c" "$(echo "$total * 1000000000 / ($t1 - $t0)" | bc -l)" "$(echo "$total * 1000000000 / ($m1 - $m0)" | bc -l)" \
            "$(echo "($m1 - $m0) / ($t1 - $t0)" | bc -l)" \
            "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas) scrubbing=$(prop ScrubbingRmas)"
    done
    stop_minimal
    stop
}

# reclaim_runs BACKEND-ARGS...: five holders of a touched 256 MiB region exit; each prints
# "reclaim_ms memset_ms".
reclaim_runs() {
    reclaim_runs_under -- --count=4 --size=256M "$@"
}
# reclaim_runs_under PREFIX... -- BROKER-ARGS...: the same, the broker under PREFIX.
reclaim_runs_under() {
    local prefix=()
    while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
    shift
    start "${prefix[@]}" -- --count=4 --size=256M "$@"
    local i
    for i in 1 2 3 4 5; do in_domain_cgroup "$OPS" reclaim "$SOCK" $((256 << 20)); done
    stop
}

part_scale() {
    local hard counts=(8 1024 4096 16384 65536)
    hard=$(ulimit -Hn)
    echo "== scale: memfd pools, exec to serving with every slot free (READY=1 goes out there), 3 runs each"
    printf '  %-6s %28s %10s %14s %14s\n' slots "to serving min/median/max ms" "RSS MiB" "registry MiB" "on disk MiB"
    for n in "${counts[@]}"; do
        if [ "$hard" != unlimited ] && [ "$hard" -lt $((n + 256)) ]; then
            printf '  %-6s not measured: the hard RLIMIT_NOFILE here is %s, and the pool needs one fd per slot\n' \
                "$n" "$hard"
            continue
        fi
        local runs=() rss reg disk
        for _ in 1 2 3; do
            local t0 t1
            rm -rf "$TEST_DIR/run"
            t0=$(date +%s%N)
            DBUS_SYSTEM_BUS_ADDRESS=$NO_BUS start -- --count="$n"
            "$OPS" wait-free "$SOCK" "$n" >/dev/null
            t1=$(date +%s%N)
            runs+=($(((t1 - t0) / 1000000)))
            rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$BROKER_PID/status")
            reg=$(stat -c %s "$TEST_DIR/run/leases" | awk '{printf "%.1f", $1 / 1048576}')
            disk=$(stat -c '%b %B' "$TEST_DIR/run/leases" | awk '{printf "%.1f", $1 * $2 / 1048576}')
            stop
        done
        read -r -a runs <<<"$(printf '%s\n' "${runs[@]}" | sort -n | tr '\n' ' ')"
        printf '  %-6s %10s / %6s / %6s %10s %14s %14s\n' "$n" "${runs[0]}" "${runs[1]}" "${runs[2]}" "$rss" "$reg" "$disk"
    done
}

part_scrub() {
    echo "== scrub: the kvm backend zeroing a 256 MiB RMA (the fake POWER kernel's kind of region) vs memset"
    "$BUILD_DIR/bench/bench-scrub" 256 9
}

part_reclaim() {
    echo "== reclaim: holder exit -> slot free for a touched 256 MiB region, vs memset of 256 MiB in the same run (ms)"
    summarize() { # LABEL, lines "reclaim_ms memset_ms" on stdin
        local data ratio
        data=$(cat)
        ratio=$(awk '{printf "%.1f\n", $1 / $2}' <<<"$data" | sort -n | sed -n 3p)
        sort -n <<<"$data" | awk -v label="$1" -v ratio="$ratio" '
            {r[NR] = $1; if (NR == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2}
            END {printf "  %-8s reclaim min %.2f median %.2f max %.2f ms; memset %.2f to %.2f ms; reclaim/memset median %s\n",
                        label, r[1], r[3], r[5], lo, hi, ratio}'
    }
    reclaim_runs --backend=memfd | summarize memfd
    # hugetlb: 2 MiB pages reserved for the run, and the old reservation put back.
    if [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
        local old
        old=$(cat /proc/sys/vm/nr_hugepages)
        echo $((old + 4 * 128)) >/proc/sys/vm/nr_hugepages
        printf '[Broker]\nHugePageSize=2M\n' >"$TEST_DIR/huge.conf"
        reclaim_runs --backend=hugetlb --config="$TEST_DIR/huge.conf" | summarize hugetlb
        echo "$old" >/proc/sys/vm/nr_hugepages
    fi
    # kvm: the kernel's pool played by the fake POWER kernel (tests/helpers), which never
    # zeroes: the time includes the broker's close, a new KVM_ALLOCATE_RMA (a seccomp
    # round trip and the fake kernel's /proc scan) and its zeroing of the whole RMA.
    printf '#!/bin/sh\nexec %s --count 4 --size 256M -- "$@"\n' "$BUILD_DIR/tests/rma-fake-power-kernel" \
        >"$TEST_DIR/bin/fake-power-kernel"
    chmod 0755 "$TEST_DIR/bin/fake-power-kernel"
    local kvm
    kvm=$(reclaim_runs_under "$TEST_DIR/bin/fake-power-kernel" -- --backend=kvm --count=auto)
    summarize kvm <<<"$kvm"
    awk '{print $1 * 4}' <<<"$kvm" | sort -n | awk '{r[NR] = $1} END {printf "  kvm scrub, holder exit -> slot free, per GiB: min %.1f median %.1f max %.1f ms\n", r[1], r[3], r[5]}'
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

# virsh_side NAME HOOK PATH_PREFIX: a private libvirtd; its SANDBOX, URI and owner kept
# as NAME_SANDBOX, NAME_URI, NAME_OWNER (two run at once, as in test-migration.sh).
virsh_side() {
    SANDBOX="" SANDBOX_URI="" _SANDBOX_OWNER=""
    SANDBOX_PATH_PREFIX=$3 sandbox_start ${2:+"$2"} >/dev/null || return 1
    eval "$1_SANDBOX=\$SANDBOX $1_URI=\$SANDBOX_URI $1_OWNER=\$_SANDBOX_OWNER"
    SANDBOX="" SANDBOX_URI="" _SANDBOX_OWNER=""
}
on() {
    local side=$1; shift
    local sb="${side}_SANDBOX" uri="${side}_URI" owner="${side}_OWNER"
    SANDBOX=${!sb} SANDBOX_URI=${!uri} _SANDBOX_OWNER=${!owner} "$@"
}
# virsh_xml NAME UUID EMULATOR|- [opt-in]: a 1 GiB pseries guest without NUMA cells, as
# virt-install writes one; "-": no <emulator> (libvirt's default, as Nova writes them).
virsh_xml() {
    sandbox_domain_xml "$1" "$2" "${3/#-//usr/bin/true}" 1024 flat |
        if [ "${4:-}" = opt-in ]; then sed 's/ tenant="e2e"//'; else sed '/<metadata>/,/<\/metadata>/d'; fi |
        if [ "$3" = - ]; then sed '/<emulator>/d'; else cat; fi
}
# start_ms SIDE DOMAIN...: start them all at once; the ms until the last virsh start returned.
start_ms() {
    local side=$1 t0 t1 d pids=()
    shift
    t0=$(date +%s%N)
    for d in "$@"; do on "$side" sandbox_virsh start "$d" >/dev/null & pids+=($!); done
    wait "${pids[@]}"
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
destroy_all() { local side=$1 d; shift; for d in "$@"; do on "$side" sandbox_virsh destroy "$d" >/dev/null; done; }

part_virsh() {
    local runs=${BENCH_VIRSH_RUNS:-15} par=${BENCH_VIRSH_PARALLEL:-8} i d n
    # Domain names end in our pid: libvirt names each domain's cgroup machine/qemu-ID-NAME
    # with IDs from 1 in every libvirtd, so two benches at once would share those groups.
    local R=-p$$
    . "$SOURCE_DIR/tests/e2e/libvirt-sandbox.sh"
    echo "== virsh start of a 1 GiB pseries TCG guest without NUMA cells, $runs interleaved runs each"
    start -- --count=$((par + 2)) --size=256M --qemu-users=libvirt-qemu
    # No shims: BROKER's libvirtd sees what an installed host has, the broker's dir as
    # /run/rma-broker and the full programs where the fronts look for them (libexecdir),
    # so the hook and the wrapper run as in production, with libvirt's clean environment
    # and the build's default QEMU. The wrapper also as libvirt's default emulator, first
    # on that libvirtd's PATH (docs/fleet.md), a link as the package installs it.
    install_libvirt_plugin
    local libexec
    libexec=$(meson introspect "$BUILD_DIR" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["libexecdir"] if o["libexecdir"].startswith("/") else o["prefix"] + "/" + o["libexecdir"])')
    mkdir -p "$TEST_DIR/libexec" "$TEST_DIR/emulators" "$TEST_DIR/hook" "$TEST_DIR/floor"
    cp "$TEST_DIR/bin/qemu-rma-claim" "$TEST_DIR/bin/rma-broker-hook" "$TEST_DIR/libexec/"
    cp "$TEST_DIR/bin/rma-broker-hook-front" "$TEST_DIR/hook/50-rma-broker"
    # The floor's hook does nothing (the sandbox installs a copy of /bin/true in qemu.d):
    # what remains is libvirt's own cost of running one.
    ln -s /bin/true "$TEST_DIR/floor/50-true"
    ln -s "$TEST_DIR/bin/qemu-rma" "$TEST_DIR/emulators/qemu-system-ppc64"
    WRAPPER=$TEST_DIR/bin/qemu-rma
    trap 'on BROKER sandbox_stop; on NONE sandbox_stop; on FLOOR sandbox_stop; cleanup' EXIT
    export SANDBOX_VIRTLOGD=1
    # Millisecond stamps of each hook and emulator run, at the cost of a debug log.
    if [ -n "${BENCH_VIRSH_LOGS:-}" ]; then
        export SANDBOX_LOG_LEVEL=1 SANDBOX_LIBVIRTD_CONF_EXTRA='log_filters="1:util.command 1:qemu.qemu_process 4:*"'
    fi
    # BROKER: the hook, and the wrapper as default emulator. NONE: a libvirtd with neither.
    # FLOOR: /bin/true as its only qemu hook, the real QEMU as default emulator.
    SANDBOX_BINDS="$TEST_DIR/run:/run/rma-broker $TEST_DIR/libexec:$libexec/rma-broker" \
        virsh_side BROKER "$TEST_DIR/hook/50-rma-broker" "$TEST_DIR/emulators"
    virsh_side NONE "" ""
    virsh_side FLOOR "$TEST_DIR/floor/50-true" ""
    virsh_xml rma-bench-rma$R 7b1c2d3e-0000-4000-8000-00000000000a "$WRAPPER" opt-in >"$TEST_DIR/rma.xml"
    virsh_xml rma-bench-default$R 7b1c2d3e-0000-4000-8000-00000000000c - >"$TEST_DIR/default.xml"
    virsh_xml rma-bench-plain$R 7b1c2d3e-0000-4000-8000-00000000000b - >"$TEST_DIR/plain.xml"
    virsh_xml rma-bench-floor$R 7b1c2d3e-0000-4000-8000-00000000000d - >"$TEST_DIR/floor.xml"
    on BROKER sandbox_virsh define "$TEST_DIR/rma.xml" >/dev/null
    on BROKER sandbox_virsh define "$TEST_DIR/default.xml" >/dev/null
    on NONE sandbox_virsh define "$TEST_DIR/plain.xml" >/dev/null
    on FLOOR sandbox_virsh define "$TEST_DIR/floor.xml" >/dev/null
    for i in $(seq "$par"); do
        virsh_xml "rma-bench-rma-$i$R" "7b1c2d3e-0000-4000-8000-0000000001$(printf '%02d' "$i")" "$WRAPPER" opt-in \
            >"$TEST_DIR/rma-$i.xml"
        virsh_xml "rma-bench-plain-$i$R" "7b1c2d3e-0000-4000-8000-0000000002$(printf '%02d' "$i")" - \
            >"$TEST_DIR/plain-$i.xml"
        virsh_xml "rma-bench-floor-$i$R" "7b1c2d3e-0000-4000-8000-0000000003$(printf '%02d' "$i")" - \
            >"$TEST_DIR/floor-$i.xml"
        on BROKER sandbox_virsh define "$TEST_DIR/rma-$i.xml" >/dev/null
        on NONE sandbox_virsh define "$TEST_DIR/plain-$i.xml" >/dev/null
        on FLOOR sandbox_virsh define "$TEST_DIR/floor-$i.xml" >/dev/null
    done
    echo "  load average at the start (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    # Warm-up: capabilities probed, caches filled.
    for d in BROKER:rma-bench-rma$R BROKER:rma-bench-default$R NONE:rma-bench-plain$R FLOOR:rma-bench-floor$R; do
        start_ms "${d%%:*}" "${d#*:}" >/dev/null && destroy_all "${d%%:*}" "${d#*:}"
    done
    # A new order each round: a start never always follows the same side's destroy (whose
    # clean-up, a QEMU's exit and a region's refill, goes on after virsh returns).
    for i in $(seq "$runs"); do
        for d in $(printf '%s\n' BROKER:rma-bench-rma$R NONE:rma-bench-plain$R BROKER:rma-bench-default$R \
                   FLOOR:rma-bench-floor$R | shuf); do
            n=${d#*:}
            echo "${n%"$R"} $(start_ms "${d%%:*}" "$n")" >>"$TEST_DIR/virsh.times"
            destroy_all "${d%%:*}" "${d#*:}"
        done
    done
    local rmas=() plains=() floors=()
    for i in $(seq "$par"); do
        rmas+=("rma-bench-rma-$i$R"); plains+=("rma-bench-plain-$i$R"); floors+=("rma-bench-floor-$i$R")
    done
    for i in $(seq "${BENCH_VIRSH_PARALLEL_RUNS:-5}"); do
        for d in $(printf '%s\n' rma plain floor | shuf); do
            if [ "$d" = rma ]; then
                echo "parallel-rma $(start_ms BROKER "${rmas[@]}")" >>"$TEST_DIR/virsh.times"
                destroy_all BROKER "${rmas[@]}"
                wait_until 30 prop_is FreeRmas $((par + 2))
            elif [ "$d" = plain ]; then
                echo "parallel-plain $(start_ms NONE "${plains[@]}")" >>"$TEST_DIR/virsh.times"
                destroy_all NONE "${plains[@]}"
            else
                echo "parallel-floor $(start_ms FLOOR "${floors[@]}")" >>"$TEST_DIR/virsh.times"
                destroy_all FLOOR "${floors[@]}"
            fi
        done
    done
    echo "  load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ -n "${BENCH_VIRSH_LOGS:-}" ]; then
        mkdir -p "$BENCH_VIRSH_LOGS"
        for d in BROKER NONE FLOOR; do on "$d" sh -c 'cp "$SANDBOX/log/libvirtd.log" "$0"' "$BENCH_VIRSH_LOGS/$d.log"; done
    fi
    on BROKER sandbox_stop
    on NONE sandbox_stop
    on FLOOR sandbox_stop
    stop
    python3 - "$TEST_DIR/virsh.times" "$par" <<'PY2'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    d, ms = line.split()
    t.setdefault(d, []).append(int(ms))
def row(name, v):
    print(f"  {name:44s} min {min(v):6d}  median {statistics.median(v):7.1f}  max {max(v):6d} ms")
def ratio(name, a, b, bound):
    r = sorted(x / y for x, y in zip(a, b))
    print(f"  ratio {name:38s} min {r[0]:.3f}  median {statistics.median(r):.3f}  max {r[-1]:.3f}  (bound {bound})")
row("opted in (hook, wrapper, RMA)", t["rma-bench-rma"])
row("not opted in, wrapper as default emulator", t["rma-bench-default"])
row("libvirtd without hook or wrapper", t["rma-bench-plain"])
row("floor: /bin/true as the only hook", t["rma-bench-floor"])
row(f"{sys.argv[2]} parallel starts, opted in", t["parallel-rma"])
row(f"{sys.argv[2]} parallel starts, without", t["parallel-plain"])
row(f"{sys.argv[2]} parallel starts, floor", t["parallel-floor"])
ratio("opted in / without the broker", t["rma-bench-rma"], t["rma-bench-plain"], "1.02")
ratio("default emulator + hook / neither", t["rma-bench-default"], t["rma-bench-plain"], "1.02")
ratio(f"{sys.argv[2]} parallel, opted in / without", t["parallel-rma"], t["parallel-plain"], "1.05")
# The floor: what libvirt charges for any qemu hook, and ours above it.
ratio("floor / neither", t["rma-bench-floor"], t["rma-bench-plain"], "-")
ratio("default emulator + hook / floor", t["rma-bench-default"], t["rma-bench-floor"], "-")
ratio("opted in / floor", t["rma-bench-rma"], t["rma-bench-floor"], "-")
ratio(f"{sys.argv[2]} parallel, floor / without", t["parallel-floor"], t["parallel-plain"], "-")
ratio(f"{sys.argv[2]} parallel, opted in / floor", t["parallel-rma"], t["parallel-floor"], "-")
PY2
}

# ready_ms ARGS...: start the broker (no bus: only broker.sock), under READY_WRAP if set;
# READY_MS is the time from its exec to "Pool ready" (serving). It is left running as
# BROKER_PID.
READY_WRAP=()
ready_ms() {
    local out
    out=$(python3 - "$TEST_DIR/broker.log" ${READY_WRAP[@]+"${READY_WRAP[@]}"} "$BROKERD" --runtime-dir="$TEST_DIR/run" \
          --policy-dir="$TEST_DIR/no-policy" --qemu-users=root --size=1M --backend=memfd "$@" <<'PY'
import os, subprocess, sys, time
log = open(sys.argv[1], "ab+")
start = log.seek(0, os.SEEK_END)
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
with open(sys.argv[1], "rb") as r:
    r.seek(start)
    seen = b""
    while b"Pool ready" not in seen:
        if p.poll() is not None:
            sys.exit("the broker exited")
        seen += r.read()
        time.sleep(0.0005)
print(p.pid, (time.monotonic() - t0) * 1000)
PY
    ) || return 1
    BROKER_PID=${out% *}
    READY_MS=${out#* }
}
kill9_broker() { kill -9 "$BROKER_PID"; while kill -0 "$BROKER_PID" 2>/dev/null; do sleep 0.01; done; BROKER_PID=; }
stop_bench_broker() { kill "$BROKER_PID"; while kill -0 "$BROKER_PID" 2>/dev/null; do sleep 0.01; done; BROKER_PID=; }

# restart_case N CASE: RESTART_MS, one sample of a restart of a pool of N in state CASE;
# the restart (only) runs under RESTART_WRAP if set.
RESTART_WRAP=()
restart_case() {
    local n=$1 kind=$2 fifo=$TEST_DIR/holder.fifo i
    rm -rf "$TEST_DIR/run"
    if [ "$kind" = empty ]; then
        ready_ms --count="$n"   # warm caches as the other cases do
        stop_bench_broker
        rm -rf "$TEST_DIR/run"
        ready_ms --count="$n"
        stop_bench_broker
        RESTART_MS=$READY_MS
        return
    fi
    ready_ms --count="$n"
    mkfifo "$fifo"
    local holder holders=()
    if [ "$kind" = many ]; then
        # As on a host: many QEMUs, 16 regions each (every slot leased, N/16 holders).
        : >"$TEST_DIR/holder.out"
        for ((i = 0; i < n; i += 16)); do
            in_domain_cgroup "$OPS" hold-regions "$SOCK" 0b0b0000 "$i" 16 <"$fifo" >>"$TEST_DIR/holder.out" &
            holders+=($!)
        done
        exec {hfd}>"$fifo"
        wait_until 300 bash -c "[ \$(grep -c done '$TEST_DIR/holder.out') -ge $((n / 16)) ]"
    else
        # The holder claims from the domain's cgroup, as QEMU would: the restart checks it.
        in_domain_cgroup "$OPS" hold-regions "$SOCK" 0b0b0000 0 "$n" <"$fifo" >"$TEST_DIR/holder.out" &
        holders=($!)
        exec {hfd}>"$fifo"
        wait_until 300 grep -q done "$TEST_DIR/holder.out"
    fi
    holder=${holders[0]}
    kill9_broker
    case "$kind" in
    gone) exec {hfd}>&-; wait "$holder" ;;
    half) echo split >&"$hfd"; wait "$holder"; wait_until 30 grep -q split "$TEST_DIR/holder.out" ;;
    esac
    READY_WRAP=(${RESTART_WRAP[@]+"${RESTART_WRAP[@]}"})
    ready_ms --count="$n"
    READY_WRAP=()
    RESTART_MS=$READY_MS
    if [ "$kind" != gone ]; then
        exec {hfd}>&-   # the holders (half: the child) let go
        wait "${holders[@]}" 2>/dev/null
    fi
    stop_bench_broker
    rm -f "$fifo"
}

part_restart() {
    local runs=${BENCH_RESTART_RUNS:-3} n kind i
    echo "== restart: exec -> serving after kill -9 (memfd, no bus), ms, min/median/max of $runs interleaved runs;"
    echo "   ratio: median against the same pool started empty"
    ulimit -n "$(ulimit -Hn)"
    # A pool of N with every slot leased holds 2N fds (region, pidfd): under the unit
    # LimitNOFILE=262144; here what the hard limit allows (raising it needs CAP_SYS_RESOURCE).
    local sizes=${BENCH_RESTART_SIZES:-}
    if [ -z "$sizes" ]; then
        sizes="1024 4096"
        if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 40000 ]; then
            sizes+=" 16384"
        else
            sizes+=" 8192"
            echo "   (16384 slots need more than 32768 fds; this shell's hard limit is $(ulimit -Hn): 8192 instead)"
        fi
    fi
    local -x DBUS_SYSTEM_BUS_ADDRESS=$NO_BUS
    for n in $sizes; do
        : >"$TEST_DIR/restart.times"
        for ((i = 0; i < runs; i++)); do
            for kind in ${BENCH_RESTART_KINDS:-empty leased many gone half}; do
                restart_case "$n" "$kind"
                echo "$kind $RESTART_MS" >>"$TEST_DIR/restart.times"
            done
        done
        python3 - "$n" "$TEST_DIR/restart.times" <<'PY'
import statistics, sys
n, t = sys.argv[1], {}
for line in open(sys.argv[2]):
    k, ms = line.split()
    t.setdefault(k, []).append(float(ms))
base = statistics.median(t["empty"])
for k in ("empty", "leased", "many", "gone", "half"):
    if k not in t:
        continue
    v = t[k]
    print(f"  {n:>5} slots {k:7s} min {min(v):8.1f}  median {statistics.median(v):8.1f}  max {max(v):8.1f} ms"
          f"   ratio {statistics.median(v) / base:5.2f}")
PY
    done
    # Instructions, which do not depend on the machine's load: the restore of a pool of
    # 1024 leased by 64 holders, per re-adopted lease (the kernel's share is not counted).
    local -a RESTART_WRAP=("$VALGRIND_BIN" --tool=callgrind --callgrind-out-file="$TEST_DIR/restart.cg"
                           --toggle-collect=restore_apply)
    : >"$TEST_DIR/broker.log"
    restart_case 1024 many
    local ir leases
    ir=$(awk '/^summary:/ {print $2}' "$TEST_DIR/restart.cg")
    leases=$(grep -c "re-adopted the lease" "$TEST_DIR/broker.log" || true)
    echo "== restart: callgrind, restore_apply of 1024 slots leased by 64 holders: $ir instructions," \
         "$leases lease(s) re-adopted, $((ir / 1024)) per slot"
    [ "$leases" -eq 1024 ] || echo "   (not every lease came back under $VALGRIND_BIN: valgrind before 3.20 fails" \
        "pidfd_open; set BENCH_VALGRIND to a newer one)"
}

part_flood() {
    local runs=${BENCH_FLOOD_RUNS:-3} n=${BENCH_FLOOD_STARTS:-100} qemu_uid=4243 run kind i
    echo "== flood: $n VM starts (hook's Reserve + wrapper's Claim, new connections) while 6 processes of" \
         "nobody flood; $runs interleaved runs; p50 / p99 / max ms"
    start -- --count=64 --qemu-users=$qemu_uid --no-check-cgroup
    : >"$TEST_DIR/flood.txt"
    for run in $(seq "$runs"); do
        for kind in none connect bus; do
            FLOODERS=()
            if [ "$kind" != none ]; then
                for i in 1 2 3 4 5 6; do
                    if [ "$kind" = connect ]; then
                        as_nobody "$TEST_DIR/bin/rma-flood" connect "$SOCK" 600 >/dev/null 2>&1 &
                    else
                        as_nobody "$TEST_DIR/bin/rma-flood" bus 600 >/dev/null 2>&1 &
                    fi
                    FLOODERS+=($!)
                done
                sleep 1
            fi
            echo "$kind $(RMA_BROKER_SOCKET=$SOCK "$OPS" starts "$SOCK" "$(printf 'f%02x%05x' "$run" 0)" "$n" $qemu_uid \
                         2>>"$TEST_DIR/flood.err")" >>"$TEST_DIR/flood.txt"
            if [ ${#FLOODERS[@]} -gt 0 ]; then kill "${FLOODERS[@]}" 2>/dev/null; wait "${FLOODERS[@]}" 2>/dev/null || true; fi
            FLOODERS=()
        done
    done
    stop
    python3 - "$TEST_DIR/flood.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, p50, p99, mx, failed = line.split()
    rows.setdefault(kind, []).append((p50, p99, mx, int(failed)))
base = statistics.median(float(r[1]) for r in rows["none"])
for kind, label in (("none", "no flood"), ("connect", "connect flood of broker.sock"), ("bus", "bus method flood")):
    rs = rows.get(kind, [])
    ok = [r for r in rs if r[1] != "-"]
    p99 = [float(r[1]) for r in ok]
    print(f"  {label:30s} p50 {'/'.join(r[0] for r in rs):>20s}  p99 {'/'.join(r[1] for r in rs):>20s}"
          f"  max {'/'.join(r[2] for r in rs):>20s}  failed {sum(r[3] for r in rs)}"
          + (f"  p99 ratio (median) {statistics.median(p99) / base:5.2f}" if p99 else ""))
PY
    [ -s "$TEST_DIR/flood.err" ] && sed 's/^/  /' "$TEST_DIR/flood.err" | sort | uniq -c | head -5
    return 0
}

date -u "+# %Y-%m-%d %H:%M UTC, $(nproc) CPUs, kernel $(uname -r)"
for p in "${parts[@]}"; do "part_$p"; done
