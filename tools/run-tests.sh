#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine, as root: install dependencies,
# then
#   1. build with gcc and run every suite (unit, integration, e2e);
#   2. build with clang + AddressSanitizer + UndefinedBehaviorSanitizer and run the unit
#      and integration suites again, plus the policy fuzzer for RMA_FUZZ_SECONDS (60).
# Prints one summary line over both. Arguments go to the first `meson test`.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/build.sh
status=0
meson test -C build --print-errorlogs "$@" || status=$?

if [ ! -f build-san/build.ninja ]; then
    CC=clang meson setup build-san -Dfuzz=true -Dfuzz_seconds="${RMA_FUZZ_SECONDS:-60}" \
        -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-san
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-san --print-errorlogs --suite unit --suite integration --suite fuzz || status=$?

# One plain summary line, from meson's own logs (TAP subtests counted one by one).
python3 - build/meson-logs/testlog.json build-san/meson-logs/testlog.json <<'PY' || true
import json, re, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        t = json.loads(line)
        result = t.get("result")
        subtests = re.findall(r"^(ok|not ok)\b(.*)$", t.get("stdout") or "", re.M)
        if subtests:
            oks = sum(1 for s in subtests if s[0] == "ok")
            # "ok N - ... # SKIP why" proved nothing: counted as skipped, not passed.
            skips = sum(1 for s in subtests if s[0] == "ok" and re.search(r"#\s*skip", s[1], re.I))
            passed += oks - skips
            skipped += skips
            failed += len(subtests) - oks
            # A test that failed with no failing subtest (a crash after the last one) counts once.
            if result not in ("OK", "EXPECTEDFAIL", "SKIP") and oks == len(subtests):
                failed += 1
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"Tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
