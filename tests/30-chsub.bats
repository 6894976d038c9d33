#!/usr/bin/env bats
# chsub in print mode: starting positions, following, counts, peeking,
# exclusivity, signals, pipes, subscriber names, damaged offsets and data.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	new_channel
}
teardown() { ops_teardown; }

# follow SUB [ARGS...]: chsub -f in the background, output in $T/out,
# returning once it holds SUB with its watch in place; pid in $BG.
follow() {
	local sub=$1
	shift
	: >"$T/ready"
	start_bg chsub -f --ready-fd=4 "$@" "$CH" "$sub" >"$T/out" 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
}

# gone PID: the process has exited.
gone() { ! kill -0 "$1" 2>/dev/null; }

@test "a new subscriber starts at the end by default and registers there" {
	chpub "$CH" old1 old2
	run -0 chsub "$CH" s
	assert_output ""
	assert_equal "$(offset_of s)" "$(end_offset)"
	chpub "$CH" new
	run -0 chsub "$CH" s
	assert_output "new"
}

@test "-v says where a new subscriber registered and how many records it leaves unread; nothing for a registered one, nothing without -v" {
	chpub "$CH" old1 old2 old3
	local end third
	end=$(end_offset)
	run -0 --separate-stderr chsub -v "$CH" s
	assert_output ""
	assert_equal "$stderr" "chsub: $CH: registered subscriber 's' at offset $end; the 3 records before it are not read (--from=earliest reads them)"
	run -0 --separate-stderr chsub -v "$CH" s
	assert_equal "$stderr" ""
	run -0 --separate-stderr chsub -v --from=earliest "$CH" e
	assert_equal "$stderr" "chsub: $CH: registered subscriber 'e' at offset 0"
	run -0 --separate-stderr chsub "$CH" quiet
	assert_equal "$stderr" ""
	third=$(chsub --peek --from=earliest -n 3 --format='%o\n' "$CH" | tail -1)
	run -0 --separate-stderr chsub -v --from="$third" "$CH" one
	assert_output old3
	assert_equal "$stderr" "chsub: $CH: registered subscriber 'one' at offset $third; the 2 records before it are not read (--from=earliest reads them)"
}

@test "chsub prints unread records, commits, and prints nothing the second time" {
	chsub "$CH" s >/dev/null
	chpub "$CH" a b
	run -0 chsub "$CH" s
	assert_output "a
b"
	run -0 chsub "$CH" s
	assert_output ""
}

@test "-0 ends each record with NUL" {
	chsub "$CH" s
	chpub "$CH" a "b
c"
	chsub -0 "$CH" s >"$T/out"
	printf 'a\0b\nc\0' | cmp - "$T/out"
}

@test "-0 with --json or --format is a usage error, not silently ignored; --format writes a NUL with \\0" {
	chpub "$CH" a b
	run -2 --separate-stderr chsub --peek -0 --json "$CH"
	[[ $stderr == "chsub: -0 ends plain records; --json ends each with a line end"* ]]
	run -2 chsub --peek -0 --format='%s\n' "$CH"
	chsub --peek --from=earliest --format='%s\0' "$CH" >"$T/out"
	printf 'a\0b\0' | cmp - "$T/out"
}

