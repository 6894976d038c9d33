#!/usr/bin/env bats
# Injected I/O faults: write, fsync, rename, open, unlink failing with EIO,
# ENOSPC or EINTR, at the Nth call or at random (libfiu's fiu-run for the
# calls its POSIX preload wraps: write, pwrite, fdatasync, fsync; the
# chfault shim for openat, renameat, renameat2 and unlinkat, which libfiu
# does not wrap).  Expected: `TOOL: CHANNEL: message` and exit 1, nothing
# published half, nothing committed that was not delivered, and recovery
# on the next run.  And a real full disk on a small tmpfs.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	common_setup
	new_channel segment_bytes=4096
	# Tests below count on a rollover here (two segments, room left in
	# the active one): more than 4096 bytes of lines roll over in any
	# format.  Random sizes fit in one segment about once in 250 runs
	# (format 3): those are drawn again.
	until records a 40 200 >"$T/a"; (($(wc -c <"$T/a") > 4096)); do :; done
	chpub "$CH" <"$T/a"
}
teardown() {
	common_teardown
	if [[ -n ${MNT:-} ]] && mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT"; fi
}

# libfiu's POSIX preload wraps malloc too, and crashes tools built with
# AddressSanitizer; there the chfault shim stands in for it.
asan() { ldd "$(command -v chpub)" | grep -q libasan; }
need_fiu() {
	command -v fiu-run >/dev/null || skip "fiu-run (fiu-utils) not installed"
	[[ ${1:-} != random ]] || ! asan || skip "libfiu's preload crashes ASan builds"
}

# fiu FAILPOINT ERRNO CMD...: run CMD with a libfiu failure point on (every
# call fails).  pwrite fails pwritev too: a segment write is either (the
# shim's pwrite is both).
fiu() {
	local point=$1 e=$2
	shift 2
	if asan; then
		need_chfault
		CHFAULT_FAIL="${point##*/}:1:$e:0" LD_PRELOAD="$CHFAULT" "$@"
	elif [[ $point == posix/io/rw/pwrite ]]; then
		fiu-run -x -c "enable name=$point,failinfo=$e" \
		    -c "enable name=${point}v,failinfo=$e" "$@"
	else
		fiu-run -x -c "enable name=$point,failinfo=$e" "$@"
	fi
}

# fault FUNC:N:ERRNO CMD...: run CMD with the chfault shim failing a call.
fault() {
	local spec=$1
	shift
	CHFAULT_FAIL=$spec LD_PRELOAD="$CHFAULT" "$@"
}

# channel_sound: every record whole, nothing torn left after the next
# writer, --check clean.
channel_sound() {
	chpub "$CH" </dev/null
	chsub --peek --from=earliest "$CH" >"$T/all"
	check_records "$T/all"
	check_order "$T/all"
	run -0 chcompact --check "$CH"
}

@test "chpub: a segment write failing (ENOSPC, EIO) publishes nothing of the batch, says so, exits 1" {
	need_fiu
	local e
	for e in 28 5; do
		records "b$e" 30 100 >"$T/b"
		run -1 --separate-stderr fiu posix/io/rw/pwrite "$e" chpub "$CH" <"$T/b"
		assert_equal "$stderr" "chpub: $CH: write segment: $( ((e == 28)) && echo 'No space left on device' || echo 'Input/output error')"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "$(cat "$T/a")"
	done
	channel_sound
	chpub "$CH" <"$T/b"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(cat "$T/a" "$T/b")"
}

