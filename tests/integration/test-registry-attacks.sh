#!/usr/bin/env bash
# Integration: what root (or a mistake) can do to the lease registry and the files read at
# start, against the built broker on a pool of 2 (memfd, no systemd), with nobody as the
# QEMU user. Each attack ends with the invariant: live root-created regions <= the pool.
#   - a FIFO at the registry's path, or in libvirt's status dir, does not hang the start;
#   - a full /run when root truncates the registry loses no lease record;
#   - a backup of the registry restored in place (same inode, size and header) is seen by
#     the running broker and written again; restored just before a kill -9, the next
#     broker still backs no more than Count regions (census of the marked regions), also
#     when the slots' later regions are in flight where no census sees them (record-sums),
#     and when record-sums is restored with it (the census alone);
#   - a lease that cannot be proven after a rebuild still counts against its tenant.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: children run as nobody, re-adoption needs CAP_SYS_PTRACE"
    exit 0
fi

make_test_dir registry-attacks
cleanup() {
    close_all_fifos
    stop_broker
    stop_private_bus
    mountpoint -q "$TEST_DIR/run" && umount "$TEST_DIR/run"
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody --no-check-cgroup)
broker() { start_broker "${BROKER_ARGS[@]}" "$@"; }
at_most_pool() { [ $(($(live_regions) + $1)) -le 2 ]; }
# claim_as_nobody NAME N: domain dom-N reserved and claimed by nobody, held on fifo NAME.
claim_as_nobody() {
    bus_call Reserve sss "$(uuid "$2")" "dom-$2" "${3-}" >/dev/null
    as_nobody_fifo "$1" claim "$(uuid "$2")" "bytes-$2"
    wait_until 10 grep -q "^held" "$TEST_DIR/$1.out"
}

start_private_bus
export RMA_BROKER_SOCKET=$TEST_DIR/run/broker.sock

# 7a. A FIFO at the registry's path and one in libvirt's status dir: the start does not
# hang on either, and the log names each.
mkdir -p "$TEST_DIR/run" "$TEST_DIR/libvirt-qemu"
chmod 0755 "$TEST_DIR/run"
mkfifo "$TEST_DIR/run/leases" "$TEST_DIR/libvirt-qemu/stuck.xml"
broker
check "a FIFO at the registry's path and in the status dir: the broker starts and answers" \
    bash -c "busctl --system status org.rmabroker.Broker1 >/dev/null"
check_eq "... the registry unread, as a garbage one: nothing proves either old region gone" \
    "free=0 leased=0 held-elsewhere=2" "$(counts)"
check "... the log names the registry's FIFO" log_has "$TEST_DIR/run/leases is a FIFO, not a regular file"
check "... and the status dir's" log_has "$TEST_DIR/libvirt-qemu/stuck.xml is a FIFO, not libvirt's status XML"
check "... and the registry is a regular file again" test -f "$TEST_DIR/run/leases"
stop_broker
rm -rf "$TEST_DIR/run" "$TEST_DIR/libvirt-qemu"