@test "a --format that cannot be rendered is a usage error naming the problem; so are an empty --format, --dead-letter and choffset --import" {
	chpub "$CH" a
	local f want
	while IFS='|' read -r f want; do
		run -2 --separate-stderr chsub --peek --format="$f" "$CH"
		[[ $stderr == "chsub: --format: $want"* ]] || fail "'$f': $stderr"
	done <<-'EOF'
	|empty format (plain output is --format='%s\n')
	%s\|a '\' ends the format (\\ prints one)
	%s%|a '%' ends the format (%% prints one)
	%q|unknown format directive '%q'
	\q|unknown escape '\q'
	%{|unterminated %{KEY} in format
	%{}|unterminated %{KEY} in format
	EOF
	run -0 chsub --peek --format='%s%%\\\n' "$CH"
	assert_output 'a%\'
	# it registered s, printed nothing, committed everything
	run -2 chsub --format= "$CH" s
	run -66 choffset "$CH" s
	run -2 --separate-stderr chsub --dead-letter= -x true "$CH" s
	[[ $stderr == "chsub: --dead-letter: empty channel name"* ]]
	run -2 --separate-stderr choffset --import= "$CH"
	[[ $stderr == "choffset: --import: empty file name (- reads standard input)"* ]]
}

@test "--from=earliest starts a new subscriber at the first record" {
	chpub "$CH" a b
	run -0 chsub --from=earliest "$CH" s
	assert_output "a
b"
}

@test "--from=TIME while a compaction deletes the segments the search looks at: it looks again from the new start" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local mid t
	timed_segments
	mid=${SEGS[${#SEGS[@]} / 2]}
	t=$(chsub --peek --from=earliest --format='%t\n' "$CH" | sed -n 30p)
	# retention deletes every sealed segment just before the search
	# opens the middle one (it said "segment ...: No such file", 66)
	CHFAULT_RUN="chcompact --max-bytes=1 '$CH' >/dev/null 2>&1" \
	    CHFAULT_RUN_AT=open:$mid:1 LD_PRELOAD="$CHFAULT" \
	    run -0 --separate-stderr chsub --peek -n 1 --from="$t" "$CH"
	assert_equal "$(segments | wc -l)" 1
	assert_output "$(chsub --peek --from=earliest -n 1 "$CH")"
	assert_equal "$stderr" ""
}

@test "--from=latest skips history" {
	chpub "$CH" a b
	run -0 chsub --from=latest "$CH" s
	assert_output ""
}

@test "--from=OFFSET starts at that record boundary" {
	mapfile -t off < <(chpub -p "$CH" a b c)
	run -0 chsub --from="${off[1]}" "$CH" s
	assert_output "b
c"
}

@test "--from=OFFSET not on a boundary or past the end is refused, nothing registered" {
	mapfile -t off < <(chpub -p "$CH" a b c)
	# One byte into record b: inside its format 1 header, its format 2
	# sub-header or its format 3 table entry (at least 3 bytes each).
	run -2 --separate-stderr chsub --from=$((off[1] + 1)) "$CH" s
	[[ $stderr == *"not on a record boundary"* ]]
	run -2 --separate-stderr chsub --from=99999 "$CH" s
	[[ $stderr == *"past the end"* ]]
	run -66 choffset "$CH" s
	# not even its directory and lock file (they were left behind)
	assert_not_exist "$CH/subscribers/s"
}

@test "--from=TIME and --from=DUR pick records by their publish time" {
	CH="$T/timed"
	CH_BIRTH=-3d new_channel
	faketime -f -2d chpub "$CH" two-days-ago
	faketime -f -2h chpub "$CH" two-hours-ago
	chpub "$CH" now
	run -0 chsub --from=1d "$CH" a
	assert_output "two-hours-ago
now"
	run -0 chsub --from=1h "$CH" b
	assert_output "now"
	local iso
	iso=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
	run -0 chsub --from="$iso" "$CH" c
	assert_output "two-hours-ago
now"
}

@test "--from a time beyond the nanosecond range is a usage error, not a wrapped time" {
	chpub "$CH" a b
	run -2 --separate-stderr chsub --from=9999-12-31T23:59:59Z "$CH" s
	assert_output ""
	[[ $stderr == *"1677-09-21 to 2262-04-11"* ]]
	run -0 chsub --peek --from=2262-01-01T00:00:00Z "$CH"
	assert_output ""
	chpub "$CH" c
	run -0 chsub --from=2262-01-01T00:00:00Z "$CH" s
	assert_output ""
	chpub "$CH" d
	run -0 chsub "$CH" s
	assert_output "d"
}

@test "--from with a bad value is a usage error" {
	run -2 --separate-stderr chsub --from=yesterday "$CH" s
	[[ $stderr == "chsub: --from: invalid position 'yesterday'"* ]]
	run -66 choffset "$CH" s
}

@test "--from applies only to a new subscriber" {
	chsub "$CH" s
	chpub "$CH" a b
	chsub -n 1 "$CH" s >/dev/null
	run -0 chsub --from=earliest "$CH" s
	assert_output "b"
}

@test "-n N consumes exactly N records and commits after them" {
	chsub "$CH" s
	chpub "$CH" a b c d
	run -0 chsub -n 2 "$CH" s
	assert_output "a
b"
	run -0 chsub -n 5 "$CH" s
	assert_output "c
d"
}

@test "-n with -f waits for the missing records" {
	chsub "$CH" s
	chpub "$CH" a
	follow s -n 3
	chpub "$CH" b
	chpub "$CH" c d
	wait_for 10 gone "$BG"
	run -0 cat "$T/out"
	assert_output "a
b
c"
	run -0 chsub "$CH" s
	assert_output "d"
}

@test "-n 0 and -n garbage are usage errors" {
	run -2 chsub -n 0 "$CH" s
	run -2 chsub -n x "$CH" s
	run -2 chsub -n -1 "$CH" s
}

@test "-f with inotify sees records published after it started" {
	chsub "$CH" s
	follow s
	chpub "$CH" one
	wait_for 10 grep -qx one "$T/out"
	chpub "$CH" two
	wait_for 10 grep -qx two "$T/out"
}

@test "-f with polling (CH_NOTIFY_POLL=1) sees new records too" {
	chsub "$CH" s
	export CH_NOTIFY_POLL=1
	follow s
	chpub "$CH" one
	wait_for 10 grep -qx one "$T/out"
}

@test "-f commits soon after going idle, with inotify and with polling" {
	local mode
	for mode in 0 1; do
		chsub "$CH" "s$mode" >/dev/null
		CH_NOTIFY_POLL=$mode follow "s$mode"
		chpub "$CH" "rec$mode"
		wait_for 10 grep -qx "rec$mode" "$T/out"
		local want
		want=$(end_offset)
		# Idle, chsub commits on its own; it used not to until it exited.
		wait_until 10 '[ "$(offset_of "s$mode")" = "$want" ]'
		kill "$BG"
		wait "$BG" || true
	done
}

@test "-f across a segment rollover follows into the next segment" {
	set_config segment_bytes 4096
	chsub "$CH" s
	follow s
	seq -f 'roll %g padding padding padding padding padding' 1 200 | chpub "$CH"
	wait_for 20 grep -qx 'roll 200 padding padding padding padding padding' "$T/out"
	(($(segments | wc -l) > 1))
}

@test "-t DUR exits 0 after DUR without a new record" {
	chsub "$CH" s
	chpub "$CH" a
	run -0 timeout 20 chsub -t 300ms "$CH" s
	assert_output "a"
}

@test "-t restarts its clock at each new record" {
	chsub "$CH" s
	local try t0 t1
	for try in 1 2 3; do
		chsub "$CH" s >/dev/null	# a record left by the try before
		: >"$T/ready"
		start_bg chsub -t 5s --ready-fd=4 "$CH" s >"$T/out" 4>"$T/ready"
		wait_for 10 test -s "$T/ready"
		# A second into the 5 s: without a restart chsub would exit 4 s
		# from now; with it, no sooner than 5 s from now, however
		# loaded the box.
		sleep 1
		t0=${EPOCHREALTIME/./}
		chpub "$CH" "one$try"
		wait_for 20 gone "$BG"
		t1=${EPOCHREALTIME/./}
		wait "$BG"
		# Nothing delivered: this shell, held up 4 s more on a loaded
		# machine, published after chsub had given up; nothing was
		# tested.  Again.
		[[ ! -s $T/out ]] || break
	done
	assert_equal "$(cat "$T/out")" "one$try"
	((t1 - t0 >= 5000000))
}

@test "-t with a bad duration is a usage error" {
	run -2 --separate-stderr chsub -t 5x "$CH" s
	[[ $stderr == "chsub: --timeout: invalid duration '5x'"* ]]
}

@test "--peek reads from earliest without registering or committing" {
	chpub "$CH" a b
	run -0 chsub --peek "$CH"
	assert_output "a
b"
	run -0 chsub --peek "$CH" s
	assert_output "a
b"
	assert_dir_not_exists "$CH/subscribers/s"
	run -66 choffset "$CH" s
}

@test "--peek with a registered subscriber starts at its offset and does not move it" {
	chsub "$CH" s
	chpub "$CH" a b
	local before
	before=$(offset_of s)
	run -0 chsub --peek "$CH" s
	assert_output "a
b"
	assert_equal "$(offset_of s)" "$before"
}

@test "--peek -n reads N records" {
	chpub "$CH" a b c
	run -0 chsub --peek -n 2 "$CH"
	assert_output "a
b"
}

@test "a second chsub for the same subscriber fails with 75, naming the holder" {
	chsub "$CH" s
	follow s
	run -75 --separate-stderr chsub "$CH" s
	assert_equal "$stderr" "chsub: $CH: subscriber 's' is held by another chsub (pid $BG); use --wait to queue"
}

@test "a second chsub that finds the holder between its two locks still names it" {
	chsub "$CH" s
	# The holder takes the subscriber's flock, and its fcntl lock (which
	# names it) only once the second chsub sleeps (clock_nanosleep, 230
	# on x86-64, 101 on arm64): a chsub descheduled between the two.
	# The second chsub used to say "locked by another process" at once.
	# (The holder ends with the second chsub: python3 may be a wrapper,
	# whose pid a teardown would kill.)
	start_bg python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[3], "w").write("%d\n" % os.getpid())
open(sys.argv[2], "w").close()
end = time.time() + 20
while not os.path.getsize(sys.argv[2]) and time.time() < end:
    time.sleep(0.001)
pid = open(sys.argv[2]).read().strip()
while time.time() < end:
    try:
        call = open("/proc/%s/syscall" % pid).read().split()[0]
    except (OSError, IndexError):
        break
    if call in ("230", "101"):
        break
    time.sleep(0.0002)
fcntl.lockf(fd, fcntl.LOCK_EX)
while os.path.exists("/proc/" + pid) and time.time() < end:
    time.sleep(0.01)' "$CH/subscribers/s/lock" "$T/pid" "$T/holder"
	wait_for 10 test -e "$T/pid"
	run -75 --separate-stderr sh -c 'echo $$ >"$1"; exec chsub "$2" s' sh "$T/pid" "$CH"
	assert_equal "$stderr" "chsub: $CH: subscriber 's' is held by another chsub (pid $(cat "$T/holder")); use --wait to queue"
	wait_exit 20 "$BG"
}

@test "--wait queues behind the running chsub" {
	chsub "$CH" s
	follow s
	local first=$BG
	chpub "$CH" a
	wait_for 10 grep -qx a "$T/out"
	start_bg chsub --wait "$CH" s >"$T/second"
	local second=$BG
	chpub "$CH" b
	wait_for 10 grep -qx b "$T/out"
	kill -0 "$second"
	kill "$first"
	wait_for 10 gone "$second"
	wait "$second"
	chpub "$CH" c
	run -0 chsub "$CH" s
	assert_output "c"
}

@test "--wait: SIGTERM, SIGINT or SIGHUP while queued ends it with 0 and nothing read, as while it runs (it was killed: 143)" {
	chsub "$CH" s
	follow s
	local first=$BG sig ino
	ino=$(stat -c %i "$CH/subscribers/s/lock")
	for sig in TERM INT HUP; do
		start_bg chsub --wait "$CH" s >"$T/second" 2>"$T/second.err"
		# queued: its flock of the subscriber's lock is blocked
		wait_until 20 'grep -q "^[0-9]*: -> FLOCK  ADVISORY  WRITE $BG [0-9a-f:]*:$ino " /proc/locks'
		kill -"$sig" "$BG"
		wait_for 10 gone "$BG"
		run -0 wait "$BG"
		assert_equal "$(cat "$T/second" "$T/second.err")" ""
	done
	kill -0 "$first"
}

@test "a subscriber behind the earliest record warns with the amount skipped and continues" {
	set_config segment_bytes 4096
	chsub --from=earliest "$CH" s
	chsub --from=earliest "$CH" keeper >/dev/null
	seq -f 'old %g padding padding padding padding padding' 1 200 | chpub "$CH"
	chsub "$CH" keeper >/dev/null
	set_retention max_bytes 4096
	chcompact "$CH" 2>/dev/null
	local earliest
	earliest=$(base 0)
	((earliest > 0))
	run -0 --separate-stderr chsub -n 1 "$CH" s
	[[ $stderr == "chsub: $CH: subscriber is behind the earliest record: skipping $earliest bytes ("*" records) removed by retention, continuing at offset $earliest" ]]
	[[ $output == "old "* ]]
}

# skipped FROM TO: the warning of a subscriber at FROM moved up to TO
# ($T/offsets: every record's offset, taken before anything was deleted).
skipped() {
	local n
	n=$(awk -v from="$1" -v to="$2" '$1 >= from && $1 < to' "$T/offsets" | wc -l)
	echo "chsub: $CH: subscriber is behind the earliest record: skipping $(($2 - $1)) bytes ($n records) removed by retention, continuing at offset $2"
}

# vanishing SEG N CMD...: run CMD with the chfault shim deleting segment
# SEG just before CMD's Nth open of it, as a compaction that deletes it
# between CMD's look at the channel's start and that open would.
vanishing() {
	local seg=$1 n=$2
	shift 2
	CHFAULT_VANISH="$seg:$n" LD_PRELOAD="$CHFAULT" "$@"
}

# chsub takes no lock that holds compaction off while it starts: the
# segment it starts in can be deleted after it found the channel's start.
# Opens of it: the offset check's (1), the reader's, which finds where the
# offset is and reads on from there (2).
@test "a subscriber whose segment compaction deletes while chsub starts warns and goes on at the earliest record" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	set_config segment_bytes 4096
	chsub --from=earliest "$CH" s
	fill 400 old
	chsub --peek --from=earliest --format='%o\n' "$CH" >"$T/offsets"
	local n from seg next first warning
	for n in 1 2; do
		from=$(offset_of s)
		seg=$(segment_of "$from")
		next=$(base 1)
		first=$(chsub --peek --from="$next" -n 1 "$CH")
		warning=$(skipped "$from" "$next")
		run -0 --separate-stderr vanishing "$seg" "$n" chsub -n 1 "$CH" s
		assert_equal "$stderr" "$warning"
		assert_output "$first"
		assert_file_not_exists "$CH/$seg"
	done
}

@test "chsub --peek whose starting segment compaction deletes as it starts warns and goes on at the earliest record" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	set_config segment_bytes 4096
	chsub --from=earliest "$CH" s
	fill 400 old
	chsub --peek --from=earliest --format='%o\n' "$CH" >"$T/offsets"
	local seg next
	# the default start, the earliest record
	seg=$(segment_of 0)
	next=$(base 1)
	run -0 --separate-stderr vanishing "$seg" 1 chsub --peek -n 1 "$CH"
	assert_equal "$stderr" "$(skipped 0 "$next")"
	assert_output "$(chsub --peek --from="$next" -n 1 "$CH")"
	# a saved offset already behind, and the earliest deleted meanwhile
	seg=$(segment_of "$next")
	next=$(base 1)
	run -0 --separate-stderr vanishing "$seg" 1 chsub --peek -n 1 "$CH" s
	assert_equal "$stderr" "$(skipped 0 "$next")"
	assert_output "$(chsub --peek --from="$next" -n 1 "$CH")"
	# --from=OFFSET naming data deleted before chsub started stays an error
	run -2 --separate-stderr chsub --peek --from=0 "$CH"
	assert_equal "$stderr" "chsub: $CH: offset 0 is below the earliest record (deleted)"
}

