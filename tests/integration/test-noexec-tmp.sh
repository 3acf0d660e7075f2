#!/usr/bin/env bash
# Integration: tests/lib/noexec-tmp.sh (e2e-kvm-noexec-tmp) mounts /tmp noexec for what a
# test writes and runs, not for the test itself: a checkout or a build dir under /tmp (a
# clone there, `meson setup /tmp/build`) still runs, while a program the test puts
# elsewhere in /tmp does not, and exec_tmpdir sends scratch dirs to /var/tmp. Checked on a
# stand-in checkout (a script and a build dir holding a program) in each place, so that
# the whole suite passes from /tmp whichever way the host's own checkout is. Nothing
# outside the helper's mount namespace changes.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/exec-tmpdir.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root to make a private mount namespace"
    exit 0
fi
require_commands unshare findmnt mountpoint realpath
NOEXEC_TMP=$HERE/../lib/noexec-tmp.sh
ELSEWHERE=/var/tmp
if findmnt -rn -o OPTIONS --target "$ELSEWHERE" | tr , '\n' | grep -qx noexec; then
    echo "not ok 1 - prerequisites: $ELSEWHERE is mounted noexec, and scratch dirs go there under a noexec /tmp"
    echo "1..1"
    exit 1
fi

dirs=()
cleanup() { rm -rf -- ${dirs[@]+"${dirs[@]}"}; }
trap cleanup EXIT

# checkout PARENT: a stand-in checkout under PARENT (tests/run.sh and build/prog), in CHECKOUT.
checkout() {
    local s
    s=$(mktemp -d "$1/rma-noexec-checkout.XXXXXX") || return 1
    dirs+=("$s")
    CHECKOUT=$s
    mkdir -p "$s/tests" "$s/build"
    printf '#!/bin/sh\necho built-program-ran\n' >"$s/build/prog"
    # What the test does: run its build's program, try one it put in /tmp, ask where
    # scratch dirs go.
    cat >"$s/tests/run.sh" <<'EOF'
#!/usr/bin/env bash
echo test-script-ran
"$BUILD_DIR/prog"
"$OUTSIDE" 2>/dev/null; echo "outside-status=$?"
. "$HELPERS/exec-tmpdir.sh"
echo "scratch=$(exec_tmpdir)"
EOF
    chmod 0755 "$s/build/prog" "$s/tests/run.sh"
}

outside=$(mktemp -d /tmp/rma-noexec-outside.XXXXXX)
dirs+=("$outside")
printf '#!/bin/sh\necho outside-ran\n' >"$outside/prog"
chmod 0755 "$outside/prog"
"$outside/prog" >/dev/null 2>&1
host_status=$?
mounts_before=$(cat /proc/self/mountinfo)

expected="test-script-ran
built-program-ran
outside-status=126
scratch=$ELSEWHERE"
# run_in SOURCE BUILD: the stand-in test under noexec-tmp.sh, as meson runs it.
run_in() {
    SOURCE_DIR=$1 BUILD_DIR=$2 OUTSIDE=$outside/prog HELPERS=$HERE/../lib \
        "$NOEXEC_TMP" "$1/build/../tests/run.sh" 2>&1
}

checkout /tmp; src=$CHECKOUT
check_eq "a checkout in /tmp, its build dir inside it: the test and its build run, the rest of /tmp does not" \
    "$expected" "$(run_in "$src" "$src/build")"

checkout "$ELSEWHERE"; src=$CHECKOUT
checkout /tmp; build=$CHECKOUT/build
check_eq "a checkout elsewhere, its build dir in /tmp: the same" "$expected" "$(run_in "$src" "$build")"

checkout /tmp; src=$CHECKOUT
checkout /tmp; build=$CHECKOUT/build
check_eq "a checkout and a separate build dir, both in /tmp: the same" \
    "$expected" "$(run_in "$src" "$build")"

checkout "$ELSEWHERE"; src=$CHECKOUT
check_eq "a checkout and its build dir elsewhere: the same" \
    "$expected" "$(run_in "$src" "$src/build")"

out=$(SOURCE_DIR=/tmp BUILD_DIR=/tmp "$NOEXEC_TMP" /bin/true 2>&1; echo "status=$?")
check_match "a checkout that is /tmp itself is refused, not run with /tmp exec" \
    "is /tmp itself.*status=1" "$(tr '\n' ' ' <<<"$out")"

"$outside/prog" >/dev/null 2>&1
check_eq "outside the helper a program in /tmp runs as before (status $host_status): its mounts stayed in its namespace" \
    "$host_status" "$?"
check_eq "... and the mounts here are those there were" "$mounts_before" "$(cat /proc/self/mountinfo)"
tap_done
