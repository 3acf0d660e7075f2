#!/usr/bin/env bash
# Integration: a restart cannot be used to get more regions than the pool. Each attack
# of a QEMU user (here nobody, the only QemuUsers account) is played against the built
# broker on a pool of 2 (memfd, no systemd), with `kill -9` of the broker while the
# attack is set up, and the invariant checked by counting, across /proc, the live regions
# that root created (by inode, fds and mappings), plus the ones the test knows are in
# flight: never more than the pool.
#   - the claimant forks a child that keeps the fd and closes its own (it stays alive);
#   - the claimant puts its fd in flight (SCM_RIGHTS, unread) and exits;
#   - the claimant holds a forged memfd named like slot 1's region;
#   - a rebuild (garbage registry) with CheckCgroup=yes does not trust a process outside
#     the domain's cgroup, whatever its argv says;
#   - without a way to prove a region gone (no CAP_DAC_READ_SEARCH for kernel handles),
#     the slot stays held-elsewhere until root's `rmactl forget-region`, which nobody may
#     call;
#   - a domain name of 255 bytes of UTF-8 survives kill -9 whole;
#   - a runtime dir that another user could write is refused at start.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: children run as nobody, re-adoption needs CAP_SYS_PTRACE"
    exit 0
fi

make_test_dir restart-attacks
cleanup() {
    close_all_fifos
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}
trap cleanup EXIT

uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
bus_call() { busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 "$@"; }
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody --no-check-cgroup)
broker() { start_broker "${BROKER_ARGS[@]}" "$@"; }
kill9_broker() { kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=; }
log_has() { grep -q -- "$1" "$TEST_DIR/broker.log"; }

# at_most_pool IN_FLIGHT: the invariant, with IN_FLIGHT regions the test knows are in flight.
at_most_pool() { [ $(($(live_regions) + $1)) -le 2 ]; }

# two_honest_tenants: two domains reserve and claim; HONEST_GOT: how many got a region.
# (Not in a $(...) subshell: the claimants hold their leases on this shell's fifos.)
two_honest_tenants() {
    local n
    HONEST_GOT=0
    for n in 11 12; do
        if bus_call Reserve sss "$(uuid $n)" "honest-$n" "" >/dev/null 2>&1; then
            as_nobody_fifo "h$n" claim "$(uuid $n)"
            wait_until 10 grep -q "^held" "$TEST_DIR/h$n.out" && HONEST_GOT=$((HONEST_GOT + 1))
        fi
    done
}
end_honest_tenants() {
    local n
    for n in 11 12; do [ -n "$(eval echo "\${FIFO_h$n-}")" ] && close_fifo "h$n"; done
    wait_until 10 prop_is LeasedRmas 0
    for n in 11 12; do bus_call Release s "$(uuid $n)" >/dev/null 2>&1; done
    unset FIFO_h11 FIFO_h12
}

start_private_bus
# The broker and every client carry it in their environment: live_regions counts theirs.
export RMA_BROKER_SOCKET=$TEST_DIR/run/broker.sock

# 1a. A child keeps the fd; the claimant closes its own copy and stays alive.
broker
bus_call Reserve sss "$(uuid 1)" evil-fork "" >/dev/null
as_nobody_fifo f fork-keep "$(uuid 1)" bytes-of-fork
check "fork-keep: the claim succeeded" wait_until 10 grep -q "^child" "$TEST_DIR/f.out"
kill9_broker
broker
check_eq "after kill -9 and restart, its slot is not free: still leased to the live claimant" \
    "free=1 leased=1 held-elsewhere=0" "$(counts)"
two_honest_tenants
check_eq "two honest tenants: only one gets a region" 1 "$HONEST_GOT"
check "invariant: live root-created regions <= 2" at_most_pool 0
check_eq "... exactly: the child's old region and the honest tenant's" 2 "$(live_regions)"
close_fifo f
check "the child read only its own old bytes" wait_until 10 grep -qx 'old-region-reads bytes-of-fork' "$TEST_DIR/f.out"
check "once claimant and child let go, the slot is free again" wait_until 10 prop_is FreeRmas 1
end_honest_tenants
check "... and the pool is whole" wait_until 10 prop_is FreeRmas 2

# 1b. The fd is put in flight, unread, and the claimant exits while the broker is down.
bus_call Reserve sss "$(uuid 2)" evil-flight "" >/dev/null
as_nobody_fifo i inflight "$(uuid 2)" bytes-in-flight
check "inflight: the claim succeeded" wait_until 10 grep -q "^child" "$TEST_DIR/i.out"
kill9_broker
kill "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null   # the claimant exits while the broker is down
broker
check_eq "after the restart the slot is held-elsewhere: the region lives on in flight" \
    "free=1 leased=0 held-elsewhere=1" "$(counts)"
check "the log says why" log_has "its old region still exists (region reopened by its kernel handle)"
check_match "rmactl list says why too" "slot [0-9]+ is held-elsewhere: its old region \(inode [0-9]+\) is still open or mapped in another process" \
    "$("$BUILD_DIR/rmactl" list)"
