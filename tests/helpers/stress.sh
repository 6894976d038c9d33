#!/bin/bash
# stress.sh DIR TEST: the concurrency tests of 70-concurrency.bats, run
# outside bats.  Prints what went wrong and exits non-zero on a failure.
#
#   publishers4  4 publishers at once, lines and multi-megabyte records
#   stress       8 publishers + 2 followers + a consumer + chcompact in a
#                loop + choffset changes + chcompact --check in a loop,
#                for CH_STRESS_SECONDS (8)
set -euo pipefail
T=$1
CH="$T/ch"
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/crash.bash"
PIDS=()
exec 3>&2
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

fail() { echo "$*"; exit 1; }

new_channel() {
	chpub "$CH" </dev/null
	local kv
	for kv in "$@"; do
		sed -i "s|^${kv%%=*}:.*|${kv%%=*}: ${kv#*=}|" "$CH/channel.yaml"
	done
}

# stream TAG FIRST COUNT BIG: records TAG-FIRST.., small ones and every
# BIG-th one (BIG > 0) between 1 and 4 MiB.
stream() {
	awk -v t="$1" -v f="$2" -v c="$3" -v big="$4" -v seed="$RANDOM" '
	BEGIN {
		srand(seed)
		for (i = f; i < f + c; i++)
			r(t, i, (big && i % big == 0) ? 1048576 + int(rand() * 3145728) : 20 + int(rand() * 300))
	}'"$REC_AWK"
}

# per_tag FILE: "TAG COUNT" for each tag, sorted.
per_tag() { awk -F- '{ c[$1]++ } END { for (t in c) print t, c[t] }' "$1" | sort; }

# gap_free FILE ERR: within each tag, N goes up by exactly one, unless ERR
# holds the documented warning about reclaimed (removed) data.
gap_free() {
	local file=$1 errf=$2
	awk -F- -v lenient="$(grep -c 'skipp\|removed\|reclaimed\|retention' "$errf" || true)" '
	{
		t = $1; n = $2 + 0
		if (t in last) {
			if (n <= last[t]) { print FILENAME ": " t "-" n " after " t "-" last[t]; bad = 1 }
			else if (n != last[t] + 1 && !lenient) { print FILENAME ": gap " t "-" last[t] " to " t "-" n; bad = 1 }
		}
		last[t] = n
	}
	END { exit bad }' "$file"
}

publishers4() {
	local i
	new_channel segment_bytes=8MiB
	for i in 1 2 3 4; do
		stream "c$i" 1 400 $((i <= 2 ? 100 : 0)) >"$T/in$i"
		# one line per record, plus -0 and --whole publishers of big ones
	done
	printf '%s' "$(rec w 1 3000000)" >"$T/whole"	# no newline
	for i in 1 2 3 4; do
		chpub "$CH" <"$T/in$i" &
		PIDS+=($!)
	done
	chpub --whole "$CH" <"$T/whole" &
	PIDS+=($!)
	for i in "${PIDS[@]}"; do wait "$i" || fail "a publisher failed"; done
	PIDS=()
	chsub --peek --from=earliest "$CH" >"$T/all"
	grep -v '^w-' "$T/all" >"$T/lines"
	check_records "$T/lines" || fail "torn or interleaved records"
	check_order "$T/lines" || fail "a publisher's order was not kept"
	cat "$T"/in[1-4] >"$T/want"
	[[ $(per_tag "$T/lines") == "$(per_tag "$T/want")" ]] ||
	    fail "records missing or duplicated: $(per_tag "$T/lines")"
	cmp -s <(grep '^w-' "$T/all") <(rec w 1 3000000) ||
	    fail "the --whole record was torn"
	chcompact --check "$CH" || fail "--check after concurrent publishers"
}

stress() {
	local secs=${CH_STRESS_SECONDS:-8} i end
	crash_seed
	new_channel segment_bytes=1MiB
	for s in f1 f2 c y; do choffset --create --earliest "$CH" "$s" >/dev/null; done
	end=$((SECONDS + secs))
	# 8 publishers, each a loop of chpub runs; every record acknowledged
	for i in 1 2 3 4 5 6 7 8; do
		(
			n=1
			while ((SECONDS < end)); do
				k=$((20 + RANDOM % 200))
				stream "p$i" "$n" "$k" $((i % 4 == 0 ? 97 : 0)) >"$T/batch$i"
				chpub "$CH" <"$T/batch$i" || { echo "publisher $i failed"; exit 1; }
				cat "$T/batch$i" >>"$T/pub$i"
				n=$((n + k))
			done
		) &
		PIDS+=($!)
	done
	local npub=${#PIDS[@]}
	# two followers for the whole run
	for s in f1 f2; do
		chsub -f -t 5s "$CH" "$s" >"$T/$s.out" 2>"$T/$s.err" &
		PIDS+=($!)
	done
	# a consumer in short runs, a compactor, an offset mover
	(
		while ((SECONDS < end + 2)); do
			chsub -n 50 "$CH" c >>"$T/c.out" 2>>"$T/c.err" || { echo "consumer failed"; exit 1; }
		done
	) &
	PIDS+=($!)
	(
		while ((SECONDS < end + 2)); do
			chcompact "$CH" 2>>"$T/compact.err" || { echo "chcompact failed"; cat "$T/compact.err"; exit 1; }
			sleep 0.1
		done
	) &
	PIDS+=($!)
	(
		ops=(--latest --shift=-20 --earliest --shift=+5)
		while ((SECONDS < end)); do
			rc=0
			choffset "${ops[RANDOM % 4]}" "$CH" y >/dev/null 2>>"$T/y.err" || rc=$?
			((rc == 0 || rc == 75)) || { echo "choffset exit $rc"; cat "$T/y.err"; exit 1; }
			chsub -n 10 "$CH" y >/dev/null 2>>"$T/y.err" || true
			sleep 0.05
		done
	) &
	PIDS+=($!)
	# chcompact --check beside all of it: normal activity (rollovers,
	# commits, compaction, appends in progress) is no problem
	(
		while ((SECONDS < end)); do
			chcompact --check "$CH" 2>"$T/check.err" ||
			    { echo "--check during the stress:"; cat "$T/check.err"; exit 1; }
			sleep 0.05
		done
	) &
	PIDS+=($!)
	local rc=0
	for i in "${PIDS[@]}"; do wait "$i" || rc=1; done
	PIDS=()
	((rc == 0)) || fail "a stress process failed"
	chsub "$CH" c >>"$T/c.out" 2>>"$T/c.err"
	cat "$T"/pub* >"$T/published"
	echo "published $(wc -l <"$T/published") records, $(du -sh "$CH" | cut -f1) left"
	for s in f1 f2 c; do
		check_records "$T/$s.out" || fail "$s: torn records"
		gap_free "$T/$s.out" "$T/$s.err" || fail "$s: not gap-free"
		[[ $(per_tag "$T/$s.out") == "$(per_tag "$T/published")" ]] ||
		    fail "$s: records missing or twice: $(per_tag "$T/$s.out" | tr '\n' ' ') vs $(per_tag "$T/published" | tr '\n' ' ')"
	done
	chcompact --check "$CH" || fail "--check after the stress"
	: "$npub"
}

"$2"
