#!/usr/bin/env bash
# End to end: the hugetlb backend. The test makes exactly 128 huge pages of 2 MiB free
# through /sys/kernel/mm/hugepages/hugepages-2048kB (whatever the host's default page size
# and free pages; the old count is put back, under a lock that keeps a concurrent run of
# the suite from changing it meanwhile), runs the built broker with
# Backend=hugetlb on a pool larger than the pages allow (the missing slot is shown as
# held-elsewhere), and `virsh start` of a ppc64 pseries guest gets a hugetlb region: QEMU
# maps it with 2 MiB pages, the guest reads bytes written through it, and the next tenant
# of the slot reads zeros.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
if [ "$(id -u)" -eq 0 ] && [ ! -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
    echo "not ok 1 - this kernel has no 2 MiB huge pages"
    echo "1..1"
    exit 1
fi
e2e_begin huge "reserve huge pages and run libvirtd"
lock_hugepages
OLD_NR=$(cat "$HUGEPAGES_2M/nr_hugepages")
cleanup() {
    e2e_cleanup
    echo "$OLD_NR" >"$HUGEPAGES_2M/nr_hugepages"
}
trap cleanup EXIT

RMA_MIB=256 OFFSET=$((192 << 20))
DOM=rma-huge-$$ UUID=8e1c2d3e-0000-4000-8000-00000000000a
free_pages() { cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages; }
# Free pages for exactly one region of the two the pool is configured for, whatever the
# host had free before.
check "the test made exactly 128 huge pages of 2 MiB free" set_free_hugepages $((RMA_MIB / 2))
printf '[Broker]\nHugePageSize=2M\n' >"$TEST_DIR/broker.conf"
start_private_bus
start_broker --config="$TEST_DIR/broker.conf" --backend=hugetlb --count=2 --size=${RMA_MIB}M --qemu-users=libvirt-qemu
check_eq "Backend is hugetlb" '"hugetlb"' "$(prop Backend)"
check_eq "TotalRmas shows the configured pool" 2 "$(prop TotalRmas)"
check_eq "the slot without pages is held-elsewhere, not hidden" "1 1" "$(prop FreeRmas) $(prop HeldElsewhereRmas)"
check_match "the log says the pool is smaller than configured" "the free huge pages hold 1 now; the other 1 slots stay held-elsewhere" \
    "$(cat "$TEST_DIR/broker.log")"

write_libvirt_shims "$TEST_DIR/run/broker.sock"
export SANDBOX_VIRTLOGD=1
check "private libvirtd starts" sandbox_start "$TEST_DIR/bin/50-rma-broker"
# 1 GiB without cells: the RMA on huge pages, the rest a pc-dimm of libvirt's RAM.
sandbox_domain_xml "$DOM" "$UUID" "$WRAPPER" 1024 flat | sed 's/ tenant="e2e"//' >"$TEST_DIR/$DOM.xml"
sandbox_virsh define "$TEST_DIR/$DOM.xml" >/dev/null

check "virsh start $DOM gets a hugetlb region" sandbox_virsh start "$DOM"
qemu=$(sandbox_qemu_pid "$DOM")
smaps=$(awk '/rma-broker-slot-/ {found = 1} found && /^KernelPageSize:/ {print; exit}' "/proc/$qemu/smaps")
check_match "QEMU maps the region with 2 MiB pages (/proc/$qemu/smaps)" "KernelPageSize: +2048 kB" "$smaps"
slot=$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
    grep -oE '[0-9]+ "leased"' | cut -d' ' -f1)
