#!/usr/bin/env bats
# chsub handler mode (-x/--exec): what the handler gets (stdin, environment),
# when offsets are committed, batches, retries, dead letters, signals,
# timeouts, parallel handlers, --rate, and -f/-t/-n with a handler.
#
# Handlers are shell strings run by /bin/sh -c; they find the test's files
# through $T, which is exported (record data never goes into them).  A
# handler that must block waits for a file with "$T/await FILE" (bounded,
# so that nothing outlives a failed test for long); teardown creates
# $T/release and kills the processes whose pids are in $T/*.pid (if they
# still run in $T: a pid may have been reused).

setup() {
	load helpers/common
	common_setup
	export T
	cd "$T"
	DLQ="$T/dlq"
	cat >"$T/await" <<-'EOF'
	#!/bin/sh
	# await FILE: wait until FILE exists (at most about 20 s).
	i=0
	while [ ! -e "$1" ] && [ "$i" -lt 1000 ]; do
		sleep 0.02
		i=$((i + 1))
	done
	EOF
	chmod +x "$T/await"
}

teardown() {
	local f p
	touch "$T/release"
	for f in "$T"/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$T" ] &&
			kill -9 "$p" 2>/dev/null
	done
	common_teardown
}

# offset_of SUB: the committed offset of subscriber SUB of $CH.
offset_of() { choffset "$CH" "$1"; }

# offset_is SUB OFFSET: for wait_for.
offset_is() { [ "$(choffset "$CH" "$1")" = "$2" ]; }

# chan_end: the offset just past the last record of $CH.
chan_end() { choffset --dry-run --latest "$CH" s | awk '{ print $4 }'; }

# count_files DIR: number of entries in DIR.
count_files() { find "$1" -mindepth 1 -maxdepth 1 | wc -l; }
files_are() { [ "$(count_files "$1")" -eq "$2" ]; }

# pub RECORD...: publish, and append each record's offset to OFFS.
pub() {
	local o
	for o in $(chpub -p "$CH" "$@"); do
		OFFS+=("$o")
	done
}

# fresh: a channel with a subscriber "s" registered before any record.
fresh() {
	new_channel
	choffset --create "$CH" s >/dev/null
	OFFS=()
}

# --- what the handler gets -------------------------------------------------

@test "one record reaches the handler's stdin byte-exact, with no separator added" {
	fresh
	printf 'bin\0ary\nwith a NUL, a newline and \377\n\n' >"$T/rec"
	chpub --whole "$CH" <"$T/rec"
	run -0 timeout 10 chsub -x 'cat >"$T/got"' "$CH" s
	cmp "$T/rec" "$T/got"
}

@test "records published with -0 reach the handler one by one, byte-exact" {
	fresh
	printf 'one\ntwo lines\0\0three\0' | chpub -0 "$CH"
	run -0 timeout 10 chsub -x 'cat >"$T/got.$CH_SEQ"' "$CH" s
	printf 'one\ntwo lines' | cmp - "$T/got.0"
	cmp /dev/null "$T/got.1"
	printf 'three' | cmp - "$T/got.2"
}

@test "a large record is handed over whole, even to a handler that does not read it" {
	fresh
	head -c 3000000 /dev/urandom >"$T/big"
	chpub --whole "$CH" <"$T/big"
	chpub "$CH" after
	run -0 timeout 20 chsub -x 'true' "$CH" s
	assert_equal "$(offset_of s)" "$(chan_end)"
	choffset --earliest "$CH" s
	run -0 timeout 20 chsub -n 1 -x 'cat >"$T/got"' "$CH" s
	cmp "$T/big" "$T/got"
}

@test "the handler's environment describes its record" {
	fresh
	pub first second
	export CH_ROOT="$T"
	# Stale values from an outer handler must not leak through.
	run -0 env CH_OFFSET=999 CH_COUNT=42 CH_ATTEMPT=7 CH_SUBSCRIBER=x \
	    timeout 10 chsub -x 'printf "%s\n" "$CH_CHANNEL" \
	    "$CH_SUBSCRIBER" "$CH_OFFSET" "$CH_SEQ" "$CH_COUNT" "$CH_ATTEMPT" \
	    "$CH_TIMESTAMP" >"$T/env.$CH_SEQ"' ch s
	local i ts
	for i in 0 1; do
		ts=$(chsub --peek --from="${OFFS[i]}" -n 1 --format '%t' ch)
		[[ $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z$ ]]
		assert_equal "$(cat "$T/env.$i")" "$(printf '%s\n' "$T/ch" s \
		    "${OFFS[i]}" "$i" 1 1 "$ts")"
	done
}

@test "record data is never spliced into the command string" {
	fresh
	local recs=('$(touch pwned1)' '`touch pwned2`' '; touch pwned3'
	    '"; touch pwned4; "' "'; touch pwned5; '" '| touch pwned6'
	    '$CH_OFFSET' '%s%n')
	chpub "$CH" "${recs[@]}"
	run -0 timeout 10 chsub -x 'cat >>"$T/seen"; echo >>"$T/seen"' "$CH" s
	assert_equal "$(cat "$T/seen")" "$(printf '%s\n' "${recs[@]}")"
	run ls "$T"
	refute_output --partial pwned
}

# --- commits ---------------------------------------------------------------

@test "the offset is committed only after the handler exits 0" {
	fresh
	pub a b
	run -69 timeout 10 chsub -x 'cat >/dev/null; exit 1' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	run -0 timeout 10 chsub --retries=1 -x 'cat >/dev/null' "$CH" s
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "no dead-letter channel: exit 69, the offset stays at the failed record, the next run with more --retries gets it again" {
	fresh
	pub ok1 bad ok2
	local h='d=$(cat); echo "$CH_OFFSET" >>"$T/log"; [ "$d" != bad ] || exit 5'
	run -69 --separate-stderr timeout 10 chsub -x "$h" "$CH" s
	[[ $stderr == *"offset ${OFFS[1]}"* ]]
	[[ $stderr == *"status 5"* ]]
	assert_equal "$(offset_of s)" "${OFFS[1]}"
	# ok2 was never started: the run stopped at the failure.
	assert_equal "$(cat "$T/log")" "$(printf '%s\n' "${OFFS[0]}" "${OFFS[1]}")"
	: >"$T/log"
	run -69 timeout 10 chsub --retries=1 --backoff=10ms -x "$h" "$CH" s
	assert_equal "$(cat "$T/log")" "${OFFS[1]}"
	assert_equal "$(offset_of s)" "${OFFS[1]}"
}

@test "with -P, a failure without dead-letter channel commits up to the failed record and no further" {
	fresh
	pub r0 r1 r2 r3 r4 r5
	run -69 timeout 10 chsub -P 3 \
	    -x 'd=$(cat); [ "$d" != r1 ] || exit 3' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[1]}"
}

# --- batches ---------------------------------------------------------------

@test "--batch: each record is followed by a newline, CH_COUNT and CH_OFFSET describe the batch" {
	fresh
	pub r1 r2 r3 r4 r5
	run -0 timeout 10 chsub --batch=3 \
	    -x 'cat >"$T/batch.$CH_OFFSET"; echo "$CH_OFFSET $CH_COUNT" >>"$T/calls"' \
	    "$CH" s
	assert_equal "$(cat "$T/calls")" "$(printf '%s\n' "${OFFS[0]} 3" "${OFFS[3]} 2")"
	printf 'r1\nr2\nr3\n' | cmp - "$T/batch.${OFFS[0]}"
	printf 'r4\nr5\n' | cmp - "$T/batch.${OFFS[3]}"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--batch with -0: each record is followed by a NUL" {
	fresh
	printf 'a\nb\0\0c\0' | chpub -0 "$CH"
	run -0 timeout 10 chsub -0 --batch=10 \
	    -x 'cat >"$T/batch"; echo "$CH_COUNT" >"$T/count"' "$CH" s
	printf 'a\nb\0\0c\0' | cmp - "$T/batch"
	assert_equal "$(cat "$T/count")" 3
}

@test "--batch: a batch is committed as a whole, never part of it" {
	fresh
	pub r1 r2 r3
	# The handler gets the batch, then chsub dies before it can commit.
	run -137 timeout 10 chsub --batch=3 -x 'cat >/dev/null; kill -9 $PPID' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	run -0 timeout 10 chsub --batch=3 -x 'cat >"$T/got"' "$CH" s
	printf 'r1\nr2\nr3\n' | cmp - "$T/got"
}

