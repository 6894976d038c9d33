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
# Usage: redis-xadd-batch.sh STREAM [REDIS-CLI-OPTION]...
#
# Standard input holds newline-terminated text records (chsub --batch=N,
# without -0).  Each becomes one stream entry with two fields:
#   id    CHANNEL/SEQ, from chsub's CH_CHANNEL and the record's sequence
#         number (CH_SEQ is the first record's), so that a consumer can
#         drop the duplicates that at-least-once delivery brings
#   data  the record, without its newline
#
# redis-cli --pipe counts the error replies (LOADING after a restart, OOM,
# WRONGTYPE...) and exits 1 if there is one, or if the connection fails or
# no reply comes: this script exits 0 only when Redis stored every record,
# and chsub commits nothing else.
set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
	echo "usage: redis-xadd-batch.sh STREAM [REDIS-CLI-OPTION]..." >&2
	exit 2
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
XADD_STREAM=$stream LC_ALL=C awk '
BEGIN {
	stream = ENVIRON["XADD_STREAM"]
	ch = ENVIRON["CH_CHANNEL"]
	seq = ENVIRON["CH_SEQ"]
	if (seq !~ /^[0-9]+$/)
		seq = "0"
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
{
	printf "*7\r\n"
	bulk("XADD"); bulk(stream); bulk("*")
	bulk("id"); bulk(ch "/" seq)
	bulk("data"); bulk($0)
	seq = inc(seq)
}' >"$cmds"
redis-cli "$@" --pipe <"$cmds" >/dev/null
