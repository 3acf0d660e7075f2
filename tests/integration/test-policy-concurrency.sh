#!/usr/bin/env bash
# Integration: quotas under concurrency. Eight client processes (two per tenant, one on
# broker.sock and one on the system bus) fire reservations at once, then a mixed
# reserve/release storm. The broker is single-threaded, so its log is the total order
# of every grant, release and refusal; replaying it proves that no tenant ever held
# more than its cap and that no tenant below its guarantee was ever refused.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root"
    exit 0
fi

make_test_dir ctest
cleanup() { stop_broker; stop_private_bus; rm -rf "$TEST_DIR"; }
trap cleanup EXIT

POOL=12
mkdir -p "$TEST_DIR/policy.d"
cat >"$TEST_DIR/policy.d/10-tenants.conf" <<'CONF'
[Tenant t1]
MaxRmas=4
GuaranteedRmas=3
[Tenant t2]
MaxRmas=6
GuaranteedRmas=2
[Tenant t3]
[Tenant t4]
MaxRmas=3
GuaranteedRmas=3
CONF
declare -A MAX=([t1]=4 [t2]=6 [t3]=$POOL [t4]=3) GUARANTEE=([t1]=3 [t2]=2 [t3]=0 [t4]=3)

start_private_bus
start_broker --count=$POOL --size=1M --qemu-users=nobody --no-check-cgroup --policy-dir="$TEST_DIR/policy.d" --debug

PHASE=1
# request VIA TENANT WORKER N: one Reserve; prints "ok UUID" or the D-Bus error name.
# UUIDs are unique by construction (tenant, worker, phase, index): a collision would be
# answered, rightly, with AlreadyReserved.
request() {
    local uuid dom=$2-$3-$4
    uuid=$(printf '%08d-%04d-4000-8000-%012d' "${2#t}" "${3#w}" "$(( PHASE * 100000 + $4 ))")
    if [ "$1" = sock ]; then
        out=$("$TEST_CLIENT" reserve "$uuid" "$dom" "$2" 2>&1)
        case $out in reserved*) echo "ok $uuid";; *) echo "$out" | sed -E 's/^error ([^:]+):.*/\1/';; esac
    else
        out=$(gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
            --method org.rmabroker.Broker1.Reserve "$uuid" "$dom" "$2" 2>&1)
        case $out in "(uint32"*) echo "ok $uuid";; *) echo "$out" | sed -E 's/.*GDBus\.Error:([^:]+):.*/\1/';; esac
    fi
}
release_uuid() {
    if [ "$1" = sock ]; then "$TEST_CLIENT" release "$2" >/dev/null
    else gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
        --method org.rmabroker.Broker1.Release "$2" >/dev/null; fi
}
# worker VIA TENANT ID COUNT MIXED: waits for the start flag, then fires.
worker() {
    local via=$1 tenant=$2 id=$3 count=$4 mixed=$5 i r
    while [ ! -e "$TEST_DIR/go" ]; do sleep 0.001; done
    for ((i = 0; i < count; i++)); do
        r=$(request "$via" "$tenant" "$id" "$i")
        echo "$r"
        if [ "$mixed" = 1 ] && [[ $r == ok* ]] && [ $((RANDOM % 2)) = 0 ]; then
            release_uuid "$via" "${r#ok }"
            echo released
        fi
    done >"$TEST_DIR/$tenant-$id.out"
}
storm() { # COUNT MIXED
    rm -f "$TEST_DIR/go" "$TEST_DIR"/t*-w*.out
    local pids=() t
    for t in t1 t2 t3 t4; do
        worker sock "$t" w1 "$1" "$2" & pids+=($!)
        worker bus "$t" w2 "$1" "$2" & pids+=($!)
    done
    touch "$TEST_DIR/go"
    wait "${pids[@]}"
}
held() { # TENANT: leased+reserved as the broker reports it
    busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 GetTenant s "$1" |
        awk '{print $5 + $6}'
}

# Phase 1: 8 processes x 10 reservations at once, no releases.
storm 10 0
total=0
for t in t1 t2 t3 t4; do
    h=$(held "$t")
    total=$((total + h))
    granted=$(cat "$TEST_DIR/$t"-w*.out | grep -c '^ok')
    check_eq "$t: what its clients were granted is what the broker counts" "$h" "$granted"
    check "$t holds $h: within MaxRmas=${MAX[$t]}" test "$h" -le "${MAX[$t]}"
    check "$t holds $h: at least its GuaranteedRmas=${GUARANTEE[$t]}" test "$h" -ge "${GUARANTEE[$t]}"
done
check_eq "the pool is fully used, never over" "$POOL" "$total"
others=$(cat "$TEST_DIR"/t*-w*.out | grep -v '^ok' | sort -u | tr '\n' ' ')
check_match "every refusal is QuotaExceeded or PoolExhausted" \
    "^((org\.rmabroker\.Broker1\.Error\.(QuotaExceeded|PoolExhausted)) )+$" "$others"

# Phase 2: free everything, then a mixed storm: reserve, and release about half at once.
for u in $(busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
    grep -oE '"[0-9a-f]{8}-[0-9a-f-]{27}"' | tr -d '"'); do release_uuid sock "$u"; done
check_eq "all free between phases" "$POOL" "$(prop FreeRmas)"
PHASE=2
storm 25 1
check "the broker kept serving through both storms" broker_alive

# Replay the broker's own order of events.
replay=$(python3 - "$TEST_DIR/broker.log" <<'PY'
import re, sys
cap = {"t1": 4, "t2": 6, "t3": 12, "t4": 3}
guarantee = {"t1": 3, "t2": 2, "t3": 0, "t4": 3}
held = {t: 0 for t in cap}
owner = {}
grants = refusals = releases = 0
problems = []
for line in open(sys.argv[1]):
    m = re.search(r"reserved for domain (\S+) \((\S+)\), tenant (\S+)", line)
    if m:
        dom, uuid, t = m.groups()
        held[t] += 1
        owner[uuid] = t
        grants += 1
        if held[t] > cap[t]:
            problems.append(f"{t} held {held[t]} > cap {cap[t]} after {dom}")
        if sum(held.values()) > 12:
            problems.append(f"pool over-committed after {dom}")
        continue
    m = re.search(r"reservation for domain (\S+) \((\S+)\) released", line)
    if m:
        held[owner.pop(m.group(2))] -= 1
        releases += 1
        continue
    m = re.search(r"Refused RMA for domain (t\d)-\S+ \(", line)
    if m:
        t = m.group(1)
        refusals += 1
        if held[t] < guarantee[t]:
            problems.append(f"{t} refused while holding {held[t]} < its guarantee {guarantee[t]}")
print(f"grants={grants} releases={releases} refusals={refusals}")
print("problems: " + ("; ".join(problems) if problems else "none"))
PY
)
diag "$replay"
check_match "replay of the broker's event order: no cap exceeded, no guarantee broken" "problems: none" "$replay"
check_match "the storms really raced (grants, releases and refusals all happened)" \
    "grants=[1-9][0-9]+ releases=[1-9][0-9]* refusals=[1-9][0-9]*" "$replay"
for t in t1 t2 t3 t4; do
    h=$(held "$t")
    check "$t after the mixed storm: $h within MaxRmas=${MAX[$t]}" test "$h" -le "${MAX[$t]}"
done
check "broker exits cleanly" stop_broker
tap_done