region=
for fd in /proc/$BROKER_PID/fd/*; do
    [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-$slot (deleted)" ]] && region=$fd
done
# hugetlbfs files take no write(2): map the region, as QEMU does.
python3 -c 'import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, int(sys.argv[2]))
m[int(sys.argv[3]):int(sys.argv[3]) + 8] = b"HUGEpage"' "$region" $((RMA_MIB << 20)) $OFFSET
check_match "the guest reads at 0x0c000000 what was written through the region" "0c000000: 0x48554745 0x70616765" "$(sandbox_xp "$DOM" $OFFSET)"
check_eq "the guest is told memory@0 = the RMA" "memory@0 0x0 0x10000000 0" "$(sandbox_dtb_memory "$DOM" | grep '^memory@0 ')"
check "virsh destroy $DOM" sandbox_virsh destroy "$DOM"
check "its slot comes back with a fresh region of fresh pages" wait_until 10 prop_is FreeRmas 1
check "virsh start $DOM again" sandbox_virsh start "$DOM"
check_match "the next tenant of the slot reads zeros there" "0c000000: 0x00000000 0x00000000" "$(sandbox_xp "$DOM" $OFFSET)"
sandbox_virsh destroy "$DOM" >/dev/null

# A hugepage-backed guest (<memoryBacking><hugepages/>, memfd source): 512 MiB without
# cells. The RMA is the broker's region; the other 256 MiB of node 0 stays on huge pages,
# a pc-dimm whose backend is libvirt's memfd with hugetlb.
DOM_HP=rma-huge-$$-hp UUID_HP=8e1c2d3e-0000-4000-8000-00000000000b
sandbox_domain_xml "$DOM_HP" "$UUID_HP" "$WRAPPER" 512 flat | sed 's/ tenant="e2e"//' |
    sed "s|<vcpu|<memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages><source type='memfd'/><access mode='shared'/></memoryBacking>\n  <vcpu|" \
    >"$TEST_DIR/$DOM_HP.xml"
check "define $DOM_HP (huge pages, memfd)" sandbox_virsh define "$TEST_DIR/$DOM_HP.xml"
wait_until 10 prop_is FreeRmas 1
check "the test made 128 more huge pages free, for the guest's own" set_free_hugepages $((256 / 2))
check "virsh start $DOM_HP" sandbox_virsh start "$DOM_HP"
qemu=$(sandbox_qemu_pid "$DOM_HP")
check_eq "$DOM_HP is told memory@0 = the RMA" "memory@0 0x0 0x10000000 0" "$(sandbox_dtb_memory "$DOM_HP" | grep '^memory@0 ')"
check_eq "... and has one node of 512 MiB" "1 nodes node 0 size: 512 MB " \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_HP" "info numa" 2>&1 | tr -d '\r' | grep -E 'nodes|size:' | tr '\n' ' ')"
check_match "the wrapper kept libvirt's backend for the rest: memfd with huge pages" \
    '"qom-type":"memory-backend-memfd".*"hugetlb":true.*"id":"rma-rest-node0"' \
    "$(tr '\0' '\n' <"/proc/$qemu/cmdline" | grep -F '"rma-rest-node0"' | head -1)"
smaps=$(awk '/memfd:memory-backend-memfd/ {found = 1} found && /^KernelPageSize:/ {print; exit}' "/proc/$qemu/smaps")
check_match "QEMU maps the rest with 2 MiB pages (/proc/$qemu/smaps)" "KernelPageSize: +2048 kB" "$smaps"
sandbox_virsh destroy "$DOM_HP" >/dev/null
# Stopped while that lease is still ending, the broker can leave a record that the next
# one cannot prove gone for a hugetlb region (no handle, no fd store here): its slot would
# be pinned (by design), and Count=auto below is not about that.
wait_until 10 prop_is FreeRmas 1
check "broker exits cleanly" stop_broker

# Count=auto: as many regions as the free huge pages hold now.
wait_until 10 test "$(free_pages)" -ge $((RMA_MIB / 2))
want=$(($(free_pages) * 2 / RMA_MIB))
start_broker --config="$TEST_DIR/broker.conf" --backend=hugetlb --count=auto --size=${RMA_MIB}M --qemu-users=libvirt-qemu
check_eq "Count=auto takes what the free pages hold ($want regions)" "$want" "$(prop TotalRmas)"
check "all of them free" wait_until 10 prop_is FreeRmas "$want" ||
    diag "$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas 2>&1; tail -25 "$TEST_DIR/broker.log")"
check_match "and says so" "Count=auto: the free huge pages of 2 MiB hold $want regions of 256 MiB" "$(cat "$TEST_DIR/broker.log")"
check "broker exits cleanly" stop_broker
tap_done