@test "chpub: a disk that fills up part way through a write keeps the frames written whole (a subscriber read them): that subscriber goes on, -p prints their offsets" {
	need_chfault
	local pub n kept
	export CH_FORMAT=3
	rm -rf "$CH"
	new_channel
	seq -f 'old-%06g ..............................................................' 1 5000 >"$T/b"
	seq -f 'new-%06g ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++' 1 300 >"$T/c"
	# the first pwritev writes half (CHFAULT_SHORT), chpub stops before
	# the second (call 3), which then fails: the disk is full
	CHFAULT_STOP_AT=3 CHFAULT_SHORT=1 CHFAULT_FAIL=pwrite:2:ENOSPC \
	    LD_PRELOAD="$CHFAULT" chpub -p "$CH" <"$T/b" >"$T/offs" 2>"$T/pub.err" 3>&- &
	pub=$!
	BG_PIDS+=("$pub")
	wait_until 20 '[[ $(ps -o stat= -p "$pub") == T* ]]'
	# meanwhile a subscriber reads the frames written whole, and commits
	chsub --from=earliest "$CH" s >"$T/got"
	n=$(wc -l <"$T/got")
	((n > 0 && n < 5000))
	run diff "$T/got" <(head -n "$n" "$T/b")
	assert_success
	kill -CONT "$pub"
	local rc=0
	wait "$pub" || rc=$?
	assert_equal "$rc" 1
	kept=$(sed -E -n 's/.*the first ([0-9]+) records? of the batch (was|were) written whole, and stays? published\)$/\1/p' "$T/pub.err")
	assert_equal "$kept" "$n"
	assert_equal "$(wc -l <"$T/offs")" "$n"
	assert_equal "$(tail -n 1 "$T/offs")" "$(chsub --peek --from=earliest --format='%o\n' -n "$n" "$CH" | tail -n 1)"
	next_batch_whole "$n"
}

# next_batch_whole N: the next batch ($T/c) goes after the first N lines
# of $T/b, which stayed published: subscriber s (which read those) reads
# it whole, and the channel holds just those, then it.
next_batch_whole() {
	chpub "$CH" <"$T/c"
	run -0 chsub "$CH" s
	assert_output "$(cat "$T/c")"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(head -n "$1" "$T/b"; cat "$T/c")"
	run -0 chcompact --check "$CH"
}

@test "chpub: a disk that fills up part way through a write, and reading back what was written whole fails: nothing is cut (a subscriber read it), the next writer cuts the torn rest (formats 1 and 3)" {
	need_chfault
	local pub n f
	seq -f 'old-%06g ..............................................................' 1 5000 >"$T/b"
	seq -f 'new-%06g ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++' 1 300 >"$T/c"
	# (format 2 puts a read of stdin in one frame: half of it is none)
	for f in 1 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		# as above, and the second pread of the segment (the first
		# after the failed write: the walk over what was written)
		# fails too
		CHFAULT_STOP_AT=3 CHFAULT_SHORT=1 CHFAULT_FAIL_PATH=.seg \
		    CHFAULT_FAIL=pwrite:2:ENOSPC,pread:2:EIO \
		    LD_PRELOAD="$CHFAULT" chpub "$CH" <"$T/b" 2>"$T/pub.err" 3>&- &
		pub=$!
		BG_PIDS+=("$pub")
		wait_until 20 '[[ $(ps -o stat= -p "$pub") == T* ]]'
		chsub --from=earliest "$CH" s >"$T/got"
		n=$(wc -l <"$T/got")
		echo "format $f: the subscriber read $n records"
		((n > 0 && n < 5000))
		kill -CONT "$pub"
		local rc=0
		wait "$pub" || rc=$?
		assert_equal "$rc" 1
		run cat "$T/pub.err"
		assert_output --regexp "^chpub: $CH: write segment: No space left on device \(the records of the batch written whole stay published: at least the first [0-9]+; reading back the rest failed: Input/output error\)$"
		# what the subscriber read is still there, its offset still on
		# a boundary
		next_batch_whole "$n"
	done
}

