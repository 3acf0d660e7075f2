#!/usr/bin/env bash
# without-dev-kvm.sh COMMAND [ARGS...]: run COMMAND in a private mount namespace whose /dev
# is the host's without kvm, as on a host that has no KVM (or whose kvm module is not
# loaded). The kvm suites run this way as well as plainly, so a host with /dev/kvm proves
# that they never depend on it. Nothing outside the namespace changes: its mounts die with
# it. Needs root (unshare --mount).
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
    exec unshare --mount --propagation private -- "$0" --inside "$@"
fi
shift

if [ -e /dev/kvm ]; then
    old=$(mktemp -d /tmp/rma-host-dev.XXXXXX)
    mount --rbind /dev "$old"
    mount -t tmpfs -o mode=0755,nosuid,size=64k rma-dev-without-kvm /dev
    shopt -s dotglob nullglob
    for path in "$old"/*; do
        name=${path##*/}
        [ "$name" = kvm ] && continue
        if [ -L "$path" ]; then
            cp -P "$path" "/dev/$name"
        elif [ -d "$path" ]; then
            mkdir "/dev/$name"
            mount --rbind "$path" "/dev/$name"
        else
            touch "/dev/$name"
            mount --bind "$path" "/dev/$name"
        fi
    done
    umount --lazy "$old"
    rmdir "$old"
fi
if [ -e /dev/kvm ]; then
    echo "without-dev-kvm.sh: /dev/kvm is still there; not running $1" >&2
    exit 1
fi
exec "$@"
