#!/usr/bin/env bash
# Integration: the pool is a real bound on the memory tenants hold (memfd and hugetlb).
# A claimant that passes its region to another process and exits ends its lease, but
# its slot stays held-elsewhere until the kernel reports the old region gone (no fd and
# no mapping left anywhere); only then does the slot get a fresh region. The old holder
# never sees the next tenant's bytes, and the next tenant never sees the old one's.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: children run as nobody"
    exit 0
fi

make_test_dir bound
OLD_NR=
cleanup() {
    [ -n "$OLD_NR" ] && echo "$OLD_NR" >"$HUGEPAGES_2M/nr_hugepages"
    close_all_fifos
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

UUID_A=4dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_B=5dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_C=6dea22b3-1d52-d8f3-2516-782e98ab3fa0
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }


# scenario BACKEND-ARGS...: the whole story on one backend.
scenario() {
    B=${1#--backend=}
    rm -f "$TEST_DIR/run/leases"   # a fresh pool, not a restart
    : >"$TEST_DIR/broker.log"
    start_broker "$@" --count=2 --size=4M --qemu-users=nobody --no-check-cgroup
    check_eq "$B: pool of 2 starts free" "free=2 leased=0 held-elsewhere=0" "$(counts)"

    bus_call Reserve sss "$UUID_A" dom-a "" >/dev/null
    as_nobody_fifo a_$B handoff "$UUID_A" tenant-a-bytes
    wait "$CLIENT_PID"
    check "$B: the claimant wrote its bytes, passed the region to a child and exited" \
        grep -q '^child [0-9]' "$TEST_DIR/a_$B.out"
    check "$B: its lease ended" wait_until 10 prop_is LeasedRmas 0
    check_eq "$B: the slot is held-elsewhere while the child maps the old region, not free" \
        "free=1 leased=0 held-elsewhere=1" "$(counts)"
    check "$B: the log says why, once it has lasted a second" wait_until 10 \
        grep -q "RMA slot 0: its old region is still open or mapped in another process" "$TEST_DIR/broker.log"

    bus_call Reserve sss "$UUID_B" dom-b "" >/dev/null
    out=$(bus_call Reserve sss "$UUID_C" dom-c "" 2>&1)
    check_match "$B: a third domain is refused: the pool holds 2, and 2 regions live" "No free RMA" "$out"

    as_nobody_fifo b_$B claim "$UUID_B" tenant-b-bytes
    PID_B=$CLIENT_PID
    check "$B: the next tenant (slot 1) reads only zeroes and writes its own bytes" \
        wait_until 10 grep -q '^held ' "$TEST_DIR/b_$B.out"

    close_fifo a_$B
    check "$B: the old holder still reads the old tenant's bytes, never the next tenant's" \
        wait_until 10 grep -qx 'old-region-reads tenant-a-bytes' "$TEST_DIR/a_$B.out"
    check "$B: once the old region is gone, the slot is free again" wait_until 10 prop_is HeldElsewhereRmas 0
    check_eq "$B: counts: one free, one leased" "free=1 leased=1 held-elsewhere=0" "$(counts)"
    check_match "$B: the log says the last holder let go" "RMA slot 0: its old region was released by its last holder" \
        "$(cat "$TEST_DIR/broker.log")"

    bus_call Reserve sss "$UUID_C" dom-c "" >/dev/null
    as_nobody_fifo c_$B claim "$UUID_C" tenant-c-bytes
    check "$B: slot 0's next tenant reads only zeroes" wait_until 10 grep -q '^held ' "$TEST_DIR/c_$B.out"
    close_fifo b_$B
    close_fifo c_$B
    wait "$PID_B" "$CLIENT_PID"
    check "$B: both leases end and both slots come back" wait_until 10 prop_is FreeRmas 2
    check "$B: broker exits cleanly" stop_broker
}

start_private_bus
scenario --backend=memfd
# hugetlb: 2 MiB pages for exactly the pool, reserved for the test and put back.
if [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
    lock_hugepages
    OLD_NR=$(cat "$HUGEPAGES_2M/nr_hugepages")
    set_free_hugepages 4 || not_ok "hugetlb: 4 huge pages of 2 MiB could not be made free"
    printf '[Broker]\nHugePageSize=2M\n' >"$TEST_DIR/huge.conf"
    scenario --backend=hugetlb --config="$TEST_DIR/huge.conf"
    echo "$OLD_NR" >"$HUGEPAGES_2M/nr_hugepages"
else
    not_ok "hugetlb: this kernel has no 2 MiB huge pages"
fi

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
