#!/usr/bin/env bash
# End to end: a private libvirtd (own mount namespace, see libvirt-sandbox.sh) with the
# rma-broker hook and the qemu-rma wrapper, the built rma-brokerd on a private bus with
# the cgroup check on, and real ppc64 pseries guests under TCG started with virsh.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
e2e_begin e2e "run libvirtd (tools/run-tests.sh runs as root)" libvirtd virsh qemu-system-ppc64 dbus-daemon busctl \
    unshare

RMA_MIB=256
RMA_BYTES=$((RMA_MIB << 20))
UUID_A=6f1c2d3e-0000-4000-8000-00000000000a
UUID_B=6f1c2d3e-0000-4000-8000-00000000000b
UUID_C=6f1c2d3e-0000-4000-8000-00000000000c
UUID_BIG=6f1c2d3e-0000-4000-8000-0000000000bb
UUID_FLAT=6f1c2d3e-0000-4000-8000-0000000000f1
UUID_PLAIN=6f1c2d3e-0000-4000-8000-0000000000ff
UUID_O1=6f1c2d3e-0000-4000-8000-0000000000a1
UUID_O2=6f1c2d3e-0000-4000-8000-0000000000a2
# Names no host libvirtd is likely to use: domain ids restart at 1 in the sandbox.
DOM_A=rma-e2e-$$-a DOM_B=rma-e2e-$$-b DOM_C=rma-e2e-$$-c DOM_BIG=rma-e2e-$$-big DOM_FLAT=rma-e2e-$$-flat DOM_PLAIN=rma-e2e-$$-plain
DOM_O1=rma-e2e-$$-other1 DOM_O2=rma-e2e-$$-other2

# check_no_match "what" REGEX ACTUAL
check_no_match() {
    if [[ $3 =~ $2 ]]; then not_ok "$1"; diag "expected not to match: $2"; diag "actual: $3"; else ok "$1"; fi
}
counts() { echo "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas)"; }
counts_are() { [ "$(counts)" = "$1" ]; }

# Tenant policy: e2e (named in the domains' metadata) may hold 2; domains named
# *-other* belong to tenant other by glob.
mkdir -p "$TEST_DIR/policy.d"
cat >"$TEST_DIR/policy.d/50-e2e.conf" <<CONF
[Tenant e2e]
MaxRmas=2

[Tenant other]
Domains=rma-e2e-*-other*
CONF
start_private_bus
start_broker --count=3 --size=${RMA_MIB}M --qemu-users=libvirt-qemu --policy-dir="$TEST_DIR/policy.d"
check "broker is up with 3 RMAs of $RMA_MIB MiB" prop_is TotalRmas 3
BROKER_SOCKET=$TEST_DIR/run/broker.sock

# libvirt gives neither the hook nor QEMU an environment of ours, so the test points them
# at its private broker with two tiny shims; production uses the default socket path.
install_libvirt_plugin
cat >"$TEST_DIR/bin/qemu-rma-e2e" <<SH
#!/bin/sh
RMA_BROKER_SOCKET=$BROKER_SOCKET RMA_QEMU_BINARY=$(command -v qemu-system-ppc64) $PLUGIN_ENV exec $TEST_DIR/bin/qemu-rma "\$@"
SH
cat >"$TEST_DIR/bin/50-rma-broker" <<SH
#!/bin/sh
RMA_BROKER_SOCKET=$BROKER_SOCKET $PLUGIN_ENV exec $TEST_DIR/bin/rma-broker-hook-front "\$@"
SH
chmod 0755 "$TEST_DIR/bin/qemu-rma-e2e" "$TEST_DIR/bin/50-rma-broker"
WRAPPER=$TEST_DIR/bin/qemu-rma-e2e

export SANDBOX_VIRTLOGD=1
if ! sandbox_start "$TEST_DIR/bin/50-rma-broker"; then
    not_ok "private libvirtd starts"
    tap_done
    exit 1
