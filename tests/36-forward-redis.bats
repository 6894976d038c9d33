#!/usr/bin/env bats
# "When users outgrow one machine": chsub -x as an at-least-once forwarder
# into a real Redis stream, through a Redis crash (kill -9) and restart,
# with the two recipes of examples/forwarding.md run as written: one
# record per run with
#   redis-cli -e -x XADD app-logs "*" id "$(uname -n):$CH_CHANNEL/$CH_SEQ" data
# (redis-cli -x reads the last argument, the record, from stdin), and
# batches with examples/redis-xadd-batch.sh (redis-cli --pipe).  -e is
# needed: without it redis-cli exits 0 on an error reply (LOADING while
# Redis reads its AOF after a restart, MISCONF, ...), and the record would
# be committed without being stored.  The first test pins that down.
#
# Redis runs with --appendfsync always, so that a write it acknowledged
# survives kill -9 (with everysec it may sit in Redis' own buffer).

setup() {
	load helpers/common
	load helpers/forward
	common_setup
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		skip "redis-server and redis-cli are not installed"
	command -v jq >/dev/null || skip "jq is not installed"
	export T
	# The batch recipe calls redis-xadd-batch.sh by name, as once
	# installed.
	PATH="$EX:$PATH"
	mkdir "$T/redis"
	REDIS="" FWD="" PORT=""
}

teardown() {
	# Forwarder first, so that it does not race a dying Redis.
	[ -n "$FWD" ] && stop_bg 20 "$FWD"
	[ -n "$REDIS" ] && kill -9 "$REDIS" 2>/dev/null
	common_teardown
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
		[ -n "$PORT" ] || PORT=$(free_port)
		RLOG=$T/redis.$((++RSTARTS)).log
		start_bg redis-server --port "$PORT" --bind 127.0.0.1 \
		    --dir "$T/redis" --save '' --appendonly yes \
		    --appendfsync always --daemonize no --logfile "$RLOG"
		REDIS=$BG
		wait_for 20 redis_up_or_dead
		redis_up && return 0
		grep -q 'Address already in use' "$RLOG" || return 1
		if [ -n "$fixed" ]; then
			sleep 0.5	# a back-off before the same port again
		else
			PORT=""
		fi
	done
	return 1
}
RSTARTS=0

# stream_entries: "ID<TAB>DATA" for every entry of app-logs, in order
# (the fields id and data of the recipes).
stream_entries() {
	redis-cli -p "$PORT" --json XRANGE app-logs - + |
		jq -r '.[][1] | "\(.[index("id") + 1])\t\(.[index("data") + 1])"'
}
stream_values() { stream_entries | cut -f2-; }

