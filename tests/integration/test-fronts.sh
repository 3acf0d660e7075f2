#!/usr/bin/env bash
# Integration: the fronts that libvirt runs (qemu-rma, and the hook as qemu.d/50-rma-broker)
# link libc alone, pass what is not theirs through untouched (QEMU with libvirt's argv byte
# for byte, in the same process; the hook's ignored calls exit 0 at once), and hand
# everything else to the full wrapper and the full hook, argv, environment and stdin
# unchanged. The full programs are stand-ins here that record what reached them.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: only root's records in a domains/ of root's count"
    exit 0
fi

make_test_dir fronts
trap 'rm -rf "$TEST_DIR"' EXIT
install_libvirt_plugin
FRONT=$TEST_DIR/bin/qemu-rma
HOOK_FRONT=$TEST_DIR/bin/rma-broker-hook-front
OUT=$TEST_DIR/out
install -d -o nobody -m 0755 "$OUT"
mkdir -p "$TEST_DIR/run" "$TEST_DIR/emulators"
DOMAINS=$TEST_DIR/run/domains
ln -s "$FRONT" "$TEST_DIR/emulators/qemu-system-ppc64"
U=11111111-aaaa-4aaa-8aaa-0000000000f1

# Each stand-in writes who it was, its pid and its argv (NUL-separated) and its stdin.
for who in qemu claim hook; do
    printf '#!/bin/sh\necho %s >%s/who\necho $$ >%s/pid\nprintf "%%s\\0" "$@" >%s/argv\ncat >%s/stdin\n' \
        "$who" "$OUT" "$OUT" "$OUT" "$OUT" >"$TEST_DIR/bin/fake-$who"
    chmod 0755 "$TEST_DIR/bin/fake-$who"
done

for f in "$FRONT" "$HOOK_FRONT"; do
    needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    # A sanitized build (tools/run-tests.sh) adds its runtimes and what they need (gcc
    # links them statically, with libm and libgcc_s), never anything else.
    if grep -qE ' __(asan|ubsan)_' <<<"$(readelf -sW "$f")"; then
        needed=$(grep -Ev '^lib(asan|ubsan|m|gcc_s|dl|pthread|rt|stdc\+\+)\.so' <<<"$needed")
    fi
    needed=$(tr '\n' ' ' <<<"$needed")
    check_eq "$(basename "$f") links libc alone (ELF NEEDED)" "libc.so.6 " "$needed"
done

