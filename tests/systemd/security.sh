#!/bin/sh
# The unit's exposure by `systemd-analyze security` (offline, on the file) is
# at most 3.0, and it keeps off the settings that would stop workers from
# mounting their own /proc.  Skipped where systemd-analyze cannot do this.
set -eu
build=$1 corrald=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=.*|ExecStart=$corrald|" "$build/corrald.service" > "$dir/corrald.service"
if ! out=$(systemd-analyze security --offline=true --no-pager "$dir/corrald.service" 2>&1); then
	case $out in
	*"unrecognized option"* | *"Unknown option"*) echo "systemd-analyze has no --offline: skipped"; exit 77 ;;
	esac
	echo "$out"
	exit 1
fi
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || { echo "$out"; echo "no exposure level in the output"; exit 1; }
echo "exposure $level"
if ! awk -v l="$level" 'BEGIN { exit !(l <= 3.0) }'; then
	printf '%s\n' "$out" | grep '✗'
	echo "exposure $level is above 3.0"
	exit 1
fi
# The first two mount over files in /proc: a worker's proc mount in its user
# namespace is then refused and no worker starts (tests/systemd/procmounts.sh
# shows it); workers map the daemon's uid (PrivateUsers) and the daemon writes
# its delegated cgroups (ProtectControlGroups).
for bad in '^ProtectKernelTunables=yes' '^ProtectKernelLogs=yes' \
	'^PrivateUsers=yes' '^ProtectControlGroups=yes'; do
	if grep -q "$bad" "$dir/corrald.service"; then
		echo "corrald.service sets ${bad#^}: workers could not set up their sandbox"
		exit 1
	fi
done
grep -q '^Delegate=yes' "$dir/corrald.service" || { echo "corrald.service lacks Delegate=yes"; exit 1; }
echo "exposure $level <= 3.0"
