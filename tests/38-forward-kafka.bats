#!/usr/bin/env bats
# Forwarding to Kafka with kcat, where no broker can run: the recipe of
# examples/forwarding.md runs as written and fails (non-zero, nothing
# committed) when the broker refuses or never answers.  And what kcat
# does when it is signalled (it exits 0 with its message unconfirmed),
# generalised: a handler that chsub killed or timed out has failed,
# whatever it printed and whatever status it exited with.
#
# The silent broker is a Python listener on loopback that accepts
# connections and never answers (each accepted connection adds a line to
# $T/hole.conns).

setup() {
	load helpers/common
	load helpers/forward
	common_setup
	export T
	cd "$T"
	FWD="" HOLE=""
}

teardown() {
	[ -n "$FWD" ] && bg_running "$FWD" && kill -9 "$FWD" 2>/dev/null
	# A handler runs in a process group of its own: a kcat or sleep left
	# by a failed test goes with it.
	[ -s "$T/h.pid" ] && kill -9 -- "-$(cat "$T/h.pid")" 2>/dev/null
	common_teardown
}

need_kcat() {
	command -v kcat >/dev/null || skip "kcat is not installed"
}

# start_blackhole: the silent broker; its port in $HOLE_PORT.
start_blackhole() {
	start_bg python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.settimeout(1)
end = time.time() + 120
kept = []
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    kept.append(c)
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")
' "$T/hole.port" "$T/hole.conns"
	HOLE=$BG
	wait_for 10 test -s "$T/hole.port"
	HOLE_PORT=$(cat "$T/hole.port")
}