@test "chpub --tee: a disk that fills up part way through a write copies out the records written whole, and only those" {
	need_chfault
	local pub n kept rc=0
	export CH_FORMAT=3
	rm -rf "$CH"
	new_channel
	seq -f 'old-%06g ..............................................................' 1 5000 >"$T/b"
	# as above: half of the first pwritev written, the second fails
	CHFAULT_SHORT=1 CHFAULT_FAIL=pwrite:2:ENOSPC LD_PRELOAD="$CHFAULT" \
	    chpub --tee "$CH" <"$T/b" >"$T/tee" 2>"$T/pub.err" || rc=$?
	assert_equal "$rc" 1
	kept=$(sed -E -n 's/.*the first ([0-9]+) records? of the batch (was|were) written whole, and stays? published\)$/\1/p' "$T/pub.err")
	((kept > 0 && kept < 5000)) || { cat "$T/pub.err"; false; }
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(head -n "$kept" "$T/b")"
	run cat "$T/tee"
	assert_output "$(head -n "$kept" "$T/b")"
}

@test "chpub: a record a full disk tore is cut, even when the part written holds records that look whole (a segment published as a record)" {
	need_chfault
	local ab
	export CH_FORMAT=1
	rm -rf "$CH"
	new_channel
	chpub "$CH" a
	# records numbered as the channel's next ones, inside one payload;
	# padded so that the half written ends right after them
	chpub "$T/s" x
	chpub "$T/s" y
	ab=$(($(stat -c %s "$T/s/00000000000000000000.seg") - 64))
	{ tail -c +65 "$T/s/00000000000000000000.seg"; head -c $((28 + ab)) /dev/zero | tr '\0' z; } >"$T/p"
	run -1 --separate-stderr env CHFAULT_SHORT=1 CHFAULT_FAIL=pwrite:2:ENOSPC \
	    LD_PRELOAD="$CHFAULT" chpub --whole -p "$CH" <"$T/p"
	assert_equal "$stderr" "chpub: $CH: write segment: No space left on device"
	assert_output ""
	chpub "$CH" next
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
next"
	run -0 chcompact --check "$CH"
}

@test "chpub: a write of several frames at once failing (pwritev: ENOSPC, EIO) publishes nothing of it; one that writes part of it is finished" {
	need_chfault
	local e
	export CH_FORMAT=3
	rm -rf "$CH"
	new_channel
	chpub "$CH" <"$T/a"
	records big 3000 150 >"$T/b"	# 450 KB: reads of several frames
	CHFAULT_TRACE="$T/trace" LD_PRELOAD="$CHFAULT" chpub "$CH" <"$T/b"
	grep -q pwritev "$T/trace"
	rm -rf "$CH"
	new_channel
	chpub "$CH" <"$T/a"
	for e in ENOSPC EIO; do
		run -1 --separate-stderr fault "pwrite:1:$e" chpub "$CH" <"$T/b"
		assert_equal "$stderr" "chpub: $CH: write segment: $([[ $e == ENOSPC ]] && echo 'No space left on device' || echo 'Input/output error')"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "$(cat "$T/a")"
	done
	channel_sound
	# libfiu's pwritev failure point too, where it can run
	if command -v fiu-run >/dev/null && ! asan; then
		run -1 --separate-stderr fiu posix/io/rw/pwritev 28 chpub "$CH" <"$T/b"
		assert_equal "$stderr" "chpub: $CH: write segment: No space left on device"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "$(cat "$T/a")"
	fi
	# pwritev writing less than asked: the rest follows
	run -0 env CHFAULT_SHORT=1 LD_PRELOAD="$CHFAULT" chpub "$CH" <"$T/b"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(cat "$T/a" "$T/b")"
	channel_sound
}

@test "chpub: stdin failing to be read (EIO) publishes the lines read before it, says so, exits 1" {
	need_chfault
	rm -rf "$CH"
	new_channel
	seq 100000 >"$T/in"	# 589 KB: reads of 256 KiB, more waiting
	run -1 --separate-stderr fault read:3:EIO chpub "$CH" <"$T/in"
	assert_equal "$stderr" "chpub: $CH: read stdin: Input/output error"
	# the lines of the two reads before it, whole, in order
	head -n "$(head -c 524288 "$T/in" | tr -cd '\n' | wc -c)" "$T/in" >"$T/want"
	chsub --peek --from=earliest "$CH" | cmp - "$T/want"
	run -0 chcompact --check "$CH"
}

