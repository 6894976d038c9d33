#!/bin/sh
# log-shipping.sh - ship an application log to a receiver through a
# channel, and survive the receiver going away for a while.
#
#   app --> app.log --tail -F--> chpub logs --> chsub -f -x SHIP --> receiver
#
# The channel is the local spool.  `chsub -x` hands each batch of records
# to SHIP and commits the offset only when SHIP exits 0; while the receiver
# is down, SHIP fails and chsub retries with backoff, the records wait on
# disk, and the shipper can even be stopped and started again.  When the
# receiver is back, everything arrives, in order, at least once.
#
# Run as is, it is a demonstration in a temporary directory (nothing outside
# it is touched; WORK=DIR to choose it and keep it).  In real life the
# producer and shipper are:
#
#   app 2>&1 | chpub logs
#   chsub -f --from=earliest --batch=500 --retries=1000000 \
#       --backoff=1s,1m --handler-timeout=5m \
#       -x 'ssh -o ServerAliveInterval=15 -o ServerAliveCountMax=3 loghost \
#           append-batch.sh /var/log/app.log "$CH_COUNT"' logs shipper
#
# The channel's guarantees start at chpub: pipe the application's output
# straight into it.  The demonstration's `tail -n +1 -F app.log | chpub
# logs` would publish the whole log again at every restart, with new
# sequence numbers (no id shows the copies), and `tail -F` sends the last
# 10 lines again and loses what was written while it was down.
#
# --from=earliest: a new subscriber starts at the end of the channel, and
# the records published before the shipper's first run would never be
# shipped; a restart resumes at the committed offset whatever it says.
# append-batch.sh, in this directory, is copied to loghost: it appends a
# batch to the file only when it holds CH_COUNT complete lines (chsub sets
# CH_COUNT), so a connection lost in mid-batch appends nothing, where
# `ssh loghost "cat >> /var/log/app.log"` would append half a line, with
# the retry's first line glued to it.  The ssh keepalives and
# --handler-timeout end an attempt stuck on a half-open connection, which
# would otherwise stall the shipper for good.  Run the shipper under a
# supervisor such as the chsub@.service unit in this directory.  (Or ship
# with curl -fsS --data-binary @- https://collector/ingest; see also
# examples/forwarding.md.)
#
# Nothing is lost, and no line is cut, but a batch can arrive twice: when
# the reply is lost (the batch was appended but ssh's exit status never
# came back, or chsub was killed before it committed), chsub hands the
# whole batch over again.  Exactly once takes a receiver that skips the
# records it already has, by CH_SEQ (a batch holds records CH_SEQ to
# CH_SEQ + CH_COUNT - 1), and stores each batch together with the last
# CH_SEQ it holds atomically (one transaction, or one file renamed into
# place).  The demonstration's receiver (append-batch.sh too) fails only
# before it writes anything, and its shipper stops cleanly, so there every
# record arrives exactly once.
set -eu

if [ -n "${WORK:-}" ]; then
	mkdir -p "$WORK"
	work=$WORK
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
export CH_ROOT="$work/channels"
log=$work/app.log
received=$work/received.log	# what the receiver has stored
down=$work/receiver-down	# while this file exists, the receiver is down
: >"$log"
: >"$received"
export RECEIVED="$received" DOWN="$down"

# The receiver, as a command: store the records from stdin, or fail while
# the receiver is down.  It must exit non-zero unless it stored the records.
# (append-batch.sh is run here as ssh runs it on loghost.)
APPEND_BATCH=$(cd "$(dirname "$0")" && pwd)/append-batch.sh
export APPEND_BATCH
SHIP='test ! -e "$DOWN" && sh "$APPEND_BATCH" "$RECEIVED" "$CH_COUNT"'

tail_pid= pub_pid= sub_pid=
cleanup() {
	for p in $sub_pid $tail_pid; do kill "$p" 2>/dev/null || true; done
	for p in $sub_pid $pub_pid $tail_pid; do wait "$p" 2>/dev/null || true; done
}
trap 'cleanup; [ -n "${WORK:-}" ] || rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS TEST...: poll until TEST succeeds; fail after SECONDS.
wait_until() {
	n=$(($1 * 10))
	shift
	until "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || { echo "log-shipping.sh: timed out: $*" >&2; exit 1; }
		sleep 0.1
	done
}
lines() { wc -l <"$1" | tr -d ' '; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
# lag: the shipper's lag in records.  chlag runs alone in the $(...), so
# that its status is seen (0, 1, 2: its Nagios state; 3: it could not
# read the channel); the callers end the script when lag fails.
lag() {
	report=$(chlag --prometheus logs) || [ $? -le 2 ] || return 1
	printf '%s\n' "$report" |
	    sed -n 's/^chlag_lag_records{.*subscriber="shipper"} //p'
}
lag_is() { now=$(lag) || exit 1; [ "$now" = "$1" ]; }
app_writes() { seq "$1" "$2" | sed 's/^/app: event /' >>"$log"; }

start_shipper() {
	chsub -f --batch=50 --retries=1000000 --backoff=50ms,200ms \
	    -x "$SHIP" logs shipper &
	sub_pid=$!
}
stop_shipper() {
	kill -TERM "$sub_pid"		# stops cleanly: commits what was shipped
	wait "$sub_pid" || true
	sub_pid=
}

# Create the channel and register the shipper at its start.
chpub logs </dev/null
choffset -q --create --earliest logs shipper >/dev/null

# The producer: follow the log into the channel.  A FIFO keeps tail's pid,
# so that stopping tail ends chpub's input and chpub exits by itself.
mkfifo "$work/pipe"
tail -n +1 -F "$log" >"$work/pipe" 2>/dev/null &
tail_pid=$!
chpub logs <"$work/pipe" &
pub_pid=$!

start_shipper

app_writes 1 100
wait_until 30 has_lines "$received" 100
echo "receiver up:      $(lines "$received") records received"

touch "$down"
echo "receiver down"
app_writes 101 250
wait_until 30 lag_is 150	# published; the shipper retries in vain
sleep 0.5
waiting=$(lag)
echo "while it is down: $(lines "$received") records received," \
    "$waiting waiting in the channel"

stop_shipper
echo "shipper stopped and started again during the outage"
app_writes 251 300
start_shipper
sleep 0.5

rm -f "$down"
echo "receiver up again"
wait_until 60 has_lines "$received" 300
kill "$tail_pid"
wait "$pub_pid"
pub_pid= tail_pid=
stop_shipper

if seq 1 300 | sed 's/^/app: event /' | cmp -s - "$received"; then
	echo "all $(lines "$received") records delivered, in order, once"
else
	echo "log-shipping.sh: received.log differs from app.log" >&2
	exit 1
fi
