#!/usr/bin/env bats
# Forwarding into NATS JetStream with examples/chnats-pub.c (built by make
# check against Debian's libnats), against a real nats-server -js on
# loopback: what the client guarantees by itself, then the recipes of
# examples/forwarding.md run as written while the server is killed
# (kill -9) and restarted in the middle of the stream.  The stream is
# file-backed, so what JetStream acknowledged survives the kill.
#
# tests/helpers/nats-dump.c reads back what the stream holds: one line
# per message, "Nats-Msg-Id<TAB>payload", or one payload byte for byte.

setup() {
	load helpers/common
	load helpers/forward
	common_setup
	export T
	command -v nats-server >/dev/null || skip "nats-server is not installed"
	[ -x "$BUILT/examples/chnats-pub" ] && [ -x "$BUILT/tests/helpers/nats-dump" ] ||
		skip "chnats-pub is not built (libnats-dev is not installed)"
	# The recipes call chnats-pub by name, as once installed.
	PATH="$BUILT/examples:$PATH"
	DUMP=$BUILT/tests/helpers/nats-dump
	mkdir "$T/store"
	NATS="" FWD="" PORT=""
}

teardown() {
	# Forwarder first, so that it does not race a dying server.
	[ -n "$FWD" ] && stop_bg 20 "$FWD"
	[ -n "$NATS" ] && kill -9 "$NATS" 2>/dev/null
	common_teardown
}

nats_up() { grep -q 'Server is ready' "$NLOG" 2>/dev/null; }
nats_up_or_dead() { nats_up || proc_gone "$NATS"; }

# start_nats: nats-server with JetStream, its store in $T/store; $NATS is
# its pid, $URL its address.  With PORT unset, on a free port (another
# one if that is taken in the meantime); with PORT set, on that port, as
# a restart must be (the forwarder's command names it).
start_nats() {
	local try fixed=${PORT:+1}
	for try in $(seq 10); do
		[ -n "$PORT" ] || PORT=$(free_port)
		NLOG=$T/nats.$((++NSTARTS)).log
		start_bg nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$T/store" \
		    -l "$NLOG"
		NATS=$BG
		wait_for 20 nats_up_or_dead
		URL=nats://127.0.0.1:$PORT
		nats_up && return 0
		grep -q 'address already in use' "$NLOG" || return 1
		if [ -n "$fixed" ]; then
			sleep 0.5	# a back-off before the same port again
		else
			PORT=""
		fi
	done
	return 1
}
NSTARTS=0

