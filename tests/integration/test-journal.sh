#!/usr/bin/env bash
# Integration: under journald the broker logs with the native journal protocol and
# structured fields, so that `journalctl RMA_DOMAIN=web-01` finds every reserve, claim,
# release, expiry and refusal of that domain. This machine runs no journald, so the test
# runs in a private mount namespace where a receiver of its own listens on
# /run/systemd/journal/socket and decodes the protocol (the host's /run is untouched),
# and starts the built broker with JOURNAL_STREAM naming its stderr, as systemd does.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: a private mount namespace"
    exit 0
fi
if [ -z "${RMA_JOURNAL_NS:-}" ]; then
    exec unshare --mount --propagation private env RMA_JOURNAL_NS=1 "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

make_test_dir journal
RECEIVER_PID=
cleanup() {
    stop_broker
    [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/journal
python3 - /run/systemd/journal/socket "$TEST_DIR/journal.jsonl" <<'PY' &
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    data = s.recv(1 << 20)
    entry, i = {}, 0
    while i < len(data):            # KEY=value\n, or KEY\n<le64 length><value>\n
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            k, v = line, data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        entry[k.decode()] = v.decode(errors="replace")
    out.write(json.dumps(entry) + "\n")
PY
RECEIVER_PID=$!
wait_until 5 test -S /run/systemd/journal/socket

mkdir -p "$TEST_DIR/policy.d"
printf '[Tenant acme]\nMaxRmas=1\nDomains=web-*\n' >"$TEST_DIR/policy.d/10.conf"
: >"$TEST_DIR/stderr"
stream=$(stat -c '%d:%i' "$TEST_DIR/stderr")
JOURNAL_STREAM=$stream DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent "$BROKERD" --runtime-dir="$TEST_DIR/run" \
    --count=2 --size=4M --qemu-users=4243 --no-check-cgroup --reservation-timeout=1 \
    --policy-dir="$TEST_DIR/policy.d" 2>>"$TEST_DIR/stderr" &
BROKER_PID=$!
export RMA_BROKER_SOCKET=$TEST_DIR/run/broker.sock
wait_until 10 test -S "$RMA_BROKER_SOCKET"

# q FIELD=VALUE...: the journal entries that match, as the test sees them
q() { python3 - "$TEST_DIR/journal.jsonl" "$@" <<'PY'
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[2:])
for line in open(sys.argv[1]):
    e = json.loads(line)
    if all(e.get(k) == v for k, v in want.items()):
        print(" ".join(f"{k}={e[k]}" for k in ("RMA_SLOT", "RMA_TENANT", "RMA_PID", "RMA_RESULT") if k in e))
PY
}
# msgid NAME: the MESSAGE_ID of RMA_MESSAGE_NAME, as common/log.h defines it
msgid() { sed -n "s/^#define RMA_MESSAGE_$1 *\"\([0-9a-f]*\)\".*/\1/p" "$SOURCE_DIR/common/log.h"; }
lease_ended() { [ -n "$(q RMA_DOMAIN=web-01 MESSAGE_ID="$(msgid LEASE_ENDED)")" ]; }
U1=00000000-0000-4000-8000-0000000000a1 U2=00000000-0000-4000-8000-0000000000a2 U3=00000000-0000-4000-8000-0000000000a3
"$TEST_CLIENT" reserve $U1 web-01 >/dev/null
setpriv --reuid=4243 --regid=4243 --clear-groups "$TEST_CLIENT" claim $U1 </dev/null >/dev/null
wait_until 5 lease_ended
"$TEST_CLIENT" reserve $U2 web-02 >/dev/null     # web-01's lease has ended: granted
"$TEST_CLIENT" reserve $U3 web-03 >/dev/null     # quota: web-02 holds acme's one
"$TEST_CLIENT" release $U2 >/dev/null
"$TEST_CLIENT" reserve $U2 web-02 >/dev/null
sleep 2                                          # ... and this reservation expires
check_eq "journalctl RMA_DOMAIN=web-01: reserved, leased, lease ended" \
    "RMA_SLOT=0 RMA_TENANT=acme RMA_RESULT=granted
RMA_SLOT=0 RMA_TENANT=acme RMA_PID=$(q RMA_DOMAIN=web-01 MESSAGE_ID="$(msgid LEASED)" | sed -n 's/.*RMA_PID=\([0-9]*\).*/\1/p') RMA_RESULT=leased
RMA_SLOT=0 RMA_TENANT=acme RMA_PID=$(q RMA_DOMAIN=web-01 MESSAGE_ID="$(msgid LEASED)" | sed -n 's/.*RMA_PID=\([0-9]*\).*/\1/p') RMA_RESULT=process_exited" \
    "$(q RMA_DOMAIN=web-01)"
check_match "the lease names the QEMU's pid" "RMA_PID=[1-9][0-9]*" "$(q RMA_DOMAIN=web-01 MESSAGE_ID="$(msgid LEASED)")"
check_eq "journalctl RMA_DOMAIN=web-03: the quota refusal" "RMA_TENANT=acme RMA_RESULT=quota" "$(q RMA_DOMAIN=web-03)"
check_eq "journalctl RMA_DOMAIN=web-02: reserved, released unclaimed, reserved, expired" \
    "RMA_SLOT=0 RMA_TENANT=acme RMA_RESULT=granted
RMA_SLOT=0 RMA_TENANT=acme RMA_RESULT=unclaimed
RMA_SLOT=0 RMA_TENANT=acme RMA_RESULT=granted
RMA_SLOT=0 RMA_TENANT=acme RMA_RESULT=expired" "$(q RMA_DOMAIN=web-02)"
counts=""
for k in RESERVED REFUSED LEASED LEASE_ENDED RELEASED EXPIRED; do counts+="$(q MESSAGE_ID="$(msgid $k)" | wc -l) "; done
check_eq "each kind of event has its MESSAGE_ID (reserved refused leased ended released expired)" "3 1 1 1 1 1 " "$counts"
check_eq "the start and the policy have theirs too (pool ready, policy loaded)" "1 1" \
    "$(q MESSAGE_ID="$(msgid POOL_READY)" | wc -l) $(q MESSAGE_ID="$(msgid POLICY_LOADED)" | wc -l)"
logged_ids=$(python3 -c '
import json, sys
print("\n".join(sorted({json.loads(l).get("MESSAGE_ID", "") for l in open(sys.argv[1])} - {""})))' "$TEST_DIR/journal.jsonl")
check_eq "every MESSAGE_ID logged has an entry in the journal catalog (journalctl -x explains it)" "" \
    "$(comm -23 <(echo "$logged_ids") <(sed -n 's/^-- \([0-9a-f]*\)$/\1/p' "$SOURCE_DIR/catalog/rma-broker.catalog" | sort))"
check_match "entries carry the priority and the identifier" '"PRIORITY": "6", "SYSLOG_IDENTIFIER": "rma-brokerd"' \
    "$(grep -m1 RMA_DOMAIN "$TEST_DIR/journal.jsonl")"
check_eq "nothing went to stderr meanwhile" "" "$(cat "$TEST_DIR/stderr")"

# libvirtd restarted: the hook's reconnect confirms the domain's lease in the journal,
# since libvirt discards the stderr of a hook that succeeds.
"$TEST_CLIENT" reserve $U1 web-01 >/dev/null
env -i PATH=/usr/bin:/bin RMA_BROKER_SOCKET="$RMA_BROKER_SOCKET" "$BUILD_DIR/libvirt-plugin/rma-broker-hook" \
    web-01 reconnect begin - >/dev/null 2>&1 <<XML
<domain type='qemu'><name>web-01</name><uuid>$U1</uuid>
<metadata><rma:rma xmlns:rma='http://rmabroker.org/schemas/domain/1'/></metadata></domain>
XML
check_eq "the hook's reconnect exits 0" 0 $?
hook_entry() { python3 - "$TEST_DIR/journal.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("SYSLOG_IDENTIFIER") == "rma-broker-hook":
        print(e.get("PRIORITY"), e.get("RMA_DOMAIN"), e.get("MESSAGE"))
PY
}
check_match "its finding is in the journal, with the domain as a field" \
    "^6 web-01 domain web-01 holds RMA slot 0 \(reserved, pid 0\)" "$(hook_entry)"
tap_done
