#!/usr/bin/env bash
# The real guest OS of the e2e suite (tests/e2e/test-guest-os.sh): Debian 12's own ppc64el
# kernel and busybox, fetched with apt-get download and unpacked, never installed. apt runs
# on a private state and cache directory with ppc64el as its only foreign architecture, so
# the host's dpkg architectures and apt lists stay as they are. Idempotent; prints the
# directory (default /var/cache/rma-broker-tests/guest, or $1).
set -euo pipefail

DIR=${1:-/var/cache/rma-broker-tests/guest}
if [ -s "$DIR/vmlinux" ] && [ -x "$DIR/busybox" ]; then
    echo "$DIR"
    exit 0
fi
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial"
APT=(-o APT::Architecture="$(dpkg --print-architecture)" -o APT::Architectures::=ppc64el
     -o Dir::State::Lists="$DIR/apt/lists" -o Dir::Cache="$DIR/apt/cache" -q)
apt-get "${APT[@]}" update >&2
kernel=$(apt-cache "${APT[@]}" search --names-only '^linux-image-6\.1\.0-[0-9]+-powerpc64le$' | cut -d' ' -f1 |
    sort -V | tail -1)
[ -n "$kernel" ] || { echo "fetch-guest-kernel: no linux-image-6.1.0-*-powerpc64le in Debian's ppc64el lists" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${APT[@]}" download "$kernel:ppc64el" busybox-static:ppc64el >&2 &&
    dpkg-deb -x linux-image-*.deb k && dpkg-deb -x busybox-static_*.deb b)
install -m 0644 "$work"/k/boot/vmlinux-* "$DIR/vmlinux"
install -m 0755 "$work/b/bin/busybox" "$DIR/busybox"
echo "$kernel" >"$DIR/version"
rm -rf "$DIR/apt"
echo "$DIR"