# create_stream: the recipe's one-liner that creates stream APP_LOGS for
# app.logs, run as written against $URL.
create_stream() {
	local cmd
	cmd=$(recipe '--create-stream=')
	[[ $cmd == 'chnats-pub '* ]] || { echo "# no recipe: $cmd" >&2; return 1; }
	cmd=${cmd//nats:\/\/nats.example:4222/$URL}
	eval "$cmd"
}

# stream_lines: "ID<TAB>PAYLOAD" for every message of APP_LOGS, in order.
stream_lines() { "$DUMP" "$URL" APP_LOGS; }
stream_payloads() { stream_lines | cut -f2-; }

# stream_count: how many messages APP_LOGS holds (one request).
stream_count() { "$DUMP" -c "$URL" APP_LOGS; }

# --- chnats-pub by itself -----------------------------------------------

@test "chnats-pub: exits 1 without a server or a stream, 2 on bad usage; --create-stream makes the stream once" {
	run -1 --separate-stderr chnats-pub -s "nats://127.0.0.1:$(free_port)" \
	    app.logs <<<down
	[[ $stderr == *"chnats-pub: app.logs: connect to "* ]] ||
		fail "stderr: $stderr"
	start_nats
	run -1 --separate-stderr chnats-pub -s "$URL" app.logs <<<no-stream
	[[ $stderr == *"no stream answered"* ]] || fail "stderr: $stderr"
	run -0 create_stream
	run -0 create_stream
	run -0 chnats-pub -s "$URL" app.logs <<<stored
	assert_equal "$(stream_lines)" "$(printf -- '-\tstored')"
	run -2 chnats-pub
	run -2 chnats-pub -t soon app.logs
	run -2 chnats-pub -s , app.logs
	CH_CHANNEL=$'two\nlines' CH_SEQ=1 run -2 chnats-pub -s "$URL" app.logs
}

@test "chnats-pub: a record arrives byte for byte with Nats-Msg-Id HOST:CHANNEL/SEQ, and a redelivery is dropped as a duplicate" {
	start_nats
	create_stream
	printf 'bin\0ary\nwith a NUL, {{ .Template }}, $(touch pwned) and \377\n\n' \
		>"$T/rec"
	export CH_CHANNEL=/srv/ch/logs CH_SEQ=41
	run -0 --separate-stderr chnats-pub -v -s "$URL" app.logs <"$T/rec"
	[[ $stderr == *"1 records acknowledged, 0 of them duplicates"* ]] ||
		fail "stderr: $stderr"
	# Sent again (its acknowledgement was lost, say): acknowledged, not stored.
	run -0 --separate-stderr chnats-pub -v -s "$URL" app.logs <"$T/rec"
	[[ $stderr == *"1 records acknowledged, 1 of them duplicates"* ]] ||
		fail "stderr: $stderr"
	"$DUMP" "$URL" APP_LOGS 1 | cmp - "$T/rec"
	# The payload has three newlines; the id comes first.
	assert_equal "$(stream_lines | wc -l)" 4
	[[ $(stream_lines | head -n 1 | tr -d '\0') == "$(uname -n):/srv/ch/logs/41"$'\tbinary' ]]
	[ ! -e pwned ]
}

@test "chnats-pub -b: one message per newline- or NUL-terminated record, ids PREFIX:CHANNEL/SEQ+i" {
	start_nats
	create_stream
	export CH_CHANNEL=/srv/ch/logs CH_SEQ=9
	local h
	h=$(uname -n)
	printf 'a b\n\nlast one\n' | chnats-pub -b -s "$URL" app.logs
	printf 'x\0y\nz\0' | CH_SEQ=12 chnats-pub -b -0 -s "$URL" app.logs
	# The same records again, the first batch split as chsub retries a
	# failing batch: every id was seen, nothing is stored twice.
	printf 'a b\n' | chnats-pub -b -s "$URL" app.logs
	printf '\nlast one\n' | CH_SEQ=10 chnats-pub -b -s "$URL" app.logs
	printf 'x' | CH_SEQ=12 chnats-pub --no-msg-id -s "$URL" app.logs
	# Another prefix, none: other ids.
	printf 'a b\n' | chnats-pub -b --id-prefix=web2 -s "$URL" app.logs
	printf 'a b\n' | chnats-pub -b --id-prefix= -s "$URL" app.logs
	# (the record "y\nz" takes two lines)
	run -0 stream_lines
	assert_output "$(printf '%s\t%s\n' "$h:/srv/ch/logs/9" 'a b' \
	    "$h:/srv/ch/logs/10" '' "$h:/srv/ch/logs/11" 'last one' \
	    "$h:/srv/ch/logs/12" x "$h:/srv/ch/logs/13" $'y\nz' - x \
	    web2:/srv/ch/logs/9 'a b' /srv/ch/logs/9 'a b')"
	run -2 chnats-pub --id-prefix=$'a\nb' -s "$URL" app.logs
}

@test "chnats-pub: with CH_COUNT, standard input must hold that many records or nothing is sent (3); an empty stdin of one record is an empty record" {
	start_nats
	create_stream
	export CH_CHANNEL=/srv/ch/logs CH_SEQ=0
	CH_COUNT=1 run -3 --separate-stderr chnats-pub -b -s "$URL" app.logs \
	    <<<$'a1\na2'
	assert_equal "$stderr" "chnats-pub: app.logs: standard input holds 2 records, chsub handed over 1 (CH_COUNT): a record contains the separator (records with newlines need chsub -0 and -b -0, or chsub --batch=1 without -b); nothing sent"
	CH_COUNT=3 run -3 chnats-pub -b -s "$URL" app.logs <<<$'a1\na2'
	# A batch of chsub's handed to one message: -b is missing.
	CH_COUNT=2 run -3 --separate-stderr chnats-pub -s "$URL" app.logs \
	    <<<$'a1\na2'
	[[ $stderr == *"with chsub --batch, use -b"* ]] || fail "stderr: $stderr"
	CH_COUNT=x run -2 chnats-pub -b -s "$URL" app.logs <<<a
	CH_COUNT=2 chnats-pub -b --id-prefix=h -s "$URL" app.logs <<<$'a1\na2'
	printf 'b1\nb2' | CH_COUNT=1 CH_SEQ=2 chnats-pub --id-prefix=h \
	    -s "$URL" app.logs
	CH_COUNT=1 CH_SEQ=3 chnats-pub -b --id-prefix=h -s "$URL" app.logs \
	    </dev/null
	# Not run by chsub: an empty batch is no record.
	env -u CH_COUNT chnats-pub -b -s "$URL" app.logs </dev/null
	run -0 stream_lines
	assert_output "$(printf '%s\t%s\n' h:/srv/ch/logs/0 a1 h:/srv/ch/logs/1 a2 \
	    h:/srv/ch/logs/2 $'b1\nb2' h:/srv/ch/logs/3 '')"
}

# nats_forward SUB CHSUB-OPTION...: chsub over $CH for SUB, with
# chnats-pub -b (as the batch recipe) and the options, to the end of the
# channel.
nats_forward() {
	local sub=$1
	shift
	run -0 --separate-stderr timeout 30 chsub "$@" \
	    -x "chnats-pub -v -b -s $URL app.logs" "$CH" "$sub"
}

@test "--batch to NATS: a record with a newline fails its batch, and alone goes to the dead-letter channel; no other record is taken for a duplicate" {
	start_nats
	create_stream
	new_channel
	choffset --create "$CH" fwd >/dev/null
	chpub "$CH" A
	printf 'B1\nB2' | chpub --whole "$CH"
	chpub "$CH" C
	nats_forward fwd --batch=100 --retries=1 --backoff=10ms \
	    --dead-letter="$T/dlq"
	[[ $stderr == *"contains a newline, the separator of --batch"* ]] ||
		fail "stderr: $stderr"
	chpub "$CH" D E
	nats_forward fwd --batch=100 --retries=1 --backoff=10ms \
	    --dead-letter="$T/dlq"
	[[ $stderr == *"2 records acknowledged, 0 of them duplicates"* ]] ||
		fail "stderr: $stderr"
	run -0 stream_lines
	assert_output "$(printf "$(uname -n):$CH/%s\t%s\n" 0 A 2 C 3 D 4 E)"
	printf 'B1\nB2' | cmp - <(chsub --peek "$T/dlq" -n 1 --format '%s')
	assert_equal "$(chsub --peek "$T/dlq" --format '%{status}')" 3
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end fwd)"
}