@test "chpub --sync=always: fdatasync failing (EIO) exits 1; an interrupted one (EINTR) is retried" {
	need_fiu
	# Rollovers under sync none leave the segment sealed last unsynced
	# (channel(5), Rollover): a writer under always syncs it first, and
	# a failure there is one too.  5000 bytes in segments of 4096 roll
	# over at least once (on purpose, not left to the setup).
	local i
	for i in 1 2 3 4 5; do rec s "$i" 1000; done | chpub --sync=none "$CH"
	run -1 --separate-stderr fiu posix/io/sync/fdatasync 5 chpub --sync=always "$CH" "$(rec x 0 50)"
	assert_equal "$stderr" "chpub: $CH: fdatasync sealed segment: Input/output error"
	run -0 chpub --sync=always "$CH" "$(rec w 1 50)"
	run -1 --separate-stderr fiu posix/io/sync/fdatasync 5 chpub --sync=always "$CH" "$(rec x 1 50)"
	assert_equal "$stderr" "chpub: $CH: fdatasync: Input/output error"
	# -p prints no offset of a record not known to be on stable storage
	run -1 --separate-stderr fiu posix/io/sync/fdatasync 5 chpub -p --sync=always "$CH" "$(rec x 2 50)"
	assert_output ""
	channel_sound
	run -0 fault fdatasync:1:EINTR chpub --sync=always "$CH" "$(rec y 1 50)"
	run -0 fault fsync:1:EINTR chpub --sync=always "$CH" "$(rec z 1 50)"
	channel_sound
}

@test "chpub: writes failing at random: every acknowledged record is there, none half" {
	need_fiu random
	local i acked=0
	: >"$T/acked"
	for ((i = 1; i <= 30; i++)); do
		records "r$i" 5 1500 >"$T/b"
		if fiu-run -x -c "enable_random name=posix/io/rw/pwrite,probability=0.3,failinfo=5" \
		    -c "enable_random name=posix/io/rw/pwritev,probability=0.3,failinfo=5" \
		    chpub "$CH" <"$T/b" 2>"$T/err"; then
			cat "$T/b" >>"$T/acked"
			acked=$((acked + 1))
		else
			grep -q "^chpub: $CH: " "$T/err"
		fi
	done
	((acked > 0 && acked < 30))
	channel_sound
	run comm -23 <(sort "$T/acked") <(sort "$T/all")
	assert_output ""
}

@test "chpub: a rollover failing at each step (create, rename, index) exits 1 and the next writer finishes it" {
	need_chfault
	local spec
	for spec in openat:1:ENOSPC renameat2:1:EIO pwrite:2:ENOSPC fdatasync:1:EIO write:1:EIO; do
		records "x${spec%%:*}" 40 200 >"$T/b"
		run --separate-stderr fault "$spec" chpub --sync=periodic "$CH" <"$T/b"
		((status == 0 || status == 1)) || { echo "$spec: exit $status"; false; }
		((status == 0)) || [[ $stderr == "chpub: $CH: "* ]] || { echo "$spec: $stderr"; false; }
		channel_sound
	done
	# all records that made it are whole; the channel takes more
	chpub "$CH" final
	run -0 chsub --peek --from=earliest -n 1000 "$CH"
	assert_line -n -1 final
}

