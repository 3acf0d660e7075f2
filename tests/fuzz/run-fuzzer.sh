#!/usr/bin/env bash
# Run a libFuzzer binary for a bounded time on a scratch copy of its seed corpus.
# Usage: run-fuzzer.sh FUZZER SEED_DIR SECONDS
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d /tmp/rma-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work/"
# A crash or leak makes libFuzzer exit non-zero and print the reproducer.
# Not under set -e: a failing fuzzer must still get its reproducer printed below.
set +e
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work" 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
        [ -e "$a" ] && { echo "reproducer $a:"; base64 "$a"; }
    done
fi
exit "$status"