# kcat_recipe BROKER: the Kafka recipe's chsub arguments in ARGV, its
# brokers replaced by BROKER; its -x command in $XCMD.  In ARGV the
# command starts with exec: dash runs kcat as its child, and dies of the
# signal meant for kcat before kcat's exit status can show; a /bin/sh
# that execs a lone command (bash) hands chsub kcat's own status.
kcat_recipe() {
	local i
	recipe_argv "kcat -P" "kafka1:9092,kafka2:9092=$1"
	for ((i = 0; i < ${#ARGV[@]}; i++)); do
		if [[ ${ARGV[i]} == -x ]]; then
			XCMD=${ARGV[i + 1]}
			ARGV[i + 1]="exec $XCMD"
		fi
	done
	[[ $XCMD == 'kcat -P '* ]]
}

# One record in $CH, subscriber "fwd" registered before it; its offset
# stays 0 until a handler succeeds.
one_record() {
	new_channel
	choffset --create "$CH" fwd >/dev/null
	chpub "$CH" 'rec-0001 for kafka'
}

# --- kcat itself --------------------------------------------------------

@test "kcat: the recipe runs, and exits non-zero when the broker refuses or never answers: nothing is committed" {
	need_kcat
	start_blackhole
	kcat_recipe "127.0.0.1:$(free_port)"
	printf 'rec-0001' >"$T/rec"
	export CH_CHANNEL=/var/lib/chtools/logs CH_SEQ=0
	# Refused: librdkafka gives up once every broker is down.
	run --separate-stderr sh -c "$XCMD" <"$T/rec"
	assert_failure
	[[ $stderr == *"Connection refused"* ]] || fail "stderr: $stderr"
	# Silent: the delivery times out after message.timeout.ms (20 s in
	# the recipe; 1 s here).
	kcat_recipe "127.0.0.1:$HOLE_PORT"
	XCMD=${XCMD/message.timeout.ms=20000/message.timeout.ms=1000}
	run --separate-stderr timeout 30 sh -c "$XCMD" <"$T/rec"
	assert_failure 1
	[[ $stderr == *"timed out"* ]] || fail "stderr: $stderr"
	[ -s "$T/hole.conns" ]
	# The whole recipe: kcat fails, and the record stays uncommitted.
	unset CH_CHANNEL CH_SEQ
	one_record
	kcat_recipe "127.0.0.1:$(free_port)"
	run -69 --separate-stderr timeout 60 chsub "${ARGV[@]}" --retries=0
	[[ $stderr == *"failed 1 time (last status 1)"* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(choffset "$CH" fwd)" 0
}

@test "kcat: signalled with its message unconfirmed, it exits 0 (why chsub must not trust it)" {
	need_kcat
	start_blackhole
	kcat_recipe "127.0.0.1:$HOLE_PORT"
	printf 'rec-0001' >"$T/rec"
	# kcat maps the file to produce it, which sets its access time (on a
	# file system that keeps them): from the past, the time moves when
	# the message is queued.
	printf x >"$T/probe"
	touch -a -d 2000-01-01 "$T/rec" "$T/probe"
	cat "$T/probe" >/dev/null
	local atime=$(($(stat -c %X "$T/probe") > 946684800))
	CH_CHANNEL=/x CH_SEQ=0 sh -c "exec $XCMD" <"$T/rec" 2>"$T/kcat.err" &
	local k=$!
	((!atime)) || wait_until 20 '[ "$(stat -c %X "$T/rec")" -gt 946684800 ]'
	wait_for 20 test -s "$T/hole.conns"
	kill -TERM "$k"
	wait_exit 20 "$k"
	assert_equal "$WST" 0
	grep -q 'still in queue or transit' "$T/kcat.err"
}

# --- chsub with kcat ----------------------------------------------------

@test "kcat recipe: --handler-timeout stops kcat, which exits 0, and nothing is committed" {
	need_kcat
	start_blackhole
	one_record
	kcat_recipe "127.0.0.1:$HOLE_PORT"
	run -69 --separate-stderr timeout 60 chsub "${ARGV[@]}" \
	    --handler-timeout=1s --retries=0
	[[ $stderr == *"failed 1 time (last status timeout)"* ]] ||
		fail "stderr: $stderr"
	assert_equal "$(choffset "$CH" fwd)" 0
}

@test "kcat recipe: a second SIGTERM stops kcat, which exits 0, and its record is not committed" {
	need_kcat
	start_blackhole
	one_record
	kcat_recipe "127.0.0.1:$HOLE_PORT"
	start_recipe
	wait_for 20 test -s "$T/hole.conns"
	local h
	h=$(pgrep -P "$FWD")
	echo "$h" >"$T/h.pid"
	term_until_gone "$h"
	wait_exit 20 "$FWD"
	assert_equal "$WST" 0
	assert_equal "$(choffset "$CH" fwd)" 0
}

# --- any handler --------------------------------------------------------

# term_until_gone PID: send the forwarder SIGTERM until PID (its running
# handler) is gone: the second signal kills the handler (two signals
# sent at once may merge into one, so keep sending).
term_until_gone() {
	local i
	for i in $(seq 500); do
		proc_gone "$1" && return 0
		# (it may have just ended, and been reaped: no such process)
		kill -TERM "$FWD" 2>/dev/null || true
		sleep 0.02
	done
	echo "# handler $1 still running after 10 s of SIGTERMs" >&2
	return 1
}

# A handler that prints "delivered" and then hangs, exiting 0 on SIGTERM
# (what kcat does); its pid goes to $T/h.pid.
CLAIMER='echo $$ >"$T/h.pid"; trap "exit 0" TERM; echo delivered
    sleep 300 >/dev/null 2>&1 3>&- & wait'

@test "a handler that prints success and is then killed by a signal is not committed" {
	one_record
	run -69 --separate-stderr timeout 20 chsub --retries=1 --backoff=10ms \
	    -x 'cat >/dev/null; echo delivered; kill -TERM $$' "$CH" fwd
	assert_output "delivered
delivered"
	[[ $stderr == *"last status signal 15"* ]] || fail "stderr: $stderr"
	assert_equal "$(choffset "$CH" fwd)" 0
}

@test "--handler-timeout: a handler that exits 0 on SIGTERM is not committed" {
	# The timeout runs from the handler's start: a machine too loaded to
	# get it as far as its trap and "delivered" in 1 s killed it first.
	# Then the same again, on a fresh channel, with 4 s, and 16 s.
	local n
	for n in 1 4 16; do
		rm -rf "$CH"
		one_record
		run -69 --separate-stderr timeout $((n + 20)) chsub \
		    --handler-timeout="${n}s" --retries=0 -x "$CLAIMER" "$CH" fwd
		[[ $output != delivered ]] || break
	done
	assert_output delivered
	[[ $stderr == *"last status timeout"* ]] || fail "stderr: $stderr"
	assert_equal "$(choffset "$CH" fwd)" 0
}

@test "a second SIGTERM: a handler that exits 0 on SIGTERM is not committed, and runs again next time" {
	one_record
	ARGV=(-f -x "$CLAIMER" "$CH" fwd)
	start_recipe
	wait_for 10 test -s "$T/h.pid"
	term_until_gone "$(cat "$T/h.pid")"
	wait_exit 20 "$FWD"
	assert_equal "$WST" 0
	assert_equal "$(choffset "$CH" fwd)" 0
	run -0 timeout 10 chsub -x 'cat; echo' "$CH" fwd
	assert_output 'rec-0001 for kafka'
	assert_equal "$(choffset "$CH" fwd)" "$(chan_end fwd)"
}
