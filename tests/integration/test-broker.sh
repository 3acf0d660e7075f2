#!/usr/bin/env bash
# Integration: a private dbus-daemon with our real bus policy, the built rma-brokerd,
# the real busctl and gdbus on the bus side, and real child processes (as the
# unprivileged user nobody) claiming region fds over broker.sock.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the broker checks peer uids, and children run as nobody"
    exit 0
fi

make_test_dir itest
HOLDERS=()
cleanup() {
    for fd in "${HOLDERS[@]}"; do eval "exec $fd>&-" 2>/dev/null || true; done
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

UUID_A=4dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_B=5dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_C=6dea22b3-1d52-d8f3-2516-782e98ab3fa0
UUID_D=7dea22b3-1d52-d8f3-2516-782e98ab3fa0
SIZE=$((4 << 20))

# gdbus shows the D-Bus error name, busctl only the message.
gdbus_call() {
    gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
        --method "org.rmabroker.Broker1.$1" "${@:2}" 2>&1
}
counts() { echo "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas)"; }

# hold NAME UUID [PATTERN]: a child as nobody claims UUID and holds it while fd 7x is open.
# Sets HOLD_PID; its output goes to $TEST_DIR/NAME.out.
hold() {
    local name=$1 fifo=$TEST_DIR/$1.fifo fd
    mkfifo "$fifo"
    chmod 0666 "$fifo"
    # A simple command, not a function: $! is then the claiming process itself. It must
    # not inherit the other holders' fifo fds, or their EOF would never come.
    local close_others=""
    for fd in "${HOLDERS[@]}"; do close_others+=" $fd>&-"; done
    eval 'setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
        "$TEST_CLIENT" claim "$2" "${3:-}" <"$fifo" >"$TEST_DIR/$name.out" 2>&1 '"$close_others"' &'

    HOLD_PID=$!
    exec {fd}>"$fifo"
    HOLDERS+=("$fd")
    eval "HOLD_FD_$name=$fd"
}
release_holder() {
    local var="HOLD_FD_$1"
    eval "exec ${!var}>&-"
}

start_private_bus
start_broker --count=3 --size=4M --qemu-users=nobody --no-check-cgroup
check "broker owns org.rmabroker.Broker1 on the private bus" broker_alive

check_eq "Backend is memfd (embedded default here)" '"memfd"' "$(prop Backend)"
check_eq "RmaSize is the configured 4 MiB" "$SIZE" "$(prop RmaSize)"
check_eq "TotalRmas" 3 "$(prop TotalRmas)"
check_eq "pool starts all free" "free=3 reserved=0 leased=0" "$(counts)"
check_eq "any user may read FreeRmas" 3 "$(as_nobody busctl --system get-property org.rmabroker.Broker1 \
    /org/rmabroker/Broker1 org.rmabroker.Broker1 FreeRmas | cut -d' ' -f2)"

# Bad input gets a named error; nothing changes.
out=$(gdbus_call Reserve not-a-uuid dom-a "")
check_match "Reserve of a malformed uuid: InvalidArgument" "Error\.InvalidArgument: 'not-a-uuid' is not a domain UUID" "$out"
out=$(as_nobody gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
    --method org.rmabroker.Broker1.Reserve "$UUID_A" dom-a "" 2>&1)
check_match "Reserve by an unprivileged user: AccessDenied" "Error\.AccessDenied: uid 65534 may not call Reserve: without a tenant policy only root may" "$out"
out=$(gdbus_call Reserve "$UUID_A" dom-a acme)
check_match "Reserve for a tenant the policy lacks: NoSuchTenant" "Error\.NoSuchTenant: No RMA for domain dom-a: domain dom-a names tenant 'acme' in its rma metadata, but the policy has no \[Tenant acme\]" "$out"
check_eq "refusals left the pool alone" "free=3 reserved=0 leased=0" "$(counts)"

# Reserve over the system bus, claim over broker.sock from a child running as nobody.
# A watcher on the bus sees the counts change (PropertiesChanged).
gdbus monitor --system --dest org.rmabroker.Broker1 >"$TEST_DIR/monitor.out" 2>&1 &
MONITOR_PID=$!
wait_until 5 grep -q "Monitoring" "$TEST_DIR/monitor.out"
check_eq "Reserve over the bus returns a slot" "u 0" "$(bus_call Reserve sss "$UUID_A" dom-a "")"
check "PropertiesChanged announces FreeRmas 2 and ReservedRmas 1" wait_until 5 \
    grep -q "PropertiesChanged ('org.rmabroker.Broker1', {'FreeRmas': <uint32 2>, 'ReservedRmas': <uint32 1>" "$TEST_DIR/monitor.out"
kill "$MONITOR_PID" 2>/dev/null; wait "$MONITOR_PID" 2>/dev/null
check_eq "reserved counts" "free=2 reserved=1 leased=0" "$(counts)"
check_eq "a retried Reserve of the same domain is idempotent" "u 0" "$(bus_call Reserve sss "$UUID_A" dom-a "")"
out=$(gdbus_call Reserve "$UUID_A" other-dom "")
check_match "the same uuid for another domain: AlreadyReserved" "Error\.AlreadyReserved: UUID $UUID_A is already reserved for domain dom-a by uid 0" "$out"

out=$("$TEST_CLIENT" claim "$UUID_A" </dev/null)
check_match "Claim by root (not in QemuUsers): AccessDenied" "^error org.rmabroker.Broker1.Error.AccessDenied: uid 0 may not claim RMAs" "$out"
out=$(as_nobody "$TEST_CLIENT" claim "$UUID_D" </dev/null)
check_match "Claim with no reservation: NotReserved" "^error org.rmabroker.Broker1.Error.NotReserved: No RMA is reserved for domain $UUID_D" "$out"
out=$(as_nobody "$TEST_CLIENT" claim "12345" </dev/null)
check_match "Claim of a malformed uuid: InvalidArgument" "^error org.rmabroker.Broker1.Error.InvalidArgument" "$out"
out=$(as_nobody "$TEST_CLIENT" reserve "$UUID_B" dom-b </dev/null)
check_match "Reserve over broker.sock by nobody: AccessDenied" "^error org.rmabroker.Broker1.Error.AccessDenied" "$out"
check_eq "refused claims left the pool alone" "free=2 reserved=1 leased=0" "$(counts)"

hold a "$UUID_A" "tenant-a-secret"
PID_A=$HOLD_PID
check "child as nobody claimed the region, sealed and zeroed" wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/a.out"
check_eq "busctl: one RMA leased" "free=2 reserved=0 leased=1" "$(counts)"
check_match "the child holds a memfd region" "memfd:rma-broker-slot-0" "$(ls -l /proc/$PID_A/fd/ 2>/dev/null)"
out=$(bus_call ListRmas)
check_match "ListRmas shows the lease with domain, tenant and pid" "\"leased\" \"$UUID_A\" \"dom-a\" \"default\" $PID_A" "$out"

out=$(as_nobody "$TEST_CLIENT" claim "$UUID_A" </dev/null)
check_match "a second Claim for the same uuid: AlreadyClaimed" "^error org.rmabroker.Broker1.Error.AlreadyClaimed: .*already claimed by pid $PID_A" "$out"
check_eq "still exactly one lease" "free=2 reserved=0 leased=1" "$(counts)"

# The lease ends when the claiming process exits; the slot comes back fresh.
release_holder a
wait "$PID_A"
check "lease ended when the child exited" wait_until 10 prop_is LeasedRmas 0
check_eq "slot is free again" "free=3 reserved=0 leased=0" "$(counts)"
check_eq "Reserve again gets slot 0" "u 0" "$(bus_call Reserve sss "$UUID_B" dom-b "")"
hold b "$UUID_B"
PID_B=$HOLD_PID
check "next tenant of slot 0 sees only zeroes (no bytes of the previous tenant)" \
    wait_until 10 grep -q "^held $SIZE" "$TEST_DIR/b.out"
diag "$(cat "$TEST_DIR/b.out")"
out=$(bus_call ListRmas)
check_match "without policy files every domain is tenant default" "\"$UUID_B\" \"dom-b\" \"default\" $PID_B" "$out"
release_holder b
wait "$PID_B"
check "second lease ended" wait_until 10 prop_is LeasedRmas 0

# Exhaust the pool.
bus_call Reserve sss "$UUID_A" dom-a "" >/dev/null
bus_call Reserve sss "$UUID_B" dom-b "" >/dev/null
bus_call Reserve sss "$UUID_C" dom-c "" >/dev/null
out=$(gdbus_call Reserve "$UUID_D" dom-d "")
check_match "a 4th Reserve on a pool of 3: PoolExhausted, with the numbers" \
    "Error\.PoolExhausted: No free RMA for domain dom-d: all 3 RMAs of 4 MiB are taken \(3 reserved, 0 leased" "$out"
check_eq "exhausted pool counts" "free=0 reserved=3 leased=0" "$(counts)"
for u in "$UUID_A" "$UUID_B" "$UUID_C"; do bus_call Release s "$u"; done
check_eq "Release returns reserved slots" "free=3 reserved=0 leased=0" "$(counts)"
check_eq "Release of a domain that holds nothing succeeds quietly" "" "$(bus_call Release s "$UUID_D")"
out=$(gdbus_call Release "bogus")
check_match "Release of a malformed uuid: InvalidArgument" "Error\.InvalidArgument" "$out"
check "the daemon kept serving through every refusal" broker_alive

# No process can hold many connections: 20 processes as nobody try 5 connections each;
# at most 4 per process stay open, and root (the hook) still gets through.
cat >"$TEST_DIR/flood.py" <<'PY'
import os, socket, sys, time
path = sys.argv[1]
r, w = os.pipe()
kids = []
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        socks = []
        for _ in range(5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socks.append(s)
        time.sleep(1.0)               # let the broker accept or refuse each one
        alive = 0
        for s in socks:
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except BlockingIOError:
                alive += 1            # still open, nothing to read
        os.write(w, b"%d\n" % alive)
        time.sleep(float(sys.argv[2]))
        os._exit(0)
    kids.append(pid)
os.close(w)
counts = [int(x) for x in os.fdopen(r).read().split()]
print("open=%d max_per_process=%d" % (sum(counts), max(counts)), flush=True)
for pid in kids:
    os.waitpid(pid, 0)
PY
setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 "$TEST_DIR/flood.py" "$TEST_DIR/run/broker.sock" 3 \
    >"$TEST_DIR/flood.out" 2>&1 &
FLOOD_PID=$!
check "the flood reported back" wait_until 10 grep -q "^open=" "$TEST_DIR/flood.out"
# nobody is a QEMU user here: no per-uid cap (every wrapper runs as it), 4 per process.
# test-hostile-peers.sh floods as a uid that is not a QEMU user.
check_eq "a QEMU user holds 4 connections per process at most" "open=80 max_per_process=4" "$(cat "$TEST_DIR/flood.out")"
out=$("$TEST_CLIENT" reserve "$UUID_D" dom-d </dev/null)
check_match "root's Reserve still gets through during the flood" "^reserved" "$out"
bus_call Release s "$UUID_D" >/dev/null
wait "$FLOOD_PID"

# Claim is offered only on broker.sock, never on the bus.
out=$(busctl --system introspect org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1)
if grep -q "\.Claim" <<<"$out"; then not_ok "Claim is not on the system bus"; else ok "Claim is not on the system bus"; fi

# A second broker on the same runtime dir refuses before it touches anything there, naming
# the running one; the first one's registry is the file it writes, whole.
before=$(stat -c '%i %s %Y' "$TEST_DIR/run/leases"; md5sum <"$TEST_DIR/run/leases")
out=$("$BROKERD" --runtime-dir="$TEST_DIR/run" --count=1 --size=1M 2>&1); status=$?
check "a second broker on the same runtime dir refuses to start" test $status -ne 0
check_match "... naming the running one and what to do" \
    "Another rma-brokerd \\(pid $BROKER_PID\\) runs on $TEST_DIR/run; this one touches nothing there.*systemctl stop rma-brokerd.service.*--runtime-dir=" "$out"
check_eq "... and the running one's registry is untouched (same inode, size, time and bytes)" "$before" \
    "$(stat -c '%i %s %Y' "$TEST_DIR/run/leases"; md5sum <"$TEST_DIR/run/leases")"
check_eq "... nor did it leave a new registry behind" "" "$(ls "$TEST_DIR/run" | grep '\.new$')"
bus_call Reserve sss "$UUID_D" dom-d "" >/dev/null
check_match "the running broker still serves and records" "$UUID_D" "$(cat "$TEST_DIR/run/leases")"
bus_call Release s "$UUID_D" >/dev/null
check "broker exits cleanly on SIGTERM" stop_broker
check "broker.sock is removed on exit" test ! -e "$TEST_DIR/run/broker.sock"

# With the cgroup check on (the default), a process outside the domain's cgroup is refused;
# unclaimed reservations expire.
start_broker --count=2 --size=1M --qemu-users=nobody --reservation-timeout=1
bus_call Reserve sss "$UUID_A" dom-a "" >/dev/null
out=$(as_nobody "$TEST_CLIENT" claim "$UUID_A" </dev/null)
check_match "Claim from outside the domain's libvirt cgroup: AccessDenied" \
    "^error org.rmabroker.Broker1.Error.AccessDenied: pid [0-9]+ may not claim the RMA of domain dom-a: its cgroup" "$out"
check "an unclaimed reservation expires" wait_until 5 prop_is ReservedRmas 0
check_eq "expired slot is free" 2 "$(prop FreeRmas)"
check "broker exits cleanly on SIGTERM after expiry" stop_broker

# A connection's first call is Claim (the wrapper's only one): the rest of the object is
# registered on that connection only when another call needs it, and then answers.
start_broker --count=2 --size=1M --qemu-users=nobody --no-check-cgroup
bus_call Reserve sss "$UUID_C" dom-c "" >/dev/null
check_match "Claim first, then ListRmas on the same connection" '^leased [0-9]+ self$' \
    "$(as_nobody "$TEST_CLIENT" claim-then-find "$UUID_C" </dev/null)"
check_match "a fresh connection whose first call is not Claim is answered" '^none$' \
    "$(as_nobody "$TEST_CLIENT" find "$UUID_D" </dev/null)"
stop_broker

# A pool larger than the fd limit is refused at start, naming the setting, instead of
# failing half-filled with a bare EMFILE.
out=$(prlimit --nofile=600:600 "$BROKERD" --runtime-dir="$TEST_DIR/run-fds" --backend=memfd --count=400 --size=1M \
    --policy-dir="$TEST_DIR/no-policy" 2>&1)
check "a pool of 400 under a limit of 600 fds: refused at start" test $? -ne 0
check_match "... saying what to raise" "A pool of 400 RMAs needs at least 656 file descriptors .* the limit is 600: raise LimitNOFILE=" "$out"
BROKER_WRAP=(prlimit --nofile=600:600)
start_broker --backend=memfd --count=300 --size=1M
check "... while a pool of 300 starts under the same limit" prop_is TotalRmas 300
stop_broker
BROKER_WRAP=()

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
