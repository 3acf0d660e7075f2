#!/usr/bin/env bash
# End to end with a real guest OS: Debian's own ppc64el kernel and a busybox /init
# (tools/fetch-guest-kernel.sh, run by tools/install-deps.sh: apt-get download, never
# installed), booted by a private libvirtd through the hook and the qemu-rma wrapper with a
# 256 MiB RMA, under TCG. Two guests of 1 GiB, as virt-install writes them: without NUMA
# cells, and with two cells of 512 MiB. From inside each guest, /init reports what Linux
# sees: the device tree's memory@0 (exactly the RMA), the RAM and the NUMA nodes (as the
# XML says). From the host: the running kernel's exception vectors at guest 0x100 are the
# region's bytes, and the region holds the kernel's image.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
GUEST=${RMA_TEST_GUEST_DIR:-/var/cache/rma-broker-tests/guest}
if [ "$(id -u)" -eq 0 ] && { [ ! -s "$GUEST/vmlinux" ] || [ ! -x "$GUEST/busybox" ]; }; then
    echo "1..0 # SKIP no guest kernel in $GUEST: run tools/fetch-guest-kernel.sh (tools/install-deps.sh does)"
    exit 0
fi
e2e_begin guest-os "run libvirtd (tools/run-tests.sh runs as root)" libvirtd virsh qemu-system-ppc64 dbus-daemon \
    busctl unshare python3

RMA_MIB=256
start_private_bus
start_broker --count=2 --size=${RMA_MIB}M --qemu-users=libvirt-qemu
write_libvirt_shims "$TEST_DIR/run/broker.sock"
export SANDBOX_VIRTLOGD=1
check "private libvirtd starts" sandbox_start "$TEST_DIR/bin/50-rma-broker"

# The initramfs: busybox and an /init that prints what the guest sees, then idles (the
# host reads the running kernel's memory meanwhile).
mkdir -p "$TEST_DIR/initramfs/bin"
install -m 0755 "$GUEST/busybox" "$TEST_DIR/initramfs/bin/busybox"
cat >"$TEST_DIR/initramfs/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "GUEST memory@0 $(hexdump -v -e '1/1 "%02x"' /proc/device-tree/memory@0/reg)"
echo "GUEST nodes $(cat /sys/devices/system/node/online)"
echo "GUEST $(grep MemTotal /proc/meminfo | tr -s ' ')"
for n in /sys/devices/system/node/node[0-9]*; do
    echo "GUEST $(basename $n) $(grep MemTotal $n/meminfo | awk '{print $4}') kB"
done
echo "GUEST done"
while :; do sleep 3600; done
INIT
chmod 0755 "$TEST_DIR/initramfs/init"
# Where QEMU (libvirt-qemu, in the sandbox's mount namespace) reads and writes:
# the sandbox's /var/lib/libvirt/qemu.
python3 "$HERE/../helpers/mkinitramfs.py" "$TEST_DIR/initramfs" "$SANDBOX/lib/qemu/rma-guest-initrd.gz"
install -m 0644 "$GUEST/vmlinux" "$SANDBOX/lib/qemu/rma-guest-vmlinux"

guest_xml() { # NAME UUID NUMA
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <uuid>$2</uuid>
  <metadata><rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1"/></metadata>
  <memory unit='MiB'>1024</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='ppc64' machine='pseries'>hvm</type>
    <kernel>/var/lib/libvirt/qemu/rma-guest-vmlinux</kernel>
    <initrd>/var/lib/libvirt/qemu/rma-guest-initrd.gz</initrd>
    <cmdline>console=hvc0 quiet</cmdline>
  </os>
  $3
  <devices>
    <emulator>$WRAPPER</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='/var/lib/libvirt/qemu/$1.console'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}
CELLS="<cpu><numa><cell id='0' cpus='0' memory='512' unit='MiB'/><cell id='1' cpus='1' memory='512' unit='MiB'/></numa></cpu>"

