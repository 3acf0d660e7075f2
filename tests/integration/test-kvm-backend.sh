#!/usr/bin/env bash
# Integration: Backend=kvm. On this x86 host the kernel's answer is the real one
# (KVM_CAP_PPC_RMA=0: refused with a clear message). Then the unmodified broker runs on a
# POWER kernel's RMA pool as tests/helpers/rma-fake-power-kernel plays it: the pool is
# drained at start and shown as the kernel gave it, bad sizes are refused, every tenant
# gets a zeroed RMA though the kernel never zeroes one, and a slot whose RMA is still
# held elsewhere stays out of the pool until the kernel has it back.
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
bus_call() { busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 "$@"; }
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
kernel() { grep "^$1 " "$TEST_DIR/kernel.status" | cut -d' ' -f2; }
# run_broker_once ARGS...: run the broker until it exits (a refused start); its output.
run_broker_once() { timeout 20 "$@" --runtime-dir="$TEST_DIR/run-once" 2>&1; }

start_private_bus

# The real kernel of this x86 host.
out=$(run_broker_once "$BROKERD" --backend=kvm); status=$?
check "Backend=kvm on a kernel without an RMA pool refuses to start" test $status -ne 0
check_match "... naming KVM_CAP_PPC_RMA=0 and what to use instead" \
    "Backend=kvm cannot serve this host: KVM_CAP_PPC_RMA=0: .*use Backend=hugetlb with HugePageSize=, or Backend=memfd" "$out"

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
