#!/bin/sh
# Install dependencies, build, and run every test suite.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build
meson test -C build --print-errorlogs "$@"
