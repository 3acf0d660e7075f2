#!/usr/bin/env bash
# The main job, watchable: rma-brokerd on its embedded default backend (memfd, 8 x 256 MiB)
# serving a scenario with real processes, read back with the real busctl.
# Runs as root on a private D-Bus bus and a private runtime directory: it changes nothing
# on the host and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${RMA_DEMO_SKIP_SETUP:-}" = 1 ] || { tools/install-deps.sh >/dev/null; tools/build.sh >/dev/null; }

export BUILD_DIR=$PWD/build SOURCE_DIR=$PWD
. tests/lib/tap.sh
. tests/lib/broker.sh

make_test_dir demo
trap 'stop_broker; stop_private_bus; rm -rf "$TEST_DIR"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
bus() { busctl --system "$@"; }
OBJ=(org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1)

say "A tenant policy: acme may hold 1 RMA and is guaranteed 1; everyone else is 'shared'"
mkdir -p "$TEST_DIR/policy.d"
cat >"$TEST_DIR/policy.d/10-demo.conf" <<'CONF'
[Defaults]
Tenant=shared

[Tenant acme]
MaxRmas=1
GuaranteedRmas=1
Domains=web-*

[Tenant shared]
CONF
sed 's/^/    /' "$TEST_DIR/policy.d/10-demo.conf"
run "$BUILD_DIR/rmactl" check-policy "$TEST_DIR/policy.d"

say "Start a private system bus (with rma-broker's real bus policy) and rma-brokerd on its defaults"
start_private_bus
start_broker --qemu-users=nobody --no-check-cgroup --policy-dir="$TEST_DIR/policy.d"
sed 's/^/    /' "$TEST_DIR/broker.log"
run busctl --system introspect "${OBJ[@]}"

say "Capacity, readable by anyone (here as user nobody)"
for p in Backend RmaSize TotalRmas FreeRmas; do
    printf '%-10s ' "$p"; setpriv --reuid=nobody --regid=nogroup --clear-groups busctl --system get-property "${OBJ[@]}" "$p"
done

U1=3c1f0e6a-7a43-4bd8-9a39-0f1f4f7c2a11
U2=8d6b9b52-3f4e-4c6e-9d43-2b8c7f1e0a22
say "root reserves RMAs for two domains (what the libvirt hook does at 'prepare begin')"
echo "(web-01 is acme's by its Domains= glob; build-07 goes to the default tenant)"
run bus call "${OBJ[@]}" Reserve sss $U1 web-01 ""
run bus call "${OBJ[@]}" Reserve sss $U2 build-07 ""

say "Two unprivileged processes (user nobody, as QEMU would be) claim their region fds over broker.sock"
# claim UUID FD: a claimer as nobody that holds its lease until fd FD of this shell closes.
claim() {
    mkfifo "$TEST_DIR/$1.fifo"
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TEST_CLIENT" claim "$1" "hello" \
        <"$TEST_DIR/$1.fifo" >"$TEST_DIR/$1.out" 2>&1 8>&- 9>&- &
    eval "exec $2>\"$TEST_DIR/$1.fifo\""
}
claim $U1 8
claim $U2 9
wait_until 10 prop_is LeasedRmas 2
cat "$TEST_DIR"/*.out | sed 's/^/    claimer: /'
run bus call "${OBJ[@]}" ListRmas
printf 'FreeRmas   '; bus get-property "${OBJ[@]}" FreeRmas
printf 'LeasedRmas '; bus get-property "${OBJ[@]}" LeasedRmas
run "$BUILD_DIR/rmactl" status
run "$BUILD_DIR/rmactl" list
run "$BUILD_DIR/rmactl" tenants

say "Refusals name the problem and leave the pool alone"
run bus call "${OBJ[@]}" Reserve sss 11111111-2222-4333-8444-555555555555 web-02 "" || true
run setpriv --reuid=nobody --regid=nogroup --clear-groups "$TEST_CLIENT" claim $U1 </dev/null || true
run "$TEST_CLIENT" claim 00000000-0000-0000-0000-000000000000 </dev/null || true

say "The first claimer exits: its lease ends and the slot is free again, with a fresh region"
exec 8>&-
wait_until 10 prop_is LeasedRmas 1
printf 'FreeRmas   '; bus get-property "${OBJ[@]}" FreeRmas
printf 'LeasedRmas '; bus get-property "${OBJ[@]}" LeasedRmas
exec 9>&-
wait_until 10 prop_is LeasedRmas 0

say "Broker log"
sed 's/^/    /' "$TEST_DIR/broker.log"
echo
echo "Done: everything the demo started is stopped. See tests/e2e for the same flow driven by virsh start."
