#!/bin/sh
# systemd-analyze verify of the units, with ExecStart pointing at the built daemon.
set -eu
src=$1 build=$2 corrald=$3
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=.*|ExecStart=$corrald|" "$build/corrald.service" > "$dir/corrald.service"
cp "$src/corrald.socket" "$dir/corrald.socket"
# Documentation=man:... must name pages that exist: look them up in the tree's man/.
man=--man=no
if command -v man >/dev/null; then
	for page in "$src"/../man/*.[1-8]; do
		sec=${page##*.}
		mkdir -p "$dir/man/man$sec"
		cp "$page" "$dir/man/man$sec/"
	done
	export MANPATH="$dir/man"
	man=--man=yes
fi
out=$(systemd-analyze verify $man "$dir/corrald.service" "$dir/corrald.socket" 2>&1) || { echo "$out"; exit 1; }
# verify exits 0 on some warnings: treat any output about our units as failure
if printf '%s' "$out" | grep -q "corrald"; then echo "$out"; exit 1; fi
echo "units verified"
