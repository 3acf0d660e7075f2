#!/usr/bin/env bash
# dev-kvm.sh --absent|--present COMMAND [ARGS...]: run COMMAND in a private mount namespace
# whose /dev is the host's without /dev/kvm (--absent: a host without KVM, or whose kvm
# module is not loaded) or with it (--present: a host with KVM). So the kvm suites run both
# ways on every host, whichever way the host itself is. Calls nest: `dev-kvm.sh --present
# dev-kvm.sh --absent CMD` runs CMD without /dev/kvm and, on a host without it, still runs
# the removal below.
#
# Where /dev already is as asked it is left alone. Otherwise it is rebuilt as devtmpfs and
# udev would have made it: a tmpfs with a mknod of every device node (not a bind mount of
# it: the kernel finds the devpts of /dev/ptmx by looking for "pts" beside the node, which
# a bind-mounted node does not have, and QEMU could not open a pty), the same symlinks,
# directories and modes, and every mount under /dev (pts, shm, hugepages, mqueue) bound as
# it is. Sockets, fifos and regular files are bound too, so that they stay live. An added
# /dev/kvm is the kernel's misc node 10:232, mode 0660, group kvm: where the kvm module is
# loaded it opens the real KVM, elsewhere its open fails with ENODEV as a node without its
# module does; tests/helpers/rma-fake-power-kernel answers for it either way.
#
# Nothing outside the namespace changes: its mounts die with it. Needs root.
set -euo pipefail

usage() {
    echo "usage: dev-kvm.sh --absent|--present COMMAND [ARGS...]" >&2
    exit 2
}
mode=${1:-}
case "$mode" in --absent | --present) ;; *) usage ;; esac
shift
if [ "${1:-}" != "--inside" ]; then
    [ $# -ge 1 ] || usage
    exec unshare --mount --propagation private -- "$0" "$mode" --inside "$@"
fi
shift

# copy_dev FROM TO: the entries of directory FROM, recreated in directory TO.
copy_dev() {
    local from=$1 to=$2 path name
    for path in "$from"/* "$from"/.[!.]*; do
        [ -e "$path" ] || [ -L "$path" ] || continue
        name=${path##*/}
        [ "$path" = /dev/kvm ] && continue
        if [ -L "$path" ]; then
            cp -P "$path" "$to/$name"
        elif mountpoint -q "$path"; then
            if [ -d "$path" ]; then
                mkdir "$to/$name"
                mount -n --rbind "$path" "$to/$name"
            else
                touch "$to/$name"
                mount -n --bind "$path" "$to/$name"
            fi
        elif [ -d "$path" ]; then
            mkdir "$to/$name"
            copy_dev "$path" "$to/$name"
            chmod --reference="$path" "$to/$name"
            chown --reference="$path" "$to/$name"
        elif [ -c "$path" ] || [ -b "$path" ]; then
            cp -a "$path" "$to/$name"
        else
            touch "$to/$name"
            mount -n --bind "$path" "$to/$name"
        fi
    done
}

want_present=0
[ "$mode" = --present ] && want_present=1
have_present=0
[ -e /dev/kvm ] && have_present=1
if [ "$want_present" != "$have_present" ]; then
    # Built aside, then moved over a /dev detached whole: a tmpfs stacked on the old /dev
    # would leave the old mounts in /proc/mounts, and libvirt, which moves every mount
    # listed under /dev into QEMU's namespace, would fail on the hidden ones (EINVAL).
    new=$(mktemp -d "${TMPDIR:-/tmp}/rma-host-dev.XXXXXX")
    mount -n -t tmpfs -o mode=0755,nosuid,size=1m rma-dev "$new"
    shopt -s nullglob
    copy_dev /dev "$new"
    if [ "$want_present" = 1 ]; then
        mknod -m 0660 "$new/kvm" c 10 232
        chgrp kvm "$new/kvm" 2>/dev/null || true
    fi
    umount -n --lazy /dev
    mount -n --move "$new" /dev
    rmdir "$new"
fi
if [ "$want_present" = 1 ] && [ ! -c /dev/kvm ]; then
    echo "dev-kvm.sh: could not add /dev/kvm; not running $1" >&2
    exit 1
fi
if [ "$want_present" = 0 ] && [ -e /dev/kvm ]; then
    echo "dev-kvm.sh: /dev/kvm is still there; not running $1" >&2
    exit 1
fi
exec "$@"
