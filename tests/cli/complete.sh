#!/bin/bash
# Completion against a live corrald on a socket of its own: type names and
# worker ids come from the daemon, commands and flags from the script.
# bash drives the completion function as bash would; zsh (when installed)
# completes for real in a pty.
set -u
dir=$(mktemp -d /tmp/corral-complete-XXXXXX)
sock=$dir/s.sock
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid"
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$dir/log" ] && tail -20 "$dir/log" >&2
	exit 1
}

cat >"$dir/corral.json" <<'JSON'
{"types": {"completion-alpha": {"builtin": "echo"}, "completion-beta": {"builtin": "sha256"},
           "other": {"builtin": "echo"}}}
JSON
"$CORRALD" --socket "$sock" --config "$dir/corral.json" >"$dir/log" 2>&1 &
pid=$!
# Ready when it answers; bounded (the socket appears as it starts listening).
for i in $(seq 200); do
	"$CORRALCTL" --socket "$sock" ping >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || fail "corrald exited"
	sleep 0.05
done
"$CORRALCTL" --socket "$sock" ping >/dev/null || fail "corrald does not answer"
id=$("$CORRALCTL" --socket "$sock" spawn other) || fail "spawn"

# shellcheck source=/dev/null
source "$BASH_COMPLETION_FILE"
complete_words() {
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_corralctl
	[ ${#COMPREPLY[@]} -gt 0 ] && printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {
	local want=$1 got
	shift
	got=$(complete_words "$@")
	[ "$got" = "$want" ] || fail "completing [$*]: got [$got], want [$want]"
}

expect "completion-alpha completion-beta " "$CORRALCTL" --socket "$sock" describe comp
expect "completion-alpha " "$CORRALCTL" --socket "$sock" call completion-a
expect "$id " "$CORRALCTL" --socket "$sock" kill ""
expect "$id completion-alpha completion-beta other " "$CORRALCTL" --socket "$sock" restart ""
expect "" "$CORRALCTL" --socket "$sock" describe other ""
expect "describe " "$CORRALCTL" --socket "$sock" desc
expect "--since --socket " "$CORRALCTL" --socket "$sock" logs --s
expect "--wait " "$CORRALCTL" shutdown --w
expect "TERM TSTP " "$CORRALCTL" kill 1 -s T
expect "stats stop " "$CORRALCTL" help st
# No daemon: commands still complete, types quietly do not.
expect "" "$CORRALCTL" --socket "$dir/none.sock" describe ""

if command -v zsh >/dev/null; then
	got=$(timeout 45 zsh -f "$ZSH_COMPLETION_TEST" "$(dirname "$ZSH_COMPLETION_FILE")" \
		"$CORRALCTL" "$sock" 2>&1 | tail -1)
	[ "$got" = ok ] || fail "zsh: ${got:-no completion within 45 s}"
else
	echo "zsh not installed: its live check skipped"
fi
echo ok