@test "chpub: a rollover failing after part of the batch went into the segment before says how many records of it stay published (a retry of the whole would publish them twice)" {
	need_chfault
	local spec n
	for spec in pwrite:2:ENOSPC openat:2:ENOSPC; do
		CH=$T/ch-${spec%%:*}
		new_channel segment_bytes=4096
		# the first write fills the segment; the seal (pwrite 2) or
		# the next segment (openat 2) then fails
		run -1 --separate-stderr fault "$spec" chpub "$CH" $(seq -f 'message-%04g' 1 400)
		n=$(chsub --peek --from=earliest "$CH" | wc -l)
		((n > 0 && n < 400)) || fail "$spec: $n records"
		[[ $stderr =~ ^"chpub: $CH: "(seal\ segment|create\ segment\ [0-9]+\.seg)": No space left on device (the first $n records of the batch were written whole, and stay published)"$ ]] ||
		    fail "$spec: $stderr"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "$(seq -f 'message-%04g' 1 "$n")"
		chpub "$CH" </dev/null	# the next writer finishes the rollover
		run -0 chcompact --check "$CH"
	done
}

@test "chpub: a failure in a later batch of its input says how many records of the whole input are published, not only of that batch" {
	local pub m
	CH=$T/full
	# room for the first 100 records even one frame each (a slow reader
	# of the pipe, a sanitizer build, makes more, smaller batches), not
	# for all 1000
	new_channel segment_bytes=4096 max_bytes=12000
	mkfifo "$T/in"
	chpub "$CH" <"$T/in" 2>"$T/err" &
	pub=$!
	BG_PIDS+=("$pub")
	exec 5>"$T/in"
	seq -f 'record-%020g' 1 100 >&5
	wait_until 10 '[ "$(chsub --peek --from=earliest "$CH" | wc -l)" -eq 100 ]'
	# (chpub stops reading when the channel is full: a broken pipe)
	seq -f 'record-%020g' 101 1000 >&5 || true
	exec 5>&-
	wait_exit 20 "$pub"
	assert_equal "$WST" 75
	m=$(chsub --peek --from=earliest "$CH" | wc -l)
	((m > 100 && m < 1000)) || fail "$m records"
	run cat "$T/err"
	assert_output --regexp "^chpub: $CH: channel full \(.*\); run chcompact, or use --on-full=block( \(the first [0-9]+ records? of the batch (was|were) written whole, and stays? published\))?; in all, the first $m records of the input are published\$"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(seq -f 'record-%020g' 1 "$m")"
}

@test "chpub --sync=periodic: the last sync failing says the records are published but a power loss may take them" {
	need_chfault
	local n
	CH=$T/p
	new_channel
	seq 1000 >"$T/in"
	run -1 --separate-stderr fault fdatasync:1:EIO chpub --sync=periodic "$CH" <"$T/in"
	n=$(chsub --peek --from=earliest "$CH" | wc -l)
	[[ $stderr == "chpub: $CH: fdatasync: Input/output error; in all, the first $n records of the input are published, but a power loss may take them" ]] ||
	    fail "$n records: $stderr"
	((n > 0))
}

@test "chsub: stdout failing delivers nothing, commits nothing" {
	need_chfault
	choffset --create --earliest "$CH" s >/dev/null
	run -1 --separate-stderr fault write:1:EIO chsub "$CH" s
	[[ $stderr == "chsub: $CH: "* ]]
	run -0 choffset "$CH" s
	assert_output 0
	run -0 chsub "$CH" s
	assert_output "$(cat "$T/a")"
}

@test "chsub: the commit failing at each step (open, write, fdatasync, rename, fsync) never commits undelivered records" {
	need_chfault
	local spec
	choffset --create --earliest "$CH" s >/dev/null
	for spec in openat:1:ENOSPC write:2:ENOSPC fdatasync:1:EIO renameat:1:EIO fsync:1:EIO write:2:EINTR; do
		chpub "$CH" <<<"$(records "c${spec%%:*}" 5 100)"
		before=$(choffset "$CH" s)
		run --separate-stderr fault "$spec" chsub "$CH" s
		((status == 0 || status == 1)) || { echo "$spec: exit $status"; false; }
		((status == 0)) || [[ $stderr == "chsub: $CH: "* ]] || { echo "$spec: $stderr"; false; }
		got=$output
		# the offset is the old one or the one after what was delivered
		after=$(choffset "$CH" s)
		[[ $after == "$before" || $after == "$(end_offset)" ]] || { echo "$spec: offset $after"; false; }
		# whatever was not committed comes again; nothing is skipped
		want=$(chsub --peek "$CH" s)
		run -0 chsub "$CH" s
		if [[ $after == "$before" ]]; then
			assert_output "$want"
			[[ -z $got || $got == "$want" ]] || { echo "$spec: delivered '$got'"; false; }
		else
			assert_output ""
		fi
		run -0 chcompact --check "$CH"
	done
}

