#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install dependencies, build,
# run unit, integration and end-to-end tests, print the summary. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/build.sh
status=0
meson test -C build --print-errorlogs "$@" || status=$?

# One plain summary line, counted from meson's own log (TAP subtests included).
python3 - build/meson-logs/testlog.json <<'PY' || true
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result")
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"Tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
