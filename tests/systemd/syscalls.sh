#!/bin/sh
# Every system call corrald, its workers and their programs make (traced with
# strace while every worker mode serves calls, spawns, reloads and drains) is
# allowed by corrald.service's SystemCallFilter= lines: a call outside them
# would fail with EPERM under systemd.  Skipped without strace or systemd-analyze.
set -eu
unit=$1 corrald=$2 corralctl=$3 upper=$4
for t in strace systemd-analyze python3; do
	command -v $t >/dev/null || { echo "$t not installed: skipped"; exit 77; }
done
dir=$(mktemp -d /tmp/corral-syscalls.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$dir"' EXIT
chmod 755 "$dir"

# The filter of the unit: the union of the allow lines, minus the deny lines.
expand() {
	systemd-analyze syscall-filter "$1" 2>/dev/null | tail -n +2 | sed -e '/^[[:space:]]*#/d' \
		-e 's/^[[:space:]]*//' | while read -r x; do
		case $x in
		@*) expand "$x" ;;
		?*) echo "$x" ;;
		esac
	done
}
: >"$dir/allow"
: >"$dir/deny"
grep '^SystemCallFilter=' "$unit" | sed 's/^SystemCallFilter=//' | while read -r line; do
	out=allow
	case $line in "~"*) out=deny line=${line#\~} ;; esac
	for item in $line; do
		case $item in
		@*) expand "$item" ;;
		*) echo "$item" ;;
		esac
	done >>"$dir/$out"
done
[ -s "$dir/allow" ] || { echo "no SystemCallFilter= allow list in $unit"; exit 1; }

cat >"$dir/c.json" <<JSON
{"metrics": {"listen": "$dir/m.sock"},
 "types": {"echo": {"builtin": "echo", "pool": {"min": 1}}, "sha256": {"builtin": "sha256"},
           "cat": {"mode": "stdio", "exec": ["/bin/cat"]},
           "upper": {"exec": ["$upper"]},
           "small": {"builtin": "echo", "limits": {"memory_mb": 64, "nproc": 8}}}}
JSON
# LeakSanitizer cannot run under ptrace (an ASan build): leaks are checked elsewhere.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -o "$dir/trace" "$corrald" --config "$dir/c.json" --socket "$dir/s.sock" \
	2>"$dir/log" &
pid=$!
ctl="$corralctl --socket $dir/s.sock"
i=0
until $ctl ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 1000 ] || { cat "$dir/log"; echo "corrald does not answer"; exit 1; }
	sleep 0.02 # polls a socket that appears once; bounded above
done
head -c 3000000 /dev/urandom >"$dir/big"
$ctl call echo hi >/dev/null
$ctl call cat meow >/dev/null
$ctl call upper hello >/dev/null
$ctl call small x >/dev/null
$ctl call sha256 <"$dir/big" >/dev/null
$ctl spawn echo -n 2 >/dev/null
$ctl list >/dev/null
$ctl stats >/dev/null
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b'GET /metrics HTTP/1.0\r\n\r\n')
while s.recv(65536): pass" "$dir/m.sock"
$ctl reload >/dev/null
$ctl shutdown >/dev/null
wait $pid || { cat "$dir/log"; echo "corrald exited with $?"; exit 1; }
pid=
sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p' "$dir/trace" | sort -u >"$dir/used"
status=0
for s in $(cat "$dir/used"); do
	if ! grep -qx "$s" "$dir/allow"; then
		echo "corrald uses $s, which corrald.service's SystemCallFilter= does not allow"
		status=1
	elif grep -qx "$s" "$dir/deny"; then
		echo "corrald uses $s, which corrald.service's SystemCallFilter=~ denies"
		status=1
	fi
done
[ $status -eq 0 ] && echo "$(wc -l <"$dir/used") system calls used, all allowed by the unit"
exit $status
