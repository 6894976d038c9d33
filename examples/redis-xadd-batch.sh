#!/bin/sh
# redis-xadd-batch.sh - a chsub --batch handler that forwards its records to
# a Redis stream, at least once: one XADD per record, all of them in one
# round trip through `redis-cli --pipe`.
#
#   chsub -f --batch=1000 \
#       -x 'redis-xadd-batch.sh app-logs -h redis.example -p 6379' \
#       --retries=100000 --backoff=50ms,30s --handler-timeout=30s \
#       logs redis-fwd
#
# Usage: redis-xadd-batch.sh [--id-prefix=PREFIX] STREAM [REDIS-CLI-OPTION]...
#
# Standard input holds newline-terminated text records (chsub --batch=N,
# without -0).  Each becomes one stream entry with two fields:
#   id    PREFIX:CHANNEL/SEQ, from --id-prefix (the host name by default:
#         the same channel path on two hosts is two channels; an empty
#         PREFIX gives CHANNEL/SEQ), chsub's CH_CHANNEL and the record's
#         sequence number (CH_SEQ is the first record's), so that a
#         consumer can drop the duplicates that at-least-once delivery
#         brings
#   data  the record, without its newline
#
# chsub hands over CH_COUNT records.  Standard input must hold that many,
# or nothing is sent and the exit status is 3: a record that contains a
# newline would pass for two, and the records after it would take the
# next one's id.  Records with newlines need another handler (chsub -0)
# or chsub --batch=1 (one record per run; then empty standard input is
# one empty record).
#
# redis-cli --pipe counts the error replies (LOADING after a restart, OOM,
# WRONGTYPE...) and exits 1 if there is one, or if the connection fails or
# no reply comes: this script exits 0 only when Redis stored every record,
# and chsub commits nothing else.  Exit status: 0 stored, 1 not, 2 usage,
# 3 standard input does not hold CH_COUNT records.
set -eu

usage() {
	echo "usage: redis-xadd-batch.sh [--id-prefix=PREFIX] STREAM" \
	    "[REDIS-CLI-OPTION]..." >&2
	exit 2
}

prefix=$(uname -n)
case ${1-} in
--id-prefix=*) prefix=${1#--id-prefix=}; shift ;;
--id-prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
esac
if [ $# -lt 1 ] || [ -z "$1" ]; then
	usage
fi
stream=$1
shift

# The commands go through a file, not a pipe: a pipeline's status is its
# last command's, and redis-cli would succeed with half of them if awk
# failed half-way.
cmds=$(mktemp "${TMPDIR:-/tmp}/redis-xadd-batch.XXXXXX")
trap 'rm -f "$cmds"' EXIT
trap 'exit 1' HUP INT TERM

# Bulk strings are length-prefixed, so record bytes are never parsed as
# commands; LC_ALL=C makes awk's length() count bytes.  Strings come in
# through the environment (awk -v would interpret backslashes).  Sequence
# numbers are incremented as decimal strings: awk's numbers lose digits
# past 2^31 in some implementations (mawk).
status=0
XADD_STREAM=$stream XADD_PREFIX=$prefix LC_ALL=C awk '
BEGIN {
	stream = ENVIRON["XADD_STREAM"]
	ch = ENVIRON["CH_CHANNEL"]
	if (ENVIRON["XADD_PREFIX"] != "")
		ch = ENVIRON["XADD_PREFIX"] ":" ch
	seq = ENVIRON["CH_SEQ"]
	if (seq !~ /^[0-9]+$/)
		seq = "0"
	count = ENVIRON["CH_COUNT"]
	if (count !~ /^[0-9]*$/) {
		print "redis-xadd-batch.sh: CH_COUNT is not a number" >"/dev/stderr"
		bad = 1
		exit 2		# (END still runs)
	}
}
function bulk(s) { printf "$%d\r\n%s\r\n", length(s), s }
function inc(s,    i, d) {
	for (i = length(s); i > 0; i--) {
		d = substr(s, i, 1)
		if (d != "9")
			return substr(s, 1, i - 1) (d + 1) substr(s, i + 1)
		s = substr(s, 1, i - 1) "0" substr(s, i + 1)
	}
	return "1" s
}
function xadd(data) {
	printf "*7\r\n"
	bulk("XADD"); bulk(stream); bulk("*")
	bulk("id"); bulk(ch "/" seq)
	bulk("data"); bulk(data)
	seq = inc(seq)
}
{ xadd($0) }
END {
	if (bad)
		exit 2
	n = NR
	# One record without its newline (chsub --batch=1): empty is an
	# empty record, not an empty batch.
	if (n == 0 && count == "1") {
		xadd("")
		n = 1
	}
	if (count != "" && n != count + 0) {
		printf "redis-xadd-batch.sh: %s: standard input holds %d " \
		    "records, chsub handed over %s (CH_COUNT)%s; nothing " \
		    "sent\n", stream, n, count, (n > count + 0 ? ": a " \
		    "record contains a newline" : "") >"/dev/stderr"
		exit 3
	}
}' >"$cmds" || status=$?
[ "$status" -eq 0 ] || exit "$status"
redis-cli "$@" --pipe <"$cmds" >/dev/null
