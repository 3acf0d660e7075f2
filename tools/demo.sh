#!/usr/bin/env bash
# The main job, for real: rma-brokerd on its embedded default backend (memfd, 8 x 256 MiB)
# and a private libvirtd with rma-broker's hook and qemu-rma wrapper; `virsh start` of a
# ppc64 pseries guest (QEMU under TCG) gets its RMA automatically, the guest reads a value
# written through the region, a tenant at its cap is refused through `virsh start`.
# Runs as root on a private D-Bus bus, a private libvirtd (its own mount namespace) and a
# private runtime directory: it changes nothing on the host and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${RMA_DEMO_SKIP_SETUP:-}" = 1 ] || { tools/install-deps.sh >/dev/null; tools/build.sh >/dev/null; }

export BUILD_DIR=$PWD/build SOURCE_DIR=$PWD
. tests/lib/tap.sh
. tests/lib/broker.sh
. tests/e2e/libvirt-sandbox.sh

make_test_dir demo
trap 'sandbox_stop; stop_broker; stop_private_bus; rm -rf "$TEST_DIR"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
OBJ=(org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1)
RMACTL=$BUILD_DIR/rmactl/rmactl

say "A tenant policy: acme (domains web-*) may hold 1 RMA and is guaranteed 1; the rest is 'shared'"
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
run "$RMACTL" check-policy "$TEST_DIR/policy.d"

say "rma-brokerd on its defaults (memfd, 8 x 256 MiB), on a private system bus with our real bus policy"
start_private_bus
start_broker --qemu-users=libvirt-qemu --policy-dir="$TEST_DIR/policy.d"
sed 's/^/    /' "$TEST_DIR/broker.log"
run busctl --system get-property "${OBJ[@]}" FreeRmas

say "A private libvirtd with the rma-broker hook (qemu.d/50-rma-broker) and the qemu-rma wrapper"
# libvirt gives the hook and QEMU no environment of ours, so two one-line shims name this
# demo's broker.sock; installed for real they use /run/rma-broker/broker.sock as they are.
write_libvirt_shims "$TEST_DIR/run/broker.sock"
export SANDBOX_VIRTLOGD=1
sandbox_start "$TEST_DIR/bin/50-rma-broker"
vsh() { printf '$ virsh %s\n' "$*"; sandbox_virsh "$@"; }

say "Two plain ppc64 pseries guests (1 GiB, 2 vCPUs, no NUMA cells), opted in with rmactl domain enable"
for d in web-01:6a1c2d3e-0000-4000-8000-0000000000a1 web-02:6a1c2d3e-0000-4000-8000-0000000000a2; do
    sandbox_domain_xml "${d%%:*}" "${d#*:}" "$(command -v qemu-system-ppc64)" 1024 flat |
        sed '/<metadata>/,/<\/metadata>/d' >"$TEST_DIR/${d%%:*}.xml"
    vsh define "$TEST_DIR/${d%%:*}.xml"
done
run "$RMACTL" domain enable web-01 --emulator="$WRAPPER" --connect="$SANDBOX_URI" --dry-run
run "$RMACTL" domain enable web-01 --emulator="$WRAPPER" --connect="$SANDBOX_URI"
run "$RMACTL" domain enable web-02 --emulator="$WRAPPER" --connect="$SANDBOX_URI"

say "virsh start web-01: the hook reserves, the wrapper claims and makes the RMA the guest's boot memory"
vsh start web-01
run "$RMACTL" list
run busctl --system get-property "${OBJ[@]}" FreeRmas
run "$RMACTL" domain show web-01 --connect="$SANDBOX_URI" --policy-dir="$TEST_DIR/policy.d"
grep '^qemu-rma:' "$(sandbox_domain_log web-01)" | sed 's/^/    (domain log) /'

say "The guest's layout: told its RMA (device-tree memory@0 = 256 MiB), one node of 1 GiB as its XML says"
printf '$ virsh qemu-monitor-command --hmp web-01 dumpdtb ...  (memory@ nodes: name, start, size, node)\n'
sandbox_dtb_memory web-01 | sed 's/^/    /'
vsh qemu-monitor-command --hmp web-01 'info numa'
vsh qemu-monitor-command --hmp web-01 'info memory-devices'

say "The guest reads what is written through the region: 'RMA!' at offset 192 MiB = guest address 0x0c000000"
slot=$(busctl --system call "${OBJ[@]}" ListRmas | grep -oE '[0-9]+ "leased"' | cut -d' ' -f1)
for fd in /proc/$BROKER_PID/fd/*; do
    [[ "$(readlink "$fd")" == "/memfd:rma-broker-slot-$slot (deleted)" ]] && region=$fd
done
printf 'RMA!' | dd of="$region" bs=1 seek=$((192 << 20)) conv=notrunc status=none
vsh qemu-monitor-command --hmp web-01 'xp /4cb 0x0c000000'

say "virsh start web-02: acme is at its cap (MaxRmas=1), refused through virsh with the broker's reason"
vsh start web-02 || true
run "$RMACTL" tenants

say "virsh destroy web-01: its QEMU exits, the lease ends, the slot comes back"
vsh destroy web-01
wait_until 10 prop_is FreeRmas 8
run busctl --system get-property "${OBJ[@]}" FreeRmas
run "$RMACTL" metrics | grep -E '^rma_broker_(regions|reserve_requests_total)'

say "Broker log"
sed 's/^/    /' "$TEST_DIR/broker.log"
echo
echo "Done: the private libvirtd, bus and broker are stopped and their files removed."
