#!/bin/sh
# append-batch.sh - the receiving end of a log shipper: append a batch of
# log lines from standard input to FILE, all of it or nothing.
#
# Usage: append-batch.sh FILE COUNT
#
# Copy it to the log host (say /usr/local/bin), and ship with
#
#   chsub -f --from=earliest --batch=500 --retries=1000000 \
#       --backoff=1s,1m --handler-timeout=5m \
#       -x 'ssh -o ServerAliveInterval=15 -o ServerAliveCountMax=3 loghost \
#           append-batch.sh /var/log/app.log "$CH_COUNT"' logs shipper
#
# (chsub sets CH_COUNT to the number of records of the batch; see
# log-shipping.sh).  With `ssh loghost "cat >> FILE"` instead, a
# connection lost in mid-batch appends the batch's start, cut in the
# middle of a line, and the retry's first line is glued to that half
# line.  Here the batch goes to a temporary file first, and is appended
# only when it holds exactly COUNT newline-terminated lines: a batch cut
# short (standard input ends early when the connection is lost) appends
# nothing and exits 1, and chsub sends it again.  If the append itself
# fails (disk full), FILE is cut back to its size before it.  What can
# still happen is a duplicate: a batch appended whose exit status never
# reached chsub is appended again, whole, by the retry.
#
# FILE must have no other writer while this runs (several shippers into
# one file: run it under flock(1)).
#
# Exit status: 0 appended, 1 not appended, 2 usage.
set -u

me=append-batch.sh
if [ $# -ne 2 ] || [ -z "$1" ]; then
	echo "usage: $me FILE COUNT" >&2
	exit 2
fi
file=$1
count=$2
case $count in
'' | *[!0-9]*)
	echo "$me: COUNT is not a number: $count" >&2
	exit 2
	;;
esac

tmp=$(mktemp "${TMPDIR:-/tmp}/append-batch.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

cat >"$tmp" || { echo "$me: cannot read the batch" >&2; exit 1; }
# COUNT newlines, and a newline as the last byte: no line cut short.
lines=$(wc -l <"$tmp") || exit 1
lines=$((lines + 0))
last=$(tail -c 1 "$tmp" | od -An -tx1 | tr -d ' \n') || exit 1
if [ -s "$tmp" ] && [ "$last" != 0a ]; then
	echo "$me: $file: the batch ends in the middle of a line;" \
	    "nothing appended" >&2
	exit 1
fi
if [ "$lines" -ne "$count" ]; then
	echo "$me: $file: the batch holds $lines lines, not $count;" \
	    "nothing appended" >&2
	exit 1
fi
[ "$count" -gt 0 ] || exit 0

if [ -e "$file" ]; then
	size=$(wc -c <"$file") || exit 1
	size=$((size + 0))
else
	size=0
fi
if ! cat "$tmp" >>"$file"; then
	# Take the partial append back (dd with seek= and without
	# conv=notrunc truncates the file there).
	dd if=/dev/null of="$file" bs=1 seek="$size" 2>/dev/null ||
	    echo "$me: $file: cannot cut it back to $size bytes" >&2
	echo "$me: $file: cannot append the batch" >&2
	exit 1
fi
exit 0
