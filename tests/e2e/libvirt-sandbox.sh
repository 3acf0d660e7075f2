# shellcheck shell=bash
#
# libvirt-sandbox.sh - run a PRIVATE, ISOLATED libvirtd for end-to-end tests.
#
# Source this file (bash >= 4.4, root, util-linux unshare/setsid, python3 for
# the reaper - see "Processes" below), then:
#
#     trap sandbox_stop EXIT           # always clean up (sandbox_stop is idempotent;
#                                      # bash also runs EXIT traps on SIGTERM/SIGINT)
#     sandbox_start [HOOK_SCRIPT...]   # start a private libvirtd; returns when virsh answers
#     sandbox_domain_xml NAME UUID EMULATOR CELL0_MIB > "$SANDBOX/NAME.xml"
#     sandbox_virsh define "$SANDBOX/NAME.xml"
#     sandbox_virsh start NAME
#     ...
#     sandbox_stop
#
# How it is isolated
# ------------------
# libvirtd (and virtlogd, if asked for) run inside `unshare --mount
# --propagation private [--net]`.  In that private mount namespace five
# directories of a fresh temp dir $SANDBOX are bind-mounted over
#
#     $SANDBOX/etc   -> /etc/libvirt        (our own minimal config + hooks)
#     $SANDBOX/run   -> /run/libvirt        (sockets, domain status, pid files)
#     $SANDBOX/lib   -> /var/lib/libvirt    (domain-N-NAME dirs, monitor sockets)
#     $SANDBOX/cache -> /var/cache/libvirt  (QEMU capabilities cache)
#     $SANDBOX/log   -> /var/log/libvirt    (libvirtd.log, qemu/NAME.log)
#
# so the daemon neither sees nor touches a host libvirtd's files and the host
# never sees these mounts (they die with the last process of the namespace).
# Clients outside connect through the socket in the temp dir:
#
#     qemu:///system?socket=$SANDBOX/run/libvirt-sock      (= $SANDBOX_URI)
#
# /etc/libvirt is NOT a copy of the host's: copying it would import the host's
# persistent domains, networks and pools together with their autostart links
# (a second QEMU on the same disk images!).  We write libvirtd.conf and
# qemu.conf ourselves; libvirtd creates every other directory it needs, with
# the right owners (e.g. /var/lib/libvirt/qemu as libvirt-qemu), by itself.
#
# By default libvirtd also gets a private network namespace (SANDBOX_NETNS=1):
# the network/nwfilter drivers then cannot add bridges or firewall rules to
# the host.  Filesystem (path) UNIX sockets work across network namespaces, so
# virsh and any /run/dbus socket keep working.
#
# Processes
# ---------
# libvirtd is started in the foreground below a small detached reaper
# (python3: PR_SET_CHILD_SUBREAPER + wait loop) in its own session.  So:
#   * the daemons are no children of the test shell: a bare `wait` in a test
#     does not hang, and Ctrl-C on the terminal does not reach them;
#   * libvirt double-forks QEMU; the orphaned QEMU is re-parented to the
#     reaper, which reaps it at once.  With PID 1 as the reaper (as with
#     `libvirtd -d`) this was slow on the CI machines, whose PID 1 is no real
#     init: `virsh destroy` took 1.6 s instead of 0.23 s, `virsh define` of a
#     new emulator 1.5 s instead of 0.35 s (libvirt waits for the zombie);
#   * inherited file descriptors are closed (a `| tee` of the test ends).
# All processes of a sandbox - including QEMU, which libvirt puts into a
# mount namespace of its own - are found by the sandbox's /run/libvirt bind
# mount in /proc/PID/mountinfo (sandbox_pids); sandbox_stop kills whatever
# is left there after shutting libvirtd down.
#
# What the host can still see while a sandbox runs (all removed by
# sandbox_stop):
#   * the libvirtd / QEMU processes themselves;
#   * cgroups: libvirt places domains in /machine/qemu-ID-NAME.libvirt-qemu of
#     each controller; libvirt removes the domain groups on destroy and
#     sandbox_stop removes /machine if it did not exist before;
#   * a mount point directory (e.g. /var/cache/libvirt) that did not exist on
#     the host is created empty, and removed again if it is still empty and no
#     other namespace mounts on it. /run is a tmpfs of the sandbox's own: no
#     /run/libvirt appears on the host, and libvirtd cannot reach the host's
#     system bus (no systemd-machined registration: the same cgroup layout,
#     machine/qemu-ID-NAME.libvirt-qemu, on every host);
#   * with concurrent sandboxes (same SANDBOX_TMPDIR), a sandbox that cannot
#     remove /machine or a mount point because another sandbox still uses it
#     hands that job to the other sandbox.
#   (`mount -n` is used: plain `mount` creates /run/mount/ on the host.)
#   Only the mtime of the parent of a created mount point (/run) changes.
#   Domain IDs restart at 1 in every libvirtd: use domain names that cannot
#   collide with a host libvirtd's, or their cgroup names collide.
#
# Settings (environment, read by sandbox_start):
#   SANDBOX_TMPDIR          parent of the temp dir   (default: exec_tmpdir: $TMPDIR or /tmp,
#                           or /var/tmp where that is noexec)
#   SANDBOX_HOOKS           extra hook scripts, space separated, installed like
#                           the arguments of sandbox_start      (default: none)
#   SANDBOX_NETNS           1: private network namespace       (default: 1)
#   SANDBOX_LIBVIRTD_CONF_EXTRA  lines appended to libvirtd.conf (e.g. a host_uuid, so
#                           that two sandboxes can migrate to each other)
#   SANDBOX_VIRTLOGD        1: start a private virtlogd and use stdio_handler
#                           "logd"; 0: stdio_handler "file"    (default: 0)
#   SANDBOX_SECURITY_DRIVER value of qemu.conf security_driver; "" = libvirt's
#                           default (auto-detect)              (default: none)
#   SANDBOX_QEMU_CONF_EXTRA extra lines appended to qemu.conf   (default: none)
#   SANDBOX_BINDS           more bind mounts, "SRC:TARGET ..." (absolute paths), made
#                           like the five above: a TARGET under /run in the sandbox's own
#                           tmpfs, another one an empty mount point on the host if need be
#                           (e.g. the bench's broker dir as /run/rma-broker: what an
#                           installed host has, so nothing must name it)  (default: none)
#   SANDBOX_LOG_LEVEL       libvirtd log level 1-4 for $SANDBOX/log/libvirtd.log
#                                                               (default: 3)
#   SANDBOX_START_TIMEOUT   seconds to wait for virsh to answer (default: 60)
#
# Files: $SANDBOX/log/libvirtd.log (daemon log), $SANDBOX/log/qemu/NAME.log
# (QEMU's stderr and command line), $SANDBOX/run/qemu/NAME.xml (live status),
# $SANDBOX/etc/qemu/NAME.xml (persistent definition).  Hooks run inside the
# sandbox: for them /var/log/libvirt is $SANDBOX/log, and so on.
#
# Variables set by sandbox_start (read-only for callers):
#   SANDBOX        the temp dir (mode 0711 so that libvirt-qemu can reach
#                  files a test puts in it, e.g. an emulator wrapper)
#   SANDBOX_URI    libvirt URI of the private daemon
#
# Functions:
#   sandbox_start [HOOK...]        see above; installs each HOOK file as
#                                  /etc/libvirt/hooks/qemu.d/<basename> before
#                                  libvirtd starts (libvirt only looks for hooks
#                                  at start and on SIGHUP)
#   sandbox_install_hook FILE [NAME]  install a hook later; sends SIGHUP and
#                                  waits until the running libvirtd re-detected
#                                  its hooks (via our own daemon hook, which
#                                  logs to $SANDBOX/log/daemon-hook.log)
#   sandbox_virsh ARGS...          `virsh -q` against the private daemon
#   sandbox_qemu_pid NAME          host PID of a running domain's QEMU
#   sandbox_domain_log NAME        path of the domain's QEMU log file
#   sandbox_libvirtd_pid           PID of the private libvirtd
#   sandbox_pids                   PIDs of every process still inside the sandbox
#   sandbox_domain_xml NAME UUID EMULATOR CELL0_MIB [CELL1_MIB]
#                                  print a 2-cell ppc64 pseries TCG domain
#   sandbox_domain_xml NAME UUID EMULATOR MEMORY_MIB flat
#                                  the same without NUMA cells (as virt-install
#                                  and Nova write them)
#   sandbox_dtb_memory NAME        the memory@ nodes of the device tree QEMU gives
#                                  the guest (HMP dumpdtb), one "memory@ADDR START
#                                  SIZE NODE" line each (hex)
#   sandbox_reap_stale             stop the sandboxes of shells that died without
#                                  stopping them (a test killed at its timeout);
#                                  sandbox_start runs it first
#   sandbox_stop [--force]         destroy+undefine all domains, stop daemons,
#                                  kill leftovers, remove everything; idempotent,
#                                  safe from an EXIT trap, always returns 0;
#                                  does nothing in a process that merely
#                                  inherited $SANDBOX (unless --force)
#
# All functions are safe under `set -euo pipefail`: they report errors on
# stderr and return non-zero instead of exiting.

