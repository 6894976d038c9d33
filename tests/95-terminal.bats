#!/usr/bin/env bats
# Terminal niceties: chlag colours its STATUS only on a terminal and
# honours NO_COLOR and TERM=dumb; progress lines (chsub --progress,
# chcompact --check) appear on stderr only when it is a terminal, are
# erased, and never reach a pipe or a file.  script(1) gives a terminal.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	common_setup
	command -v script >/dev/null || skip "script(1) is not installed"
	new_channel
}
teardown() { common_teardown; }

# on_tty CMD [COLUMNS]: run the shell command CMD with stdin, stdout and
# stderr on a pseudo-terminal COLUMNS wide (default 200); $output is what
# the terminal got.  script(1) is given /dev/null to read: with fd 0
# closed, the terminal it opens would take its place.
on_tty() {
	run script -qec "stty cols ${2:-200} && $1" /dev/null </dev/null
}

# --- chlag colours ---------------------------------------------------------

@test "chlag colours STATUS on a terminal, and only the STATUS" {
	fill 3
	choffset -q --create --earliest "$CH" s >/dev/null
	TERM=xterm on_tty "chlag '$CH'"
	assert_success
	assert_output --partial $'\e[32mOK\e[0m'
	# no other escape sequence than the colour of the status
	local rest=${output//$'\e[32mOK\e[0m'/}
	[[ $rest != *$'\e'* ]]
}

@test "chlag: NO_COLOR (non-empty) and TERM=dumb turn colours off" {
	fill 3
	choffset -q --create --earliest "$CH" s >/dev/null
	NO_COLOR=1 TERM=xterm on_tty "chlag '$CH'"
	assert_success
	assert_output --partial OK
	refute_output --partial $'\e'
	TERM=dumb on_tty "chlag '$CH'"
	assert_success
	refute_output --partial $'\e'
	# An empty NO_COLOR is as if it were unset (no-color.org).
	NO_COLOR= TERM=xterm on_tty "chlag '$CH'"
	assert_output --partial $'\e[32mOK\e[0m'
}

@test "chlag: no colour into a pipe or a file, even from a terminal" {
	fill 3
	choffset -q --create --earliest "$CH" s >/dev/null
	TERM=xterm on_tty "chlag '$CH' | cat"
	assert_success
	assert_output --partial OK
	refute_output --partial $'\e'
	TERM=xterm on_tty "chlag -o '$T/lag.txt' '$CH'"
	assert_success
	run -0 cat "$T/lag.txt"
	assert_output --partial OK
	refute_output --partial $'\e'
}

# --- chsub --progress ------------------------------------------------------

@test "chsub --progress: a progress line on a terminal's stderr, then erased" {
	fill 500
	choffset -q --create --earliest "$CH" s >/dev/null
	on_tty "chsub --progress '$CH' s >'$T/out'"
	assert_success
	# The line is drawn at once with the size of the backlog...
	assert_output --regexp $'^\r'"chsub: $CH: s: catching up: 0 B of [0-9.]+ KiB \\(0%\\), 0 of 500 records"
	# ...and erased at the end: the terminal ends on a blank line.
	[[ $output == *$'\r'*' '$'\r' ]]
	[[ $output != *$'\n'* ]]
	# stdout got the records and nothing else
	run -0 wc -l <"$T/out"
	assert_output 500
	run -1 grep -c 'catching up' "$T/out"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "a progress line is cut to the terminal's width" {
	fill 500
	choffset -q --create --earliest "$CH" s >/dev/null
	# a short relative name, so that the cut falls in the same place
	# whatever the length of $TMPDIR
	cd "$T"
	on_tty "chsub --progress ch s >/dev/null" 40
	assert_success
	assert_output --partial $'\r''chsub: ch: s: catching up: 0 B of'
	local IFS=$'\r' part
	for part in $output; do
		((${#part} <= 39)) || fail "longer than 39 columns: '$part'"
	done
}

@test "chsub --progress: nothing on stderr when it is not a terminal" {
	fill 50
	choffset -q --create --earliest "$CH" s >/dev/null
	choffset -q --create --earliest "$CH" t >/dev/null
	run -0 --separate-stderr chsub --progress "$CH" s
	assert_equal "${#lines[@]}" 50
	assert_equal "$stderr" ""
	# stdout on a terminal, stderr into a pipe or a file
	on_tty "chsub --progress '$CH' t 2>'$T/err' >/dev/null"
	assert_success
	assert_output ""
	[[ ! -s $T/err ]]
}

@test "chsub: no progress without --progress, or with -q, or when caught up" {
	fill 50
	choffset -q --create --earliest "$CH" s >/dev/null
	choffset -q --create --earliest "$CH" t >/dev/null
	on_tty "chsub '$CH' s >/dev/null"
	assert_success
	assert_output ""
	on_tty "chsub -q --progress '$CH' t >/dev/null"
	assert_success
	assert_output ""
	on_tty "chsub --progress '$CH' t >/dev/null"	# nothing left to read
	assert_success
	assert_output ""
}

@test "chsub --progress -x: progress counts handled records" {
	fill 5
	choffset -q --create --earliest "$CH" s >/dev/null
	on_tty "chsub --progress -x 'sleep 0.15' '$CH' s"
	assert_success
	assert_output --partial "1 of 5 records"
	assert_output --partial "4 of 5 records"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "chsub --progress: a warning does not share a line with the progress" {
	fill 3
	choffset -q --create --earliest "$CH" s >/dev/null
	on_tty "chsub --progress -x 'exit 1' --retries=1 --backoff=10ms '$CH' s"
	assert_failure 69
	# each message starts a line of its own (after the line was erased)
	assert_output --regexp $'\r +\rchsub: '"$CH"': handler failed'
}

# --- chcompact --check -----------------------------------------------------

@test "chcompact --check: progress on a terminal's stderr, erased at the end" {
	fill 200
	on_tty "chcompact --check '$CH'"
	assert_success
	assert_output --regexp $'^\r'"chcompact: $CH: checking: 0 B of [0-9.]+ KiB \\(0%\\), 0 of 200 records"
	[[ $output == *$'\r'*' '$'\r' ]]
	[[ $output != *$'\n'* ]]
}

@test "chcompact --check: no progress into a pipe, a file or with -q" {
	fill 200
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	on_tty "chcompact --check '$CH' 2>'$T/err'"
	assert_success
	assert_output ""
	[[ ! -s $T/err ]]
	on_tty "chcompact -q --check '$CH'"
	assert_success
	assert_output ""
}

@test "chcompact --check: problems are reported on lines of their own" {
	fill 200
	printf 'garbage' >>"$CH/$(segments | tail -1)"
	on_tty "chcompact --check '$CH'"
	assert_failure 65
	assert_output --regexp $'\r +\rchcompact: '"$CH"': .*torn tail'
}
