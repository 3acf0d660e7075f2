# The start every end-to-end test shares: the TAP and broker helpers, the private
# libvirtd sandbox, root (or a TAP skip saying why), the commands the test needs (or one
# failing TAP line naming them), its test dir, and the default cleanup (the sandbox, the
# broker, the private bus, the test dir), which a test with more to stop replaces.
#   . "$(dirname "$0")/e2e.sh"
#   e2e_begin NAME "WHY ROOT" [COMMAND...]
# shellcheck shell=bash

HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
. "$HERE/../lib/tap.sh"
. "$HERE/../lib/broker.sh"
. "$HERE/libvirt-sandbox.sh"

e2e_cleanup() {
    sandbox_stop
    stop_broker
    stop_private_bus
    rm -rf "$TEST_DIR"
}

# e2e_begin NAME WHY [COMMAND...]: WHY ends "needs root to ...".
e2e_begin() {
    local name=$1 why=$2
    shift 2
    if [ "$(id -u)" -ne 0 ]; then
        echo "1..0 # SKIP needs root to $why"
        exit 0
    fi
    [ $# -eq 0 ] || require_commands "$@"
    make_test_dir "$name"
    trap e2e_cleanup EXIT
}

# check_hook_calls_quiet: libvirtd logged no error for a hook call the hook's front ends
# without reading the domain XML on its stdin (start, started, stopped: libvirt may
# meet a closed pipe there), and nothing of a broken pipe at all. A hook's refusal at
# prepare is a logged error, and the test's own business.
check_hook_calls_quiet() {
    local bad
    bad=$(grep -E ': error : ' "$SANDBOX/log/libvirtd.log" |
        grep -E 'Broken pipe|EPIPE|50-rma-broker [^ ]+ (start|started|stopped) ' | head -3)
    check_eq "libvirtd logged no error for the hook calls its front ends at once" "" "$bad"
}
