#!/usr/bin/env bash
# Runs inside a booted Debian 12 container (tests/package/test-debian.sh): systemd as
# PID 1, a real system bus, and the rma-broker package installed with apt. Proves what
# only a real systemd can: the units verify, broker.sock is socket-activated by the
# first claim and the bus name by the first busctl call, STATUS, reload, the fd store
# holds every region, `systemctl restart` and kill -9 under load lose nothing, and the
# maintainer scripts of the previous release and this one (downgrade, upgrade, again,
# while stopped, remove then reinstall from rc) keep both units active, every lease and
# the tenant's cap.
# Prints TAP; the host renumbers it into its own.
set -uo pipefail

export BUILD_DIR=/opt/rma-test SOURCE_DIR=/opt/rma-test
. /opt/rma-test/tap.sh
. /opt/rma-test/broker.sh

# Boot must be over first: systemd-tmpfiles-setup empties /tmp at boot.
booted() { case "$(systemctl is-system-running 2>/dev/null)" in running | degraded) return 0 ;; esac; return 1; }
check "the container finished booting" wait_until 120 booted
diag "system state: $(systemctl is-system-running 2>&1); failed units: $(systemctl list-units --failed --plain --no-legend 2>&1)"
make_test_dir sd
bus_call() { busctl call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 "$@"; }
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
counts() { echo "free=$(prop FreeRmas) reserved=$(prop ReservedRmas) leased=$(prop LeasedRmas) held-elsewhere=$(prop HeldElsewhereRmas)"; }
svc() { systemctl show -p "$1" --value rma-brokerd.service; }

out=$(systemd-analyze verify --man=no rma-brokerd.service rma-brokerd.socket rma-brokerd-metrics.socket \
      rma-brokerd-metrics@.service 2>&1)
check_eq "systemd-analyze verify: the units are clean" "" "$out"
out=$(systemd-analyze security --no-pager rma-brokerd.service 2>&1)
check_match "systemd-analyze security rates the service" "Overall exposure level for rma-brokerd.service: [0-9.]+" "$out"
diag "$(grep -E 'Overall exposure|^✗' <<<"$out" | head -40)"
check_eq "at boot: the socket listens and the service runs" "active active" \
    "$(systemctl is-active rma-brokerd.socket) $(systemctl is-active rma-brokerd.service)"

# Socket activation: the first claim starts the broker.
systemctl stop rma-brokerd.service
check_eq "stopped: the socket stays" "inactive active" \
    "$(systemctl is-active rma-brokerd.service) $(systemctl is-active rma-brokerd.socket)"
out=$("$TEST_CLIENT" reserve "$(uuid 1)" dom-1 2>&1)
check_match "the first client on broker.sock starts the broker and is served" "^reserved [0-9]" "$out"
check_eq "the service runs" active "$(systemctl is-active rma-brokerd.service)"
check_match "it is Type=notify with its watchdog armed and an fd store" "notify 30s 65536" \
    "$(svc Type) $(svc WatchdogUSec) $(svc FileDescriptorStoreMax)"

# Bus activation: the first busctl call starts it.
systemctl stop rma-brokerd.service
check_eq "first busctl call starts it (bus activation)" 4 "$(prop TotalRmas)"
check_eq "the service runs" active "$(systemctl is-active rma-brokerd.service)"
check_match "the reservation made before the stop is back" "\"reserved\" \"$(uuid 1)\" \"dom-1\"" "$(bus_call ListRmas)"

# Leases held through restarts.
bus_call Reserve sss "$(uuid 2)" dom-2 "" >/dev/null
as_nobody_fifo a claim "$(uuid 2)" bytes-a
PID_A=$CLIENT_PID
bus_call Reserve sss "$(uuid 3)" dom-3 "" >/dev/null
as_nobody_fifo b claim "$(uuid 3)" bytes-b
PID_B=$CLIENT_PID
check "two leases" wait_until 10 prop_is LeasedRmas 2
check_eq "systemd's fd store holds every region, the free ones too" 4 "$(svc NFileDescriptorStore)"
# STATUS= follows the lease a moment later (the broker's next loop iteration, then systemd's).
status_has() { [[ "$(svc StatusText)" == *"$1"* ]]; }
wait_until 5 status_has "1 of 4 RMAs free, 2 leased, 1 reserved"
check_match "STATUS= tells the admin" "1 of 4 RMAs free, 2 leased, 1 reserved" "$(svc StatusText)"
check "systemctl reload (RELOADING=1, READY=1)" systemctl reload rma-brokerd.service
check_eq "... and it is active" active "$(systemctl is-active rma-brokerd.service)"
# ExecReload= waits for the broker's answer: a refused policy fails the reload.
printf '[Tenant bad]\nMaxRmas=lots\n' >/etc/rma-broker/policy.d/zz-broken.conf
check "systemctl reload with a broken policy file fails" bash -c '! systemctl reload rma-brokerd.service 2>/dev/null'
# rmactl's stderr reaches the journal through its stream, which journald reads on its own
# time: wait for it.
reload_refusal_logged() { journalctl -u rma-brokerd.service --no-pager -o cat | tr '\n' ' ' | grep -q "$1"; }
wait_until 10 reload_refusal_logged "reload refused:.*zz-broken.conf:2"
check_match "... the journal has the broker's reason, file and line" "reload refused:.*zz-broken.conf:2" \
    "$(journalctl -u rma-brokerd.service --no-pager -o cat | tr '\n' ' ')"
