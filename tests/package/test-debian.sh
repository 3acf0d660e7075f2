#!/usr/bin/env bash
# The Debian package, as an admin gets it: built with dpkg-buildpackage from a copy of the
# tree, checked with lintian, installed with `apt install ./rma-broker_*.deb` into a
# fresh Debian 12 tree made by debootstrap (minbase with systemd and dbus), run there,
# then booted with systemd-nspawn --boot so that a real systemd and a real system bus run
# tests/package/systemd-scenario.sh (socket and bus activation, fd store, restart and
# kill -9 under load; polkitd deciding for non-root accounts, polkit-scenario.sh) and
# autopkgtest runs debian/tests (null runner, in the container),
# and purged. Everything happens under a temporary directory, in a
# private mount namespace: the host's packages and mounts are untouched.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: debootstrap and chroot"
    exit 0
fi
if [ -z "${RMA_PACKAGE_NS:-}" ]; then
    exec unshare --mount --propagation private env RMA_PACKAGE_NS=1 "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/exec-tmpdir.sh"

for cmd in dpkg-buildpackage dh lintian debootstrap fakeroot systemd-nspawn; do
    if ! command -v "$cmd" >/dev/null; then
        echo "not ok 1 - prerequisites: missing $cmd; run tools/install-deps.sh"
        echo "1..1"
        exit 1
    fi
