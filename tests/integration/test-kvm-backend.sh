#!/usr/bin/env bash
# Integration: Backend=kvm. First the host's own kernel, whatever it is (no /dev/kvm, or
# an x86 KVM with KVM_CAP_PPC_RMA=0): refused with the message for that case. Then the
# unmodified broker runs on a POWER kernel's RMA pool as tests/helpers/rma-fake-power-kernel
# plays it, /dev/kvm included, so everything below is the same on any host: each way a
# host can lack the pool gets its own refusal and its own Backend=auto log line, the pool
# is drained at start and shown as the kernel gave it, bad sizes are refused, every tenant
# gets a zeroed RMA though the kernel never zeroes one, and a slot whose RMA is still held
# elsewhere stays out of the pool until the kernel has it back.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: children run as nobody"
    exit 0
fi

make_test_dir kvm
cleanup() {
    close_all_fifos
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

FAKE=$BUILD_DIR/tests/rma-fake-power-kernel
UUID_A=4dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_B=5dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_C=6dea22b3-1d52-d8f3-2516-782e98ab3fa0
SIZE=$((4 << 20))
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
kernel() { grep "^$1 " "$TEST_DIR/kernel.status" | cut -d' ' -f2; }
# run_broker_once ARGS...: run the broker until it exits (a refused start); its output.
run_broker_once() { timeout 20 "$@" --runtime-dir="$TEST_DIR/run-once" 2>&1; }

start_private_bus

# The host's own kernel: no pool here, whichever way this host lacks it.
out=$(run_broker_once "$BROKERD" --backend=kvm); status=$?
check "Backend=kvm on this host's kernel (no RMA pool) refuses to start" test $status -ne 0
if [ -e /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; then
    check_match "... naming KVM_CAP_PPC_RMA=0 and what to use instead (this host has a working /dev/kvm)" \
        "Backend=kvm cannot serve this host: KVM_CAP_PPC_RMA=0: .*use Backend=hugetlb with HugePageSize=, or Backend=memfd" "$out"
elif [ -e /dev/kvm ]; then
    check_match "... saying the module of /dev/kvm is not loaded and what to do (a node without its module)" \
        "Backend=kvm cannot serve this host: /dev/kvm has no driver behind it \\(No such device( or address)?\\): the kvm module is not loaded.*modprobe kvm_hv.*Backend=memfd" "$out"
else
    check_match "... saying /dev/kvm does not exist and what to do (this host has no /dev/kvm)" \
        "Backend=kvm cannot serve this host: /dev/kvm does not exist .*the kvm module is not loaded.*modprobe kvm_hv.*Backend=memfd" "$out"
fi

# Each way a host can lack the pool, played: the refusal and Backend=auto's line.
# check_no_pool LABEL FAKE-ARGS PATTERN
check_no_pool() {
    local label=$1 args=$2 pattern=$3
    # shellcheck disable=SC2086
    out=$(run_broker_once "$FAKE" --count 2 --size 4M $args -- "$BROKERD" --backend=kvm); status=$?
    check "$label: Backend=kvm refuses to start" test $status -ne 0
    check_match "... saying so and what to do" "Backend=kvm cannot serve this host: $pattern" "$out"
    # shellcheck disable=SC2206
    BROKER_WRAP=("$FAKE" --count 2 --size 4M $args --)
    start_broker --backend=auto --count=2 --size=4M --qemu-users=nobody --no-check-cgroup
    check_eq "$label: Backend=auto serves with memfd" '"memfd"' "$(prop Backend)"
    check_match "... its log line names the same reason" "Backend=auto: not kvm: $pattern" "$(cat "$TEST_DIR/broker.log")"
    check "... and it exits cleanly" stop_broker
    : >"$TEST_DIR/broker.log"
}
check_no_pool "no /dev/kvm (module not loaded)" "--dev-kvm absent" \
    "/dev/kvm does not exist \\(No such file or directory\\): the kvm module is not loaded. On a POWER host .*modprobe kvm_hv"
check_no_pool "/dev/kvm not openable" "--dev-kvm denied" \
    "/dev/kvm exists but cannot be opened \\(Permission denied\\): run rma-brokerd as root, .*DeviceAllow=/dev/kvm rw"
check_no_pool "KVM without the capability (not POWER, or since 3.19)" "--capability 0" \
    "KVM_CAP_PPC_RMA=0: this kernel has no RMA pool .*use Backend=hugetlb with HugePageSize=, or Backend=memfd"
BROKER_WRAP=("$FAKE" --count 2 --size 4M --capability 1 --)
start_broker --backend=auto --qemu-users=nobody --no-check-cgroup
check_eq "capability 1: Backend=auto takes kvm, and with no Count= the kernel's whole pool" '"kvm" 2 0' \
    "$(prop Backend) $(prop TotalRmas) $(prop HeldElsewhereRmas)"
check_match "... its log line says why" "Backend=auto: using the kvm backend: KVM_CAP_PPC_RMA=1: this kernel has an RMA pool" \
    "$(cat "$TEST_DIR/broker.log")"
check "... and it exits cleanly" stop_broker
: >"$TEST_DIR/broker.log"
BROKER_WRAP=("$FAKE" --count 3 --size 4M --capability 2 --)
start_broker --backend=kvm --qemu-users=nobody --no-check-cgroup
check_eq "capability 2, Backend=kvm with no Count=: the kernel's whole pool, no phantom slots" "3 3 0" \
    "$(prop TotalRmas) $(prop FreeRmas) $(prop HeldElsewhereRmas)"
check_match "... the log says the capability" "Backend=kvm: KVM_CAP_PPC_RMA=2: this kernel has an RMA pool and every guest needs an RMA" \
    "$(cat "$TEST_DIR/broker.log")"
check "... and it exits cleanly" stop_broker
: >"$TEST_DIR/broker.log"

# Kernels that answer badly.
out=$(run_broker_once "$FAKE" --count 2 --size 3M -- "$BROKERD" --backend=kvm); status=$?
check "an RMA size that is not a power of two is refused" test $status -ne 0
check_match "... naming what the kernel returned" "KVM_ALLOCATE_RMA returned rma_size=3145728, which is not a power of two" "$out"
out=$(run_broker_once "$FAKE" --count 0 --size 4M -- "$BROKERD" --backend=kvm); status=$?
check "a kernel pool with no RMA left is refused" test $status -ne 0
check_match "... saying who may hold them" "The kernel's RMA pool is empty .*kvm_rma_count=" "$out"

# Count=4 on a pool of 3: the missing slot is shown, never hidden.
BROKER_WRAP=("$FAKE" --count 3 --size 4M --capability 1 --status-file "$TEST_DIR/kernel.status" --)
start_broker --backend=kvm --count=4 --qemu-users=nobody --no-check-cgroup
check_eq "Backend kvm, capability 1, the kernel's RMA size" "\"kvm\" 1 $SIZE 4" \
    "$(prop Backend) $(prop KernelCapability) $(prop RmaSize) $(prop TotalRmas)"
check_eq "the slot the kernel could not fill is held-elsewhere" "free=3 leased=0 held-elsewhere=1" "$(counts)"
check_match "the log says so" "Count=4, but the kernel's RMA pool gave 3 now; the other 1 slots stay held-elsewhere" \
    "$(cat "$TEST_DIR/broker.log")"
check_match "Size= does not apply: the log says the kernel decides" "The kernel's RMAs are 4 MiB each" \
    "$(cat "$TEST_DIR/broker.log")"
check "broker exits cleanly" stop_broker

BROKER_WRAP=("$FAKE" --count 2 --size 4M --status-file "$TEST_DIR/kernel.status" --)
start_broker --backend=kvm --count=auto --qemu-users=nobody --no-check-cgroup
check_eq "Count=auto takes the kernel's whole pool" "2 0 2" "$(prop TotalRmas) $(kernel free) $(kernel in_use)"

# A tenant writes, exits; the RMA goes back to the kernel and comes back zeroed.
bus_call Reserve sss "$UUID_A" dom-a "" >/dev/null
as_nobody_fifo a claim "$UUID_A" tenant-a-bytes
check "a claimant as nobody gets a zeroed RMA it cannot resize or seal" wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/a.out"
fd=$(ls -l /proc/$CLIENT_PID/fd | grep -o '[0-9]* -> /memfd:kvm-rma' | cut -d' ' -f1)
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat /proc/$CLIENT_PID/fd/$fd 2>&1)
check_match "nobody cannot reopen the RMA by path, as with a real anonymous inode" "Permission denied" "$out"
allocations=$(kernel allocations)
close_fifo a
wait "$CLIENT_PID"
check "the lease ends and the slot is free again" wait_until 10 prop_is FreeRmas 2
check_eq "the broker gave the RMA back and took it again from the kernel" $((allocations + 1)) "$(kernel allocations)"
bus_call Reserve sss "$UUID_B" dom-b "" >/dev/null
as_nobody_fifo b claim "$UUID_B"
check "the next tenant of that RMA reads only zeroes (the broker's scrub; this kernel never zeroes)" \
    wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/b.out"
diag "$(cat "$TEST_DIR/b.out")"
close_fifo b
wait "$CLIENT_PID"
check "its lease ends" wait_until 10 prop_is FreeRmas 2

# The claimant passes its RMA to a child and exits: the kernel has no RMA back.
bus_call Reserve sss "$UUID_A" dom-a "" >/dev/null
as_nobody_fifo h handoff "$UUID_A" tenant-h-bytes
wait "$CLIENT_PID"
check "the claimant's lease ends" wait_until 10 prop_is LeasedRmas 0
check "the slot is held-elsewhere while the child maps the old RMA" wait_until 10 prop_is HeldElsewhereRmas 1
check_eq "counts" "free=1 leased=0 held-elsewhere=1" "$(counts)"
bus_call Reserve sss "$UUID_B" dom-b "" >/dev/null
out=$(bus_call Reserve sss "$UUID_C" dom-c "" 2>&1)
check_match "no third domain: the kernel's pool holds 2" "No free RMA" "$out"
as_nobody_fifo b2 claim "$UUID_B" tenant-b-bytes
check "the other slot's tenant reads zeroes" wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/b2.out"
close_fifo h
check "the old holder reads only the old tenant's bytes" \
    wait_until 10 grep -qx 'old-region-reads tenant-h-bytes' "$TEST_DIR/h.out"
check "once the kernel has the RMA back, the slot is free (retried with backoff)" \
    wait_until 20 prop_is HeldElsewhereRmas 0
check_eq "counts" "free=1 leased=1 held-elsewhere=0" "$(counts)"
bus_call Reserve sss "$UUID_C" dom-c "" >/dev/null
as_nobody_fifo c claim "$UUID_C"
check "that slot's next tenant reads zeroes" wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/c.out"
close_fifo b2
close_fifo c
check "both leases end" wait_until 10 prop_is FreeRmas 2
check "broker exits cleanly" stop_broker
check_eq "every RMA is back in the kernel's pool" "2 0" "$(kernel free) $(kernel in_use)"

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