@test "a live -f follower whose unread segments retention deletes says what it skipped, goes on at the earliest record and keeps following" {
	set_config segment_bytes 65536
	choffset --create --earliest "$CH" s >/dev/null
	local pad
	pad=$(printf 'x%.0s' {1..480})
	seq 2000 | awk -v pad="$pad" '{ print "rec-" $1 " " pad }' | chpub "$CH"
	# Each record's offset, whatever the format's framing.
	chsub --peek --from=earliest --format='%o %s\n' "$CH" |
		awk '{ print $2, $1 }' >"$T/offsets"
	# The follower fills a pipe nobody reads yet and blocks in the
	# middle of the data, its unread segments still ahead of it.
	mkfifo "$T/pipe"
	exec 5<>"$T/pipe"
	start_bg chsub -f "$CH" s >"$T/pipe" 2>"$T/err"
	local pid=$BG
	wait_for 20 grep -q pipe "/proc/$pid/wchan"
	chcompact -q --max-bytes=200K "$CH"
	local start
	start=$(base 0)
	((start > 600000))
	# (a background command's stdin would be /dev/null: give it fd 5)
	start_bg bash -c 'exec cat <&5' >"$T/out"
	exec 5<&-
	wait_until 20 'grep -q "^rec-2000 " "$T/out"' ||
	    { echo "stalled after $(tail -1 "$T/out" | cut -c1-12)"; cat "$T/err"; false; }
	chpub "$CH" after
	wait_for 20 grep -qx after "$T/out"
	# the records in order: those read before, then from the earliest on
	awk '{ print $1 }' "$T/out" | sed 's/^rec-//' >"$T/nums"
	local jump_at last_before first_after
	jump_at=$(awk 'NR > 1 && $1 != prev + 1 { print NR; exit } { prev = $1 }' "$T/nums")
	last_before=$(sed -n "$((jump_at - 1))p" "$T/nums")
	first_after=$(sed -n "${jump_at}p" "$T/nums")
	((last_before >= 1 && first_after > last_before + 1))
	run -0 sed -n "1,${last_before}p" "$T/nums"
	assert_output "$(seq 1 "$last_before")"
	run -0 sed -n "${jump_at},\$p" "$T/nums"
	assert_output "$(seq "$first_after" 2000; echo after)"
	local read_to	# the offset after rec-$last_before
	read_to=$(awk -v r="rec-$((last_before + 1))" '$1 == r { print $2 }' "$T/offsets")
	run -0 cat "$T/err"
	assert_output "chsub: $CH: subscriber is behind the earliest record: skipping $((start - read_to)) bytes ($((first_after - last_before - 1)) records) removed by retention, continuing at offset $start"
	kill -TERM "$pid"
	wait_for 10 gone "$pid"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "--ready-fd writes one newline once the subscriber is held" {
	chsub "$CH" s
	follow s
	run -0 od -An -c "$T/ready"
	assert_output --regexp '^ +\\n$'
	run -75 chsub "$CH" s
}

@test "--ready-fd without -f still signals readiness" {
	chpub "$CH" a
	chsub --from=earliest --ready-fd=4 "$CH" s 4>"$T/r" >/dev/null
	run -0 od -An -c "$T/r"
	assert_output --regexp '^ +\\n$'
}

# --ready-fd=2 closed stderr: the message of the error that ended the
# follower later went nowhere (or into the next file chsub opened).
@test "--ready-fd=2 writes the newline to stderr and keeps it open for later messages" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	chsub "$CH" s
	start_bg chsub -f --ready-fd=2 "$CH" s >"$T/out" 2>"$T/err"
	wait_for 10 test -s "$T/err"
	chpub "$CH" a
	wait_until 10 '[ "$(offset_of s)" = "$(end_offset)" ]'
	kill -STOP "$BG"
	rm -rf "$CH"
	kill -CONT "$BG"
	wait_for 10 gone "$BG"
	run -66 wait "$BG"
	assert_equal "$(cat "$T/err")" "
chsub: $CH: channel removed"
	assert_equal "$(cat "$T/out")" a
}

