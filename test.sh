#!/bin/sh
# Install dependencies, build, and run every test suite.
set -eu
cd "$(dirname "$0")"
# Test-only tools: man page lint, promtool and the Prometheus text parser, strace,
# zsh (completion tests), python3 and pip (the Python client).
scripts/deps.sh mandoc prometheus python3-prometheus-client strace zsh python3 python3-pip
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build
meson test -C build --print-errorlogs "$@"
