#!/usr/bin/env bash
# Install everything rma-broker needs to build, run and test on Debian 12 (as root).
# Idempotent: apt-get install does nothing for packages that are already there.
set -euo pipefail

PACKAGES=(
    # build
    meson ninja-build pkg-config gcc
    # sanitizer and fuzzing build (libFuzzer ships in libclang-rt)
    clang libclang-rt-14-dev
    libsystemd-dev libglib2.0-dev libjson-glib-dev libvirt-dev libxml2-dev libaudit-dev
    # the Debian package: build (dpkg-buildpackage checks for build-essential; the test
    # packages the tracked files, listed by git), lint, and install into a fresh tree
    build-essential git debhelper fakeroot lintian debootstrap
    # ... and boot it under a real systemd (tests/package/systemd-scenario.sh)
    systemd-container
    # run and test: the bus tools, libvirt, and the QEMU the wrapper execs
    dbus systemd libglib2.0-bin util-linux procps
    libvirt-daemon-system libvirt-clients qemu-system-ppc qemu-utils
    # fleet metrics tests: node_exporter's textfile collector, promtool (in prometheus),
    # a scraper, and a YAML parser for the Nova provider config
    prometheus-node-exporter prometheus curl python3 python3-yaml
    # AppArmor rules for confined QEMUs: checked with apparmor_parser
    apparmor
    # the installed man pages and bash completion are checked with these
    groff-base bash-completion
    # the Cockpit page, tested in a real cockpit-ws with Debian's headless Chromium
    cockpit-ws cockpit-bridge cockpit-system chromium chromium-driver python3-selenium
    # rma-placement-agent (its libraries) and its test against the real Placement service
    # (python3-placement alone: the placement-api package would enable a service at boot)
    python3-gi python3-keystoneauth1 python3-openstacksdk python3-placement python3-libvirt
    # polkit: the real polkitd (and pkttyagent) for integration-polkit; strace shows there
    # what rmactl runs on a terminal
    polkitd strace
    # benchmarks (bench/run-bench.sh)
    valgrind bc
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (apt-get needs it)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Two runs at once (two clones, a run beside an admin's apt) wait for each other instead of
# failing on apt's lock: a flock of our own on /var/lib/dpkg around each step (apt's own
# locks are fcntl locks, a separate kind), and apt's lock timeout for anyone else's apt.
flock -w 1800 /var/lib/dpkg apt-get -o DPkg::Lock::Timeout=600 update -q
flock -w 1800 /var/lib/dpkg apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${PACKAGES[@]}"
# The e2e suite's real guest OS (tests/e2e/test-guest-os.sh): Debian's ppc64el kernel and
# busybox, downloaded and unpacked into /var/cache/rma-broker-tests/guest, never installed.
"$(dirname "$0")/fetch-guest-kernel.sh" >/dev/null ||
    echo "install-deps: warning: no guest kernel for e2e-guest-os (it skips); rerun tools/fetch-guest-kernel.sh" >&2
