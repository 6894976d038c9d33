#!/usr/bin/env bats
# The examples in examples/ work as written: the crontab's jobs run, the
# systemd unit passes systemd-analyze verify and its ExecStart line runs a
# worker that stops cleanly on SIGTERM, and the log-shipping and replay
# scripts run end to end.  The forwarding recipes run in
# 36-forward-redis, 37-forward-nats and 38-forward-kafka; the last test
# here sees that no example goes without a test.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	common_setup
	EX="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../examples"
	BIN=$(dirname "$(command -v chsub)")
}
teardown() { common_teardown; }

# --- crontab -------------------------------------------------------------

# cron_jobs: the commands of the crontab's job lines, one per line.
cron_jobs() {
	sed -n 's/^[0-9*][^ ]* [^ ]* [^ ]* [^ ]* [^ ]* //p' "$EX/crontab"
}

@test "crontab: every line is a comment, a variable or a five-field job" {
	local line n=0 re='^([0-9*/,-]+ ){5}[a-z]'
	while IFS= read -r line; do
		[[ -z $line || $line == '#'* || $line =~ ^[A-Z_]+= ]] && continue
		[[ $line =~ $re ]] || fail "not a crontab line: $line"
		[[ $line != *%* ]] || fail "cron turns % into a newline: $line"
		n=$((n + 1))
	done <"$EX/crontab"
	((n >= 3))
	run -0 cron_jobs
	assert_line --partial 'chcompact logs jobs'
	assert_line --partial 'chcompact --check logs jobs'
	assert_line --partial 'chlag --prometheus -o '
}

@test "crontab: the jobs compact, check and write the Prometheus file, silently" {
	local root=$T/root job vars=()
	# Two channels under CH_ROOT; "logs" has sealed segments that its one
	# subscriber has read, and another subscriber lagging behind.
	CH=$root/logs
	new_channel segment_bytes=4096
	fill 300
	chsub --from=earliest "$CH" shipper >/dev/null
	choffset -q --create --latest "$CH" late >/dev/null
	fill 10
	local before
	before=$(segments | wc -l)
	((before > 2))
	CH=$root/jobs
	new_channel
	fill 5
	choffset -q --create --earliest "$CH" worker >/dev/null
	mkdir "$T/textfile"

	# The crontab's variables, with the paths moved into $T.
	while IFS= read -r line; do
		case $line in
		CH_ROOT=*) vars+=("CH_ROOT=$root") ;;
		TEXTFILE_DIR=*) vars+=("TEXTFILE_DIR=$T/textfile") ;;
		PATH=*) vars+=("PATH=$BIN:${line#PATH=}") ;;
		[A-Z]*=*) vars+=("$line") ;;
		esac
	done <"$EX/crontab"
	[[ " ${vars[*]} " == *" SHELL=/bin/sh "* ]]

	while IFS= read -r job; do
		run env -i HOME="$HOME" "${vars[@]}" /bin/sh -c "$job"
		assert_success
		assert_output ""	# cron would mail anything printed
	done < <(cron_jobs)

	CH=$root/logs
	(($(segments | wc -l) < before)) || fail "chcompact deleted nothing"
	[[ -z $(ls -A "$T/textfile" | grep -v '^chlag\.prom$') ]] ||
		fail "leftover files: $(ls -A "$T/textfile")"
	run -0 cat "$T/textfile/chlag.prom"
	assert_line 'chlag_lag_records{channel="logs",subscriber="late"} 10'
	assert_line 'chlag_lag_records{channel="logs",subscriber="shipper"} 10'
	assert_line 'chlag_lag_records{channel="jobs",subscriber="worker"} 5'
	assert_line --partial '# TYPE chlag_lag_seconds gauge'
}

# --- chsub@.service ------------------------------------------------------

@test "chsub@.service: systemd-analyze verify accepts it" {
	command -v systemd-analyze >/dev/null ||
		skip "systemd-analyze is not installed"
	local unit=$EX/chsub@.service
	grep -qx 'Restart=on-failure' "$unit"
	grep -qx 'KillMode=mixed' "$unit"
	grep -qx 'KillSignal=SIGTERM' "$unit"
	grep -qx 'EnvironmentFile=/etc/default/chsub-%i' "$unit"
	# verify checks that the command exists: point it at the built chsub.
	mkdir "$T/units"
	sed "s|^ExecStart=/usr/local/bin/chsub |ExecStart=$BIN/chsub |" "$unit" \
		>"$T/units/chsub@.service"
	grep -q "^ExecStart=$BIN/chsub " "$T/units/chsub@.service"
	cp "$T/units/chsub@.service" "$T/units/chsub@mailer.service"
	cd "$T/units"
	run -0 systemd-analyze verify --man=no ./chsub@mailer.service
	assert_output ""
	# and it is not a rubber stamp: a broken unit fails
	sed -i 's/^Restart=on-failure/Restart=sometimes/' chsub@mailer.service
	run systemd-analyze verify --man=no ./chsub@mailer.service
	assert_output --partial sometimes
}

