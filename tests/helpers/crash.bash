# Helpers for the crash, fault and concurrency tests (80-crash, 85-faults,
# 70-concurrency).  Load after helpers/common.

# The LD_PRELOAD shim (tests/helpers/chfault.c), built by `make check`.
CHFAULT=${CHFAULT:-${TOP_BUILDDIR:-${BATS_TEST_DIRNAME:-.}/..}/tests/helpers/chfault.so}

need_chfault() {
	[[ -f $CHFAULT ]] || skip "tests/helpers/chfault.so not built (make check builds it)"
}

# stopped_at_wait PID: PID is stopped (the shim's SIGSTOP before a wait).
stopped_at_wait() { [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) == T ]]; }

# rec TAG N SIZE: one self-checking record "TAG-N-SIZE-xxxx..." of SIZE
# bytes (at least the prefix), so a torn or spliced record is recognised.
rec() {
	awk -v t="$1" -v n="$2" -v s="$3" 'BEGIN { r(t, n, s) }'"$REC_AWK"
}

# records TAG COUNT [MAXSIZE]: COUNT records TAG-1.., sizes from $RANDOM
# (20 to MAXSIZE+19 bytes, default 200).
records() {
	awk -v t="$1" -v c="$2" -v m="${3:-200}" -v seed="$RANDOM" \
	    'BEGIN { srand(seed); for (i = 1; i <= c; i++) r(t, i, 20 + int(rand() * m)) }'"$REC_AWK"
}

REC_AWK='
function r(t, n, s,   h, p, x, b) {
	h = t "-" n "-" s "-"
	p = s - length(h)
	x = ""; b = "x"
	for (; p > 0; p = int(p / 2)) { if (p % 2) x = x b; b = b b }
	print h x
}'

# check_records FILE: every line of FILE is a whole record as made by rec.
# Prints the bad lines and fails if there is one.
check_records() {
	awk '
	{
		n = split($0, f, "-")
		ok = n >= 4 && f[3] ~ /^[0-9]+$/
		if (ok) {
			head = f[1] "-" f[2] "-" f[3] "-"
			want = f[3] + 0
			if (want < length(head)) want = length(head)
			ok = length($0) == want && substr($0, length(head) + 1) ~ /^x*$/
		}
		if (!ok) { print "partial or spliced record at line " NR ": " substr($0, 1, 80); bad = 1 }
	}
	END { exit bad }' "$1"
}

# check_order FILE: records of each tag appear in increasing N, at most
# once (the channel holds each published record once, in publish order).
check_order() {
	awk -F- '
	{
		tag = $1; n = $2 + 0
		if (tag in last && n <= last[tag]) {
			print "record " tag "-" n " after " tag "-" last[tag] " (line " NR ")"
			bad = 1
		}
		last[tag] = n
	}
	END { exit bad }' "$1"
}

# crash_seed: the seed of this run (CH_CRASH_SEED, else a fresh one),
# printed so that a failure can be replayed.
crash_seed() {
	SEED=${CH_CRASH_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
	RANDOM=$SEED
	echo "# seed $SEED (replay: CH_CRASH_SEED=$SEED)" >&3
	echo "seed $SEED (replay with CH_CRASH_SEED=$SEED)"
}

# usleep_rand MAXMS: sleep a random number of milliseconds in [0, MAXMS).
usleep_rand() {
	local ms=$((RANDOM % $1))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

# check_runs AUDIT RUNDIR: the runs of one subscriber (RUNDIR/NNNNN.out,
# with NNNNN.rc its exit status, in order) against the channel's records
# in order (AUDIT, read by a subscriber that was never killed).  Each run
# delivers consecutive records; it starts no later than just after the
# last record delivered before it (nothing skipped: nothing committed that
# was not delivered), and no earlier than just after the end of the last
# run that exited 0 (at-least-once: only a killed run's records come
# again).  Use end_run on each run's output first.
check_runs() {
	local audit=$1 dir=$2 f
	for f in "$dir"/*.out; do
		[[ -e $f ]] || continue
		printf '%s %s\n' "${f##*/}" "$(cat "${f%.out}.rc")"
	done | sort | awk -v audit="$audit" -v dir="$dir" '
	BEGIN {
		while ((getline l < audit) > 0) idx[l] = n++
		seen = -1; clean = -1
	}
	{
		file = dir "/" $1; rc = $2; first = -1; prev = -1
		lines = 0
		while ((getline l < file) > 0) buf[++lines] = l
		close(file)
		for (i = 1; i <= lines; i++) {
			l = buf[i]
			if (!(l in idx)) { print $1 ": delivered a record not in the channel: " substr(l, 1, 60); bad = 1; continue }
			k = idx[l]
			if (first < 0) {
				first = k
				if (k > seen + 1) { print $1 ": starts at record " k ", skipping " seen + 1 " to " k - 1; bad = 1 }
				if (k <= clean) { print $1 ": starts at record " k " but a clean run ended at " clean; bad = 1 }
			} else if (k != prev + 1) {
				print $1 ": record " k " after " prev " within one run"; bad = 1
			}
			prev = k
			if (k > seen) seen = k
		}
		if (rc == 0) clean = prev >= 0 ? prev : clean
		delete buf
	}
	END { exit bad }'
}

# end_run FILE RC: record a subscriber run's exit status; a killed run's
# last line without a newline was cut by the kill: not delivered.
end_run() {
	echo "$2" >"${1%.out}.rc"
	if [[ -s $1 && $(tail -c1 "$1" | od -An -tx1) != *0a* ]]; then
		((${2} != 0)) || { echo "$1: exited 0 with a partial last line"; return 1; }
		local keep
		keep=$(($(wc -c <"$1") - $(tail -n1 "$1" | wc -c)))
		truncate -s "$keep" "$1"
	fi
}
