# Start and stop a private dbus-daemon and the built rma-brokerd for a test.
# Nothing here touches the host's bus or /run/rma-broker: everything lives in $TEST_DIR.
# shellcheck shell=bash

: "${BUILD_DIR:?BUILD_DIR must point at the meson build directory}"
: "${SOURCE_DIR:?SOURCE_DIR must point at the source tree}"

BROKERD=$BUILD_DIR/daemon/rma-brokerd
TEST_CLIENT=$BUILD_DIR/tests/rma-test-client
BUS_PID=
BROKER_PID=
FIFOS=()

. "$(dirname "${BASH_SOURCE[0]}")/exec-tmpdir.sh"
. "$(dirname "${BASH_SOURCE[0]}")/process-id.sh"

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

# make_test_dir NAME: a private 0755 directory in $TEST_DIR (under /tmp, or wherever
# exec_tmpdir says programs may run), holding copies of the binaries that unprivileged
# users run (the source tree may sit below a 0700 directory such as /root, out of their
# reach).
make_test_dir() {
    reap_stale_test_dirs
    TEST_DIR=$(mktemp -d "$(exec_tmpdir)/rma-$1.XXXXXX")
    proc_id $$ >"$TEST_DIR/.owner"
    TEST_ROOT=$TEST_DIR   # TEST_DIR may move below it (tools/demo-openstack.sh: one per node)
    chmod 0755 "$TEST_DIR"
    mkdir -p "$TEST_DIR/bin"
    install -m 0755 "$TEST_CLIENT" "$TEST_DIR/bin/"
    TEST_CLIENT=$TEST_DIR/bin/$(basename "$TEST_CLIENT")
}

# reap_stale_test_dirs: a test killed at its timeout (meson: SIGKILL to its process group)
# leaves its test dir and the private bus, which daemonized out of that group. Remove those
# of every test whose shell is gone; the ones of running tests are left alone.
reap_stale_test_dirs() {
    local dir owner pid
    for dir in "$(exec_tmpdir)"/rma-*.* /tmp/rma-*.*; do
        [ -s "$dir/.owner" ] || continue
        owner=$(cat "$dir/.owner")
        [ "$(proc_id "${owner%% *}")" = "$owner" ] && continue
        if [ -f "$dir/.pids" ]; then
            while read -r pid; do
                [ "$(proc_id "${pid%% *}")" = "$pid" ] && kill -9 "${pid%% *}" 2>/dev/null
            done <"$dir/.pids"
        fi
        echo "# removed $dir, left behind by pid ${owner%% *}, which is gone" >&2
        rm -rf --one-file-system "$dir"
    done
    return 0
}

# The host's pool of 2 MiB huge pages, whatever its default huge page size.
HUGEPAGES_2M=/sys/kernel/mm/hugepages/hugepages-2048kB
# lock_hugepages: hold the host's 2 MiB huge page count for this test until it exits, so
# that two runs of the suite on one host never change it under each other (a Count=auto
# check counts free pages). A flock on the sysfs file itself: nothing is left behind.
lock_hugepages() {
    exec {HUGEPAGES_LOCK_FD}<"$HUGEPAGES_2M/nr_hugepages"
    flock -w 600 "$HUGEPAGES_LOCK_FD"
}
# set_free_hugepages N: make exactly N 2 MiB pages free, whatever the host had free
# before (compacting memory first, so that a small VM finds them contiguous).
set_free_hugepages() {
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
    echo $(($(cat "$HUGEPAGES_2M/nr_hugepages") - $(cat "$HUGEPAGES_2M/free_hugepages") + $1)) \
        >"$HUGEPAGES_2M/nr_hugepages"
    [ "$(cat "$HUGEPAGES_2M/free_hugepages")" -eq "$1" ]
}

# live_regions [INODE...]: how many distinct live regions root (the broker) created, seen
# in the fds or mappings of this test's processes (their environment names this test's
# broker.sock, so another run on the host does not count), together with the INODEs the
# test knows are in flight (an fd in flight shows in no /proc; one may also be in sight,
# in the broker: it counts once). For the restart invariant: never more than the pool.
live_regions() {
    python3 - "RMA_BROKER_SOCKET=$TEST_DIR/run/broker.sock" "$@" <<'PY'
import os, re, sys
mark = sys.argv[1].encode() + b"\0"
seen = set(int(i) for i in sys.argv[2:] if i)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if mark not in open(f"/proc/{pid}/environ", "rb").read():
            continue
    except OSError:
        continue
    for sub in ("fd", "map_files"):
        d = f"/proc/{pid}/{sub}"
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                if not re.match(r"/memfd:rma-broker-slot-\d+ \(deleted\)$", os.readlink(f"{d}/{n}")):
                    continue
                st = os.stat(f"{d}/{n}")
            except OSError:
                continue
            if st.st_uid == 0:
                seen.add(st.st_ino)   # one shmem mount: the inode alone names a memfd
print(len(seen))
PY
}

