#!/bin/sh
# replay.sh - replay the records of a channel published in a time range,
# as a separate subscriber: the channel's own subscribers are not touched.
#
#   replay.sh CHANNEL FROM TO [CMD]
#
# FROM and TO are times as choffset --time takes them: ISO 8601
# (2026-11-22T10:00Z, 2026-11-22T10:00:00+01:00) or a duration meaning that
# long ago (2h, 90m).  The records published at FROM or later and before TO
# are printed, one per line, or each handed to CMD on its stdin (run with
# /bin/sh -c, as chsub -x does, with CH_OFFSET, CH_TIMESTAMP... set).
#
# How: `choffset --create --time=FROM` registers a subscriber of its own
# at the first record published at or after FROM; `choffset --dry-run
# --time=TO` tells where TO is without moving anything; `chsub -n N` then
# reads exactly the N records in between and stops.  While it exists, the
# replay subscriber holds back compaction, so nothing it still has to read
# can be deleted; it is deregistered at the end.
#
# Examples:
#   replay.sh logs 2026-11-22T10:00Z 2026-11-22T11:00Z > 10h.log
#   replay.sh logs 3h 2h 'curl -fsS --data-binary @- https://collector/ingest'
set -eu

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	echo "usage: replay.sh CHANNEL FROM TO [CMD]" >&2
	exit 2
fi
ch=$1 from=$2 to=$3
sub=${REPLAY_SUBSCRIBER:-replay-$$}

choffset -q --create --time="$from" "$ch" "$sub" >/dev/null
trap 'choffset -q --delete "$ch" "$sub" >/dev/null' EXIT
trap 'exit 130' INT TERM

# "SUB OLD -> NEW": NEW is the offset of the first record at or after TO.
# choffset alone in the $(...), so that set -e sees it fail (the status
# of a pipeline is its last command's).
moved=$(choffset --dry-run --time="$to" "$ch" "$sub")
end=${moved##* }
case $end in
'' | *[!0-9]*)
	echo "replay.sh: $ch: unexpected output of choffset --dry-run: $moved" >&2
	exit 1 ;;
esac

# peek_offsets: the offsets of the records from the replay subscriber's
# on, one a line, then "exit STATUS" with chsub's exit status (the status
# of a pipeline is its last command's, and sh has no pipefail).
peek_offsets() {
	st=0
	chsub --peek --format='%o\n' "$ch" "$sub" || st=$?
	echo "exit $st"
}

# Count the records between: their offsets are below end.  awk stops at
# the first record at or after end (chsub then exits 0, its reader gone),
# and fails with chsub's status if chsub failed before: a record missing
# from the count would be missing from the replay without a word.
n=$(peek_offsets | awk -v end="$end" '
	$1 == "exit" { status = $2 + 0; done = 1; exit }
	$1 + 0 >= end + 0 { done = 1; exit }
	{ n++ }
	END {
		if (!done)
			status = 1	# no status line: the shell died
		if (status == 0)
			print n + 0
		exit status
	}')

if [ "$n" -eq 0 ]; then
	echo "replay.sh: $ch: no records from $from to $to" >&2
	exit 0
fi
if [ $# -eq 4 ]; then
	chsub -n "$n" -x "$4" "$ch" "$sub"
else
	chsub -n "$n" "$ch" "$sub"
fi
