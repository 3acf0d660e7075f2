#!/usr/bin/env bash
# Integration: RMA sizes no pseries guest can use (not a multiple of 256 MiB, the step of
# pseries boot memory). A memfd Size= of 64M or 128M stops rma-brokerd at start with the
# reason and the sizes that work; the suite's test setting lets small pools through; a
# POWER kernel's pool of 64 MiB RMAs (tests/helpers/rma-fake-power-kernel) is served, and
# the journal and rmactl status say why no guest can use it and what to boot with.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the broker's runtime directory"
    exit 0
fi

make_test_dir guest-size
cleanup() {
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT
# This test is about the production rule: without the suite's test setting.
unset RMA_BROKER_TEST_SMALL_RMAS
run_broker_once() { timeout 20 "$@" --runtime-dir="$TEST_DIR/run-once" 2>&1; }

start_private_bus
for size in 64M 128M; do
    out=$(run_broker_once "$BROKERD" --backend=memfd --count=1 --size=$size); status=$?
    check "memfd Size=$size stops the broker at start" test $status -ne 0
    check_match "... with the reason and the sizes that work" \
        "Refusing Size=: no pseries guest can use an RMA of ${size%M} MiB.*QEMU and libvirt size pseries boot memory in steps of 256 MiB.*set Size= to 256M, 512M, 1G or a bigger power of two" \
        "$out"
done
start_broker --backend=memfd --count=1 --size=256M --qemu-users=nobody --no-check-cgroup
check_eq "memfd Size=256M serves" "268435456" "$(prop RmaSize)"
stop_broker
RMA_BROKER_TEST_SMALL_RMAS=1 start_broker --backend=memfd --count=1 --size=4M --qemu-users=nobody --no-check-cgroup
check_eq "with the test setting, a small pool serves" "4194304" "$(prop RmaSize)"
check_match "... and its log says it is for tests only" "Served for a test \\(RMA_BROKER_TEST_SMALL_RMAS=1\\), but no pseries guest can use an RMA of 4 MiB" \
    "$(cat "$TEST_DIR/broker.log")"
stop_broker
: >"$TEST_DIR/broker.log"

BROKER_WRAP=("$BUILD_DIR/tests/rma-fake-power-kernel" --count 1 --size 64M --capability 2 --)
start_broker --backend=kvm --qemu-users=nobody --no-check-cgroup --policy-dir="$TEST_DIR/none"
check_eq "a kernel pool of 64 MiB RMAs is served" '"kvm" 67108864' "$(prop Backend) $(prop RmaSize)"
check_match "the journal at start says why no guest can use it and what to boot with" \
    "The kernel's RMAs are served, but no pseries guest can use an RMA of 64 MiB.*boot the host with kvm_rma_size=256M \\(or 1G, 16G\\)" \
    "$(cat "$TEST_DIR/broker.log")"
check_match "rmactl status says it too" \
    "RMA size: 64 MiB.*Warning: +no pseries guest can use an RMA of 64 MiB.*kvm_rma_size=256M" \
    "$("$BUILD_DIR/rmactl/rmactl" status | tr '\n' ' ')"
# The hook's refusal (pool of 1 taken) says it too, in its one line.
hook() { # NAME UUID OP
    printf '<domain><name>%s</name><uuid>%s</uuid><metadata><rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1"/></metadata></domain>' "$1" "$2" |
        env -i LC_ALL=C PATH=/usr/bin:/bin RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" \
            "$BUILD_DIR/libvirt-plugin/rma-broker-hook" "$1" "$3" begin - 2>&1 >/dev/null
}
hook dom1 11111111-aaaa-4aaa-8aaa-000000000001 prepare >/dev/null
out=$(hook dom2 11111111-aaaa-4aaa-8aaa-000000000002 prepare)
check_match "a refusal says why no guest could use the pool and what to boot with, in one line" \
    "^rma-broker: No free RMA for domain dom2: .*; besides, no pseries guest can use an RMA of 64 MiB.*kvm_rma_size=256M \\(or 1G, 16G\\)$" \
    "$out"
# The wrapper (as the QEMU user) claims dom1's RMA and refuses to start QEMU on it.
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- env -i PATH=/usr/bin:/bin \
    RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" RMA_QEMU_BINARY=/bin/echo \
    RMA_QEMU_CLAIM="$BUILD_DIR/libvirt-plugin/qemu-rma-claim" "$BUILD_DIR/libvirt-plugin/qemu-rma" \
    -m 1024 -object '{"qom-type":"memory-backend-ram","id":"ppc_spapr.ram","size":1073741824}' \
    -uuid 11111111-aaaa-4aaa-8aaa-000000000001 2>&1); status=$?
check "the wrapper does not start QEMU on a 64 MiB RMA" test $status -ne 0
check_match "... and says why and what to boot with" \
    "qemu-rma: domain 11111111-aaaa-4aaa-8aaa-000000000001 cannot start with the RMA from rma-brokerd: no pseries guest can use an RMA of 64 MiB.*kvm_rma_size=256M" \
    "$out"
hook dom1 11111111-aaaa-4aaa-8aaa-000000000001 release >/dev/null
check "broker exits cleanly" stop_broker
tap_done
