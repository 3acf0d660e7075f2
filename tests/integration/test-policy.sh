#!/usr/bin/env bash
# Integration: tenant quota policy in the running broker. A private dbus-daemon, the
# built rma-brokerd with a policy directory, busctl/gdbus/rmactl, and requests from
# root and from the unprivileged user nobody.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: requests are made as root and as nobody"
    exit 0
fi

make_test_dir ptest
cleanup() { stop_broker; stop_private_bus; rm -rf "$TEST_DIR"; }
trap cleanup EXIT

RMACTL=$BUILD_DIR/rmactl/rmactl
POLICY=$TEST_DIR/policy.d
mkdir -p "$POLICY"
cat >"$POLICY/10-tenants.conf" <<'CONF'
[Defaults]
Tenant=shared

[Tenant acme]
MaxRmas=3
GuaranteedRmas=2
Domains=acme-*
Users=nobody

[Tenant beta]
MaxRmas=4
GuaranteedRmas=1

[Tenant gamma0]
MaxRmas=1
Groups=nogroup

[Tenant shared]
CONF

uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
gd() { # gdbus call METHOD ARGS...: prints the reply or "Error: GDBus.Error:NAME: message"
    gdbus call --system --dest org.rmabroker.Broker1 --object-path /org/rmabroker/Broker1 \
        --method "org.rmabroker.Broker1.$1" "${@:2}" 2>&1
}
reserve() { gd Reserve "$(uuid "$1")" "$2" "${3:-}"; }
release() { gd Release "$(uuid "$1")" >/dev/null; }
tenant() { busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 GetTenant s "$1"; }
tenant_is() { [ "$(tenant "$1")" = "$2" ]; }

start_private_bus
start_broker --count=8 --size=1M --qemu-users=nobody --no-check-cgroup --policy-dir="$POLICY"
check "broker starts with the policy" broker_alive

out=$("$RMACTL" tenants)
check_match "rmactl tenants lists every tenant" "acme +3 +2 +0 +0.*beta +4 +1 +0 +0.*gamma0 +1 +0 +0 +0.*shared +8 +0 +0 +0" "$(tr '\n' ' ' <<<"$out")"
check_eq "GetTenant acme" 'suuuu "acme" 3 2 0 0' "$(tenant acme)"
check_match "GetTenant of an unknown tenant: NoSuchTenant" "Error\.NoSuchTenant: The policy has no tenant 'nope'" "$(gd GetTenant nope)"

# Which tenant a domain belongs to.
check_match "a domain matching acme-* goes to acme" "uint32" "$(reserve 1 acme-web)"
check_match "a domain matching no glob goes to the default tenant" "uint32" "$(reserve 2 zed)"
check_match "the domain's own tenant wins over globs" "uint32" "$(reserve 3 acme-x beta)"
rmas=$("$RMACTL" list)
check_match "rmactl list shows the tenants chosen" "acme-web +acme .*zed +shared .*acme-x +beta " "$(tr '\n' ' ' <<<"$rmas")"
check_match "a tenant the policy lacks: NoSuchTenant" \
    "Error\.NoSuchTenant: No RMA for domain x: domain x names tenant 'gamma' in its rma metadata, but the policy has no \[Tenant gamma\]" \
    "$(reserve 4 x gamma)"

# Users=nobody may reserve for acme, and only for acme.
nobody_gd() { setpriv --reuid=nobody --regid=nogroup --clear-groups gdbus call --system --dest org.rmabroker.Broker1 \
    --object-path /org/rmabroker/Broker1 --method "org.rmabroker.Broker1.$1" "${@:2}" 2>&1; }
check_match "nobody (Users= of acme) reserves for acme" "uint32" "$(nobody_gd Reserve "$(uuid 5)" acme-2 "")"
check_match "nobody (group nogroup) reserves for gamma0 (Groups=nogroup) over the bus" "uint32" \
    "$(nobody_gd Reserve "$(uuid 17)" g0 gamma0)"
check_match "... and over broker.sock" "reserved" \
    "$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$TEST_CLIENT" reserve "$(uuid 18)" g1 gamma0 </dev/null)"
check_match "gamma0 is then at its cap" "QuotaExceeded" "$(nobody_gd Reserve "$(uuid 19)" g2 gamma0)"
release 17; release 18
check_match "nobody may not reserve for beta: AccessDenied naming the tenant's section" \
    "Error\.AccessDenied: uid 65534 may not call Reserve for tenant beta; root may, and so may the accounts in Users= and Groups= of \[Tenant beta\] \($POLICY/10-tenants.conf:10\)" \
    "$(nobody_gd Reserve "$(uuid 6)" b1 beta)"
# A tenant user cannot block another domain's start by reserving its uuid first: the
# hook (root) takes such a reservation over.
check_match "nobody reserves a uuid under a made-up name" "uint32" "$(nobody_gd Reserve "$(uuid 16)" acme-squat "")"
check_match "nobody cannot renew it for another name" "Error\.AlreadyReserved: UUID $(uuid 16) is already reserved for domain acme-squat by uid 65534" \
    "$(nobody_gd Reserve "$(uuid 16)" acme-other "")"
