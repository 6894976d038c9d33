# completion-options.bash SHELL DIR TOOL...: compare the options that each
# TOOL --help lists with those that the completion for SHELL (bash, zsh or
# fish) under DIR (the completions directory) offers; print each difference
# and exit 1 if there is one.  Run as
# its own process: bats' DEBUG trap makes loops like these slow.
shell=$1 dir=$2
shift 2

# help_spec HELP: the options in the option column of the --help text HELP,
# one per line, with "=" appended to those that take a value: "-t=", "--timeout=",
# "-f", "--follow", "-?".
help_spec() {
	local line v re='^ +(-([^-]), )?--([a-z0-9-]+)(=?)'
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		v=${BASH_REMATCH[4]}
		[[ ${BASH_REMATCH[2]} ]] && printf '%s\n' "-${BASH_REMATCH[2]}$v"
		printf '%s\n' "--${BASH_REMATCH[3]}$v"
	done <<<"$1"
}

# bash_spec TOOL: the words that the bash file offers as options ("--sync=",
# "-p"), and after them the options that it reads as taking a value (the
# arguments of _chtools_scan) as "value -t=" and "value --timeout=".
bash_spec() {
	local line on='' scan='' w i re="^ *_chtools_scan ('')?([A-Za-z]*) '([^']*)'"
	local -a ws
	while IFS= read -r line; do
		if [[ $line == *"_chtools_options '"* ]]; then
			on=1
			line=${line#*"_chtools_options '"}
		fi
		[[ $line == "    _chtools_scan "* ]] && scan=1
		if [[ $scan == 1* ]]; then
			scan+=" $line"
			[[ $line == *"'" ]] && scan=${scan/1/2}
		fi
		[[ $on ]] || continue
		[[ $line == *"'" ]] && on=
		read -ra ws <<<"${line%"'"}"
		printf '%s\n' "${ws[@]}"
	done <"$dir/bash/$1"
	[[ ${scan:2} =~ $re ]] || return 0
	for ((i = 0; i < ${#BASH_REMATCH[2]}; i++)); do
		printf '%s\n' "value -${BASH_REMATCH[2]:i:1}="
	done
	read -ra ws <<<"${BASH_REMATCH[3]}"
	for w in "${ws[@]}"; do
		printf '%s\n' "value $w="
	done
}

# zsh_section TOOL: the part of _chtools that completes TOOL, plus the
# options common to all tools.
zsh_section() {
	local line on=
	while IFS= read -r line; do
		[[ $line == "  $1)" ]] && on=tool
		[[ $line == "  common=(" ]] && on=common
		[[ $on ]] && printf '%s\n' "$line"
		[[ $on == tool && $line == "    ;;" ]] && on=
		[[ $on == common && $line == "  )" ]] && on=
	done <"$dir/zsh/_chtools"
}

# zsh_spec TOOL: the options that _arguments gets for TOOL, as help_spec
# prints them: "--sync=[...]" and "{-t+,--timeout=}" take a value.
zsh_spec() {
	local text rest long='(--[a-z0-9-]+)(=?)[[}]' short='\{-(\\?.)(\+?),'
	text=$(zsh_section "$1")
	rest=$text
	while [[ $rest =~ $long ]]; do
		printf '%s\n' "${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
		rest=${rest#*"${BASH_REMATCH[0]}"}
	done
	rest=$text
	while [[ $rest =~ $short ]]; do
		printf '%s\n' "-${BASH_REMATCH[1]#\\}${BASH_REMATCH[2]:+=}"
		rest=${rest#*"${BASH_REMATCH[0]}"}
	done
}

# fish_spec TOOL: the options of the fish file's `complete -c TOOL` lines,
# with "=" for those declared with -x or -r (they take a value).
fish_spec() {
	local line rest v re=" -([ls]) '?([^ ']+)"
	while IFS= read -r line; do
		[[ $line == "complete -c $1 "* ]] || continue
		[[ $line =~ \ -[xr](\ |$) ]] && v='=' || v=''
		rest=${line%%" -d "*}
		while [[ $rest =~ $re ]]; do
			if [[ ${BASH_REMATCH[1]} == l ]]; then
				printf '%s\n' "--${BASH_REMATCH[2]}$v"
			else
				printf '%s\n' "-${BASH_REMATCH[2]}$v"
			fi
			rest=${rest#*"${BASH_REMATCH[0]}"}
		done
	done <"$dir/fish/$1.fish"
}

# compare WHAT EXPECTED ACTUAL: append to $diff what the newline-separated
# option lists EXPECTED (from --help) and ACTUAL (a completion) differ in.
compare() {
	local -A want have
	local -a list
	local o
	mapfile -t list <<<"$2"
	for o in "${list[@]}"; do [[ $o ]] && want[$o]=1; done
	mapfile -t list <<<"$3"
	for o in "${list[@]}"; do [[ $o ]] && have[$o]=1; done
	for o in "${!want[@]}"; do
		[[ ${have[$o]-} ]] || diff+="$1: missing $o"$'\n'
	done
	for o in "${!have[@]}"; do
		[[ ${want[$o]-} ]] || diff+="$1: not in --help: $o"$'\n'
	done
}

diff=
for t; do
	help=$("$t" --help) || { echo "$t --help failed"; exit 1; }
	help=$(help_spec "$help")
	case $shell in
	bash)
		spec=$(bash_spec "$t")
		# options are offered as "--sync=" but "-t"
		compare "bash $t" "$(sed '/^-[^-]/s/=$//' <<<"$help")" \
			"$(grep -v '^value ' <<<"$spec")"
		compare "bash $t _chtools_scan" "$(grep '=$' <<<"$help")" \
			"$(sed -n 's/^value //p' <<<"$spec")"
		;;
	zsh) compare "zsh $t" "$help" "$(zsh_spec "$t")" ;;
	fish) compare "fish $t" "$help" "$(fish_spec "$t")" ;;
	*) exit 2 ;;
	esac
done
[[ -z $diff ]] || { printf '%s' "$diff" | sort; exit 1; }
