#!/bin/sh
# Each man page lints clean: mandoc -T lint (warnings are errors) and groff -ww.
set -eu
status=0
for page in "$@"; do
	if command -v mandoc >/dev/null; then
		mandoc -T lint -W warning "$page" || status=1
	fi
	if command -v groff >/dev/null; then
		out=$(groff -ww -z -mandoc "$page" 2>&1) || status=1
		[ -z "$out" ] || { echo "$page: $out"; status=1; }
	fi
done
command -v mandoc >/dev/null || command -v groff >/dev/null || { echo "no mandoc or groff: skipped"; exit 77; }
[ $status -eq 0 ] && echo "$# pages lint clean"
exit $status