# end_offset: the offset the next record will get.
end_offset() { chpub -p "$CH" </dev/null; choffset --dry-run --create --latest "$CH" zz | sed -n 's/^zz - -> //p'; }

@test "choffset: a failing rename or fsync leaves the old offset or the new one, never garbage" {
	need_chfault
	local spec
	choffset --create --earliest "$CH" s >/dev/null
	for spec in openat:1:ENOSPC write:1:EIO fdatasync:1:EIO renameat:1:EIO; do
		run --separate-stderr fault "$spec" choffset --latest "$CH" s
		((status == 1)) || { echo "$spec: exit $status $output"; false; }
		[[ $stderr == "choffset: $CH: "* ]] || { echo "$spec: $stderr"; false; }
		run -0 choffset "$CH" s
		assert_output 0
		run -0 chcompact --check "$CH"
	done
}

@test "choffset: the journal failing on a full disk (write ENOSPC, fdatasync EIO) after the offset moved: exit 0 with a warning, so a retry does not move it again" {
	need_chfault
	local spec before after
	choffset --create --earliest "$CH" s >/dev/null
	# the segment is synced first (fdatasync 1: an offset never gets
	# ahead of durable records), the offset file written next (write 1,
	# fdatasync 2), then the journal line (write 2, fdatasync 3)
	for spec in write:2:ENOSPC fdatasync:3:EIO; do
		before=$(choffset "$CH" s)
		run -0 --separate-stderr fault "$spec" choffset --shift=+1 "$CH" s
		after=$(choffset "$CH" s)
		assert_output "s $before -> $after"
		((after > before))
		[[ $stderr == "choffset: $CH: subscriber 's': changed (set $before -> $after), but the journal could not be written: journal: "* ]] ||
		    { echo "$spec: $stderr"; false; }
		# one record on, not two: what a script retrying on failure sees
		assert_equal "$(chsub --peek --from="$before" -n 2 --format='%o\n' "$CH" | tail -1)" "$after"
		run -0 chcompact --check "$CH"
	done
	# the offset file failing is still a failure, and changes nothing
	before=$(choffset "$CH" s)
	run -1 fault write:1:ENOSPC choffset --shift=+1 "$CH" s
	assert_equal "$(choffset "$CH" s)" "$before"
}

# offsets: every subscriber's offset, one "NAME OFFSET" line each.
offsets() { choffset --export "$CH" | grep -v '^#'; }
# no_temp_files: no offset file written half way is left behind.
no_temp_files() {
	run find "$CH/subscribers" -name '.*.tmp'
	assert_output ''
}

@test "choffset --all: a full disk at the second subscriber's offset file changes none of them (all or nothing), and leaves no temp file" {
	need_chfault
	local s before
	for s in a b c; do choffset --create --earliest "$CH" "$s" >/dev/null; done
	before=$(offsets)
	# b's new offset file: write 2, fdatasync 4 (after the channel's
	# sync and a's), openat 6 (after three locks, compaction's, a's)
	for spec in write:2:ENOSPC fdatasync:4:EIO openat:6:ENOSPC; do
		run --separate-stderr fault "$spec" choffset --all --latest "$CH"
		((status == 1)) || { echo "$spec: exit $status $output"; false; }
		[[ $stderr == "choffset: $CH: commit offset of subscriber '"*"; none of the 3 offsets was changed" ]] ||
		    { echo "$spec: $stderr"; false; }
		assert_output ''	# no NAME OLD -> NEW line of a change not made
		assert_equal "$(offsets)" "$before"
		no_temp_files
		run -0 chcompact --check "$CH"
	done
	# and with room, all three move
	run -0 choffset --all --latest "$CH"
	run -0 offsets
	refute_line --partial " 0"
	assert_equal "${#lines[@]}" 3
}