fi
ok "private libvirtd started with the hook installed"

define() { # NAME UUID EMULATOR CELL0_MIB
    sandbox_domain_xml "$@" >"$SANDBOX/$1.xml" && sandbox_virsh define "$SANDBOX/$1.xml" >/dev/null
}
check "define $DOM_A" define "$DOM_A" "$UUID_A" "$WRAPPER" $RMA_MIB
check "define $DOM_B" define "$DOM_B" "$UUID_B" "$WRAPPER" $RMA_MIB
check "define $DOM_C" define "$DOM_C" "$UUID_C" "$WRAPPER" $RMA_MIB
check "define $DOM_BIG (1 GiB in two cells of 512 MiB, as virt-install writes)" \
    define "$DOM_BIG" "$UUID_BIG" "$WRAPPER" 512 512
check "define $DOM_FLAT (1 GiB, no NUMA cells, as virt-install writes)" define "$DOM_FLAT" "$UUID_FLAT" "$WRAPPER" 1024 flat
# A domain that did not opt in: stock emulator, no rma metadata.
sandbox_domain_xml "$DOM_PLAIN" "$UUID_PLAIN" "$(command -v qemu-system-ppc64)" 256 |
    sed '/<metadata>/,/<\/metadata>/d' >"$SANDBOX/$DOM_PLAIN.xml"
check "define $DOM_PLAIN (not opted in)" sandbox_virsh define "$SANDBOX/$DOM_PLAIN.xml"
# Opted in by metadata, but naming no tenant: the policy's Domains= glob decides.
for d in "$DOM_O1:$UUID_O1" "$DOM_O2:$UUID_O2"; do
    sandbox_domain_xml "${d%%:*}" "${d#*:}" "$WRAPPER" $RMA_MIB | sed 's/ tenant="e2e"//' >"$SANDBOX/${d%%:*}.xml"
    check "define ${d%%:*} (tenant by glob)" sandbox_virsh define "$SANDBOX/${d%%:*}.xml"
done

# 1. virsh start gets an RMA.
check "virsh start $DOM_A succeeds" sandbox_virsh start "$DOM_A"
check_eq "busctl: one RMA leased" "free=2 reserved=0 leased=1" "$(counts)"
QEMU_A=$(sandbox_qemu_pid "$DOM_A")
rmas=$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas)
check_match "the lease belongs to $DOM_A's QEMU (pid $QEMU_A), tenant from its metadata" \
    "\"leased\" \"$UUID_A\" \"$DOM_A\" \"e2e\" $QEMU_A" "$rmas"
check_eq "QEMU runs as libvirt-qemu" libvirt-qemu "$(ps -o user= -p "$QEMU_A")"
SLOT_A=$(sed -E "s/.* ([0-9]+) \"leased\" \"$UUID_A\".*/\1/" <<<"$rmas")
check_match "QEMU maps the broker's region (/proc/$QEMU_A/maps)" \
    "memfd:rma-broker-slot-$SLOT_A" "$(grep rma-broker-slot "/proc/$QEMU_A/maps")"