# An fd that is not open at exec was, by the time of the write, one of
# chsub's own.  From a shell with only 0-2 open, 6 was the subscriber's
# lock, written to and closed: a second chsub held the same subscriber at
# once; 7 was the inotify fd, and the follower spun.  timeout(1) bounds
# the follow it used to start.
@test "--ready-fd with a descriptor that is not open is a usage error, before anything is opened" {
	local n
	for n in 6 7 200; do
		run -2 --separate-stderr timeout 60 chsub -f --ready-fd=$n \
		    "$CH" s 6<&- 7<&- 200<&-
		assert_equal "$stderr" "chsub: --ready-fd: file descriptor $n is not open
Try 'chsub --help' for more information."
		assert_not_exist "$CH/subscribers/s"
	done
}

# The inotify fd closed under a follower (a stray close of a number it was
# given, as above): every wait came back at once as a timeout and the
# follower spun, printing nothing, until killed (with -x, only by SIGKILL:
# its stop signals are let in only by a wait that does not return at once).
@test "a follower whose inotify fd is closed under it fails at once, printing and with -x" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	chsub "$CH" s
	# the shim closes the inotify fd, entry 0 of chsub's wait
	CHFAULT_CLOSE_AT_POLL=0 LD_PRELOAD="$CHFAULT" \
	    start_bg chsub -f "$CH" s >"$T/out" 2>"$T/err"
	wait_for 10 gone "$BG" || { kill -KILL "$BG"; false; }
	run -1 wait "$BG"
	assert_equal "$(cat "$T/err")" "chsub: $CH: wait: Bad file descriptor"
	# entry 1 of the handler loop's wait (0 is its own SIGCHLD pipe)
	CHFAULT_CLOSE_AT_POLL=1 LD_PRELOAD="$CHFAULT" \
	    start_bg chsub -f -x cat "$CH" s >"$T/out" 2>"$T/err"
	wait_for 10 gone "$BG" || { kill -KILL "$BG"; false; }
	run -1 wait "$BG"
	assert_equal "$(cat "$T/err")" "chsub: $CH: wait: Bad file descriptor"
	chpub "$CH" a
	run -0 chsub "$CH" s
	assert_output a
}