# Guard against double sourcing.
if [[ -n "${_SANDBOX_LIB_LOADED:-}" ]]; then
	return 0
fi
_SANDBOX_LIB_LOADED=1
# shellcheck source=../lib/exec-tmpdir.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/exec-tmpdir.sh"
# shellcheck source=../lib/process-id.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/process-id.sh"

SANDBOX="${SANDBOX:-}"
SANDBOX_URI="${SANDBOX_URI:-}"

# Sandboxes of every run on the host hold this lock shared while they run; the
# self-test, which compares the whole host before and after, holds it exclusive
# (and sets SANDBOX_HOST_LOCK_HELD=1 so that its own sandboxes start). A flock on
# libvirtd's binary: there on every host that runs a sandbox, nothing left behind.
_SANDBOX_HOST_LOCK=/usr/sbin/libvirtd
_SANDBOX_LOCKS=0
_sandbox_lock_host() {
	[[ -n "${SANDBOX_HOST_LOCK_HELD:-}" ]] && return 0
	if ((_SANDBOX_LOCKS == 0)); then
		exec {_SANDBOX_LOCK_FD}<"$_SANDBOX_HOST_LOCK" || return 1
		flock -s -w 300 "$_SANDBOX_LOCK_FD" || _sandbox_log "sandbox_start: the self-test of another run held the host for 300 s; starting anyway"
	fi
	_SANDBOX_LOCKS=$((_SANDBOX_LOCKS + 1))
}
_sandbox_unlock_host() {
	[[ -n "${SANDBOX_HOST_LOCK_HELD:-}" ]] && return 0
	((_SANDBOX_LOCKS > 0)) || return 0
	_SANDBOX_LOCKS=$((_SANDBOX_LOCKS - 1))
	if ((_SANDBOX_LOCKS == 0)); then
		exec {_SANDBOX_LOCK_FD}<&-
	fi
}

