# TAP helpers for the shell test suites: each check prints "ok N - what" or "not ok".
# shellcheck shell=bash

TAP_N=0
TAP_FAILED=0

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
diag() { sed 's/^/# /' <<<"$*"; }

# require_commands CMD...: a test whose prerequisites are missing fails, naming them. Not
# a skip: CI installs them (tools/install-deps.sh), so their absence is worth reporting.
require_commands() {
    local missing=() cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "not ok 1 - prerequisites: missing ${missing[*]}; run tools/install-deps.sh"
        echo "1..1"
        exit 1
    fi
}

# check "what" COMMAND...: passes when COMMAND exits 0.
check() {
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; diag "command failed: $*"; fi
}

# check_eq "what" EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "expected: $2"; diag "actual:   $3"; fi
}

# check_match "what" REGEX ACTUAL
check_match() {
    if [[ $3 =~ $2 ]]; then ok "$1"; else not_ok "$1"; diag "expected to match: $2"; diag "actual: $3"; fi
}

# wait_until SECONDS COMMAND...: poll until COMMAND succeeds.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.05
    done
}

tap_done() {
    echo "1..$TAP_N"
    [ "$TAP_FAILED" -eq 0 ]
}