# exec_start INSTANCE ENVFILE: the unit's ExecStart as systemd runs it, one
# argument per line: specifiers %i and %%, ${VAR} as one word, $VAR split
# at whitespace, variables from ENVFILE (KEY=VALUE lines, as systemd
# reads them, without quotes).
exec_start() {
	local inst=$1 line w k v
	local -A env=()
	while IFS= read -r line; do
		[[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
		env[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	done <"$2"
	line=$(sed -n 's/^ExecStart=//p' "$EX/chsub@.service")
	[[ $line != *[\"\'\\]* ]] || { echo "quotes: emulation too simple"; return 1; }
	for w in $line; do
		w=${w//%i/$inst}
		w=${w//%%/%}
		if [[ $w =~ ^\$\{([A-Za-z_0-9]+)\}$ ]]; then
			printf '%s\n' "${env[${BASH_REMATCH[1]}]-}"
		elif [[ $w =~ ^\$([A-Za-z_0-9]+)$ ]]; then
			for v in ${env[${BASH_REMATCH[1]}]-}; do printf '%s\n' "$v"; done
		else
			[[ $w != *'$'* ]] || { echo "unhandled: $w"; return 1; }
			printf '%s\n' "$w"
		fi
	done
}

# run_unit INSTANCE: start the ExecStart line of the instance in the
# background (pid in $BG), with /usr/local/bin/chsub as the built one.
run_unit() {
	local -a argv
	mapfile -t argv < <(exec_start "$1" "$T/default/chsub-$1")
	[[ ${argv[0]} == /usr/local/bin/chsub ]]
	argv[0]=$BIN/chsub
	start_bg "${argv[@]}"
}

@test "chsub@.service: ExecStart runs the worker, which stops cleanly on SIGTERM" {
	mkdir "$T/default" "$T/out"
	new_channel
	# A handler command with a space, which must reach chsub as the one
	# argument of -x; the record "slow" takes a while.
	cat >"$T/handle-job" <<-EOF
		#!/bin/sh
		rec=\$(cat)
		if [ "\$rec" = slow ]; then touch "$T/out/started"; sleep 1; fi
		printf '%s %s\n' "\$rec" "\$CH_SUBSCRIBER" >>"$T/out/done"
	EOF
	cat >"$T/default/chsub-mailer" <<-EOF
		CHSUB_CHANNEL=$CH
		CHSUB_HANDLER=sh $T/handle-job
		CHSUB_OPTS=--retries=3 --backoff=10ms,50ms
	EOF
	run -0 exec_start mailer "$T/default/chsub-mailer"
	assert_output "/usr/local/bin/chsub
-f
--from=earliest
-x
sh $T/handle-job
--retries=3
--backoff=10ms,50ms
$CH
mailer"

	# Queued before the unit's first start: handled all the same.
	chpub "$CH" one two three
	run_unit mailer
	wait_for 10 test -f "$T/out/done"
	wait_for 10 grep -qx 'three mailer' "$T/out/done"
	chpub "$CH" slow
	wait_for 10 test -f "$T/out/started"
	kill -TERM "$BG"	# what systemctl stop does with KillMode=mixed
	local st=0
	wait "$BG" || st=$?
	assert_equal "$st" 0
	run -0 cat "$T/out/done"
	assert_output "one mailer
two mailer
three mailer
slow mailer"
	# The slow record was finished and committed: nothing is left.
	assert_equal "$(offset_of mailer)" "$(end_offset)"
}

@test "chsub@.service: a handler that keeps failing exits non-zero, for Restart=on-failure" {
	mkdir "$T/default"
	new_channel
	chpub "$CH" a b
	cat >"$T/default/chsub-failing" <<-EOF
		CHSUB_CHANNEL=$CH
		CHSUB_HANDLER=exit 3
		CHSUB_OPTS=--retries=1 --backoff=10ms
	EOF
	run_unit failing
	local st=0
	wait "$BG" || st=$?
	assert_equal "$st" 69
	# The offset stays on the failed record: the restart goes on there.
	assert_equal "$(offset_of failing)" 0
}

# --- log-shipping.sh -----------------------------------------------------

@test "log-shipping.sh: every record arrives once, in order, despite the outage" {
	WORK=$T/ship run -0 --separate-stderr sh "$EX/log-shipping.sh"
	assert_output "receiver up:      100 records received
receiver down
while it is down: 100 records received, 150 waiting in the channel
shipper stopped and started again during the outage
receiver up again
all 300 records delivered, in order, once"
	# The outage made the shipper retry, and say so.
	[[ $stderr == *"handler failed (status 1)"*"retrying"* ]]
	run -0 wc -l <"$T/ship/received.log"
	assert_output 300
	seq 1 300 | sed 's/^/app: event /' | cmp - "$T/ship/received.log"
	# Everything is committed; no chsub, chpub or tail is left running.
	CH=$T/ship/channels/logs
	assert_equal "$(offset_of shipper)" "$(end_offset)"
	run -1 pgrep -f "$T/ship/"
}

@test "log-shipping.sh: a chlag that cannot read the channel ends it at once with chlag's error, not with a time-out" {
	mkdir "$T/fake"
	cat >"$T/fake/chlag" <<-'EOF'
		#!/bin/sh
		echo "chlag: logs: cannot read it (a test)" >&2
		exit 3
	EOF
	chmod +x "$T/fake/chlag"
	# well under the script's 30 s wait for the lag
	PATH=$T/fake:$PATH WORK=$T/ship run -1 --separate-stderr \
	    command timeout 25 sh "$EX/log-shipping.sh"
	assert_output "receiver up:      100 records received
receiver down"
	[[ $stderr == *"chlag: logs: cannot read it (a test)"* ]] || fail "$stderr"
	[[ $stderr != *"timed out"* ]] || fail "$stderr"
	run -1 pgrep -f "$T/ship/"
}

# --- append-batch.sh ----------------------------------------------------

@test "append-batch.sh: a batch cut short appends nothing and fails; the whole batch is appended once" {
	local f=$T/app.log ab=$EX/append-batch.sh
	mkdir "$T/tmp"
	export TMPDIR=$T/tmp
	printf 'old line\n' >"$f"
	printf 'app: event 1\napp: event 2\napp: event 3\n' >"$T/batch"
	# What ssh hands over when the connection is lost in mid-batch:
	# fewer bytes, ending in the middle of a line.
	head -c 20 "$T/batch" >"$T/cut"
	run -1 --separate-stderr sh "$ab" "$f" 3 <"$T/cut"
	[[ $stderr == *"ends in the middle of a line; nothing appended" ]] ||
		fail "$stderr"
	# Cut at a line's end: fewer lines than CH_COUNT.
	run -1 --separate-stderr sh "$ab" "$f" 3 < <(head -n 2 "$T/batch")
	[[ $stderr == *"holds 2 lines, not 3; nothing appended" ]] || fail "$stderr"
	assert_equal "$(cat "$f")" "old line"
	# The whole batch (the retry), as chsub runs the shipper: once.
	new_channel
	chpub "$CH" <"$T/batch"
	AB=$ab F=$f run -0 timeout 30 chsub --from=earliest --batch=500 \
	    -x 'sh "$AB" "$F" "$CH_COUNT"' "$CH" shipper
	printf 'old line\napp: event 1\napp: event 2\napp: event 3\n' |
		cmp - "$f"
	assert_equal "$(offset_of shipper)" "$(end_offset)"
	# An append that fails half-way (here the file size limit) is taken
	# back: the file keeps its size, and no half line is left.
	head -c 1000 /dev/zero | tr '\0' z >"$T/big"
	run -1 sh -c 'ulimit -f 2 && exec sh "$1" "$2" 3' sh "$ab" "$T/big" \
	    <"$T/batch"
	assert_equal "$(wc -c <"$T/big")" 1000
	# Usage: no count, a count that is not a number.
	run -2 sh "$ab" "$f"
	run -2 sh "$ab" "$f" x </dev/null
	# Nothing left behind in the temp dir.
	assert_equal "$(ls -A "$T/tmp")" ""
}

# --- replay.sh -----------------------------------------------------------

# Three batches, an hour apart, and a subscriber that has read them all.
replay_channel() {
	CH_BIRTH=-1d new_channel
	fill 3 three-hours-ago -3h
	fill 3 two-hours-ago -2h
	fill 3 an-hour-ago -1h
	chsub --from=earliest "$CH" shipper >/dev/null
}

@test "replay.sh: prints the records of a time range (durations)" {
	replay_channel
	local before
	before=$(offset_of shipper)
	run -0 --separate-stderr sh "$EX/replay.sh" "$CH" 150m 90m
	assert_output "two-hours-ago-1 padding padding padding padding
two-hours-ago-2 padding padding padding padding
two-hours-ago-3 padding padding padding padding"
	assert_equal "$stderr" ""
	# The channel's own subscriber is untouched; the replay's is gone.
	run -0 choffset "$CH"
	assert_output "shipper $before"
}

@test "replay.sh: ISO 8601 times, and a command for each record" {
	replay_channel
	local from to
	from=$(date -u -d '-210 min' +%Y-%m-%dT%H:%M:%SZ)
	to=$(date -u -d '-90 min' +%Y-%m-%dT%H:%M:%SZ)
	run -0 sh "$EX/replay.sh" "$CH" "$from" "$to" \
		'read -r rec rest; echo "$rec at $CH_OFFSET"'
	assert_equal "${#lines[@]}" 6
	assert_line -n 0 --regexp '^three-hours-ago-1 at [0-9]+$'
	assert_line -n 5 --regexp '^two-hours-ago-3 at [0-9]+$'
	run -0 choffset "$CH"
	assert_output --regexp '^shipper [0-9]+$'
}

@test "replay.sh: an empty range says so; bad usage exits 2" {
	replay_channel
	run -0 --separate-stderr sh "$EX/replay.sh" "$CH" 30m 10m
	assert_output ""
	[[ $stderr == *"no records from 30m to 10m"* ]]
	run -2 sh "$EX/replay.sh" "$CH" 30m
	assert_output --partial usage
}

@test "replay.sh: a time choffset refuses, FROM or TO, fails with its error and status, not as an empty range" {
	replay_channel
	local before
	before=$(offset_of shipper)
	run -2 --separate-stderr sh "$EX/replay.sh" "$CH" 1h bogus
	assert_output ""
	[[ $stderr == "choffset: --time: invalid time 'bogus'"* ]] || fail "$stderr"
	[[ $stderr != *"no records"* ]] || fail "$stderr"
	run -2 --separate-stderr sh "$EX/replay.sh" "$CH" bogus 1h
	[[ $stderr == "choffset: --time: invalid time 'bogus'"* ]] || fail "$stderr"
	# the replay subscriber is gone either way
	run -0 choffset "$CH"
	assert_output "shipper $before"
}

@test "replay.sh: a corrupt record in the range fails with chsub's status before replaying anything, instead of replaying the records before it" {
	# A segment per hour: choffset --time finds TO by the index, without
	# reading the records before it.
	CH_BIRTH=-1d new_channel segment_age=30m
	fill 3 three-hours-ago -3h
	fill 3 two-hours-ago -2h
	fill 3 an-hour-ago -1h
	assert_equal "$(segments | wc -l)" 3
	# a byte of a record's payload, in the middle of the range (at the
	# end it would be a torn tail: not written yet, not corrupt)
	local seg pos
	seg=$(grep -l 'two-hours-ago-2' "$CH"/*.seg)
	pos=$(grep -abo 'two-hours-ago-2' "$seg" | cut -d: -f1)
	[[ $pos =~ ^[0-9]+$ ]] || fail "two-hours-ago-2 not found in $seg: $pos"
	flip_byte "$seg" $((pos + 5))
	run -65 --separate-stderr sh "$EX/replay.sh" "$CH" 4h 1m
	assert_output ""
	[[ $stderr == "chsub: $CH: corrupt record at offset "* ]] || fail "$stderr"
	[[ $stderr != *"no records"* ]] || fail "$stderr"
	# the replay subscriber is gone
	run -0 choffset "$CH"
	assert_output ""
}

# --- all of them ---------------------------------------------------------

@test "every example is listed in examples/README.md and named by the test that runs it" {
	local f name n=0 tests=${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}
	for f in "$EX"/*; do
		name=${f##*/}
		[[ $name == README.md ]] && continue
		# a program built from an example's source in an in-tree build
		[[ $(head -c 4 "$f") == $'\x7fELF' ]] && continue
		grep -qF "[\`$name\`]($name)" "$EX/README.md" ||
			fail "$name is not in the table of examples/README.md"
		grep -qF "$name" "$tests"/*.bats "$tests"/helpers/*.bash ||
			fail "no test names $name"
		n=$((n + 1))
	done
	((n >= 7))
}
