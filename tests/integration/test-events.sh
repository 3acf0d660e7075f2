#!/usr/bin/env bash
# Integration: the broker's event signals, as `rmactl monitor` follows them on a private
# bus with the real bus policy: a Reserve shows within a second, a lease's start and end
# name the domain and the pid, a refusal names the caller and the error, and a flood of
# refusals by nobody is bounded (and what was left out is announced).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the QEMU user and nobody run under their own uids"
    exit 0
fi

make_test_dir events
MONITORS=()
cleanup() {
    for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null; done
    [ ${#MONITORS[@]} -gt 0 ] && wait "${MONITORS[@]}" 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

QEMU_UID=4243
RMACTL=$TEST_DIR/bin/rmactl
FLOOD=$TEST_DIR/bin/rma-flood
install -m 0755 "$BUILD_DIR/rmactl/rmactl" "$RMACTL"
install -m 0755 "$BUILD_DIR/tests/rma-flood" "$FLOOD"
uuid_n() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }
EVENTS=$TEST_DIR/events.json
has_event() { grep -q "$1" "$EVENTS"; }

start_private_bus
start_broker --count=4 --size=4M --qemu-users=$QEMU_UID --no-check-cgroup
"$RMACTL" monitor --json >"$EVENTS" 2>"$TEST_DIR/monitor.err" &
MONITORS+=($!)
"$RMACTL" monitor >"$TEST_DIR/events.txt" 2>&1 &
MONITORS+=($!)
# The monitors are subscribed once the bus lists their match rules; a second is plenty.
sleep 1

t0=$(date +%s%N)
"$TEST_CLIENT" reserve "$(uuid_n 1)" web-1 </dev/null >/dev/null
check "a Reserve shows in rmactl monitor within a second" \
    wait_until 1 has_event '"event":"slot-changed","slot":[0-9]*,"state":"reserved","domain":"web-1"'
diag "took $((($(date +%s%N) - t0) / 1000000)) ms"
check_match "... with its uuid, tenant and reason" \
    "\"uuid\":\"$(uuid_n 1)\",\"tenant\":\"default\",\"pid\":0,\"reason\":\"reserved\"" "$(cat "$EVENTS")"

out=$(setpriv --reuid=$QEMU_UID --regid=$QEMU_UID --clear-groups -- "$TEST_CLIENT" claim "$(uuid_n 1)" </dev/null)
check_match "the QEMU user claims and exits" "^held" "$out"
check "the lease shows, with the claimant's pid" wait_until 2 has_event '"state":"leased","domain":"web-1".*"pid":[1-9][0-9]*,"reason":"claimed"'
check "its end names the domain and why" \
    wait_until 2 has_event '"state":"scrubbing","domain":"web-1".*"reason":"process_exited"'
check "... and the slot comes back free with a fresh region" \
    wait_until 2 has_event '"state":"free","domain":"web-1".*"reason":"ready"'

"$TEST_CLIENT" reserve "$(uuid_n 2)" web-2 </dev/null >/dev/null
"$TEST_CLIENT" release "$(uuid_n 2)" </dev/null >/dev/null
check "a released reservation names its domain" wait_until 2 has_event '"state":"free","domain":"web-2".*"reason":"released"'

as_nobody "$TEST_CLIENT" reserve "$(uuid_n 3)" web-3 </dev/null >/dev/null 2>&1
check "a refusal names the method, the error, the caller's uid and the broker's sentence" \
    wait_until 2 has_event "\"event\":\"refused\",\"method\":\"Reserve\",\"error\":\"org.rmabroker.Broker1.Error.AccessDenied\",\"domain\":\"web-3\",\"uuid\":\"$(uuid_n 3)\",\"tenant\":\"\",\"uid\":65534,\"message\":\"uid 65534 may not call Reserve"
check_match "the text form says the same on one line each" \
    "slot [0-9]+ reserved: domain=web-1 uuid=$(uuid_n 1) tenant=default pid=0 reason=reserved" "$(cat "$TEST_DIR/events.txt")"

# A flood of refused calls by nobody for 3 s: at most the burst plus the rate goes out.
before=$(grep -c '"event":"refused"' "$EVENTS")
FLOODERS=()
for i in 1 2 3 4; do
    as_nobody "$FLOOD" bus 3 >"$TEST_DIR/flood$i.out" 2>&1 &
    FLOODERS+=($!)
done
wait "${FLOODERS[@]}"
sleep 1
refused=$(($(grep -c '"event":"refused"' "$EVENTS") - before))
calls=$(cat "$TEST_DIR"/flood*.out | sed -n 's/^calls=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
diag "$calls calls by the flooders, $refused Refused signals"
check "a flood's refusals are bounded: at most 256 + 128/s x 4 s of $((calls / 3)) refused Reserves" \
    test "$refused" -le $((256 + 128 * 4))
check "... and were sent (the bound is not a wall)" test "$refused" -ge 100
check "what the bound left out is announced once there is room, though no other event follows" \
    wait_until 5 has_event '"event":"events-dropped","dropped":[1-9]'
# The broker may still be answering the flood's last calls (a loaded machine, a sanitized
# build): the next event goes out once their refusals stop spending the bucket.
refusals_settled() {
    local n
    n=$(grep -c '"event":"refused"' "$EVENTS")
    sleep 0.5
    [ "$n" -eq "$(grep -c '"event":"refused"' "$EVENTS")" ]
}
wait_until 10 refusals_settled
"$TEST_CLIENT" reserve "$(uuid_n 4)" web-4 </dev/null >/dev/null
check "... and the next event comes through" wait_until 3 has_event '"state":"reserved","domain":"web-4"'
check_eq "the monitors ran without an error" "" "$(cat "$TEST_DIR/monitor.err")"

tap_done
