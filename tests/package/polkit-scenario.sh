#!/usr/bin/env bash
# Runs inside the booted Debian 12 container after systemd-scenario.sh
# (tests/package/test-debian.sh): polkitd 122, installed there from Debian and started by
# bus activation, decides for accounts the broker's own rules refuse. The package's
# example rule goes to /etc/polkit-1/rules.d as it ships: a member of rmaadmin (what
# AdminGroup= did) drains, undrains and reloads; an account in neither group is refused; a
# member of blueops reserves and releases tenant blue's domains over the bus and over
# broker.sock, not tenant red's, and blue's MaxRmas still holds.
# Prints TAP; the host renumbers it into its own.
set -uo pipefail

export BUILD_DIR=/opt/rma-test SOURCE_DIR=/opt/rma-test
. /opt/rma-test/tap.sh
. /opt/rma-test/broker.sh

RULES=/etc/polkit-1/rules.d/50-rma-broker.rules
POLICY=/etc/rma-broker/policy.d/60-polkit-test.conf
as() { local who=$1; shift; setpriv --reuid="$who" --regid="$who" --init-groups -- "$@"; }
call() { local who=$1; shift; as "$who" timeout 30 busctl call org.rmabroker.Broker1 /org/rmabroker/Broker1 \
    org.rmabroker.Broker1 "$@" 2>&1; }
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
journal_has() { journalctl -u rma-brokerd.service --no-pager -o cat | grep -q "$1"; }

check "polkitd 122 is installed in the container" test -x /usr/lib/polkit-1/polkitd
groupadd rmaadmin && groupadd blueops
useradd -M -G rmaadmin rma-admin && useradd -M -G blueops rma-blue && useradd -M rma-user
install -m 0644 /usr/share/doc/rma-broker/examples/50-rma-broker.rules "$RULES"
printf '[Tenant blue]\nMaxRmas=1\nDomains=blue-*\n\n[Tenant red]\nDomains=red-*\n' >"$POLICY"
check "tenants blue and red (systemctl reload)" systemctl reload rma-brokerd.service
check_eq "no AdminGroup= in the config: the broker's own rules let none of the accounts" "" \
    "$(grep -i '^AdminGroup' /etc/rma-broker/rma-brokerd.conf)"

# org.rmabroker.manage: the rule for rmaadmin.
out=$(as rma-admin rmactl --no-ask-password drain --reason=polkit 2>&1)
check "rma-admin (group rmaadmin, by the shipped example rule) drains with rmactl" test $? -eq 0 || diag "$out"
check_eq "... and the host drains" "true" "$(prop Draining)"
check_eq "polkitd runs, started by bus activation" active "$(systemctl is-active polkit.service)"
uid_admin=$(id -u rma-admin)
wait_until 10 journal_has "polkit grants org.rmabroker.manage to uid $uid_admin "
check "... the journal says polkit granted it" journal_has "polkit grants org.rmabroker.manage to uid $uid_admin "
out=$(as rma-user rmactl --no-ask-password undrain 2>&1; echo "status=$?")
check_match "rma-user (no group) may not undrain: polkit wants a password, rmactl did not ask" \
    "Undrain changes the pool.*--no-ask-password kept rmactl from asking.*status=1" "$(tr '\n' ' ' <<<"$out")"
check_eq "... and the host still drains" "true" "$(prop Draining)"
check "rma-admin undrains" as rma-admin rmactl --no-ask-password undrain
check_eq "... and the host no longer drains" "false" "$(prop Draining)"
check_match "rma-admin reloads" "reloaded" "$(as rma-admin rmactl --no-ask-password reload 2>&1)"
check_match "rma-user may not" "refused" "$(as rma-user rmactl --no-ask-password reload 2>&1)"

# org.rmabroker.reserve: tenant blue delegated to blueops.
check_match "rma-blue (group blueops) reserves for tenant blue over the bus" "^u [0-9]+" \
    "$(call rma-blue Reserve sss "$(uuid 31)" blue-31 "")"
check_match "... polkit's grant names the tenant, domain and uuid" \
    "tenant=blue, domain=blue-31, uuid=$(uuid 31)" "$(journalctl -u rma-brokerd.service --no-pager -o cat)"
check_match "blue's MaxRmas=1 holds for it" "MaxRmas|quota|cap" "$(call rma-blue Reserve sss "$(uuid 32)" blue-32 "")"
check_match "tenant red is not delegated" "may not call Reserve for tenant red" \
    "$(call rma-blue Reserve sss "$(uuid 33)" red-33 "")"
check_blue_over_socket rma-blue rma-user 31 35
check_match "rma-blue reserves for blue over the bus again" "^u [0-9]+" \
    "$(call rma-blue Reserve sss "$(uuid 36)" blue-36 "")"
check_eq "... and releases it over the bus" "" "$(call rma-blue Release s "$(uuid 36)")"

rm -f "$RULES" "$POLICY"
systemctl reload rma-brokerd.service
userdel rma-admin; userdel rma-blue; userdel rma-user; groupdel rmaadmin; groupdel blueops
check_eq "the broker still serves, every slot free" 4 "$(prop FreeRmas)"
tap_done
