#!/usr/bin/env bash
# Integration: a restart loses nothing (without systemd: the lease registry and
# pidfd_getfd). The real broker is killed with -9 while clients hold leases, a
# reservation waits, and other clients are in the middle of claiming; started again on
# the same runtime dir, it must re-adopt every live lease on its slot (the holder keeps
# its bytes, the lease still ends when it exits), free the slot of a holder that died
# while it was down, restore the reservation, and keep quotas. A registry made garbage
# is reported, and the leases rebuilt from the running processes; a region passed on
# stays held-elsewhere across the restart.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: children run as nobody, and pidfd_getfd needs CAP_SYS_PTRACE"
    exit 0
fi

make_test_dir restart
LOAD_PID=
cleanup() {
    [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null
    close_all_fifos
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

POLICY=$TEST_DIR/policy.d
mkdir -p "$POLICY"
cat >"$POLICY/10-tenants.conf" <<'CONF'
[Tenant capped]
MaxRmas=1
Domains=cap-*

[Tenant open]
CONF
printf '[Defaults]\nTenant=open\n' >"$POLICY/00-defaults.conf"
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
counts() { echo "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
broker() { start_broker --backend=memfd --count=6 --size=4M --qemu-users=nobody --no-check-cgroup --policy-dir="$POLICY"; }
slot_of() { bus_call ListRmas | grep -oE "[0-9]+ \"[a-z-]+\" \"$1\"" | cut -d' ' -f1; }

start_private_bus
broker
bus_call Reserve sss "$(uuid 1)" cap-a "" >/dev/null
# A holder's command line names its domain as QEMU's would (-uuid, -name): a rebuild
# of the registry finds leases by that.
as_nobody_fifo a claim "$(uuid 1)" bytes-of-a -uuid "$(uuid 1)" -name guest=cap-a,debug-threads=on
PID_A=$CLIENT_PID
bus_call Reserve sss "$(uuid 2)" web-b "" >/dev/null
as_nobody_fifo b claim "$(uuid 2)" bytes-of-b
PID_B=$CLIENT_PID
bus_call Reserve sss "$(uuid 3)" web-c "" >/dev/null
check "two leases and a reservation" wait_until 10 prop_is LeasedRmas 2
SLOT_A=$(slot_of "$(uuid 1)") SLOT_C=$(slot_of "$(uuid 3)")
out=$(bus_call Reserve sss "$(uuid 4)" cap-d "" 2>&1)
check_match "the capped tenant's second domain is refused" "MaxRmas=1" "$out"
check "the registry holds a checksummed record per slot" grep -q "slot=$SLOT_A state=leased uuid=$(uuid 1) domain=cap-a tenant=capped .*pid=$PID_A .* sum=" "$TEST_DIR/run/leases"

# Other clients keep reserving and claiming while the broker is killed.
# (The load's processes must not hold the holders' fifos open.)
eval '(
    i=100
    while :; do
        i=$((i + 1))
        "$TEST_CLIENT" reserve "$(uuid $i)" load-$i >/dev/null 2>&1 &&
            echo | setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TEST_CLIENT" claim "$(uuid $i)" >/dev/null 2>&1
    done
) '"$(for fd in "${FIFOS[@]}"; do printf ' %s>&-' "$fd"; done)"' &'
LOAD_PID=$!
sleep 1
kill9_broker
kill "$LOAD_PID"; wait "$LOAD_PID" 2>/dev/null; LOAD_PID=
# b's holder dies while no broker runs.
close_fifo b
wait "$PID_B"
broker
check "the broker starts again on the same runtime dir" broker_alive
check_match "lease a is re-adopted on its slot, with its pid" "^$SLOT_A \"leased\" \"$(uuid 1)\" \"cap-a\" \"capped\" $PID_A\$" "$(leases)"
check_match "the log says how" "re-adopted the lease of domain cap-a .*pid $PID_A .*region reopened by its kernel handle" "$(cat "$TEST_DIR/broker.log")"
check_match "b's holder died while the broker was down: said so" "the QEMU of domain web-b .* exited while rma-brokerd was down" \
    "$(cat "$TEST_DIR/broker.log")"
check_eq "b's slot is free, the reservation is back on its slot" "1 $SLOT_C" "$(prop LeasedRmas) $(slot_of "$(uuid 3)")"
# The load's last reservation, made before the kill and not claimed, is restored too
# (a claim in flight fails on its side, and its slot is freed).
load=$(bus_call ListRmas | grep -oE '"reserved" "[0-9a-f-]+" "load-' | cut -d'"' -f4)
check "at most the load's last reservation is back besides ours" test "$(wc -w <<<"$load")" -le 1
for u in $load; do bus_call Release s "$u" >/dev/null; done
check_eq "counts add up: 6 slots, one lease, one reservation" "free=4 reserved=1 leased=1 held-elsewhere=0" "$(counts)"
out=$(bus_call Reserve sss "$(uuid 4)" cap-d "" 2>&1)
check_match "the quota still holds: the capped tenant's second domain is refused" "MaxRmas=1" "$out"

# The re-adopted lease is a lease: its holder still has its bytes, and its exit ends it.
close_fifo a
wait "$PID_A"
check "the re-adopted lease ends when its holder exits" wait_until 10 prop_is LeasedRmas 0
bus_call Release s "$(uuid 3)" >/dev/null
check_eq "every slot is free again" 6 "$(prop FreeRmas)"

# A garbage registry: reported, and the lease rebuilt from what the QEMU cannot forge:
# libvirt's status XML (its pid, name and uuid) and the hook's record (its tenant). Its
# command line names another domain's uuid, as a compromised QEMU could make it show.
bus_call Reserve sss "$(uuid 5)" cap-e "" >/dev/null
as_nobody_fifo e claim "$(uuid 5)" bytes-of-e -uuid "$(uuid 9)" -name guest=cap-x,debug-threads=on
PID_E=$CLIENT_PID
check "e holds a lease" wait_until 10 prop_is LeasedRmas 1
libvirt_status cap-e "$(uuid 5)" "$PID_E"
hook_record "$(uuid 5)" cap-e ""
SLOT_E=$(slot_of "$(uuid 5)")
kill9_broker
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_E + 1) * 512 + 20)) conv=notrunc status=none
broker
check_match "the garbage is reported" "Lease registry: .* 1 of 6 slot records are garbage or missing" "$(cat "$TEST_DIR/broker.log")"
check_match "and the lease rebuilt as libvirt recorded the process, not as its forged -uuid and -name say" \
    "^$SLOT_E \"leased\" \"$(uuid 5)\" \"cap-e\" \"capped\" $PID_E\$" "$(leases)"
