#!/usr/bin/env bash
# noexec-tmp.sh COMMAND [ARGS...]: run COMMAND in a private mount namespace where /tmp is
# mounted noexec, as on hardened hosts, to prove that the tests never run a program from it.
#
# The test's own programs are not what is under test: the checkout and the build dir
# ($SOURCE_DIR, $BUILD_DIR and COMMAND's directory), wherever they are, stay as they were.
# One of them under /tmp (a clone there, or `meson setup /tmp/build`) is bound over itself
# with exec allowed, so only the rest of /tmp, where the test's scratch would go, is noexec.
# Nothing outside the namespace changes. Needs root.
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
    [ $# -ge 1 ] || { echo "usage: noexec-tmp.sh COMMAND [ARGS...]" >&2; exit 2; }
    exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift

# noexec_at PATH: PATH's mount is noexec.
noexec_at() { findmnt -rn -o OPTIONS --target "$1" | tr , '\n' | grep -qx noexec; }

# The test's own directories, resolved before /tmp changes (COMMAND's only when it names
# one: not the working directory of a bare name); outer ones first, so that one inside
# another is found exec already.
own=()
cmd_dir=
case $1 in */*) cmd_dir=$(dirname -- "$1") ;; esac
for dir in "${SOURCE_DIR:-}" "${BUILD_DIR:-}" "$cmd_dir"; do
    if [ -n "$dir" ] && [ -d "$dir" ]; then own+=("$(realpath -e -- "$dir")"); fi
done
mapfile -t own < <(printf '%s\n' ${own[@]+"${own[@]}"} | awk '{ print length($0) "\t" $0 }' | sort -n | uniq | cut -f2-)

mountpoint -q /tmp || mount -n --bind /tmp /tmp
mount -n -o remount,bind,noexec,nosuid,nodev /tmp
for dir in ${own[@]+"${own[@]}"}; do
    if [ -z "$dir" ] || ! noexec_at "$dir"; then continue; fi
    if [ "$dir" = /tmp ]; then
        echo "noexec-tmp.sh: $dir is /tmp itself; cannot keep it exec and /tmp noexec" >&2
        exit 1
    fi
    # A bind mount has mount flags of its own: exec here, noexec in the rest of /tmp.
    mount -n --bind "$dir" "$dir"
    mount -n -o remount,bind,exec,nosuid,nodev "$dir"
    if noexec_at "$dir"; then
        echo "noexec-tmp.sh: could not keep $dir exec under a noexec /tmp; not running $1" >&2
        exit 1
    fi
done

probe=$(mktemp /tmp/rma-noexec-probe.XXXXXX)
printf '#!/bin/sh\nexit 0\n' >"$probe"
chmod 0755 "$probe"
if "$probe" 2>/dev/null; then
    rm -f "$probe"
    echo "noexec-tmp.sh: /tmp still lets programs run; not running $1" >&2
    exit 1
fi
rm -f "$probe"
unset TMPDIR
exec "$@"