@test "--batch to NATS: an empty record is stored, alone after a split, and one record per run" {
	start_nats
	create_stream
	new_channel
	choffset --create "$CH" fwd >/dev/null
	choffset --create "$CH" one >/dev/null
	chpub "$CH" x '' y
	# A handler that fails every batch of more than one record: split.
	run -0 timeout 30 chsub --batch=100 --retries=0 -x "
	    [ \"\$CH_COUNT\" -gt 1 ] && exit 1
	    exec chnats-pub -b --id-prefix=h -s $URL app.logs" "$CH" fwd
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end fwd)"
	# One record per run, other ids.
	run -0 timeout 30 chsub -x "chnats-pub -b --id-prefix=h1 -s $URL app.logs" \
	    "$CH" one
	run -0 stream_lines
	assert_output "$(printf "h:$CH/%s\t%s\n" 0 x 1 '' 2 y;
	    printf "h1:$CH/%s\t%s\n" 0 x 1 '' 2 y)"
}

@test "two hosts forwarding channels of the same path to one stream: every record is stored (ids start with the host name); a channel made again at the same path repeats its ids" {
	start_nats
	create_stream
	# Host A's channel, then host B's at the same path, as when both
	# run chpub with the same CH_ROOT.
	new_channel
	local ch=$CH
	chpub "$ch" a1 a2
	choffset --create --earliest "$ch" fwd >/dev/null
	nats_forward fwd --batch=10
	mv "$ch" "$T/host-a"
	chpub "$ch" b1 b2
	choffset --create --earliest "$ch" fwd >/dev/null
	run -0 --separate-stderr timeout 30 chsub --batch=10 \
	    -x "chnats-pub -v -b --id-prefix=host-b -s $URL app.logs" "$ch" fwd
	[[ $stderr == *"2 records acknowledged, 0 of them duplicates"* ]] ||
		fail "stderr: $stderr"
	run -0 stream_lines
	assert_output "$(printf '%s\t%s\n' "$(uname -n):$ch/0" a1 \
	    "$(uname -n):$ch/1" a2 "host-b:$ch/0" b1 "host-b:$ch/1" b2)"
	# The same host making the channel again, within the duplicate
	# window: its records are taken for the old ones (forwarding.md).
	mv "$ch" "$T/host-b"
	chpub "$ch" c1 c2
	choffset --create --earliest "$ch" fwd >/dev/null
	nats_forward fwd --batch=10
	[[ $stderr == *"2 records acknowledged, 2 of them duplicates"* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(stream_count)" 4
}

# --- the recipes, through a crash of the server -------------------------

# crash_story RECIPE ORDER N: the recipe forwards rec-0001 .. rec-N,
# published while it runs, and nats-server is killed (kill -9) once some
# are in the stream, and restarted while more come in.  Then every
# record is there, in ORDER (see check_arrived), each with its id, and
# the forwarder, still running, has committed the whole channel.  (A
# handler run costs some 30 ms of CPU: one record per run gets a smaller
# N, to keep the test short on a loaded machine.)
crash_story() {
	local n=$3
	start_nats
	create_stream
	new_channel
	choffset --create "$CH" fwd >/dev/null
	recipe_argv "$1" "nats://nats.example:4222=$URL"
	fast_retries
	start_recipe

	publish 1 $((n / 2))
	# Mid-stream: some records are in the stream, more are on their way.
	wait_until 20 '[ "$(stream_count)" -ge 5 ]'
	kill -9 "$NATS"
	wait_for 10 proc_gone "$NATS"
	publish $((n / 2 + 1)) $((n * 2 / 3))
	# The forwarder notices: the handler fails and is retried.
	wait_for 20 grep -q 'retrying' "$T/fwd.err"

	start_nats		# same port, same store: the stream is recovered
	publish $((n * 2 / 3 + 1)) "$n"
	# The forwarder commits only what JetStream acknowledged: once the
	# offset is at the end, everything is in the stream.
	wait_until 60 'offset_is fwd "$(chan_end fwd)"'

	stream_payloads | check_arrived "$n" "$2"
	# Each record carries its id, HOST:CHANNEL/SEQ (rec-0001 is seq 0).
	run -0 awk -F '\t' -v ch="$(uname -n):$CH" '
	    $1 != ch "/" (substr($2, 5) - 1) { print "wrong id: " $0; bad = 1 }
	    END { exit bad }' < <(stream_lines)
	if proc_gone "$FWD"; then fail "the forwarder exited"; fi
}

@test "NATS killed and restarted mid-stream, one record per run: every record arrives, in order" {
	crash_story "-x 'chnats-pub -s" strict 40
}

@test "NATS killed and restarted mid-stream, --batch: every record arrives, first arrivals in order" {
	crash_story "chnats-pub -b" first 120
}

# --- what the recipes' text says ------------------------------------------

# The recipes as a new user runs them: records are published before the
# forwarder's first run, with no `choffset --create` beforehand.  A new
# subscriber starts at the end of the channel, so only --from=earliest
# in the recipe gets those records sent.
@test "each NATS recipe sends the records published before its first run" {
	start_nats
	create_stream
	local r n=0
	for r in "-x 'chnats-pub -s" "chnats-pub -b"; do
		CH=$T/ch-$((++n))
		new_channel
		publish 1 12		# before the forwarder ever ran
		recipe_argv "$r" "nats://nats.example:4222=$URL"
		start_recipe
		wait_until 20 'offset_is fwd "$(chan_end fwd)"'
		stop_bg 20 "$FWD"
		FWD=""
		stream_lines | awk -F '\t' -v ch="$(uname -n):$CH/" \
		    'index($1, ch) == 1' | cut -f2- | check_arrived 12 strict
	done
}

# nats-server's max_payload is 1 MiB by default, the Nats-Msg-Id header
# included: a record of 1 MiB fails every attempt, as if the server were
# down.  The channel.yaml line of forwarding.md keeps it out of the
# channel, and lets a record at its limit through, header and all.
@test "records NATS cannot take: with forwarding.md's max_record_bytes line, chpub refuses a record of 1 MiB, and one at the limit goes through the recipe" {
	start_nats
	create_stream
	head -c 1048576 /dev/zero | tr '\0' x >"$T/1mib"
	# The stall: chnats-pub fails on it, with the status of an outage.
	CH_CHANNEL=$T/ch CH_SEQ=0 run -1 chnats-pub -s "$URL" app.logs \
	    <"$T/1mib"
	# The line as written, in place of the channel's default one.
	local line limit
	line=$(recipe 'max_record_bytes:')
	line=${line#"${line%%[! ]*}"}
	[[ $line == 'max_record_bytes: '* ]] || fail "no line: '$line'"
	new_channel
	sed -i "s|^max_record_bytes:.*|$line|" "$CH/channel.yaml"
	grep -qxF "$line" "$CH/channel.yaml"
	choffset --create "$CH" fwd >/dev/null
	# Refused where it is born, loudly (chpub(1): exit 1, the record
	# named by its position).
	run -1 --separate-stderr chpub --whole "$CH" <"$T/1mib"
	[[ $stderr == "chpub: $CH: input 1: record of 1048576 bytes exceeds max_record_bytes ("*")" ]] ||
		fail "stderr: $stderr"
	limit=${stderr##*\(}
	limit=${limit%\)}
	((limit < 1048576)) || fail "limit: $limit"
	assert_equal "$(chan_end fwd)" 0
	# A record at the limit, and one after it: both forwarded.
	head -c "$limit" /dev/zero | tr '\0' y >"$T/max"
	chpub --whole "$CH" <"$T/max"
	chpub "$CH" after
	recipe_argv "-x 'chnats-pub -s" "nats://nats.example:4222=$URL"
	start_recipe
	wait_until 30 'offset_is fwd "$(chan_end fwd)"'
	"$DUMP" "$URL" APP_LOGS 1 | cmp - "$T/max"
	assert_equal "$("$DUMP" "$URL" APP_LOGS 2)" after
	assert_equal "$(stream_count)" 2
}