# 7b. A leased region's mode: read-write (QEMU, as the QEMU user, reopens it as
# /proc/self/fd/N for its memory-backend-file; 0000 would refuse that), never executable
# (it was 0777). Played as under the shipped unit (no CAP_SYS_ADMIN, no CAP_DAC_OVERRIDE):
# the signed mark naming the lease is set while the region is still the broker's alone,
# and a kill -9 still re-adopts the lease through the region's kernel handle.
BROKER_WRAP=(setpriv --inh-caps=-sys_admin,-dac_override --bounding-set=-sys_admin,-dac_override --)
broker
claim_as_nobody mode 50
region_link() {   # region_link PID: the /proc path of its region fd
    local fd
    for fd in /proc/$1/fd/*; do
        [[ "$(readlink "$fd")" == /memfd:rma-broker-slot-* ]] && { echo "$fd"; return; }
    done
}
REGION=$(region_link "$CLIENT_PID")
check_eq "the leased region is mode 0666, not executable" "666" "$(stat -L -c %a "$REGION")"
out=$(as_nobody /usr/bin/python3 -c 'import os, sys; os.open(sys.argv[1], os.O_RDWR); print("reopened")' "$REGION" 2>&1)
check_eq "the QEMU user reopens it by path, as QEMU does" "reopened" "$out"
check_match "the mark names the lease, signed" "^slot=[01] pool=[0-9]+:[0-9]+ uuid=$(uuid 50) tenant=[^ ]* mac=[0-9a-f]{64}$" \
    "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.rma-broker").decode())' "$REGION" 2>&1)"
kill9_broker
broker
check_match "after kill -9 the lease is re-adopted" \
    "\"leased\" \"$(uuid 50)\"" "$(leases)"
check "... by its kernel handle" log_has "re-adopted the lease of domain dom-50 .*region reopened by its kernel handle"
close_fifo mode
check "the slot is free again once the claimant lets go" wait_until 10 prop_is FreeRmas 2
stop_broker
BROKER_WRAP=()
rm -rf "$TEST_DIR/run"

# 7c. /run full when root truncates the registry: the rewrite goes into the spare whose
# space was reserved beforehand, so the next start (the space still taken) finds every
# record. The runtime dir is a tmpfs of its own, filled to the last block.
mkdir -p "$TEST_DIR/run"
mount -t tmpfs -o size=256k,mode=0755 rma-test-run "$TEST_DIR/run"
broker
claim_as_nobody full 40
dd if=/dev/zero of="$TEST_DIR/run/filler" bs=4k status=none 2>/dev/null
check "/run is full" bash -c "! head -c 4096 /dev/zero >'$TEST_DIR/run/probe' 2>/dev/null"
rm -f "$TEST_DIR/run/probe"
: >"$TEST_DIR/run/leases"
check "root truncates the registry under a full /run: written again" \
    wait_until 8 grep -q "uuid=$(uuid 40)" "$TEST_DIR/run/leases"
kill9_broker
broker
check_match "after kill -9, with /run still full, the lease is back" "\"leased\" \"$(uuid 40)\"" "$(leases)"
check_eq "... and no slot is lost to held-elsewhere" "free=1 leased=1 held-elsewhere=0" "$(counts)"
close_fifo full
stop_broker
umount "$TEST_DIR/run"

# 2. Root restores a backup of the registry in place (cp: same inode, size and header),
# taken while both slots were free, after two leases; then kill -9 at once, before any
# check of the running broker. The next broker must not believe the backup: the census of
# the live regions it marked keeps both slots out, never a fresh region beside each.
rm -rf "$TEST_DIR/run"
broker
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
claim_as_nobody b1 60
claim_as_nobody b2 61
check "two leases hold the pool" test "$(prop LeasedRmas)" = 2
cp "$TEST_DIR/leases.backup" "$TEST_DIR/run/leases"
kill9_broker
broker
check "after the backup and kill -9: live root-created regions <= 2" at_most_pool 0
check_eq "... both slots are held-elsewhere, not free" "free=0 leased=0 held-elsewhere=2" "$(counts)"
check "... and the log says the registry does not record them" log_has "that the lease registry does not record"
out=$(bus_call Reserve sss "$(uuid 62)" dom-62 "" 2>&1)
check_match "a third domain gets no region" "No free RMA" "$out"
close_fifo b1
close_fifo b2
check "once the claimants let go, the pool is whole again" wait_until 10 prop_is FreeRmas 2
stop_broker

# 2c. The same with record-sums restored too (a backup of the whole runtime dir): every
# record checks out. Taken while both slots were free, and the leases took those very
# regions: their kernel handles still reopen them, so the records are not believed.
rm -rf "$TEST_DIR/run"
broker
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
cp "$TEST_DIR/run/record-sums" "$TEST_DIR/sums.backup"
claim_as_nobody d1 70
claim_as_nobody d2 71
cp "$TEST_DIR/leases.backup" "$TEST_DIR/run/leases"
cp "$TEST_DIR/sums.backup" "$TEST_DIR/run/record-sums"
kill9_broker
broker
check "registry and record-sums restored, kill -9: live root-created regions <= 2" at_most_pool 0
check_eq "... both slots are held-elsewhere, not free" "free=0 leased=0 held-elsewhere=2" "$(counts)"
close_fifo d1
close_fifo d2
check "once the claimants let go, the pool is whole again" wait_until 10 prop_is FreeRmas 2
stop_broker

# 2d. Both restored, taken while two earlier leases ran: those leases ended and their
# regions are gone, the slots leased again since. The records name a live process no
# more and a region that is gone, and check out: only the census finds the later
# regions (this fails when the census is switched off).
rm -rf "$TEST_DIR/run"
broker
claim_as_nobody e1 72
claim_as_nobody e2 73
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
cp "$TEST_DIR/run/record-sums" "$TEST_DIR/sums.backup"
close_fifo e1
close_fifo e2
wait_until 10 prop_is FreeRmas 2
claim_as_nobody e3 74
claim_as_nobody e4 75
cp "$TEST_DIR/leases.backup" "$TEST_DIR/run/leases"
cp "$TEST_DIR/sums.backup" "$TEST_DIR/run/record-sums"
kill9_broker
broker
check "stale leases restored with their sums, kill -9: live root-created regions <= 2" at_most_pool 0
check_eq "... both slots are held-elsewhere, not free" "free=0 leased=0 held-elsewhere=2" "$(counts)"
close_fifo e3
close_fifo e4
check "once the claimants let go, the pool is whole again" wait_until 10 prop_is FreeRmas 2
stop_broker

# 2a. The same backup restored under a running broker that then lives on: within its 5 s
# check it sees every byte it did not write, and writes the registry again; a kill -9
# after that re-adopts both leases.
rm -rf "$TEST_DIR/run"
broker
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
claim_as_nobody b3 63
claim_as_nobody b4 64
cp "$TEST_DIR/leases.backup" "$TEST_DIR/run/leases"
check "the running broker writes the registry again within 5 s" \
    wait_until 8 grep -q "uuid=$(uuid 64)" "$TEST_DIR/run/leases"
check "... saying why" log_has "differs from what rma-brokerd wrote (a backup or another copy restored"
kill9_broker
broker
check_eq "after kill -9 both leases are re-adopted" "free=0 leased=2 held-elsewhere=0" "$(counts)"
check "invariant: live root-created regions <= 2" at_most_pool 0
close_fifo b3
close_fifo b4
check "the pool is whole again" wait_until 10 prop_is FreeRmas 2
stop_broker

# 2b. The backup names regions that are gone, while the slots' later regions live in flight
# only (an unread SCM_RIGHTS message: no /proc shows them, so no census finds them).
# Restored in place, then kill -9: the restored records are not the ones the broker last
# wrote (record-sums says so), so that their regions are gone proves nothing. Both slots
# stay pinned until root forgets them, never refilled beside the regions in flight
# (restart stress seed 47640).
rm -rf "$TEST_DIR/run"
broker
claim_as_nobody c1 65
claim_as_nobody c2 66
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
close_fifo c1
close_fifo c2
check "the backup's leases end and their regions go" wait_until 10 prop_is FreeRmas 2
flight=()
for n in 67 68; do
    bus_call Reserve sss "$(uuid $n)" "dom-$n" "" >/dev/null
    as_nobody_fifo "f$n" inflight "$(uuid $n)" "bytes-$n"
    wait_until 10 grep -q "^child [0-9]* inode" "$TEST_DIR/f$n.out"
    flight+=("$(sed -n 's/^child [0-9]* inode \([0-9]*\)$/\1/p' "$TEST_DIR/f$n.out")")
done
check "two regions in flight hold the pool" test "$(prop LeasedRmas)" = 2
cp "$TEST_DIR/leases.backup" "$TEST_DIR/run/leases"
kill9_broker
broker
check "after the backup and kill -9: live root-created regions, in flight included, <= 2" \
    test "$(live_regions "${flight[@]}")" -le 2
check_eq "... both slots are held-elsewhere (pinned), not refilled" "free=0 leased=0 held-elsewhere=2" "$(counts)"
check "... and the log says the records are not the last ones written" log_has "are not the ones rma-brokerd last wrote"
close_fifo f67
close_fifo f68
wait_until 10 grep -q "^old-region-reads" "$TEST_DIR/f67.out"
wait_until 10 grep -q "^old-region-reads" "$TEST_DIR/f68.out"
check_eq "once the regions in flight are let go, nothing proves it: still pinned" "free=0" "free=$(prop FreeRmas)"
for i in 0 1; do "$BUILD_DIR/rmactl/rmactl" forget-region "$i" >/dev/null; done
check "root forgets them: the pool is whole again" wait_until 10 prop_is FreeRmas 2
stop_broker

# 6. A lease whose record is torn, on a host where no libvirt status XML names its QEMU:
# no proof of the lease, so held-elsewhere, and it still counts against its tenant (gold,
# MaxRmas=1) by the region's signed mark, until the region is let go.
rm -rf "$TEST_DIR/run" "$TEST_DIR/libvirt-qemu"
mkdir -p "$TEST_DIR/policy.d"
printf '[Defaults]\nTenant=shared\n[Tenant gold]\nMaxRmas=1\n[Tenant shared]\n' >"$TEST_DIR/policy.d/10-test.conf"
broker --policy-dir="$TEST_DIR/policy.d"
claim_as_nobody g1 70 gold
SLOT=$(bus_call ListRmas | grep -oE "[0-9]+ \"leased\" \"$(uuid 70)\"" | cut -d' ' -f1)
kill9_broker
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT + 1) * 512 + 20)) conv=notrunc status=none
broker --policy-dir="$TEST_DIR/policy.d"
check_eq "the torn lease is held-elsewhere (no proof)" "free=1 leased=0 held-elsewhere=1" "$(counts)"
out=$(bus_call Reserve sss "$(uuid 71)" dom-71 gold 2>&1)
check_match "gold (MaxRmas=1) gets no second region while the first lives" "MaxRmas=1" "$out"
check "... the log says whose it is" log_has "it counts against tenant gold"
close_fifo g1
check "once the region is let go, the slot is free" wait_until 10 prop_is FreeRmas 2
out=$(bus_call Reserve sss "$(uuid 71)" dom-71 gold 2>&1)
check_match "... and gold may start its domain" "^u [0-9]+" "$out"
stop_broker

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(tail -60 "$TEST_DIR/broker.log")"; fi
tap_done
