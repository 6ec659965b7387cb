#!/bin/sh
# `meson install --destdir` puts the man pages, the example config, the
# dashboard and the units in place, every installed man page renders without
# a warning, and corrald runs from the installed tree, and from that tree
# moved to another prefix: it finds corral-worker relative to itself.
set -eu
build=$1
dest=$(mktemp -d /tmp/corral-install.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$dest"
}
trap cleanup EXIT
chmod 755 "$dest"
fail() {
	echo "FAIL: $*"
	exit 1
}

meson install -C "$build" --no-rebuild --quiet --destdir "$dest/root" >"$dest/install.log" 2>&1 ||
	{ cat "$dest/install.log"; fail "meson install --destdir"; }
eval "$(meson introspect "$build" --buildoptions | python3 -c '
import json, shlex, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
for k in ("prefix", "mandir", "datadir", "sbindir", "bindir"):
    print("%s=%s" % (k, shlex.quote(str(o[k]))))')"
root=$dest/root$prefix
case $mandir in /*) man=$dest/root$mandir ;; *) man=$root/$mandir ;; esac

for page in man1/corralctl.1 man3/corral-worker.3 man5/corral.json.5 man7/corral-protocol.7 \
	man8/corrald.8; do
	[ -f "$man/$page" ] || fail "$page not installed under $man"
	if command -v mandoc >/dev/null; then
		out=$(mandoc -T lint -W warning "$man/$page" 2>&1) || fail "mandoc -T lint $page: $out"
	fi
	if command -v man >/dev/null; then
		out=$(MANWIDTH=80 man --warnings -l "$man/$page" 2>&1 >/dev/null) || fail "man -l $page"
		[ -z "$out" ] || fail "man -l $page warns: $out"
	fi
done
for f in "$datadir/doc/corral/examples/corral.json" "$datadir/doc/corral/contrib/grafana-corral.json" \
	lib/systemd/system/corrald.service lib/systemd/system/corrald.socket lib/sysusers.d/corral.conf; do
	[ -f "$root/$f" ] || fail "$f not installed"
done
grep -q '^Documentation=man:corrald(8)' "$root/lib/systemd/system/corrald.service" ||
	fail "corrald.service: Documentation= does not name the man pages"
# The example names the group "corral", which the package creates (sysusers.d);
# this machine may lack it, and --check-config rightly refuses unknown groups.
ex="$root/$datadir/doc/corral/examples/corral.json"
if getent group corral >/dev/null; then cp "$ex" "$dest/example.json"; else
	sed "s/\"corral\"/\"$(id -gn)\"/g" "$ex" >"$dest/example.json"; fi
"$root/$sbindir/corrald" --check-config "$dest/example.json" >/dev/null ||
	fail "the installed example config does not pass --check-config"
"$root/$sbindir/corrald" --print-default-config >"$dest/default.json"
"$root/$sbindir/corrald" --check-config "$dest/default.json" >/dev/null ||
	fail "--print-default-config does not print a valid config"
grep -q '"sha256"' "$dest/default.json" || fail "--print-default-config lacks sha256"

# Run corrald from the tree at $1 (a prefix): a call is served by that tree's corral-worker.
run_from() {
	tree=$1
	unset CORRAL_WORKER
	printf '{"types": {"echo": {"builtin": "echo", "pool": {"min": 1}}}}\n' >"$dest/c.json"
	sock=$dest/ctl.sock
	rm -f "$sock"
	"$tree/$sbindir/corrald" --config "$dest/c.json" --socket "$sock" 2>"$dest/corrald.log" &
	pid=$!
	ctl="$tree/$bindir/corralctl --socket $sock"
	i=0
	until $ctl ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 500 ] || { cat "$dest/corrald.log"; fail "corrald in $tree does not answer"; }
		kill -0 "$pid" 2>/dev/null || { cat "$dest/corrald.log"; fail "corrald in $tree exited"; }
		sleep 0.02 # polls a socket that appears once; bounded above
	done
	out=$($ctl call echo installed) || { cat "$dest/corrald.log"; fail "call from $tree"; }
	[ "$out" = installed ] || fail "echo from $tree returned '$out'"
	# The worker runs the corral-worker of this tree, not one built in elsewhere.
	wpid=$($ctl --json list | python3 -c "import json,sys; print(json.load(sys.stdin)['workers'][0]['pid'])")
	if exe=$(readlink "/proc/$wpid/exe" 2>/dev/null); then
		case $exe in "$tree"/*) ;; *) fail "worker of $tree runs $exe" ;; esac
	fi
	$ctl shutdown >/dev/null
	wait "$pid" || fail "corrald in $tree exited with $?"
	pid=
}
run_from "$root"
# The same tree under another prefix.
mkdir -p "$dest/moved"
mv "$root" "$dest/moved/prefix"
run_from "$dest/moved/prefix"
echo "installed tree runs, in place and moved"
