# The real OpenStack Placement service (Debian's python3-placement) on 127.0.0.1, with
# SQLite and noauth2, in $TEST_DIR/placement, for the tests and tools/demo-openstack.sh.
# shellcheck shell=bash

PY=/usr/bin/python3   # Debian's: PATH may have other pythons first
PLACEMENT_PID=

# placement_setup: the database and config; sets PLACEMENT_URL, writes a clouds.yaml
# ($TEST_DIR/clouds.yaml, cloud "test", keystoneauth's admin_token; 0600: it holds a token).
placement_setup() {
    local port
    port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PLACEMENT_URL=http://127.0.0.1:$port
    mkdir -p "$TEST_DIR/placement"
    printf '[api]\nauth_strategy = noauth2\n[placement_database]\nconnection = sqlite:///%s/placement.db\n' \
        "$TEST_DIR/placement" >"$TEST_DIR/placement/placement.conf"
    OS_PLACEMENT_CONFIG_DIR=$TEST_DIR/placement $PY /usr/bin/placement-manage \
        --config-file "$TEST_DIR/placement/placement.conf" db sync >>"$TEST_DIR/placement.log" 2>&1
    printf 'clouds:\n  test:\n    auth_type: admin_token\n    auth:\n      endpoint: %s\n      token: admin\n' \
        "$PLACEMENT_URL" >"$TEST_DIR/clouds.yaml"
    chmod 0600 "$TEST_DIR/clouds.yaml"
}
# start_placement: placement-api in a session of its own; returns once it answers.
start_placement() {
    OS_PLACEMENT_CONFIG_DIR=$TEST_DIR/placement setsid $PY /usr/bin/placement-api --host 127.0.0.1 \
        --port "${PLACEMENT_URL##*:}" >>"$TEST_DIR/placement.log" 2>&1 &
    PLACEMENT_PID=$!
    wait_until 30 curl -sf -o /dev/null "$PLACEMENT_URL/"
}
stop_placement() {
    if [ -n "$PLACEMENT_PID" ]; then
        kill -- -"$PLACEMENT_PID" 2>/dev/null
        wait "$PLACEMENT_PID" 2>/dev/null || true   # its SIGTERM status is no failure
        PLACEMENT_PID=
    fi
}
# api METHOD PATH [JSON]: Placement as an admin sees it (noauth2).
api() {
    curl -s -X "$1" -H "X-Auth-Token: admin" -H "OpenStack-API-Version: placement 1.39" \
        -H "Content-Type: application/json" ${3:+--data "$3"} "$PLACEMENT_URL$2"
}
# json EXPR: EXPR of the JSON on stdin (as d).
json() { $PY -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# add_compute_node NAME: its provider as nova-compute makes it (VCPU, MEMORY_MB); its uuid.
add_compute_node() {
    local cn
    cn=$(api POST /resource_providers "{\"name\": \"$1\"}" | json 'd["uuid"]')
    api PUT "/resource_providers/$cn/inventories" '{"resource_provider_generation": 0, "inventories":
        {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 16384}}}' >/dev/null
    echo "$cn"
}
# allocate CONSUMER RMA_PROVIDER COMPUTE_NODE RC: as Nova's scheduler claims for an
# instance (1 RC on the RMA provider, VCPU and MEMORY_MB on the compute node); the HTTP status.
allocate() {
    curl -s -o "$TEST_DIR/allocate.out" -w '%{http_code}' -X PUT -H "X-Auth-Token: admin" \
        -H "OpenStack-API-Version: placement 1.39" -H "Content-Type: application/json" \
        --data "{\"allocations\": {\"$2\": {\"resources\": {\"$4\": 1}}, \"$3\": {\"resources\": \
{\"VCPU\": 1, \"MEMORY_MB\": 512}}}, \"project_id\": \"00000000-0000-4000-8000-000000000900\", \
\"user_id\": \"00000000-0000-4000-8000-000000000901\", \"consumer_generation\": null, \
\"consumer_type\": \"INSTANCE\"}" "$PLACEMENT_URL/allocations/$1"
}
