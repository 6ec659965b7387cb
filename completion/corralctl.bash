# bash completion for corralctl(1): commands, their flags, and type names and
# worker ids asked of the running corrald (corralctl --json types / list).

# The global options typed so far (--socket PATH), to reach the same daemon.
_corralctl_globals()
{
	local i
	_corralctl_g=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket) _corralctl_g+=(--socket "${COMP_WORDS[i + 1]}") ;;
		--socket=*) _corralctl_g+=("${COMP_WORDS[i]}") ;;
		esac
	done
}

# The worker type names corrald serves, one a line.
_corralctl_types()
{
	"${COMP_WORDS[0]}" "${_corralctl_g[@]}" --json types 2>/dev/null |
		grep -o '"name": *"[^"\\]*"' | sed 's/^"name": *"\(.*\)"$/\1/'
}

# The live worker ids, one a line: the objects of the list reply that have a state.
_corralctl_ids()
{
	"${COMP_WORDS[0]}" "${_corralctl_g[@]}" --json list 2>/dev/null | tr '{' '\n' |
		grep '"state"' | sed -n 's/.*"id": *\([0-9][0-9]*\).*/\1/p'
}

_corralctl()
{
	local cur prev cmd="" i words=""
	local commands="ping types list describe spawn stop kill restart call logs watch stats top reload shutdown help"
	local globals="--socket --json --help --version"

	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_corralctl_globals

	# The command: the first word that is neither an option nor --socket's value.
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket) ((i++)) ;;
		-*) ;;
		*)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done

	case $prev in
	--socket)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-s | --signal)
		if [[ $cmd == kill ]]; then
			COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP TSTP" -- "$cur"))
			return
		fi
		if [[ $cmd == top ]]; then
			COMPREPLY=($(compgen -W "id cpu reqs rss uptime" -- "$cur"))
			return
		fi
		;;
	--sort)
		COMPREPLY=($(compgen -W "id cpu reqs rss uptime" -- "$cur"))
		return
		;;
	-n | --count | --lines | -t | --timeout | -k | --key | -S | --since | -d | --delay)
		return
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$globals" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	local flags="--help --json --socket" operands=""
	case $cmd in
	list | describe | stats) operands=types ;;
	spawn) flags+=" -n --count" operands=types ;;
	stop) flags+=" -t --timeout" operands="ids types" ;;
	kill) flags+=" -s --signal" operands=ids ;;
	restart) operands="ids types" ;;
	call) flags+=" -k --key -t --timeout" operands=types ;;
	logs) flags+=" -f --follow -n --lines -S --since" operands="ids types" ;;
	top) flags+=" -s --sort -d --delay" ;;
	shutdown) flags+=" -t --timeout -w --wait" ;;
	help) operands=commands ;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	# One operand: complete it only when none is typed yet.
	for ((i = i + 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-n | --count | --lines | -t | --timeout | -k | --key | -S | --since | -s | --signal | --sort | -d | --delay | --socket) ((i++)) ;;
		-*) ;;
		*) return ;;
		esac
	done
	words=""
	[[ $operands == *commands* ]] && words+=" $commands"
	[[ $operands == *types* ]] && words+=" $(_corralctl_types)"
	[[ $operands == *ids* ]] && words+=" $(_corralctl_ids)"
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _corralctl corralctl
