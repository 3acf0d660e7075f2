#!/usr/bin/env bash
# End to end: domains as Nova defines them get RMAs without an edit of their XML.
#
# A private libvirtd (libvirt-sandbox.sh) whose PATH starts with a directory holding the
# qemu-rma wrapper as qemu-system-ppc64, as the libvirtd drop-in of docs/fleet.md puts
# /usr/lib/rma-broker/emulators there: libvirt picks it as the emulator of every ppc64
# domain without <emulator>, which is every domain Nova 26 defines. The tenant policy
# opts Nova instances in by flavor (NovaFlavors=) and maps their project to a tenant
# (NovaProjects=); the hook reads that from the <nova:instance> metadata. The domains are
# written in the shape Nova's libvirt driver gives them (nova/virt/libvirt/config.py:
# LibvirtConfigGuest with the LibvirtConfigGuestMetaNovaInstance metadata, no emulator),
# for an ordinary flavor of 2 GiB: no hw:numa_*, so no NUMA cells. The wrapper makes the
# 256 MiB RMA the guest's boot memory and the other 1792 MiB a pc-dimm of node 0.
set -uo pipefail

. "$(dirname "$0")/e2e.sh"
. "$HERE/../lib/placement.sh"
e2e_begin nova "run libvirtd (tools/run-tests.sh runs as root)" libvirtd virsh qemu-system-ppc64 dbus-daemon busctl \
    unshare bash placement-api curl
cleanup() {
    stop_placement
    e2e_cleanup
}
trap cleanup EXIT

REAL_QEMU=$(command -v qemu-system-ppc64)
P_ACME=4f6c0a1e2b3d4c5e8f9a0b1c2d3e4f50
P_OTHER=9a8b7c6d5e4f40302a1b0c9d8e7f6a5b
USER_ID=0123456789ab4cdeb0123456789abcde
UUID_A=7e1c2d3e-0000-4000-8000-0000000000a1
UUID_B=7e1c2d3e-0000-4000-8000-0000000000b2
UUID_PLAIN=7e1c2d3e-0000-4000-8000-0000000000c3
DOM_A=instance-$$-a DOM_B=instance-$$-b DOM_PLAIN=instance-$$-plain

mkdir -p "$TEST_DIR/policy.d"
cat >"$TEST_DIR/policy.d/50-nova.conf" <<CONF
# Nova instances of flavors rma.* get an RMA; project acme's are tenant nova-acme.
[Tenant nova-acme]
NovaFlavors=rma.*
NovaProjects=$P_ACME
MaxRmas=1

[Tenant nova-other]
NovaProjects=$P_OTHER
# A tenant account (nobody), which may Reserve for its own tenant: the squatter below.
Users=nobody
CONF
: >"$TEST_DIR/rma-brokerd.conf"
start_private_bus
start_broker --count=2 --size=256M --qemu-users=libvirt-qemu --policy-dir="$TEST_DIR/policy.d"
check "broker is up with 2 RMAs of 256 MiB" prop_is TotalRmas 2
SOCK=$TEST_DIR/run/broker.sock

# The wrapper under libvirt's default emulator name, first on libvirtd's PATH; the hook.
# (The shims only name the test's broker, policy and QEMU: libvirt passes no environment.)
install_libvirt_plugin
mkdir -p "$TEST_DIR/emulators"
cat >"$TEST_DIR/emulators/qemu-system-ppc64" <<SH
#!/bin/bash
RMA_BROKER_SOCKET=$SOCK RMA_BROKER_TIMEOUT=3 RMA_QEMU_BINARY=$REAL_QEMU $PLUGIN_ENV exec -a "\$0" $TEST_DIR/bin/qemu-rma "\$@"
SH
cat >"$TEST_DIR/bin/50-rma-broker" <<SH
#!/bin/sh
RMA_BROKER_SOCKET=$SOCK RMA_BROKER_TIMEOUT=3 RMA_BROKER_CONFIG=$TEST_DIR/rma-brokerd.conf \
    RMA_BROKER_POLICY_DIR=$TEST_DIR/policy.d $PLUGIN_ENV exec $TEST_DIR/bin/rma-broker-hook-front "\$@"
SH
chmod 0755 "$TEST_DIR/emulators/qemu-system-ppc64" "$TEST_DIR/bin/50-rma-broker"

export SANDBOX_VIRTLOGD=1 SANDBOX_PATH_PREFIX=$TEST_DIR/emulators
if ! sandbox_start "$TEST_DIR/bin/50-rma-broker"; then
    not_ok "private libvirtd starts"
    tap_done
    exit 1
fi
ok "private libvirtd started, the wrapper first on its PATH"

check_match "libvirt's default ppc64 emulator is the wrapper" \
    "<emulator>$TEST_DIR/emulators/qemu-system-ppc64</emulator>" "$(sandbox_virsh capabilities)"