# A bus configured like Debian's system bus (deny by default), plus our real policy.
# BUS_INCLUDES: more bus configuration files for it (an array; e.g. polkit's).
start_private_bus() {
    cat >"$TEST_DIR/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$TEST_DIR/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>$SOURCE_DIR/units/org.rmabroker.Broker1.conf</include>
$(for inc in ${BUS_INCLUDES[@]+"${BUS_INCLUDES[@]}"}; do echo "  <include>$inc</include>"; done)
</busconfig>
CONF
    BUS_PID=$(dbus-daemon --config-file="$TEST_DIR/bus.conf" --fork --print-pid)
    # It left the test's process group: recorded for reap_stale_test_dirs.
    proc_id "$BUS_PID" >>"${TEST_ROOT:-$TEST_DIR}/.pids"
    export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$TEST_DIR/system_bus_socket
    wait_until 5 test -S "$TEST_DIR/system_bus_socket"
}

# bus_call METHOD [SIGNATURE ARGS...]: a method of the broker on the (private) system bus.
bus_call() { busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 "$@"; }
# kill9_broker: the broker killed as a crash kills it, and reaped.
kill9_broker() { kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=; }
# log_has TEXT: the broker's log says it.
log_has() { grep -q -- "$1" "$TEST_DIR/broker.log"; }

# start_broker ARGS...: run rma-brokerd on $TEST_DIR/run and wait for the bus name.
# BROKER_WRAP (an array, optional): a command that runs the broker, e.g. the fake
# POWER kernel; BROKER_PID is then that command's pid (it passes signals on).
start_broker() {
    local fd close_fifos=""
    # The broker must not hold the test's fifos open (as_nobody_fifo).
    for fd in ${FIFOS[@]+"${FIFOS[@]}"}; do close_fifos+=" $fd>&-"; done
    eval '${BROKER_WRAP[@]+"${BROKER_WRAP[@]}"} "$BROKERD" --runtime-dir="$TEST_DIR/run" \
        --libvirt-status-dir="${LIBVIRT_STATUS_DIR:-$TEST_DIR/libvirt-qemu}" "$@" \
        >>"$TEST_DIR/broker.log" 2>&1 '"$close_fifos"' &'
    BROKER_PID=$!
    export RMA_BROKER_SOCKET=$TEST_DIR/run/broker.sock
    wait_until 10 busctl --system status org.rmabroker.Broker1 >/dev/null 2>&1
}

# libvirt_status NAME UUID PID: the status XML libvirtd writes (as root) for a running QEMU
# domain, /run/libvirt/qemu/NAME.xml, in the dir start_broker names (LIBVIRT_STATUS_DIR,
# else $TEST_DIR/libvirt-qemu): the test stands in for libvirtd where the claimant is the
# test client, not a QEMU that libvirt started (the e2e suites use libvirt's own).
libvirt_status() {
    local dir=${LIBVIRT_STATUS_DIR:-$TEST_DIR/libvirt-qemu}
    mkdir -p "$dir"
    printf "<domstatus state='running' reason='booted' pid='%s'>\n  <domain type='qemu' id='1'>\n    <name>%s</name>\n    <uuid>%s</uuid>\n  </domain>\n</domstatus>\n" \
        "$3" "$1" "$2" >"$dir/$1.xml"
}
# hook_record UUID DOMAIN TENANT: what the hook writes (as root) when it reserves for a
# domain it opted in, as client/rma-client.c's rma_domain_record_write().
hook_record() {
    mkdir -p "$TEST_DIR/run/domains"
    printf 'uuid=%s\ndomain=%s\ntenant=%s\n' "$1" "$2" "$3" >"$TEST_DIR/run/domains/$1"
}

# stop_broker: SIGTERM and wait; returns the broker's exit status (non-zero also when a
# sanitizer found something at exit).
stop_broker() {
    local status=0
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || status=$?
        BROKER_PID=
    fi
    return $status
}

