#!/usr/bin/env bash
# Integration: `meson install` puts everything where a Debian admin looks, the installed
# files are valid (config, bus activation, man pages, bash completion), and
# `ninja uninstall` leaves nothing. Into a DESTDIR, so the host is never touched.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"

D=$(mktemp -d /tmp/rma-install.XXXXXX)
trap 'rm -rf "$D"' EXIT

out=$(DESTDIR=$D meson install -C "$BUILD_DIR" --no-rebuild --quiet 2>&1)
check "meson install into a DESTDIR" test $? -eq 0
[ -z "$out" ] || diag "$out"

for f in etc/rma-broker/rma-brokerd.conf usr/share/dbus-1/interfaces/org.rmabroker.Broker1.xml \
         usr/share/dbus-1/system-services/org.rmabroker.Broker1.service usr/share/dbus-1/system.d/org.rmabroker.Broker1.conf usr/share/polkit-1/actions/org.rmabroker.policy \
         usr/lib/tmpfiles.d/rma-broker.conf usr/share/man/man5/rma-brokerd.conf.5 usr/share/man/man8/qemu-rma.8 \
         usr/share/man/man8/rma-brokerd.8 usr/share/man/man1/rmactl.1 usr/share/man/man5/rma-broker-policy.5 \
         usr/share/bash-completion/completions/rmactl usr/sbin/rma-brokerd usr/bin/rmactl usr/bin/qemu-rma \
         usr/share/cockpit/rma-broker/manifest.json usr/share/cockpit/rma-broker/index.html \
         usr/share/cockpit/rma-broker/rma-broker.js usr/share/cockpit/rma-broker/vendor/patternfly.css \
         etc/apparmor.d/abstractions/rma-broker-qemu etc/rma-broker/placement-agent.conf \
         usr/share/man/man8/rma-placement-agent.8 usr/lib/systemd/catalog/rma-broker.catalog \
         usr/share/doc/rma-broker/examples/50-rma-broker.rules; do
    check "installs /$f" test -s "$D/$f"
done
for d in etc/rma-broker/policy.d usr/share/rma-broker/policy.d; do
    check "creates /$d" test -d "$D/$d"
done
check "installs librma-qemu-fd.so (QEMU's hand-off of an RMA) under libdir/rma-broker" \
    test -n "$(find "$D" -path '*/lib*/rma-broker/librma-qemu-fd.so')"
check_match "the hook's front (in sbindir, for libvirtd's AppArmor profile) is linked into libvirt's qemu.d" \
    "^/usr/sbin/rma-broker-hook-front$" \
    "$(readlink "$D/etc/libvirt/hooks/qemu.d/50-rma-broker")"
check "installs the front (with its man page), the full hook and the full wrapper the fronts exec, under libexecdir/rma-broker" \
    test -x "$D/usr/sbin/rma-broker-hook-front" -a -s "$D/usr/share/man/man8/rma-broker-hook-front.8" -a \
    -x "$D/usr/libexec/rma-broker/rma-broker-hook" -a -x "$D/usr/libexec/rma-broker/qemu-rma-claim"
emulator=$(find "$D" -path '*/lib/rma-broker/emulators/qemu-system-ppc64')
check_match "libvirt's default ppc64 emulator for Nova's domains links to qemu-rma" "/bin/qemu-rma$" \
    "$(readlink "$emulator")"
unitdir=$(find "$D" -name rma-brokerd.service -printf '%h\n' | head -1)
check "installs the service, the metrics socket and its template" \
    test -f "$unitdir/rma-brokerd.service" -a -f "$unitdir/rma-brokerd-metrics.socket" -a -f "$unitdir/rma-brokerd-metrics@.service"
agent=$(find "$D" -path '*/libexec/rma-broker/rma-placement-agent')
check_eq "the Placement agent's config, which holds credentials, is not for other users" 640 \
    "$(stat -c %a "$D/etc/rma-broker/placement-agent.conf")"
check_match "... and its unit hands it over as a systemd credential" \
    "LoadCredential=placement-agent.conf:/etc/rma-broker/placement-agent.conf" "$(cat "$unitdir/rma-placement-agent.service")"
check "installs the Placement agent (executable) and its unit" test -x "$agent" -a -f "$unitdir/rma-placement-agent.service"
check_match "the unit runs the installed agent" "ExecStart=${agent#"$D"}" "$(cat "$unitdir/rma-placement-agent.service")"

# The config as installed changes nothing; with every key uncommented it still gives the
# defaults the daemon uses (so its comments tell the truth).
conf=$D/etc/rma-broker/rma-brokerd.conf
mkdir -p "$D/no-policy"
default=$("$BUILD_DIR/daemon/rma-brokerd" --config="$conf" --policy-dir="$D/no-policy" --check-policy 2>&1)
check_match "the installed config is valid as it is" "^Policy valid for a pool of 8 RMAs" "$default"
sed 's/^#\([A-Z][A-Za-z]*=\)/\1/' "$conf" >"$D/uncommented.conf"
check "every key of the installed config is shown (13)" test "$(grep -c '^[A-Z][A-Za-z]*=' "$D/uncommented.conf")" -eq 13
out=$("$BUILD_DIR/daemon/rma-brokerd" --config="$D/uncommented.conf" --policy-dir="$D/no-policy" --check-policy 2>&1)
check_eq "uncommented, it is valid and means the same" "$default" "$out"

check_match "bus activation starts the systemd service" "SystemdService=rma-brokerd.service" \
    "$(cat "$D/usr/share/dbus-1/system-services/org.rmabroker.Broker1.service")"
check "tmpfiles.d makes the runtime directory" grep -q "^d /run/rma-broker 0755 root root" \
    "$D/usr/lib/tmpfiles.d/rma-broker.conf"
for m in "$D"/usr/share/man/man*/*; do
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' groff -man -Tutf8 -ww -z "$m" 2>&1)
    check_eq "man page $(basename "$m") formats without warnings" "" "$out"
done
comp=$(bash -c '. /usr/share/bash-completion/bash_completion; . "$1"
    COMP_WORDS=(rmactl st); COMP_CWORD=1; COMP_LINE="rmactl st"; COMP_POINT=${#COMP_LINE}; _rmactl
    echo "${COMPREPLY[*]}"
    COMP_WORDS=(rmactl domain en); COMP_CWORD=2; COMP_LINE="rmactl domain en"; COMP_POINT=${#COMP_LINE}; _rmactl
    echo "${COMPREPLY[*]}"' _ "$D/usr/share/bash-completion/completions/rmactl")
check_eq "bash completion: verbs, then domain's subcommands" "status
enable" "$comp"

out=$(DESTDIR=$D ninja -C "$BUILD_DIR" uninstall 2>&1)
check "ninja uninstall" test $? -eq 0
rm -rf "$D/no-policy" "$D/uncommented.conf"
check_eq "... leaves nothing behind" "" "$(cd "$D" && find . -mindepth 1)"
tap_done
