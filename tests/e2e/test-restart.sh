#!/usr/bin/env bash
# End to end: a restart of rma-brokerd loses nothing, through a real libvirtd and
# `virsh start` of ppc64 pseries guests under TCG. The broker is killed with -9 while two
# guests run; one guest's QEMU is killed while no broker runs; the broker is started
# again on the same runtime dir. The running guest's lease is back on its slot (its
# bytes at 0x0c000000 untouched), the dead one's slot is free, the capped tenant's next
# domain is still refused through `virsh start`, and the re-adopted lease ends when its
# guest is destroyed, after which that domain starts. Then a lease whose registry record is
# lost is rebuilt from libvirtd's status XML and the hook's record.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
e2e_begin e2erestart "run libvirtd"

RMA_MIB=256 OFFSET=$((192 << 20))
DOM_A=cap-a-$$ UUID_A=8e1c2d3e-0000-4000-8000-00000000002a
DOM_B=cap-b-$$ UUID_B=8e1c2d3e-0000-4000-8000-00000000002b
DOM_C=web-c-$$ UUID_C=8e1c2d3e-0000-4000-8000-00000000002c
mkdir -p "$TEST_DIR/policy.d"
printf '[Defaults]\nTenant=open\n\n[Tenant capped]\nMaxRmas=1\nDomains=cap-*\n\n[Tenant open]\n' \
    >"$TEST_DIR/policy.d/10-tenants.conf"
broker() { start_broker --backend=memfd --count=3 --size=${RMA_MIB}M --qemu-users=libvirt-qemu \
    --policy-dir="$TEST_DIR/policy.d"; }
region_of() { # QEMU_PID: its fd of the region
    local fd
    for fd in /proc/$1/fd/*; do
        [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-"* ]] && { echo "$fd"; return; }
    done
}

start_private_bus
broker
write_libvirt_shims "$TEST_DIR/run/broker.sock"
export SANDBOX_VIRTLOGD=1
check "private libvirtd starts" sandbox_start "$TEST_DIR/bin/50-rma-broker"
# Bigger than the RMA: $DOM_A 1 GiB in two cells of 512 MiB, $DOM_C 1 GiB without cells.
for d in "$DOM_A $UUID_A 512 512" "$DOM_B $UUID_B $RMA_MIB" "$DOM_C $UUID_C 1024 flat"; do
    set -- $d
    sandbox_domain_xml "$1" "$2" "$WRAPPER" "${@:3}" | sed 's/ tenant="e2e"//' >"$TEST_DIR/$1.xml"
    sandbox_virsh define "$TEST_DIR/$1.xml" >/dev/null
done
memory0() { sandbox_dtb_memory "$1" | grep '^memory@0 '; }

check "virsh start $DOM_A (tenant capped)" sandbox_virsh start "$DOM_A"
check "virsh start $DOM_C (tenant open)" sandbox_virsh start "$DOM_C"
QEMU_A=$(sandbox_qemu_pid "$DOM_A") QEMU_C=$(sandbox_qemu_pid "$DOM_C")
check_eq "$DOM_C (1 GiB, no cells) is told memory@0 = the RMA" "memory@0 0x0 0x10000000 0" "$(memory0 "$DOM_C")"
printf 'RESTART!' | dd of="$(region_of "$QEMU_A")" bs=1 seek=$OFFSET conv=notrunc status=none
check_match "$DOM_A's guest reads the bytes written through its region" "0c000000: 0x52455354 0x41525421" \
    "$(sandbox_xp "$DOM_A" $OFFSET)"
out=$(sandbox_virsh start "$DOM_B" 2>&1)
check_match "virsh start $DOM_B is refused: tenant capped holds its MaxRmas=1" "MaxRmas=1" "$out"
before=$(leases)

kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=
kill -9 "$QEMU_C"
wait_until 20 sh -c "! kill -0 $QEMU_C 2>/dev/null"
broker
check "the broker starts again on the same runtime dir" broker_alive
check_eq "$DOM_A's lease is back on its slot, with its QEMU's pid" "$(grep "\"$UUID_A\"" <<<"$before")" "$(leases)"
check_match "the log says $DOM_C's QEMU exited while the broker was down" \
    "the QEMU of domain $DOM_C \(pid $QEMU_C\) exited while rma-brokerd was down" "$(cat "$TEST_DIR/broker.log")"
check_eq "counts: one leased, two free" "1 2" "$(prop LeasedRmas) $(prop FreeRmas)"
check_match "$DOM_A's guest still reads its bytes" "0c000000: 0x52455354 0x41525421" "$(sandbox_xp "$DOM_A" $OFFSET)"
check_eq "$DOM_A (two cells of 512 MiB) is told memory@0 = the RMA" "memory@0 0x0 0x10000000 0" "$(memory0 "$DOM_A")"
out=$(sandbox_virsh start "$DOM_B" 2>&1)
check_match "virsh start $DOM_B is still refused: the quota holds after the restart" "MaxRmas=1" "$out"

check "virsh destroy $DOM_A" sandbox_virsh destroy "$DOM_A"
check "the re-adopted lease ends with its QEMU" wait_until 20 prop_is LeasedRmas 0
check "now virsh start $DOM_B gets an RMA" sandbox_virsh start "$DOM_B"
check_match "... a scrubbed one" "0c000000: 0x00000000 0x00000000" "$(sandbox_xp "$DOM_B" $OFFSET)"

# Its registry record lost (torn) across a kill -9: the rebuild takes the domain from
# libvirtd's own status XML and the tenant from the hook's record, and gives the lease back.
before=$(leases)
SLOT_B=$(cut -d' ' -f1 <<<"$before")
kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_B + 1) * 512 + 20)) conv=notrunc status=none
LIBVIRT_STATUS_DIR=$SANDBOX/run/qemu broker
check_eq "$DOM_B's lost lease is rebuilt on its slot, tenant capped, from libvirt's status and the hook's record" \
    "$before" "$(leases)"
check_match "the log says how" "re-adopted the lease of domain $DOM_B .*rebuilt from libvirt's status and the hook's record" \
    "$(cat "$TEST_DIR/broker.log")"
out=$(sandbox_virsh start "$DOM_A" 2>&1)
check_match "the rebuilt lease counts for the quota: $DOM_A is refused" "MaxRmas=1" "$out"
sandbox_virsh destroy "$DOM_B" >/dev/null
sandbox_virsh destroy "$DOM_C" >/dev/null 2>&1
check "every slot comes back" wait_until 20 prop_is FreeRmas 3
check "broker exits cleanly" stop_broker
if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
