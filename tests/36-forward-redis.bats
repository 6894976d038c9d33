#!/usr/bin/env bats
# "When users outgrow one machine": chsub -x as an at-least-once forwarder
# into a real Redis stream, through a Redis crash (kill -9) and restart.
#
# The forwarder is
#   chsub -f -x 'redis-cli -e -p PORT -x XADD stream "*" data' \
#       --retries=1000 --backoff=50ms,500ms CHANNEL fwd
# redis-cli -x reads the last argument (the record) from stdin.  -e is
# needed: without it redis-cli exits 0 on an error reply (LOADING while
# Redis reads its AOF after a restart, MISCONF, ...), and the record would
# be committed without being stored.  The first test pins that down.
#
# Redis runs with --appendfsync always, so that a write it acknowledged
# survives kill -9 (with everysec it may sit in Redis' own buffer).

setup() {
	load helpers/common
	common_setup
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		skip "redis-server and redis-cli are not installed"
	command -v jq >/dev/null || skip "jq is not installed"
	export T
	mkdir "$T/redis"
	REDIS=""
}

teardown() {
	# Forwarder first, so that it does not race a dying Redis.
	[ -n "${FWD:-}" ] && kill -TERM "$FWD" 2>/dev/null
	[ -n "$REDIS" ] && kill -9 "$REDIS" 2>/dev/null
	common_teardown
}

# proc_gone PID: PID has exited (a zombie counts as exited).
proc_gone() {
	local state
	[ -e "/proc/$1/stat" ] || return 0
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) ||
		return 0
	[ -z "$state" ] || [ "$state" = Z ]
}

# free_port: a TCP port on 127.0.0.1 that nobody listens on.
free_port() {
	local p i
	for i in $(seq 100); do
		p=$((20000 + RANDOM % 12768))	# below the ephemeral range
		if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

redis_up() { [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; }
redis_up_or_dead() { redis_up || proc_gone "$REDIS"; }

# start_redis: start redis-server with its data in $T/redis; $REDIS is its
# pid.  With PORT unset, on a free port (another one if that is taken in
# the meantime).  With PORT set, on that port, as a restart must be (the
# forwarder's command names it): retried while the port is still taken.
start_redis() {
	local try fixed=${PORT:+1}
	for try in $(seq 10); do
		[ -n "${PORT:-}" ] || PORT=$(free_port)
		start_bg redis-server --port "$PORT" --bind 127.0.0.1 \
		    --dir "$T/redis" --save '' --appendonly yes \
		    --appendfsync always --daemonize no \
		    --logfile "$T/redis.$try.log"
		REDIS=$BG
		wait_for 20 redis_up_or_dead
		redis_up && return 0
		grep -q 'Address already in use' "$T/redis.$try.log" || return 1
		if [ -n "$fixed" ]; then
			sleep 0.5	# a back-off before the same port again
		else
			PORT=""
		fi
	done
	return 1
}

# stream_values: the data field of every entry of "stream", in order.
stream_values() {
	redis-cli -p "$PORT" --json XRANGE stream - + | jq -r '.[][1][1]'
}

# stream_has_all N: the stream holds rec-0001 .. rec-N (and maybe dups).
stream_has_all() {
	[ "$(stream_values 2>/dev/null | sort -u | grep -c '^rec-')" -eq "$1" ]
}

offset_is() { [ "$(choffset "$CH" "$1")" = "$2" ]; }
chan_end() { choffset --dry-run --latest "$CH" fwd | awk '{ print $4 }'; }

# publish FROM TO: publish rec-FROM .. rec-TO, a few per chpub, so that
# they come in while the forwarder runs.
publish() {
	local i
	for ((i = $1; i <= $2; i += 5)); do
		chpub "$CH" $(seq -f 'rec-%04g' "$i" $((i + 4 < $2 ? i + 4 : $2)))
	done
}

# start_forwarder: the forwarder, in the background; $FWD is its pid.
start_forwarder() {
	start_bg chsub -f --ready-fd=4 --retries=1000 --backoff=50ms,500ms \
	    -x "redis-cli -e -p $PORT -x XADD stream '*' data >/dev/null" \
	    "$CH" fwd 4>"$T/ready" 2>"$T/fwd.err"
	FWD=$BG
	wait_for 10 test -s "$T/ready"
}

@test "redis-cli -e exits non-zero when Redis is down or replies an error" {
	PORT=$(free_port)
	run ! redis-cli -e -p "$PORT" -x XADD stream '*' data <<<down
	start_redis
	run -0 redis-cli -e -p "$PORT" -x XADD stream '*' data <<<up
	run ! redis-cli -e -p "$PORT" XADD stream '*'
	# Without -e, an error reply exits 0: a forwarder would lose records.
	run -0 redis-cli -p "$PORT" XADD stream '*'
	assert_output --partial ERR
}

@test "the forwarder copies records to a Redis stream unchanged and commits them" {
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	local recs=('rec-0001 with spaces' 'rec-0002 "quoted" $(touch pwned)'
	    "rec-0003 it's; a | b" 'rec-0004 *')
	chpub "$CH" "${recs[@]}"
	start_forwarder
	wait_until 20 'offset_is fwd "$(chan_end)"'
	assert_equal "$(stream_values)" "$(printf '%s\n' "${recs[@]}")"
	[ ! -e "$T/pwned" ]
}

@test "Redis killed and restarted mid-stream: every record arrives (duplicates allowed), none missing, the offset reaches the end" {
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	start_forwarder

	publish 1 60
	# Mid-stream: some records are in Redis, more are on their way.
	wait_until 20 '[ "$(redis-cli -p "$PORT" XLEN stream)" -ge 10 ]'
	kill -9 "$REDIS"
	wait_for 10 proc_gone "$REDIS"
	publish 61 80
	# The forwarder notices: the handler fails and is retried.
	wait_for 20 grep -q 'retrying' "$T/fwd.err"

	start_redis		# same port, same directory: the AOF is replayed
	publish 81 120
	wait_for 40 stream_has_all 120
	wait_until 20 'offset_is fwd "$(chan_end)"'

	local want got dups
	want=$(seq -f 'rec-%04g' 1 120)
	got=$(stream_values)
	# None missing, nothing foreign.
	assert_equal "$(sort -u <<<"$got")" "$want"
	dups=$(($(wc -l <<<"$got") - 120))
	echo "# duplicates: $dups" >&3
	# -P 1 keeps the order: a duplicate only ever repeats the record just
	# sent (its reply was lost), so squeezing repeats gives the sequence.
	assert_equal "$(uniq <<<"$got")" "$want"
	# The forwarder is still running, and its offset is the channel end.
	if proc_gone "$FWD"; then fail "the forwarder exited"; fi
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end)"
}
