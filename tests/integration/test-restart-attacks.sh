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
#   - a rebuild from lost records takes the domain from libvirt's status XML and the tenant
#     from the hook's record, not from the QEMU's forgeable argv or the policy's globs;
#   - a registry truncated or replaced by root under the running broker is written again;
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
counts() { echo "free=$(prop FreeRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody --no-check-cgroup)
broker() { start_broker "${BROKER_ARGS[@]}" "$@"; }

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
    "$("$BUILD_DIR/rmactl/rmactl" list)"
two_honest_tenants
check_eq "two honest tenants: only one gets a region" 1 "$HONEST_GOT"
check "invariant: live root-created regions + 1 in flight <= 2" at_most_pool 1
check_eq "... exactly: the honest tenant's region is the one in sight" 1 "$(live_regions)"
close_fifo i
check "the receiver got the old region with the old bytes" \
    wait_until 10 grep -qx 'old-region-reads bytes-in-flight' "$TEST_DIR/i.out"
check "then the slot is free again" wait_until 10 prop_is HeldElsewhereRmas 0
end_honest_tenants

# 3. A forged memfd named like slot 1's region, at a lower fd than the real one, with a
# user-namespace mark as a broker without CAP_SYS_ADMIN writes it (but no valid MAC). Played
# twice: with the trusted mark (root with every capability), and as under the shipped unit,
# without CAP_SYS_ADMIN, where the broker's own regions carry the user mark with its MAC.
forge_attack() { # forge_attack LABEL
    local label=$1
    stop_broker
    rm -rf "$TEST_DIR/run" "$TEST_DIR/libvirt-qemu"
    broker
    bus_call Reserve sss "$(uuid 3)" evil-forge "" >/dev/null
    as_nobody_fifo g forge "$(uuid 3)" 1 -uuid "$(uuid 3)" -name guest=evil-forge
    check "$label: forge: the claim succeeded" wait_until 10 grep -q "^held" "$TEST_DIR/g.out"
    libvirt_status evil-forge "$(uuid 3)" "$CLIENT_PID"
    hook_record "$(uuid 3)" evil-forge ""
    SLOT_G=$(bus_call ListRmas | grep -oE "[0-9]+ \"leased\" \"$(uuid 3)\"" | cut -d' ' -f1)
    kill9_broker
    # The attacker's record is garbage: the rebuild must find the region by what proves it.
    printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_G + 1) * 512 + 20)) conv=notrunc status=none
    broker
    check_match "$label: the lease is rebuilt on the real region's slot, not the forged name's" \
        "^$SLOT_G \"leased\" \"$(uuid 3)\"" "$(leases)"
    check_eq "$label: no second slot is taken" "free=1 leased=1 held-elsewhere=0" "$(counts)"
    two_honest_tenants
    check_eq "$label: one honest tenant gets the other slot, no more" 1 "$HONEST_GOT"
    check "$label: invariant: live root-created regions <= 2" at_most_pool 0
    check_eq "$label: ... exactly: the attacker's real region and the honest tenant's (the forged one is nobody's)" 2 \
        "$(live_regions)"
    close_fifo g
    end_honest_tenants
    check "$label: the pool is whole" wait_until 10 prop_is FreeRmas 2
    stop_broker
}
forge_attack "trusted mark"
BROKER_WRAP=(setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin --)
forge_attack "no CAP_SYS_ADMIN (the shipped unit)"
broker
bus_call Reserve sss "$(uuid 3)" mark-check "" >/dev/null
as_nobody_fifo m claim "$(uuid 3)"
wait_until 10 grep -q "^held" "$TEST_DIR/m.out"
mark=$(for fd in /proc/$CLIENT_PID/fd/*; do
    [[ "$(readlink "$fd")" == /memfd:rma-broker-slot-* ]] || continue
    python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.rma-broker").decode())' "$fd" 2>&1; break
done)
check_match "... there the broker's regions carry the user mark with its MAC" \
    "^slot=[01] pool=[0-9]+:[0-9]+ uuid=$(uuid 3) tenant=[^ ]* mac=[0-9a-f]{64}$" "$mark"
close_fifo m
stop_broker
BROKER_WRAP=()

# 2. CheckCgroup=yes: a rebuild trusts no process outside the domain's cgroup.
# Claim checks the cgroup too, so the claim is made while it is off; the registry then
# becomes garbage and the broker comes back with the check on.
BROKER_ARGS=(--backend=memfd --count=2 --size=4M --qemu-users=nobody)
broker --no-check-cgroup
bus_call Reserve sss "$(uuid 4)" victim "" >/dev/null
as_nobody_fifo v claim "$(uuid 4)" bytes-of-victim -uuid "$(uuid 4)" -name guest=victim
check "a claimant holds the region" wait_until 10 grep -q "^held" "$TEST_DIR/v.out"
libvirt_status victim "$(uuid 4)" "$CLIENT_PID"
hook_record "$(uuid 4)" victim ""
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
    "$("$BUILD_DIR/rmactl/rmactl" list)"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- busctl --system call org.rmabroker.Broker1 \
      /org/rmabroker/Broker1 org.rmabroker.Broker1 ForgetRegion u "$SLOT_P" 2>&1)
check_match "nobody may not forget it" "root only" "$out"
out=$("$BUILD_DIR/rmactl/rmactl" forget-region $(( 1 - SLOT_P )) 2>&1)
check_match "a slot that is not pinned cannot be forgotten" "only a slot whose old region rma-brokerd cannot prove gone" "$out"
close_fifo p
check "the receiver got the old bytes" wait_until 10 grep -qx 'old-region-reads bytes-pinned' "$TEST_DIR/p.out"
check_eq "still held-elsewhere: the broker cannot know the region is gone" 1 "$(prop HeldElsewhereRmas)"
out=$("$BUILD_DIR/rmactl/rmactl" forget-region "$SLOT_P" 2>&1)
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

# 6. Lost records: the rebuild takes the domain from libvirt's status XML and the tenant
# from the hook's record, never from what the QEMU shows. Tenant gold (MaxRmas=1) by the
# domain's metadata, though the policy's Domains= globs would put the name elsewhere.
rm -rf "$TEST_DIR/run" "$TEST_DIR/libvirt-qemu"
mkdir -p "$TEST_DIR/policy.d"
printf '[Defaults]\nTenant=shared\n[Tenant gold]\nMaxRmas=1\n[Tenant shared]\nDomains=web-*\n' \
    >"$TEST_DIR/policy.d/10-test.conf"
broker --policy-dir="$TEST_DIR/policy.d"
bus_call Reserve sss "$(uuid 20)" web-gold gold >/dev/null
as_nobody_fifo q claim "$(uuid 20)" bytes-q -uuid "$(uuid 21)" -name guest=web-other
check "a QEMU of tenant gold holds its region, its command line forged (another domain's uuid)" \
    wait_until 10 grep -q "^held" "$TEST_DIR/q.out"
libvirt_status web-gold "$(uuid 20)" "$CLIENT_PID"
hook_record "$(uuid 20)" web-gold gold
SLOT_Q=$(bus_call ListRmas | grep -oE "[0-9]+ \"leased\" \"$(uuid 20)\"" | cut -d' ' -f1)
kill9_broker
# Its record torn (the other slot's, free, stays whole).
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_Q + 1) * 512 + 20)) conv=notrunc status=none
broker --policy-dir="$TEST_DIR/policy.d"
check_match "the lease is rebuilt for the domain libvirt recorded, in the tenant the hook gave (gold)" \
    "\"leased\" \"$(uuid 20)\" \"web-gold\" \"gold\" $CLIENT_PID" "$(leases)"
out=$(bus_call Reserve sss "$(uuid 22)" web-gold-2 gold 2>&1)
check_match "gold is at its cap: a second region for it is refused" "MaxRmas=1" "$out"
out=$(bus_call Reserve sss "$(uuid 21)" web-other "" 2>&1)
check_match "the uuid its command line showed is free: that domain can start" "^u [0-9]+" "$out"
bus_call Release s "$(uuid 21)" >/dev/null
check "invariant: live root-created regions <= 2" at_most_pool 0
# Without the hook's record the tenant is unproven: no lease, the region kept out.
rm "$TEST_DIR/run/domains/$(uuid 20)"
kill9_broker
printf 'garbage' | dd of="$TEST_DIR/run/leases" bs=1 seek=$(((SLOT_Q + 1) * 512 + 20)) conv=notrunc status=none
broker --policy-dir="$TEST_DIR/policy.d"
check_eq "no hook record: not re-adopted, the slot held-elsewhere while the region lives" \
    "free=1 leased=0 held-elsewhere=1" "$(counts)"
check "... and the log says why" log_has "the hook's record of the domain's tenant .* is gone or not root's: not re-adopted"
close_fifo q
check "the slot is free once the region is let go" wait_until 10 prop_is FreeRmas 2
stop_broker

# 7. Root truncates or replaces the registry under the running broker: never a SIGBUS; the
# broker writes it again and a restart still finds every lease.
rm -rf "$TEST_DIR/run"
broker
bus_call Reserve sss "$(uuid 30)" trunc-a "" >/dev/null
as_nobody_fifo t claim "$(uuid 30)" bytes-t
check "a lease to keep" wait_until 10 grep -q "^held" "$TEST_DIR/t.out"
: >"$TEST_DIR/run/leases"
bus_call Reserve sss "$(uuid 31)" trunc-b "" >/dev/null
check "a slot changes after root truncated the registry: the broker lives" broker_alive
check "... and says it wrote the registry again" log_has "was truncated, removed or replaced under rma-brokerd"
cp "$TEST_DIR/run/leases" "$TEST_DIR/leases.backup"
: >"$TEST_DIR/leases.empty"
mv "$TEST_DIR/leases.empty" "$TEST_DIR/run/leases"
check "root replaces it with an empty file: written again within 5 s, without any change" \
    wait_until 8 grep -q "uuid=$(uuid 30)" "$TEST_DIR/run/leases"
kill9_broker
broker
check_match "after kill -9 the lease is back from the rewritten registry" "\"leased\" \"$(uuid 30)\"" "$(leases)"
check_match "... and the reservation" "reserved.*$(uuid 31)|$(uuid 31).*reserved" "$(bus_call ListRmas)"
close_fifo t
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
