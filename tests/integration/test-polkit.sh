#!/usr/bin/env bash
# Integration: the broker asks the real polkitd (polkit 122) where its own rules say no.
# polkitd runs on the test's private bus, in a mount namespace of its own where our
# actions and a test rule are bound over /usr/share/polkit-1/actions and
# /etc/polkit-1/rules.d (polkitd 122 has no option to read them elsewhere): nothing on
# the host changes, and a polkitd on the real system bus is not touched. The rule lets
# the account "daemon" manage and never forget a region; "nobody" gets nothing. Checked:
# bus callers (system-bus-name) and broker.sock callers (unix-process), CanAdminister, a
# stopped polkitd does not stop the broker, the pending checks are bounded, and without
# polkitd the broker's own rules decide and say so once. Reserve and Release: a rule
# delegates tenant blue to group blueops (which only polkitd's namespace knows: daemon is
# in it there), by the details tenant, domain and uuid; quotas still apply. Interactive
# authorization: without the flag a challenge is InteractiveAuthorizationRequired, and
# rmactl on a terminal runs pkttyagent, which polkitd then asks for a password.
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
mkdir -m 0755 "$TEST_DIR/actions" "$TEST_DIR/rules.d" "$TEST_DIR/no-rules" "$TEST_DIR/policy.d"
install -m 0644 "$SOURCE_DIR/units/org.rmabroker.policy" "$TEST_DIR/actions/"
cat >"$TEST_DIR/rules.d/50-rma-test.rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.rmabroker.manage" && subject.user == "daemon")
        return polkit.Result.YES;
    if (action.id == "org.rmabroker.forget-region")
        return polkit.Result.NO;
    if (action.id == "org.rmabroker.reserve" && action.lookup("tenant") == "blue" &&
        subject.isInGroup("blueops")) {
        if (action.lookup("domain") == "blue-forbidden")
            return polkit.Result.NO;
        return polkit.Result.YES;
    }
});
RULES
chmod 0644 "$TEST_DIR/rules.d/50-rma-test.rules"
# Group blueops exists for polkitd alone (bound over /etc/group in its namespace): the
# broker's own rules cannot know that daemon is in it.
{ cat /etc/group; echo "blueops:x:64999:daemon"; } >"$TEST_DIR/group"
chmod 0644 "$TEST_DIR/group"
cat >"$TEST_DIR/policy.d/10-tenants.conf" <<'CONF'
[Tenant blue]
MaxRmas=1
Domains=blue-*

[Tenant red]
Domains=red-*
CONF

start_polkitd() {
    unshare --mount --propagation private -- sh -c '
        mount --bind "$1/actions" /usr/share/polkit-1/actions &&
        mount --bind "$1/rules.d" /etc/polkit-1/rules.d &&
        mount --bind "$1/no-rules" /usr/share/polkit-1/rules.d &&
        mount --bind "$1/group" /etc/group &&
        exec "$2" --no-debug' polkitd "$TEST_DIR" "$POLKITD" >>"$TEST_DIR/polkitd.log" 2>&1 &
    POLKIT_PID=$!
    wait_until 10 busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1
}

start_private_bus
start_polkitd
polkit_up() { busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; }
check "polkitd owns its name on the private bus" polkit_up || diag "$(cat "$TEST_DIR/polkitd.log")"
start_broker --count=2 --size=4M --no-check-cgroup --policy-dir="$TEST_DIR/policy.d"

# The bus: polkit sees the caller's bus name.
check_match "daemon drains over the bus: polkit grants org.rmabroker.manage" "^$" "$(call daemon Drain s "polkit")"
check_eq "... and the host drains" "true" "$(prop Draining)"
check_match "... the journal says polkit granted it" "polkit grants org.rmabroker.manage to uid 1 .*method=Drain" \
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
check_match "nobody may not reload over broker.sock: polkit would ask, the call did not allow it" \
    "InteractiveAuthorizationRequired.*is for root only.*polkit would let" \
    "$(as nobody timeout 20 "$TEST_CLIENT" reload 2>&1)"

# Reserve and Release: org.rmabroker.reserve where the tenant's Users=/Groups= say no.
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
gd() { # gd WHO METHOD ARGS...: gdbus prints the error's name
    as "$1" timeout 20 gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
        --method "org.rmabroker.Broker1.$2" "${@:3}" 2>&1
}
check_match "daemon (blueops, by polkit's rule) reserves for tenant blue over the bus" "^\(uint32 [0-9]+,\)" \
    "$(gd daemon Reserve "$(uuid 1)" blue-1 "")"
check_match "... the journal has polkit's grant with the details a rule sees" \
    "polkit grants org.rmabroker.reserve to uid 1 .*method=Reserve, tenant=blue, domain=blue-1, uuid=$(uuid 1)" \
    "$(cat "$TEST_DIR/broker.log")"
