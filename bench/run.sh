#!/bin/sh
# bench/run.sh - build corral (release) and run every benchmark in sequence.
# Results ("BENCH ..." and "RATIO ..." lines) go to stdout, progress to stderr.
#   bench/run.sh [BUILDDIR]        default: build-bench in the source tree
#   MESON_ARGS="..." bench/run.sh  extra arguments for `meson setup`
#   BENCHES="bench-ring ..."       run only these (default: all)
#   WORKLOAD_N=100 bench/run.sh    fewer requests in bench-workload (default 1000)
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$src/build-bench"}

# The build deps, and the programs bench-workload runs (not needed by the tests).
"$src/scripts/deps.sh" gzip jq imagemagick bubblewrap >&2
# runit for bench-lifecycle's `sv status` baseline, without its recommends: runit-run
# would start a system-wide runsvdir (a systemd unit or an inittab line).
DEPS_NO_RECOMMENDS=1 "$src/scripts/deps.sh" runit >&2

if [ ! -f "$build/build.ninja" ]; then
	# shellcheck disable=SC2086 # MESON_ARGS is a list of words
	meson setup "$build" "$src" --buildtype=release ${MESON_ARGS:-} >&2
fi
ninja -C "$build" >&2

status=0
for b in ${BENCHES:-bench-ring bench-lifecycle bench-call bench-hostile bench-workload}; do
	echo "== $b" >&2
	"$build/bench/$b" || { echo "$b failed (exit $?)" >&2; status=1; }
done
exit $status
