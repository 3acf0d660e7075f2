#!/usr/bin/env bash
# Integration: the broker's AUDIT_VIRT_RESOURCE records, read from the kernel's audit
# multicast with the kernel's audit switched on for the test and put back as it was
# (tests/helpers/audit-listen.py): a grant, a Claim, a refusal, a lease's end, a release
# and a ForgetRegion each leave one record in libvirt's field style; a domain name that
# looks like more fields cannot forge one; denials reach the journal at notice level with
# the caller's uid, bounded.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the kernel's audit switch and its multicast"
    exit 0
fi

make_test_dir audit
LISTENER=
cleanup() {
    # SIGTERM: the listener puts the kernel's audit switch back as it found it.
    [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null && wait "$LISTENER" 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

QEMU_UID=4243
RECORDS=$TEST_DIR/audit.log
coproc LISTEN { exec python3 "$SOURCE_DIR/tests/helpers/audit-listen.py" "$RECORDS"; }
LISTENER=$LISTEN_PID
read -r -t 10 state <&"${LISTEN[0]}"
if [ "${state:-}" != ready ]; then
    # A kernel without audit (built without it, or a container without the netlink family):
    # nothing to read, and the broker says so at start instead.
    echo "1..0 # SKIP the kernel's audit cannot be read here: ${state:-no answer}"
    exit 0
fi

uuid_n() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }
records() { grep '^2501 ' "$RECORDS"; }
has_record() { records | grep -q -- "$1"; }

start_private_bus
start_broker --count=2 --size=4M --qemu-users=$QEMU_UID --no-check-cgroup
check_match "the broker does not say audit is missing" "^$" "$(grep -c 'not audited' "$TEST_DIR/broker.log" | sed 's/^0$//')"

"$TEST_CLIENT" reserve "$(uuid_n 1)" web-1 </dev/null >/dev/null
check "a grant leaves a VIRT_RESOURCE record (type 2501)" \
    wait_until 3 has_record "virt=kvm resrc=rma reason=start vm=\"web-1\" uuid=\"$(uuid_n 1)\" tenant=\"default\" slot=[0-9] size=4194304 pid=[0-9]* uid=0 .*res=success"
out=$(setpriv --reuid=$QEMU_UID --regid=$QEMU_UID --clear-groups -- "$TEST_CLIENT" claim "$(uuid_n 1)" </dev/null)
check_match "the QEMU user claims" "^held" "$out"
check "the Claim leaves one, with the QEMU user's uid" \
    wait_until 3 has_record "reason=start vm=\"web-1\" .* uid=$QEMU_UID .*res=success"
check "the lease's end leaves a stop record" wait_until 3 has_record "reason=stop vm=\"web-1\" .*res=success"
as_nobody "$TEST_CLIENT" reserve "$(uuid_n 2)" web-2 </dev/null >/dev/null 2>&1
check "a refusal leaves a failed record with the caller's uid" \
    wait_until 3 has_record "reason=start vm=\"web-2\" uuid=\"$(uuid_n 2)\" .*uid=65534 .*res=failed"
"$TEST_CLIENT" reserve "$(uuid_n 3)" web-3 </dev/null >/dev/null
"$TEST_CLIENT" release "$(uuid_n 3)" </dev/null >/dev/null
check "a release leaves a stop record" wait_until 3 has_record "reason=stop vm=\"web-3\" .*uid=0 .*res=success"
busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ForgetRegion u 0 \
    >/dev/null 2>&1
check "a ForgetRegion leaves a forget record (refused here: slot 0 is not held elsewhere)" \
    wait_until 3 has_record "reason=forget .*slot=0 .*uid=0 .*res=failed"
# A name that reads like more fields is hex-encoded by libaudit: no forged res=success.
"$TEST_CLIENT" reserve "$(uuid_n 4)" 'x res=success' </dev/null >/dev/null 2>&1
check "a domain name with spaces and '=' is hex-encoded, not taken as fields" \
    wait_until 3 has_record "vm=78207265733D73756363657373 "

# Denials: at notice level, with the caller's uid, at most 10 per 10 s.
before=$(grep -c 'Refused Claim of' "$TEST_DIR/broker.log")
for i in $(seq 30); do as_nobody "$TEST_CLIENT" claim "$(uuid_n 1)" </dev/null >/dev/null 2>&1; done
lines=$(($(grep -c 'Refused Claim of' "$TEST_DIR/broker.log") - before))
check_match "a denied Claim is logged with the caller's uid" "Refused Claim of $(uuid_n 1) from uid 65534 .*not a QEMU user" \
    "$(cat "$TEST_DIR/broker.log")"
check "... 30 denials in a row give at most 10 lines ($lines)" test "$lines" -le 10

tap_done
