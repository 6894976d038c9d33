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
end=$(choffset --dry-run --time="$to" "$ch" "$sub" | awk '{ print $NF }')

# Count the records between: their offsets are below end.
n=$(chsub --peek --format='%o\n' "$ch" "$sub" |
    awk -v end="$end" '$1 + 0 >= end + 0 { exit } { n++ } END { print n + 0 }')

if [ "$n" -eq 0 ]; then
	echo "replay.sh: $ch: no records from $from to $to" >&2
	exit 0
fi
if [ $# -eq 4 ]; then
	chsub -n "$n" -x "$4" "$ch" "$sub"
else
	chsub -n "$n" "$ch" "$sub"
fi
