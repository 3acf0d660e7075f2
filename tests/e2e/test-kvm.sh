#!/usr/bin/env bash
# End to end: the kvm backend, on the kernel's own RMA pool as a POWER kernel of 2011
# kept it, played for the real, unmodified rma-brokerd by tests/helpers/
# rma-fake-power-kernel (seccomp user notification answers the open of /dev/kvm,
# KVM_CHECK_EXTENSION, KVM_CREATE_VM and KVM_ALLOCATE_RMA, so the run is the same whether
# or not this host has KVM; nothing else is faked). The fake kernel never zeroes a region and
# takes one back only when no fd and no mapping of it is left, like the real one. Then
# `virsh start` of ppc64 pseries guests under TCG, through a private libvirtd:
#   - QEMU cannot reopen the RMA by path, so the wrapper hands it over through
#     librma-qemu-fd.so, and the guest reads at 0x0c000000 the bytes written through the
#     region at 192 MiB (and the region holds what QEMU put at guest address 0);
#   - an exhausted pool is refused through `virsh start` with the broker's message;
#   - a QEMU killed with -9 gives its slot back only once the kernel has the RMA back;
#   - the next tenant of the slot reads zeros: the broker's own scrub, since the kernel
#     does not zero.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
e2e_begin kvm "run libvirtd"
HOLDER_PID=
cleanup() {
    [ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null
    e2e_cleanup
}
trap cleanup EXIT

RMA_MIB=256 OFFSET=$((192 << 20))
DOM_A=rma-kvm-a-$$ UUID_A=8e1c2d3e-0000-4000-8000-00000000001a
DOM_B=rma-kvm-b-$$ UUID_B=8e1c2d3e-0000-4000-8000-00000000001b
DOM_C=rma-kvm-c-$$ UUID_C=8e1c2d3e-0000-4000-8000-00000000001c
kernel() { grep "^$1 " "$TEST_DIR/kernel.status" | cut -d' ' -f2; }
# region_of QEMU_PID: QEMU's fd of its RMA (root may open the fake kernel's stand-in).
region_of() {
    local fd
    for fd in /proc/$1/fd/*; do
        [[ "$(readlink "$fd")" == "/memfd:kvm-rma (deleted)" ]] && { echo "$fd"; return; }
    done
}

BROKER_WRAP=("$BUILD_DIR/tests/rma-fake-power-kernel" --count 2 --size ${RMA_MIB}M --capability 2
             --status-file "$TEST_DIR/kernel.status" --)
start_private_bus
start_broker --backend=auto --qemu-users=libvirt-qemu
check_match "Backend=auto chose kvm, saying why" "Backend=auto: using the kvm backend: KVM_CAP_PPC_RMA=2" \
    "$(cat "$TEST_DIR/broker.log")"
check_eq "Backend, KernelCapability, RmaSize and TotalRmas are what the kernel gave" \
    "\"kvm\" 2 $((RMA_MIB << 20)) 2" "$(prop Backend) $(prop KernelCapability) $(prop RmaSize) $(prop TotalRmas)"
check_eq "the broker holds the kernel's whole pool" "0 2" "$(kernel free) $(kernel in_use)"

write_libvirt_shims "$TEST_DIR/run/broker.sock"
export SANDBOX_VIRTLOGD=1
check "private libvirtd starts" sandbox_start "$TEST_DIR/bin/50-rma-broker"
# Bigger than the RMA: $DOM_A 1 GiB in two cells of 512 MiB, $DOM_B 1 GiB without cells.
for d in "$DOM_A $UUID_A 512 512" "$DOM_B $UUID_B 1024 flat" "$DOM_C $UUID_C $RMA_MIB"; do
    set -- $d
    sandbox_domain_xml "$1" "$2" "$WRAPPER" "${@:3}" | sed 's/ tenant="e2e"//' >"$TEST_DIR/$1.xml"
    sandbox_virsh define "$TEST_DIR/$1.xml" >/dev/null
done
memory0() { sandbox_dtb_memory "$1" | grep '^memory@0 '; }

check "virsh start $DOM_A gets a kernel RMA" sandbox_virsh start "$DOM_A"
QEMU_A=$(sandbox_qemu_pid "$DOM_A")
check_match "the wrapper found the RMA not reopenable and handed it over through librma-qemu-fd.so" \
    "not reopenable by path: Permission denied; QEMU opens it through librma-qemu-fd.so" \
    "$(grep '^qemu-rma:' "$(sandbox_domain_log "$DOM_A")")"
check_match "QEMU (as libvirt-qemu) maps the RMA in full" "memfd:kvm-rma" "$(grep kvm-rma "/proc/$QEMU_A/maps")"
REGION_A=$(region_of "$QEMU_A")
python3 -c 'import mmap, os, sys
m = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), int(sys.argv[2]))
m[int(sys.argv[3]):int(sys.argv[3]) + 8] = b"POWERrma"' "$REGION_A" $((RMA_MIB << 20)) $OFFSET
check_match "the guest reads at 0x0c000000 what was written through the RMA" "0c000000: 0x504f5745 0x52726d61" \
    "$(sandbox_xp "$DOM_A" $OFFSET)"
region0=$(python3 -c 'import mmap, os, sys
m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 4096, prot=mmap.PROT_READ)
print("0x%08x 0x%08x" % (int.from_bytes(m[0x100:0x104], "big"), int.from_bytes(m[0x104:0x108], "big")))' "$REGION_A")
check_match "and the RMA holds what QEMU put at guest address 0x100 (firmware)" "00000100: $region0" "$(sandbox_xp "$DOM_A" 0x100)"

check_eq "$DOM_A (two cells of 512 MiB) is told memory@0 = the kernel's RMA" "memory@0 0x0 0x10000000 0" "$(memory0 "$DOM_A")"
check "virsh start $DOM_B gets the second RMA" sandbox_virsh start "$DOM_B"
check_eq "$DOM_B (1 GiB, no cells) is told memory@0 = the kernel's RMA" "memory@0 0x0 0x10000000 0" "$(memory0 "$DOM_B")"
out=$(sandbox_virsh start "$DOM_C" 2>&1); status=$?
check "virsh start $DOM_C fails: the kernel's pool is exhausted" test $status -ne 0
check_match "... with the broker's PoolExhausted message" \
    "rma-broker: No free RMA for domain $DOM_C: all 2 RMAs of 256 MiB are taken" "$out"

# A process that still maps A's RMA keeps it from the kernel after QEMU is killed.
python3 -c 'import mmap, os, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 4096, prot=mmap.PROT_READ)
print("mapped", flush=True)
time.sleep(600)' "$REGION_A" >"$TEST_DIR/holder.out" &
HOLDER_PID=$!
wait_until 10 grep -q mapped "$TEST_DIR/holder.out"
kill -9 "$QEMU_A"
check "kill -9 of $DOM_A's QEMU ends its lease" wait_until 20 prop_is LeasedRmas 1
sleep 1.5
check_eq "while another process maps the RMA the kernel has it not, and the slot is held-elsewhere" \
    "0 1 0" "$(kernel free) $(prop HeldElsewhereRmas) $(prop FreeRmas)"
kill "$HOLDER_PID"; wait "$HOLDER_PID" 2>/dev/null; HOLDER_PID=
check "once the last mapping is gone the broker gets the RMA back; the slot is free" \
    wait_until 20 prop_is FreeRmas 1
check_eq "and the broker holds the whole pool again" "0 2" "$(kernel free) $(kernel in_use)"
check_match "the log says the kernel had no RMA to give meanwhile" "the kvm backend has no region to give now" \
    "$(cat "$TEST_DIR/broker.log")"

sandbox_virsh destroy "$DOM_A" >/dev/null 2>&1
check "virsh start $DOM_C gets the scrubbed RMA" sandbox_virsh start "$DOM_C"
check_match "the next tenant reads zeros where the last one's bytes were (the kernel does not zero)" \
    "0c000000: 0x00000000 0x00000000" "$(sandbox_xp "$DOM_C" $OFFSET)"
sandbox_virsh destroy "$DOM_B" >/dev/null
sandbox_virsh destroy "$DOM_C" >/dev/null
check "both leases end" wait_until 20 prop_is FreeRmas 2
check "broker exits cleanly" stop_broker
if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
