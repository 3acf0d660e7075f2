#!/usr/bin/env bash
# Integration: the AppArmor rules rma-broker ships for libvirt-confined QEMUs. This
# machine enforces no LSM, so the check is apparmor_parser's (parse and compile, no
# kernel load): a domain profile made exactly as libvirt makes one (its TEMPLATE.qemu and
# abstractions/libvirt-qemu from the installed libvirt), with our file included from
# local/abstractions/libvirt-qemu as docs/architecture.md tells the admin.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"

missing=()
command -v apparmor_parser >/dev/null || missing+=(apparmor_parser)
[ -f /etc/apparmor.d/libvirt/TEMPLATE.qemu ] || missing+=("libvirt's AppArmor files")
if [ ${#missing[@]} -gt 0 ]; then
    echo "not ok 1 - prerequisites: missing ${missing[*]}; run tools/install-deps.sh"
    echo "1..1"
    exit 1
fi

DIR=$(mktemp -d /tmp/rma-apparmor.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
cp -a /etc/apparmor.d "$DIR/"
BASE=$DIR/apparmor.d
install -m 0644 "$SOURCE_DIR/libvirt-plugin/apparmor/rma-broker-qemu" "$BASE/abstractions/"
mkdir -p "$BASE/local/abstractions"
echo 'include <abstractions/rma-broker-qemu>' >>"$BASE/local/abstractions/libvirt-qemu"
sed 's/LIBVIRT_TEMPLATE/libvirt-6f1c2d3e-0000-4000-8000-00000000000a/' "$BASE/libvirt/TEMPLATE.qemu" >"$DIR/profile"

# Without AppArmor in the kernel the parser notes that it cannot cache; nothing else.
parse() {
    local out status
    out=$(apparmor_parser --skip-kernel-load --skip-cache --base="$BASE" "$@" 2>&1)
    status=$?
    grep -v '^Cache read/write disabled' <<<"$out"
    return $status
}
out=$(parse "$DIR/profile"; echo "status=$?")
check_eq "a libvirt domain profile with our rules included parses and compiles" "status=0" "$out"
out=$(parse --preprocess "$DIR/profile")
check_match "the profile now lets QEMU connect to broker.sock" "/run/rma-broker/broker.sock rw," "$out"
check_match "... and to broker-priv.sock" "/run/rma-broker/broker-priv.sock rw," "$out"
check_match "... run the wrapper's front, the full wrapper, then QEMU, in the same profile" \
    "/usr/bin/qemu-rma rmix,.*/usr/\\{lib,libexec\\}/rma-broker/qemu-rma-claim rmix,.*/usr/bin/qemu-system-ppc64 rmix," \
    "$(tr '\n' ' ' <<<"$out")"
check_match "... and open the region it was passed" '"/memfd:rma-broker-slot-\* \(deleted\)" rw,' "$out"
# libvirtd's own profile runs hooks by /etc/libvirt/hooks/** but checks the link's target:
# where the hook's front is installed must be a place that profile lets libvirtd exec.
if [ -f /etc/apparmor.d/usr.sbin.libvirtd ]; then
    out=$(parse --preprocess /etc/apparmor.d/usr.sbin.libvirtd)
    check "libvirtd's profile lets it run /usr/sbin/* (where the hook's front is installed)" \
        grep -qE '^[[:space:]]*/usr/sbin/\* P?U?i?x,' <<<"$out"
    check_match "... and the build installs the front there" "install_dir : get_option\('sbindir'\)" \
        "$(grep -A4 "executable('rma-broker-hook-front'" "$SOURCE_DIR/libvirt-plugin/meson.build")"
else
    check "libvirtd's AppArmor profile (/etc/apparmor.d/usr.sbin.libvirtd) is installed" false
fi
# The check can fail: a broken rule is refused.
echo '  /run/rma-broker/broker.sock rwz,' >>"$BASE/abstractions/rma-broker-qemu"
out=$(parse "$DIR/profile"; echo "status=$?")
check_match "apparmor_parser refuses a broken rule (the check has teeth)" "status=[1-9]" "$out"

tap_done