check_eq "... and the broker still serves" "active 4" "$(systemctl is-active rma-brokerd.service) $(prop TotalRmas)"
rm -f /etc/rma-broker/policy.d/zz-broken.conf
check "systemctl reload succeeds again" systemctl reload rma-brokerd.service
# dom-1's reservation was made minutes ago on a loaded machine: renew it (a retried Reserve
# by the same account), so that it outlives the restarts below (ReservationTimeoutSec=120).
bus_call Reserve sss "$(uuid 1)" dom-1 "" >/dev/null
before=$(leases) before_counts=$(counts)
pid_before=$(svc MainPID)
check "systemctl restart" systemctl restart rma-brokerd.service
check "a new broker runs" test "$(svc MainPID)" != "$pid_before"
check_eq "after the restart: the same leases on the same slots" "$before" "$(leases)"
check_eq "and the same counts" "$before_counts" "$(counts)"
[ "$(counts)" = "$before_counts" ] || diag "$(journalctl -u rma-brokerd.service --no-pager -o cat -n 40)"
check_match "the regions came back from the fd store" "re-adopted the lease of domain dom-2 .*region from the fd store" \
    "$(journalctl -u rma-brokerd.service --no-pager -o cat)"

# kill -9 under load: other clients reserve and claim meanwhile.
(
    i=100
    while :; do
        i=$((i + 1))
        "$TEST_CLIENT" reserve "$(uuid $i)" load-$i >/dev/null 2>&1 &&
            echo | setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TEST_CLIENT" claim "$(uuid $i)" >/dev/null 2>&1
        "$TEST_CLIENT" release "$(uuid $i)" >/dev/null 2>&1
    done
) </dev/null >/dev/null 2>&1 &
LOAD=$!
sleep 1
pid_before=$(svc MainPID)
systemctl kill -s KILL rma-brokerd.service
check "Restart=on-failure brings it back" wait_until 30 sh -c \
    "[ \"\$(systemctl show -p MainPID --value rma-brokerd.service)\" != $pid_before ] && systemctl is-active -q rma-brokerd.service"
sleep 1
kill "$LOAD"; wait "$LOAD" 2>/dev/null
for u in $(bus_call ListRmas | grep -oE '"(reserved|leased)" "[0-9a-f-]+" "load-' | cut -d'"' -f4); do
    bus_call Release s "$u" >/dev/null
done
check "the load's leases end" wait_until 20 sh -c "! busctl call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas | grep -q load-"
check_eq "after kill -9 under load: the same leases on the same slots" "$before" "$(leases)"
check_eq "and the same counts" "$before_counts" "$(counts)"
check_eq "the fd store still holds every region" 4 "$(svc NFileDescriptorStore)"
slots=$(bus_call ListRmas | grep -oE '[0-9]+ "(leased|reserved)"' | cut -d' ' -f1 | sort)
check_eq "no slot is handed out twice" "$(sort -u <<<"$slots")" "$slots"

close_fifo a; close_fifo b
wait "$PID_A" "$PID_B"
check "both leases end when their holders exit" wait_until 20 prop_is LeasedRmas 0
bus_call Release s "$(uuid 1)" >/dev/null
check "every region is free again" wait_until 20 prop_is FreeRmas 4
sleep 2
check_eq "the fd store's copy of an ended lease's region is no \"other process\" in the log" "" \
    "$(journalctl -u rma-brokerd.service --no-pager -o cat | grep 'still open or mapped in another process')"