check_match "polkit's yes is no extra capacity: blue's MaxRmas=1 holds" "QuotaExceeded" \
    "$(gd daemon Reserve "$(uuid 2)" blue-2 "")"
check_match "the rule names the domain: blue-forbidden is refused" "AccessDenied.*nor does polkit grant it" \
    "$(gd daemon Reserve "$(uuid 3)" blue-forbidden "")"
check_match "tenant red is not delegated to daemon" "AccessDenied.*tenant red.*nor does polkit grant it" \
    "$(gd daemon Reserve "$(uuid 4)" red-1 "")"
check_match "... and the denial is in the journal (notice)" "Refused Reserve for tenant red from uid 1 " \
    "$(cat "$TEST_DIR/broker.log")"
check_blue_over_socket daemon nobody 1 5
check_match "daemon reserves for blue over the bus again" "^\(uint32 [0-9]+,\)" \
    "$(gd daemon Reserve "$(uuid 6)" blue-6 "")"
check_eq "... and releases it over the bus" "()" "$(gd daemon Release "$(uuid 6)")"
check_eq "the pool is free again" 2 "$(prop FreeRmas)"

# Interactive authorization: passed to polkit only when the call allows it.
check_match "a call without the flag, where polkit would ask: InteractiveAuthorizationRequired" \
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired: Drain changes the pool" \
    "$(gd nobody Drain x)"
out=$(as nobody "$RMACTL" --no-ask-password drain 2>&1; echo "status=$?")
check_match "rmactl --no-ask-password says why it did not ask" \
    "polkit asks an administrator to authenticate for this; --no-ask-password kept rmactl from asking.*status=1" \
    "$(tr '\n' ' ' <<<"$out")"
# With the flag polkitd asks an agent. polkit 122 finds agents by logind session or by
# process, never by bus name, and no session runs here: a pkttyagent registered for the
# broker.sock caller's process (the shell that then execs the client: same pid, same start
# time) is asked, and a wrong password is a no.
printf 'not-the-password\n' >"$TEST_DIR/password"
chmod 0644 "$TEST_DIR/password"
agent_dialogue() { # agent_dialogue [--interactive]: what the terminal showed
    (sleep 2; cat "$TEST_DIR/password"; sleep 6) | as nobody timeout 30 script -qec \
        "sh -c 'pkttyagent --process \$\$ & sleep 1; exec $TEST_CLIENT reload $1'" /dev/null 2>&1
}
out=$(agent_dialogue --interactive)
check_match "a call with the flag: polkitd asks the agent for org.rmabroker.manage (AllowUserInteraction)" \
    "AUTHENTICATING FOR org.rmabroker.manage" "$out" || diag "$out"
check_match "... and a wrong password is a no (AccessDenied, not a challenge)" \
    "AccessDenied.*nor does polkit grant it" "$out"
out=$(agent_dialogue "")
check_match "the same call without the flag: no dialogue, InteractiveAuthorizationRequired" \
    "InteractiveAuthorizationRequired" "$out"
check "... and the agent was not asked" test "$(grep -c 'AUTHENTICATING FOR' <<<"$out")" -eq 0
# rmactl on a terminal starts pkttyagent as systemctl does (for a logind session) and
# stops it again.
out=$(as nobody timeout 20 script -qec "strace -f -qq -e trace=execve -o /dev/stderr $RMACTL drain" /dev/null 2>&1)
check_match "rmactl on a terminal runs pkttyagent --notify-fd N --fallback" \
    'execve\("/usr/bin/pkttyagent", \["/usr/bin/pkttyagent", "--notify-fd", "[0-9]+", "--fallback"\]' "$out"
out=$(as nobody timeout 20 script -qec "strace -f -qq -e trace=execve -o /dev/stderr $RMACTL --no-ask-password drain" /dev/null 2>&1)
check "... and with --no-ask-password it does not" test "$(grep -c pkttyagent <<<"$out")" -eq 0
check_eq "the host never drained" "false" "$(prop Draining)"

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
# Eight more of daemon's, each gone before polkitd answers: their checks are cancelled with
# their connections, so daemon's count of pending checks is back to 0 and a bus call of
# its own is taken (it waits for polkitd) instead of refused as the ninth.
left=()
for i in $(seq 1 8); do as daemon timeout 1 "$TEST_CLIENT" reload >/dev/null 2>&1 & left+=($!); done
wait "${left[@]}"
out=$(as daemon busctl --system --timeout=2 call org.rmabroker.Broker1 /org/rmabroker/Broker1 \
    org.rmabroker.Broker1 Reload 2>&1)
check_match "checks of broker.sock callers that left are cancelled: daemon's next check is taken, not refused" \
    "timed out" "$out"
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
