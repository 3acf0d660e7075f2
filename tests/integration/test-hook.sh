#!/usr/bin/env bash
# Integration: the qemu.d hook binary as libvirtd runs it (NAME OP SUBOP -, domain XML on
# stdin), against the built broker: every operation, opt-in detection, refusals as one
# stderr line with exit 1, quiet release, and a reconnect that never fails.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: Reserve is for root, as the hook is"
    exit 0
fi

make_test_dir htest
cleanup() { stop_broker; stop_private_bus; rm -rf "$TEST_DIR"; }
trap cleanup EXIT

HOOK=$BUILD_DIR/libvirt-plugin/rma-broker-hook
U1=11111111-aaaa-4aaa-8aaa-000000000001
U2=11111111-aaaa-4aaa-8aaa-000000000002

xml() { # NAME UUID [METADATA] [EMULATOR]
    cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <uuid>$2</uuid>
  <metadata>${3:-}</metadata>
  <devices><emulator>${4:-/usr/bin/qemu-system-ppc64}</emulator></devices>
</domain>
XML
}
OPT_IN='<rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1"/>'

# hook NAME OP SUBOP < xml: sets STATUS and ERR (its stderr), like libvirtd sees them.
hook() {
    ERR=$(env -i LC_ALL=C PATH=/usr/bin:/bin HOME=/root RMA_BROKER_SOCKET="$RMA_BROKER_SOCKET" \
        "$HOOK" "$1" "$2" "$3" - 2>&1 >/dev/null)
    STATUS=$?
}

start_private_bus
start_broker --count=1 --size=1M --qemu-users=nobody --no-check-cgroup --policy-dir="$TEST_DIR/none"

# Domains that did not opt in are never the broker's business, whatever its state.
RMA_BROKER_SOCKET=/nonexistent/broker.sock hook plain prepare begin < <(xml plain "$U1")
check_eq "a domain without opt-in: prepare exits 0 without asking the broker" "0:" "$STATUS:$ERR"

hook dom1 prepare begin < <(xml dom1 "$U1" "$OPT_IN")
check_eq "prepare begin of an opted-in domain exits 0" "0:" "$STATUS:$ERR"
check_eq "... and reserves its RMA" 1 "$(prop ReservedRmas)"
hook dom1 prepare begin < <(xml dom1 "$U1" "$OPT_IN")
check_eq "a retried prepare is harmless" "0:1" "$STATUS:$(prop ReservedRmas)"
hook dom1 start begin < /dev/null
check_eq "other operations are ignored" "0:" "$STATUS:$ERR"

hook dom1 reconnect begin < <(xml dom1 "$U1" "$OPT_IN")
check_eq "reconnect reports the domain's slot and exits 0" "0:rma-broker: domain dom1 holds RMA slot 0 (reserved, pid 0)" "$STATUS:$ERR"

hook dom2 prepare begin < <(xml dom2 "$U2" "" /usr/bin/qemu-rma)
check_eq "opt-in by the qemu-rma emulator alone; pool of 1 exhausted: exit 1" 1 "$STATUS"
check_match "one stderr line with the broker's reason" \
    "^rma-broker: No free RMA for domain dom2: all 1 RMAs of 1 MiB are taken \(1 reserved, 0 leased, 0 being scrubbed\)" "$ERR"
check_eq "... exactly one line" 1 "$(wc -l <<<"$ERR")"

hook dom1 release end < <(xml dom1 "$U1" "$OPT_IN")
check_eq "release end returns the RMA quietly" "0::0" "$STATUS:$ERR:$(prop ReservedRmas)"
hook dom1 release end < <(xml dom1 "$U1" "$OPT_IN")
check_eq "release of a domain that holds nothing is quiet too" "0:" "$STATUS:$ERR"
hook dom1 reconnect begin < <(xml dom1 "$U1" "$OPT_IN")
check_match "reconnect of a domain the broker does not know: a warning, exit 0" \
    "^0:rma-broker: warning: domain dom1 is running but rma-brokerd holds no RMA for it" "$STATUS:$ERR"

hook dom3 prepare begin < <(xml dom3 "$U2" '<rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1" tenant="acme"/>')
check_match "a tenant the policy lacks: exit 1 with the reason" \
    "^1:rma-broker: No RMA for domain dom3: domain dom3 names tenant 'acme' in its rma metadata, but the policy has no \[Tenant acme\]" "$STATUS:$ERR"

hook dom4 prepare begin <<<"<domain><name>dom4</name><uuid>not-a-uuid</uuid><metadata>$OPT_IN</metadata></domain>"
check_eq "an opted-in domain with a bad uuid is refused" "1:rma-broker: domain dom4 has an invalid <uuid> 'not-a-uuid'" "$STATUS:$ERR"
hook dom5 prepare begin <<<"<domain><name>dom5</name><metadata>$OPT_IN"
check_match "unreadable XML that asks for an RMA is refused" "^1:rma-broker: error: cannot read the domain XML of dom5" "$STATUS:$ERR"
hook dom6 prepare begin <<<"<domain><name>dom6</name><oops"
check_match "unreadable XML of some other domain is let through with a warning" "^0:rma-broker: warning: cannot read the domain XML of dom6" "$STATUS:$ERR"

# The broker is down.
RMA_BROKER_SOCKET=$TEST_DIR/gone.sock
hook dom1 prepare begin < <(xml dom1 "$U1" "$OPT_IN")
check_match "prepare with the broker down: exit 1 and what to check" \
    "^1:rma-broker: no RMA for domain dom1: cannot reach rma-brokerd at $TEST_DIR/gone.sock \(No such file or directory\); is rma-brokerd.service running\?" "$STATUS:$ERR"
hook dom1 release end < <(xml dom1 "$U1" "$OPT_IN")
check_match "release with the broker down: a warning, exit 0" "^0:rma-broker: warning: could not release" "$STATUS:$ERR"
hook dom1 reconnect begin < <(xml dom1 "$U1" "$OPT_IN")
check_match "reconnect with the broker down: a warning, exit 0 (the guest keeps running)" \
    "^0:rma-broker: warning: domain dom1 keeps running, but its RMA cannot be checked" "$STATUS:$ERR"

check "broker exits cleanly" stop_broker
tap_done
