#!/usr/bin/env bash
# End to end: live migration between two private libvirtds on this machine, each with
# its own rma-brokerd and its own host UUID. The destination's hook reserves at
# `prepare` and its wrapper claims from the destination's broker; the source's slot is
# free afterwards; the guest's bytes at 0x0c000000 arrive intact. With the destination's
# pool exhausted the migration is refused with our message and the source keeps running
# with its lease.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
e2e_begin mig "run libvirtd (tools/run-tests.sh runs as root)" libvirtd virsh qemu-system-ppc64 dbus-daemon busctl \
    unshare
SRC_SANDBOX= SRC_URI= SRC_OWNER= DST_SANDBOX= DST_URI= DST_OWNER= DST_BROKER_PID=
# on SRC|DST CMD...: run a sandbox function against one of the two libvirtds.
on() {
    local side=$1; shift
    local sb="${side}_SANDBOX" uri="${side}_URI" owner="${side}_OWNER"
    SANDBOX=${!sb} SANDBOX_URI=${!uri} _SANDBOX_OWNER=${!owner} "$@"
}
cleanup() {
    [ -n "$DST_SANDBOX" ] && on DST sandbox_stop
    [ -n "$SRC_SANDBOX" ] && on SRC sandbox_stop
    [ -n "$DST_BROKER_PID" ] && kill "$DST_BROKER_PID" 2>/dev/null && wait "$DST_BROKER_PID" 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

RMA_BYTES=$((256 << 20))
OFFSET=$((192 << 20))
DOM=rma-mig-$$-a DOM2=rma-mig-$$-b DOM_PLAIN=rma-mig-$$-plain
UUID=7c1c2d3e-0000-4000-8000-00000000000a UUID2=7c1c2d3e-0000-4000-8000-00000000000b
UUID_PLAIN=7c1c2d3e-0000-4000-8000-0000000000ff

# The source broker on the private bus (2 RMAs); the destination's serves broker.sock
# only (one bus name per bus), with a single RMA.
start_private_bus
start_broker --count=2 --size=256M --qemu-users=libvirt-qemu
SRC_SOCK=$TEST_DIR/run/broker.sock
DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent "$BROKERD" --runtime-dir="$TEST_DIR/run-dst" --count=1 --size=256M \
    --qemu-users=libvirt-qemu >"$TEST_DIR/broker-dst.log" 2>&1 &
DST_BROKER_PID=$!
DST_SOCK=$TEST_DIR/run-dst/broker.sock
wait_until 10 test -S "$DST_SOCK"
find_on() { RMA_BROKER_SOCKET=$1 "$TEST_CLIENT" find "$2" </dev/null; }
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas)"; }
counts_are() { [ "$(counts)" = "$1" ]; }

# One emulator path for both sides (the domain XML travels with the guest): the shims
# find their side's broker in a file under /run/libvirt, which each sandbox has its own of.
install_libvirt_plugin
cat >"$TEST_DIR/bin/qemu-rma-mig" <<SH
#!/bin/sh
RMA_BROKER_SOCKET=\$(cat /run/libvirt/rma-broker-socket) RMA_QEMU_BINARY=$(command -v qemu-system-ppc64) $PLUGIN_ENV \\
    exec $TEST_DIR/bin/qemu-rma "\$@"
SH
cat >"$TEST_DIR/bin/50-rma-broker" <<SH
#!/bin/sh
RMA_BROKER_SOCKET=\$(cat /run/libvirt/rma-broker-socket) $PLUGIN_ENV exec $TEST_DIR/bin/rma-broker-hook-front "\$@"
SH
chmod 0755 "$TEST_DIR/bin/qemu-rma-mig" "$TEST_DIR/bin/50-rma-broker"
WRAPPER=$TEST_DIR/bin/qemu-rma-mig

export SANDBOX_VIRTLOGD=1
start_side() { # SIDE HOST_UUID BROKER_SOCKET
    SANDBOX="" SANDBOX_URI="" _SANDBOX_OWNER=""
    SANDBOX_LIBVIRTD_CONF_EXTRA="host_uuid = \"$2\"" sandbox_start "$TEST_DIR/bin/50-rma-broker" || return 1
    echo "$3" >"$SANDBOX/run/rma-broker-socket"
    chmod 0644 "$SANDBOX/run/rma-broker-socket"
    eval "$1_SANDBOX=\$SANDBOX $1_URI=\$SANDBOX_URI $1_OWNER=\$_SANDBOX_OWNER"
    SANDBOX="" SANDBOX_URI="" _SANDBOX_OWNER=""
}
check "source libvirtd starts" start_side SRC 8d4a3f6e-1111-4000-8000-000000000001 "$SRC_SOCK"
check "destination libvirtd starts, with a host UUID of its own" \
    start_side DST 8d4a3f6e-2222-4000-8000-000000000002 "$DST_SOCK"
MIGDIR=$TEST_DIR/migrate
mkdir -p "$MIGDIR"
chown libvirt-qemu "$MIGDIR"

# Guests bigger than their RMA: $DOM 1 GiB in two cells of 512 MiB, $DOM2 1 GiB without
# cells. The destination's wrapper builds the same layout from the same XML.
for d in "$DOM:$UUID:512 512" "$DOM2:$UUID2:1024 flat"; do
    IFS=: read -r name uuid sizes <<<"$d"
    # shellcheck disable=SC2086
    on SRC sandbox_domain_xml "$name" "$uuid" "$WRAPPER" $sizes | sed 's/ tenant="e2e"//' >"$TEST_DIR/$name.xml"
    on SRC sandbox_virsh define "$TEST_DIR/$name.xml" >/dev/null