two_honest_tenants
check_eq "two honest tenants: only one gets a region" 1 "$HONEST_GOT"
check "invariant: live root-created regions + 1 in flight <= 2" at_most_pool 1
check_eq "... exactly: the honest tenant's region is the one in sight" 1 "$(live_regions)"
close_fifo i
check "the receiver got the old region with the old bytes" \
    wait_until 10 grep -qx 'old-region-reads bytes-in-flight' "$TEST_DIR/i.out"
check "then the slot is free again" wait_until 10 prop_is HeldElsewhereRmas 0
end_honest_tenants

# 3. A forged memfd named like slot 1's region, at a lower fd than the real one.
bus_call Reserve sss "$(uuid 3)" evil-forge "" >/dev/null
as_nobody_fifo g forge "$(uuid 3)" 1 -uuid "$(uuid 3)" -name guest=evil-forge
check "forge: the claim succeeded" wait_until 10 grep -q "^held" "$TEST_DIR/g.out"
SLOT_G=$(bus_call ListRmas | grep -oE "[0-9]+ \"leased\" \"$(uuid 3)\"" | cut -d' ' -f1)
kill9_broker
# The attacker's record is garbage: the rebuild must find the region by what proves it.
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_G + 1) * 512 + 20)) conv=notrunc status=none
broker
check_match "the lease is rebuilt on the real region's slot, not the forged name's" \
    "^$SLOT_G \"leased\" \"$(uuid 3)\"" "$(leases)"
check_eq "no second slot is taken" "free=1 leased=1 held-elsewhere=0" "$(counts)"
two_honest_tenants
check_eq "one honest tenant gets the other slot, no more" 1 "$HONEST_GOT"
check "invariant: live root-created regions <= 2" at_most_pool 0
check_eq "... exactly: the attacker's real region and the honest tenant's (the forged one is nobody's)" 2 \
    "$(live_regions)"
close_fifo g
end_honest_tenants
check "the pool is whole" wait_until 10 prop_is FreeRmas 2
stop_broker

# 2. CheckCgroup=yes: a rebuild trusts no process outside the domain's cgroup.
# Claim checks the cgroup too, so the claim is made while it is off; the registry then
# becomes garbage and the broker comes back with the check on.
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody)
broker --no-check-cgroup
bus_call Reserve sss "$(uuid 4)" victim "" >/dev/null
as_nobody_fifo v claim "$(uuid 4)" bytes-of-victim -uuid "$(uuid 4)" -name guest=victim
check "a claimant holds the region" wait_until 10 grep -q "^held" "$TEST_DIR/v.out"
kill9_broker
head -c 512 /dev/urandom | dd of="$TEST_DIR/run/leases" conv=notrunc status=none
broker
check "the garbage registry is reported" log_has "has no valid header"
check_eq "its lease is not rebuilt: the process is in no domain cgroup" "" "$(leases)"
check "the log says why" log_has "Not rebuilding a lease for pid $CLIENT_PID (domain victim): it is not in the domain's cgroup"
check "invariant: live root-created regions <= 2" at_most_pool 0
check_eq "with the records lost, nothing proves either old region gone: both slots stay out" 2 \
    "$(prop HeldElsewhereRmas)"
kill9_broker
broker
check_eq "... and still after another kill -9 (recorded as unknown, never as gone)" 2 "$(prop HeldElsewhereRmas)"
check "invariant: live root-created regions <= 2" at_most_pool 0
close_fifo v
wait "$CLIENT_PID"
stop_broker

# 2b. Another broker of this host (a runtime dir of its own; tests, a second instance): a
# claimant of its region, with a domain of ours in its argv, is no lease of ours. The
# region's mark names its pool, and that pool is not ours.
rm -rf "$TEST_DIR/run" "$TEST_DIR/run2"
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody --no-check-cgroup)
broker
kill9_broker
head -c 512 /dev/urandom | dd of="$TEST_DIR/run/leases" conv=notrunc status=none
DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent "$BROKERD" --runtime-dir="$TEST_DIR/run2" "${BROKER_ARGS[@]}" \
    >>"$TEST_DIR/broker2.log" 2>&1 &
OTHER_PID=$!
wait_until 10 test -S "$TEST_DIR/run2/broker.sock"
RMA_BROKER_SOCKET=$TEST_DIR/run2/broker.sock "$TEST_CLIENT" reserve "$(uuid 9)" other-dom >/dev/null
RMA_BROKER_SOCKET=$TEST_DIR/run2/broker.sock as_nobody_fifo o claim "$(uuid 9)" bytes-of-other \
    -uuid "$(uuid 9)" -name guest=other-dom
check "the other broker's claimant holds its region" wait_until 10 grep -q "^held" "$TEST_DIR/o.out"
broker
check "ours rebuilds from the processes (garbage registry)" log_has "has no valid header"
check_eq "the other broker's region is not taken for one of ours" "" "$(leases)"
check_eq "... so nothing proves our old regions gone: both slots stay out" "free=0 leased=0 held-elsewhere=2" \
    "$(counts)"
