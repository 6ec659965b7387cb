#!/bin/sh
# Install what corral needs to build and test on Debian 12, when it is missing.
# Usage: scripts/deps.sh [extra-package...]
#   DEPS_NO_RECOMMENDS=1 scripts/deps.sh PKG   without PKG's recommended packages
set -eu
pkgs="meson ninja-build pkg-config gcc libevent-dev libjansson-dev check libseccomp-dev nettle-dev $*"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "corral: missing packages:$missing" >&2
	echo "corral: run as root, or: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "corral: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ${DEPS_NO_RECOMMENDS:+--no-install-recommends} $missing >/dev/null