map_line=$(grep "memfd:rma-broker-slot-$SLOT_A" "/proc/$QEMU_A/maps" | head -1)
map_start=$((16#$(cut -d- -f1 <<<"$map_line"))) map_end=$((16#$(cut -d' ' -f1 <<<"$map_line" | cut -d- -f2)))
check_eq "the mapping is the whole RMA" $RMA_BYTES $((map_end - map_start))
check_match "the domain's log says how the wrapper laid out guest memory, in one line" \
    "qemu-rma: domain $UUID_A: RMA of $RMA_BYTES bytes from rma-brokerd on fd [0-9]+; guest memory 0-256 MiB \\(ram-node0, all of node 0, the guest's memory@0\\) is the region" \
    "$(grep '^qemu-rma:' "$(sandbox_domain_log "$DOM_A")")"
check_eq "QEMU tells the guest its RMA: device-tree memory@0 is exactly $RMA_BYTES bytes" \
    "memory@0 0x0 $(printf '0x%x' $RMA_BYTES) 0" "$(sandbox_dtb_memory "$DOM_A" | grep '^memory@0 ')"

# 2. Guest physical memory is the region: write through the broker's own fd, read in
#    the guest. SLOF sits at address 0, so compare well away from it (192 MiB).
BROKER_FD=
for fd in /proc/$BROKER_PID/fd/*; do
    [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-$SLOT_A (deleted)" ]] && BROKER_FD=$fd
done
check "the broker holds slot $SLOT_A's region ($BROKER_FD)" test -n "$BROKER_FD"
OFFSET=$((192 << 20))
printf '\xde\xad\xbe\xef\x01\x23\x45\x67' | dd of="$BROKER_FD" bs=1 seek=$OFFSET conv=notrunc status=none
xp=$(sandbox_virsh qemu-monitor-command --hmp "$DOM_A" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)
check_match "guest physical 0x0c000000 reads the bytes written through the broker" \
    "0c000000: 0xdeadbeef 0x01234567" "$xp"
# And the other way round: what SLOF put at guest address 0 is in the region.
guest0=$(sandbox_virsh qemu-monitor-command --hmp "$DOM_A" "xp /4xw 0x100" 2>&1 | sed -E 's/^[0-9a-f]+: //' | tr -d '\r')
host0=$(od -An -tx1 -j $((0x100)) -N16 "$BROKER_FD" | tr -d ' \n' | sed -E 's/(.{8})/0x\1 /g; s/ $//')
check_eq "guest physical 0x100 (firmware) equals the region's bytes at 0x100" "$host0" "$guest0"

# 3. Tenant e2e reaches its cap: the third e2e domain is refused with QuotaExceeded,
#    shown to the virsh user by the hook; a domain of another tenant still gets the last
#    RMA; after that the pool is exhausted.
check "virsh start $DOM_B succeeds" sandbox_virsh start "$DOM_B"
check_eq "two RMAs leased" "free=1 reserved=0 leased=2" "$(counts)"
out=$(sandbox_virsh start "$DOM_C" 2>&1)
status=$?
check "virsh start $DOM_C fails: tenant e2e is at its cap" test $status -ne 0
check_match "virsh shows the hook's line with the tenant and the numbers" \
    "rma-broker: No RMA for domain $DOM_C: tenant e2e holds 2 of its MaxRmas=2 \(2 leased, 0 reserved\); stop one of its domains or raise MaxRmas in $TEST_DIR/policy.d/50-e2e.conf:2" "$out"
diag "$out"
check "libvirt's release of the refused domain leaves the pool as it was" \
    wait_until 5 counts_are "free=1 reserved=0 leased=2"
check_eq "$DOM_C is not running" "shut off" "$(sandbox_virsh domstate "$DOM_C" 2>&1)"
check "virsh start $DOM_O1 (tenant other, by glob) gets the last RMA" sandbox_virsh start "$DOM_O1"
tenants=$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListTenants)
check_eq "busctl ListTenants: e2e holds 2 of 2, other holds 1" 'a(suuuu) 2 "e2e" 2 0 2 0 "other" 3 0 1 0' "$tenants"
out=$(sandbox_virsh start "$DOM_O2" 2>&1)
status=$?
check "virsh start $DOM_O2 fails with the pool exhausted" test $status -ne 0
check_match "virsh shows the hook's one-line reason" \
    "rma-broker: No free RMA for domain $DOM_O2: all 3 RMAs of 256 MiB are taken \(0 reserved, 3 leased" "$out"
diag "$out"
check "the refused start left the pool as it was" wait_until 5 counts_are "free=0 reserved=0 leased=3"

# 4. A domain that did not opt in starts normally and takes nothing.
check "a domain without rma opt-in starts even with the pool exhausted" sandbox_virsh start "$DOM_PLAIN"
check_eq "and takes no RMA" "free=0 reserved=0 leased=3" "$(counts)"
sandbox_virsh destroy "$DOM_PLAIN" >/dev/null 2>&1

# 5. virsh destroy returns the slot; the refused domain can start now.
check "virsh destroy $DOM_A" sandbox_virsh destroy "$DOM_A"
check "destroy returned the slot" wait_until 10 counts_are "free=1 reserved=0 leased=2"
check "$DOM_A's QEMU is gone" test ! -d "/proc/$QEMU_A"
check "virsh start $DOM_C now succeeds" sandbox_virsh start "$DOM_C"
QEMU_C=$(sandbox_qemu_pid "$DOM_C")
xp=$(sandbox_virsh qemu-monitor-command --hmp "$DOM_C" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)
check_match "the next tenant of the slot does not see the previous guest's bytes" \
    "0c000000: 0x00000000 0x00000000" "$xp"
check_match "$DOM_C's QEMU maps an rma-broker region" "memfd:rma-broker-slot-" "$(grep rma-broker-slot "/proc/$QEMU_C/maps")"

# 6. Guests bigger than their RMA keep their XML's nodes: the region is boot memory
#    0..RMA, the rest of node 0 a pc-dimm on node 0. Two cells of 512 MiB, then no cells.
sandbox_virsh destroy "$DOM_C" >/dev/null
wait_until 10 counts_are "free=1 reserved=0 leased=2"
numa_sizes() { sandbox_virsh qemu-monitor-command --hmp "$1" "info numa" 2>&1 | tr -d '\r' | grep -E 'nodes|size:' |
    tr '\n' ' '; }
check_layout() { # DOMAIN UUID NUMA-SIZES WHAT [kill]
    local fd
    check "virsh start $1 ($4)" sandbox_virsh start "$1"
    check_eq "$1: memory@0 is exactly the RMA" "memory@0 0x0 $(printf '0x%x' $RMA_BYTES) 0" \
        "$(sandbox_dtb_memory "$1" | grep '^memory@0 ')"
    check_eq "$1: QEMU's nodes are the XML's" "$3" "$(numa_sizes "$1")"
    check_match "$1: the log names the pc-dimm" "the other 768 MiB of node 0 is pc-dimm rma-rest-node0 \\(memory-backend-ram, like libvirt's\\)|the other 256 MiB of node 0 is pc-dimm rma-rest-node0 \\(memory-backend-ram, like libvirt's\\)" \
        "$(grep '^qemu-rma:' "$(sandbox_domain_log "$1")" | tail -1)"
    fd=$(broker_fd_of "$(slot_of "$2")")
    printf '\x0b\x16\x00\x01\x10\x24\x00\x00' | dd of="$fd" bs=1 seek=$OFFSET conv=notrunc status=none
    check_match "$1: guest physical 0x0c000000 is the region" "0c000000: 0x0b160001 0x10240000" "$(sandbox_xp "$1" $OFFSET)"
    if [ "${5:-}" = kill ]; then
        kill -9 "$(sandbox_qemu_pid "$1")"
        check "$1: kill -9 of its QEMU returned the slot" wait_until 20 counts_are "free=1 reserved=0 leased=2"
        wait_until 10 eval 'sandbox_virsh domstate "$1" | grep -q "shut off"'
    else
        sandbox_virsh destroy "$1" >/dev/null
        check "$1: destroy returned the slot" wait_until 10 counts_are "free=1 reserved=0 leased=2"
    fi
}
slot_of() { busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
    grep -oE "[0-9]+ \"leased\" \"$1\"" | cut -d' ' -f1; }
broker_fd_of() {
    local fd
    for fd in /proc/$BROKER_PID/fd/*; do
        [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-$1 (deleted)" ]] && echo "$fd" && return 0
    done
    return 1
}
check_layout "$DOM_BIG" "$UUID_BIG" "2 nodes node 0 size: 512 MB node 1 size: 512 MB " "two cells of 512 MiB"
check_layout "$DOM_FLAT" "$UUID_FLAT" "1 nodes node 0 size: 1024 MB " "1 GiB, no NUMA cells" kill

# 7. Destroying everything empties the pool again; the broker survived all of it.
sandbox_virsh destroy "$DOM_B" >/dev/null
sandbox_virsh destroy "$DOM_O1" >/dev/null
check "every slot is free again" wait_until 10 counts_are "free=3 reserved=0 leased=0"
check "the broker kept serving" broker_alive

# 8. Save, restore and managedsave. A saved guest gives up its region (libvirt runs the
#    release hook and QEMU exits); restore runs prepare again, so it reserves and claims
#    anew and the guest's memory comes back into the new region; a full pool at restore
#    refuses with our message and keeps the image. The guests are bigger than their RMA
#    (two cells, no cells): the image holds the pc-dimm's memory too.
check "virsh start $DOM_BIG again" sandbox_virsh start "$DOM_BIG"
BROKER_FD=$(broker_fd_of "$(slot_of "$UUID_BIG")")
printf '\x5a\x5a\xa5\xa5\x12\x34\x56\x78' | dd of="$BROKER_FD" bs=1 seek=$OFFSET conv=notrunc status=none
check_match "$DOM_BIG sees the bytes before the save" "0c000000: 0x5a5aa5a5 0x12345678" \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_BIG" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)"
SAVE=$SANDBOX/$DOM_BIG.save
check "virsh save $DOM_BIG" sandbox_virsh save "$DOM_BIG" "$SAVE"
check "the saved guest gave up its region" wait_until 10 counts_are "free=3 reserved=0 leased=0"
check "virsh restore $DOM_BIG" sandbox_virsh restore "$SAVE"
check "the restored guest holds a region again" wait_until 10 counts_are "free=2 reserved=0 leased=1"
check_match "the restored guest reads its bytes at 0x0c000000, now from the new region" "0c000000: 0x5a5aa5a5 0x12345678" \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_BIG" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)"
check "virsh save $DOM_BIG once more" sandbox_virsh save "$DOM_BIG" "$SAVE"
wait_until 10 counts_are "free=3 reserved=0 leased=0"
sandbox_virsh start "$DOM_O1" >/dev/null && sandbox_virsh start "$DOM_O2" >/dev/null && sandbox_virsh start "$DOM_FLAT" >/dev/null
check "the pool is full again" wait_until 10 counts_are "free=0 reserved=0 leased=3"
out=$(sandbox_virsh restore "$SAVE" 2>&1)
status=$?
check "virsh restore into a full pool fails" test $status -ne 0
check_match "... with our message" "rma-broker: No free RMA for domain $DOM_BIG: all 3 RMAs" "$out"
check "... and the image is kept" test -s "$SAVE"
sandbox_virsh destroy "$DOM_O2" >/dev/null
wait_until 10 counts_are "free=1 reserved=0 leased=2"
check "once a slot is free, the same image restores" sandbox_virsh restore "$SAVE"
check_match "... with the guest's bytes" "0c000000: 0x5a5aa5a5 0x12345678" \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_BIG" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)"
printf '\xb0\x0b\xb0\x0b\x00\x00\x00\x02' | dd of="$(broker_fd_of "$(slot_of "$UUID_FLAT")")" bs=1 seek=$OFFSET \
    conv=notrunc status=none
check "virsh managedsave $DOM_FLAT" sandbox_virsh managedsave "$DOM_FLAT"
check "the managed-saved guest gave up its region" wait_until 10 counts_are "free=1 reserved=0 leased=2"
check "virsh start $DOM_FLAT restores it from the managed save" sandbox_virsh start "$DOM_FLAT"
check "... holding a region again" wait_until 10 counts_are "free=0 reserved=0 leased=3"
check_match "... and it was a restore, not a fresh boot: the guest's bytes are back" "0c000000: 0xb00bb00b 0x00000002" \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_FLAT" "xp /2xw $(printf '0x%x' $OFFSET)" 2>&1)"
for d in "$DOM_BIG" "$DOM_FLAT" "$DOM_O1"; do sandbox_virsh destroy "$d" >/dev/null; done
check "every slot is free after the lifecycle tests" wait_until 10 counts_are "free=3 reserved=0 leased=0"

# 9. rmactl domain: opt a plain domain in through the libvirt API, start it with an RMA,
#    show it, opt it out again.
RMACTL=$BUILD_DIR/rmactl/rmactl
DOM_NEW=rma-e2e-$$-new UUID_NEW=6f1c2d3e-0000-4000-8000-0000000000ee
sandbox_domain_xml "$DOM_NEW" "$UUID_NEW" "$(command -v qemu-system-ppc64)" 256 |
    sed '/<metadata>/,/<\/metadata>/d; /<cpu>/,/<\/cpu>/d' >"$SANDBOX/$DOM_NEW.xml"
check "define $DOM_NEW: stock emulator, no metadata, no NUMA cells" sandbox_virsh define "$SANDBOX/$DOM_NEW.xml"
dom() { "$RMACTL" domain "$@" --connect="$SANDBOX_URI"; }
check_match "rmactl domain show: not opted in" "Opted in: +no" "$(dom show "$DOM_NEW")"
out=$(dom enable "$DOM_NEW" --tenant=e2e --emulator="$WRAPPER" --dry-run)
check_match "--dry-run prints the change as a diff of the domain XML" \
    "^--- $DOM_NEW \(now\).*-    <emulator>/usr/bin/qemu-system-ppc64</emulator>.*\+    <emulator>$WRAPPER</emulator>" \
    "$(tr '\n' ' ' <<<"$out")"
check_match "... and changes nothing" "<emulator>/usr/bin/qemu-system-ppc64</emulator>" "$(sandbox_virsh dumpxml "$DOM_NEW")"
out=$(dom enable "$DOM_NEW" --tenant=e2e --emulator="$WRAPPER")
check_match "enable says what it changed: the emulator" "emulator: /usr/bin/qemu-system-ppc64 -> $WRAPPER" "$out"
check_match "... and the metadata" "metadata: added <rma:rma tenant=\"e2e\"/>" "$out"
check_no_match "... and adds no NUMA cell" "NUMA" "$out"
xml=$(sandbox_virsh dumpxml "$DOM_NEW")
check_match "the definition has the wrapper and our metadata" \
    "<rma:rma xmlns:rma=\"http://rmabroker.org/schemas/domain/1\" tenant=\"e2e\".*<emulator>$WRAPPER</emulator>" \
    "$(tr '\n' ' ' <<<"$xml")"
check_no_match "... and still no NUMA cells" "<numa>" "$xml"
check_match "show says how the RMA will be laid out" \
    "Layout: +guest memory 0-256 MiB \\(boot memory, the guest's memory@0\\) is the RMA; the other 256 MiB of its memory is a pc-dimm on node 0" \
    "$(dom show "$DOM_NEW")"
check "virsh start $DOM_NEW" sandbox_virsh start "$DOM_NEW"
check "... gets an RMA" wait_until 10 counts_are "free=2 reserved=0 leased=1"
out=$(dom show "$DOM_NEW" --policy-dir="$TEST_DIR/policy.d")
check_match "show: opted in, tenant and rule, and the lease" \
    "Opted in: +yes.*Tenant: +e2e, named by its rma:rma metadata.*Lease: +slot [0-9]+, leased by pid $(sandbox_qemu_pid "$DOM_NEW")" \
    "$(tr '\n' ' ' <<<"$out")"
check_match "show names the rule: a Domains= glob" "Tenant: +other, by its Domains=rma-e2e-\\*-other\\* \\(.*50-e2e.conf:[0-9]+\\)" \
    "$(dom show "$DOM_O1" --policy-dir="$TEST_DIR/policy.d")"
check_match "enable again: nothing to change" "already opted in" "$(dom enable "$DOM_NEW" --emulator="$WRAPPER")"
out=$(dom disable "$DOM_NEW")
check_match "disable on a running domain: for its next start, and it says so" \
    "emulator: $WRAPPER -> /usr/bin/qemu-system-ppc64.*metadata: removed.*is running: the change applies at its next start" \
    "$(tr '\n' ' ' <<<"$out")"
sandbox_virsh destroy "$DOM_NEW" >/dev/null
wait_until 10 counts_are "free=3 reserved=0 leased=0"
check "the opted-out domain starts without an RMA" sandbox_virsh start "$DOM_NEW"
check_eq "... and the pool is untouched" "free=3 reserved=0 leased=0" "$(counts)"
sandbox_virsh destroy "$DOM_NEW" >/dev/null

# 10. A domain enabled by 0.2.0 (metadata, and the two cells 0.2.0 added: 256 MiB for the
#     RMA, the rest in cell 1, vCPU 0 in cell 0): disable removes those cells and only
#     them; a domain with cells of its own keeps them at enable and disable.
check_match "show of a 1 GiB guest with cells of 512 MiB: the rest of cell 0 a pc-dimm" \
    "Layout: +guest memory 0-256 MiB \\(boot memory, the guest's memory@0\\) is the RMA; the other 256 MiB of NUMA cell 0 is a pc-dimm on node 0" \
    "$(dom show "$DOM_BIG")"
out=$(dom disable "$DOM_A")
check_match "disable of a domain 0.2.0 enabled removes 0.2.0's cells" \
    "NUMA: removed cell 0 of 256 MiB and cell 1 of 256 MiB, which rma-broker 0.2.0 added" "$out"
check_no_match "... the definition has no NUMA cells" "<numa>" "$(sandbox_virsh dumpxml "$DOM_A")"
out=$(dom disable "$DOM_BIG")
check_no_match "disable of a domain with cells of its own keeps them" "NUMA" "$out"
check_match "... both of 512 MiB" "<cell id='0' cpus='0' memory='524288' unit='KiB'/> *<cell id='1' cpus='1' memory='524288' unit='KiB'/>" \
    "$(sandbox_virsh dumpxml "$DOM_BIG" | tr -d '\n')"
out=$(dom enable "$DOM_B" --emulator="$WRAPPER")
check_match "enable of a domain 0.2.0 enabled removes them too" \
    "NUMA: removed cell 0 of 256 MiB and cell 1 of 256 MiB, which rma-broker 0.2.0 added" "$out"
check "... and it starts with its RMA" sandbox_virsh start "$DOM_B"
check_eq "... told memory@0 = the RMA" "memory@0 0x0 $(printf '0x%x' $RMA_BYTES) 0" \
    "$(sandbox_dtb_memory "$DOM_B" | grep '^memory@0 ')"
check_eq "... with one node of 512 MiB, as its XML now says" "1 nodes node 0 size: 512 MB " "$(numa_sizes "$DOM_B")"
sandbox_virsh destroy "$DOM_B" >/dev/null
wait_until 10 counts_are "free=3 reserved=0 leased=0"

check_hook_calls_quiet
sandbox_procs=$(sandbox_pids 2>/dev/null | tr '\n' ' ')
sandbox_stop
gone() { for p in $sandbox_procs; do [ ! -d "/proc/$p" ] || return 1; done; }
check "every process of the private libvirtd ($sandbox_procs) is gone" gone
check "broker exits cleanly" stop_broker
if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
