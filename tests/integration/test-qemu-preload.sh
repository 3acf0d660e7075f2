#!/usr/bin/env bash
# Integration: librma-qemu-fd.so, the hand-off of a region that cannot be reopened by
# path (a real RMA is an anonymous inode). A region stand-in (a memfd with mode 0000, as
# the fake POWER kernel makes them) is passed to real programs run as nobody: without the
# library, opening /proc/self/fd/N fails; with it, exactly that path yields the region,
# every other open is untouched, and nothing the program starts inherits the library.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root to run programs as nobody"
    exit 0
fi
make_test_dir preload
trap 'rm -rf "$TEST_DIR"' EXIT
install -m 0755 "$BUILD_DIR/libvirt-plugin/librma-qemu-fd.so" "$TEST_DIR/bin/"
LIB=$TEST_DIR/bin/librma-qemu-fd.so
echo other-file >"$TEST_DIR/other"; chmod 0644 "$TEST_DIR/other"

# run_with_region CMD...: CMD as nobody with a 0000 memfd holding "region-bytes" on fd 3.
run_with_region() {
    python3 - "$@" <<'PY'
import os, subprocess, sys
fd = os.memfd_create("kvm-rma", 0)
os.write(fd, b"region-bytes\n"); os.lseek(fd, 0, 0); os.fchmod(fd, 0)
os.dup2(fd, 3, inheritable=True)
r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + sys.argv[1:],
                   pass_fds=[3], capture_output=True, text=True)
sys.stdout.write(r.stdout + r.stderr + "exit=%d\n" % r.returncode)
PY
}

out=$(run_with_region cat /proc/self/fd/3)
check_match "without the library, nobody cannot reopen the region by path" "Permission denied" "$out"
# open_rw PATH...: each PATH opened O_RDWR (as QEMU opens a memory backend), its first line.
open_rw() {
    python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDWR if p.startswith("/proc/self/fd/") else os.O_RDONLY)
    sys.stdout.write(os.read(fd, 64).decode())' "$@"
}
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=3 bash -c "$(declare -f open_rw); open_rw /proc/self/fd/3 $TEST_DIR/other")
check_match "with it, a read-write open of /proc/self/fd/3 opens the region itself" "^region-bytes" "$out"
check_match "and every other open goes to libc untouched" "other-file" "$out"
check_match "... and succeeds" "exit=0" "$out"
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=3 cat /proc/self/fd/3)
check_match "a read-only open does not get the read-write region: libc answers" "Permission denied" "$out"
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=3 python3 -c 'import os
fd = os.open("/proc/self/fd/3", os.O_PATH)
print("flags", oct(__import__("fcntl").fcntl(fd, __import__("fcntl").F_GETFL) & 0o10000003))')
check_match "an O_PATH open is not handed the region either" "flags 0o10000000" "$out"
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=3 sh -c 'echo "child sees [${LD_PRELOAD-}${RMA_BROKER_REGION_FD-}]"')
check_match "what the program starts inherits neither variable" "child sees \[\]" "$out"
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=junk cat /proc/self/fd/3)
check_match "a malformed fd number intercepts nothing" "Permission denied" "$out"
out=$(run_with_region env LD_PRELOAD="$LIB" RMA_BROKER_REGION_FD=3 cat /proc/self/fd/30)
check_match "another fd's path is not intercepted" "No such file or directory" "$out"
tap_done