caps=$(sandbox_virsh domcapabilities --arch ppc64 --virttype qemu --machine pseries 2>&1)
check_match "libvirt probes QEMU's capabilities through it" "<path>$TEST_DIR/emulators/qemu-system-ppc64</path>" "$caps"
check_match "... and gets the real QEMU's answers (pseries, its CPU models)" "<machine>pseries" "$caps"

# nova_xml NAME UUID FLAVOR PROJECT [EMULATOR]: a domain as Nova 26's libvirt driver
# writes it for a 2 GiB flavor without extra specs (no <emulator>: Nova sets none).
nova_xml() {
    cat <<EOF
<domain type="qemu">
  <uuid>$2</uuid>
  <name>$1</name>
  <memory>2097152</memory>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="26.2.2"/>
      <nova:name>vm-$1</nova:name>
      <nova:creationTime>2026-12-04 12:00:00</nova:creationTime>
      <nova:flavor name="$3">
        <nova:memory>2048</nova:memory>
        <nova:disk>0</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>2</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="$USER_ID">admin</nova:user>
        <nova:project uuid="$4">project</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>
  <vcpu>2</vcpu>
  <os>
    <type arch="ppc64" machine="pseries">hvm</type>
  </os>
  <cpu>
    <topology sockets="2" cores="1" threads="1"/>
  </cpu>
  <clock offset="utc"/>
  <devices>${5:+
    <emulator>$5</emulator>}
    <serial type="pty"/>
    <controller type="usb" model="none"/>
    <memballoon model="none"/>
  </devices>
</domain>
EOF
}
define() { nova_xml "$@" >"$SANDBOX/$1.xml" && sandbox_virsh define "$SANDBOX/$1.xml" >/dev/null; }
check "define $DOM_A (flavor rma.small, project acme)" define "$DOM_A" "$UUID_A" rma.small "$P_ACME"
check "define $DOM_B (flavor rma.small, project acme)" define "$DOM_B" "$UUID_B" rma.small "$P_ACME"
check "define $DOM_PLAIN (flavor m1.small: not opted in)" define "$DOM_PLAIN" "$UUID_PLAIN" m1.small "$P_ACME"
check "the XML defined has no <emulator> (as Nova writes it)" test -z "$(grep -F '<emulator>' "$SANDBOX/$DOM_A.xml")"
check_match "libvirt fills in its default emulator: the wrapper" \
    "<emulator>$TEST_DIR/emulators/qemu-system-ppc64</emulator>" "$(sandbox_virsh dumpxml "$DOM_A" --inactive)"

# An opted-in Nova instance gets its RMA, charged to the tenant its project maps to.
out=$(sandbox_virsh start "$DOM_A" 2>&1)
check "virsh start $DOM_A" test $? -eq 0 || diag "$out"
check_match "its RMA is leased to its QEMU, tenant nova-acme (NovaProjects=)" \
    "\"leased\" \"$UUID_A\" \"$DOM_A\" \"nova-acme\" $(sandbox_qemu_pid "$DOM_A")" "$(leases)"
node0=$(tr '\0' '\n' <"/proc/$(sandbox_qemu_pid "$DOM_A")/cmdline" | grep -F '"ppc_spapr.ram"')
check_match "its boot memory is the region (/proc/self/fd), put there by the wrapper" \
    '"qom-type":"memory-backend-file".*"mem-path":"/proc/self/fd/[0-9]+"' "$node0"
check_eq "QEMU tells the guest its RMA: memory@0 is exactly 256 MiB" "memory@0 0x0 0x10000000 0" \
    "$(sandbox_dtb_memory "$DOM_A" | grep '^memory@0 ')"
check_eq "... and the guest has its flavor's 2 GiB in one node, as Nova wrote it" "1 nodes node 0 size: 2048 MB " \
    "$(sandbox_virsh qemu-monitor-command --hmp "$DOM_A" "info numa" 2>&1 | tr -d '\r' | grep -E 'nodes|size:' |
        tr '\n' ' ')"
check_no_numa() { ! sandbox_virsh dumpxml "$DOM_A" --inactive | grep -q '<numa>'; }
check "its XML is as Nova wrote it: no NUMA cell added" check_no_numa