@test "choffset --import: a damaged offset file is replaced with a warning, and kept as it was when a full disk stops the import" {
	need_chfault
	local end
	for s in a b; do choffset --create --earliest "$CH" "$s" >/dev/null; done
	echo garbage >"$CH/subscribers/a/offset"
	end=$(end_offset)
	printf 'a %s\nb %s\n' "$end" "$end" >"$T/saved"
	run --separate-stderr fault write:2:ENOSPC choffset --import="$T/saved" "$CH"
	assert_equal "$status" 1
	# still there, still registered (damaged), untouched
	assert_equal "$(cat "$CH/subscribers/a/offset")" garbage
	assert_equal "$(choffset "$CH" b)" 0
	no_temp_files
	run -0 --separate-stderr choffset --import="$T/saved" "$CH"
	assert_line -n 0 "a ? -> $end"
	[[ $stderr == *"subscriber 'a': offset file is not a chtools offset file"*"replacing it" ]] || fail "$stderr"
	assert_equal "$(choffset "$CH" a)" "$end"
	assert_equal "$(choffset "$CH" b)" "$end"
	run -0 choffset --history "$CH" a
	assert_line --partial "$T/saved (offset file was damaged)"
}

@test "choffset --create on a full disk registers nothing: no subscriber directory is left behind" {
	need_chfault
	run --separate-stderr fault write:1:ENOSPC choffset --create --earliest "$CH" newcomer
	assert_equal "$status" 1
	assert_equal "$stderr" "choffset: $CH: commit offset of subscriber 'newcomer': No space left on device"
	assert_not_exist "$CH/subscribers/newcomer"
	run -0 choffset --create --earliest "$CH" newcomer
	assert_equal "$(choffset "$CH" newcomer)" 0
}

@test "choffset --import: a full disk half way changes no offset and registers no new subscriber" {
	need_chfault
	local end before
	for s in a b; do choffset --create --earliest "$CH" "$s" >/dev/null; done
	end=$(end_offset)
	printf 'a %s\nb %s\nnew %s\n' "$end" "$end" "$end" >"$T/saved"
	before=$(offsets)
	for spec in write:2:ENOSPC write:3:ENOSPC fdatasync:4:EIO; do
		run --separate-stderr fault "$spec" choffset --import="$T/saved" "$CH"
		((status == 1)) || { echo "$spec: exit $status $output"; false; }
		[[ $stderr == "choffset: $CH: commit offset of subscriber '"*"; no offset in $T/saved was changed" ]] ||
		    { echo "$spec: $stderr"; false; }
		assert_equal "$(offsets)" "$before"
		assert_not_exist "$CH/subscribers/new"
		no_temp_files
		run -0 chcompact --check "$CH"
	done
	run -0 choffset --import="$T/saved" "$CH"
	run -0 offsets
	assert_output "$(printf 'a %s\nb %s\nnew %s' "$end" "$end" "$end")"
}

@test "a subscriber whose offset file cannot be looked at (EIO) stops chcompact (1) instead of being left out and losing its unread segments" {
	need_chfault
	local n
	choffset --create --earliest "$CH" slow >/dev/null
	choffset --create --latest "$CH" fast >/dev/null
	n=$(segments | wc -l)
	((n >= 2))
	run --separate-stderr env CHFAULT_FAIL=fstatat:1:EIO:0 CHFAULT_FAIL_PATH=slow/offset \
	    LD_PRELOAD="$CHFAULT" chcompact "$CH"
	assert_equal "$status" 1
	assert_equal "$stderr" "chcompact: $CH: subscriber 'slow': offset: Input/output error"
	assert_equal "$(segments | wc -l)" "$n"
	run -0 chsub --peek --from=earliest "$CH" slow
	assert_equal "${#lines[@]}" 40
}

