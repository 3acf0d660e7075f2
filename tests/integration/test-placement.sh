#!/usr/bin/env bash
# Integration: rma-placement-agent against the real OpenStack Placement service
# (Debian's python3-placement, on 127.0.0.1 with SQLite and noauth2), the built broker on
# a private system bus, and auth the way an operator configures it: a clouds.yaml cloud
# read by openstacksdk, keystoneauth's admin_token plugin for noauth2. The question a
# scheduler asks, GET /allocation_candidates with the compute node's VCPU and MEMORY_MB
# and one CUSTOM_RMA_4MB, must follow the broker within 2 s, across a Placement restart,
# a broker restart and a generation conflict.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"
. "$HERE/../lib/placement.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the broker checks peer uids"
    exit 0
fi
require_commands placement-api curl
if ! $PY -c 'import keystoneauth1, openstack, gi' 2>/dev/null; then
    echo "not ok 1 - prerequisites: python3-keystoneauth1, python3-openstacksdk, python3-gi; run tools/install-deps.sh"
    echo "1..1"
    exit 1
fi

make_test_dir placement
AGENT_PID=
PLACEMENT_PID=
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    stop_placement
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

placement_setup
URL=$PLACEMENT_URL
# listed: how many allocation requests the scheduler's question gets (1: this host; 0
# also while the resource class does not exist yet).
listed() {
    api GET "/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,CUSTOM_RMA_4MB:1" |
        json 'len(d.get("allocation_requests", []))'
}
listed_is() { [ "$(listed)" = "$1" ]; }
rma_inventory() { # "total reserved" of the RMA provider
    api GET "/resource_providers/$RMA_RP/inventories" |
        json '"%d %d" % (d["inventories"]["CUSTOM_RMA_4MB"]["total"], d["inventories"]["CUSTOM_RMA_4MB"]["reserved"])'
}
inventory_is() { [ "$(rma_inventory 2>/dev/null)" = "$1" ]; }
agent_log_has() { grep -q -- "$1" "$TEST_DIR/agent.log"; }
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }

start_placement
check "Placement answers on $URL" curl -sf -o /dev/null "$URL/"

# The compute node, as nova-compute makes it: VCPU and MEMORY_MB.
CN=$(add_compute_node compute-test)
check_eq "without the agent the host has no RMA to offer" 0 "$(listed)"

# The broker: 3 RMAs of 4 MiB; Nova's VMs are tenant nova, everything else tenant other.
mkdir -p "$TEST_DIR/policy.d"
printf '[Defaults]\nTenant=other\n[Tenant nova]\nMaxRmas=2\n[Tenant other]\n' >"$TEST_DIR/policy.d/10-test.conf"
start_private_bus
start_broker --backend=memfd --count=3 --size=4M --qemu-users=nobody --no-check-cgroup \
    --policy-dir="$TEST_DIR/policy.d"

cat >"$TEST_DIR/agent.conf" <<EOF
[agent]
tenant = nova
compute_node = compute-test
retry_max_seconds = 2
[placement]
cloud = test
EOF
OS_CLIENT_CONFIG_FILE=$TEST_DIR/clouds.yaml $PY "$SOURCE_DIR/openstack/rma-placement-agent" \
    --config "$TEST_DIR/agent.conf" >>"$TEST_DIR/agent.log" 2>&1 &
AGENT_PID=$!

check "the host is a candidate once the agent runs (an RMA is free for Nova's tenant)" wait_until 10 listed_is 1
RMA_RP=$(api GET "/resource_providers?name=compute-test_RMA" | json 'd["resource_providers"][0]["uuid"]')
check_eq "the RMAs are a child provider of the compute node" "$CN" \
    "$(api GET "/resource_providers/$RMA_RP" | json 'd["parent_provider_uuid"]')"
check_eq "total is the pool; reserved what Nova's cap (MaxRmas=2) keeps from it" "3 1" "$(rma_inventory)"

# The other tenants take the rest: within 2 s the host is no candidate.
for i in 1 2 3; do bus_call Reserve sss "$(uuid "$i")" "other-$i" "" >/dev/null; done
check "the host stops being a candidate within 2 s of the other tenants taking the rest" wait_until 2 listed_is 0
check_eq "... all 3 reserved, never more than the pool" "3 3" "$(rma_inventory)"
for i in 1 2 3; do bus_call Release s "$(uuid "$i")" >/dev/null; done
check "the host is a candidate again when they release" wait_until 2 listed_is 1

# Nova's instances: Placement allocates (the scheduler's claim), then the domain's start
# reserves in the broker. Their RMAs are allocations, not reserved; Nova's cap is.
allocate_rma() { allocate "$1" "$RMA_RP" "$CN" CUSTOM_RMA_4MB; }
check_eq "Placement allocates Nova's first instance" 204 "$(allocate_rma "$(uuid 4)")"
bus_call Reserve sss "$(uuid 4)" "instance-4" nova >/dev/null
check "Nova's tenant holds 1 of its 2: 1 more is offered" wait_until 2 listed_is 1
check_eq "... its own RMA is its allocation, not reserved (3 - 1 offered - 1 held = 1)" "3 1" "$(rma_inventory)"
check_eq "... and its second" 204 "$(allocate_rma "$(uuid 5)")"
bus_call Reserve sss "$(uuid 5)" "instance-5" nova >/dev/null
check "at its cap: nothing more is offered" wait_until 2 listed_is 0
for i in 4 5; do
    bus_call Release s "$(uuid "$i")" >/dev/null
    api DELETE "/allocations/$(uuid "$i")" >/dev/null