# Mount points shadowed inside the sandbox's mount namespace, and the
# sub-directory of $SANDBOX that is bind-mounted over each.
_SANDBOX_MOUNTS=(
	"etc:/etc/libvirt"
	"run:/run/libvirt"
	"lib:/var/lib/libvirt"
	"cache:/var/cache/libvirt"
	"log:/var/log/libvirt"
)

# The sandbox's reaper ("init"), run as python3 -c CODE PIDFILE CMD...:
# becomes a child subreaper, closes inherited fds (so that e.g. a `| tee` of
# the test never waits for the daemons), runs CMD and reaps every process
# that is re-parented to it until none is left; then it exits.
_SANDBOX_REAPER_PY='
import ctypes, os, signal, sys
PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.closerange(3, 65536)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % os.getpid())
if os.fork() == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
'

_sandbox_log() {
	printf 'libvirt-sandbox: %s\n' "$*" >&2
}

# Milliseconds since the epoch (bash >= 5 has EPOCHREALTIME; no bc needed).
_sandbox_ms() {
	if [[ -n "${EPOCHREALTIME:-}" ]]; then
		local t=${EPOCHREALTIME/[.,]/}
		printf '%s\n' "$((10#$t / 1000))"
	else
		date +%s%3N
	fi
}

# _sandbox_is_ours DIR: does DIR look like a directory made by sandbox_start?
# (Belt and braces before rm -rf.)
_sandbox_is_ours() {
	[[ -n "$1" && "$1" == /*/rma-sandbox.* && -f "$1/.rma-sandbox" ]]
}

# Host PIDs of all processes whose mount table contains our /run/libvirt bind
# mount: libvirtd, virtlogd, hooks, QEMU (libvirt gives each QEMU its own
# mount namespace, but it is a copy of libvirtd's and keeps the bind mount).
sandbox_pids() {
	local tag f pid
	[[ -n "$SANDBOX" && -s "$SANDBOX/.mounttag" ]] || return 0
	tag=$(<"$SANDBOX/.mounttag")
	for f in /proc/[0-9]*/mountinfo; do
		pid=${f#/proc/}
		pid=${pid%/mountinfo}
		[[ "$pid" == "$BASHPID" ]] && continue
		if grep -qF -- "$tag" "$f" 2>/dev/null; then
			printf '%s\n' "$pid"
		fi
	done
}

# sandbox_reap_stale: stop every sandbox whose owning shell is gone without stopping it
# (meson's SIGKILL at a test's timeout reaches the test's process group, not the
# sandbox's daemons, which run in a session of their own): its domains, daemons and
# leftover processes, cgroups, mount points and temp dir, as sandbox_stop does. Sandboxes
# of running tests are left alone. sandbox_start calls it.
sandbox_reap_stale() {
	local base other owner
	for base in "${SANDBOX_TMPDIR:-}" "${TMPDIR:-/tmp}" /tmp /var/tmp; do
		[[ -n "$base" && -d "$base" ]] || continue
		for other in "$base"/rma-sandbox.*; do
			[[ "$other" != "${SANDBOX:-}" && -s "$other/.owner" ]] && _sandbox_is_ours "$other" || continue
			owner=$(<"$other/.owner")
			[[ "$(proc_id "${owner%% *}")" == "$owner" ]] && continue
			_sandbox_log "sandbox_reap_stale: $other was left behind by pid ${owner%% *}, which is gone; stopping it"
			(
				SANDBOX=$other SANDBOX_URI="qemu:///system?socket=$other/run/libvirt-sock"
				SANDBOX_HOST_LOCK_HELD=1 sandbox_stop --force
			)
		done
	done
	return 0
}

# _sandbox_alive PID: PID exists and is not a zombie.
_sandbox_alive() {
	[[ -n "$1" ]] && kill -0 "$1" 2>/dev/null &&
		[[ "$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" != Z ]]
}

sandbox_libvirtd_pid() {
	[[ -n "$SANDBOX" && -s "$SANDBOX/libvirtd.pid" ]] || return 1
	local pid
	pid=$(<"$SANDBOX/libvirtd.pid")
	_sandbox_alive "$pid" || return 1
	printf '%s\n' "$pid"
}

sandbox_virsh() {
	if [[ -z "$SANDBOX_URI" ]]; then
		_sandbox_log "sandbox_virsh: no sandbox running"
		return 1
	fi
	virsh -q -c "$SANDBOX_URI" "$@"
}

# QEMU writes the file as its own user, in its own mount namespace: the domain's
# libvirt directory (the sandbox's /var/lib/libvirt/qemu) is one it can write and the
# sandbox can read.
sandbox_dtb_memory() {
	local name="${1:-}" file
	[[ -n "$SANDBOX" && -n "$name" ]] || return 1
	file="/var/lib/libvirt/qemu/rma-dtb-$name.dtb"
	rm -f "$SANDBOX/lib/qemu/rma-dtb-$name.dtb"
	sandbox_virsh qemu-monitor-command --hmp "$name" "dumpdtb $file" >/dev/null || return 1
	python3 "$(dirname "${BASH_SOURCE[0]}")/../helpers/dtb-memory.py" "$SANDBOX/lib/qemu/rma-dtb-$name.dtb"
	rm -f "$SANDBOX/lib/qemu/rma-dtb-$name.dtb"
}

# libvirt writes the QEMU pid to /run/libvirt/qemu/NAME.pid, i.e. here.
# No PID namespace is used, so it is a host PID.
sandbox_qemu_pid() {
	local f="$SANDBOX/run/qemu/${1:-}.pid" pid
	[[ -n "$SANDBOX" && -n "${1:-}" && -s "$f" ]] || return 1
	pid=$(<"$f")
	kill -0 "$pid" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# sandbox_xp DOMAIN ADDRESS: two words of guest physical memory at ADDRESS, as QEMU's
# monitor prints them ("0c000000: 0x... 0x...").
sandbox_xp() {
	sandbox_virsh qemu-monitor-command --hmp "$1" "xp /2xw $(printf '0x%x' "$2")" 2>&1 | tr -d '\r'
}

sandbox_domain_log() {
	[[ -n "$SANDBOX" && -n "${1:-}" ]] || return 1
	printf '%s\n' "$SANDBOX/log/qemu/$1.log"
}

# sandbox_install_hook FILE [NAME]: copy FILE to hooks/qemu.d/NAME (default:
# basename of FILE).  If libvirtd already runs, SIGHUP makes it re-detect
# hooks (measured: no restart needed).
sandbox_install_hook() {
	local src="${1:-}" name="${2:-}" pid
	[[ -n "$name" ]] || name=$(basename -- "${src:-none}")
	if [[ -z "$SANDBOX" || ! -d "$SANDBOX/etc/hooks/qemu.d" ]]; then
		_sandbox_log "sandbox_install_hook: no sandbox"
		return 1
	fi
	if [[ ! -f "$src" ]]; then
		_sandbox_log "sandbox_install_hook: no such file: $src"
		return 1
	fi
	install -m 0755 -- "$src" "$SANDBOX/etc/hooks/qemu.d/$name" || return 1
	if pid=$(sandbox_libvirtd_pid); then
		# SIGHUP is handled in a thread that first re-detects the hooks
		# and then runs the daemon hook with "- reload begin SIGHUP"; our
		# daemon hook (see _sandbox_write_config) logs that, so seeing one
		# more "reload" line means the new hook is known.
		local log="$SANDBOX/log/daemon-hook.log" before=0 now i
		[[ -f "$log" ]] && before=$(grep -c ' reload ' "$log" || true)
		kill -HUP "$pid" || return 1
		for ((i = 0; i < 100; i++)); do
			now=$(grep -c ' reload ' "$log" 2>/dev/null || true)
			if ((${now:-0} > before)); then
				return 0
			fi
			sleep 0.1
		done
		_sandbox_log "sandbox_install_hook: libvirtd did not reload within 10 s"
		return 1
	fi
}

_sandbox_write_config() {
	local d="$1" sec="${SANDBOX_SECURITY_DRIVER-none}"
	mkdir -p "$d/etc/hooks/qemu.d" || return 1
	# Root-only UNIX socket, no polkit (there is no system bus here; root is
	# exempt from polkit anyway).
	cat >"$d/etc/libvirtd.conf" <<-EOF || return 1
		# written by libvirt-sandbox.sh
		unix_sock_group = "root"
		unix_sock_ro_perms = "0700"
		unix_sock_rw_perms = "0700"
		unix_sock_admin_perms = "0700"
		auth_unix_ro = "none"
		auth_unix_rw = "none"
		log_outputs = "${SANDBOX_LOG_LEVEL:-3}:file:/var/log/libvirt/libvirtd.log"
		${SANDBOX_LIBVIRTD_CONF_EXTRA:-}
	EOF
	{
		echo '# written by libvirt-sandbox.sh'
		if [[ "${SANDBOX_VIRTLOGD:-0}" == 1 ]]; then
			echo 'stdio_handler = "logd"'
		else
			# Without virtlogd libvirtd writes /var/log/libvirt/qemu/NAME.log
			# itself; with the default "logd" it needs a virtlogd.
			echo 'stdio_handler = "file"'
		fi
		# DAC (QEMU as libvirt-qemu, chown of its files) is always active for
		# the system daemon; this only disables AppArmor/SELinux, which would
		# write profiles to the host's /etc/apparmor.d and load them into
		# the kernel.  On the Debian 12 CI machines neither is available, so
		# libvirt's auto-detection yields the same result ("none" + "dac").
		if [[ -n "$sec" ]]; then
			printf 'security_driver = "%s"\n' "$sec"
		fi
		if [[ -n "${SANDBOX_QEMU_CONF_EXTRA:-}" ]]; then
			printf '%s\n' "$SANDBOX_QEMU_CONF_EXTRA"
		fi
	} >"$d/etc/qemu.conf" || return 1
	cat >"$d/etc/virtlogd.conf" <<-'EOF' || return 1
		# written by libvirt-sandbox.sh
		log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
	EOF
	# The client config is read by virsh from the *host's* /etc/libvirt;
	# inside the sandbox it only needs to exist.
	: >"$d/etc/libvirt.conf" || return 1
	# Daemon hook: libvirtd runs it with "- start - start" at start,
	# "- reload begin SIGHUP" after re-detecting hooks on SIGHUP and
	# "- shutdown - shutdown"; sandbox_install_hook waits for the reload line.
	cat >"$d/etc/hooks/daemon" <<-'EOF' || return 1
		#!/bin/sh
		echo "$(date +%s.%N) $*" >>/var/log/libvirt/daemon-hook.log
		exit 0
	EOF
	chmod 0755 "$d/etc/hooks/daemon"
	chmod 0600 "$d/etc/qemu.conf" "$d/etc/libvirtd.conf"
}

# sandbox_start [HOOK...]
sandbox_start() {
	local d m target hook pid i ready=0 t0 dev_root
	local -a hooks=() unshare_args=()

	if [[ "$(id -u)" != 0 ]]; then
		_sandbox_log "sandbox_start: must run as root"
		return 1
	fi
	if [[ -n "$SANDBOX" && -d "$SANDBOX" ]]; then
		_sandbox_log "sandbox_start: sandbox $SANDBOX already running"
		return 1
	fi
	for hook in ${SANDBOX_HOOKS:-} "$@"; do
		if [[ ! -f "$hook" ]]; then
			_sandbox_log "sandbox_start: no such hook file: $hook"
			return 1
		fi
		hooks+=("$hook")
	done
	t0=$(_sandbox_ms)
	sandbox_reap_stale

	d=$(mktemp -d "${SANDBOX_TMPDIR:-$(exec_tmpdir)}/rma-sandbox.XXXXXX") || return 1
	SANDBOX="$d"
	_sandbox_lock_host
	SANDBOX_URI="qemu:///system?socket=$d/run/libvirt-sock"
	export SANDBOX SANDBOX_URI
	_SANDBOX_OWNER=$$
	: >"$d/.rma-sandbox"
	# Who owns it, for sandbox_reap_stale: this shell's pid and start time (a pid alone
	# may be reused).
	proc_id $$ >"$d/.owner"
	# libvirt-qemu must be able to traverse into the sandbox (emulator
	# wrappers, logs a test places here); nothing here is secret.
	chmod 0711 "$d"

	# Everything below must be undone by sandbox_stop, which reads this file.
	{
		# cgroup controllers in which /machine did not exist yet
		for m in /sys/fs/cgroup /sys/fs/cgroup/*; do
			if [[ -e "$m/cgroup.procs" && ! -d "$m/machine" ]]; then
				printf 'cgroup %s/machine\n' "$m"
			fi
		done
	} >"$d/.undo"

	# Every bind as SRC:TARGET: the five of the sandbox's own dir, then the caller's.
	local -a binds=()
	for m in "${_SANDBOX_MOUNTS[@]}"; do
		mkdir -p "$d/${m%%:*}"
		binds+=("$d/$m")
	done
	# shellcheck disable=SC2206  # space separated, as documented
	binds+=(${SANDBOX_BINDS:-})
	for m in "${binds[@]}"; do
		target=${m#*:}
		# Under /run the mount point is made in the sandbox's own tmpfs.
		if [[ "$target" != /run/* && ! -d "$target" ]]; then
			# A bind mount needs an existing mount point; make an empty one
			# on the host and remember to remove it.
			mkdir -p "$target" || { sandbox_stop --force; return 1; }
			printf 'mountpoint %s\n' "$target" >>"$d/.undo"
		fi
	done
	_sandbox_write_config "$d" || { sandbox_stop --force; return 1; }
	for hook in "${hooks[@]}"; do
		install -m 0755 -- "$hook" "$d/etc/hooks/qemu.d/$(basename -- "$hook")" ||
			{ sandbox_stop --force; return 1; }
	done

	unshare_args=(--mount --propagation private)
	if [[ "${SANDBOX_NETNS:-1}" == 1 ]]; then
		unshare_args+=(--net)
	fi
	# The inner script runs in the new namespaces: bind the dirs, then
	# start the daemons in the foreground.  `mount -n`: without it libmount
	# creates /run/mount/ (utab) on the host's /run (measured).
	#
	# The daemons get a clean environment, as under systemd: nothing of the
	# test's (PATH, DBUS_SYSTEM_BUS_ADDRESS of a private test bus, LD_*...)
	# leaks into libvirtd, and through it into hooks and QEMU. SANDBOX_PATH_PREFIX
	# (a directory) goes first on libvirtd's PATH, as a systemd drop-in would put it.
	#
	# Process tree: a detached reaper (see _SANDBOX_REAPER_PY; a subshell
	# whose child is re-parented to PID 1, so it is no child of the caller and
	# a bare `wait` in a test cannot hang on it) runs the chain
	# setsid -> unshare -> sh -> libvirtd.  libvirt double-forks QEMU, so each
	# QEMU is re-parented to the reaper, which reaps it at once.  Without it
	# PID 1 reaps, and on the CI machines (PID 1 is not an init) that takes
	# long enough that every `virsh destroy` waited ~1.6 s for the zombie.
	local -a reaper=()
	if [[ -x /usr/bin/python3 ]]; then
		reaper=(/usr/bin/python3 -c "$_SANDBOX_REAPER_PY" "$d/init.pid")
	elif command -v python3 >/dev/null 2>&1; then
		reaper=(python3 -c "$_SANDBOX_REAPER_PY" "$d/init.pid")
	else
		_sandbox_log "sandbox_start: no python3; zombies are left to PID 1"
	fi
	# shellcheck disable=SC2016  # expanded by the inner shell
	(
		setsid env -i PATH=${SANDBOX_PATH_PREFIX:+$SANDBOX_PATH_PREFIX:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			LC_ALL=C HOME=/root \
			"${reaper[@]}" unshare "${unshare_args[@]}" -- /bin/sh -euc '
			d=$1; logd=$2; shift 2
			cd /
			mount -n -t tmpfs -o mode=0755,nosuid,nodev,size=16m rma-sandbox-run /run
			mkdir -p /run/lock
			# A copy of libvirtd: no AppArmor profile attaches to it by path, so
			# the test hooks and wrappers under /tmp may run (the Debian profile
			# of /usr/sbin/libvirtd does not let it execute from /tmp).
			cp /usr/sbin/libvirtd "$d/libvirtd"
			for m in "$@"; do
				case ${m#*:} in /run/*) mkdir -p "${m#*:}" ;; esac
				mount -n --bind "${m%%:*}" "${m#*:}"
			done
			if [ "$logd" = 1 ]; then
				virtlogd --pid-file "$d/virtlogd.pid" --config /etc/libvirt/virtlogd.conf &
				"$d/libvirtd" --pid-file "$d/libvirtd.pid" --config /etc/libvirt/libvirtd.conf &
				wait
			else
				exec "$d/libvirtd" --pid-file "$d/libvirtd.pid" --config /etc/libvirt/libvirtd.conf
			fi
		' sandbox-init "$d" "${SANDBOX_VIRTLOGD:-0}" "${binds[@]}" \
			</dev/null >"$d/daemon.out" 2>&1 &
	)

	# Wait until libvirtd answers (and virtlogd's socket exists).  Do not use
	# `virsh version`: it fails ("Cannot find suitable emulator for x86_64").
	for ((i = 0; i < ${SANDBOX_START_TIMEOUT:-60} * 10; i++)); do
		if ((i > 20)) && ! pid=$(sandbox_libvirtd_pid); then
			_sandbox_log "sandbox_start: libvirtd is not running"
			break
		fi
		if pid=$(sandbox_libvirtd_pid); then
			if [[ ! -s "$d/.mounttag" ]]; then
				# "DEV ROOT MOUNTPOINT" of our /run/libvirt bind mount, as in
				# /proc/PID/mountinfo: identifies processes of this sandbox.
				dev_root=$(awk '$5 == "/run/libvirt" { print $3, $4, $5; exit }' \
					"/proc/$pid/mountinfo" 2>/dev/null) || true
				if [[ -n "$dev_root" ]]; then
					printf '%s\n' "$dev_root" >"$d/.mounttag"
				fi
			fi
			if [[ -s "$d/.mounttag" ]] &&
				{ [[ "${SANDBOX_VIRTLOGD:-0}" != 1 ]] || [[ -S "$d/run/virtlogd-sock" ]]; } &&
				virsh -q -c "$SANDBOX_URI" uri >/dev/null 2>&1; then
				ready=1
				break
			fi
		fi
		sleep 0.1
	done
	if [[ $ready != 1 ]]; then
		_sandbox_log "sandbox_start: libvirtd did not come up; output and log:"
		cat "$d/daemon.out" >&2 || true
		tail -n 30 "$d/log/libvirtd.log" >&2 2>/dev/null || true
		sandbox_stop --force
		return 1
	fi
	# The bind mounts must not have leaked into our own namespace.
	if grep -qF -- "$(<"$d/.mounttag")" /proc/self/mountinfo; then
		_sandbox_log "sandbox_start: sandbox mounts visible on the host!"
		sandbox_stop --force
		return 1
	fi
	_sandbox_log "started $d (libvirtd pid $pid) in $(($(_sandbox_ms) - t0)) ms"
}

# _sandbox_kill_wait SIG TIMEOUT_DS PID...: send SIG, wait up to TIMEOUT_DS
# tenths of a second for all PIDs to be gone.  Returns 1 if some remain.
_sandbox_kill_wait() {
	local sig="$1" t="$2" pid i alive
	shift 2
	[[ $# -gt 0 ]] || return 0
	kill "-$sig" "$@" 2>/dev/null || true
	for ((i = 0; i <= t; i++)); do
		alive=0
		for pid in "$@"; do
			# A zombie still answers kill -0; treat it as gone.
			if _sandbox_alive "$pid"; then
				alive=1
				break
			fi
		done
		[[ $alive == 0 ]] && return 0
		sleep 0.1
	done
	return 1
}

# sandbox_stop [--force]: tear everything down.  Only the shell that ran
# sandbox_start does so unless --force is given.  Idempotent; never fails
# (so that it is harmless in an EXIT trap under set -e); problems are
# reported on stderr.
sandbox_stop() {
	local d="$SANDBOX" dom pid kind path t0 n other
	local -a doms=() pids=() daemons=() cgroups=() undo=()
	[[ -n "$d" ]] || return 0
	# SANDBOX and SANDBOX_URI are exported so that helper scripts can use the
	# sandbox; such a script's own EXIT trap must not tear it down.
	if [[ "${1:-}" != --force && "${_SANDBOX_OWNER:-}" != "$$" ]]; then
		_sandbox_log "sandbox_stop: $d was not started by this shell; not stopping it (--force to override)"
		return 0
	fi
	if ! _sandbox_is_ours "$d"; then
		[[ -e "$d" ]] && _sandbox_log "sandbox_stop: refusing to touch $d"
		SANDBOX="" SANDBOX_URI=""
		return 0
	fi
	t0=$(_sandbox_ms)

	# 1. Domains: the polite way, through libvirtd.
	if sandbox_libvirtd_pid >/dev/null; then
		mapfile -t doms < <(timeout 20 virsh -q -c "$SANDBOX_URI" list --all --name 2>/dev/null || true)
		for dom in "${doms[@]}"; do
			[[ -n "$dom" ]] || continue
			timeout 20 virsh -q -c "$SANDBOX_URI" destroy "$dom" >/dev/null 2>&1 || true
			timeout 20 virsh -q -c "$SANDBOX_URI" undefine "$dom" >/dev/null 2>&1 ||
				_sandbox_log "sandbox_stop: undefine $dom failed"
		done
	fi

	# 2. Daemons.
	for pid in "$d/libvirtd.pid" "$d/virtlogd.pid"; do
		if [[ -s "$pid" ]] && _sandbox_alive "$(<"$pid")"; then
			daemons+=("$(<"$pid")")
		fi
	done
	# Remember the cgroups of processes that libvirt did not clean up (QEMU
	# of a domain that could not be destroyed), to remove them afterwards.
	mapfile -t pids < <(sandbox_pids)
	for pid in "${pids[@]}"; do
		while IFS= read -r path; do
			path=${path#*:*:}
			# /machine/qemu-ID-NAME.libvirt-qemu[/emulator|/vcpuN]: keep the
			# domain's group (first two components).
			if [[ "$path" =~ ^(/machine/[^/]+) ]]; then
				cgroups+=("${BASH_REMATCH[1]}")
			fi
		done <"/proc/$pid/cgroup" 2>/dev/null || true
	done
	if ! _sandbox_kill_wait TERM 150 "${daemons[@]}"; then
		_sandbox_log "sandbox_stop: daemons ignored SIGTERM, killing"
		_sandbox_kill_wait KILL 50 "${daemons[@]}" || true
	fi

	# 3. Anything still alive in the namespace (QEMU, hooks, helpers).
	mapfile -t pids < <(sandbox_pids)
	if [[ ${#pids[@]} -gt 0 ]]; then
		_sandbox_log "sandbox_stop: killing leftover processes: ${pids[*]}"
		_sandbox_kill_wait TERM 50 "${pids[@]}" || _sandbox_kill_wait KILL 50 "${pids[@]}" || true
		mapfile -t pids < <(sandbox_pids)
		[[ ${#pids[@]} -eq 0 ]] ||
			_sandbox_log "sandbox_stop: processes survived SIGKILL: ${pids[*]}"
	fi

	# The reaper exits once every process below it is gone and reaped.
	if [[ -s "$d/init.pid" ]] && ! _sandbox_kill_wait 0 50 "$(<"$d/init.pid")"; then
		_sandbox_log "sandbox_stop: reaper $(<"$d/init.pid") still running"
	fi

	# 4. Leftover domain cgroups (deepest first), then /machine if we made it.
	#    rmdir only succeeds on empty groups, so nothing in use is removed.
	for path in "${cgroups[@]}"; do
		for kind in /sys/fs/cgroup /sys/fs/cgroup/*; do
			[[ -e "$kind/cgroup.procs" && -d "$kind$path" ]] || continue
			find "$kind$path" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
	done
	if [[ -f "$d/.undo" ]]; then
		while read -r kind path; do
			[[ -d "$path" ]] || continue
			case "$kind" in
			cgroup)
				rmdir "$path" 2>/dev/null || true
				;;
			mountpoint)
				# Remove the empty mount point we created, unless another
				# namespace (e.g. a second sandbox) still mounts on it.
				n=$(grep -lF -- " $path " /proc/[0-9]*/mountinfo 2>/dev/null | wc -l) || true
				if [[ "$n" == 0 ]]; then
					rmdir "$path" 2>/dev/null || true
				fi
				;;
			esac
			if [[ -d "$path" ]]; then
				undo+=("$kind $path")
			fi
		done <"$d/.undo"
	fi
	# What is still in use (by a concurrent sandbox: its domains are in
	# /machine, it mounts on /run/libvirt) is handed over to a running
	# sandbox next to ours, which retries when it stops.
	if [[ ${#undo[@]} -gt 0 ]]; then
		for other in "${d%/*}"/rma-sandbox.*; do
			if [[ "$other" != "$d" ]] && _sandbox_is_ours "$other" &&
				[[ -s "$other/libvirtd.pid" ]] && _sandbox_alive "$(<"$other/libvirtd.pid")"; then
				printf '%s\n' "${undo[@]}" >>"$other/.undo"
				undo=()
				break
			fi
		done
		if [[ ${#undo[@]} -gt 0 ]]; then
			_sandbox_log "sandbox_stop: could not remove: ${undo[*]}"
		fi
	fi

	# 5. The temp dir.  Our mounts are gone with the namespace; never
	#    cross into another file system just in case.
	rm -rf --one-file-system -- "$d" || _sandbox_log "sandbox_stop: could not remove $d"
	_sandbox_unlock_host
	SANDBOX="" SANDBOX_URI="" _SANDBOX_OWNER=""
	_sandbox_log "stopped $d in $(($(_sandbox_ms) - t0)) ms"
	return 0
}

# sandbox_domain_xml NAME UUID EMULATOR CELL0_MIB [CELL1_MIB]
#
# A ppc64 pseries TCG guest with 2 vCPUs and 2 NUMA cells (cell 0: CELL0_MIB
# MiB, cpu 0; cell 1: CELL1_MIB MiB, default 256, cpu 1; a cell needs a vCPU),
# no disks, network, graphics, USB or balloon, one pty console, and the
# rma-broker metadata element.  Cell sizes need not be multiples of 256 MiB
# (128, 300 and 512 MiB cell 0 start fine with QEMU 7.2).
sandbox_domain_xml() {
	local name="${1:-}" uuid="${2:-}" emulator="${3:-}" cell0="${4:-}" cell1="${5:-256}"
	if [[ $# -lt 4 ]]; then
		_sandbox_log "usage: sandbox_domain_xml NAME UUID EMULATOR CELL0_MIB [CELL1_MIB]"
		return 1
	fi
	if [[ ! "$name" =~ ^[A-Za-z0-9_.+-]+$ ]]; then
		_sandbox_log "sandbox_domain_xml: bad name: $name"
		return 1
	fi
	if [[ ! "$uuid" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; then
		_sandbox_log "sandbox_domain_xml: bad UUID: $uuid"
		return 1
	fi
	if [[ ! "$cell0" =~ ^[1-9][0-9]*$ || ! "$cell1" =~ ^([1-9][0-9]*|flat)$ ]]; then
		_sandbox_log "sandbox_domain_xml: cell sizes must be positive integers (MiB)"
		return 1
	fi
	if [[ "$emulator" != /* || "$emulator" == *[\<\>\&\'\"]* ]]; then
		_sandbox_log "sandbox_domain_xml: emulator must be an absolute path without XML specials"
		return 1
	fi
	local memory=$cell0 numa=
	if [[ "$cell1" != flat ]]; then
		memory=$((cell0 + cell1))
		numa="  <cpu>
    <numa>
      <cell id='0' cpus='0' memory='$cell0' unit='MiB'/>
      <cell id='1' cpus='1' memory='$cell1' unit='MiB'/>
    </numa>
  </cpu>"
	fi
	cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  <metadata>
    <rma:rma xmlns:rma="http://rmabroker.org/schemas/domain/1" tenant="e2e"/>
  </metadata>
  <memory unit='MiB'>$memory</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='ppc64' machine='pseries'>hvm</type>
  </os>
$numa
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$emulator</emulator>
    <controller type='usb' model='none'/>
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}
