#!/usr/bin/env bash
# Integration: fleet-facing capacity. The built broker on a private bus writes its
# Prometheus textfile (MetricsFile=); Debian's prometheus-node-exporter serves it; the
# real socket-activation tool runs `rmactl metrics --http` per connection as the metrics
# unit does, and curl scrapes it; promtool checks both expositions; `rmactl export
# placement` prints a Nova provider config that YAML and its schema accept.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: claims are made as another user"
    exit 0
fi
require_commands prometheus-node-exporter promtool systemd-socket-activate curl python3 unshare ip
# A network namespace of its own: the ports free_port finds stay free, whatever else runs
# on the host (the bus and broker.sock are path sockets, reachable from any namespace).
if [ -z "${RMA_METRICS_NETNS:-}" ]; then
    exec unshare --net env RMA_METRICS_NETNS=1 "$0" "$@"
fi
ip link set lo up

make_test_dir metrics
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    [ ${#PIDS[@]} -gt 0 ] && wait "${PIDS[@]}" 2>/dev/null
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

RMACTL=$BUILD_DIR/rmactl/rmactl
TEXTFILE_DIR=$TEST_DIR/textfile
PROM=$TEXTFILE_DIR/rma-broker.prom
QEMU_UID=4243
mkdir -p "$TEXTFILE_DIR" "$TEST_DIR/policy.d"
cat >"$TEST_DIR/policy.d/10-tenants.conf" <<'CONF'
[Defaults]
Tenant=shared

[Tenant acme]
MaxRmas=1
GuaranteedRmas=1

[Tenant gold]
GuaranteedRmas=1

[Tenant shared]
CONF
cat >"$TEST_DIR/broker.conf" <<CONF
[Broker]
MetricsFile=$PROM
CONF
# A port that nothing in this test's network namespace listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
metric() { # metric TEXT NAME{LABELS}: the value of one sample
    awk -v k="$2" '$1 == k {print $2}' <<<"$1"
}
total() { # total TEXT NAME RESULT: the samples of NAME with that result, summed over tenants
    awk -v n="$2{" -v r="result=\"$3\"" 'index($1, n) == 1 && index($1, r) {s += $2} END {print s + 0}' <<<"$1"
}

start_private_bus
start_broker --config="$TEST_DIR/broker.conf" --count=4 --size=4M --qemu-users=$QEMU_UID --no-check-cgroup \
    --policy-dir="$TEST_DIR/policy.d"
check "broker writes its textfile at start" wait_until 5 test -s "$PROM"
check_eq "the textfile is world-readable" 644 "$(stat -c %a "$PROM")"
text=$(cat "$PROM")
check_eq "4 free regions of the memfd backend" 4 "$(metric "$text" 'rma_broker_regions{backend="memfd",state="free"}')"
check_eq "pool size in bytes" $((4 * 4 << 20)) "$(metric "$text" 'rma_broker_pool_size_bytes{backend="memfd"}')"

# Traffic of every kind: granted, quota, pool exhausted, denied, invalid; a lease that
# ends when its process exits.
"$TEST_CLIENT" reserve "$(uuid 1)" acme-1 acme >/dev/null
"$TEST_CLIENT" reserve "$(uuid 2)" acme-2 acme >/dev/null            # quota (MaxRmas=1)
"$TEST_CLIENT" reserve "$(uuid 3)" web-3 >/dev/null
"$TEST_CLIENT" reserve "$(uuid 4)" web-4 >/dev/null
"$TEST_CLIENT" reserve "$(uuid 5)" web-5 >/dev/null                  # the last free one is owed to gold
"$TEST_CLIENT" reserve not-a-uuid web-6 >/dev/null                   # invalid
setpriv --reuid=nobody --regid=nogroup --clear-groups "$TEST_CLIENT" reserve "$(uuid 7)" web-7 >/dev/null  # denied
out=$(setpriv --reuid=$QEMU_UID --regid=$QEMU_UID --clear-groups "$TEST_CLIENT" claim "$(uuid 3)" </dev/null)
check_match "a QEMU user claims and exits" "^held" "$out"
lease_ended() { [ "$(metric "$(cat "$PROM")" 'rma_broker_lease_ends_total{reason="process_exited"}')" = 1 ]; }
check "the textfile follows: one lease ended as its process exited" wait_until 5 lease_ended
text=$(cat "$PROM")
check_eq "granted" 3 "$(total "$text" rma_broker_reserve_requests_total granted)"
check_eq "quota" 1 "$(total "$text" rma_broker_reserve_requests_total quota)"
check_eq "... under the tenant that hit its cap" 1 \
    "$(metric "$text" 'rma_broker_reserve_requests_total{result="quota",tenant="acme"}')"
check_eq "pool exhausted" 1 "$(total "$text" rma_broker_reserve_requests_total pool_exhausted)"
check_eq "invalid" 1 "$(total "$text" rma_broker_reserve_requests_total invalid)"
check_eq "... under no tenant (refused before one was known)" 1 \
    "$(metric "$text" 'rma_broker_reserve_requests_total{result="invalid",tenant=""}')"
check_eq "denied" 1 "$(total "$text" rma_broker_reserve_requests_total denied)"
check_eq "one Claim granted" 1 "$(total "$text" rma_broker_claim_requests_total granted)"
check_eq "every Reserve timed in the latency histogram" 7 "$(metric "$text" rma_broker_reserve_duration_seconds_count)"
check_eq "... and the Claim in its own" 1 "$(metric "$text" rma_broker_claim_duration_seconds_count)"
scrubbed() { [ "$(metric "$(cat "$PROM")" rma_broker_scrub_duration_seconds_count)" = 1 ]; }
check "the lease's end to a free slot is one scrub" wait_until 5 scrubbed
check_eq "acme holds its one reservation" 1 "$(metric "$text" 'rma_broker_tenant_reserved_regions{tenant="acme"}')"
check_eq "acme's cap" 1 "$(metric "$text" 'rma_broker_tenant_max_regions{tenant="acme"}')"
check_eq "acme's guarantee" 1 "$(metric "$text" 'rma_broker_tenant_guaranteed_regions{tenant="acme"}')"
check_eq "regions by state add up to the pool" 4 "$(awk '/^rma_broker_regions\{/ {s += $2} END {print s}' <<<"$text")"
check_eq "no temporary file left next to it" "rma-broker.prom" "$(ls "$TEXTFILE_DIR")"
out=$(promtool check metrics <"$PROM" 2>&1)
check_eq "promtool accepts the textfile (format and naming conventions)" "" "$out"

# node_exporter's textfile collector reads it as an admin would run it.
NE_PORT=$(free_port)
prometheus-node-exporter --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$TEXTFILE_DIR" --web.listen-address="127.0.0.1:$NE_PORT" \
    >"$TEST_DIR/node-exporter.log" 2>&1 &
PIDS+=($!)
check "node_exporter answers" wait_until 10 curl -sf "http://127.0.0.1:$NE_PORT/metrics" -o /dev/null
scrape=$(curl -sf "http://127.0.0.1:$NE_PORT/metrics")
check_eq "node_exporter serves our regions" 1 \
    "$(metric "$scrape" 'rma_broker_regions{backend="memfd",state="leased"}' | grep -c . ; true)"
check_match "node_exporter found no error in the textfile" 'node_textfile_scrape_error 0' "$scrape"

# The HTTP endpoint as rma-brokerd-metrics.socket runs it: Accept=yes, one rmactl per
# connection on stdin/stdout, as an unprivileged user.
EP_PORT=$(free_port)
install -m 0755 "$RMACTL" "$TEST_DIR/bin/rmactl"
systemd-socket-activate --inetd --accept -l "127.0.0.1:$EP_PORT" -E DBUS_SYSTEM_BUS_ADDRESS \
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$TEST_DIR/bin/rmactl" metrics --http \
    >"$TEST_DIR/endpoint.log" 2>&1 &
PIDS+=($!)
check "the endpoint answers" wait_until 10 curl -sf "http://127.0.0.1:$EP_PORT/metrics" -o /dev/null
headers=$(curl -s -D - -o "$TEST_DIR/scrape.txt" "http://127.0.0.1:$EP_PORT/metrics")
check_match "200 with the exposition content type" "HTTP/1.0 200 OK.*Content-Type: text/plain; version=0.0.4" \
    "$(tr -d '\r' <<<"$headers" | tr '\n' ' ')"
check_eq "the endpoint shows the same counters" 3 \
    "$(total "$(cat "$TEST_DIR/scrape.txt")" rma_broker_reserve_requests_total granted)"
out=$(promtool check metrics <"$TEST_DIR/scrape.txt" 2>&1)
check_eq "promtool accepts the scrape" "" "$out"
check_eq "other paths: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EP_PORT/")"
check_eq "other methods: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$EP_PORT/metrics")"
silent=$(python3 - "$EP_PORT" <<'PY2'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
s.settimeout(30)
data = s.recv(4096)          # says nothing; the server's answer or EOF ends the wait
print("closed" if time.monotonic() - t0 < 12 else "held", data.split(b"\r\n")[0].decode() or "EOF")
PY2
)
check_match "a scraper that says nothing is let go within 10 s" "^closed" "$silent"
stop_broker
check_eq "broker down: 503, not a hang" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    "http://127.0.0.1:$EP_PORT/metrics")"
# A fresh pool for what follows (a restart would restore the earlier reservations).
rm -f "$TEST_DIR/run/leases"
start_broker --config="$TEST_DIR/broker.conf" --count=4 --size=4M --qemu-users=$QEMU_UID --no-check-cgroup \
    --policy-dir="$TEST_DIR/policy.d"