check_match "root's Reserve for the real domain takes it over" "uint32" "$(reserve 16 acme-real)"
check_match "the slot now belongs to the real domain" "acme-real" "$("$RMACTL" list | grep "$(uuid 16)")"
release 16
check_match "nobody may not reload" "Error\.AccessDenied: Reload changes the pool and is for root only" "$(nobody_gd Reload)"

# acme now holds acme-web and acme-2: one more fits under MaxRmas=3, then QuotaExceeded.
check_match "acme takes its third" "uint32" "$(reserve 7 acme-3)"
check_match "acme's fourth: QuotaExceeded with the numbers and where to change them" \
    "Error\.QuotaExceeded: No RMA for domain acme-4: tenant acme holds 3 of its MaxRmas=3 \(0 leased, 3 reserved\); stop one of its domains or raise MaxRmas in $POLICY/10-tenants.conf:5" \
    "$(reserve 8 acme-4)"

# Pool 8: acme 3, beta 1 (its guarantee is met), shared 1 -> 3 free, nothing owed:
# shared can take all three.
check_match "shared takes a free RMA" "uint32" "$(reserve 9 s1)"
check_match "shared takes another" "uint32" "$(reserve 10 s2)"
release 3   # beta gives its RMA back: it is owed 1 again
check_match "2 free, beta owed 1: shared takes one more" "uint32" "$(reserve 11 s3)"
check_match "shared may not take the last free RMA: it is beta's guarantee" \
    "Error\.PoolExhausted: No RMA for domain s4: no RMA for tenant shared: the 1 free RMAs of 8 are held back for the guarantees of beta \(1 owed\); tenant shared holds 4 with GuaranteedRmas=0" \
    "$(reserve 12 s4)"
check_match "beta still gets its guaranteed RMA" "uint32" "$(reserve 13 b2 beta)"
check_eq "the pool is full" 0 "$(prop FreeRmas)"
check_match "then even beta is refused: PoolExhausted" "Error\.PoolExhausted: No free RMA for domain b3" "$(reserve 14 b3 beta)"

# Reload with a lower cap: acme keeps what it holds, but gets nothing new until under it.
sed -i 's/^MaxRmas=3$/MaxRmas=1/; s/^GuaranteedRmas=2$/GuaranteedRmas=1/' "$POLICY/10-tenants.conf"
check_eq "Reload() of a valid policy" "()" "$(gd Reload)"
check_eq "acme keeps its 3 under the new MaxRmas=1" 'suuuu "acme" 1 1 0 3' "$(tenant acme)"
release 1; release 5
check_match "acme over its new cap gets nothing new" "QuotaExceeded: No RMA for domain acme-5: tenant acme holds 1 of its MaxRmas=1" "$(reserve 15 acme-5)"
release 7
check_match "under its cap again, acme gets one" "uint32" "$(reserve 15 acme-5)"

# An invalid policy is refused whole; the old one stays.
cat >"$POLICY/20-broken.conf" <<'CONF'
[Tenant gamma]
MaxRmas=many
GuaranteedRmas=9
CONF
out=$(gd Reload)
check_match "Reload() of an invalid policy: PolicyInvalid, naming file, line and key" \
    "Error\.PolicyInvalid: The new tenant policy is invalid and was not applied; the current one stays: $POLICY/20-broken.conf:2: \[Tenant gamma\] MaxRmas=many is invalid; allowed: a whole number from 0 to 65536" "$out"
check_match "every problem is reported at once" "GuaranteedRmas add up to 11 but the pool has only 8 RMAs: acme=1 .*, beta=1 .*, gamma=9 \(.*20-broken.conf:3\)" "$out"
check_match "CheckPolicy() gives the same problems, verbatim, and applies nothing" \
    "\['$POLICY/20-broken.conf:2: \[Tenant gamma\] MaxRmas=many is invalid; allowed: a whole number from 0 to 65536', .*GuaranteedRmas add up to 11" \
    "$(gd CheckPolicy)"
check_match "nobody may not check it (the messages quote the files)" "Error\.AccessDenied: CheckPolicy changes the pool and is for root only" \
    "$(nobody_gd CheckPolicy)"
check_eq "CanAdminister: root may" "(true, '')" "$(gd CanAdminister)"
check_match "... nobody may look, and is told who may change" "\(false, \"Reloading the policy and releasing reservations are for root" \
    "$(nobody_gd CanAdminister)"
check_match "ListSlots: each slot with the wall-clock time of its last change, and a reservation's expiry" \
    "\([0-9]+, 'reserved', '[0-9a-f-]+', '[^']*', '[^']*', 0, 1[0-9]{15}, 1[0-9]{15}\)" \
    "$(gd ListSlots)"
check_match "GetTenant gamma: the broken policy was not applied" "NoSuchTenant" "$(gd GetTenant gamma)"
check_eq "the old policy is still in force" 'suuuu "acme" 1 1 0 1' "$(tenant acme)"
out=$("$RMACTL" reload 2>&1)
check_match "rmactl reload shows the problems, one per line" \
    "reload refused:.*20-broken.conf:2: \[Tenant gamma\] MaxRmas=many" "$(tr '\n' ' ' <<<"$out")"