done
check "... and after they stop, again" wait_until 2 listed_is 1

# RMAs that Nova's tenant holds without an allocation (an instance booted before its flavor
# requested the resource, a NovaFlavors= flavor without it, a Reserve from outside Nova):
# the broker refuses a third, so Placement must not offer one, nor accept a claim.
for i in 10 11; do bus_call Reserve sss "$(uuid "$i")" "instance-$i" nova >/dev/null; done
check "Nova's tenant at its cap without allocations: nothing offered within 2 s" wait_until 2 listed_is 0
check_eq "... so Placement refuses the scheduler's claim (the broker would refuse the Reserve)" 409 \
    "$(allocate_rma "$(uuid 12)")"
check "... and the agent names each instance that holds an RMA without an allocation" \
    wait_until 2 agent_log_has "Instance $(uuid 11) (domain instance-11) holds an RMA of tenant nova without an allocation"
# Nova allocates first and the instance is gone before its Reserve: the allocation keeps its
# RMA out of the offer, as Placement counts it, until Nova deletes it.
for i in 10 11; do bus_call Release s "$(uuid "$i")" >/dev/null; done
check "they release: offered again" wait_until 2 listed_is 1
check_eq "an allocation whose instance never reserves" 204 "$(allocate_rma "$(uuid 13)")"
check_eq "... leaves one for the next (cap 2 - 1 waiting)" "3 1" "$(rma_inventory)"
check_eq "... and a second one takes the last grantable" 204 "$(allocate_rma "$(uuid 14)")"
check "... then nothing is offered" wait_until 2 listed_is 0
api DELETE "/allocations/$(uuid 13)" >/dev/null
api DELETE "/allocations/$(uuid 14)" >/dev/null
check "Nova deletes them: offered again at once (Placement's own arithmetic)" wait_until 2 listed_is 1

# Placement goes away while the pool changes; the agent retries and resyncs.
stop_placement
for i in 1 2 3; do bus_call Reserve sss "$(uuid "$i")" "other-$i" "" >/dev/null; done
check "Placement down: the agent says so" wait_until 10 agent_log_has "Cannot update Placement"
sleep 3
check_eq "... once per streak, not per retry" 1 "$(grep -c "Cannot update Placement" "$TEST_DIR/agent.log")"
start_placement
check "Placement back: the agent resyncs (the host is no candidate)" wait_until 10 listed_is 0
check "... and says it is in step" agent_log_has "Placement is reachable again"
for i in 1 2 3; do bus_call Release s "$(uuid "$i")" >/dev/null; done
check "... and follows changes again" wait_until 2 listed_is 1

# Someone else changes the provider (its traits): the agent's next write conflicts (409)
# and re-reads the generation.
api PUT /traits/CUSTOM_RMA_TEST >/dev/null
GEN=$(api GET "/resource_providers/$RMA_RP" | json 'd["generation"]')
api PUT "/resource_providers/$RMA_RP/traits" "{\"resource_provider_generation\": $GEN, \"traits\": [\"CUSTOM_RMA_TEST\"]}" \
    >/dev/null
for i in 6 7; do bus_call Reserve sss "$(uuid "$i")" "other-$i" "" >/dev/null; done
check "a generation conflict: the inventory still follows (1 left for Nova)" wait_until 2 inventory_is "3 2"
check "... after re-reading the provider" agent_log_has "generation conflict"
for i in 6 7; do bus_call Release s "$(uuid "$i")" >/dev/null; done

# Auth from keystoneauth options in [placement], as in nova.conf, instead of clouds.yaml.
cat >"$TEST_DIR/agent-options.conf" <<EOF
[agent]
tenant = nova
compute_node = compute-test
[placement]
auth_type = admin_token
endpoint = $URL
token = admin
EOF
chmod 0600 "$TEST_DIR/agent-options.conf"
out=$($PY "$SOURCE_DIR/openstack/rma-placement-agent" --config "$TEST_DIR/agent-options.conf" --once 2>&1)
check "[placement] keystoneauth options (no clouds.yaml): one sync, Placement in step" test $? -eq 0 || diag "$out"

# A configuration that holds a secret must not be readable by every local user.
sed 's/^token = admin$/token = admin\npassword = s3cret/' "$TEST_DIR/agent-options.conf" >"$TEST_DIR/agent-secret.conf"
chmod 0644 "$TEST_DIR/agent-secret.conf"
out=$($PY "$SOURCE_DIR/openstack/rma-placement-agent" --config "$TEST_DIR/agent-secret.conf" --once 2>&1); status=$?
check "a password in a file every user can read: the agent refuses to start" test $status -ne 0
check_match "... naming the file, its mode and the fix" \
    "agent-secret.conf holds a credential and every local user can read it \\(mode 0644\\)\\. Run: chmod o-r .*LoadCredential=" "$out"
