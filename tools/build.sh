#!/usr/bin/env bash
# Configure (once) and build into ./build; extra meson options may follow.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
    meson setup build "$@"
fi
ninja -C build