@test "--batch: a failing batch is split and retried record by record; only the poison record is dead-lettered" {
	fresh
	pub a b POISON d e
	run -0 timeout 10 chsub --batch=5 --dead-letter="$DLQ" -x '
	    data=$(cat)
	    echo "$CH_OFFSET $CH_COUNT" >>"$T/calls"
	    case $data in *POISON*) exit 1;; esac
	    printf "%s\n" "$data" >>"$T/handled"' "$CH" s
	assert_equal "$(cat "$T/handled")" "$(printf '%s\n' a b d e)"
	assert_equal "$(head -n 1 "$T/calls")" "${OFFS[0]} 5"
	assert_equal "$(chsub --peek "$DLQ" --format '%s %{offset}\n')" "POISON ${OFFS[2]}"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--batch split around a gap record: the offset saved after the gap names the right record, so the next run reads on (not 65)" {
	fresh
	pub r1; pub r2; pub r3; pub r4
	# r3 damaged and replaced by a gap record standing for it.
	printf '\377' | dd of="$CH/00000000000000000000.seg" bs=1 \
	    seek=$((64 + OFFS[2] + 20)) conv=notrunc status=none
	run -0 chcompact --repair "$CH"
	# The batch fails, is split; r4 then fails for good: exit 69 with
	# the offset at r4, which is record 3 (r3 was record 2).
	run -69 timeout 10 chsub --batch=10 --retries=0 -x '
	    [ "$CH_COUNT" -gt 1 ] && exit 1
	    [ "$CH_OFFSET" = '"${OFFS[3]}"' ] && exit 1
	    exit 0' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[3]}"
	run -0 chcompact --check "$CH"
	# More retries let r4 through.
	run -0 timeout 10 chsub --retries=1 --backoff=10ms -x 'cat >>"$T/got"' "$CH" s
	assert_equal "$(cat "$T/got")" "r4"
}

@test "--batch: the records of a split batch keep their separator, so an empty record is its separator alone, never an empty stdin" {
	fresh
	choffset --create "$CH" s0 >/dev/null
	chpub "$CH" x '' y
	printf 'x\0\0y\0' | chpub -0 "$CH"
	# Each unit's CH_SEQ and stdin in hex; a batch fails and is split.
	local h='[ "$CH_COUNT" -gt 1 ] && exit 1
	    printf "%s %s\n" "$CH_SEQ" "$(od -An -tx1 | tr -d " \n")" >>"$T/units.$CH_SUBSCRIBER"'
	run -0 timeout 10 chsub --batch=10 --retries=0 -x "$h" "$CH" s
	assert_equal "$(cat "$T/units.s")" "$(printf '%s\n' '0 780a' '1 0a' \
	    '2 790a' '3 780a' '4 0a' '5 790a')"
	run -0 timeout 10 chsub -0 --batch=10 --retries=0 -x "$h" "$CH" s0
	assert_equal "$(cat "$T/units.s0")" "$(printf '%s\n' '0 7800' '1 00' \
	    '2 7900' '3 7800' '4 00' '5 7900')"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--batch ends where records were lost (damage skipped with --skip-corrupt, a gap record): record i of a batch is number CH_SEQ + i" {
	fresh
	choffset --create "$CH" s2 >/dev/null
	pub r0; pub r1; pub r2; pub r3; pub r4
	printf '\377' | dd of="$CH/00000000000000000000.seg" bs=1 \
	    seek=$((64 + OFFS[2] + 20)) conv=notrunc status=none
	local h='printf "%s %s %s\n" "$CH_SEQ" "$CH_COUNT" "$(tr "\n" " ")" >>"$T/units.$CH_SUBSCRIBER"'
	run -0 --separate-stderr timeout 10 chsub --skip-corrupt --batch=10 -x "$h" "$CH" s2
	assert_equal "$(cat "$T/units.s2")" "$(printf '%s\n' '0 2 r0 r1 ' '3 2 r3 r4 ')"
	# The same once a repair has written a gap record over the damage.
	run -0 chcompact --repair "$CH"
	run -0 --separate-stderr timeout 10 chsub --batch=10 -x "$h" "$CH" s
	assert_equal "$(cat "$T/units.s")" "$(printf '%s\n' '0 2 r0 r1 ' '3 2 r3 r4 ')"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "a record after lost records fails for good: the offset moves past them to it, with its retry state, so --retries holds across restarts" {
	fresh
	pub r0; pub r1; pub r2
	printf '\377' | dd of="$CH/00000000000000000000.seg" bs=1 \
	    seek=$((64 + OFFS[1] + 20)) conv=notrunc status=none
	run -0 chcompact --repair "$CH"
	run -69 timeout 10 chsub --retries=0 -x '[ "$(cat)" != r2 ]' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[2]}"
	[[ $(grep '^retry ' "$CH/subscribers/s/offset") == "retry ${OFFS[2]} 1 1 "* ]] ||
		fail "$(cat "$CH/subscribers/s/offset")"
	# Its attempts are used up: 69 again without running the handler.
	run -69 timeout 10 chsub --retries=0 -x 'touch "$T/ran"' "$CH" s
	[ ! -e "$T/ran" ]
}

@test "--batch: a record that contains the separator is handed over as it is, with a warning once a run" {
	fresh
	choffset --create "$CH" s0 >/dev/null
	choffset --create "$CH" s1 >/dev/null
	pub A
	OFFS+=("$(printf 'B1\nB2' | chpub -p --whole "$CH")")
	pub $'C1\nC2' D
	OFFS+=("$(printf 'E\0F' | chpub -p --whole "$CH")")
	run -0 --separate-stderr timeout 10 chsub --batch=10 -x 'cat >>"$T/got"' "$CH" s
	printf 'A\nB1\nB2\nC1\nC2\nD\nE\0F\n' | cmp - "$T/got"
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$stderr" "chsub: $CH: record at offset ${OFFS[1]} contains a newline, the separator of --batch: a handler that splits its input there reads more records than CH_COUNT (use -0, or --batch=1); not said again for others in this run"
	# With -0, the record holding a NUL; one record per run, none.
	run -0 --separate-stderr timeout 10 chsub -0 --batch=10 -x 'cat >/dev/null' "$CH" s0
	assert_equal "$stderr" "chsub: $CH: record at offset ${OFFS[4]} contains a NUL, the separator of --batch: a handler that splits its input there reads more records than CH_COUNT (use --batch=1); not said again for others in this run"
	run -0 --separate-stderr timeout 10 chsub --batch=1 -x 'cat >/dev/null' "$CH" s1
	assert_equal "$stderr" ""
	# -q silences it.
	choffset --earliest "$CH" s
	run -0 --separate-stderr timeout 10 chsub -q --batch=10 -x 'cat >/dev/null' "$CH" s
	assert_equal "$stderr" ""
}

@test "--batch: a corrupt record ends the run with 65 after the records before it are handled (retried, dead-lettered) and committed" {
	fresh
	choffset --create "$CH" s2 >/dev/null
	pub r1; pub r2; pub r3; pub r4
	printf '\377' | dd of="$CH/00000000000000000000.seg" bs=1 \
	    seek=$((64 + OFFS[2] + 20)) conv=notrunc status=none
	run -65 --separate-stderr timeout 10 chsub --batch=10 -x 'cat >>"$T/got"' "$CH" s
	[[ $stderr == *"corrupt record at offset ${OFFS[2]}"* ]] || fail "$stderr"
	printf 'r1\nr2\n' | cmp - "$T/got"
	assert_equal "$(offset_of s)" "${OFFS[2]}"
	# --batch-bytes, and a batch that fails: split, r2 dead-lettered,
	# r1 handled, and only then 65.
	run -65 timeout 10 chsub --batch-bytes=1K --retries=0 --dead-letter="$DLQ" -x '
	    d=$(cat); case $d in *r2*) exit 1;; esac
	    printf "%s\n" "$d" >>"$T/got2"' "$CH" s2
	assert_equal "$(cat "$T/got2")" r1
	assert_equal "$(chsub --peek "$DLQ" --format '%s %{offset}\n')" "r2 ${OFFS[1]}"
	assert_equal "$(offset_of s2)" "${OFFS[2]}"
	# A record before it that fails for good, no dead-letter channel: 69,
	# the offset at that record.
	choffset --create --earliest "$CH" s3 >/dev/null
	run -69 timeout 10 chsub --batch=10 --retries=0 -x 'exit 1' "$CH" s3
	assert_equal "$(offset_of s3)" "${OFFS[0]}"
}

@test "a full dead-letter channel is an error (75), even with on_full: block: chsub does not wait with its stop signals blocked" {
	fresh
	pub bad
	CH=$DLQ new_channel max_bytes=4096 on_full=block
	printf "%s\n" "$(printf 'x%.0s' {1..4000})" | chpub "$DLQ"
	# -k: before the fix only SIGKILL stopped it
	run -75 --separate-stderr timeout -k 5 20 chsub --dead-letter="$DLQ" -x 'exit 3' "$CH" s
	[[ $stderr == *"channel full"* ]] || fail "$stderr"
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	# Room made: the next run sends it.
	CH=$DLQ set_config max_bytes 1G
	run -0 timeout 20 chsub --dead-letter="$DLQ" -x 'exit 3' "$CH" s
	assert_equal "$(chsub --peek "$DLQ" --format '%{offset} %s\n' | tail -n 1)" "${OFFS[0]} bad"
}