# boot NAME UUID NUMA NODES: start the guest, wait for its report, check it.
boot() {
    local name=$1 uuid=$2 numa=$3 nodes=$4 console=$SANDBOX/lib/qemu/$1.console report slot fd total n
    guest_xml "$name" "$uuid" "$numa" >"$TEST_DIR/$name.xml"
    check "define $name" sandbox_virsh define "$TEST_DIR/$name.xml"
    # QEMU 7.2's dumpdtb aborts QEMU once the guest has called client-architecture-support
    # (its device tree pointer goes stale): read it before the guest runs.
    check "virsh start --paused $name (a Debian kernel and busybox, RMA of $RMA_MIB MiB)" \
        sandbox_virsh start --paused "$name"
    check_eq "$name: QEMU's device tree (dumpdtb) says memory@0 = the RMA" \
        "memory@0 0x0 $(printf '0x%x' $((RMA_MIB << 20))) 0" "$(sandbox_dtb_memory "$name" | grep '^memory@0 ')"
    check "$name: virsh resume" sandbox_virsh resume "$name"
    check "$name's Linux reaches /init and reports (console: $console)" wait_until 240 grep -q "GUEST done" "$console"
    # The kernel's own console lines may run into ours: take each report from where it starts.
    report=$(tr -d '\r' <"$console" | grep -o 'GUEST .*')
    diag "$report"
    check_eq "$name: Linux reads memory@0 = the RMA from its device tree" \
        "GUEST memory@0 0000000000000000$(printf '%016x' $((RMA_MIB << 20)))" "$(grep '^GUEST memory@0' <<<"$report")"
    check_eq "$name: Linux's NUMA nodes are the XML's" "GUEST nodes $nodes" "$(grep '^GUEST nodes' <<<"$report")"
    total=$(sed -nE 's/^GUEST MemTotal: ([0-9]+) kB/\1/p' <<<"$report")
    check "$name: Linux has the XML's 1 GiB (MemTotal $total kB, less what the kernel keeps)" \
        test "${total:-0}" -gt $((900 << 10)) -a "${total:-0}" -le $((1024 << 10))
    if [ "$nodes" = 0-1 ]; then
        for n in 0 1; do
            total=$(sed -nE "s/^GUEST node$n ([0-9]+) kB/\\1/p" <<<"$report")
            check "$name: node $n has its cell's 512 MiB ($total kB, less what the kernel keeps)" \
                test "${total:-0}" -gt $((400 << 10)) -a "${total:-0}" -le $((512 << 10))
        done
    fi
    # From the host: the running kernel's vectors at guest 0x100 are the region's bytes.
    slot=$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
        grep -oE "[0-9]+ \"leased\" \"$uuid\"" | cut -d' ' -f1)
    fd=
    for n in /proc/$BROKER_PID/fd/*; do
        [[ "$(readlink "$n")" == "/memfd:rma-broker-slot-$slot (deleted)" ]] && fd=$n
    done
    check_eq "$name: the kernel's exception vectors at guest 0x100 are the region's bytes" \
        "$(od -An -tx1 -j $((0x100)) -N16 "$fd" | tr -d ' \n')" \
        "$(sandbox_virsh qemu-monitor-command --hmp "$name" 'xp /16xb 0x100' | tr -d '\r' |
            sed -E 's/^[0-9a-f]+: //; s/0x//g' | tr -d ' \n')"
    check "$name: the region holds the kernel's image (its segment maps file offset 0x10000 at 0)" \
        python3 - "$fd" "$GUEST/vmlinux" <<'PY'
import sys
region = open(sys.argv[1], "rb").read(0x100000)
image = open(sys.argv[2], "rb").read(0x110000)[0x10000:]
same = sum(region[i:i + 4] == image[i:i + 4] for i in range(0x10000, 0x100000, 4))
print("# %d of %d words from 0x10000 to 0x100000 equal the image's" % (same, (0x100000 - 0x10000) // 4))
sys.exit(0 if same > 0.9 * (0x100000 - 0x10000) // 4 else 1)
PY
    sandbox_virsh destroy "$name" >/dev/null
}
boot rma-guest-$$-flat 7a1c2d3e-0000-4000-8000-0000000000f1 "" 0
boot rma-guest-$$-cells 7a1c2d3e-0000-4000-8000-0000000000c2 "$CELLS" 0-1
check "every slot is free again" wait_until 10 prop_is FreeRmas 2
check "broker exits cleanly" stop_broker
tap_done
