# complete-zsh.zsh DIR DUMP LINE OUT: type LINE and TAB into an interactive
# `zsh -f` on a pseudo-terminal (zpty) whose fpath starts with DIR, and
# write every candidate that the completion system adds to the file OUT,
# one per line.  Exit 3 if zsh does not get that far within 30 seconds.
# DUMP is compinit's dump file: made if missing (slow: compinit reads every
# file in fpath), then reused without that check (compinit -C).
emulate -L zsh
zmodload zsh/zpty zsh/zselect || exit 3
dir=$1 dump=$2 line=$3 out=$4
: >$out
rm -f $out.ready $out.done

# await FILE: wait for the inner shell to create FILE, draining its terminal.
await() {
	local junk
	integer i
	for ((i = 0; i < 3000; i++)); do
		[[ -e $1 ]] && return 0
		zpty -r -t z junk 2>/dev/null
		zselect -t 1
	done
	return 1
}

zpty z zsh -f -i || exit 3
# compadd is wrapped to record the matches (compadd -O does the matching
# without adding them) before adding them as usual; calls that already use
# -O, -A or -D are completion internals and pass through.  TAB runs
# complete-word, then says so (completion does not run on typeahead, so
# each step waits for the previous one).
zpty -w z "PS1= PROMPT_EOL_MARK= fpath=(${(q)dir} \$fpath)"
if [[ -s $dump ]]; then
	zpty -w z "autoload -Uz compinit && compinit -u -C -d ${(q)dump}"
else
	zpty -w z "autoload -Uz compinit && compinit -u -d ${(q)dump}"
fi
zpty -w z "compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then
    builtin compadd \"\$@\"; return
  fi
  local -a m
  builtin compadd -O m \"\$@\"
  (( \$#m )) && print -rl -- \$m >>${(q)out}
  builtin compadd \"\$@\"
}"
zpty -w z "tab() { zle complete-word; print >${(q)out}.done; }"
zpty -w z "zle -N tab && bindkey '^I' tab && print >${(q)out}.ready"
await $out.ready || { zpty -d z; exit 3; }
zpty -w -n z "$line"$'\t'
await $out.done || { zpty -d z; exit 3; }
zpty -w -n z $'\C-e\C-u'"exit"$'\n'
zpty -d z
exit 0
