#!/usr/bin/env bash
# noexec-tmp.sh COMMAND [ARGS...]: run COMMAND in a private mount namespace where /tmp is
# mounted noexec, as on hardened hosts, to prove that the tests never run a program from it.
# Nothing outside the namespace changes. Needs root.
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
    [ $# -ge 1 ] || { echo "usage: noexec-tmp.sh COMMAND [ARGS...]" >&2; exit 2; }
    exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift
mountpoint -q /tmp || mount -n --bind /tmp /tmp
mount -n -o remount,bind,noexec,nosuid,nodev /tmp
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