@test "a segment that cannot be looked for (EIO) is an error, not taken for deleted: --from=earliest skips nothing" {
	need_chfault
	run --separate-stderr env CHFAULT_FAIL=faccessat:1:EIO:0 CHFAULT_FAIL_PATH=.seg \
	    LD_PRELOAD="$CHFAULT" chsub --peek --from=earliest "$CH"
	assert_equal "$status" 1
	[[ $stderr == "chsub: $CH: "*".seg: Input/output error" ]] || fail "$stderr"
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 40
}

@test "chcompact: a failing delete or index rewrite exits 1; the next run finishes the job" {
	need_chfault
	local spec n
	choffset --create --earliest "$CH" s >/dev/null
	for spec in unlinkat:1:EIO unlinkat:2:EIO openat:1:ENOSPC renameat:1:EIO; do
		chpub "$CH" <<<"$(records "d${spec%%:*}" 60 400)"
		chsub "$CH" s >/dev/null
		n=$(segments | wc -l)
		((n > 2))
		run --separate-stderr fault "$spec" chcompact "$CH"
		((status == 1)) || { echo "$spec: exit $status"; false; }
		[[ $stderr == "chcompact: $CH: "* ]] || { echo "$spec: $stderr"; false; }
		run -0 chcompact --check "$CH"
		run -0 chcompact "$CH"
		run -0 segments
		assert_equal "${#lines[@]}" 1
		run -0 chsub --peek "$CH" s
	done
}

@test "a real full disk (1 MiB tmpfs): chpub fails cleanly, nothing half, chsub commits nothing it did not deliver, all recovers" {
	MNT="$T/mnt"
	mkdir -p "$MNT"
	mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null || { MNT=; skip "cannot mount a tmpfs here"; }
	CH="$MNT/ch"
	new_channel segment_bytes=65536
	choffset --create --earliest "$CH" s >/dev/null
	head -c 128k /dev/zero >"$MNT/reserve"	# what the operator frees later
	: >"$T/acked"
	local i rc=0
	for ((i = 1; i <= 400 && rc == 0; i++)); do
		records "f$i" 4 3000 >"$T/b"
		chpub "$CH" <"$T/b" 2>"$T/err" || rc=$?
		((rc != 0)) || cat "$T/b" >>"$T/acked"
	done
	((rc == 1)) || { echo "chpub exit $rc"; cat "$T/err"; false; }
	run cat "$T/err"
	# (the records of the batch written whole before the disk filled up
	# stay published, and it says how many)
	assert_output --regexp "^chpub: $CH: .*No space left on device( \(the first [0-9]+ records? of the batch (was|were) written whole, and stays? published\))?$"
	# everything acknowledged is there, whole
	chsub --peek --from=earliest "$CH" >"$T/all"
	check_records "$T/all"
	run comm -23 <(sort "$T/acked") <(sort "$T/all")
	assert_output ""
	# consume on a full disk: the commit may fail, but never ahead of delivery
	dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
	run --separate-stderr chsub "$CH" s
	((status == 0 || status == 1))
	echo "$output" >"$T/got"
	off=$(choffset "$CH" s)
	if ((status == 1)); then
		[[ $stderr == "chsub: $CH: "*"No space left on device"* ]]
		assert_equal "$off" 0
	fi
	# make room: everything recovers
	rm -f "$MNT/filler" "$MNT/reserve"
	chsub "$CH" s >>"$T/got"
	check_records "$T/got"
	run comm -23 <(sort "$T/acked") <(sort "$T/got")
	assert_output ""
	run -0 chcompact "$CH"
	run -0 chpub "$CH" after
	run -0 chsub "$CH" s
	assert_output after
	run -0 chcompact --check "$CH"
}
