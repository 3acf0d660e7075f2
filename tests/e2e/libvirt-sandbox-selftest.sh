#!/bin/bash
# Self-test of libvirt-sandbox.sh (run as root):
#
#     tests/e2e/libvirt-sandbox-selftest.sh [ROUNDS]
#
# Per round: start a sandbox with a logging hook, define and start a 2-cell
# pseries guest through a logging emulator wrapper, check the QEMU process
# (user, cgroup, ram-node0 argument), the HMP monitor, destroy, the hook
# calls, a hook added later (SIGHUP), then stop and check that the host
# (its libvirt dirs, mounts, processes, cgroups, /run, /tmp) is as before.
# Extra rounds exercise virtlogd, no network namespace and a crashed libvirtd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=libvirt-sandbox.sh
. "$here/libvirt-sandbox.sh"

rounds=${1:-2}
fail=0
# The host is compared before and after: no other run's sandbox may come or go
# meanwhile (they hold the lock shared while they run).
exec {host_lock}<"$_SANDBOX_HOST_LOCK"
flock -x -w 300 "$host_lock" || echo "# another run held its sandboxes for 300 s; comparing the host anyway"
export SANDBOX_HOST_LOCK_HELD=1
# Sandboxes of killed runs would otherwise vanish between "before" and "after".
sandbox_reap_stale
scratch=$(mktemp -d /tmp/rma-sandbox-selftest.XXXXXX)
trap 'sandbox_stop; rm -rf "$scratch"' EXIT