# forwarder RECIPE: start the recipe of examples/forwarding.md whose first
# line contains RECIPE, against this Redis, on $CH's subscriber fwd.
forwarder() {
	recipe_argv "$1" "redis.example=127.0.0.1" "6379=$PORT"
	start_recipe
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

@test "the forwarder copies records to a Redis stream unchanged, with their ids, and commits them" {
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	local recs=('rec-0001 with spaces' 'rec-0002 "quoted" $(touch pwned)'
	    "rec-0003 it's; a | b" 'rec-0004 *')
	chpub "$CH" "${recs[@]}"
	forwarder "-x 'redis-cli -e"
	wait_until 20 'offset_is fwd "$(chan_end fwd)"'
	assert_equal "$(stream_entries)" "$(printf "$(uname -n):$CH/%s\t%s\n" \
	    0 "${recs[0]}" 1 "${recs[1]}" 2 "${recs[2]}" 3 "${recs[3]}")"
	[ ! -e "$T/pwned" ]
}

@test "redis-xadd-batch.sh: one entry per line with ids HOST:CHANNEL/SEQ+i; non-zero on an error reply or no server" {
	start_redis
	export CH_CHANNEL='/srv/ch/a\nb' CH_SEQ=9999999998
	printf 'a b\r\n\n$(touch pwned) *\nlast' >"$T/batch"
	run -0 --separate-stderr redis-xadd-batch.sh app-logs -p "$PORT" <"$T/batch"
	assert_output ""
	local h=$(uname -n)
	assert_equal "$(stream_entries)" "$(printf '%s\t%s\n' \
	    "$h:/srv/ch/a\\nb/9999999998" $'a b\r' "$h:/srv/ch/a\\nb/9999999999" '' \
	    "$h:/srv/ch/a\\nb/10000000000" '$(touch pwned) *' \
	    "$h:/srv/ch/a\\nb/10000000001" last)"
	[ ! -e pwned ] && [ ! -e "$T/pwned" ]
	# An error reply (a key of another type), then no server at all.
	redis-cli -p "$PORT" SET not-a-stream x >/dev/null
	run -1 --separate-stderr redis-xadd-batch.sh not-a-stream -p "$PORT" \
	    <"$T/batch"
	[[ $stderr == *WRONGTYPE* ]] || fail "stderr: $stderr"
	run -1 redis-xadd-batch.sh app-logs -p "$(free_port)" <"$T/batch"
	run -2 redis-xadd-batch.sh
	# Nothing left behind in the temp dir.
	run -0 env TMPDIR="$T/tmp" sh -c 'mkdir "$TMPDIR" &&
	    redis-xadd-batch.sh app-logs -p "$1" <"$2" && ls -A "$TMPDIR"' \
	    sh "$PORT" "$T/batch"
	assert_output ""
}

@test "redis-xadd-batch.sh: --id-prefix replaces the host name; with CH_COUNT, a batch of another count sends nothing (3), and an empty stdin of one record is an empty record" {
	start_redis
	export CH_CHANNEL=/srv/ch/logs CH_SEQ=7
	redis-xadd-batch.sh --id-prefix=web2 app-logs -p "$PORT" <<<a
	CH_SEQ=8 redis-xadd-batch.sh --id-prefix web3 app-logs -p "$PORT" <<<b
	CH_SEQ=9 redis-xadd-batch.sh --id-prefix= app-logs -p "$PORT" <<<c
	CH_COUNT=1 run -3 --separate-stderr redis-xadd-batch.sh app-logs \
	    -p "$PORT" <<<$'d1\nd2'
	assert_equal "$stderr" "redis-xadd-batch.sh: app-logs: standard input holds 2 records, chsub handed over 1 (CH_COUNT): a record contains a newline; nothing sent"
	CH_COUNT=3 run -3 redis-xadd-batch.sh app-logs -p "$PORT" <<<$'d1\nd2'
	CH_SEQ=10 CH_COUNT=2 redis-xadd-batch.sh --id-prefix=h app-logs \
	    -p "$PORT" <<<$'d1\nd2'
	CH_SEQ=12 CH_COUNT=1 redis-xadd-batch.sh --id-prefix=h app-logs \
	    -p "$PORT" </dev/null
	# Not run by chsub: an empty stdin is no record.
	redis-xadd-batch.sh app-logs -p "$PORT" </dev/null
	CH_COUNT=x run -2 redis-xadd-batch.sh app-logs -p "$PORT" <<<e
	run -2 redis-xadd-batch.sh --id-prefix
	assert_equal "$(stream_entries)" "$(printf '%s\t%s\n' \
	    web2:/srv/ch/logs/7 a web3:/srv/ch/logs/8 b /srv/ch/logs/9 c \
	    h:/srv/ch/logs/10 d1 h:/srv/ch/logs/11 d2 h:/srv/ch/logs/12 '')"
}

# batch_forward SUB CHSUB-OPTION...: chsub with the batch handler (and
# the options) over $CH for SUB, to the end of the channel.
batch_forward() {
	local sub=$1
	shift
	run -0 --separate-stderr timeout 30 chsub "$@" \
	    -x "redis-xadd-batch.sh --id-prefix=h app-logs -p $PORT" "$CH" "$sub"
}

@test "--batch to Redis: a record with a newline fails its batch, and alone goes to the dead-letter channel; each other record is stored once, with its own id" {
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	chpub "$CH" A
	printf 'B1\nB2' | chpub --whole "$CH"
	chpub "$CH" C D
	batch_forward fwd --batch=100 --retries=1 --backoff=10ms \
	    --dead-letter="$T/dlq"
	assert_equal "$(stream_entries)" "$(printf "h:$CH/%s\t%s\n" 0 A 2 C 3 D)"
	printf 'B1\nB2' | cmp - <(chsub --peek "$T/dlq" -n 1 --format '%s')
	assert_equal "$(chsub --peek "$T/dlq" --format '%{status}')" 3
	[[ $stderr == *"contains a newline, the separator of --batch"* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end fwd)"
}

@test "--batch to Redis: an empty record is stored, alone after a split, and one record per run" {
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	choffset --create "$CH" one >/dev/null
	chpub "$CH" x '' y
	# A handler that fails every batch of more than one record: split.
	run -0 timeout 30 chsub --batch=100 --retries=0 -x "
	    [ \"\$CH_COUNT\" -gt 1 ] && exit 1
	    exec redis-xadd-batch.sh --id-prefix=h app-logs -p $PORT" "$CH" fwd
	assert_equal "$(stream_entries)" "$(printf "h:$CH/%s\t%s\n" 0 x 1 '' 2 y)"
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end fwd)"
	redis-cli -p "$PORT" DEL app-logs >/dev/null
	batch_forward one --batch=1
	assert_equal "$(stream_entries)" "$(printf "h:$CH/%s\t%s\n" 0 x 1 '' 2 y)"
}

# crash_story RECIPE ORDER N: the recipe forwards rec-0001 .. rec-N,
# published while it runs, and Redis is killed (kill -9) once some are
# in the stream, and restarted while more come in (same port, same
# directory: the AOF is replayed).  Then every record is there, in ORDER
# (see check_arrived), and the forwarder, still running, has committed
# the whole channel.
crash_story() {
	local n=$3
	start_redis
	new_channel
	choffset --create "$CH" fwd >/dev/null
	recipe_argv "$1" "redis.example=127.0.0.1" "6379=$PORT"
	fast_retries
	start_recipe

	publish 1 $((n / 2))
	# Mid-stream: some records are in Redis, more are on their way.
	wait_until 20 '[ "$(redis-cli -p "$PORT" XLEN app-logs)" -ge 5 ]'
	kill -9 "$REDIS"
	wait_for 10 proc_gone "$REDIS"
	publish $((n / 2 + 1)) $((n * 2 / 3))
	# The forwarder notices: the handler fails and is retried.
	wait_for 20 grep -q 'retrying' "$T/fwd.err"

	start_redis
	publish $((n * 2 / 3 + 1)) "$n"
	# The forwarder commits only what Redis acknowledged: once the
	# offset is at the end, everything is in the stream.
	wait_until 60 'offset_is fwd "$(chan_end fwd)"'

	stream_values | check_arrived "$n" "$2"
	if proc_gone "$FWD"; then fail "the forwarder exited"; fi
}

@test "Redis killed and restarted mid-stream, one record per run: every record arrives, in order" {
	crash_story "-x 'redis-cli -e" strict 40
}

# Redis stores a prefix of each batch here: a lost connection cuts the
# pipe, and its AOF is too small for a LOADING reply in mid-batch (see
# forwarding.md).
@test "Redis killed and restarted mid-stream, --batch: every record arrives, first arrivals in order" {
	crash_story "redis-xadd-batch.sh" first 120
}

@test "Redis killed and restarted mid-stream, batches with --batch-bytes and --linger: every record arrives, first arrivals in order" {
	crash_story "--linger=1s" first 120
}

# The recipes as a new user runs them: records are published before the
# forwarder's first run, with no `choffset --create` beforehand.  A new
# subscriber starts at the end of the channel, so only --from=earliest
# in the recipe gets those records sent; and a restart resumes at the
# commit (--from applies to a new subscriber only): nothing is sent
# twice after a clean stop.
@test "each Redis recipe sends the records published before its first run, and after a restart resumes at its commit" {
	start_redis
	local r n=0
	for r in "-x 'redis-cli -e" "redis-xadd-batch.sh" "--linger=1s"; do
		CH=$T/ch-$((++n))
		new_channel
		publish 1 12		# before the forwarder ever ran
		forwarder "$r"
		wait_until 20 'offset_is fwd "$(chan_end fwd)"'
		stop_bg 20 "$FWD"
		FWD=""
		publish 13 20		# while it is stopped
		forwarder "$r"
		wait_until 20 'offset_is fwd "$(chan_end fwd)"'
		stop_bg 20 "$FWD"
		FWD=""
		assert_equal "$(stream_values)" "$(seq -f 'rec-%04g' 1 20)"
		redis-cli -p "$PORT" DEL app-logs >/dev/null
	done
}
