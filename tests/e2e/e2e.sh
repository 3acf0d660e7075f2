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