# wrapper AS ARGS...: the front as the QEMU user (nobody here), under the name AS (a link
# named like libvirt's default emulator, or qemu-rma itself), with a clean environment
# but the test's own broker path, QEMU and full wrapper. Sets STATUS; $OUT says who ran.
wrapper() {
    local as=$1; shift
    rm -f "$OUT"/*
    (cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- env -i PATH=/usr/bin:/bin \
        RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" RMA_QEMU_BINARY="$TEST_DIR/bin/fake-qemu" \
        RMA_QEMU_CLAIM="$TEST_DIR/bin/fake-claim" sh -c 'echo $$ >"$0/started"; exec "$@"' "$OUT" "$as" "$@" \
        </dev/null 2>"$TEST_DIR/stderr")
    STATUS=$?
    mv "$OUT/started" "$TEST_DIR/started" 2>/dev/null
}
ran() { cat "$OUT/who" 2>/dev/null; }

# What libvirt 9.0 gives QEMU, and arguments no shell or parser may bend: an empty one,
# spaces, a newline, a byte that is no UTF-8.
ARGS=(-name guest=plain,debug-threads=on -S -machine pseries,usb=off -m 1024
      -object '{"qom-type":"memory-backend-ram","id":"ppc_spapr.ram","size":1073741824}'
      -uuid "$U" '' 'two words' $'a\nb' $'\xff\xfe' -no-shutdown)

wrapper "$TEST_DIR/emulators/qemu-system-ppc64" "${ARGS[@]}"
check_eq "default emulator, no domains/ at all: the real QEMU runs" qemu "$(ran)"
check_eq "... in the process libvirt started (the same pid)" "$(cat "$TEST_DIR/started")" "$(cat "$OUT/pid" 2>/dev/null)"
cmp -s <(printf '%s\0' "${ARGS[@]}") "$OUT/argv"
check "... with libvirt's argv byte for byte" test $? -eq 0
check_eq "... and says nothing" "" "$(cat "$TEST_DIR/stderr")"

install -d -m 0755 "$DOMAINS"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" "${ARGS[@]}"
check_eq "default emulator, no record of the domain: the real QEMU runs" qemu "$(ran)"
cmp -s <(printf '%s\0' "${ARGS[@]}") "$OUT/argv"
check "... with libvirt's argv byte for byte" test $? -eq 0

wrapper "$FRONT" -machine none -qmp stdio
check_eq "a capability probe (no -uuid) as qemu-rma itself: the real QEMU runs" qemu "$(ran)"

install -m 0644 /dev/null "$DOMAINS/$U"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" "${ARGS[@]}"
check_eq "default emulator, the hook's record: the full wrapper runs" claim "$(ran)"
check_eq "... in the same process" "$(cat "$TEST_DIR/started")" "$(cat "$OUT/pid" 2>/dev/null)"
cmp -s <(printf '%s\0' "${ARGS[@]}") "$OUT/argv"
check "... with the same argv" test $? -eq 0
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid "${U^^}"
check_eq "... also for the uuid in capitals (libvirt's is lowercase; the full wrapper takes both)" claim "$(ran)"
rm -f "$DOMAINS/$U"

wrapper "$FRONT" "${ARGS[@]}"
check_eq "an explicit <emulator> qemu-rma with -uuid: the full wrapper runs" claim "$(ran)"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid not-a-uuid
check_eq "a -uuid that is no UUID: the full wrapper (which refuses it)" claim "$(ran)"

# What the full wrapper warns about or refuses is its own to say: the front passes it on.
install -o nobody -m 0644 /dev/null "$DOMAINS/$U"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid "$U"
check_eq "a record that is not root's: the full wrapper (it warns, then passes through)" claim "$(ran)"
rm -f "$DOMAINS/$U"
mkdir "$DOMAINS/$U"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid "$U"
check_eq "a directory at the record's path: the full wrapper" claim "$(ran)"
rmdir "$DOMAINS/$U"
chmod 1777 "$DOMAINS"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid "$U"
check_eq "a domains/ others can write: the full wrapper" claim "$(ran)"
rmdir "$DOMAINS"
ln -s /tmp "$DOMAINS"
wrapper "$TEST_DIR/emulators/qemu-system-ppc64" -uuid "$U"
check_eq "a symlink as domains/: the full wrapper" claim "$(ran)"
rm -f "$DOMAINS"

# The real full wrapper behind the front: the same words as before the front existed.
rm -f "$OUT"/*
(cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- env -i PATH=/usr/bin:/bin \
    RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" RMA_QEMU_CLAIM="$TEST_DIR/bin/qemu-rma-claim" \
    "$FRONT" -uuid bogus >/dev/null 2>"$TEST_DIR/stderr")
check_eq "the real full wrapper behind the front refuses a bad -uuid with its own message" \
    "qemu-rma: -uuid 'bogus' is not a UUID" "$(cat "$TEST_DIR/stderr")"
(cd / && exec env -i PATH=/usr/bin:/bin RMA_QEMU_CLAIM=/nonexistent/qemu-rma-claim "$FRONT" -uuid "$U" \
    2>"$TEST_DIR/stderr")
check_eq "no full wrapper: exit 127, as for a missing QEMU" 127 $?
check_eq "... saying which" "qemu-rma: cannot run /nonexistent/qemu-rma-claim: No such file or directory" \
    "$(cat "$TEST_DIR/stderr")"

# hook OP SUBOP [XML-FILE]: the hook's front as libvirtd runs it (root, a clean
# environment, the domain XML on stdin: $XML, or the file's bytes), with the test's
# domains/. Sets STATUS; $OUT says whether the full hook ran.
XML="<domain type='qemu'><name>front</name><uuid>$U</uuid></domain>"
RMA_META="<metadata><rma:rma xmlns:rma='http://rmabroker.org/schemas/domain/1'/></metadata>"
XML_RMA="<domain type='qemu'><name>front</name><uuid>$U</uuid>$RMA_META</domain>"
hook() {
    rm -f "$OUT"/*
    if [ $# -ge 3 ]; then cat "$3"; else printf '%s' "$XML"; fi |
        env -i LC_ALL=C PATH=/usr/bin:/bin HOME=/root RMA_BROKER_HOOK="$TEST_DIR/bin/fake-hook" \
        RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" "$HOOK_FRONT" front "$1" "$2" - 2>"$TEST_DIR/stderr"
    STATUS=${PIPESTATUS[1]}
}
for call in "start begin" "started begin" "stopped end" "migrate begin" "restore begin" "attach begin"; do
    hook $call
    check_eq "hook $call: exit 0 without the full hook" "0 " "$STATUS $(ran)"
done
printf '%s' "$XML_RMA" >"$TEST_DIR/rma.xml"
for call in "prepare begin" "release end" "reconnect begin"; do
    hook $call "$TEST_DIR/rma.xml"
    check_eq "hook $call: the full hook runs" hook "$(ran)"
    cmp -s <(printf '%s\0' front $call -) "$OUT/argv"
    check "... with libvirt's arguments" test $? -eq 0
    cmp -s "$TEST_DIR/rma.xml" "$OUT/stdin"
    check "... and the domain XML on its stdin, byte for byte" test $? -eq 0
done
hook release end
check_eq "hook release end of a domain that did not opt in: the full hook still runs" hook "$(ran)"

# prepare of a domain that did not opt in, with nothing at its record's path: the full
# hook would only find that out (hook-prepare.h). Every doubt goes to the full hook, with
# the XML libvirt wrote on its stdin byte for byte.
hook prepare begin
check_eq "prepare, not opted in, no domains/: exit 0 without the full hook" "0 " "$STATUS $(ran)"
install -d -m 0755 "$DOMAINS"
hook prepare begin
check_eq "prepare, not opted in, no record: exit 0 without the full hook" "0 " "$STATUS $(ran)"
check_eq "... and says nothing" "" "$(cat "$TEST_DIR/stderr")"
# prepare_reaches NAME XML: the full hook runs at prepare, with XML on stdin unchanged.
prepare_reaches() {
    printf '%s' "$2" >"$TEST_DIR/in.xml"
    hook prepare begin "$TEST_DIR/in.xml"
    check_eq "prepare, $1: the full hook runs" hook "$(ran)"
    cmp -s "$TEST_DIR/in.xml" "$OUT/stdin"
    check "... with the domain XML on its stdin, byte for byte" test $? -eq 0
}
prepare_reaches "the rma metadata" "$XML_RMA"
NOVA_META="<metadata><nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:flavor name='m1.rma'/></nova:instance></metadata>"
prepare_reaches "a Nova domain (its flavor may be opted in)" \
    "<domain type='kvm'><name>front</name><uuid>$U</uuid>$NOVA_META</domain>"
prepare_reaches "an <emulator> qemu-rma" \
    "<domain type='qemu'><name>front</name><uuid>$U</uuid><devices><emulator>/usr/bin/qemu-rma</emulator></devices></domain>"
prepare_reaches "a comment that GMarkup would join qemu-rma around" \
    "<domain type='qemu'><name>front</name><uuid>$U</uuid><devices><emulator>/usr/bin/qemu-<!-- -->rma</emulator></devices></domain>"
prepare_reaches "a character reference" \
    "<domain type='qemu'><name>front</name><uuid>$U</uuid><devices><emulator>/usr/bin/qemu&#45;rma</emulator></devices></domain>"
prepare_reaches "two <uuid> elements" "<domain type='qemu'><name>front</name><uuid>$U</uuid><uuid>$U</uuid></domain>"
prepare_reaches "no <uuid>" "<domain type='qemu'><name>front</name></domain>"
prepare_reaches "a <uuid> that is no uuid" "<domain type='qemu'><name>front</name><uuid>front</uuid></domain>"
# Bigger than a pipe's buffer and the front's first read: all of it reaches the full hook.
prepare_reaches "a 300 KiB XML with the rma metadata" \
    "<domain type='qemu'><name>front</name><uuid>$U</uuid><description>$(head -c 300000 /dev/zero | tr '\0' x)</description>$RMA_META</domain>"
install -m 0644 /dev/null "$DOMAINS/$U"
prepare_reaches "a stale record of the domain's" "$XML"
prepare_reaches "... with the <uuid> in capitals and spaces" \
    "<domain type='qemu'><name>front</name><uuid> ${U^^}
</uuid></domain>"
rm -f "$DOMAINS/$U"
mkdir "$DOMAINS/$U"
prepare_reaches "a directory at the record's path" "$XML"
rmdir "$DOMAINS/$U"
chmod 1777 "$DOMAINS"
prepare_reaches "a domains/ others can write" "$XML"
chmod 0755 "$DOMAINS"

# The real full hook behind the front removes the stale record, as before the front.
install -m 0644 /dev/null "$DOMAINS/$U"
printf '%s' "$XML" | env -i LC_ALL=C PATH=/usr/bin:/bin HOME=/root RMA_BROKER_HOOK="$TEST_DIR/bin/rma-broker-hook" \
    RMA_BROKER_SOCKET="$TEST_DIR/run/broker.sock" "$HOOK_FRONT" front prepare begin - 2>"$TEST_DIR/stderr"
check_eq "the real full hook behind the front: prepare succeeds" 0 "${PIPESTATUS[1]}"
check "... and removes the stale record of a domain that no longer opts in" test ! -e "$DOMAINS/$U"
rmdir "$DOMAINS"

rm -f "$OUT"/*
env -i RMA_BROKER_HOOK="$TEST_DIR/bin/fake-hook" "$HOOK_FRONT" too-few </dev/null
check_eq "too few arguments: the full hook (it prints its usage)" hook "$(ran)"

printf '%s' "$XML_RMA" | env -i RMA_BROKER_HOOK=/nonexistent/hook "$HOOK_FRONT" front prepare begin - 2>"$TEST_DIR/stderr"
check_eq "no full hook at prepare: the start fails (an opted-in domain must not start without its RMA)" 1 \
    "${PIPESTATUS[1]}"
check_eq "... saying why" "rma-broker: cannot run /nonexistent/hook: No such file or directory" "$(cat "$TEST_DIR/stderr")"
printf '%s' "$XML" | env -i RMA_BROKER_HOOK=/nonexistent/hook "$HOOK_FRONT" front reconnect begin - 2>/dev/null
check_eq "... but never fails a reconnect (libvirt would kill the guest)" 0 "${PIPESTATUS[1]}"

tap_done
