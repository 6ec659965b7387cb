#!/bin/sh
# Install dependencies, build, and start corrald in the foreground on its
# embedded default (types echo and sha256).  Extra arguments go to corrald.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null
exec ./build/daemon/corrald "$@"
