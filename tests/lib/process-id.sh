# shellcheck shell=bash
# proc_id PID: "PID STARTTIME" (field 22 of /proc/PID/stat), which no later process shares;
# nothing (and status 1) when PID is gone. How the test helpers record who owns what, so
# that a later run can tell a dead owner's leftovers from a running test's.
proc_id() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086  # the fields after the command name
    set -- "$1" $stat
    echo "$1 ${21}"
}
