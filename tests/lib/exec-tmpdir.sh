# shellcheck shell=bash
# exec_tmpdir: the directory that the tests' scratch directories go under, which must let
# programs run from it (the tests' copies of binaries for unprivileged users, libvirt's
# emulator wrappers and hooks, the sandbox's libvirtd, a container's root): $TMPDIR or
# /tmp, unless that is mounted noexec, as on hardened hosts; then /var/tmp. Fails, saying
# what to do, when neither will do.
exec_tmpdir() {
    local d
    for d in "${TMPDIR:-/tmp}" /var/tmp; do
        [ -d "$d" ] || continue
        if ! findmnt -rn -o OPTIONS --target "$d" | tr , '\n' | grep -qx noexec; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    echo "exec_tmpdir: ${TMPDIR:-/tmp} and /var/tmp are mounted noexec; set TMPDIR to a directory that programs may run from" >&2
    return 1
}
