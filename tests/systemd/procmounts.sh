#!/bin/sh
# Workers start under the /proc that corrald.service gives the daemon: the
# unit's ProtectProc=, ProcSubset=, ProtectKernelTunables= and
# ProtectKernelLogs= are reproduced in a private mount namespace, and
# corrald runs there as an unprivileged user (the unit's User=), with the
# full sandbox.  Needs root for the mount namespace; skipped otherwise.
set -eu
unit=$1 corrald=$2 corralctl=$3
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
for t in unshare setpriv; do
	command -v $t >/dev/null || { echo "$t not installed: skipped"; exit 77; }
done
dir=$(mktemp -d /tmp/corral-procmounts.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
chown 65534:65534 "$dir"

opts=
grep -q '^ProtectProc=invisible' "$unit" && opts="hidepid=invisible"
grep -q '^ProtectProc=noaccess' "$unit" && opts="hidepid=noaccess"
grep -q '^ProtectProc=ptraceable' "$unit" && opts="hidepid=ptraceable"
grep -q '^ProcSubset=pid' "$unit" && opts="${opts:+$opts,}subset=pid"
setup="mount --make-rprivate /"
[ -n "$opts" ] && setup="$setup && mount -t proc -o $opts proc /proc"
if grep -q '^ProtectKernelTunables=yes' "$unit"; then
	setup="$setup && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys"
fi
if grep -q '^ProtectKernelLogs=yes' "$unit"; then
	setup="$setup && mount --bind /dev/null /proc/kmsg"
fi
echo "the unit's /proc: $setup"
printf '{"types": {"echo": {"builtin": "echo"}, "cat": {"mode": "stdio", "exec": ["/bin/cat"]}}}\n' \
	>"$dir/c.json"
unshare -m sh -c "$setup" || { echo "cannot make a mount namespace here: skipped"; exit 77; }
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m sh -c "$setup"' || exit 77
	setpriv --reuid=65534 --regid=65534 --clear-groups "$1" --config "$3/c.json" \
		--socket "$3/s.sock" 2>"$3/log" &
	pid=$!
	i=0
	until "$2" --socket "$3/s.sock" ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 500 ] || { kill $pid; exit 3; }
		sleep 0.02 # polls a socket that appears once; bounded above
	done
	a=$("$2" --socket "$3/s.sock" call echo hi) || a=failed
	b=$("$2" --socket "$3/s.sock" call cat meow) || b=failed
	"$2" --socket "$3/s.sock" shutdown >/dev/null
	wait $pid
	[ "$a" = hi ] && [ "$b" = meow ]' sh "$corrald" "$corralctl" "$dir" ||
	{ cat "$dir/log"; echo "workers do not start under the unit's /proc"; exit 1; }
echo "workers start under the unit's /proc"