# rm -rf of the channel under a follower: it used to exit 65, "segment
# index: No such file or directory", as for a damaged channel.  It is
# stopped while the channel goes, so that its next look finds it gone.
@test "a channel removed under a follower ends it with 66, channel removed, printing and with -x; under chsub catching up too" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	local x
	for x in "" "-x cat"; do
		rm -rf "$CH"
		new_channel
		chsub "$CH" s
		: >"$T/ready"
		start_bg chsub -f $x --ready-fd=4 "$CH" s >"$T/out" 2>"$T/err" \
		    4>"$T/ready"
		wait_for 10 test -s "$T/ready"
		chpub "$CH" a
		wait_until 10 '[ "$(offset_of s)" = "$(end_offset)" ]'
		kill -STOP "$BG"
		rm -rf "$CH"
		kill -CONT "$BG"
		wait_for 10 gone "$BG"
		run -66 wait "$BG"
		assert_equal "$(cat "$T/err")" "chsub: $CH: channel removed"
	done
	# the shim removes it just before chsub's first open of the index
	need_chfault
	new_channel
	chsub "$CH" s
	chpub "$CH" a
	CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:index:1 \
	    LD_PRELOAD="$CHFAULT" run -66 --separate-stderr chsub "$CH" s
	assert_equal "$stderr" "chsub: $CH: channel removed"
	assert_not_exist "$CH"
	# ... or of the segment (it said the offset was below the earliest
	# record, deleted)
	new_channel
	chpub "$CH" a
	CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:.seg:1 \
	    LD_PRELOAD="$CHFAULT" run -66 --separate-stderr chsub --peek "$CH"
	assert_equal "$stderr" "chsub: $CH: channel removed"
	assert_not_exist "$CH"
}

# Removed with records delivered and not committed yet: the commit is
# nowhere to go.  It used to fail with 1, "commit offset of subscriber
# 's': No such file or directory" (removed between its look at the end of
# the channel and its write), or to say "channel removed" a second time
# at exit (removed by the handler itself).
@test "a channel removed while chsub commits: 66, channel removed, said once" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	chsub "$CH" s
	chpub "$CH" a
	# the shim removes it just before chsub opens the new offset file
	CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:offset.tmp:1 \
	    LD_PRELOAD="$CHFAULT" run -66 --separate-stderr chsub "$CH" s
	assert_equal "$stderr" "chsub: $CH: channel removed"
	assert_not_exist "$CH"
	new_channel
	chsub "$CH" s
	chpub "$CH" a b
	run -66 --separate-stderr chsub -x "rm -rf '$CH'" "$CH" s
	assert_equal "$stderr" "chsub: $CH: channel removed"
	assert_not_exist "$CH"
}

# rm -rf empties the directory before it removes it: a chsub that found
# the index (or its offset file's directory) missing meanwhile said the
# channel was damaged (65) or failed to commit (1), an audit found, in 25
# of 30 removals of a followed channel.
@test "a channel half removed (its files going, the directory not yet): 66, channel removed, not damage" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	# chsub on a fresh channel with one record, CMD run at call AT
	removed_at() {
		rm -rf "$CH"
		new_channel
		chsub "$CH" s
		chpub "$CH" a
		CHFAULT_RUN="$1" CHFAULT_RUN_AT=$2 LD_PRELOAD="$CHFAULT" \
		    run --separate-stderr chsub "$CH" s
	}
	removed_at "rm -f '$CH/index' '$CH/channel.yaml'" open:index:1
	assert_equal "$status $stderr" "66 chsub: $CH: channel removed"
	removed_at "rm -rf '$CH/subscribers' '$CH/channel.yaml'" open:offset.tmp:1
	assert_equal "$status $stderr" "66 chsub: $CH: channel removed"
	# an index lost by a channel that stays is damage, as before
	removed_at "rm -f '$CH/index'" open:index:1
	assert_equal "$status $stderr" "65 chsub: $CH: segment index: No such file or directory"
	# a new subscriber, the channel removed before each of chsub's opens
	# of subscribers/ in turn (registering, committing): said as
	# "subscribers/: No such file" (1), "lock file compact.lock: ..." (1)
	# or "offset ... written, but a power loss may undo it" (66)
	local n
	for ((n = 1; n < 20; n++)); do
		rm -rf "$CH"
		new_channel
		chpub "$CH" a
		CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:subscribers:$n \
		    LD_PRELOAD="$CHFAULT" run --separate-stderr chsub --from=earliest "$CH" s
		[[ -d $CH ]] && break	# no such open: chsub ran to the end
		assert_equal "$status $stderr" "66 chsub: $CH: channel removed"
	done
	((n > 3)) || fail "only $((n - 1)) opens of subscribers/"
	assert_equal "$status $output" "0 a"
}

