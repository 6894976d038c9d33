# complete-bash.sh LINE: what bash completion offers for LINE, the cursor at
# its end, one candidate per line (sorted).  Run with `bash --norc`, with
# BASH_COMPLETION_USER_DIR set to a directory whose completions/ holds the
# files under test: bash-completion's own loader then finds the file by the
# command's name, as it does after `make install`.
line=$1
# shellcheck source=/dev/null
. /usr/share/bash-completion/bash_completion || exit 3

# Split LINE into words as readline does with the default COMP_WORDBREAKS:
# blanks separate words, and "=" and ":" are words of their own.
COMP_WORDS=()
w=
for ((i = 0; i < ${#line}; i++)); do
	c=${line:i:1}
	case $c in
	' ')
		[[ $w ]] && COMP_WORDS+=("$w")
		w=
		;;
	[=:])
		[[ $w ]] && COMP_WORDS+=("$w")
		COMP_WORDS+=("$c")
		w=
		;;
	*) w+=$c ;;
	esac
done
if [[ $w || $line == *' ' ]]; then
	COMP_WORDS+=("$w")
fi
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}

cmd=${COMP_WORDS[0]}
__load_completion "$cmd" || { echo "no completion file for $cmd" >&2; exit 3; }
spec=$(complete -p "$cmd") || exit 3
[[ $spec =~ -F\ ([^ ]+) ]] || { echo "$spec: no -F function" >&2; exit 3; }
COMPREPLY=()
"${BASH_REMATCH[1]}" "$cmd" "${COMP_WORDS[COMP_CWORD]}" \
    "${COMP_WORDS[COMP_CWORD - 1]}"
((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort
exit 0