@test "--batch-bytes: a batch holds at most SIZE bytes of stdin, a larger record goes alone" {
	fresh
	# stdin bytes with their newlines: 5 5 3 3 3 31 2 2
	pub aaaa bbbb cc dd ee "$(printf 'x%.0s' {1..30})" f g
	run -0 timeout 10 chsub --batch-bytes=10 \
	    -x 'echo "$CH_OFFSET $CH_COUNT $(wc -c)" >>"$T/calls"' "$CH" s
	assert_equal "$(cat "$T/calls")" "$(printf '%s\n' "${OFFS[0]} 2 10" \
	    "${OFFS[2]} 3 9" "${OFFS[5]} 1 31" "${OFFS[6]} 2 4")"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--batch-bytes with --batch: whichever limit is reached first ends the batch" {
	fresh
	pub a b c d e f g hhhhhhhh i
	run -0 timeout 10 chsub --batch=3 --batch-bytes=1K \
	    -x 'echo "$CH_COUNT $(wc -c)" >>"$T/calls"' "$CH" s
	run -0 timeout 10 chsub --from=earliest --batch=3 --batch-bytes=12 \
	    -x 'echo "$CH_COUNT $(wc -c)" >>"$T/calls2"' "$CH" s2
	assert_equal "$(cat "$T/calls")" "$(printf '%s\n' '3 6' '3 6' '3 13')"
	assert_equal "$(cat "$T/calls2")" "$(printf '%s\n' '3 6' '3 6' '2 11' '1 2')"
}

@test "--linger: following, a partial batch waits for more records and goes as one batch" {
	fresh
	start_bg chsub -f --batch=3 --linger=1h --ready-fd=4 \
	    -x 'cat >>"$T/got"; echo "$CH_COUNT" >>"$T/counts"' "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	pub r1
	pub r2
	pub r3
	wait_for 20 test -s "$T/counts"
	assert_equal "$(cat "$T/counts")" 3
	printf 'r1\nr2\nr3\n' | cmp - "$T/got"
	wait_until 10 'offset_is s "$(chan_end)"'
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
}

@test "--linger: a lone record is handed over once it has waited DUR, with no more input" {
	fresh
	start_bg chsub -f --batch=100 --linger=1s --ready-fd=4 \
	    -x 'date +%s%N >"$T/t1"; echo "$CH_COUNT $(cat)" >"$T/call"' \
	    "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	t0=$(date +%s%N)
	pub lone
	wait_for 20 test -s "$T/call"
	assert_equal "$(cat "$T/call")" "1 lone"
	# Not before it waited 1 s (nothing is said about how much later).
	(( $(cat "$T/t1") - t0 >= 1000000000 ))
	wait_until 10 'offset_is s "$(chan_end)"'
}

@test "--linger without -f holds nothing back: the last partial batch goes at the end of the channel" {
	fresh
	pub r1 r2
	run -0 timeout 10 chsub --batch=10 --linger=1h -x 'echo "$CH_COUNT" >>"$T/counts"' "$CH" s
	assert_equal "$(cat "$T/counts")" 2
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--linger: a record that makes the batch full sends it at once; -n ends a lingering batch" {
	fresh
	pub r1 r2 r3 r4
	run -0 timeout 10 chsub -f -n 3 --batch=10 --linger=1h \
	    -x 'echo "$CH_COUNT" >>"$T/counts"' "$CH" s
	assert_equal "$(cat "$T/counts")" 3
	assert_equal "$(offset_of s)" "${OFFS[3]}"
}

# --- retries ---------------------------------------------------------------

