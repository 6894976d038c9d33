# Helpers for the forwarding tests (36-forward-redis, 37-forward-nats,
# 38-forward-kafka): servers on loopback ports, the recipes of
# examples/forwarding.md run as written, and what arrived.  Load after
# helpers/common.

EX="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../examples"
# Programs built by make check (the NATS client example and its reader).
BUILT="${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..}"

# free_port: a TCP port on 127.0.0.1 that nobody listens on, below the
# ephemeral range (so that no outgoing connection takes it meanwhile).
free_port() {
	local p i
	for i in $(seq 100); do
		p=$((20000 + RANDOM % 12768))
		if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

offset_is() { [ "$(choffset "$CH" "$1")" = "$2" ]; }
# chan_end SUB: the offset just past the last record of $CH.
chan_end() { choffset --dry-run --latest "$CH" "$1" | awk '{ print $4 }'; }

# publish FROM TO: publish rec-FROM .. rec-TO, a few per chpub, so that
# they come in while a forwarder runs.
publish() {
	local i
	for ((i = $1; i <= $2; i += 5)); do
		chpub "$CH" $(seq -f 'rec-%04g' "$i" $((i + 4 < $2 ? i + 4 : $2)))
	done
}

# recipe TEXT: the command of the code block of examples/forwarding.md
# whose first line contains TEXT, its continuation lines joined (inside
# the -x quotes, a backslash-newline is a continuation for the handler's
# shell: joining gives the same command).
recipe() {
	awk -v t="$1" '
		/^    / && !inblock && index($0, t) { inblock = 1 }
		inblock {
			line = substr($0, 5)
			more = sub(/\\$/, "", line)
			cmd = cmd line
			if (!more) { print cmd; exit }
		}' "$EX/forwarding.md"
}

# recipe_argv TEXT FROM=TO...: the recipe's chsub arguments, in ARGV, split
# as a user's shell splits them, with each FROM replaced by TO (the
# example's host names by loopback addresses), its channel by $CH and its
# subscriber by "fwd".
recipe_argv() {
	local cmd kv
	cmd=$(recipe "$1")
	shift
	[[ $cmd == 'chsub '* ]] || { echo "# no recipe: $cmd" >&2; return 1; }
	for kv in "$@"; do
		[[ $cmd == *"${kv%%=*}"* ]] ||
			{ echo "# not in the recipe: ${kv%%=*}" >&2; return 1; }
		cmd=${cmd//"${kv%%=*}"/"${kv#*=}"}
	done
	_argv() { ARGV=("$@"); }
	eval "_argv ${cmd#chsub }"
	ARGV[${#ARGV[@]} - 2]=$CH
	ARGV[${#ARGV[@]} - 1]=fwd
}

# fast_retries: retry at most every half second, not after the recipe's
# backoff, which doubles up to 30 s or more: a test's outage lasts a few
# seconds and must not be waited out for long.  (The option, given after
# the recipe's, wins.)
fast_retries() {
	local n=${#ARGV[@]}
	ARGV=("${ARGV[@]:0:n-2}" --backoff=50ms,500ms "${ARGV[@]:n-2}")
}

# start_recipe: chsub with ARGV in the background, held and watching once
# this returns; $FWD is its pid, its stderr in $T/fwd.err.
start_recipe() {
	rm -f "$T/ready"
	start_bg chsub --ready-fd=4 "${ARGV[@]}" 4>"$T/ready" 2>"$T/fwd.err"
	FWD=$BG
	wait_for 10 test -s "$T/ready"
}

# check_arrived N ORDER: the payloads on stdin are rec-0001 .. rec-N, each
# at least once; prints the duplicate count to the TAP log.  ORDER is
# "strict" (-P 1, one record per run: a duplicate only ever repeats the
# record just sent, so squeezing repeats gives the sequence) or "first"
# (batches: a retried batch may repeat several records, but the first
# arrival of each is in channel order).
check_arrived() {
	local got want dups
	got=$(cat)
	want=$(seq -f 'rec-%04g' 1 "$1")
	# None missing, nothing foreign.
	assert_equal "$(sort -u <<<"$got")" "$want"
	dups=$(($(wc -l <<<"$got") - $1))
	echo "# $BATS_TEST_DESCRIPTION: $1 records, $dups duplicates" >&3
	case $2 in
	strict) assert_equal "$(uniq <<<"$got")" "$want" ;;
	first) assert_equal "$(awk '!seen[$0]++' <<<"$got")" "$want" ;;
	*) return 1 ;;
	esac
}
