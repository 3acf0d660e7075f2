#!/usr/bin/env bash
# Self-test of tests/lib/dev-kvm.sh, the namespaces the kvm suites run in: inside each one,
# and in both nestings, /dev/kvm is as asked and what QEMU, libvirtd and the sandbox open in
# /dev works (a pty, QEMU's pty console as libvirt-qemu, a guest started by a private
# libvirtd, urandom, zero, null, full, net/tun,
# POSIX shared memory, every mount the host has under /dev, a huge page where the host
# mounts hugetlbfs there). A broken rebuild then fails here, once and by name, rather than
# as a dozen `virsh start` failures downstream. Afterwards the host's /dev is as before.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEV_KVM=$HERE/../lib/dev-kvm.sh

# --inside WANT: the checks, run in the namespace; a line "PASS what" or "FAIL what" each.
if [ "${1:-}" = --inside ]; then
    want=$2 host_mounts=$3
    say() { if "${@:2}" >/dev/null 2>&1; then echo "PASS $1"; else echo "FAIL $1"; fi; }
    if [ "$want" = present ]; then
        say "/dev/kvm is the misc node 10:232" test "$(stat -c '%F %t:%T' /dev/kvm 2>&1)" = "character special file a:e8"
    else
        say "/dev/kvm does not exist" test ! -e /dev/kvm -a ! -L /dev/kvm
    fi
    say "a pty opens (/dev/ptmx finds its devpts)" python3 -c '
import os
master, slave = os.openpty()
assert os.ttyname(slave).startswith("/dev/pts/")
os.write(master, b"x\n"); assert os.read(slave, 2) == b"x\n"'
    say "/dev/urandom gives 16 bytes, /dev/zero zeros, /dev/null swallows, /dev/full is full" python3 -c '
import errno, os
assert len(open("/dev/urandom", "rb").read(16)) == 16
assert open("/dev/zero", "rb").read(16) == bytes(16)
open("/dev/null", "wb").write(b"x")
f = os.open("/dev/full", os.O_WRONLY)
try:
    os.write(f, b"x"); raise SystemExit("wrote to /dev/full")
except OSError as e:
    assert e.errno == errno.ENOSPC'
    if [ -c /dev/net/tun ] || [ "$want" = present ]; then
        say "/dev/net/tun opens" python3 -c 'import os; os.close(os.open("/dev/net/tun", os.O_RDWR))'
    fi
    say "POSIX shared memory in /dev/shm" python3 -c '
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(create=True, size=4096); m.buf[0] = 7; m.close(); m.unlink()'
    say "the same mounts under /dev as the host" test "$(findmnt -rn -o TARGET,FSTYPE -R /dev | awk '$1 != "/dev"' | sort -u)" = "$host_mounts"
    # QEMU as libvirt runs it: as libvirt-qemu, its console a pty.
    say "QEMU (as libvirt-qemu) gets a pty for its console" bash -c '
        setpriv --reuid=libvirt-qemu --regid=libvirt-qemu --clear-groups \
            timeout 30 qemu-system-ppc64 -machine none -nodefaults -display none -S -monitor none \
            -chardev pty,id=console0 2>&1 | { grep -m1 -q "char device redirected to /dev/pts/"; r=$?; pkill -u libvirt-qemu -f "chardev pty,id=console0"; exit $r; }'
    # libvirt moves every mount it lists under /dev into each QEMU's own /dev namespace.
    say "libvirtd starts a ppc64 guest (QEMU in libvirt's own /dev namespace, pty console)" bash -c '
        . "$1/../e2e/libvirt-sandbox.sh"
        trap sandbox_stop EXIT
        sandbox_start 2>/dev/null || exit 1
        sandbox_domain_xml rma-devns-$$ 8e1c2d3e-0000-4000-8000-0000000000d5 /usr/bin/qemu-system-ppc64 256 \
            >"$SANDBOX/guest.xml" && sandbox_virsh define "$SANDBOX/guest.xml" >/dev/null &&
            sandbox_virsh start rma-devns-$$ >/dev/null && sandbox_virsh domstate rma-devns-$$ | grep -qx running &&
            grep -q "char device redirected to /dev/pts/" "$(sandbox_domain_log rma-devns-$$)"' _ "$HERE"
    huge=$(findmnt -rn -t hugetlbfs -o TARGET | grep '^/dev/' | head -n1)
    if [ -n "$huge" ]; then
        say "a huge page maps through $huge" python3 - "$huge" <<'PY'
import mmap, os, sys
path = os.path.join(sys.argv[1], "rma-dev-selftest.%d" % os.getpid())
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
os.unlink(path)
size = os.statvfs(sys.argv[1]).f_bsize
m = mmap.mmap(fd, size)
m[0] = 1
PY
    fi
    exit 0
fi

. "$HERE/../lib/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: unshare --mount"
    exit 0
fi
require_commands unshare findmnt mountpoint setpriv qemu-system-ppc64 python3 libvirtd virsh

host_dev=$(ls -la --time-style=+ /dev | sort)
host_mounts=$(findmnt -rn -o TARGET,FSTYPE -R /dev | awk '$1 != "/dev"' | sort -u)
host_kvm=absent
[ -e /dev/kvm ] && host_kvm=present
diag "this host: /dev/kvm $host_kvm; mounts under /dev: $(tr '\n' ' ' <<<"$host_mounts")"
tmp_before=$(ls -d "${TMPDIR:-/tmp}"/rma-host-dev.* 2>/dev/null)

# run_in WANT MODE...: the checks inside dev-kvm.sh MODE [dev-kvm.sh MODE2 ...].
run_in() {
    local want=$1 label=$2 line
    local -a chain=()
    shift 2
    for mode in "$@"; do chain+=("$DEV_KVM" "$mode"); done
    while IFS= read -r line; do
        case "$line" in
        PASS\ *) ok "$label: ${line#PASS }" ;;
        FAIL\ *) not_ok "$label: ${line#FAIL }" ;;
        *) diag "$line" ;;
        esac
    done < <("${chain[@]}" "$0" --inside "$want" "$host_mounts" 2>&1)
}
run_in absent "--absent" --absent
run_in present "--present" --present
run_in absent "--present, then --absent inside it" --present --absent
run_in present "--absent, then --present inside it" --absent --present

check_eq "the host's /dev is as it was" "$host_dev" "$(ls -la --time-style=+ /dev | sort)"
check_eq "no temporary mount point left in ${TMPDIR:-/tmp}" "$tmp_before" \
    "$(ls -d "${TMPDIR:-/tmp}"/rma-host-dev.* 2>/dev/null)"
out=$("$DEV_KVM" --absent 2>&1); status=$?
check_eq "dev-kvm.sh without a command says how to use it" "2 usage: dev-kvm.sh --absent|--present COMMAND [ARGS...]" "$status $out"
tap_done