# OpenStack: a Nova provider config for the pool.
"$TEST_CLIENT" reserve "$(uuid 11)" acme-11 acme >/dev/null
"$TEST_CLIENT" reserve "$(uuid 12)" web-12 >/dev/null
yaml=$("$RMACTL" export placement)
check_match "a custom resource class per RMA size" "CUSTOM_RMA_4MB:" "$yaml"
parse() { # parse YAML FIELD...: one value of the inventory, by python's YAML parser
    /usr/bin/python3 -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
assert doc["meta"]["schema_version"] == "1.0"
p = doc["providers"][0]
inv = p["inventories"]["additional"][0]["CUSTOM_RMA_4MB"]
print(p["identification"].get("uuid", p["identification"].get("name")), inv["total"], inv["reserved"], inv["max_unit"])
' <<<"$1"
}
check_eq "total = pool, reserved = nothing unusable now, one per VM" '$COMPUTE_NODE 4 0 1' "$(parse "$yaml")"
yaml=$("$RMACTL" export placement --tenant=acme --provider=compute-7)
# acme holds 1 of its MaxRmas=1: Nova can get nothing more, so all but what it holds (its
# own allocation in Placement) is reserved. Other tenants' RMAs and guarantees count too.
check_eq "with Nova's tenant: all it cannot get now is reserved (its cap, the others)" 'compute-7 4 3 1' \
    "$(parse "$yaml")"
"$TEST_CLIENT" release "$(uuid 11)" >/dev/null
yaml=$("$RMACTL" export placement --tenant=acme --provider=compute-7)
# Free 3, gold is owed 1 of them; acme, below its guarantee, may take any, up to its cap 1.
check_eq "... and once it holds nothing, its cap of 1 is what it can get" 'compute-7 4 3 1' "$(parse "$yaml")"
yaml=$("$RMACTL" export placement --tenant=shared --provider=compute-7)
# shared (no cap, no guarantee) may take the free 3 but those owed to acme and gold: 1.
check_eq "a tenant without a guarantee: the free RMAs not owed to others, plus what it holds" \
    'compute-7 4 2 1' "$(parse "$yaml")"
out=$("$RMACTL" export placement --tenant=nope 2>&1)
check_match "an unknown tenant is an error naming it" "no tenant 'nope'" "$out"

tap_done