@test "--retries: a handler that fails twice then succeeds gets the same record three times and the channel moves on" {
	fresh
	pub one two
	run -0 timeout 20 chsub --retries=2 --backoff=10ms -x '
	    f="$T/n.$CH_OFFSET"
	    n=$(cat "$f" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >"$f"
	    echo "$(cat) $CH_ATTEMPT" >>"$T/log"
	    [ "$n" -ge 3 ]' "$CH" s
	assert_equal "$(cat "$T/log")" \
	    "$(printf '%s\n' 'one 1' 'one 2' 'one 3' 'two 1' 'two 2' 'two 3')"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--retries=N means N more attempts after the first" {
	fresh
	pub doomed
	run -69 --separate-stderr timeout 20 chsub --retries=2 --backoff=10ms \
	    -x 'echo "$CH_ATTEMPT" >>"$T/attempts"; exit 1' "$CH" s
	assert_equal "$(cat "$T/attempts")" "$(printf '%s\n' 1 2 3)"
	[[ $stderr == *"3 times"* ]]
	assert_equal "$(offset_of s)" "${OFFS[0]}"
}

@test "--backoff: retries wait at least MIN between attempts (a loose lower bound)" {
	fresh
	pub x
	run -69 timeout 20 chsub --retries=2 --backoff=200ms,1s \
	    -x 'date +%s%N >>"$T/times"; exit 1' "$CH" s
	mapfile -t t <"$T/times"
	assert_equal "${#t[@]}" 3
	# Each gap is at least MIN (200 ms); nothing is said about the maximum.
	(( t[1] - t[0] >= 200000000 ))
	(( t[2] - t[1] >= 200000000 ))
}

# --- retry state across restarts -------------------------------------------

# retry_line SUB: the retry line of SUB's offset file, if any.
retry_line() { grep '^retry ' "$CH/subscribers/$1/offset" || true; }

@test "a restarted chsub -x goes on with the attempt count and waits out the backoff of the last run" {
	fresh
	pub doomed
	local h='echo "$CH_ATTEMPT $(date +%s%N)" >>"$T/log"; exit 1'
	start_bg chsub --retries=5 --backoff=2s,2s -x "$h" "$CH" s
	wait_until 10 '[ -n "$(retry_line s)" ]'
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
	# retry OFFSET RECORDS ATTEMPTS LAST NEXT HOW CODE: attempt 1 failed,
	# and more if this shell took longer than the 2 s backoff to send
	# the signal (a loaded machine): the count goes on from that.
	[[ $(retry_line s) =~ ^retry\ ${OFFS[0]}\ 1\ ([0-9]+)\ [0-9]+\ [0-9]+\ exit\ 1$ ]] ||
		fail "retry line: $(retry_line s)"
	local a=${BASH_REMATCH[1]}
	assert_equal "$(wc -l <"$T/log")" "$a"
	start_bg chsub --retries=5 --backoff=2s,2s -x "$h" "$CH" s
	wait_until 20 '[ "$(wc -l <"$T/log")" -gt "$a" ]'
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	mapfile -t l <"$T/log"
	# Attempt a + 1, not 1 again, and not before the 2 s backoff after
	# attempt a (a lower bound only).
	assert_equal "${l[a]%% *}" $((a + 1))
	(( ${l[a]#* } - ${l[a - 1]#* } >= 2000000000 ))
	assert_equal "$(offset_of s)" "${OFFS[0]}"
}

@test "--retries holds across restarts: a record that used up its attempts fails at once, or goes to the dead-letter channel" {
	fresh
	pub doomed next
	local h='d=$(cat); echo "$d $CH_ATTEMPT" >>"$T/log"; [ "$d" != doomed ]'
	run -69 timeout 10 chsub --retries=1 --backoff=10ms -x "$h" "$CH" s
	assert_equal "$(cat "$T/log")" "$(printf '%s\n' 'doomed 1' 'doomed 2')"
	[[ $(retry_line s) == "retry ${OFFS[0]} 1 2 "*" - exit 1" ]] ||
		fail "retry line: $(retry_line s)"
	# The same limit again: no attempt left, the handler does not run.
	run -69 --separate-stderr timeout 10 chsub --retries=1 --backoff=10ms -x "$h" "$CH" s
	[[ $stderr == *"failed 2 times before this run"* ]] || fail "stderr: $stderr"
	assert_equal "$(wc -l <"$T/log")" 2
	# A higher limit goes on counting.
	run -69 timeout 10 chsub --retries=2 --backoff=10ms -x "$h" "$CH" s
	assert_equal "$(tail -n 1 "$T/log")" "doomed 3"
	# With a dead-letter channel, straight there; then the next record.
	run -0 timeout 10 chsub --retries=2 --backoff=10ms --dead-letter="$DLQ" -x "$h" "$CH" s
	assert_equal "$(tail -n 1 "$T/log")" "next 1"
	assert_equal "$(chsub --peek "$DLQ" --format '%s %{attempts} %{status}\n')" "doomed 3 1"
	assert_equal "$(offset_of s)" "$(chan_end)"
	assert_equal "$(retry_line s)" ""
	# The last record of the channel, straight there: the run ends.
	pub doomed
	run -69 timeout 10 chsub --retries=0 -x "$h" "$CH" s
	run -0 timeout 10 chsub --retries=0 --dead-letter="$DLQ" -x "$h" "$CH" s
	assert_equal "$(chsub --peek "$DLQ" --format '%s %{attempts}\n' | tail -n 1)" "doomed 1"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "a failing batch is retried after a restart with the same records and its count" {
	fresh
	pub r1 r2 r3
	# -n 2: a batch of 2; attempt 1 fails, chsub dies during attempt 2.
	local h='echo "$CH_OFFSET $CH_COUNT $CH_ATTEMPT" >>"$T/log"; cat >/dev/null
	    [ -e "$T/ok" ] && exit 0
	    [ "$CH_ATTEMPT" -lt 2 ] || [ -e "$T/killed" ] || { touch "$T/killed"; kill -9 $PPID; }
	    exit 1'
	run -137 timeout 10 chsub -n 2 --batch=3 --retries=5 --backoff=10ms,10ms -x "$h" "$CH" s
	pub r4 r5
	: >"$T/log"
	run -69 timeout 10 chsub --batch=10 --retries=2 --backoff=10ms -x "$h" "$CH" s
	# Not a batch of 5 from attempt 1: the same 2 records, attempt 2 again
	# (the one cut short), 3, then split into single records.
	assert_equal "$(sed -n 1,3p "$T/log")" "$(printf '%s\n' "${OFFS[0]} 2 2" \
	    "${OFFS[0]} 2 3" "${OFFS[0]} 1 1")"
	touch "$T/ok"
	: >"$T/log"
	# r1 alone used up its 3 attempts: a 4th with --retries=3.
	run -0 timeout 10 chsub --batch=10 --retries=3 --backoff=10ms -x "$h" "$CH" s
	assert_equal "$(cat "$T/log")" "$(printf '%s\n' "${OFFS[0]} 1 4" "${OFFS[1]} 4 1")"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "a batch that failed twice comes back whole after a restart with a smaller --batch or --batch-bytes: its count is the batch's, not its first record's" {
	fresh
	choffset --create "$CH" s2 >/dev/null
	pub r1 r2 r3
	local sub
	for sub in s s2; do
		# Attempts 1 and 2 fail; chsub is stopped during attempt 3,
		# which then fails too but does not count (a stop).
		rm -f "$T/third" "$T/go"
		start_bg chsub --batch=3 --retries=2 --backoff=10ms,10ms -x '
		    cat >/dev/null
		    [ "$CH_ATTEMPT" -ge 3 ] && { touch "$T/third"; "$T/await" "$T/go"; }
		    exit 1' "$CH" "$sub"
		wait_until 20 '[ -e "$T/third" ]'
		kill -TERM "$BG"
		touch "$T/go"
		wait_exit 20 "$BG"
		assert_equal "$WST" 0
		[[ $(retry_line "$sub") == "retry ${OFFS[0]} 3 2 "* ]] ||
			fail "retry line: $(retry_line "$sub")"
	done
	local h='printf "%s %s %s\n" "$CH_COUNT" "$CH_ATTEMPT" "$(od -An -c | tr -s " ")" >>"$T/log-$CH_SUBSCRIBER"
	    exit 1'
	run -0 timeout 20 chsub --retries=2 --backoff=10ms --dead-letter="$DLQ" -x "$h" "$CH" s
	run -0 timeout 20 chsub --batch-bytes=1 --retries=2 --backoff=10ms --dead-letter="$DLQ" -x "$h" "$CH" s2
	for sub in s s2; do
		# Its third attempt as the batch it was (separators and all),
		# then each record its own three.
		assert_equal "$(head -n 1 "$T/log-$sub")" '3 3  r 1 \n r 2 \n r 3 \n'
		assert_equal "$(sed -n '2,$p' "$T/log-$sub" | cut -d' ' -f1-2 | sort | uniq -c | tr -s ' ')" \
		    "$(printf ' 3 1 %s\n' 1 2 3)"
		assert_equal "$(offset_of "$sub")" "$(chan_end)"
	done
	assert_equal "$(chsub --peek "$DLQ" --format '%{subscriber} %s %{attempts}\n')" \
	    "$(printf 's %s 3\n' r1 r2 r3; printf 's2 %s 3\n' r1 r2 r3)"
}

@test "the retry state goes when the record succeeds, when choffset moves the subscriber, and when chsub reads it without -x" {
	fresh
	pub a b
	run -69 timeout 10 chsub --retries=0 -x 'exit 1' "$CH" s
	[ -n "$(retry_line s)" ]
	choffset --set="${OFFS[0]}" "$CH" s
	assert_equal "$(retry_line s)" ""
	run -69 timeout 10 chsub -x 'echo "$CH_ATTEMPT" >>"$T/attempts"; exit 1' "$CH" s
	assert_equal "$(cat "$T/attempts")" 1
	run -0 timeout 10 chsub -n 1 "$CH" s
	assert_output a
	assert_equal "$(retry_line s)" ""
	run -69 timeout 10 chsub -x 'exit 1' "$CH" s
	[ -n "$(retry_line s)" ]
	# (it used up its attempts: one more is needed)
	run -0 timeout 10 chsub --retries=1 -x 'cat >/dev/null' "$CH" s
	assert_equal "$(retry_line s)" ""
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "kill -9 during the backoff: the next run goes on with the count it had" {
	fresh
	pub x
	start_bg chsub --retries=9 --backoff=10ms,10ms -x 'echo "$CH_ATTEMPT" >>"$T/log"; [ "$CH_ATTEMPT" -lt 3 ] || kill -9 $PPID; exit 1' "$CH" s
	wait_exit 20 "$BG"
	assert_equal "$WST" 137
	run -69 timeout 10 chsub --retries=3 --backoff=10ms -x 'echo "$CH_ATTEMPT" >>"$T/log"; exit 1' "$CH" s
	# Attempts 1 and 2 failed and were kept; 3 was cut short by the
	# crash and is made again.
	assert_equal "$(cat "$T/log")" "$(printf '%s\n' 1 2 3 3 4)"
}

@test "a retry line about another offset, or a malformed one, makes the offset file corrupt (65)" {
	fresh
	pub a b
	run -69 timeout 10 chsub -x 'exit 1' "$CH" s
	local f="$CH/subscribers/s/offset" good
	good=$(cat "$f")
	# rewrite_retry SED: edit the retry line, fix the CRC.
	rewrite_retry() {
		printf '%s\n' "$good" | sed '/^crc32c /d' | sed "$1" >"$T/body"
		python3 -c 'import sys; from crc32c import crc32c
b = open(sys.argv[1], "rb").read()
sys.stdout.buffer.write(b + b"crc32c %08x\n" % crc32c(b))' "$T/body" >"$f"
	}
	rewrite_retry 's/^retry [0-9]*/retry 9/'
	run -65 --separate-stderr timeout 10 chsub -x true "$CH" s
	[[ $stderr == *malformed* ]] || fail "stderr: $stderr"
	rewrite_retry 's/ exit 1$/ exit 256/'
	run -65 timeout 10 chsub -x true "$CH" s
	rewrite_retry 's/ exit 1$/ crashed/'
	run -65 timeout 10 chsub -x true "$CH" s
	rewrite_retry 's/^\(retry [0-9]* \)1 /\10 /'
	run -65 timeout 10 chsub -x true "$CH" s
	# As written (the CRC recomputed the same): fine.
	rewrite_retry 's/x/x/'
	run -0 timeout 10 chsub --retries=1 -x true "$CH" s
}

@test "the retry line as channel(5) writes its grammar: negative times, '-', leading zeros in numbers, but not in a code, and codes in range" {
	fresh
	pub a b
	run -69 timeout 10 chsub -x 'exit 1' "$CH" s
	local f="$CH/subscribers/s/offset" o=${OFFS[0]} i
	local good=('1 2 -5000000000 -1000000000 exit 0' '001 0002 1 - signal 127'
	    '1 1 1 1 timeout')
	local bad=('1 1 1 1 signal 0' '1 1 1 1 signal 128' '1 1 1 1 exit 01'
	    '1 1 1 1 exit 1000' '1 1 1 1 timeout 1' '1 1 1 1 exit 1 '
	    '1 1 1 -- exit 1' '1 1 1 - ' '1 -1 1 1 exit 1' '1 1 1 1 EXIT 1'
	    '1 1 1 1  exit 1' '1 1 1 9223372036854775808 exit 1')
	# $T/v.N: the offset file with the retry line "retry $o REST" for the
	# Nth REST of good, then bad, its CRC fixed (one python3 for all).
	python3 - "$f" "$o" "$T/v" "${good[@]}" "${bad[@]}" <<'EOF'
import sys
from crc32c import crc32c
path, off, out, rests = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
body = b"".join(l for l in open(path, "rb").readlines()
                if not l.startswith((b"crc32c ", b"retry ")))
for i, rest in enumerate(rests):
    b = body + ("retry %s %s\n" % (off, rest)).encode()
    open("%s.%d" % (out, i), "wb").write(b + b"crc32c %08x\n" % crc32c(b))
EOF
	# Read as written: what chlag found in it (None once chsub gave up).
	chlag_reads() {
		cp "$T/v.$1" "$f"
		chlag --json "$CH" | python3 -c 'import json, sys
r = json.load(sys.stdin)[0]["retry"]
print(r["attempts"], r["last_status"], r["next_attempt"])'
	}
	assert_equal "$(chlag_reads 0)" "2 exit 0 1969-12-31T23:59:59Z"
	assert_equal "$(chlag_reads 1)" "2 signal 127 None"
	assert_equal "$(chlag_reads 2)" "1 timeout 1970-01-01T00:00:00Z"
	for i in "${!bad[@]}"; do
		cp "$T/v.$((i + ${#good[@]}))" "$f"
		run -65 --separate-stderr chsub -x true "$CH" s
		[[ $stderr == *malformed* ]] || fail "'retry $o ${bad[i]}': $stderr"
	done
}

# --- dead letters ----------------------------------------------------------

@test "a command that cannot be run (127, 126) stops the run with 69: nothing goes to the dead letters, and the next run tries it again" {
	# A typo in CMD, or another PATH under cron, failed every record: with
	# a dead-letter channel the whole backlog went there, exit 0.
	fresh
	pub r1 r2 r3
	run -69 --separate-stderr timeout 20 chsub --retries=1 --backoff=10ms \
	    --dead-letter="$DLQ" --batch=2 -x nosuchcmd-chtools "$CH" s
	assert_equal "${stderr_lines[-1]}" "chsub: $CH: the command could not be run for the record at offset ${OFFS[0]} (status 127: not found), 2 times; no record goes to the dead letters for that, and the offset stays uncommitted"
	[[ ! -e $DLQ ]] || assert_equal "$(chsub --peek --from=earliest "$DLQ" | wc -l)" 0
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	# Not executable: 126, the same.
	printf '#!/bin/sh\nexit 0\n' >"$T/noexec"
	chmod -x "$T/noexec"
	run -69 --separate-stderr timeout 20 chsub --dead-letter="$DLQ" -x "$T/noexec" "$CH" s
	[[ ${stderr_lines[-1]} == *"(status 126: not executable)"* ]]
	# Its attempts begin again in the next run: the fixed command runs.
	run -0 --separate-stderr timeout 20 chsub --dead-letter="$DLQ" --batch=2 \
	    -x 'cat >>"$T/got"' "$CH" s
	assert_equal "$stderr" "chsub: $CH: the command could not be run for the record at offset ${OFFS[0]} in the last run (status 126); trying it again"
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' r1 r2 r3)"
	assert_equal "$(offset_of s)" "$(chan_end)"
	[[ ! -e $DLQ ]] || assert_equal "$(chsub --peek --from=earliest "$DLQ" | wc -l)" 0
}

@test "a command that exits 127 for one record after it ran for others is that record's failure: dead-lettered as usual" {
	fresh
	pub a b c
	run -0 --separate-stderr timeout 20 chsub --dead-letter="$DLQ" \
	    -x 'read -r x; [ "$x" = b ] && exit 127; echo "$x" >>"$T/got"' "$CH" s
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' a c)"
	assert_equal "$(chsub --peek "$DLQ" --format '%{status} %s\n')" "127 b"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--dead-letter: a poison record ends in the dead-letter channel with its origin while the rest flow" {
	fresh
	printf 'POISON\0with\nbinary \377\n' >"$T/poison"
	pub ok1
	OFFS+=("$(chpub -p --whole "$CH" <"$T/poison")")
	pub ok2
	run -0 timeout 20 chsub --retries=1 --backoff=10ms --dead-letter="$DLQ" \
	    -x 'if grep -qa POISON; then exit 3; fi; echo "$CH_OFFSET" >>"$T/handled"' \
	    "$CH" s
	assert_equal "$(cat "$T/handled")" "$(printf '%s\n' "${OFFS[0]}" "${OFFS[2]}")"
	assert_equal "$(offset_of s)" "$(chan_end)"

	# Exactly one dead letter, payload byte-exact.
	assert_equal "$(chsub --peek "$DLQ" --format 'x\n')" x
	chsub --peek "$DLQ" --format '%s' >"$T/got"
	cmp "$T/poison" "$T/got"

	# Its origin, through --format and --json.
	run -0 chsub --peek "$DLQ" --format '%{channel} %{subscriber} %{offset} %{status} %{attempts}'
	assert_output "$CH s ${OFFS[1]} 3 2"
	local ts
	ts=$(chsub --peek --from="${OFFS[1]}" -n 1 --format '%t' "$CH")
	run -0 chsub --peek "$DLQ" --format '%{timestamp}|%{time}'
	[[ $output == "$ts|"* ]]
	[[ ${output#*|} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]
	run -0 bash -c 'chsub --peek "$1" --json | jq -r ".origin | [.channel,
	    .subscriber, .offset, .status, .attempts] | join(\" \")"' _ "$DLQ"
	assert_output "$CH s ${OFFS[1]} 3 2"
}

@test "a handler that writes to or truncates its stdin changes nothing: every attempt and the dead letter get the record as published" {
	# Its stdin was the unit's buffer itself, shared by every attempt:
	# what one attempt wrote there, the next read, and the dead letter
	# kept (or, truncated, could not be read back: exit 1, every run).
	local how
	for how in 'printf XXXXX 1<>/dev/stdin' 'truncate -s 2 /dev/stdin' \
	    'printf XXXXX >/dev/stdin'; do
		rm -rf "$CH" "$DLQ" "$T/seen"
		fresh
		pub 'hello world'
		run -0 timeout 20 chsub -q --retries=1 --backoff=10ms \
		    --dead-letter="$DLQ" -x "cat >>\"\$T/seen\"; echo >>\"\$T/seen\"; $how; exit 1" \
		    "$CH" s
		assert_equal "$(cat "$T/seen")" "$(printf 'hello world\nhello world')"
		assert_equal "$(chsub --peek "$DLQ" --format '%s\n')" "hello world"
		assert_equal "$(offset_of s)" "$(chan_end)"
	done
}

# long_path LEN: a path under $T of exactly LEN bytes (200-byte names).
long_path() {
	local p="$T/long" part
	while ((${#p} + 201 < $1)); do
		p+=/$(printf 'd%.0s' {1..200})
	done
	part=$(head -c $(($1 - ${#p} - 1)) /dev/zero | tr '\0' c)
	echo "$p/$part"
}

@test "dead letters of a channel whose path is up to PATH_MAX long keep their whole origin, nothing after it" {
	local len dlq
	for len in 1000 2100 4095; do
		CH=$(long_path "$len")
		((${#CH} == len))
		mkdir -p "$(dirname "$CH")"
		fresh
		pub x
		dlq="$T/dlq$len"
		run -0 timeout 10 chsub --dead-letter="$dlq" -x 'cat >/dev/null; exit 7' "$CH" s
		chsub --peek "$dlq" --format '%{channel}|%{subscriber}|%{offset}|%{seq}|%{status}|%{attempts}|%s\n' >"$T/got"
		printf '%s|s|%s|0|7|1|x\n' "$CH" "${OFFS[0]}" >"$T/want"
		cmp "$T/want" "$T/got"
		run -0 bash -c 'chsub --peek "$1" --json | jq -r ".origin | [.channel, .subscriber,
		    .offset, .status] | join(\"|\")"' _ "$dlq"
		assert_output "$CH|s|${OFFS[0]}|7"
		# the metadata holds the origin lines and nothing else
		chsub --peek "$dlq" --json | jq -r '.origin | keys | join(" ")' >"$T/keys"
		assert_equal "$(cat "$T/keys")" "attempts channel offset seq status subscriber time timestamp"
	done
}

@test "a dead-letter write that fails ends the run (1) with the attempts saved as used up: the next run does not run CMD again; with -P the other commands finish first" {
	fresh
	pub bad
	touch "$T/afile"
	local h='echo "$(cat) $CH_ATTEMPT" >>"$T/log"; exit 1'
	run -1 --separate-stderr timeout 10 chsub --retries=1 --backoff=10ms \
	    --dead-letter="$T/afile/dl" -x "$h" "$CH" s
	[[ $stderr == *"dead-letter channel $T/afile/dl: "* ]] || fail "$stderr"
	[[ $(retry_line s) == "retry ${OFFS[0]} 1 2 "*" - exit 1" ]] ||
		fail "retry line: $(retry_line s)"
	run -1 timeout 10 chsub --retries=1 --backoff=10ms \
	    --dead-letter="$T/afile/dl" -x "$h" "$CH" s
	assert_equal "$(cat "$T/log")" "$(printf '%s\n' 'bad 1' 'bad 2')"
	run -0 timeout 10 chsub --retries=1 --backoff=10ms --dead-letter="$DLQ" -x "$h" "$CH" s
	assert_equal "$(wc -l <"$T/log")" 2
	assert_equal "$(chsub --peek "$DLQ" --format '%s %{attempts}\n')" "bad 2"
	assert_equal "$(offset_of s)" "$(chan_end)"
	assert_equal "$(retry_line s)" ""
	# -P 2: "slow" runs beside "bad2", whose dead-letter write fails;
	# chsub lets it finish, and nothing is committed past bad2.
	pub bad2 slow
	start_bg chsub -P 2 --retries=0 --dead-letter="$T/afile/dl" -x '
	    case $(cat) in
	    slow) touch "$T/slow-started"; "$T/await" "$T/go"
	          echo done >"$T/slow-done";;
	    *) "$T/await" "$T/slow-started"; exit 1;;
	    esac' "$CH" s 2>"$T/err"
	wait_until 20 '[ -n "$(retry_line s)" ]'
	touch "$T/go"
	wait_exit 20 "$BG"
	assert_equal "$WST" 1
	grep -q "dead-letter channel $T/afile/dl: " "$T/err" || fail "$(cat "$T/err")"
	assert_file_exists "$T/slow-done"
	assert_equal "$(offset_of s)" "${OFFS[1]}"
	[[ $(retry_line s) == "retry ${OFFS[1]} 1 1 "*" - exit 1" ]] ||
		fail "retry line: $(retry_line s)"
}

@test "channel.yaml dead_letter is used when --dead-letter is absent, and the option wins over it" {
	fresh
	set_config dead_letter "$DLQ"
	pub bad1
	run -0 timeout 10 chsub -x 'cat >/dev/null; exit 1' "$CH" s
	assert_equal "$(chsub --peek "$DLQ" --format '%s\n')" bad1
	pub bad2
	run -0 timeout 10 chsub --dead-letter="$T/other" -x 'cat >/dev/null; exit 1' "$CH" s
	assert_equal "$(chsub --peek "$T/other" --format '%s\n')" bad2
	assert_equal "$(chsub --peek "$DLQ" --format '%s\n')" bad1
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "a dead-letter channel that is the channel being read is refused (2), however it is named, before anything is read or registered" {
	fresh
	pub bad
	ln -s "$CH" "$T/link"
	mkdir "$T/sub"
	local dl
	for dl in "$CH" "$CH/" "$T/./ch" "$T/sub/../ch" ch ./ch "$T/link" "link/"; do
		run -2 --separate-stderr timeout 10 chsub --dead-letter="$dl" -x 'cat >/dev/null; exit 1' "$CH" s
		assert_equal "${stderr%%$'\n'*}" "chsub: --dead-letter: '$dl' is the channel being read (failed records would come back to it forever)"
		run -2 timeout 10 chsub --dead-letter="$dl" -x 'exit 1' "$CH" newcomer
	done
	# a name under CH_ROOT
	run -2 --separate-stderr env CH_ROOT="$T" timeout 10 chsub --dead-letter=ch -x 'exit 1' ch s
	[[ $stderr == "chsub: --dead-letter: 'ch' is the channel being read"* ]]
	# nothing consumed, nothing published, nobody new registered
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	run -0 chsub --peek --from=earliest --format='%s\n' "$CH"
	assert_output bad
	run -0 choffset "$CH"
	assert_output "s ${OFFS[0]}"
	# a different channel is fine
	run -0 timeout 10 chsub --dead-letter="$DLQ" -x 'cat >/dev/null; exit 1' "$CH" s
	assert_equal "$(chsub --peek "$DLQ" --format '%s\n')" bad
}

@test "channel.yaml dead_letter naming the channel itself is a bad channel.yaml (78), with its line and column" {
	fresh
	pub bad
	set_config dead_letter "$T/./ch"
	local line
	line=$(grep -n '^dead_letter:' "$CH/channel.yaml" | cut -d: -f1)
	run -78 --separate-stderr timeout 10 chsub -x 'cat >/dev/null; exit 1' "$CH" s
	assert_equal "$stderr" "chsub: $CH: channel.yaml:$line:14: dead_letter: '$T/./ch' is this channel itself (failed records would come back to it forever)"
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	# the option overrides it
	run -0 timeout 10 chsub --dead-letter="$DLQ" -x 'cat >/dev/null; exit 1' "$CH" s
	# and without -x it does not matter
	run -0 chsub "$CH" other
}

@test "a dead-letter name that comes to mean the channel being read while chsub runs is refused when a record fails, not looped on" {
	fresh
	pub bad next
	# the handler itself puts a symlink to the channel where the
	# dead-letter channel was going to be created
	run --separate-stderr timeout 20 chsub --dead-letter="$T/later" \
	    -x 'cat >/dev/null; ln -sfn "$T/ch" "$T/later"; exit 1' "$CH" s
	assert_equal "$status" 2
	[[ $stderr == *"dead-letter channel $T/later is the channel being read" ]]
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	run -0 chsub --peek --from=earliest --format='%s\n' "$CH"
	assert_output "bad
next"
}

@test "two channels each other's dead-letter channel: a dead letter that fails again goes back, as the contract says, with a warning that names the loop" {
	fresh
	pub bad good
	# the channel's consumer fails 'bad' into DLQ
	run -0 timeout 20 chsub --dead-letter="$DLQ" \
	    -x 'd=$(cat); [ "$d" != bad ]' "$CH" s
	# then DLQ gets a record of its own and a dead letter of a third one
	chpub "$DLQ" other
	chpub "$T/third" x
	run -0 timeout 20 chsub --from=earliest --dead-letter="$DLQ" -x 'exit 1' "$T/third" u
	assert_equal "$(chsub --peek "$DLQ" --format='%s %{channel}\n')" "bad $CH
other 
x $T/third"
	# DLQ's consumer, whose dead-letter channel is the channel: all
	# three fail and go there, consumption goes on; only 'bad' came
	# from there, and only it is named as going round
	run -0 --separate-stderr timeout 20 chsub --from=earliest \
	    --dead-letter="$CH" -x 'cat >/dev/null; exit 4' "$DLQ" fixer
	run -0 grep -c "go round" <<<"$stderr"
	assert_output 1
	[[ $stderr == *"chsub: $DLQ: record at offset 0 is a dead letter from $CH and failed there too: it goes back, and will go round while each channel is the other's dead-letter channel"* ]] ||
		fail "stderr: $stderr"
	run -0 chsub --peek --from=earliest --format='%s %{channel}\n' "$CH"
	assert_output "bad 
good 
bad $DLQ
other $DLQ
x $DLQ"
	assert_equal "$(choffset "$DLQ" fixer)" "$(choffset --dry-run --latest "$DLQ" fixer | awk '{ print $4 }')"
}

# --- signals and timeouts --------------------------------------------------

@test "a handler killed by a signal is a failure: retried, then dead-lettered with status 'signal 9'" {
	fresh
	pub victim after
	run -0 timeout 20 chsub --retries=1 --backoff=10ms --dead-letter="$DLQ" -x '
	    d=$(cat); [ "$d" = victim ] || exit 0
	    echo "$CH_ATTEMPT" >>"$T/attempts"; kill -9 $$' "$CH" s
	assert_equal "$(cat "$T/attempts")" "$(printf '%s\n' 1 2)"
	run -0 chsub --peek "$DLQ" --format '%s|%{status}|%{attempts}'
	assert_output "victim|signal 9|2"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

# time_out RECORD HANDLER FILE...: publish RECORD on a fresh channel and
# run chsub s over it with --handler-timeout and HANDLER, dead letters to
# $DLQ ($status, $output and $stderr are chsub's).  The timeout runs from
# the handler's start, and the test looks at what the handler did before
# it: the FILEs, which it writes once it did that.  A machine too loaded
# to get the shell that far in 1 s had it killed first (a FILE missing):
# then the same again with 4 s, and 16 s.
time_out() {
	local rec=$1 handler=$2 n f
	shift 2
	for n in 1 4 16; do
		rm -rf "$CH" "$DLQ"
		rm -f "$@"
		fresh
		pub "$rec"
		run --separate-stderr timeout $((n + 20)) chsub \
		    --handler-timeout="${n}s" --dead-letter="$DLQ" -x "$handler" \
		    "$CH" s
		for f; do [ -s "$f" ] || continue 2; done
		return 0
	done
	fail "in 16 s, the handler did not get as far as writing $*"
}

@test "--handler-timeout: a hanging handler is killed with what it started, and dead-lettered as 'timeout'" {
	time_out hang \
	    'sleep 300 >/dev/null 2>&1 3>&- & echo $! >"$T/child.pid"; wait' \
	    "$T/child.pid"
	assert_success
	[[ $stderr == *timeout* ]]
	run -0 chsub --peek "$DLQ" --format '%s|%{status}'
	assert_output "hang|timeout"
	local child
	child=$(cat "$T/child.pid")
	wait_for 10 proc_gone "$child"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--handler-timeout=0 sets no limit (as timeout(1)): a handler that takes its time finishes" {
	fresh
	pub slow
	run -0 --separate-stderr chsub --handler-timeout=0 \
	    -x 'sleep 1; cat >>"$T/done"' "$CH" s
	assert_equal "$(cat "$T/done")" slow
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "the longest durations the options take mean never: --handler-timeout kills nothing, --backoff=MIN's MAX (64 MIN) does not overflow" {
	fresh
	pub slow1 slow2
	# the largest DUR, added to the clock, wrapped to a time long past:
	# both handlers were killed at once and dead-lettered as 'timeout'
	run -0 --separate-stderr chsub -P 2 --dead-letter="$DLQ" \
	    --handler-timeout=106751d23h47m16s \
	    -x 'sleep 0.3; r=$(cat); echo "$r" >>"$T/done"' "$CH" s
	assert_equal "$stderr" ""
	assert_equal "$(sort "$T/done")" "slow1
slow2"
	assert_equal "$(offset_of s)" "$(chan_end)"
	[ ! -e "$DLQ" ]
	# MIN * 64 overflowed: "MAX is smaller than MIN"
	run -0 --separate-stderr chsub --backoff=1668d -x true "$CH" s
	assert_equal "$stderr" ""
}

@test "the longest --backoff waits: a failed record is not retried at once (the jitter overflowed to a time long past)" {
	fresh
	pub a
	start_bg chsub --retries=5 --backoff=100000d \
	    -x 'cat >/dev/null; echo x >>"$T/tries"; exit 1' "$CH" s
	# chsub commits the retry it waits for: chlag sees it due in 2262
	# (the end of time in nanoseconds), not long past
	wait_until 10 'chlag --json "$CH" 2>/dev/null | grep -q "\"attempts\":1,"'
	run -1 chlag --json "$CH"	# RETRY: WARNING
	assert_output --partial '"next_attempt":"2262-'
	run -0 cat "$T/tries"
	assert_output x
	bg_running "$BG" && ! proc_gone "$BG"
	stop_bg 10 "$BG"
}

@test "--handler-timeout: a handler that ignores SIGTERM is killed with SIGKILL" {
	time_out stubborn 'trap "" TERM; echo $$ >"$T/h.pid"
	    sleep 300 >/dev/null 2>&1 3>&- & echo $! >"$T/child.pid"; wait' \
	    "$T/h.pid" "$T/child.pid"
	assert_success
	assert_equal "$(chsub --peek "$DLQ" --format '%{status}')" timeout
	local handler child
	handler=$(cat "$T/h.pid") child=$(cat "$T/child.pid")
	wait_for 10 proc_gone "$handler"
	wait_for 10 proc_gone "$child"
}

@test "--handler-timeout: a child that ignores SIGTERM dies too when the handler itself obeys it" {
	# (child.ready: the child ignores SIGTERM by the time the timeout
	# comes, or the test would not test that)
	time_out orphaning '(trap "" TERM; echo >"$T/child.ready"
	    exec sleep 300 >/dev/null 2>&1 3>&-) &
	    echo $! >"$T/child.pid"; wait' \
	    "$T/child.pid" "$T/child.ready"
	assert_success
	assert_equal "$(chsub --peek "$DLQ" --format '%{status}')" timeout
	local child
	child=$(cat "$T/child.pid")
	wait_for 10 proc_gone "$child"
}

# start_blocking [-f] [SIG]: run chsub in the background on $CH/s with a
# handler that logs its offset to $T/started, waits for $T/release, then
# logs its payload to $T/done.  Its pid is $CHSUB.
start_blocking() {
	start_bg chsub "$@" -x 'echo $$ >"$T/h.pid"; echo "$CH_OFFSET" >>"$T/started"
	    "$T/await" "$T/release"; cat >>"$T/done"; echo >>"$T/done"' "$CH" s
	CHSUB=$BG
}

@test "SIGTERM: the running handler finishes and is committed, no new one starts, exit 0" {
	fresh
	pub r1 r2
	start_blocking -f
	wait_for 10 test -s "$T/started"
	kill -TERM "$CHSUB"
	touch "$T/release"
	wait_exit 20 "$CHSUB"
	assert_equal "$WST" 0
	assert_equal "$(cat "$T/done")" r1
	assert_equal "$(cat "$T/started")" "${OFFS[0]}"
	assert_equal "$(offset_of s)" "${OFFS[1]}"
	# Nothing lost: the next run gets r2.
	run -0 timeout 10 chsub -x 'cat >"$T/next"' "$CH" s
	assert_equal "$(cat "$T/next")" r2
}

@test "SIGINT behaves like SIGTERM" {
	fresh
	pub r1 r2
	start_blocking -f
	wait_for 10 test -s "$T/started"
	kill -INT "$CHSUB"
	touch "$T/release"
	wait_exit 20 "$CHSUB"
	assert_equal "$WST" 0
	assert_equal "$(cat "$T/done")" r1
	assert_equal "$(offset_of s)" "${OFFS[1]}"
}

# term_until_gone PID: send chsub SIGTERM until the handler PID is gone
# (two signals sent at once may merge into one, so keep sending).
term_until_gone() {
	local i
	for i in $(seq 250); do
		proc_gone "$1" && return 0
		# (it may have just ended, and been reaped: no such process)
		kill -TERM "$CHSUB" 2>/dev/null || true
		sleep 0.02
	done
	return 1
}

@test "a second SIGTERM kills the running handler; its record is redelivered on the next run" {
	fresh
	pub r1 r2
	start_blocking -f
	wait_for 10 test -s "$T/started"
	term_until_gone "$(cat "$T/h.pid")"
	wait_exit 20 "$CHSUB"
	assert_equal "$WST" 0
	[ ! -e "$T/done" ]
	assert_equal "$(offset_of s)" "${OFFS[0]}"
	run -0 timeout 10 chsub -x 'cat >>"$T/next"; echo >>"$T/next"' "$CH" s
	assert_equal "$(cat "$T/next")" "$(printf '%s\n' r1 r2)"
}

@test "a stop that reaches the handler first (its process group, then chsub): its records are handed over again, not failed nor dead-lettered" {
	# As a shutdown or pkill does it.  chsub reaped the handler before its
	# own signal came, and counted a failure: with --retries=0 it exited
	# 69 and saved the attempts as used up (every later run exited 69
	# without running CMD); with a dead-letter channel the record went
	# there, as failed with "signal 15".
	local dl hp who cp
	fresh
	pub r1 r2
	for who in group command; do
	for dl in "" "--dead-letter=$DLQ"; do
		rm -f "$T/h.pid" "$T/started"
		# its last command, which sh -c may run as its child
		start_bg chsub -f --retries=0 $dl \
		    -x 'echo $$ >"$T/h.pid"; "$T/await" "$T/release"' "$CH" s
		CHSUB=$BG
		wait_for 10 test -s "$T/h.pid"
		hp=$(cat "$T/h.pid")
		if [[ $who == group ]]; then
			kill -TERM -- "-$hp"
		elif [[ $(cat "/proc/$hp/comm") == await ]]; then
			kill -TERM "$hp"	# sh ran it with exec
		else	# the command only: sh exits 143
			wait_until 10 '[[ -n $(pgrep -x await -P "$hp") ]]'
			cp=$(pgrep -x await -P "$hp")
			kill -TERM "$cp"
		fi
		wait_for 10 proc_gone "$hp"	# reaped by chsub
		kill -TERM "$CHSUB"
		wait_exit 20 "$CHSUB"
		assert_equal "$WST" 0
		assert_equal "$(offset_of s)" "${OFFS[0]}"
		run grep -c '^retry' "$CH/subscribers/s/offset"
		assert_output 0
		[[ ! -e $DLQ ]] || assert_equal "$(chsub --peek --from=earliest "$DLQ" | wc -l)" 0
	done
	done
	run -0 timeout 10 chsub -x 'cat >>"$T/next"; echo >>"$T/next"' "$CH" s
	assert_equal "$(cat "$T/next")" "$(printf '%s\n' r1 r2)"
}

# --- parallel handlers -----------------------------------------------------

@test "-P 4 runs four handlers at once, never more" {
	fresh
	mkdir "$T/active"
	pub r{1..8}
	start_bg chsub -P 4 -x '
	    touch "$T/active/$CH_SEQ"
	    ls "$T/active" | wc -l >>"$T/counts"
	    "$T/await" "$T/release"
	    echo "$CH_SEQ" >>"$T/handled"
	    rm "$T/active/$CH_SEQ"' "$CH" s
	wait_for 10 files_are "$T/active" 4
	# and all four have counted (the fourth may not have, yet)
	wait_until 10 '[ "$(wc -l <"$T/counts")" -ge 4 ]'
	touch "$T/release"
	wait_exit 20 "$BG"
	assert_equal "$WST" 0
	assert_equal "$(sort -n "$T/counts" | tail -n 1)" 4
	assert_equal "$(sort -n "$T/handled")" "$(seq 0 7)"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "-P 2: the system refusing a process for a handler (EAGAIN) while another runs: chsub waits for it to end and tries again" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	fresh
	pub r{0..3}
	# the second handler cannot start; the first waits until chsub has
	# said so
	CHFAULT_FAIL=posix_spawn:2:EAGAIN LD_PRELOAD="$CHFAULT" start_bg \
	    chsub -P 2 -x '"$T/await" "$T/release"; cat >"$T/done.$CH_SEQ"' \
	    "$CH" s 2>"$T/err"
	wait_until 10 'grep -q "waiting for a running one to end" "$T/err"'
	touch "$T/release"
	wait_exit 20 "$BG"
	assert_equal "$WST" 0
	assert_equal "$(cat "$T"/done.*)" "r0r1r2r3"
	assert_equal "$(offset_of s)" "$(chan_end)"
	run cat "$T/err"
	assert_output "chsub: $CH: run handler: Resource temporarily unavailable: waiting for a running one to end, then trying again (not said again in this run)"
}

@test "-P 3: while a handler cannot start until another ends (EAGAIN), a lingering batch does not make chsub spin" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	fresh
	pub r0 r1 r2 r3 r4
	# batch 0-1 fails once (its retry is the third spawn, refused);
	# batch 2-3 runs until released; record 4 lingers meanwhile (-t:
	# following, so the end of the channel does not hand it out)
	cat >"$T/h.sh" <<-'EOF'
	if [ "$CH_SEQ" = 0 ] && [ "$CH_ATTEMPT" = 1 ]; then exit 1; fi
	if [ "$CH_SEQ" = 2 ]; then "$T/await" "$T/release"; fi
	cat >/dev/null
	EOF
	CHFAULT_FAIL=posix_spawn:3:EAGAIN LD_PRELOAD="$CHFAULT" start_bg \
	    chsub -t 2 --batch=2 --linger=1s -P 3 --retries=1 --backoff=100ms \
	    -x "sh $T/h.sh" "$CH" s 2>"$T/err"
	wait_until 10 'grep -q "waiting for a running one to end" "$T/err"'
	# a window past the linger time: chsub should sleep through it
	local t0 t1
	t0=$(awk '{ print $14 + $15 }' "/proc/$BG/stat")
	sleep 3
	t1=$(awk '{ print $14 + $15 }' "/proc/$BG/stat")
	touch "$T/release"
	wait_exit 20 "$BG"
	assert_equal "$WST" 0
	assert_equal "$(offset_of s)" "$(chan_end)"
	# CPU time in clock ticks (100 a second): it spun 2-3 s of the 3
	echo "CPU ticks in the window: $((t1 - t0))"
	(((t1 - t0) < 50))
}

@test "the system refusing a process for a handler (EAGAIN) with none running: exit 1, nothing committed" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	fresh
	pub r0 r1
	local before
	before=$(offset_of s)
	CHFAULT_FAIL=posix_spawn:1:EAGAIN LD_PRELOAD="$CHFAULT" \
	    run -1 --separate-stderr chsub -x 'cat >>"$T/done"' "$CH" s
	assert_equal "$stderr" "chsub: $CH: run handler: Resource temporarily unavailable"
	assert_file_not_exists "$T/done"
	assert_equal "$(offset_of s)" "$before"
	# the next run handles both
	run -0 chsub -x 'cat >>"$T/done"' "$CH" s
	assert_equal "$(cat "$T/done")" "r0r1"
}

# start_stuck: -P 4 over 8 records; record 1's handler blocks until
# $T/release, the others finish at once (each leaves $T/done/SEQ).
start_stuck() {
	mkdir -p "$T/done"
	pub r{0..7}
	start_bg chsub -P 4 -x '
	    if [ "$CH_SEQ" = 1 ]; then
		echo $$ >"$T/k.pid"; "$T/await" "$T/release"
	    fi
	    touch "$T/done/$CH_SEQ"' "$CH" s
	CHSUB=$BG
	wait_for 10 files_are "$T/done" 7
}

@test "-P 4 never commits past an unfinished record" {
	fresh
	start_stuck
	# Every record but 1 is done; the commit stops in front of record 1.
	wait_for 10 offset_is s "${OFFS[1]}"
	# And stays there while record 1 runs (a few commit intervals).
	local i
	for i in 1 2 3 4 5; do
		assert_equal "$(offset_of s)" "${OFFS[1]}"
		sleep 0.05
	done
	touch "$T/release"
	wait_exit 20 "$CHSUB"
	assert_equal "$WST" 0
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "-P 4: after kill -9 while a record is unfinished, the next run redelivers it" {
	fresh
	start_stuck
	wait_for 10 offset_is s "${OFFS[1]}"
	kill -9 "$CHSUB"
	wait_exit 10 "$CHSUB"
	# The stuck handler may still run (it has its own process group); the
	# subscriber must be free all the same.
	run -0 timeout 10 chsub -x 'echo "$CH_SEQ" >>"$T/rerun"' "$CH" s
	assert_equal "$(head -n 1 "$T/rerun")" 1
	assert_equal "$(tail -n 1 "$T/rerun")" 7
	assert_equal "$(offset_of s)" "$(chan_end)"
}

# --- rate, follow, timeout, count -------------------------------------------

@test "--rate limits throughput (a loose lower bound)" {
	fresh
	pub r{1..5}
	local t0 t1
	t0=$(date +%s%N)
	run -0 timeout 20 chsub --rate=10 -x 'cat >/dev/null; echo >>"$T/n"' "$CH" s
	t1=$(date +%s%N)
	assert_equal "$(wc -l <"$T/n")" 5
	# 5 records at 10/s: at least about 0.4 s; we only ask for 0.3 s.
	(( t1 - t0 >= 300000000 ))
}

# cpu_ticks PID: the CPU time PID has used so far (user and system), in
# clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

@test "--rate: following, a batch that waits for a token past its --linger sleeps" {
	fresh
	# --batch-bytes sends the first record alone, with the only token;
	# the second lingers 200 ms, then waits about 5 s for the next one.
	start_bg chsub -f --batch-bytes=10 --linger=200ms --rate=0.2 \
	    --ready-fd=4 -x 'cat >>"$T/got"' "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	printf 'aaaaaaa\nbbbbbbb\n' | chpub "$CH"
	wait_for 10 test -s "$T/got"
	local hz c0 c1
	hz=$(getconf CLK_TCK)
	c0=$(cpu_ticks "$BG")
	sleep 3		# what is measured, not a wait for something
	c1=$(cpu_ticks "$BG")
	# A busy loop took most of the 3 s; we allow 0.5 s.
	(( (c1 - c0) * 2 < hz )) || {
		echo "# chsub used $((c1 - c0)) ticks ($hz a second) in 3 s" >&2
		false
	}
	wait_until 20 '[ "$(cat "$T/got")" = "$(printf "aaaaaaa\nbbbbbbb")" ]'
	wait_until 10 'offset_is s "$(chan_end)"'
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
}

@test "--rate: without -f the run ends with the channel, not a token later" {
	fresh
	pub r{1..10}
	# The batch of 10 at 0.05/s leaves the next token 200 s away: the
	# end of the channel is seen at once all the same.
	run -0 command timeout 30 chsub --rate=0.05 --batch=10 \
	    -x 'echo "$CH_COUNT" >>"$T/counts"' "$CH" s
	assert_equal "$(cat "$T/counts")" 10
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "--rate: following, records that come while a batch waits for a token join it" {
	fresh
	start_bg chsub -f --batch=10 --rate=0.5 --ready-fd=4 \
	    -x 'echo "$CH_COUNT $(paste -sd, -)" >>"$T/calls"' "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	pub r1
	wait_for 10 test -s "$T/calls"
	# the token went to r1: r2 and r3 wait 2 s for the next, together
	pub r2 r3
	wait_until 20 '[ "$(wc -l <"$T/calls")" -ge 2 ]'
	assert_equal "$(cat "$T/calls")" "$(printf '%s\n' '1 r1' '2 r2,r3')"
	wait_until 10 'offset_is s "$(chan_end)"'
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
}

@test "-f with -x handles records published later" {
	fresh
	pub before
	start_bg chsub -f --ready-fd=4 -x 'cat >>"$T/got"; echo >>"$T/got"' \
	    "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	chpub "$CH" later1
	chpub "$CH" later2
	wait_until 10 'offset_is s "$(chan_end)"'
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' before later1 later2)"
	kill -TERM "$BG"
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
}

@test "-t with -x exits 0 after being idle that long" {
	fresh
	pub a b
	run -0 timeout 10 chsub -t 200ms -x 'cat >>"$T/got"; echo >>"$T/got"' "$CH" s
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' a b)"
	assert_equal "$(offset_of s)" "$(chan_end)"
}

@test "-n N with -x handles exactly N records" {
	fresh
	pub r1 r2 r3 r4 r5
	run -0 timeout 10 chsub -n 3 -x 'cat >>"$T/got"; echo >>"$T/got"' "$CH" s
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' r1 r2 r3)"
	assert_equal "$(offset_of s)" "${OFFS[3]}"
}

@test "-n N with --batch never hands over more than N records" {
	fresh
	pub r1 r2 r3 r4 r5
	run -0 timeout 10 chsub -n 3 --batch=2 -x 'echo "$CH_COUNT" >>"$T/counts"' "$CH" s
	assert_equal "$(cat "$T/counts")" "$(printf '%s\n' 2 1)"
	assert_equal "$(offset_of s)" "${OFFS[3]}"
}

@test "-n N with -f waits for the missing records" {
	fresh
	pub r1
	start_bg chsub -f -n 2 --ready-fd=4 -x 'cat >>"$T/got"; echo >>"$T/got"' \
	    "$CH" s 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	pub r2 r3
	wait_exit 10 "$BG"
	assert_equal "$WST" 0
	assert_equal "$(cat "$T/got")" "$(printf '%s\n' r1 r2)"
	assert_equal "$(offset_of s)" "${OFFS[2]}"
}

# --- usage -----------------------------------------------------------------

@test "handler options without --exec, and bad handler options, are usage errors" {
	fresh
	run -2 chsub --batch=2 "$CH" s
	run -2 chsub --retries=1 "$CH" s
	run -2 chsub -x true --batch=0 "$CH" s
	run -2 chsub -x true --rate=0 "$CH" s
	run -2 chsub -x true --backoff=2s,1s "$CH" s
	run -2 chsub -x true --peek "$CH"
	run -2 chsub -x true -P 0 "$CH" s
	run -2 chsub --batch-bytes=1K "$CH" s
	run -2 chsub --linger=1s "$CH" s
	run -2 chsub -x true --batch-bytes=0 "$CH" s
	run -2 chsub -x true --batch-bytes=lots "$CH" s
	run -2 chsub -x true --linger=soon "$CH" s
	# an empty command (an unset variable) would commit every record
	pub r1
	run -2 --separate-stderr chsub -x '' "$CH" s
	assert_equal "${stderr_lines[0]}" "chsub: --exec: empty command"
	run -2 chsub -x ' 	' "$CH" s
	assert_equal "$(offset_of s)" "${OFFS[0]}"
}