@test "SIGTERM stops a follower cleanly with its offset committed" {
	chsub "$CH" s
	follow s
	chpub "$CH" a b
	wait_for 10 grep -qx b "$T/out"
	kill -TERM "$BG"
	wait_for 10 gone "$BG"
	run wait "$BG"
	assert_success
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "SIGINT stops a follower cleanly with its offset committed" {
	chsub "$CH" s
	follow s
	chpub "$CH" a
	wait_for 10 grep -qx a "$T/out"
	kill -INT "$BG"
	wait_for 10 gone "$BG"
	assert_equal "$(offset_of s)" "$(end_offset)"
	run -0 chsub "$CH" s
	assert_output ""
}

@test "a stop signal that lands just before a follower starts to wait ends it at once, not at the next record" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local sig
	chsub "$CH" s
	chpub "$CH" a
	chsub "$CH" s >/dev/null
	for sig in TERM INT HUP; do
		# the shim raises the signal just before chsub's first wait
		# (nothing read, nothing to commit: a wait with no end); it used
		# to be slept through until the next record came
		CHFAULT_SIGNAL_AT_POLL=$(kill -l "$sig") LD_PRELOAD="$CHFAULT" \
		    start_bg chsub -f "$CH" s >"$T/out"
		wait_for 20 gone "$BG"
		run wait "$BG"
		assert_success
		assert_equal "$(cat "$T/out")" ""
	done
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "-f into a pipe whose reader goes away while it waits: exits 0 at once with what it wrote committed, the subscriber free, with inotify and with polling" {
	local mode want l1 l2
	for mode in 0 1; do
		rm -f "$T/pipe"
		mkfifo "$T/pipe"
		chsub "$CH" "s$mode"
		chpub "$CH" "a$mode" "b$mode"
		want=$(end_offset)
		exec 5<>"$T/pipe"	# the test is the reader
		CH_NOTIFY_POLL=$mode start_bg chsub -f "$CH" "s$mode" \
		    >"$T/pipe" 5<&-
		# idle: both written and committed, waiting for more
		wait_until 20 '[ "$(offset_of "s$mode")" = "$want" ]'
		read -r -t 10 -u 5 l1
		read -r -t 10 -u 5 l2
		assert_equal "$l1 $l2" "a$mode b$mode"
		exec 5<&-		# the reader goes (ssh dies, head -1 ...)
		# it used to wait for the next record's write to fail
		wait_for 20 gone "$BG"
		run wait "$BG"
		assert_success
		assert_equal "$(offset_of "s$mode")" "$want"
		run -0 chsub "$CH" "s$mode"
		assert_output ""
	done
}

@test "-f into a socket whose peer closes while it waits exits 0 at once, what it wrote committed" {
	chsub "$CH" s
	chpub "$CH" a b
	run python3 - "$CH" <<'PY'
import socket, subprocess, sys
mine, its = socket.socketpair()
p = subprocess.Popen(["chsub", "-f", sys.argv[1], "s"], stdout=its)
its.close()
got = b""
try:
    mine.settimeout(20)
    while got != b"a\nb\n":
        more = mine.recv(100)
        if not more:
            break
        got += more
    mine.close()
    rc = p.wait(timeout=20)
    print(got.decode(), "rc", rc, sep="")
except Exception as e:
    # reading a and b, or chsub's exit once its peer closed
    print("gave up after 20 s:", repr(e), "with", repr(got), "read")
finally:
    if p.poll() is None:
        p.kill()
        p.wait()
PY
	assert_output "a
b
rc0"
	assert_success
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "-x -f: a reader of standard output that goes away does not stop the handler mode (its handlers' output is theirs)" {
	chsub "$CH" s
	mkfifo "$T/pipe"
	exec 5<>"$T/pipe"
	start_bg chsub -f -x "cat >>'$T/handled'" "$CH" s >"$T/pipe" 5<&-
	exec 5<&-
	chpub "$CH" rec
	wait_for 20 grep -qx rec "$T/handled"
	kill -0 "$BG"
}

# blocked_on_pipe SIGNAL...: publish 20 records of 300000 output bytes,
# run chsub s into the FIFO $T/pipe, which a reader holds open without
# reading (fd 5), until it blocks in write(2) mid-record, then send each
# SIGNAL; pid in $BG.  A record is larger than chsub's pipe can be (256
# KiB): the first write blocks inside the first record, whatever the
# frames (with smaller records, a write of a whole frame may block
# before its first byte, on a record boundary).
RECORD_X=299991		# 8 digits, a space, the x's: 300000 bytes
blocked_on_pipe() {
	local sig pad i
	chsub "$CH" s
	pad=$(head -c "$RECORD_X" /dev/zero | tr '\0' x)
	for ((i = 1; i <= 20; i++)); do
		printf '%08d %s\n' "$i" "$pad"
	done | chpub "$CH"
	mkfifo "$T/pipe"
	exec 5<>"$T/pipe"
	start_bg chsub "$CH" s >"$T/pipe"
	# blocked in write(2): pipe_write, anon_pipe_write or
	# pipe_wait_writable, by kernel
	wait_for 20 grep -q pipe "/proc/$BG/wchan"
	for sig; do
		kill -"$sig" "$BG"
	done
}

# drain: read the FIFO to its end (closing the test's own writer end).
drain() {
	exec 6<"$T/pipe"
	exec 5>&-
	timeout 20 cat <&6 >"$T/got"
	exec 6<&-
}

# whole_records: every line of $T/got is a whole record, in order from
# the first; prints how many.
whole_records() {
	local n
	n=$(grep -c '' "$T/got")
	((n > 0 && n < 20)) || { echo "got $n records"; return 1; }
	[[ $(tail -c 1 "$T/got" | od -An -c | tr -d ' ') == '\n' ]] ||
	    { echo "the output ends in half a record"; return 1; }
	cut -c 1-8 "$T/got" | cmp - <(seq -f '%08g' 1 "$n") >&2 || return 1
	[[ -z $(awk -v n=$((RECORD_X + 9)) 'length($0) != n' "$T/got") ]] ||
	    { echo "a record is cut or spliced"; return 1; }
	echo "$n"
}

# std_fds_open puts /dev/null on a closed stdout (so that no channel file
# gets fd 1): chsub wrote the records there and committed them, lost.
@test "with stdout closed from the start, chsub refuses (1) and neither registers nor commits; -x needs no stdout" {
	chpub "$CH" a b c
	choffset --create --earliest "$CH" s >/dev/null
	local args
	# OPTIONS, then after the colon the subscriber
	for args in ":s" "-f -t 0.2:s" "--from=earliest:new" "--peek:"; do
		run -1 --separate-stderr bash -c '"$@" >&-' _ chsub ${args%:*} "$CH" ${args#*:}
		assert_equal "$stderr" "chsub: $CH: standard output is closed: the records would go nowhere"
	done
	run -0 choffset "$CH"
	assert_output "s 0"
	run -0 bash -c '"$@" >&-' _ chsub -x 'cat >/dev/null' "$CH" s
	run -0 choffset "$CH" s
	assert_output "$(end_offset)"
}

@test "a stdout pipe handed over non-blocking (as Node.js does): a full pipe is waited on, not an error; every record arrives whole" {
	seq 20000 | sed 's/$/ padding padding/' | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 python3 -c '
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
time.sleep(0.3)		# let the pipe fill up
data = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    data += b
sys.stdout.write("%d %d\n" % (p.wait(), data.count(b"\n")))
sys.stdout.write(data.decode().splitlines()[-1] + "\n")' chsub "$CH" s
	assert_output "0 20000
20000 padding padding"
	assert_equal "$(choffset "$CH" s)" "$(end_offset)"
}

@test "SIGTERM, SIGINT or SIGHUP while blocked on a full pipe: chsub finishes the record it is writing, commits and exits 0; the reader gets only whole records" {
	local sig n
	for sig in TERM INT HUP; do
		rm -rf "$CH" "$T/pipe"
		new_channel
		blocked_on_pipe "$sig"
		# it waits to write the rest of the record: drain the pipe
		drain
		wait_for 20 gone "$BG"
		run wait "$BG"
		assert_success
		n=$(whole_records)
		# committed: exactly what was delivered
		run -0 chsub -n 1 "$CH" s
		assert_equal "${output:0:9}" "$(printf '%08d ' $((n + 1)))"
		assert_equal "${#output}" $((RECORD_X + 9))
	done
}

@test "a second signal makes a write still blocked on a full pipe return at once: the record cut short is not committed and comes again, whole" {
	local n
	blocked_on_pipe TERM
	# the first stop waits for the record to be finished; nobody reads.
	# Once it is taken (signals of one kind do not queue), a second:
	wait_until 20 'grep -Eq "^ShdPnd:\s+0+$" "/proc/$BG/status" &&
	    grep -Eq "^SigPnd:\s+0+$" "/proc/$BG/status"'
	kill -TERM "$BG"
	wait_for 20 gone "$BG"
	run wait "$BG"
	assert_success
	drain
	# the last record is cut: everything before it (here, the first
	# record is the one cut) is whole and committed
	n=$(tr -cd '\n' <"$T/got" | wc -c)
	(($(wc -c <"$T/got") > n * (RECORD_X + 10)))
	[[ $(tail -c 1 "$T/got") == x ]]
	run -0 chsub -n 1 --format='%s' "$CH" s
	assert_equal "${output:0:8}" "$(printf '%08d' $((n + 1)))"
	assert_equal "${#output}" $((RECORD_X + 9))
}

@test "chsub ch s | head -3: commits what it wrote into the pipe, as chsub(1) says" {
	chsub "$CH" s
	chpub "$CH" a b c d e
	run -0 bash -c "chsub '$CH' s | head -3"
	assert_output "a
b
c"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "a reader gone before a big backlog is written: chsub exits 0 and commits only what was written" {
	chsub "$CH" s
	seq -f 'big %g padding padding padding padding padding padding' 1 50000 | chpub "$CH"
	run -0 bash -c "chsub '$CH' s | head -c 1000 >/dev/null; echo \${PIPESTATUS[0]}"
	assert_output "0"
	local off
	off=$(offset_of s)
	((off > 0 && off < $(end_offset)))
	run -0 chsub -n 1 "$CH" s
	assert_output --regexp '^big [0-9]+ padding'
}

@test "invalid subscriber names are usage errors and create nothing" {
	local name
	for name in "a/b" "/" ".." "." ".hidden" "../x" "" "a b" $'a\tb' $'x\ny'; do
		run -2 --separate-stderr chsub "$CH" "$name"
		[[ $stderr == "chsub: "*"subscriber name"* ]]
	done
	run ls -A "$CH/subscribers"
	assert_output ""
}

@test "a 10 KB subscriber name is refused" {
	run -2 --separate-stderr chsub "$CH" "$(head -c 10240 /dev/zero | tr '\0' a)"
	[[ $stderr == "chsub: subscriber name is longer than 128 characters"* ]]
	run -0 chsub "$CH" "$(head -c 128 /dev/zero | tr '\0' a)"
}

@test "an offset file pointing past the end is a clear error, never reset" {
	chpub "$CH" a
	chsub --from=earliest "$CH" s >/dev/null
	doctor_offset s offset 100000
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == "chsub: $CH: subscriber 's': offset 100000 is past the end of the channel"* ]]
	grep -qx 'offset 100000' "$CH/subscribers/s/offset"
}

@test "an offset file not on a record boundary is a clear error, never reset" {
	chpub "$CH" first second
	chsub --from=earliest "$CH" s >/dev/null
	chpub "$CH" third
	doctor_offset s offset 40
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == "chsub: $CH: subscriber 's': "*"40"* ]]
	grep -qx 'offset 40' "$CH/subscribers/s/offset"
}