check_match "the uuid its command line shows is not held: that domain can still start" "^u [0-9]+" \
    "$(bus_call Reserve sss "$(uuid 9)" web-x "")"
bus_call Release s "$(uuid 9)" >/dev/null
check_match "the log says so" "Lease registry rebuilt from the running processes: 1 lease" "$(cat "$TEST_DIR/broker.log")"
out=$(bus_call Reserve sss "$(uuid 6)" cap-f "" 2>&1)
check_match "the rebuilt lease counts for the quota" "MaxRmas=1" "$out"
close_fifo e
wait "$PID_E"
check "its lease ends when it exits" wait_until 10 prop_is LeasedRmas 0

# A region passed on stays out of the pool across a restart.
bus_call Reserve sss "$(uuid 7)" web-g "" >/dev/null
as_nobody_fifo g handoff "$(uuid 7)" bytes-of-g
wait "$CLIENT_PID"
check "a claimant passed its region to a child and exited: held-elsewhere" wait_until 10 prop_is HeldElsewhereRmas 1
kill9_broker
broker
check_eq "after the restart the slot is still held-elsewhere" 1 "$(prop HeldElsewhereRmas)"
check_match "found by its kernel handle: the child still maps it" "its old region still exists \(region reopened by its kernel handle\); the slot is free once no process holds it" \
    "$(cat "$TEST_DIR/broker.log")"
close_fifo g
check "the child reads only its old bytes" wait_until 10 grep -qx 'old-region-reads bytes-of-g' "$TEST_DIR/g.out"
check "once it lets go the slot is free" wait_until 10 prop_is HeldElsewhereRmas 0
check_eq "no slot was ever handed out twice: all free at the end" 6 "$(prop FreeRmas)"
check "broker exits cleanly" stop_broker

# A downgrade with a newer broker's registry in place: this one refuses to start and
# touches nothing of it (its leases stay for the version that wrote them).
python3 - "$TEST_DIR/run/leases" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
header = b"rma-broker-registry v2 backend=memfd size=4194304 count=6 layout=new"
data[0:512] = header + b" " * (511 - len(header)) + b"\n"
open(path, "wb").write(data)
PY
before=$(md5sum <"$TEST_DIR/run/leases")
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/run" --backend=memfd --count=6 --size=4M --qemu-users=nobody \
    --no-check-cgroup --policy-dir="$POLICY" 2>&1); status=$?
check "a registry in a later format (v2): the broker refuses to start" test $status -ne 0
check_match "... saying which format, and what to do" \
    "leases is in format v2, written by a newer rma-brokerd; this one reads v1. Refusing to start, so that the leases it records stay as they are: run that newer rma-brokerd again" "$out"
check_eq "... and leaves the registry as it was" "$before" "$(md5sum <"$TEST_DIR/run/leases")"

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