# Everything so far (starts, stops, reloads, a refused policy, leases, re-adoption) logged
# MESSAGE_IDs (the broker's own lines; systemd's about the unit have systemd's ids), and
# the journal's catalog knows each: the package's file, in the database
# that systemd's dpkg trigger on /usr/lib/systemd/catalog rebuilt (journalctl -x).
ids=$(journalctl _SYSTEMD_UNIT=rma-brokerd.service SYSLOG_IDENTIFIER=rma-brokerd -o json --no-pager | python3 -c '
import json, sys
print("\n".join(sorted({json.loads(l).get("MESSAGE_ID", "") for l in sys.stdin} - {""})))')
known=$(journalctl --list-catalog --no-pager | sed -n 's/^\([0-9a-f]\{32\}\) rma-broker: .*/\1/p' | sort)
check "rma-brokerd logged events of at least 8 kinds here" test "$(wc -l <<<"$ids")" -ge 8
check_eq "the journal catalog explains every one of them (journalctl --list-catalog)" "" \
    "$(comm -23 <(echo "$ids") <(echo "$known"))"
diag "MESSAGE_IDs logged: $(tr '\n' ' ' <<<"$ids")"

# The maintainer scripts, as Debian runs them, with two claimants of a capped tenant
# holding their leases the way QEMU does: the previous release and this one, in turn
# downgrade, upgrade, again, an upgrade while the service is stopped, apt remove and a
# reinstall from the rc state. After each step both units are active, every lease is back
# on its slot (from systemd's fd store where the service kept running; taken back from the
# claimant or reopened by its handle where it was stopped), no slot of a live region is
# free, and the tenant's cap holds. The admin's changed config stays (--force-confold).
units_active() { [ "$(systemctl is-active rma-brokerd.socket) $(systemctl is-active rma-brokerd.service)" = "active active" ]; }
broker_answers() { busctl call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas >/dev/null 2>&1; }
installed_version() { dpkg-query -W -f '${Version}' rma-broker 2>/dev/null; }
package_step() { # package_step VERSION LABEL COMMAND...: VERSION installed after it
    local version=$1 label=$2 out
    shift 2
    out=$("$@" 2>&1)
    check "$label" test $? -eq 0
    check_eq "$label: version $version installed" "$version" "$(installed_version)"
    if [ "$version" = "${PREV:-}" ]; then
        # 0.1.0's postinst restarts both units in one call, and systemd refuses the
        # socket's start whenever the service came up first. The docs tell the admin to
        # restart the service then, which brings the socket back and keeps the fd store.
        check "$label: the service is active" wait_until 30 systemctl is-active -q rma-brokerd.service
        if ! units_active; then
            diag "$version's postinst left rma-brokerd.socket $(systemctl is-active rma-brokerd.socket):" \
                "systemctl restart rma-brokerd.service, as docs/architecture.md says"
            systemctl restart rma-brokerd.service
        fi
    fi
    check "$label: the socket and the service are active" wait_until 30 units_active
    units_active || diag "$(tail -15 <<<"$out")
$(systemctl status --no-pager rma-brokerd.socket rma-brokerd.service 2>&1 | tail -30)"
    wait_until 30 broker_answers
    check_eq "$label: every lease kept on its slot" "$before" "$(leases)"
    [ "$before" = "$(leases)" ] || diag "$(journalctl -u rma-brokerd.service --no-pager -o cat | tail -25)"
    check_eq "$label: the 2 other slots free, none held elsewhere" "2 0" "$(prop FreeRmas) $(prop HeldElsewhereRmas)"
    out=$(bus_call Reserve sss "$(uuid 22)" upg-22 "" 2>&1)
    check_match "$label: tenant upg (MaxRmas=2, both held) gets no third RMA" "MaxRmas|quota|cap" "$out"
    bus_call Release s "$(uuid 22)" >/dev/null 2>&1
}
dpkg_i() { env DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$@"; }
VERSION=$(dpkg-deb -f /opt/rma-test/rma-broker.deb Version)
printf '[Tenant upg]\nMaxRmas=2\nDomains=upg-*\n' >/etc/rma-broker/policy.d/50-upgrade.conf
check "a capped tenant for the claimants (systemctl reload)" systemctl reload rma-brokerd.service
bus_call Reserve sss "$(uuid 20)" upg-20 "" >/dev/null
as_nobody_fifo c claim "$(uuid 20)" bytes-c
bus_call Reserve sss "$(uuid 21)" upg-21 "" >/dev/null
as_nobody_fifo d claim "$(uuid 21)" bytes-d
check "two claimants hold leases again" wait_until 10 prop_is LeasedRmas 2
before=$(leases)
# In slot order, which the free list decides: each on its own.
check_match "... for tenant upg" '"upg-20" "upg"' "$before"
check_match "... both of them" '"upg-21" "upg"' "$before"
if [ -f /opt/rma-test/rma-broker-prev.deb ]; then
    PREV=$(dpkg-deb -f /opt/rma-test/rma-broker-prev.deb Version)
    package_step "$PREV" "a downgrade to the previous release ($VERSION -> $PREV)" \
        dpkg_i /opt/rma-test/rma-broker-prev.deb
    # What that postinst may leave, made sure of: the socket down under a running broker.
    systemctl stop rma-brokerd.socket
    check "with the socket left inactive: the documented 'systemctl restart rma-brokerd.service'" \
        systemctl restart rma-brokerd.service
    check "... brings the socket back" wait_until 30 units_active
    wait_until 30 broker_answers
    check_eq "... and keeps every lease on its slot" "$before" "$(leases)"
    package_step "$VERSION" "the upgrade from it ($PREV -> $VERSION)" dpkg_i /opt/rma-test/rma-broker.deb
else
    not_ok "the previous release's package is not there: no downgrade or upgrade from it"
fi
package_step "$VERSION" "dpkg -i of the package again" dpkg_i /opt/rma-test/rma-broker.deb
if [ -n "${PREV:-}" ]; then
    dpkg_i /opt/rma-test/rma-broker-prev.deb >/dev/null 2>&1
    wait_until 30 broker_answers
fi
systemctl stop rma-brokerd.service
package_step "$VERSION" "an upgrade while the service is stopped (${PREV:-$VERSION} -> $VERSION)" \
    dpkg_i /opt/rma-test/rma-broker.deb
out=$(env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q rma-broker 2>&1)
check "apt remove rma-broker (its conffiles stay: the rc state)" \
    test "$(dpkg-query -W -f '${db:Status-Abbrev}' rma-broker 2>&1)" = "rc " || diag "$(tail -10 <<<"$out")"
check_eq "... both units stopped" "inactive inactive" \
    "$(systemctl is-active rma-brokerd.socket) $(systemctl is-active rma-brokerd.service)"
package_step "$VERSION" "installing again from the rc state" dpkg_i /opt/rma-test/rma-broker.deb
rm -f /etc/rma-broker/policy.d/50-upgrade.conf

close_fifo c; close_fifo d
check "once they let go, every region is free again" wait_until 30 prop_is FreeRmas 4

# The maintainer scripts reload whichever of libvirt's daemons runs, libvirtd (Debian 12)
# or virtqemud (newer libvirt), so that it finds the hook, and start neither. Two stand-ins
# with libvirt's unit names count their reloads.
for d in libvirtd virtqemud; do
    printf '[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/sh -c "echo reload >>/run/%s.reloads"\n' \
        "$d" >"/run/systemd/system/$d.service"
done
systemctl daemon-reload
reloads() { echo "$(cat /run/libvirtd.reloads 2>/dev/null | wc -l) $(cat /run/virtqemud.reloads 2>/dev/null | wc -l)"; }
systemctl start libvirtd.service
dpkg_i /opt/rma-test/rma-broker.deb >/dev/null 2>&1
check_eq "dpkg -i with libvirtd running: postinst reloads libvirtd, starts no virtqemud" "1 0 inactive" \
    "$(reloads) $(systemctl is-active virtqemud.service)"
systemctl stop libvirtd.service
systemctl start virtqemud.service
dpkg_i /opt/rma-test/rma-broker.deb >/dev/null 2>&1
check_eq "dpkg -i with virtqemud running: postinst reloads virtqemud, starts no libvirtd" "1 1 inactive" \
    "$(reloads) $(systemctl is-active libvirtd.service)"
env DEBIAN_FRONTEND=noninteractive dpkg -r rma-broker >/dev/null 2>&1
check_eq "dpkg -r: postrm reloads virtqemud too (the hook is gone)" "1 2" "$(reloads)"
dpkg_i /opt/rma-test/rma-broker.deb >/dev/null 2>&1
check "... and the package installs again from the rc state" wait_until 30 units_active
systemctl stop virtqemud.service
rm -f /run/systemd/system/libvirtd.service /run/systemd/system/virtqemud.service /run/libvirtd.reloads \
    /run/virtqemud.reloads
systemctl daemon-reload
close_all_fifos
rm -rf "$TEST_DIR"
tap_done
