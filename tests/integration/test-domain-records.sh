#!/usr/bin/env bash
# Integration: the hook's records of opted-in domains ($RUNTIME_DIR/domains/UUID) cannot
# strand a domain, and nobody but root can make one count. The hook and the default-
# emulator wrapper (qemu-rma as qemu-system-ppc64, run as the QEMU user nobody, in front
# of a fake QEMU that prints what it was given) as libvirt runs them, for domains as Nova
# writes them, opted in by NovaFlavors=:
# - the admin narrows NovaFlavors= between prepare and release, or breaks the policy:
#   release still removes the record, and the next start is plain;
# - a record left from an earlier start goes at prepare when the domain no longer opts in;
# - a record without a reservation is refused, naming the file to remove;
# - nobody's file in a domains/ made 1777 keeps no domain from starting; the hook
#   refuses to record there, and the broker refuses to start on it.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the hook runs as root, the wrapper as nobody"
    exit 0
fi

make_test_dir records
cleanup() { stop_broker; stop_private_bus; rm -rf "$TEST_DIR"; }
trap cleanup EXIT

PROJECT=4f6c0a1e2b3d4c5e8f9a0b1c2d3e4f50
U_A=7e1c2d3e-0000-4000-8000-0000000000a1     # flavor rma.small: opted in
U_PLAIN=7e1c2d3e-0000-4000-8000-0000000000c3 # flavor m1.small: never opted in
DOMAINS=$TEST_DIR/run/domains

mkdir -p "$TEST_DIR/policy.d"
policy() { printf '[Tenant nova]\nNovaFlavors=%s\nNovaProjects=%s\n' "$1" "$PROJECT" >"$TEST_DIR/policy.d/50-nova.conf"; }
policy 'rma.*'
: >"$TEST_DIR/rma-brokerd.conf"

nova_xml() { # NAME UUID FLAVOR
    cat <<XML
<domain type="qemu">
  <uuid>$2</uuid>
  <name>$1</name>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:flavor name="$3"/>
      <nova:owner><nova:project uuid="$PROJECT">project</nova:project></nova:owner>
    </nova:instance>
  </metadata>
  <os><type arch="ppc64" machine="pseries">hvm</type></os>
</domain>
XML
}

# hook NAME UUID FLAVOR OP SUBOP: as libvirtd runs it (root, a clean environment, the XML
# on stdin); sets STATUS and ERR.
hook() {
    ERR=$(nova_xml "$1" "$2" "$3" | env -i LC_ALL=C PATH=/usr/bin:/bin RMA_BROKER_SOCKET="$RMA_BROKER_SOCKET" \
        RMA_BROKER_CONFIG="$TEST_DIR/rma-brokerd.conf" RMA_BROKER_POLICY_DIR="$TEST_DIR/policy.d" \
        "$BUILD_DIR/libvirt-plugin/rma-broker-hook" "$1" "$4" "$5" - 2>&1 >/dev/null)
    STATUS=$?
}

# The wrapper as libvirt's default ppc64 emulator, run by the QEMU user; QEMU is a fake.
install_libvirt_plugin
mkdir -p "$TEST_DIR/emulators"
printf '#!/bin/sh\necho "fake-qemu: $*"\n' >"$TEST_DIR/bin/fake-qemu"
printf '#!/bin/bash\nRMA_BROKER_SOCKET=%s RMA_BROKER_TIMEOUT=3 RMA_QEMU_BINARY=%s %s exec -a "$0" %s "$@"\n' \
    "$TEST_DIR/run/broker.sock" "$TEST_DIR/bin/fake-qemu" "$PLUGIN_ENV" "$TEST_DIR/bin/qemu-rma" \
    >"$TEST_DIR/emulators/qemu-system-ppc64"
