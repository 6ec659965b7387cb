# Drive zsh's real completion in a pty (zpty): "corralctl --socket S describe
# comp<TAB><TAB>" must list the type names the live corrald serves.
# Usage: zsh -f complete.zsh COMPLETION_DIR CORRALCTL SOCKET
# Reads block on patterns (no sleeps); the caller bounds the whole run.
zmodload zsh/zpty || exit 77
zpty -b z zsh -f -i
zpty -w z "PS1='>'; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D; corralctl() { ${(q)2} \"\$@\" }; print READY''NOW"
zpty -r z out '*READYNOW*' || { print "zsh did not start"; exit 1 }
zpty -n -w z "corralctl --socket ${(q)3} describe comp"$'\t'
zpty -r z out '*describe completion-*' || { print "no common prefix completed"; exit 1 }
zpty -n -w z $'\t'
zpty -r z out '*completion-beta*' || { print "no list"; exit 1 }
[[ $out == *completion-alpha* ]] || { print -r "list without completion-alpha: ${(q)out}"; exit 1 }
zpty -d z
print ok
