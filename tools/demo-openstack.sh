#!/usr/bin/env bash
# The fleet side, for real: the OpenStack Placement service (Debian's python3-placement, on
# 127.0.0.1 with SQLite) and two compute nodes, compute-a and compute-b, each with its own
# rma-brokerd (memfd, 2 RMAs of 256 MiB, Nova's tenant capped at 1) on its own private bus
# and its own rma-placement-agent. The scheduler's question, GET /allocation_candidates for
# VCPU, MEMORY_MB and one CUSTOM_RMA_256MB, picks the host that can give the project an RMA:
# a host whose RMAs other tenants took drops out, and so does a host whose Nova tenant is at
# its cap. Runs as root; changes nothing on the host and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${RMA_DEMO_SKIP_SETUP:-}" = 1 ] || { tools/install-deps.sh >/dev/null; tools/build.sh >/dev/null; }

export BUILD_DIR=${BUILD_DIR:-$PWD/build} SOURCE_DIR=$PWD
. tests/lib/tap.sh
. tests/lib/broker.sh
. tests/lib/placement.sh

make_test_dir demo-openstack
BASE=$TEST_DIR
declare -A NODE_BUS NODE_BROKER NODE_ADDR NODE_AGENT
node_down() {
    TEST_DIR=$BASE/$1 BUS_PID=${NODE_BUS[$1]:-} BROKER_PID=${NODE_BROKER[$1]:-}
    [ -n "${NODE_AGENT[$1]:-}" ] && kill "${NODE_AGENT[$1]}" 2>/dev/null
    stop_broker || true
    stop_private_bus
}
cleanup() {
    for n in compute-a compute-b; do node_down "$n"; done
    TEST_DIR=$BASE stop_placement
    wait 2>/dev/null
    rm -rf "$BASE"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo-openstack: $*" >&2; exit 1; }

say "OpenStack Placement on 127.0.0.1 (SQLite, noauth2)"
placement_setup
start_placement || fail "Placement did not start; see $BASE/placement.log"
echo "    $PLACEMENT_URL"

# node_up NAME: the compute node as nova-compute registers it, its broker, its agent.
node_up() {
    local n=$1
    TEST_DIR=$BASE/$n
    mkdir -p "$TEST_DIR/policy.d"
    printf '[Defaults]\nTenant=other\n[Tenant nova]\nMaxRmas=1\n[Tenant other]\n' >"$TEST_DIR/policy.d/10-demo.conf"
    add_compute_node "$n" >/dev/null
    start_private_bus
    start_broker --backend=memfd --count=2 --size=256M --qemu-users=nobody --no-check-cgroup \
        --policy-dir="$TEST_DIR/policy.d"
    NODE_BUS[$n]=$BUS_PID NODE_BROKER[$n]=$BROKER_PID NODE_ADDR[$n]=$DBUS_SYSTEM_BUS_ADDRESS
    printf '[agent]\ntenant = nova\ncompute_node = %s\n[placement]\ncloud = test\n' "$n" >"$TEST_DIR/agent.conf"
    chmod 0600 "$TEST_DIR/agent.conf"
    OS_CLIENT_CONFIG_FILE=$BASE/clouds.yaml $PY openstack/rma-placement-agent --config "$TEST_DIR/agent.conf" \
        >>"$TEST_DIR/agent.log" 2>&1 &
    NODE_AGENT[$n]=$!
    echo "    $n: rma-brokerd (memfd, 2 x 256 MiB; tenant nova MaxRmas=1) on $DBUS_SYSTEM_BUS_ADDRESS," \
        "rma-placement-agent pid ${NODE_AGENT[$n]}"
}
# on NODE busctl-ARGS...: the broker of that node.
on() {
    local n=$1; shift
    DBUS_SYSTEM_BUS_ADDRESS=${NODE_ADDR[$n]} busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 \
        org.rmabroker.Broker1 "$@" >/dev/null
}
# candidates: the compute nodes the scheduler's question gets, by name.
candidates() {
    api GET "/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,CUSTOM_RMA_256MB:1" >"$BASE/candidates.json"
    api GET /resource_providers | $PY -c '
import json, sys
names = {p["uuid"]: p["name"] for p in json.load(sys.stdin)["resource_providers"]}
d = json.load(open(sys.argv[1]))
hosts = sorted({names[u] for r in d.get("allocation_requests", []) for u, a in r["allocations"].items()
                if "VCPU" in a["resources"]})
print(" ".join(hosts) or "(none)")' "$BASE/candidates.json"
}
candidates_are() { [ "$(candidates)" = "$1" ]; }
# expect WHAT NODES: wait (the agents write within a second) and show.
expect() {
    wait_until 10 candidates_are "$2" || fail "expected candidates: $2; Placement says: $(candidates)"
    printf '    %s\n    GET /allocation_candidates?resources=VCPU:1,MEMORY_MB:512,CUSTOM_RMA_256MB:1 -> %s\n' "$1" "$2"
}
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }

say "Two compute nodes, each with its own rma-brokerd and rma-placement-agent"
node_up compute-a
node_up compute-b
expect "Both hosts can give Nova's project an RMA" "compute-a compute-b"
for n in compute-a compute-b; do
    rp=$(api GET "/resource_providers?name=${n}_RMA" | json 'd["resource_providers"][0]["uuid"]')
    echo "    ${n}_RMA (child of $n): $(api GET "/resource_providers/$rp/inventories" |
        json '" ".join("%s total %d reserved %d" % (k, v["total"], v["reserved"]) for k, v in d["inventories"].items())')"
done

say "Other tenants take both RMAs of compute-a"
on compute-a Reserve sss "$(uuid 1)" batch-1 other
on compute-a Reserve sss "$(uuid 2)" batch-2 other
expect "compute-a drops out: only compute-b can give one" "compute-b"

say "Nova schedules an instance to compute-b: Placement allocates, the domain's start reserves"
RP_B=$(api GET "/resource_providers?name=compute-b_RMA" | json 'd["resource_providers"][0]["uuid"]')
CN_B=$(api GET "/resource_providers?name=compute-b" | json 'd["resource_providers"][0]["uuid"]')
status=$(allocate "$(uuid 10)" "$RP_B" "$CN_B" CUSTOM_RMA_256MB)
[ "$status" = 204 ] || fail "Placement refused the allocation: HTTP $status"
on compute-b Reserve sss "$(uuid 10)" instance-0000000a nova
echo "    instance $(uuid 10): allocation on compute-b_RMA, RMA reserved by compute-b's broker"
expect "compute-b drops out too: its tenant nova is at its cap (MaxRmas=1), though an RMA is free" "(none)"

say "compute-a's other tenants give their RMAs back"
on compute-a Release s "$(uuid 1)"
on compute-a Release s "$(uuid 2)"
expect "compute-a is the host for the next instance" "compute-a"

say "Done: Placement offered, at every step, exactly what each host's broker would grant"
