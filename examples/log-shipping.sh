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
# producer and shipper are just:
#
#   tail -n +1 -F /var/log/app.log | chpub logs
#   chsub -f --batch=500 --retries=1000000 --backoff=1s,1m \
#       -x 'ssh loghost "cat >> /var/log/app.log"' logs shipper
#
# (or curl -fsS --data-binary @- https://collector/ingest; see also
# examples/forwarding.md).  Run the shipper under a supervisor such as the
# chsub@.service unit in this directory.
#
# Nothing is lost, but a record can arrive twice: a connection lost in the
# middle of a batch leaves part of it appended on loghost, ssh fails, and
# chsub hands the whole batch over again (as it does when the reply is
# lost, or when chsub is killed before it commits).  Exactly once takes a
# receiver that skips the records it already has, by CH_SEQ (a batch holds
# records CH_SEQ to CH_SEQ + CH_COUNT - 1), and stores each batch together
# with the last CH_SEQ it holds atomically (one transaction, or one file
# renamed into place).  The demonstration's receiver fails only before it
# writes anything, and its shipper stops cleanly, so there every record
# arrives exactly once.
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
SHIP='test ! -e "$DOWN" && cat >>"$RECEIVED"'

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