done
# The container's root: programs run from it, so not under a noexec /tmp.
T=$(mktemp -d "$(exec_tmpdir)/rma-package.XXXXXX")
ROOT=$T/root
NSPAWN_PID=
cleanup() {
    if [ -n "$NSPAWN_PID" ]; then
        kill "$NSPAWN_PID" 2>/dev/null
        sleep 1
        kill -9 "$NSPAWN_PID" 2>/dev/null
    fi
    for m in proc dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

# 1. Build from exactly what git tracks (what a release tarball holds).
mkdir "$T/src"
git -C "$SOURCE_DIR" ls-files -z | (cd "$SOURCE_DIR" && xargs -0 tar -c) | tar -x -C "$T/src"
git -C "$T/src" init -q && git -C "$T/src" add -A
out=$(cd "$T/src" && dpkg-buildpackage -us -uc -b 2>&1)
check "dpkg-buildpackage -us -uc -b builds the package" test $? -eq 0 || diag "$(tail -30 <<<"$out")"
# What the build leaves in debian/ (and obj-*/) is .gitignore's, and it changes no tracked
# file: a build does not dirty a checkout.
check_eq "... and leaves the tree as git knows it (.gitignore covers what it makes)" "" \
    "$(git -C "$T/src" ls-files --others --exclude-standard; git -C "$T/src" diff --name-only)"
DEB=$(ls "$T"/rma-broker_*.deb 2>/dev/null | head -1)
check "... rma-broker_VERSION_ARCH.deb" test -f "$DEB"

# 1b. The previous release, from the project's own history: the last commit whose
#     debian/changelog still named the version before ours (releases are not tagged: the
#     version moves in the commit that starts the next one). Built without its tests.
VERSION=$(dpkg-parsechangelog -l "$SOURCE_DIR/debian/changelog" -S Version)
PREV_VERSION=$(dpkg-parsechangelog -l "$SOURCE_DIR/debian/changelog" --offset 1 --count 1 -S Version)
PREV_DEB=
if git -C "$SOURCE_DIR" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    bump=$(git -C "$SOURCE_DIR" log --format=%H -S "rma-broker ($VERSION)" -- debian/changelog | tail -1)
    PREV_COMMIT=$(git -C "$SOURCE_DIR" rev-parse -q --verify "$bump^" 2>/dev/null)
    mkdir -p "$T/prev/src"
    git -C "$SOURCE_DIR" archive "$PREV_COMMIT" | tar -x -C "$T/prev/src"
    check_eq "the previous release's tree ($PREV_COMMIT) is version $PREV_VERSION" "$PREV_VERSION" \
        "$(dpkg-parsechangelog -l "$T/prev/src/debian/changelog" -S Version 2>&1)"
    out=$(cd "$T/prev/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b 2>&1)
    check "... and it builds ($PREV_VERSION, for the upgrade and downgrade steps)" test $? -eq 0 ||
        diag "$(tail -30 <<<"$out")"
    PREV_DEB=$(ls "$T"/prev/rma-broker_"$PREV_VERSION"_*.deb 2>/dev/null | head -1)
else
    not_ok "the previous release: $SOURCE_DIR has no git history to build it from (a clone of the repository does)"
fi

check_match "the package ships placement-agent.conf (credentials) root's, mode 0640" \
    "-rw-r----- root/root .* ./etc/rma-broker/placement-agent.conf" "$(dpkg-deb -c "$DEB" 2>&1)"

# 2. lintian: nothing to fix (it notes that it runs as root here, which is the test's doing).
if [ -f "$DEB" ]; then
    out=$(lintian --tag-display-limit 0 "$DEB" 2>&1 | grep -v 'running with root privileges')
    check_eq "lintian has no error and no warning" "" "$(grep -E '^[EW]:' <<<"$out")"
    [ -z "$out" ] || diag "$out"
else
    not_ok "lintian: there is no package to check"
fi

# 3. A clean Debian 12 tree, from the mirror apt uses here.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
out=$(debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" "$mirror" 2>&1)
check "debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm" test $? -eq 0 ||
    diag "$(tail -20 <<<"$out")"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
cp "$DEB" "$ROOT/tmp/"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# 4. apt install ./rma-broker_*.deb, with its dependencies from the mirror.
out=$(in_root apt-get update -q 2>&1 && in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$DEB")" 2>&1)
check "apt install ./$(basename "$DEB") in the fresh tree" test $? -eq 0 || diag "$(tail -30 <<<"$out")"
for f in /usr/sbin/rma-brokerd /usr/bin/rmactl /usr/bin/qemu-rma /usr/lib/rma-broker/qemu-rma-claim \
         /usr/lib/rma-broker/rma-broker-hook /usr/sbin/rma-broker-hook-front /etc/rma-broker/rma-brokerd.conf \
         /usr/share/dbus-1/system.d/org.rmabroker.Broker1.conf /usr/share/polkit-1/actions/org.rmabroker.policy /lib/systemd/system/rma-brokerd.service \
         /usr/share/man/man8/rma-brokerd.8.gz; do
    check "installed $f" test -e "$ROOT$f"
done
check "the hook is in libvirt's qemu.d" in_root test -x /etc/libvirt/hooks/qemu.d/50-rma-broker
check "the service is enabled (the link systemd would follow at boot)" \
    test -L "$ROOT/etc/systemd/system/multi-user.target.wants/rma-brokerd.service"
check "the metrics socket is not" test ! -e "$ROOT/etc/systemd/system/sockets.target.wants/rma-brokerd-metrics.socket"
out=$(in_root sh -c 'RMA_BROKER_TEST_SMALL_RMAS=1 rma-brokerd --runtime-dir=/tmp/rb --count=2 --size=4M 2>/tmp/rb.log & pid=$!
    for i in $(seq 50); do [ -S /tmp/rb/broker.sock ] && break; sleep 0.1; done
    ls /tmp/rb; kill $pid; wait $pid; echo "exit=$?"' 2>&1)
check_match "the installed broker runs in the new tree and serves broker.sock" "broker.sock.*exit=0" "$(tr '\n' ' ' <<<"$out")"
check_match "rmactl runs" "Usage: rmactl" "$(in_root rmactl --help 2>&1)"
check "the claim socket is enabled too" test -L "$ROOT/etc/systemd/system/sockets.target.wants/rma-brokerd.socket"
check "the example polkit rule is in the docs" test -f "$ROOT/usr/share/doc/rma-broker/examples/50-rma-broker.rules"
# polkit decides for those the broker's own rules refuse: polkitd in the booted tree (the
# package suggests no polkit of its own; an admin who wants rules.d installs it).
out=$(in_root apt-get install -y -q --no-install-recommends polkitd 2>&1)
check "apt install polkitd in the tree (polkit 122, for the authorization steps)" test $? -eq 0 || diag "$(tail -20 <<<"$out")"

# 4b. Boot the tree: systemd as PID 1, the package's units as installed. A small pool
#     for clients as nobody, and the test client and TAP helpers from the build.
printf '[Broker]\nBackend=memfd\nCount=4\nSize=4M\nQemuUsers=nobody\nCheckCgroup=no\n' \
    >"$ROOT/etc/rma-broker/rma-brokerd.conf"
# 4 MiB regions serve no pseries guest: the broker takes them only for a test.
mkdir -p "$ROOT/etc/systemd/system/rma-brokerd.service.d"
printf '[Service]\nEnvironment=RMA_BROKER_TEST_SMALL_RMAS=1\n' \
    >"$ROOT/etc/systemd/system/rma-brokerd.service.d/50-test-small-rmas.conf"
mkdir -p "$ROOT/opt/rma-test/tests"
install -m 0755 "$BUILD_DIR/tests/rma-test-client" "$ROOT/opt/rma-test/tests/"
install -m 0644 "$HERE/../lib/tap.sh" "$HERE/../lib/broker.sh" "$HERE/../lib/exec-tmpdir.sh" \
    "$HERE/../lib/process-id.sh" "$ROOT/opt/rma-test/"
install -m 0755 "$HERE/systemd-scenario.sh" "$HERE/polkit-scenario.sh" "$ROOT/opt/rma-test/"
install -m 0644 "$DEB" "$ROOT/opt/rma-test/rma-broker.deb"   # for the maintainer scripts' steps
# debian/tests as autopkgtest runs them: the tool, and the source tree it reads them from.
out=$(in_root apt-get install -y -q --no-install-recommends autopkgtest 2>&1)
check "apt install autopkgtest in the tree (for debian/tests)" test $? -eq 0 || diag "$(tail -20 <<<"$out")"
mkdir "$ROOT/opt/rma-test/src"
git -C "$SOURCE_DIR" ls-files -z | (cd "$SOURCE_DIR" && xargs -0 tar -c) | tar -x -C "$ROOT/opt/rma-test/src"
[ -n "$PREV_DEB" ] && install -m 0644 "$PREV_DEB" "$ROOT/opt/rma-test/rma-broker-prev.deb"
for m in proc dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null; done
# As on a host, the broker may take a region back from its QEMU (pidfd_getfd) or reopen it
# by its kernel handle (open_by_handle_at): systemd-nspawn's default filter denies both,
# which would turn a restart without the fd store into held-elsewhere slots (that case is
# covered in the integration suite and in docs/architecture.md).
systemd-nspawn -D "$ROOT" --boot --register=no --keep-unit --console=passive --quiet \
    --system-call-filter="pidfd_getfd open_by_handle_at" >"$T/boot.log" 2>&1 &
NSPAWN_PID=$!
container_init() { # the container's PID 1 (systemd-nspawn's child), as the host sees it
    local p
    p=$(pgrep -P "$NSPAWN_PID" -x systemd) && echo "$p"
}
check "systemd-nspawn --boot starts the tree's systemd" wait_until 60 eval "container_init >/dev/null"
INIT=$(container_init)
if [ -n "$INIT" ]; then
    # Their TAP lines, renumbered into ours.
    for scenario in systemd polkit; do
        while IFS= read -r line; do
            case $line in
                "ok "*) ok "$scenario: ${line#ok * - }" ;;
                "not ok "*) not_ok "$scenario: ${line#not ok * - }" ;;
                "#"*) echo "$line" ;;
            esac
        done < <(timeout 600 nsenter -t "$INIT" -m -u -i -n -p -- "/opt/rma-test/$scenario-scenario.sh" 2>&1)
    done
    # debian/tests/control, run by autopkgtest itself in the booted system, as Debian's CI
    # runs it in its testbed: the null runner (the testbed is where autopkgtest runs, here
    # the container; it provides isolation-machine), the package under test given as .deb.
    out=$(timeout 600 nsenter -t "$INIT" -m -u -i -n -p -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        autopkgtest --no-built-binaries --summary-file=/opt/rma-test/autopkgtest.summary \
        /opt/rma-test/rma-broker.deb /opt/rma-test/src/ -- null 2>&1)
    rc=$?
    check_match "autopkgtest (null runner, in the booted container): debian/tests' smoke test passes" \
        "^smoke +PASS" "$(cat "$ROOT/opt/rma-test/autopkgtest.summary" 2>&1)"
    check_eq "... and autopkgtest exits 0" 0 "$rc" || diag "$(tail -60 <<<"$out")"
    diag "$(grep '^smoke: ' <<<"$out")"
    if [ "$TAP_FAILED" -ne 0 ]; then
        diag "the broker's journal in the container:"
        diag "$(nsenter -t "$INIT" -m -u -i -n -p -- journalctl -u rma-brokerd.service --no-pager -o cat 2>&1 | tail -60)"
    fi
    kill -RTMIN+4 "$INIT"   # systemd: poweroff
fi
wait_until 60 sh -c "! kill -0 $NSPAWN_PID 2>/dev/null"
check "the container powers off" sh -c "! kill -0 $NSPAWN_PID 2>/dev/null"
NSPAWN_PID=
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"

# 5. apt purge leaves nothing of ours.
out=$(in_root apt-get purge -y -q rma-broker 2>&1)
check "apt purge rma-broker" test $? -eq 0 || diag "$(tail -20 <<<"$out")"
left=$(cd "$ROOT" && ls -d etc/rma-broker usr/sbin/rma-brokerd usr/bin/rmactl etc/libvirt/hooks/qemu.d/50-rma-broker \
    lib/systemd/system/rma-brokerd.service etc/systemd/system/multi-user.target.wants/rma-brokerd.service \
    lib/systemd/system/rma-brokerd.socket etc/systemd/system/sockets.target.wants/rma-brokerd.socket 2>/dev/null)
check_eq "... nothing of the package is left" "" "$left"
tap_done