broker_alive() { [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; }

stop_private_bus() {
    if [ -n "$BUS_PID" ]; then
        kill "$BUS_PID" 2>/dev/null || true
        BUS_PID=
    fi
}

# prop NAME: a broker property as busctl prints its value.
prop() {
    busctl --system get-property org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 "$1" | cut -d' ' -f2-
}

# leases: the broker's leases as ListRmas shows them, one "SLOT "leased" UUID DOMAIN
# TENANT PID" per line, sorted (for comparing before and after a restart).
leases() {
    busctl --system call org.rmabroker.Broker1 /org/rmabroker/Broker1 org.rmabroker.Broker1 ListRmas |
        grep -oE '[0-9]+ "leased" "[0-9a-f-]+" "[^"]*" "[^"]*" [0-9]+' | sort
}

# check_blue_over_socket MEMBER OTHER HELD FRESH: tenant blue delegated to MEMBER's group
# by a polkit rule (integration-polkit, the package's polkit-scenario.sh), over broker.sock,
# where polkit sees the process: OTHER may not reserve, MEMBER releases blue's reservation
# of uuid HELD and reserves one for domain blue-FRESH, OTHER may not release that, MEMBER
# may. The caller defines as WHO CMD... and uuid N.
check_blue_over_socket() {
    local member=$1 other=$2 held=$3 fresh=$4
    check_match "$other may not reserve for blue over broker.sock" "may not call Reserve for tenant blue" \
        "$(as "$other" timeout 30 "$TEST_CLIENT" reserve "$(uuid "$fresh")" "blue-$fresh" 2>&1)"
    check_eq "$member releases blue's reservation over broker.sock (polkit sees the process)" "released" \
        "$(as "$member" timeout 30 "$TEST_CLIENT" release "$(uuid "$held")" 2>&1)"
    check_match "$member reserves for blue over broker.sock" "^reserved [0-9]" \
        "$(as "$member" timeout 30 "$TEST_CLIENT" reserve "$(uuid "$fresh")" "blue-$fresh" 2>&1)"
    check_match "$other may not release it" "may not call Release for tenant blue" \
        "$(as "$other" timeout 30 "$TEST_CLIENT" release "$(uuid "$fresh")" 2>&1)"
    check_eq "$member releases it over broker.sock" "released" \
        "$(as "$member" timeout 30 "$TEST_CLIENT" release "$(uuid "$fresh")" 2>&1)"
}

# prop_is NAME VALUE: for polling with wait_until.
prop_is() { [ "$(prop "$1")" = "$2" ]; }

# install_libvirt_plugin: the wrapper and the hook, each a front and its full program
# (docs/architecture.md), in $TEST_DIR/bin, where the QEMU user can run them. Sets
# PLUGIN_ENV to the variables that make the fronts exec those copies of the full programs
# instead of the installed ones (libvirt passes no environment: a shim sets them).
install_libvirt_plugin() {
    local f
    for f in qemu-rma qemu-rma-claim rma-broker-hook rma-broker-hook-front; do
        install -m 0755 "$BUILD_DIR/libvirt-plugin/$f" "$TEST_DIR/bin/"
    done
    PLUGIN_ENV="RMA_QEMU_CLAIM=$TEST_DIR/bin/qemu-rma-claim RMA_BROKER_HOOK=$TEST_DIR/bin/rma-broker-hook"
}

# write_libvirt_shims SOCKET: the hook and the qemu-rma wrapper in $TEST_DIR/bin, each
# behind a one-line shim that names SOCKET (libvirt gives the hook and QEMU no environment
# of ours; installed for real they use /run/rma-broker/broker.sock as they are). Sets
# WRAPPER to the wrapper's shim, for <emulator>; the hook's shim is $TEST_DIR/bin/50-rma-broker.
write_libvirt_shims() {
    install_libvirt_plugin
    install -m 0755 "$BUILD_DIR/libvirt-plugin/librma-qemu-fd.so" "$TEST_DIR/bin/"
    printf '#!/bin/sh\nRMA_BROKER_SOCKET=%s RMA_QEMU_BINARY=%s RMA_QEMU_PRELOAD=%s %s exec %s "$@"\n' "$1" \
        "$(command -v qemu-system-ppc64)" "$TEST_DIR/bin/librma-qemu-fd.so" "$PLUGIN_ENV" "$TEST_DIR/bin/qemu-rma" \
        >"$TEST_DIR/bin/qemu-rma-shim"
    printf '#!/bin/sh\nRMA_BROKER_SOCKET=%s %s exec %s "$@"\n' "$1" "$PLUGIN_ENV" "$TEST_DIR/bin/rma-broker-hook-front" \
        >"$TEST_DIR/bin/50-rma-broker"
    chmod 0755 "$TEST_DIR/bin/qemu-rma-shim" "$TEST_DIR/bin/50-rma-broker"
    WRAPPER=$TEST_DIR/bin/qemu-rma-shim
}

# as_nobody_fifo NAME ARGS...: the test client as nobody, its stdin a fifo that this
# script holds open until close_fifo NAME (EOF tells the client to let go), its output in
# $TEST_DIR/NAME.out. Sets CLIENT_PID. close_all_fifos belongs in the cleanup trap.
as_nobody_fifo() {
    local name=$1 fifo=$TEST_DIR/$1.fifo fd close_others=""; shift
    mkfifo "$fifo"; chmod 0666 "$fifo"
    # The child must not inherit the other fifos' write ends, or their EOF never comes.
    for fd in "${FIFOS[@]}"; do close_others+=" $fd>&-"; done
    eval 'setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TEST_CLIENT" "$@" \
        <"$fifo" >"$TEST_DIR/$name.out" 2>&1 '"$close_others"' &'
    CLIENT_PID=$!
    exec {fd}>"$fifo"
    FIFOS+=("$fd")
    eval "FIFO_$name=$fd"
}
close_fifo() { local var="FIFO_$1"; eval "exec ${!var}>&-"; }
close_all_fifos() { local fd; for fd in "${FIFOS[@]}"; do eval "exec $fd>&-" 2>/dev/null || true; done; }