ok() { printf 'ok   %s\n' "$*"; }
bad() {
	printf 'FAIL %s\n' "$*"
	fail=1
}
check() { # check DESCRIPTION COMMAND...
	local what="$1"
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# not_in_file STRING FILE...: no FILE contains STRING (vanished files are ok).
# shellcheck disable=SC2317  # called through check()
not_in_file() {
	local s="$1"
	shift
	! grep -qsF -- "$s" "$@"
}

# What the host looks like, for before/after comparison.
host_state() {
	local d
	for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
		if [[ -e "$d" ]]; then
			find "$d" -xdev -printf '%p %M %u %g %s %T@\n' | sort
			find "$d" -xdev -type f -exec md5sum {} + | sort -k2
		else
			echo "absent $d"
		fi
	done
	echo "== /run"
	find /run -maxdepth 1 -printf '%p\n' | sort
	echo "== mounts"
	cut -d' ' -f4- /proc/self/mountinfo | sort
	echo "== cgroups"
	find /sys/fs/cgroup -maxdepth 3 -type d \( -name 'machine*' -o -name 'qemu-*' \) | sort
	echo "== processes"
	# shellcheck disable=SC2009  # want one sorted list of several names
	ps -eo stat=,comm= | grep -E ' (libvirtd|virtlogd|qemu-system)' | sort || true
}

cat >"$scratch/hook" <<'EOF'
#!/bin/sh
# Runs inside the sandbox: /var/log/libvirt is $SANDBOX/log.
echo "$(basename "$0") $*" >>/var/log/libvirt/hook.log
cat >/dev/null
EOF
cp "$scratch/hook" "$scratch/late-hook"

one_round() {
	local r="$1" name uuid pid t0 t1 out log cg
	name="rmae2e-selftest-$$-$r"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	host_state >"$scratch/before"

	t0=$(_sandbox_ms)
	sandbox_start "$scratch/hook"
	t1=$(_sandbox_ms)
	echo "# round $r: SANDBOX=$SANDBOX NETNS=${SANDBOX_NETNS:-1} VIRTLOGD=${SANDBOX_VIRTLOGD:-0}: start $((t1 - t0)) ms"
	check "host does not see the sandbox mounts" \
		not_in_file "$(<"$SANDBOX/.mounttag")" /proc/self/mountinfo
	check "private /etc/libvirt holds the hook" \
		test -x "$SANDBOX/etc/hooks/qemu.d/hook"
	if [[ -n "${SANDBOX_BINDS:-}" ]]; then
		check "SANDBOX_BINDS: libvirtd sees each source at its target" \
			test "$(nsenter -t "$(sandbox_libvirtd_pid)" -m cat "$bind_run/marker" "$bind_host/marker" | tr '\n' ' ')" = "run host "
		check "... the host does not" test ! -e "$bind_run" -a ! -e "$bind_host/marker"
	fi

	# Emulator wrapper: log argv (one per line) and cgroup, exec QEMU.
	cat >"$SANDBOX/wrap" <<-EOF
		#!/bin/sh
		{ echo "=== uid=\$(id -u) pid=\$\$"; printf '%s\n' "\$@"; cat /proc/self/cgroup; } >>"$SANDBOX/wrap.log"
		exec /usr/bin/qemu-system-ppc64 "\$@"
	EOF
	chmod 0755 "$SANDBOX/wrap"
	: >"$SANDBOX/wrap.log"
	chmod 0666 "$SANDBOX/wrap.log"

	sandbox_domain_xml "$name" "$uuid" "$SANDBOX/wrap" 512 >"$SANDBOX/dom.xml"
	sandbox_virsh define "$SANDBOX/dom.xml" >/dev/null
	t0=$(_sandbox_ms)
	sandbox_virsh start "$name" >/dev/null
	t1=$(_sandbox_ms)
	echo "# round $r: virsh start $((t1 - t0)) ms"
	check "domstate running" test "$(sandbox_virsh domstate "$name")" = running
	pid=$(sandbox_qemu_pid "$name")
	check "QEMU runs as libvirt-qemu (uid 64055)" \
		test "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" = "$(id -u libvirt-qemu)"
	cg=$(grep -E '^[0-9]+:(memory)?:' "/proc/$pid/cgroup" | head -n 1)
	echo "# round $r: QEMU cgroup: $cg"
	check "QEMU is in the domain's cgroup" \
		grep -q "machine/qemu-[0-9]*-$name.libvirt-qemu" "/proc/$pid/cgroup"
	out=$(tr '\0' '\n' <"/proc/$pid/cmdline" | grep -F '"id":"ram-node0"')
	echo "# round $r: $out"
	check "ram-node0 is a 512 MiB memory-backend-ram" \
		test "$out" = '{"qom-type":"memory-backend-ram","id":"ram-node0","size":536870912}'
	check "wrapper ran with -uuid as uid 64055" \
		grep -qx -- "$uuid" "$SANDBOX/wrap.log"
	check "metadata element kept" \
		grep -q 'rma:rma .*tenant=.e2e.' <<<"$(sandbox_virsh dumpxml "$name")"
	out=$(sandbox_virsh qemu-monitor-command --hmp "$name" 'xp /2xw 0x0c000000')
	check "HMP xp answers ($out)" grep -q '^000000000c000000:' <<<"$out"

	# A hook added while libvirtd runs is picked up after SIGHUP.
	sandbox_install_hook "$scratch/late-hook"
	t0=$(_sandbox_ms)
	sandbox_virsh destroy "$name" >/dev/null
	t1=$(_sandbox_ms)
	echo "# round $r: virsh destroy $((t1 - t0)) ms"
	check "domstate shut off" test "$(sandbox_virsh domstate "$name")" = "shut off"
	log="$SANDBOX/log/hook.log"
	check "hook: prepare/start/started/stopped/release" \
		test "$(grep '^hook ' "$log" | cut -d' ' -f2-)" = "$(printf '%s\n' \
			"$name prepare begin -" "$name start begin -" "$name started begin -" \
			"$name stopped end -" "$name release end -")"
	check "late hook called after SIGHUP" grep -qx "late-hook $name release end -" "$log"
	if [[ "${SANDBOX_VIRTLOGD:-0}" == 1 ]]; then
		check "virtlogd wrote the domain log" grep -q 'starting up' "$(sandbox_domain_log "$name")"
	fi

	# Leave a domain running (and, in the crash round, kill libvirtd -9):
	# sandbox_stop must clean up anyway.
	sandbox_virsh start "$name" >/dev/null
	if [[ "${CRASH:-0}" == 1 ]]; then
		kill -9 "$(sandbox_libvirtd_pid)"
		sleep 0.5
	fi
	local sb="$SANDBOX" tag
	tag=$(<"$SANDBOX/.mounttag")
	t0=$(_sandbox_ms)
	sandbox_stop
	t1=$(_sandbox_ms)
	echo "# round $r: stop $((t1 - t0)) ms"
	sandbox_stop # twice is fine
	check "temp dir removed" test ! -e "$sb"
	if [[ -n "${SANDBOX_BINDS:-}" ]]; then
		check "the mount point made on the host is removed" test ! -e "$bind_host"
	fi
	check "no process left in the sandbox" \
		not_in_file "$tag" /proc/[0-9]*/mountinfo
	host_state >"$scratch/after"
	if diff -u "$scratch/before" "$scratch/after"; then
		ok "host state unchanged"
	else
		bad "host state changed (see diff; other sandboxes running concurrently also show up)"
	fi
}

for ((r = 1; r <= rounds; r++)); do
	one_round "$r"
done
SANDBOX_VIRTLOGD=1 one_round virtlogd
SANDBOX_NETNS=0 one_round nonetns
# Extra bind mounts: one under /run (in the sandbox's own tmpfs), one whose mount point
# does not exist on the host.
bind_run=/run/rma-selftest-$$ bind_host=/opt/rma-selftest-$$
mkdir -p "$scratch/bind-run" "$scratch/bind-host"
echo run >"$scratch/bind-run/marker"
echo host >"$scratch/bind-host/marker"
SANDBOX_BINDS="$scratch/bind-run:$bind_run $scratch/bind-host:$bind_host" one_round binds
CRASH=1 one_round crash

# A test killed at its timeout (meson: SIGKILL to its process group) leaves its sandbox
# running; the next sandbox_start (here: sandbox_reap_stale) finds and removes it.
host_state >"$scratch/before"
bash -c '. "$1"; sandbox_start >/dev/null 2>&1 || exit 1
	sandbox_domain_xml "rmae2e-orphan-$$" "$(cat /proc/sys/kernel/random/uuid)" /usr/bin/qemu-system-ppc64 256 >"$SANDBOX/dom.xml"
	sandbox_virsh define "$SANDBOX/dom.xml" >/dev/null && sandbox_virsh start "rmae2e-orphan-$$" >/dev/null || exit 1
	echo "$SANDBOX $(<"$SANDBOX/.mounttag")" >"$2"; kill -9 $$' _ "$here/libvirt-sandbox.sh" "$scratch/orphan" || true
read -r orphan orphan_tag <"$scratch/orphan"
check "a killed test's sandbox is left running (libvirtd, QEMU)" test -n "$(SANDBOX=$orphan sandbox_pids)"
sandbox_reap_stale 2>/dev/null
check "sandbox_reap_stale removes its temp dir" test ! -e "$orphan"
check "... and every process in it" not_in_file "$orphan_tag" /proc/[0-9]*/mountinfo
host_state >"$scratch/after"
if diff -u "$scratch/before" "$scratch/after"; then
	ok "host state unchanged after the reap"
else
	bad "host state changed after the reap"
fi

# A bare `wait` in a test must not wait for the sandbox's daemons (run
# the self-test under `timeout` to catch a hang).
sandbox_start
wait
ok "bare wait returned while a sandbox runs"
# A helper script inherits SANDBOX; its own sandbox_stop must not stop ours.
bash -c '. "$1"; sandbox_stop' _ "$here/libvirt-sandbox.sh" 2>/dev/null
check "a child's sandbox_stop leaves the sandbox running" eval "sandbox_virsh uri >/dev/null"
sandbox_stop

if [[ $fail == 0 ]]; then
	echo "# ALL OK"
else
	echo "# SOME CHECKS FAILED"
fi
exit "$fail"
