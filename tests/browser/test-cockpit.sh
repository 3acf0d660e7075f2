#!/usr/bin/env bash
# Browser: rma-broker's Cockpit page in a real Cockpit and a real browser. A private
# system bus and the built broker (a tenant capped at one region), a real cockpit-ws
# serving the page from this tree (--local-session: no login; as root, which has
# Cockpit's administrative access, and again as nobody), and Debian's headless Chromium
# driven with Selenium (tests/browser/cockpit-check.py): the page loads without console
# errors, its counts are the broker's, a Reserve and a Claim show within 2 s, a tenant at
# its cap is highlighted, a stopped broker gives the empty state and a restarted one is
# followed without a reload, an admin's reload of a broken policy shows the broker's
# message, nobody sees no action buttons. Screenshots, light and dark, are kept in
# $BUILD_DIR/cockpit-screenshots.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: cockpit-ws runs as root and as nobody"
    exit 0
fi

make_test_dir cockpit
cleanup() {
    local f
    # Each cockpit-ws leads a process group of its own, with its cockpit-bridge and the
    # session dbus-daemon the bridge may start: the whole group goes.
    for f in "$TEST_DIR"/ws-*.pid; do
        [ -s "$f" ] || continue
        kill -- "-$(cat "$f")" 2>/dev/null
        wait "$(cat "$f")" 2>/dev/null   # reaped here: this host's PID 1 may never reap it
    done
    # The browser check may have restarted the broker: its pid is in broker.pid.
    [ -s "$TEST_DIR/broker.pid" ] && kill "$(cat "$TEST_DIR/broker.pid")" 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

# The page as installed: the package dir under an XDG_DATA_HOME of the test's own.
install -d -m 0755 "$TEST_DIR/xdg/cockpit"
cp -r "$SOURCE_DIR/cockpit" "$TEST_DIR/xdg/cockpit/rma-broker"
chmod -R a+rX "$TEST_DIR/xdg"

POLICY=$TEST_DIR/policy.d
mkdir -p "$POLICY"
printf '[Defaults]\nTenant=open\n\n[Tenant capped]\nMaxRmas=1\nDomains=cap-*\n\n[Tenant open]\n' >"$POLICY/10-tenants.conf"
cat >"$TEST_DIR/start-broker.sh" <<SH
#!/bin/sh
# Starts the broker in the background and prints its pid (for the browser check).
RMA_BROKER_TEST_SMALL_RMAS=1 "$BROKERD" --runtime-dir="$TEST_DIR/run" --backend=memfd --count=4 --size=4M \\
    --qemu-users=nobody \\
    --no-check-cgroup --policy-dir="$POLICY" >>"$TEST_DIR/broker.log" 2>&1 </dev/null &
echo \$!
SH
chmod 0755 "$TEST_DIR/start-broker.sh"

start_private_bus
start_broker --backend=memfd --count=4 --size=4M --qemu-users=nobody --no-check-cgroup --policy-dir="$POLICY"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start_ws USER: a cockpit-ws with a local session of USER on a port of its own.
start_ws() {
    local user=$1 port home=$TEST_DIR/home-$1
    port=$(free_port)
    install -d -m 0700 -o "$user" "$home"
    setsid setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$home" XDG_DATA_HOME="$TEST_DIR/xdg" XDG_RUNTIME_DIR="$home" LANG=C.UTF-8 \
        DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" DBUS_SESSION_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" \
        /usr/lib/cockpit/cockpit-ws --port "$port" --address 127.0.0.1 --local-session=cockpit-bridge \
        >"$TEST_DIR/ws-$user.log" 2>&1 &
    echo $! >"$TEST_DIR/ws-$user.pid"   # start_ws runs in $(...): the pid goes by file
    wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$port/cockpit/@localhost/rma-broker/manifest.json" ||
        { diag "cockpit-ws as $user did not serve the page: $(tail -5 "$TEST_DIR/ws-$user.log")"; return 1; }
    echo "$port"
}
ROOT_PORT=$(start_ws root) || ROOT_PORT=
NOBODY_PORT=$(start_ws nobody) || NOBODY_PORT=
check "cockpit-ws serves the page to a root session and to nobody's" test -n "$ROOT_PORT" -a -n "$NOBODY_PORT"

SHOTS=$BUILD_DIR/cockpit-screenshots
mkdir -p "$SHOTS"
TEST_DIR=$TEST_DIR TEST_CLIENT=$TEST_CLIENT BROKER_PID=$BROKER_PID POLICY=$POLICY SHOTS=$SHOTS \
    ROOT_PORT=$ROOT_PORT NOBODY_PORT=$NOBODY_PORT \
    /usr/bin/python3 "$HERE/cockpit-check.py" >"$TEST_DIR/check.tap" 2>"$TEST_DIR/check.err"
status=$?
# The check's TAP lines, renumbered into ours.
while IFS= read -r line; do
    case "$line" in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) not_ok "${line#not ok - }" ;;
    "#"*) echo "$line" ;;
    esac
done <"$TEST_DIR/check.tap"
check "the browser check ran to its end" test "$status" -eq 0
if [ "$TAP_FAILED" -ne 0 ]; then
    diag "browser check stderr: $(tail -30 "$TEST_DIR/check.err")"
    diag "broker log: $(tail -20 "$TEST_DIR/broker.log")"
    diag "cockpit-ws (root): $(tail -10 "$TEST_DIR/ws-root.log")"
fi
tap_done
