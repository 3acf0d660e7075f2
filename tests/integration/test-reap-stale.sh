#!/usr/bin/env bash
# The tests' own leftovers: a test killed at its timeout (meson sends SIGKILL to its
# process group) leaves its test dir and its private dbus-daemon, which daemonized out of
# that group. The next test that makes a test dir removes both; a running test's are kept.
# (The libvirt sandboxes' counterpart is in tests/e2e/libvirt-sandbox-selftest.sh.)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

require_commands dbus-daemon
out=$(mktemp)
# A test that is killed: its dir and bus stay.
bash -c '. "$1/../lib/broker.sh"; make_test_dir reap-killed; start_private_bus
    echo "$TEST_DIR $BUS_PID" >"$2"; kill -9 $$' _ "$HERE" "$out"
read -r killed_dir killed_bus <"$out"
check "a killed test leaves its dir and its bus behind" test -d "$killed_dir" -a -d "/proc/$killed_bus"
# (Its own make_test_dir removes the killed one: checked below through ours.)
# A test that still runs: its dir and bus are kept.
bash -c '. "$1/../lib/broker.sh"; make_test_dir reap-alive; start_private_bus
    echo "$TEST_DIR $BUS_PID" >"$2"; sleep 60' _ "$HERE" "$out.alive" &
alive_shell=$!
wait_until 10 test -s "$out.alive"
read -r alive_dir alive_bus <"$out.alive"
rm -f "$out" "$out.alive"

make_test_dir reap
check "the next test dir removes the killed test's dir" test ! -e "$killed_dir"
check "... and stops its bus" wait_until 5 test ! -d "/proc/$killed_bus"
check "a running test's dir and bus are kept" test -d "$alive_dir" -a -d "/proc/$alive_bus"
kill "$alive_bus" "$alive_shell" 2>/dev/null
wait "$alive_shell" 2>/dev/null
rm -rf "$alive_dir" "$TEST_DIR"
tap_done