# Its flavor opts it in (NovaFlavors=) without requesting the resource, so Placement has no
# allocation for it: the Placement agent names the flavor and the fix, from the domain's
# Nova metadata read through libvirt.
placement_setup
if start_placement; then
    CN=$(add_compute_node compute-nova)
    printf '[agent]\ntenant = nova-acme\ncompute_node = compute-nova\nlibvirt_uri = %s\n[placement]\ncloud = test\n' \
        "$SANDBOX_URI" >"$TEST_DIR/agent.conf"
    chmod 0600 "$TEST_DIR/agent.conf"
    out=$(OS_CLIENT_CONFIG_FILE=$TEST_DIR/clouds.yaml $PY "$SOURCE_DIR/openstack/rma-placement-agent" \
        --config "$TEST_DIR/agent.conf" --once --debug 2>&1)
    check "the Placement agent syncs with $DOM_A holding an RMA" test $? -eq 0 || diag "$out"
    check_match "... and names its flavor, which opts in without requesting the resource, and the fix" \
        "Flavor rma.small gets RMAs \\(NovaFlavors=\\) but does not request resources:CUSTOM_RMA_256MB=1: its instances $UUID_A hold RMAs of tenant nova-acme .*openstack flavor set --property resources:CUSTOM_RMA_256MB=1 rma.small" \
        "$out"
    stop_placement
else
    not_ok "Placement starts"; diag "$(tail -20 "$TEST_DIR/placement.log")"
fi

# The project's cap: the second instance is refused with the broker's reason.
out=$(sandbox_virsh start "$DOM_B" 2>&1)
check "virsh start $DOM_B fails: its project is at its cap" test $? -ne 0
check_match "... with the broker's reason" "tenant nova-acme holds 1 of its MaxRmas=1" "$out"
check "... and it holds nothing" test -z "$(leases | grep -F "$UUID_B")"

# A domain that did not opt in starts exactly as without rma-broker: the same QEMU
# arguments as with the real QEMU named as its <emulator>, and no RMA.
cmdline_of() { # the running QEMU's argv, one per line, libvirt's per-start numbers masked
    tr '\0' '\n' <"/proc/$(sandbox_qemu_pid "$1")/cmdline" | sed -E 's/domain-[0-9]+-/domain-N-/g'
}
out=$(sandbox_virsh start "$DOM_PLAIN" 2>&1)
check "virsh start $DOM_PLAIN (not opted in)" test $? -eq 0 || diag "$out"
with_wrapper=$(cmdline_of "$DOM_PLAIN")
check "... it holds no RMA" test -z "$(leases | grep -F "$UUID_PLAIN")"
sandbox_virsh destroy "$DOM_PLAIN" >/dev/null
nova_xml "$DOM_PLAIN" "$UUID_PLAIN" m1.small "$P_ACME" "$REAL_QEMU" >"$SANDBOX/$DOM_PLAIN-real.xml"
sandbox_virsh define "$SANDBOX/$DOM_PLAIN-real.xml" >/dev/null
out=$(sandbox_virsh start "$DOM_PLAIN" 2>&1)
check "the same domain with the real QEMU as its <emulator> starts" test $? -eq 0 || diag "$out"
without=$(cmdline_of "$DOM_PLAIN")
check_eq "the same QEMU argv through the wrapper as without it" "$without" "$with_wrapper"
sandbox_virsh destroy "$DOM_PLAIN" >/dev/null
# Back as Nova wrote it (no <emulator>), so that the attacks below go through the wrapper.
check "$DOM_PLAIN defined again without <emulator>" define "$DOM_PLAIN" "$UUID_PLAIN" m1.small "$P_ACME"

check "the hook recorded that $DOM_A opted in (root's, 0644, in the domains dir)" \
    test "$(stat -c '%U %a' "$TEST_DIR/run/domains/$UUID_A")" = "root 644"
check "... and nothing for $DOM_PLAIN" test ! -e "$TEST_DIR/run/domains/$UUID_PLAIN"

# Attacks on domains that did not opt in: they never depend on the broker.
# (timeout: a bound on a hang, not a measure; the note gives the times.)
plain_starts() { # plain_starts LABEL [broker-stopped]: DOM_PLAIN starts (how long: a diagnostic, not a check)
    local out status t0=${EPOCHREALTIME/[.,]/}
    out=$(timeout 20 virsh -q -c "$SANDBOX_URI" start "$DOM_PLAIN" 2>&1); status=$?
    check "$1" test $status -eq 0 || diag "$out"
    diag "virsh start took $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) ms"
    # (Asked only of a broker that answers: a stopped one would hold busctl 25 s.)
    [ "${2:-}" = broker-stopped ] ||
        check "... as without rma-broker: its QEMU claimed nothing" test -z "$(leases | grep -F "$UUID_PLAIN")"
    sandbox_virsh destroy "$DOM_PLAIN" >/dev/null 2>&1
}
# 1. A tenant account squats the uuid of a domain of another project that did not opt in.
squat=$(as_nobody busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 \
    Reserve sss "$UUID_PLAIN" "$DOM_PLAIN" nova-other 2>&1)
check_match "a tenant account (nobody, of nova-other) reserves the uuid of $DOM_PLAIN" "^u [0-9]+" "$squat"
plain_starts "... and $DOM_PLAIN, which did not opt in, starts all the same (its QEMU asks the broker nothing)"
check_match "... and the squatter's reservation is still its own, unclaimed" "\"reserved\" \"$UUID_PLAIN\"" \
    "$(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas)"
busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 Release s "$UUID_PLAIN" >/dev/null
# 2. broker.sock accepts, nobody serves: a stopped broker.
kill -STOP "$BROKER_PID"
plain_starts "while the broker is stopped (SIGSTOP: broker.sock accepts, nobody answers), $DOM_PLAIN starts" \
    broker-stopped
t0=$SECONDS
out=$(timeout 60 virsh -q -c "$SANDBOX_URI" start "$DOM_B" 2>&1); status=$?
check "... while an opted-in domain fails, after a bounded wait (RMA_BROKER_TIMEOUT=3 here; 30 s by default)" \
    test $status -ne 0 -a $((SECONDS - t0)) -lt 30
check_match "... saying what to check" \
    "rma-brokerd accepted on .* but did not answer within 3 s: it is starting, stopped or stuck. Check systemctl status rma-brokerd.service" "$out"
kill -CONT "$BROKER_PID"

sandbox_virsh destroy "$DOM_A" >/dev/null
check "the instance's RMA comes back when it stops" wait_until 10 prop_is FreeRmas 2
check "... and the hook removed its record" test ! -e "$TEST_DIR/run/domains/$UUID_A"
# 3. Its QEMU user is outside QemuUsers= (qemu.conf user = "root", a per-domain DAC seclabel).
stop_broker
start_broker --count=2 --size=256M --qemu-users=nobody --policy-dir="$TEST_DIR/policy.d"
plain_starts "with libvirt-qemu outside QemuUsers=, $DOM_PLAIN starts"
stop_broker
start_broker --count=2 --size=256M --qemu-users=libvirt-qemu --policy-dir="$TEST_DIR/policy.d"
# 1b. The squatter reserves the uuid of an opted-in domain of another project: the hook (root)
# takes the reservation over at the domain's start.
squat=$(as_nobody busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 \
    Reserve sss "$UUID_B" "$DOM_B" nova-other 2>&1)
check_match "the tenant account reserves the uuid of $DOM_B (opted in, project acme)" "^u [0-9]+" "$squat"
out=$(sandbox_virsh start "$DOM_B" 2>&1)
check "then the project's other instance starts, the squatter's reservation taken over" test $? -eq 0 || diag "$out"
check_match "... its RMA leased for tenant nova-acme, not the squatter's" \
    "\"leased\" \"$UUID_B\" \"$DOM_B\" \"nova-acme\"" "$(leases)"
sandbox_virsh destroy "$DOM_B" >/dev/null

# 4. The admin takes the flavor out of NovaFlavors= while an instance runs (issue 41): its
# destroy still removes its record, and its next start is plain, not stranded.
out=$(sandbox_virsh start "$DOM_A" 2>&1)
check "virsh start $DOM_A (opted in)" test $? -eq 0 || diag "$out"
sed -i 's/^NovaFlavors=rma\.\*$/NovaFlavors=rma.large/' "$TEST_DIR/policy.d/50-nova.conf"
kill -HUP "$BROKER_PID"
sandbox_virsh destroy "$DOM_A" >/dev/null
check "NovaFlavors= narrowed while it ran: its destroy still removes its record" \
    test ! -e "$TEST_DIR/run/domains/$UUID_A"
out=$(sandbox_virsh start "$DOM_A" 2>&1)
check "... and it starts again, plainly" test $? -eq 0 || diag "$out"
check "... holding no RMA" test -z "$(leases | grep -F "$UUID_A")"
sandbox_virsh destroy "$DOM_A" >/dev/null
sed -i 's/^NovaFlavors=rma\.large$/NovaFlavors=rma.*/' "$TEST_DIR/policy.d/50-nova.conf"
kill -HUP "$BROKER_PID"
# 5. domains/ made 1777 by mistake; nobody puts an empty file named as $DOM_PLAIN's uuid.
chmod 1777 "$TEST_DIR/run/domains"
as_nobody touch "$TEST_DIR/run/domains/$UUID_PLAIN"
plain_starts "domains/ at 1777 with nobody's file named as $DOM_PLAIN: it starts all the same"
out=$(sandbox_virsh start "$DOM_A" 2>&1)
check_match "... while an opted-in instance is refused, with the fix" "chmod 0755 $TEST_DIR/run/domains" "$out"
rm -f "$TEST_DIR/run/domains/$UUID_PLAIN"
chmod 0755 "$TEST_DIR/run/domains"
check_hook_calls_quiet

if [ "$TAP_FAILED" -ne 0 ]; then
    diag "broker log:"; diag "$(tail -30 "$TEST_DIR/broker.log")"
    diag "domain log:"; diag "$(sandbox_domain_log "$DOM_A" 2>/dev/null | tail -20)"
fi
tap_done