done
check "virsh start $DOM on the source" on SRC sandbox_virsh start "$DOM"
check "the source broker leases it" wait_until 10 counts_are "free=1 leased=1"
# Domain ids restart at 1 in each libvirtd: move the destination's on, so that the two
# QEMUs of one domain never share a cgroup name during the migration.
on DST sandbox_domain_xml "$DOM_PLAIN" "$UUID_PLAIN" "$(command -v qemu-system-ppc64)" 256 |
    sed '/<metadata>/,/<\/metadata>/d' >"$TEST_DIR/plain.xml"
on DST sandbox_virsh define "$TEST_DIR/plain.xml" >/dev/null
on DST sandbox_virsh start "$DOM_PLAIN" >/dev/null && on DST sandbox_virsh destroy "$DOM_PLAIN" >/dev/null

BROKER_FD=
slot=$(find_on "$SRC_SOCK" "$UUID" | cut -d' ' -f2)
for fd in /proc/$BROKER_PID/fd/*; do
    [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-$slot (deleted)" ]] && BROKER_FD=$fd
done
printf '\xfe\xed\xfa\xce\x0b\xad\xf0\x0d' | dd of="$BROKER_FD" bs=1 seek=$OFFSET conv=notrunc status=none
xp() { on "$1" sandbox_virsh qemu-monitor-command --hmp "$2" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1; }
check_match "the guest reads the bytes written through the source's region" "0c000000: 0xfeedface 0x0badf00d" \
    "$(xp SRC "$DOM")"
check_eq "the source tells the guest its RMA: memory@0 is 256 MiB" "memory@0 0x0 0x10000000 0" \
    "$(on SRC sandbox_dtb_memory "$DOM" | grep '^memory@0 ')"
# The wrapper's layout line, without what differs by host (the fd number).
layout_of() { grep '^qemu-rma:' "$(on "$1" sandbox_domain_log "$DOM")" | tail -1 | sed 's/.*; guest memory/guest memory/'; }

migrate() { # DOMAIN: live, peer to peer, over a unix socket (no TCP in the sandboxes' netns)
    on SRC sandbox_virsh migrate --live --p2p --persistent --undefinesource "$1" \
        "qemu+unix:///system?socket=$DST_SANDBOX/run/libvirt-sock" --migrateuri "unix://$MIGDIR/$1.sock" 2>&1
}
out=$(migrate "$DOM")
check "virsh migrate --live $DOM succeeds" test $? -eq 0
diag "$out"
check "the domain runs on the destination" wait_until 10 eval 'on DST sandbox_virsh domstate "$DOM" | grep -q running'
dst_pid=$(on DST sandbox_qemu_pid "$DOM")
check_match "the destination's broker leased its RMA to the destination's QEMU (pid $dst_pid)" "^leased 0 $dst_pid$" \
    "$(find_on "$DST_SOCK" "$UUID")"
check "the source's slot is free after the migration" wait_until 10 counts_are "free=2 leased=0"
check_eq "the source's broker holds nothing for it" none "$(find_on "$SRC_SOCK" "$UUID")"
check_match "the guest's bytes at 0x0c000000 are intact on the destination" "0c000000: 0xfeedface 0x0badf00d" \
    "$(xp DST "$DOM")"
check_match "the destination QEMU maps the destination broker's region" "memfd:rma-broker-slot-0" \
    "$(grep rma-broker-slot "/proc/$dst_pid/maps")"
DST_FD=
for fd in /proc/$DST_BROKER_PID/fd/*; do
    [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-0 (deleted)" ]] && DST_FD=$fd
done
check_eq "the RMA's bytes landed in the destination's region" "feedface0badf00d" \
    "$(od -An -tx1 -j $OFFSET -N8 "$DST_FD" | tr -d ' \n')"
# No dumpdtb on the destination: QEMU 7.2's dumpdtb kills a pseries QEMU that took an
# incoming migration, with or without rma-broker (measured with a plain 1 GiB guest). The
# device tree came with the guest; the layout it describes is the destination wrapper's.
check_eq "the destination's wrapper built the source's layout" "$(layout_of SRC)" "$(layout_of DST)"
check_eq "... the XML's two nodes of 512 MiB" "2 nodes node 0 size: 512 MB node 1 size: 512 MB " \
    "$(on DST sandbox_virsh qemu-monitor-command --hmp "$DOM" "info numa" 2>&1 | tr -d '\r' |
        grep -E 'nodes|size:' | tr '\n' ' ')"

# The destination's single RMA is taken: another migration is refused at its `prepare`,
# with our message, and the source keeps the guest and its lease.
check "virsh start $DOM2 on the source" on SRC sandbox_virsh start "$DOM2"
check_eq "$DOM2 (1 GiB, no cells) is told memory@0 = 256 MiB" "memory@0 0x0 0x10000000 0" \
    "$(on SRC sandbox_dtb_memory "$DOM2" | grep '^memory@0 ')"
src_pid=$(on SRC sandbox_qemu_pid "$DOM2")
out=$(migrate "$DOM2")
status=$?
check "migrating $DOM2 to a destination with no free RMA fails" test $status -ne 0
check_match "... with the destination broker's message" "rma-broker: No free RMA for domain $DOM2: all 1 RMAs" "$out"
check_match "... and $DOM2 keeps running on the source" running "$(on SRC sandbox_virsh domstate "$DOM2")"
check_match "... holding its lease there" "^leased [0-9]+ $src_pid$" "$(find_on "$SRC_SOCK" "$UUID2")"
check "... and the destination's refused prepare left nothing behind" \
    test "$(find_on "$DST_SOCK" "$UUID2")" = none

check "brokers exit cleanly" stop_broker
tap_done
