#!/usr/bin/env bash
# Integration: the broker asks the real polkitd (polkit 122) where its own rules say no.
# polkitd runs on the test's private bus, in a mount namespace of its own where our
# actions and a test rule are bound over /usr/share/polkit-1/actions and
# /etc/polkit-1/rules.d (polkitd 122 has no option to read them elsewhere): nothing on
# the host changes, and a polkitd on the real system bus is not touched. The rule lets
# the account "daemon" manage and never forget a region; "nobody" gets nothing. Checked:
# bus callers (system-bus-name) and broker.sock callers (unix-process), CanAdminister, a
# stopped polkitd does not stop the broker, the pending checks are bounded, and without
# polkitd the broker's own rules decide and say so once.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

POLKITD=/usr/lib/polkit-1/polkitd
if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: polkitd and the test accounts"
    exit 0
fi
if [ ! -x "$POLKITD" ] || ! command -v unshare >/dev/null; then
    echo "1..0 # SKIP no $POLKITD (apt install polkitd) or no unshare"
    exit 0
fi

make_test_dir polkit
POLKIT_PID=
cleanup() {
    [ -n "$POLKIT_PID" ] && { kill -CONT "$POLKIT_PID"; kill "$POLKIT_PID"; } 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

RMACTL=$TEST_DIR/bin/rmactl
install -m 0755 "$BUILD_DIR/rmactl/rmactl" "$RMACTL"
as() { local who=$1; shift; setpriv --reuid="$who" --regid=nogroup --clear-groups -- "$@"; }
call() { local who=$1; shift; as "$who" timeout 20 busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 \
    org.rmabroker.Broker1 "$@" 2>&1; }

# polkit's own bus policy: polkitd starts as root and owns its name as user polkitd.
BUS_INCLUDES=(/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf)
mkdir -m 0755 "$TEST_DIR/actions" "$TEST_DIR/rules.d" "$TEST_DIR/no-rules"
install -m 0644 "$SOURCE_DIR/units/org.rmabroker.policy" "$TEST_DIR/actions/"
cat >"$TEST_DIR/rules.d/50-rma-test.rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.rmabroker.manage" && subject.user == "daemon")
        return polkit.Result.YES;
    if (action.id == "org.rmabroker.forget-region")
        return polkit.Result.NO;
});
RULES
chmod 0644 "$TEST_DIR/rules.d/50-rma-test.rules"

start_polkitd() {
    unshare --mount --propagation private -- sh -c '
        mount --bind "$1/actions" /usr/share/polkit-1/actions &&
        mount --bind "$1/rules.d" /etc/polkit-1/rules.d &&
        mount --bind "$1/no-rules" /usr/share/polkit-1/rules.d &&
        exec "$2" --no-debug' polkitd "$TEST_DIR" "$POLKITD" >>"$TEST_DIR/polkitd.log" 2>&1 &
    POLKIT_PID=$!
    wait_until 10 busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1
}

start_private_bus
start_polkitd
polkit_up() { busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; }
check "polkitd owns its name on the private bus" polkit_up || diag "$(cat "$TEST_DIR/polkitd.log")"
start_broker --count=2 --size=4M --no-check-cgroup

# The bus: polkit sees the caller's bus name.
check_match "daemon drains over the bus: polkit grants org.rmabroker.manage" "^$" "$(call daemon Drain s "polkit")"
check_eq "... and the host drains" "true" "$(prop Draining)"
check_match "... the journal says polkit granted it" "polkit grants org.rmabroker.manage to uid 1 " \
    "$(cat "$TEST_DIR/broker.log")"
out=$(as nobody "$RMACTL" undrain 2>&1; echo "status=$?")
check_match "nobody may not undrain: neither the broker's rules nor polkit" \
    "Undrain changes the pool and is for root only.*polkit would let an administrator authenticate.*status=1" "$(tr '\n' ' ' <<<"$out")"
check_match "daemon undrains with rmactl" "^Drain ended" "$(as daemon "$RMACTL" undrain 2>&1)"
check_eq "... and the host no longer drains" "false" "$(prop Draining)"
check_match "CanAdminister says yes to daemon" "^bs true" "$(call daemon CanAdminister)"
check_match "CanAdminister says no to nobody: polkit would ask for a password" "^bs false .*password" "$(call nobody CanAdminister)"
check_match "ForgetRegion: the rule says no to daemon" "root only.*nor does polkit grant it" \
    "$(call daemon ForgetRegion u 0)"
check_match "root needs no polkit for ForgetRegion (slot 0 is not held elsewhere)" "slot 0 is free" \
    "$(call root ForgetRegion u 0)"

# broker.sock: polkit sees the process (pid, start time, uid).
check_eq "daemon reloads over broker.sock: polkit grants it" "reloaded" \
    "$(as daemon timeout 20 "$TEST_CLIENT" reload 2>&1)"
check_match "nobody may not reload over broker.sock" "AccessDenied.*is for root only.*polkit would let" \
    "$(as nobody timeout 20 "$TEST_CLIENT" reload 2>&1)"

# polkitd stopped: the checks wait for it, the broker does not.
kill -STOP "$POLKIT_PID"
for i in $(seq 1 8); do
    as nobody busctl --system --timeout=60 call org.rmabroker.Broker1 /org/rmabroker/Broker1 \
        org.rmabroker.Broker1 Reload >"$TEST_DIR/pending.$i" 2>&1 &
done
sleep 1
start=$(date +%s%N)
check_match "with polkitd stopped and 8 checks pending, the broker still answers" "^u 2" "$(prop TotalRmas | sed 's/^/u /')"
check "... at once (under 1 s)" test $(( ($(date +%s%N) - start) / 1000000 )) -lt 1000
check_match "a 9th pending check for the same uid is refused, not queued" "LimitsExceeded|Too many authorization" \
    "$(call nobody Reload)"
check_match "root is not held up by them" "^$" "$(call root Drain s "")"
call root Undrain >/dev/null
as daemon timeout 1 "$TEST_CLIENT" reload >/dev/null 2>&1
check_eq "a broker.sock caller gives up and disconnects while its check is pending" 124 "$?"
kill -CONT "$POLKIT_PID"
wait_until 10 sh -c "! pgrep -f 'busctl --system --timeout=60 call org.rmabroker' >/dev/null"
check_match "once polkitd answers, the pending ones are refused" "Reload changes the pool.*polkit would let" "$(cat "$TEST_DIR/pending.1")"
sleep 1   # polkitd answers for the process that left (it is gone: a no) and the answer goes nowhere
check "after polkitd answered for the peer that left, the broker is still up" broker_alive
check_match "... and answers" "^u 2" "$(prop TotalRmas | sed 's/^/u /')"

# No polkitd: the broker's own rules, and the journal says so once.
kill "$POLKIT_PID"; wait "$POLKIT_PID" 2>/dev/null; POLKIT_PID=
wait_until 5 sh -c '! busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1'
check_match "without polkitd daemon may not drain any more" "Drain changes the pool and is for root only" \
    "$(call daemon Drain s x)"
check_match "... nor reload over broker.sock" "AccessDenied" "$(as daemon timeout 20 "$TEST_CLIENT" reload 2>&1)"
check_match "root still drains" "^$" "$(call root Drain s "")"
check_eq "the journal says once that polkit does not answer" 1 "$(grep -c 'polkit does not answer' "$TEST_DIR/broker.log")"
check "the broker is still up" broker_alive
tap_done