chmod 0640 "$TEST_DIR/agent-secret.conf"
out=$($PY "$SOURCE_DIR/openstack/rma-placement-agent" --config "$TEST_DIR/agent-secret.conf" --once 2>&1)
check "... and starts once it is 0640" test $? -eq 0 || diag "$out"
sed 's/^      token: admin$/      token: admin\n      password: s3cret/' "$TEST_DIR/clouds.yaml" >"$TEST_DIR/clouds-secret.yaml"
chmod 0644 "$TEST_DIR/clouds-secret.yaml"
out=$(OS_CLIENT_CONFIG_FILE=$TEST_DIR/clouds-secret.yaml $PY "$SOURCE_DIR/openstack/rma-placement-agent" \
    --config "$TEST_DIR/agent.conf" --once 2>&1); status=$?
check "the same for a clouds.yaml with a password" test $status -ne 0
check_match "... naming it" "clouds-secret.yaml holds a credential and every local user can read it" "$out"
# systemd's LoadCredential=: the agent takes its files from $CREDENTIALS_DIRECTORY.
mkdir -m 0700 "$TEST_DIR/credentials"
install -m 0400 "$TEST_DIR/agent-secret.conf" "$TEST_DIR/credentials/placement-agent.conf"
out=$(CREDENTIALS_DIRECTORY=$TEST_DIR/credentials $PY "$SOURCE_DIR/openstack/rma-placement-agent" --once 2>&1)
check "a systemd credential is the default configuration" test $? -eq 0 || diag "$out"

# The broker restarts: while it is away nothing is offered, then all again.
stop_broker
check "broker gone: the host is no candidate within 2 s (everything reserved)" wait_until 2 listed_is 0
check_eq "... total still the pool" "3 3" "$(rma_inventory)"
# An agent that starts while the broker is away (a reboot whose broker failed, an agent
# restarted during an outage) has never seen the pool: it reserves what Placement shows.
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
api PUT "/resource_providers/$RMA_RP/inventories" "{\"resource_provider_generation\": \
$(api GET "/resource_providers/$RMA_RP" | json 'd["generation"]'), \"inventories\": {\"CUSTOM_RMA_4MB\": \
{\"total\": 3, \"reserved\": 0}}}" >/dev/null
check "a stale inventory offers RMAs while the broker is away" listed_is 1
out=$(OS_CLIENT_CONFIG_FILE=$TEST_DIR/clouds.yaml $PY "$SOURCE_DIR/openstack/rma-placement-agent" \
    --config "$TEST_DIR/agent.conf" --once 2>&1); status=$?
check "--once without the broker exits non-zero: it could not report the truth" test $status -ne 0
check_match "... saying so" "rma-brokerd is not reachable: every RMA is reserved in Placement" "$out"
check_eq "... having reserved every RMA all the same" "3 3" "$(rma_inventory)"
api PUT "/resource_providers/$RMA_RP/inventories" "{\"resource_provider_generation\": \
$(api GET "/resource_providers/$RMA_RP" | json 'd["generation"]'), \"inventories\": {\"CUSTOM_RMA_4MB\": \
{\"total\": 3, \"reserved\": 0}}}" >/dev/null
OS_CLIENT_CONFIG_FILE=$TEST_DIR/clouds.yaml $PY "$SOURCE_DIR/openstack/rma-placement-agent" \
    --config "$TEST_DIR/agent.conf" >>"$TEST_DIR/agent.log" 2>&1 &
AGENT_PID=$!
check "a running agent started without the broker reserves everything within 2 s" wait_until 2 listed_is 0

start_broker --backend=memfd --count=3 --size=4M --qemu-users=nobody --no-check-cgroup \
    --policy-dir="$TEST_DIR/policy.d"
check "broker back: the host is a candidate again" wait_until 5 listed_is 1
check "the agent is still running" kill -0 "$AGENT_PID"

# A drain (rmactl drain, before maintenance) takes the host out of scheduling at once:
# the broker grants nothing new, so the agent reserves the whole inventory.
bus_call Drain s "maintenance" >/dev/null
check "draining: the host is no candidate within 2 s" wait_until 2 listed_is 0
check_eq "... every RMA reserved (total 3, reserved 3)" "3 3" "$(rma_inventory)"
bus_call Undrain >/dev/null
check "undrained: a candidate again" wait_until 2 listed_is 1

if [ "$TAP_FAILED" -ne 0 ]; then
    [ -f "$TEST_DIR/allocate.out" ] && diag "last allocation answer: $(cat "$TEST_DIR/allocate.out")"
    diag "agent log:"; diag "$(cat "$TEST_DIR/agent.log")"
    diag "placement log (tail):"; diag "$(tail -20 "$TEST_DIR/placement.log")"
fi
tap_done