@test "an offset file whose seq disagrees with the data is refused" {
	chpub "$CH" a b c
	chsub --from=earliest -n 1 "$CH" s >/dev/null
	doctor_offset s seq 7
	run -65 --separate-stderr chsub "$CH" s
	[[ $stderr == *"offset file says record 7"* ]]
}

@test "--peek SUBSCRIBER refuses an offset file that disagrees with the data, like a read" {
	chpub "$CH" a b c
	chsub --from=earliest -n 1 "$CH" s >/dev/null
	doctor_offset s seq 2
	run -65 --separate-stderr chsub --peek "$CH" s
	assert_output ""
	assert_equal "$stderr" "chsub: $CH: subscriber 's': offset file says record 2 at offset $(record_offset b), the channel has record 1 there"
}

@test "an offset below the earliest record whose record number is not below it too is refused" {
	set_config segment_bytes 4096
	chsub --from=earliest "$CH" s >/dev/null
	seq -f 'old %g padding padding padding padding padding' 1 200 | chpub "$CH"
	chcompact -q --max-bytes=4096 "$CH"
	local earliest
	earliest=$(base 0)
	((earliest > 0))
	doctor_offset s seq 199
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == "chsub: $CH: subscriber 's': offset file says record 199 at offset 0, below the earliest record (record "*" at offset $earliest)" ]]
}

