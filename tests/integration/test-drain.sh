#!/usr/bin/env bash
# Integration: rmactl drain and undrain against the built broker on a private bus. While
# draining every new Reserve is refused with the reason, a reservation made before is
# still claimed, the gauge says so, and a kill -9 and a restart keep draining; only root
# (or AdminGroup=) may drain. A FIFO where the drain state lives does not hang the start.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the QEMU user and nobody run under their own uids"
    exit 0
fi

make_test_dir drain
cleanup() {
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

QEMU_UID=4243
RMACTL=$TEST_DIR/bin/rmactl
install -m 0755 "$BUILD_DIR/rmactl/rmactl" "$RMACTL"
BROKER_ARGS=(--count=4 --size=4M --qemu-users=$QEMU_UID --no-check-cgroup)
uuid_n() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }
reserve() { timeout 10 "$TEST_CLIENT" reserve "$(uuid_n "$1")" "dom-$1" </dev/null 2>&1; }
claim() { setpriv --reuid=$QEMU_UID --regid=$QEMU_UID --clear-groups -- timeout 10 "$TEST_CLIENT" claim "$(uuid_n "$1")" </dev/null 2>&1; }
gauge() { "$RMACTL" metrics | awk '$1 == "rma_broker_draining" {print $2}'; }

start_private_bus
start_broker "${BROKER_ARGS[@]}"
check_eq "not draining at first" "false" "$(busctl --system get-property org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 Draining | cut -d' ' -f2)"
check_eq "... and the gauge says 0" 0 "$(gauge)"
check_match "a reservation before the drain" "^reserved" "$(reserve 1)"

out=$(as_nobody "$RMACTL" drain --reason=nope 2>&1; echo "status=$?")
check_match "nobody may not drain" "Drain changes the pool and is for root only.*status=1" "$(tr '\n' ' ' <<<"$out")"
out=$("$RMACTL" drain --reason="firmware update" 2>&1)
check_match "root drains" "^Draining: this host gives out no new RMAs" "$out"
check_match "rmactl status shows it, with the reason" "Draining: yes, firmware update" "$("$RMACTL" status)"
check_eq "the gauge says 1" 1 "$(gauge)"
out=$(reserve 2)
check_match "a new Reserve is refused, saying the host drains and why" \
    "org.rmabroker.Broker1.Error.Draining.*this host is draining \(firmware update\).*rmactl undrain" "$out"
check_match "... and counted as such" 'rma_broker_reserve_requests_total\{result="draining",tenant="default"\} 1' "$("$RMACTL" metrics)"
check_match "the reservation made before is still claimed" "^held" "$(claim 1)"
check_match "the journal line says so" "Draining: firmware update" "$(cat "$TEST_DIR/broker.log")"

# A crash and a restart keep draining: the state is in the runtime dir, not in memory.
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
BROKER_PID=
start_broker "${BROKER_ARGS[@]}"
check "after kill -9 and a start the broker is up" broker_alive
check_match "... still draining, with the reason" "Draining: yes, firmware update" "$("$RMACTL" status)"
check_match "... and still refusing new RMAs" "Error.Draining" "$(reserve 3)"
check_eq "the drain file is root's, 0644" "0 644" "$(stat -c '%u %a' "$TEST_DIR/run/drain")"

out=$("$RMACTL" undrain 2>&1)
check_match "root undrains" "^Drain ended" "$out"
check_match "new RMAs again" "^reserved" "$(reserve 4)"
check "the drain file is gone" test ! -e "$TEST_DIR/run/drain"
check_eq "the gauge says 0" 0 "$(gauge)"
stop_broker

# Start never hangs on a file: a FIFO where the drain state lives is refused, by name.
mkfifo "$TEST_DIR/run/drain"
out=$(timeout 10 "$BROKERD" --runtime-dir="$TEST_DIR/run" "${BROKER_ARGS[@]}" 2>&1; echo "status=$?")
check_match "a FIFO as the drain state stops the start at once, naming the file and the fix" \
    "$TEST_DIR/run/drain is not the broker's drain state.*remove it.*status=1" "$(tr '\n' ' ' <<<"$out")"
rm -f "$TEST_DIR/run/drain"

tap_done