chmod 0755 "$TEST_DIR/bin/fake-qemu" "$TEST_DIR/emulators/qemu-system-ppc64"
NODE0='{"qom-type":"memory-backend-ram","id":"ram-node0","size":1048576}'
# qemu UUID: sets STATUS and OUT (stdout and stderr), as the domain's log has them.
qemu() {
    OUT=$(cd / && as_nobody "$TEST_DIR/emulators/qemu-system-ppc64" -name guest=x -machine pseries \
        -object "$NODE0" -numa node,nodeid=0,cpus=0,memdev=ram-node0 -uuid "$1" 2>&1)
    STATUS=$?
}
plain_start() { [ "$STATUS" = 0 ] && [[ $OUT == *"fake-qemu: "*memory-backend-ram* ]]; }
rma_start() { [ "$STATUS" = 0 ] && [[ $OUT == *"fake-qemu: "*memory-backend-file*/proc/self/fd/* ]]; }

start_private_bus
broker() { start_broker --count=2 --size=1M --qemu-users=nobody --no-check-cgroup --policy-dir="$TEST_DIR/policy.d"; }
broker

# 1. The admin takes the flavor out of NovaFlavors= between prepare and release.
hook inst-a "$U_A" rma.small prepare begin
check_eq "a Nova instance of flavor rma.small: prepare reserves and records it" "0::1" \
    "$STATUS:$ERR:$(prop ReservedRmas)"
check "... its record is there" test -f "$DOMAINS/$U_A"
qemu "$U_A"
check "... and its QEMU gets the RMA" rma_start
policy 'rma.large'
kill -HUP "$BROKER_PID"
hook inst-a "$U_A" rma.small release end
check_eq "NovaFlavors= narrowed while it ran, then release end: exit 0, quiet" "0:" "$STATUS:$ERR"
check "... and its record is gone although the policy no longer opts it in" test ! -e "$DOMAINS/$U_A"
hook inst-a "$U_A" rma.small prepare begin
qemu "$U_A"
check "... so the next start is plain: no reservation, QEMU as libvirt built it" plain_start
check_eq "... nothing reserved" 0 "$(prop ReservedRmas)"

# 2. A policy that fails to load at release.
policy 'rma.*'
hook inst-a "$U_A" rma.small prepare begin
check_eq "opted in again: prepare reserves" "0:1" "$STATUS:$(prop ReservedRmas)"
echo 'this is no policy' >"$TEST_DIR/policy.d/99-broken.conf"
hook inst-a "$U_A" rma.small release end
check "the policy does not load at release: the record goes all the same" test ! -e "$DOMAINS/$U_A"
check_eq "... and the broker is told to release the reservation the record stood for" 0 "$(prop ReservedRmas)"
rm -f "$TEST_DIR/policy.d/99-broken.conf"

# 3. A record left from an earlier start (release never ran), the domain no longer opted in.
policy 'rma.large'
hook_record "$U_A" inst-a nova
hook inst-a "$U_A" rma.small prepare begin
check_eq "prepare of a domain that no longer opts in: exit 0" "0:" "$STATUS:$ERR"
check "... and the record left from an earlier start is gone" test ! -e "$DOMAINS/$U_A"
qemu "$U_A"
check "... so its QEMU starts plainly" plain_start

# 4. A record without a reservation (the hook did not run at this start): refused, saying
# exactly which file to remove; removing it lets the domain start plainly.
hook_record "$U_A" inst-a nova
qemu "$U_A"
check_eq "a record without a reservation: the wrapper refuses" 1 "$STATUS"
check_match "... saying the domain asked for an RMA that the broker does not hold" \
    "qemu-rma: domain $U_A asked for an RMA \(the hook recorded it in $DOMAINS/$U_A\), but rma-brokerd holds none for it: .*Start the domain again" "$OUT"
fix=$(sed -n 's/.*remove it (\(rm -f [^)]*\)).*/\1/p' <<<"$OUT")
check_eq "... and exactly which file to remove" "rm -f $DOMAINS/$U_A" "$fix"
sh -c "$fix"
qemu "$U_A"
check "... after which the domain starts plainly" plain_start
policy 'rma.*'

# 5. The attack: domains/ made 1777 while the broker runs; nobody puts an empty file named
# as a domain that never opted in, after its prepare.
hook inst-p "$U_PLAIN" m1.small prepare begin
chmod 1777 "$DOMAINS"
as_nobody touch "$DOMAINS/$U_PLAIN"
qemu "$U_PLAIN"
check "domains/ at 1777, nobody's empty file named as a plain domain: it starts all the same" plain_start
check_match "... with a warning naming the directory and the fix" \
    "qemu-rma: warning: ignoring what is not the hook's: $DOMAINS is owned by uid 0 with mode 1777: .*chown 0 $DOMAINS && chmod 0755 $DOMAINS" "$OUT"
hook inst-a "$U_A" rma.small prepare begin
check_match "prepare of an opted-in domain there is refused, with the fix" \
    "^1:rma-broker: no RMA for domain inst-a: $DOMAINS is owned by uid 0 with mode 1777: .*chmod 0755" "$STATUS:$ERR"
check_eq "... before reserving anything" 0 "$(prop ReservedRmas)"
hook_record "$U_A" inst-a nova
qemu "$U_A"
check "... and even root's record there is not trusted: the wrapper asks the broker nothing" plain_start

# The broker refuses to start on such a domains/, and says how to fix it.
stop_broker
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/run" --backend=memfd --count=1 --size=1M 2>&1); status=$?
check_eq "domains/ at 1777: the broker refuses to start (exit 1)" 1 "$status"
check_match "... saying why and the fix" \
    "$DOMAINS is owned by uid 0 with mode 1777: another user could put or remove the hook's records there.*chmod 0755 $DOMAINS" "$out"
chmod 0755 "$DOMAINS"
chown nobody "$DOMAINS"
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/run" --backend=memfd --count=1 --size=1M 2>&1); status=$?
check_match "nobody's domains/ (0755): refused too" "^1:.*$DOMAINS is owned by uid [0-9]+ with mode 0755" "$status:$out"
chown root "$DOMAINS"
rm -f "$DOMAINS"/*
mv "$DOMAINS" "$TEST_DIR/domains.real"
ln -s "$TEST_DIR/domains.real" "$DOMAINS"
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/run" --backend=memfd --count=1 --size=1M 2>&1); status=$?
check_match "domains/ a symlink: refused too" "^1:.*$DOMAINS is not a directory \(a symlink or a file\)" "$status:$out"
rm "$DOMAINS"
mv "$TEST_DIR/domains.real" "$DOMAINS"
broker
check "root's 0755 domains/: the broker starts" broker_alive

# 6. A file at a record's path that is not root's (nobody's, in root's own domains/).
hook_record "$U_PLAIN" inst-p nova
chown nobody "$DOMAINS/$U_PLAIN"
qemu "$U_PLAIN"
check "a record owned by nobody is ignored: the domain starts plainly" plain_start
check_match "... with a warning naming it and the fix" \
    "ignoring what is not the hook's: $DOMAINS/$U_PLAIN is not a record of the hook's \(a file of uid [0-9]+ with mode 0644\): remove it \(rm $DOMAINS/$U_PLAIN\)" "$OUT"
rm -f "$DOMAINS/$U_PLAIN"

# 7. The fixes the broker prints quote the path for the shell.
BAD="$TEST_DIR/run dir;touch \$HOME"
mkdir -m 0777 "$BAD"
out=$(timeout 20 "$BROKERD" --runtime-dir="$BAD" --backend=memfd --count=1 --size=1M 2>&1)
q=$(printf "%s" "'$BAD'")
check "an unsafe runtime dir with a hostile name: the fix quotes it for the shell" \
    grep -qF "remove it (rm -r $q) or make it the broker's (chown 0 $q; chmod 0755 $q)" <<<"$out"

check "broker exits cleanly" stop_broker
if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(tail -40 "$TEST_DIR/broker.log")"; fi
tap_done