@test "a garbage offset file is reported as corrupt, never reset" {
	chpub "$CH" a
	chsub --from=earliest "$CH" s >/dev/null
	echo "not an offset" >"$CH/subscribers/s/offset"
	run -65 --separate-stderr chsub "$CH" s
	[[ $stderr == "chsub: $CH: subscriber 's': "* ]]
	run -0 cat "$CH/subscribers/s/offset"
	assert_output "not an offset"
}

# one_two_three: three appends; $two and $three the offsets of the last two.
one_two_three() {
	chpub "$CH" one
	two=$(chpub -p "$CH" two)
	three=$(chpub -p "$CH" three)
}

@test "a corrupt record in the middle stops with 65 after committing the records before it" {
	chsub "$CH" s
	one_two_three
	flip_byte "$(seg0)" $((64 + (two + three) / 2))
	run -65 --separate-stderr chsub "$CH" s
	assert_output "one"
	[[ $stderr == *"corrupt record at offset $two"* ]]
	assert_equal "$(offset_of s)" "$two"
}

@test "--skip-corrupt skips a corrupt record with a warning and goes on" {
	chsub "$CH" s
	one_two_three
	flip_byte "$(seg0)" $((64 + (two + three) / 2))
	run -0 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output "one
three"
	[[ $stderr == *"skipped $((three - two)) corrupt bytes at offset $two, 1 record lost"* ]]
}

@test "--skip-corrupt never delivers a record embedded in a damaged record's payload" {
	chpub "$T/other" EMBEDDED
	tail -c +65 "$T/other/00000000000000000000.seg" >"$T/rec"
	chpub "$CH" before
	local at
	at=$(chpub -p --whole "$CH" <"$T/rec")
	chpub "$CH" after
	# Damage the length field of the record (format 1) or frame (format
	# 2) that carries the other one: bytes 8 to 11 in both.
	flip_byte "$(seg0)" $((64 + at + 9))
	run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
	refute_output --partial EMBEDDED
	assert_output "before
after"
}

# A record that is valid on its own but not the one due (here record 5
# replaced by a copy of record 0) is damage where it stands: chsub used
# to step past it, take the record after it for damage too and stop
# there with exit status 0, as at the end of the channel, leaving every
# record after it, and every record published later, unread.
@test "a record out of sequence (a copy of an earlier one) stops chsub with 65 after the records before it; --skip-corrupt goes on, to records published later too" {
	local f pos len
	for f in 1 2; do
		CH_FORMAT=$f numbered_channel 8
		choffset --create --earliest "$CH" s >/dev/null
		read -r pos len < <(copy_unit "$(seg0)" 0 5)
		run -65 --separate-stderr chsub "$CH" s
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04"
		assert_equal "$stderr" "chsub: $CH: corrupt record at offset $((pos - 64)) (use --skip-corrupt to skip it)"
		assert_equal "$(offset_of s)" $((pos - 64))
		chpub "$CH" later
		run -65 chsub --peek --from=earliest "$CH"
		run -0 --separate-stderr chsub --skip-corrupt "$CH" s
		assert_equal "$(echo $output)" "$(printf 'r%02d ' $(seq 6 7))later"
		assert_equal "$stderr" "chsub: $CH: skipped $len corrupt bytes at offset $((pos - 64)), 1 record lost"
	done
}

@test "a follower at a torn tail goes on once the next chpub repairs it" {
	chsub "$CH" s
	chpub "$CH" one
	printf '\xc7REC torn tail bytes that are no record' >>"$(seg0)"
	follow s
	wait_for 10 grep -qx one "$T/out"
	chpub "$CH" two
	wait_for 10 grep -qx two "$T/out"
	chpub "$CH" three
	wait_for 10 grep -qx three "$T/out"
}

@test "a follower at a torn tail longer than the repairing record goes on too" {
	chsub "$CH" s
	chpub "$CH" one
	head -c 300 /dev/zero >>"$(seg0)"
	follow s
	wait_for 10 grep -qx one "$T/out"
	chpub "$CH" 2
	wait_for 10 grep -qx 2 "$T/out"
}

# The follower keeps the size of the file it saw the torn record in.  The
# next chpub cuts the tail and appends one short line, a file smaller than
# that: the read for the frame's header (as long as the old size allowed)
# came back short, and the follower took that for "not there yet" and
# slept with the record there until something else changed in the channel.
# It is stopped while chpub works so that it wakes to both changes at once.
@test "a follower at a torn record cut off and written over by a shorter one wakes to it" {
	local f
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f new_channel
		chpub "$CH" first
		chpub "$CH" "$(head -c 300 /dev/zero | tr '\0' x)"
		truncate -s -4 "$(seg0)"
		follow s --from=earliest
		wait_for 10 grep -qx first "$T/out"
		wait_for 10 grep -q poll "/proc/$BG/wchan"
		kill -STOP "$BG"
		chpub "$CH" small
		kill -CONT "$BG"
		wait_for 10 grep -qx small "$T/out"
		assert_equal "$(cat "$T/out")" "first
small"
		kill "$BG"
		wait "$BG" || true
	done
}

@test "a missing channel fails with 66; a missing SUBSCRIBER is a usage error" {
	run -66 --separate-stderr chsub "$T/none" s
	[[ $stderr == "chsub: $T/none: no such channel" ]]
	run -2 chsub "$CH"
}