close_fifo o
kill "$OTHER_PID"; wait "$OTHER_PID" 2>/dev/null
stop_broker

# Without proof (no kernel handles: CAP_DAC_READ_SEARCH dropped), a region in flight
# keeps its slot held-elsewhere until root forgets it.
rm -rf "$TEST_DIR/run"
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody --no-check-cgroup)
BROKER_WRAP=(setpriv --inh-caps=-dac_read_search --bounding-set=-dac_read_search --)
broker
bus_call Reserve sss "$(uuid 5)" evil-pinned "" >/dev/null
as_nobody_fifo p inflight "$(uuid 5)" bytes-pinned
check "inflight again: the claim succeeded" wait_until 10 grep -q "^child" "$TEST_DIR/p.out"
SLOT_P=$(bus_call ListRmas | grep -oE "[0-9]+ \"leased\" \"$(uuid 5)\"" | cut -d' ' -f1)
kill9_broker
kill "$CLIENT_PID"; wait "$CLIENT_PID" 2>/dev/null
broker
check_eq "no handle, no holder in sight: the slot stays held-elsewhere" "free=1 leased=0 held-elsewhere=1" "$(counts)"
check "the log says it cannot be proven gone and what to do" \
    log_has "RMA slot $SLOT_P: its old region .* cannot be proven gone.*rmactl forget-region $SLOT_P"
check_match "rmactl list says so, with what to do" \
    "slot $SLOT_P is held-elsewhere: its old region \(inode [0-9]+\) cannot be proven gone.*run rmactl forget-region $SLOT_P" \
    "$("$BUILD_DIR/rmactl" list)"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- busctl --system call org.rmabroker.Broker1 \
      /org/rmabroker/Broker1 org.rmabroker.Broker1 ForgetRegion u "$SLOT_P" 2>&1)
check_match "nobody may not forget it" "root only" "$out"
out=$("$BUILD_DIR/rmactl" forget-region $(( 1 - SLOT_P )) 2>&1)
check_match "a slot that is not pinned cannot be forgotten" "only a slot whose old region rma-brokerd cannot prove gone" "$out"
close_fifo p
check "the receiver got the old bytes" wait_until 10 grep -qx 'old-region-reads bytes-pinned' "$TEST_DIR/p.out"
check_eq "still held-elsewhere: the broker cannot know the region is gone" 1 "$(prop HeldElsewhereRmas)"
out=$("$BUILD_DIR/rmactl" forget-region "$SLOT_P" 2>&1)
check_match "root forgets it, told what it risks" "one region more than Count=" "$out"
check "the slot is free" wait_until 10 prop_is FreeRmas 2
check "the log names who and what" log_has "RMA slot $SLOT_P: root says its old region .* is gone (ForgetRegion)"
stop_broker
BROKER_WRAP=()

# 4. Names survive the registry whole, at the longest the D-Bus API accepts.
rm -rf "$TEST_DIR/run"
broker
LONG=$(python3 -c 'print("é" * 127 + "x")')
bus_call Reserve sss "$(uuid 6)" "$LONG" "" >/dev/null
as_nobody_fifo l claim "$(uuid 6)"
check "a domain with a 255-byte UTF-8 name holds a lease" wait_until 10 grep -q "^held" "$TEST_DIR/l.out"
kill9_broker
broker
domain_of() {
    busctl --system --json=short call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
        python3 -c 'import json, sys
print(next((r[3] for r in json.load(sys.stdin)["data"][0] if r[2] == sys.argv[1]), "none"))' "$1"
}
check_eq "after kill -9 and restart its lease is back with the whole name" "leased $LONG" \
    "$(leases | grep -c "$(uuid 6)" | sed 's/^1$/leased/') $(domain_of "$(uuid 6)")"
close_fifo l
stop_broker

# 5. A runtime dir that another user could write.
mkdir -m 0777 "$TEST_DIR/unsafe-run"
chown nobody "$TEST_DIR/unsafe-run"
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/unsafe-run" --backend=memfd --count=1 --size=1M 2>&1); status=$?
check "a nobody-owned 0777 runtime dir: the broker refuses to start" test $status -ne 0
check_match "... saying why and how to fix it" "unsafe-run is owned by uid [0-9]+ with mode 0777: another user could put their own listener at broker.sock.*chmod 0755" "$out"
check "... and creates nothing there" test ! -e "$TEST_DIR/unsafe-run/broker.sock"
ln -s "$TEST_DIR/unsafe-run" "$TEST_DIR/link-run"
out=$(timeout 20 "$BROKERD" --runtime-dir="$TEST_DIR/link-run" --backend=memfd --count=1 --size=1M 2>&1); status=$?
check "a symlink as runtime dir is refused" test $status -ne 0
check_match "... saying so" "must be a directory, not a symlink" "$out"

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(tail -60 "$TEST_DIR/broker.log")"; fi
tap_done
