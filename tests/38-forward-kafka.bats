#!/usr/bin/env bats
# A handler that chsub killed or timed out has failed, whatever it printed
# and whatever status it exited with: kcat, for one, exits 0 when it is
# signalled with its message unconfirmed.

setup() {
	load helpers/common
	load helpers/forward
	common_setup
	export T
	cd "$T"
	FWD="" HOLE=""
}

teardown() {
	[ -n "$FWD" ] && kill -9 "$FWD" 2>/dev/null
	# A handler runs in a process group of its own: a kcat or sleep left
	# by a failed test goes with it.
	[ -s "$T/h.pid" ] && kill -9 -- "-$(cat "$T/h.pid")" 2>/dev/null
	common_teardown
}

# One record in $CH, subscriber "fwd" registered before it; its offset
# stays 0 until a handler succeeds.
one_record() {
	new_channel
	choffset --create "$CH" fwd >/dev/null
	chpub "$CH" 'rec-0001 for kafka'
}

# --- any handler --------------------------------------------------------

# term_until_gone PID: send the forwarder SIGTERM until PID (its running
# handler) is gone: the second signal kills the handler (two signals
# sent at once may merge into one, so keep sending).
term_until_gone() {
	local i
	for i in $(seq 500); do
		proc_gone "$1" && return 0
		kill -TERM "$FWD" 2>/dev/null
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
	one_record
	run -69 --separate-stderr timeout 20 chsub --handler-timeout=1s \
	    --retries=0 -x "$CLAIMER" "$CH" fwd
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