out=$("$BROKERD" --check-policy --count=8 --policy-dir="$POLICY" 2>&1)
check "rma-brokerd --check-policy fails on it" test $? -ne 0
check_match "... naming file, line and key" "20-broken.conf:2: \[Tenant gamma\] MaxRmas=many" "$out"
check_match "rmactl check-policy fails on it the same way" "20-broken.conf:2: \[Tenant gamma\] MaxRmas=many" \
    "$("$RMACTL" check-policy --count=8 "$POLICY" 2>&1)"

# SIGHUP: invalid is refused and logged; valid applies.
kill -HUP "$BROKER_PID"
check "SIGHUP with an invalid policy: refused and logged" \
    wait_until 5 grep -q "SIGHUP: the new tenant policy is invalid (problems above); keeping the current one" "$TEST_DIR/broker.log"
check "the broker keeps serving after it" broker_alive
printf '[Tenant gamma]\nMaxRmas=2\n' >"$POLICY/20-broken.conf"
check "rmactl check-policy accepts the fixed policy" eval "\"$RMACTL\" check-policy --count=8 \"$POLICY\" >/dev/null"
kill -HUP "$BROKER_PID"
check "SIGHUP with a valid policy applies it" wait_until 5 tenant_is gamma 'suuuu "gamma" 2 0 0 0'

# Options work after the verb too.
check_match "rmactl status --json (option after the verb) prints JSON" '"TotalRmas" : 8' "$("$RMACTL" status --json)"
# Without --count, check-policy checks against the pool that runs now.
check_match "rmactl check-policy checks the running pool" "^Policy valid for the running pool of 8 RMAs" \
    "$("$RMACTL" check-policy "$POLICY" 2>&1)"

check "broker exits cleanly" stop_broker

# Count= and Size= are read at start only: a reload says so, and the pool stays.
printf '[Broker]\nCount=4\nSize=1M\n' >"$TEST_DIR/b.conf"
start_broker --config="$TEST_DIR/b.conf" --qemu-users=nobody --no-check-cgroup --policy-dir="$POLICY"
printf '[Broker]\nCount=6\nSize=1M\n' >"$TEST_DIR/b.conf"
out=$("$RMACTL" reload 2>&1)
check_match "a reload after changing Count= says the pool needs a restart" \
    "Tenant policy reloaded.*The pool is unchanged: Count=6 in .*b.conf, but the running pool has 4 RMAs: a pool change takes effect when rma-brokerd restarts" \
    "$(tr '\n' ' ' <<<"$out")"
check_eq "... and the pool stays as it is" 4 "$(prop TotalRmas)"
check_match "... the log says so too" "the pool is unchanged: Count=6" "$(cat "$TEST_DIR/broker.log")"
printf '[Broker]\nCount=4\nSize=1M\n' >"$TEST_DIR/b.conf"
"$RMACTL" reload >/dev/null
check_eq "put back: nothing pending" '""' "$(prop PendingPoolChange)"
check "broker exits cleanly after the reloads" stop_broker

# AdminGroup=: its members may Reserve, Release and Reload like root (here over
# broker.sock, where the groups come from SO_PEERGROUPS).
printf '[Broker]\nCount=4\nSize=1M\nAdminGroup=4321\n' >"$TEST_DIR/b.conf"
start_broker --config="$TEST_DIR/b.conf" --qemu-users=nobody --no-check-cgroup --policy-dir="$POLICY"
admin() { setpriv --reuid=nobody --regid=nogroup --groups=4321 "$TEST_DIR/bin/rma-test-client" "$@" </dev/null; }
stranger() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$TEST_DIR/bin/rma-test-client" "$@" </dev/null; }
check_match "an AdminGroup member may Reserve for any tenant" "^reserved" "$(admin reserve "$(uuid 90)" beta-90 beta)"
check_match "... and Release" "^released" "$(admin release "$(uuid 90)")"
check_match "... and Reload" "^reloaded" "$(admin reload)"
check_match "without the group: AccessDenied, naming the group" \
    "AccessDenied: Reload changes the pool and is for root and the members of group 4321 \\(AdminGroup=\\)" \
    "$(stranger reload)"
check "broker exits cleanly with an admin group" stop_broker

# A broker never starts on an invalid policy.
printf '[Tenant x]\nGuaranteedRmas=1\n[Tenant x]\n' >"$POLICY/30-dup.conf"
out=$("$BROKERD" --runtime-dir="$TEST_DIR/run2" --count=8 --size=1M --policy-dir="$POLICY" 2>&1)
check "rma-brokerd refuses to start on an invalid policy" test $? -ne 0
check_match "... and says where" "30-dup.conf:3: \[Tenant x\] appears twice in this file \(first at line 1\)" "$out"

if [ "$TAP_FAILED" -ne 0 ]; then diag "broker log:"; diag "$(cat "$TEST_DIR/broker.log")"; fi
tap_done
