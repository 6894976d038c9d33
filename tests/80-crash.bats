#!/usr/bin/env bats
# Crash safety: kill -9 at seeded random points of chpub, chsub, chcompact
# and choffset, and at every file-changing call of a rollover, a delivery
# and commit, a compaction and an offset change; torn tails cut at every
# byte; garbage after the last record.  The loops live in
# helpers/crashtest.sh (bats' per-command trap makes long loops slow); the
# shim that kills at the Nth call is helpers/chfault.c.  See
# tests/RELIABILITY.md.
#
# CH_CRASH_SEED replays a run; CH_CRASH_POINTS sets the number of random
# kill points (default 200).

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	common_setup
	CRASHTEST="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crashtest.sh"
	export CHFAULT
}
teardown() { common_teardown; }

# crashtest ARGS...: run helpers/crashtest.sh; its output on failure.
crashtest() {
	run bash "$CRASHTEST" "$T" "$@" 3>&-
	((status == 0)) || { echo "${lines[0]}"; echo "$output" | tail -40; false; }
}

@test "kill -9 at random points of chpub, chsub, chcompact and choffset loses and tears nothing" {
	need_chfault
	crashtest random_points
	echo "# ${lines[0]}" >&3
}

@test "chpub killed at every call of a batch that rolls over (--sync=always)" {
	need_chfault
	crashtest every_call chpub-always
}

@test "chpub killed at every call of a streamed batch that rolls over (--sync=none)" {
	need_chfault
	crashtest every_call chpub-none
}

@test "chsub killed at every call of a delivery and its commit" {
	need_chfault
	crashtest every_call chsub
}

@test "chcompact killed at every call while deleting segments" {
	need_chfault
	crashtest every_call chcompact
}

@test "choffset killed at every call of --earliest, --create and --delete" {
	need_chfault
	crashtest every_call choffset-set
	rm -rf "$T"/*
	crashtest every_call choffset-create
	rm -rf "$T"/*
	crashtest every_call choffset-delete
}

@test "chpub killed at every call of bulk input written several frames a pwritev, torn or not (format 3)" {
	need_chfault
	export CH_FORMAT=3
	crashtest every_call chpub-frames
}

@test "chpub --atomic killed at every call: all of the batch or none of it (format 2)" {
	need_chfault
	export CH_FORMAT=2
	crashtest every_call chpub-atomic
}

@test "chpub --atomic killed at every call: all of the batch or none of it (format 3)" {
	need_chfault
	export CH_FORMAT=3
	crashtest every_call chpub-atomic
}

# The byte-level tests run on every format, whatever CH_FORMAT is.
@test "a torn tail cut at every byte of the last record: never delivered, --check says repairable, the next writer cuts it (format 1)" {
	export CH_FORMAT=1
	crashtest torn_every_byte
}

@test "a torn tail cut at every byte of the last frame: never delivered, --check says repairable, the next writer cuts it (format 2)" {
	export CH_FORMAT=2
	crashtest torn_every_byte
}

@test "a torn tail cut at every byte of the last frame: never delivered, --check says repairable, the next writer cuts it (format 3)" {
	export CH_FORMAT=3
	crashtest torn_every_byte
}

@test "garbage after the last record is never delivered and the next writer cuts it (format 1)" {
	export CH_FORMAT=1
	crashtest garbage_after
}

@test "garbage after the last frame is never delivered and the next writer cuts it (format 2)" {
	export CH_FORMAT=2
	crashtest garbage_after
}

@test "garbage after the last frame is never delivered and the next writer cuts it (format 3)" {
	export CH_FORMAT=3
	crashtest garbage_after
}

# duplicate_last: the last record (format 2: frame) appended again.
duplicate_last() {
	local off seg
	new_channel
	chpub "$CH" one two
	off=$(chpub -p "$CH" last)
	seg="$CH/$(segments | tail -1)"
	tail -c $(($(stat -c %s "$seg") - off - 64)) "$seg" >"$T/last"
	cat "$T/last" >>"$seg"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'one\ntwo\nlast'
	run -0 chpub "$CH" after
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'one\ntwo\nlast\nafter'
	run -0 chcompact --check "$CH"
}

@test "a whole duplicate of the last record appended is not delivered twice (format 1)" {
	export CH_FORMAT=1
	duplicate_last
}

@test "a whole duplicate of the last frame appended is not delivered twice (format 2)" {
	export CH_FORMAT=2
	duplicate_last
}

@test "a whole duplicate of the last frame appended is not delivered twice (format 3)" {
	export CH_FORMAT=3
	duplicate_last
}

# embedded_payload: $T/payload, the records of another channel's segment
# and more bytes after them; sets ab, the length of those records.
embedded_payload() {
	local src
	chpub "$T/src" x
	chpub "$T/src" y
	src="$T/src/$(segments "$T/src" | tail -1)"
	ab=$(($(stat -c %s "$src") - 64))
	{ tail -c +65 "$src"; head -c 500 /dev/zero | tr '\0' z; } >"$T/payload"
}

# tear_after_embedded SEG: cut SEG, whose last record holds $T/payload,
# right after the records inside it.
tear_after_embedded() {
	local start
	start=$(python3 -c 'import sys
seg = open(sys.argv[1], "rb").read()
print(seg.index(open(sys.argv[2], "rb").read(64)))' "$1" "$T/payload")
	truncate -s $((start + ab)) "$1"
}

# torn_embedded MARK: a record a crash tore, whose payload holds valid
# records (a segment file published with --whole), torn right after them.
# Seen from the end of the file the torn bytes look like whole records;
# the next writer must cut them all the same, not append after them
# (its records would then be unreadable, and --repair would cut them).
# MARK is what append.lock holds then: "ahead" the mark the tearing
# writer left (past the end now), "stale" the one from before the record
# (the crash came before the writer could leave its own), "none" no mark
# (a channel from before tail marks).
torn_embedded() {
	local seg ab
	rm -rf "$CH" "$T/src"
	new_channel
	chpub "$CH" a
	embedded_payload
	seg="$CH/$(segments | tail -1)"
	cp "$CH/append.lock" "$T/mark"
	chpub --whole "$CH" <"$T/payload"
	# the payload begins after the record's (or frame's) header
	tear_after_embedded "$seg"
	case $1 in
	stale) cp "$T/mark" "$CH/append.lock" ;;
	none) : >"$CH/append.lock" ;;
	esac
	# a subscriber registered at the end meanwhile starts where the
	# valid records end, not inside the torn one
	run -0 choffset --create "$CH" late
	run -0 chpub "$CH" next
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'a\nnext'
	run -0 chsub "$CH" late
	assert_output next
	run -0 chcompact --check "$CH"
}

# torn_embedded_live: the same tear made while another writer runs (it
# reads a pipe, and looks at what others wrote before its next batch).
torn_embedded_live() {
	local seg ab pid
	rm -rf "$CH" "$T/src"
	new_channel
	embedded_payload
	mkfifo "$T/in"
	chpub "$CH" <"$T/in" 3>&- &
	pid=$!
	exec 4>"$T/in"
	echo a >&4
	wait_until 10 '[[ $(chsub --peek --from=earliest "$CH") == a ]]'
	seg="$CH/$(segments | tail -1)"
	chpub --whole "$CH" <"$T/payload"
	tear_after_embedded "$seg"
	echo next >&4
	exec 4>&-
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'a\nnext'
	run -0 chcompact --check "$CH"
}

@test "a torn record whose payload holds whole-looking records is cut by the next writer, whatever the tail mark says (format 1)" {
	export CH_FORMAT=1
	local m
	for m in ahead stale none; do torn_embedded "$m"; done
	torn_embedded_live
}

@test "a torn frame whose payload holds whole-looking frames is cut by the next writer, whatever the tail mark says (format 2)" {
	export CH_FORMAT=2
	local m
	for m in ahead stale none; do torn_embedded "$m"; done
	torn_embedded_live
}

@test "a torn frame whose payload holds whole-looking frames is cut by the next writer, whatever the tail mark says (format 3)" {
	export CH_FORMAT=3
	local m
	for m in ahead stale none; do torn_embedded "$m"; done
	torn_embedded_live
}

# sealed_payload AGE: $T/payload, the records of another channel's sealed
# segment, published AGE ago (faketime), seal included, and 500 bytes
# after them; sets ab, the length of those records and the seal.
sealed_payload() {
	local src
	rm -rf "$T/src"
	faketime -f "$1" chpub "$T/src" </dev/null
	sed -i 's|^segment_bytes:.*|segment_bytes: 4096|' "$T/src/channel.yaml"
	head -c 4200 /dev/zero | tr '\0' x | faketime -f "$1" chpub --whole "$T/src"
	faketime -f "$1" chpub "$T/src" z	# rolls over: seals the first
	src="$T/src/$(segments "$T/src" | head -1)"
	ab=$(($(stat -c %s "$src") - 64))
	{ tail -c +65 "$src"; head -c 500 /dev/zero | tr '\0' q; } >"$T/payload"
}

@test "chsub -f at a torn first record reads the header again when the next writer cuts it and writes the segment in another format" {
	# A writer rewrites a segment's header (channel.yaml names another
	# format) only while no valid record follows it: here, once it has
	# cut the torn first record.  The follower had read the header when
	# the segment held more than it, and went on in the old format:
	# nothing delivered, then a false "segment damaged" at the rollover.
	need_chfault
	local from to
	for from in 1 3; do
		to=$((from == 1 ? 3 : 1))
		export CH_FORMAT=$from
		rm -rf "$CH"
		new_channel
		chsub "$CH" s >/dev/null
		head -c 3000 /dev/zero | tr '\0' x | chpub --whole "$CH"
		truncate -s 1000 "$CH/$(segments | tail -1)"
		CHFAULT_SIGNAL_AT_POLL=$(kill -l STOP) LD_PRELOAD="$CHFAULT" \
		    start_bg chsub -f "$CH" s >"$T/out"
		wait_for 20 stopped_at_wait "$BG"
		set_config format "$to"
		unset CH_FORMAT
		chpub "$CH" b c
		kill -CONT "$BG"
		wait_until 10 '[[ $(cat "$T/out") == $'"'"'b\nc'"'"' ]]'
		kill "$BG"
		wait "$BG" || true
	done
}

@test "chsub -f reads the header again after it sets up its watch: a writer that rewrote it in another format meanwhile is not missed" {
	# The header read when chsub opened the segment spared the reread at
	# its first read, which comes after its inotify watch is set up: a
	# writer that cut a torn first record, rewrote the header in another
	# format and wrote fewer bytes than the torn ones in between left the
	# follower reading the new bytes with the old format, finding nothing
	# and waiting for an event that had come and gone.
	need_chfault
	export CH_FORMAT=1
	rm -rf "$CH"
	new_channel
	chsub "$CH" s >/dev/null
	chpub "$CH" "hello world this is a longer record"
	# a torn first record, 31 bytes: less than a record's header
	truncate -s 95 "$CH/$(segments | tail -1)"
	set_config format 2
	unset CH_FORMAT
	CHFAULT_RUN="chpub '$CH' ''" CHFAULT_RUN_AT=watch:/proc/self/fd/:1 \
	    LD_PRELOAD="$CHFAULT" start_bg chsub -f "$CH" s >"$T/out"
	# the empty record, delivered as an empty line
	wait_until 10 '[[ $(wc -c <"$T/out") == 1 ]]'
	kill "$BG"
	wait "$BG" || true
	run -0 chsub "$CH" s	# and committed
	assert_output ""
}

# finish_torn_at AT: a torn record at the end of a small segment; a
# subscriber s before it; chsub reads, and at AT (a CHFAULT_RUN_AT point)
# the next writer cuts the torn bytes, writes r1 in their place, seals and
# rolls over with a long record.  Sets ran (the writer did run).
finish_torn_at() {
	local seg pos
	rm -rf "$CH" "$T/ran"
	new_channel segment_bytes=4096
	head -c 3000 /dev/zero | tr '\0' v | chpub --whole "$CH"
	chpub "$CH" a
	chsub "$CH" s >/dev/null
	seg="$CH/$(segments | tail -1)"
	pos=$(stat -c %s "$seg")
	head -c 900 /dev/zero | tr '\0' x | chpub --whole "$CH"
	truncate -s $((pos + 500)) "$seg"
	cat >"$T/writer" <<-EOF
	{ echo r1; head -c 1200 /dev/zero | tr '\\0' n; echo; } | chpub "$CH"
	: >"$T/ran"
	EOF
	CHFAULT_RUN="bash $T/writer" CHFAULT_RUN_AT="$1" LD_PRELOAD="$CHFAULT" \
	    run --separate-stderr chsub "$2" "$CH" s
	ran=0
	[[ ! -e $T/ran ]] || ran=1
}

@test "a writer finishing a torn tail and rolling over while chsub looks at the index: its record is read, not taken for damage (formats 1-3)" {
	# chsub read the torn bytes, then found the segment was no longer
	# the newest (the writer had cut them, written r1, sealed, rolled
	# over) and judged the stale bytes: "segment damaged" (exit 65), or
	# with --skip-corrupt r1 skipped and committed past (lost to s).
	need_chfault
	local f n k opt
	for f in 1 2 3; do
		export CH_FORMAT=$f
		for opt in --skip-corrupt -v; do
			k=0
			# the writer at each of chsub's opens of the index in turn
			for ((n = 1; n <= 10; n++)); do
				finish_torn_at "open:index:$n" "$opt"
				((ran)) || break
				k=$n
				[[ $status == 0 && $output == r1$'\n'nnn* &&
				    $stderr != *lost* ]] ||
				    { echo "format $f $opt, open $n: exit $status: $stderr: ${output:0:20}"; false; }
				assert_equal "$(choffset "$CH" s)" "$(choffset --dry-run --create --latest "$CH" z | awk '{ print $4 }')"
			done
			# past the last open: chsub ended at the torn tail first
			((k >= 3)) || { echo "format $f: only $k opens"; false; }
			assert_equal "$status $output" "0 "
		done
	done
}

# pread_bytes TRACE: bytes that the preads in an strace -e pread64 file
# read.
pread_bytes() { awk -F'= ' '/pread64\(/ && $NF > 0 { b += $NF } END { print b + 0 }' "$1"; }

@test "a subscriber at a torn tail reads the active segment once, not at every look (formats 1-3)" {
	# chsub asked at each look (each wake-up of -f: here the polling
	# fallback's, every 50 ms) whether the segment was sealed, from the
	# file's end, which with a partial record there walks the segment
	# from its header; and at the start, the channel's end was walked
	# for four times over, once per look at the torn bytes.
	need_strace
	local f seg size
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		seq -f 'a line of a segment of some size %g' 1 300000 | chpub "$CH"
		chsub "$CH" s >/dev/null
		seg="$CH/$(segments | tail -1)"
		head -c 900 /dev/zero | tr '\0' x | chpub --whole "$CH"
		truncate -s -500 "$seg"
		size=$(stat -c %s "$seg")
		CH_NOTIFY_POLL=1 strace -o "$T/trace" -e trace=pread64 \
		    chsub -f -t 1s "$CH" s >"$T/out"
		assert_equal "$(cat "$T/out")" ""
		(($(pread_bytes "$T/trace") < 2 * size)) ||
		    { echo "format $f: read $(pread_bytes "$T/trace") bytes of a segment of $size"; false; }
	done
}

@test "catch-up reads each segment's header once, not again before its first record (formats 1-3)" {
	# The header is read again while no valid record of a segment has
	# been read (a writer may rewrite it in another format), but not
	# right after the open that just read it: that was one more pread
	# for every segment of a catch-up.
	need_strace
	local f n hdr
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel segment_bytes=4096
		seq 1 20000 | chpub "$CH"
		n=$(segments | wc -l)
		((n > 20)) || { echo "only $n segments"; false; }
		strace -y -o "$T/trace" -e trace=pread64 chsub --peek "$CH" >"$T/out"
		assert_equal "$(wc -l <"$T/out")" 20000
		# Header reads: at offset 0 of a segment.  The first segment's is
		# read twice (locating the start offset, then the reader's open).
		hdr=$(grep -c '\.seg>, .*, 0) = ' "$T/trace")
		((hdr <= n + 1)) ||
		    { echo "format $f: $hdr header reads for $n segments"; false; }
	done
}

@test "chsub -f waiting after a torn record that ends in a whole-looking seal delivers what the next writer puts in its place (formats 1-3)" {
	# The reader took the torn record for damage in a sealed segment (its
	# end looks sealed), found it is the newest and waited, with the torn
	# bytes still in its buffer.  The next writer cut them and appended
	# before the reader woke: the file now shorter, it judged the stale
	# header again, saw no growth, and sat on the new record.
	need_chfault
	local f ab age
	for f in 1 2 3; do
	for age in -1000d +0; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		sealed_payload "$age"
		new_channel
		chpub "$CH" a
		chsub "$CH" s >/dev/null
		chpub --whole "$CH" <"$T/payload"
		tear_after_embedded "$CH/$(segments | tail -1)"
		# chsub stops itself just before its first wait
		CHFAULT_SIGNAL_AT_POLL=$(kill -l STOP) LD_PRELOAD="$CHFAULT" \
		    start_bg chsub -f "$CH" s >"$T/out"
		wait_for 20 stopped_at_wait "$BG"
		assert_equal "$(cat "$T/out")" ""
		chpub "$CH" next
		kill -CONT "$BG"
		wait_until 10 '[[ $(cat "$T/out") == next ]]'
		kill "$BG"
		wait "$BG" || true
	done
	done
}

# lost_tail_embedded: a segment that lost its tail (sealed without
# fdatasync, then a power failure) and kept a torn record whose payload
# holds another channel's sealed segment, written 1000 days ago, torn
# right after that segment's seal.  Seen from the end of the file the
# segment looks sealed, by a seal that says its newest record is 1000
# days old; its own records ("a") are new.
lost_tail_embedded() {
	local ab
	rm -rf "$CH"
	sealed_payload -1000d
	new_channel segment_bytes=8192
	chpub "$CH" a
	chpub --whole "$CH" <"$T/payload"
	head -c 4000 /dev/zero | tr '\0' c | chpub --whole "$CH"
	chpub "$CH" b
	assert_equal "$(segments | wc -l)" 2
	tear_after_embedded "$CH/$(segments | head -1)"
}

@test "retention never takes a seal inside a torn record for the segment's own (formats 1-3)" {
	local f
	for f in 1 2 3; do
		export CH_FORMAT=$f
		lost_tail_embedded
		run -0 chcompact --max-age=1d "$CH"
		assert_equal "$(segments | wc -l)" 2
		run -0 --separate-stderr chsub --peek --from=earliest \
		    --skip-corrupt "$CH"
		assert_line -n 0 a
	done
}

@test "--repair fills a lost tail that holds a torn record with a whole-looking seal in it (formats 1-3)" {
	local f
	for f in 1 2 3; do
		export CH_FORMAT=$f
		lost_tail_embedded
		run -65 chcompact --check "$CH"
		run -0 --separate-stderr chcompact --repair "$CH"
		[[ $stderr == *"repaired: $(segments | head -1): wrote a gap record"* ]] ||
		    { echo "$stderr"; false; }
		run -0 chcompact --check "$CH"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$(head -c 1 <<<"$output")" a
		assert_equal "${output: -1}" b
	done
}

@test "the writer's cut of a torn tail reaches the disk before anything it writes after it" {
	# Else a power failure could keep its records and lose the cut:
	# the torn record's header back in front of them, readers would stop
	# there and --repair cut them (channel(5), WRITING).
	need_strace
	local seg
	new_channel
	chpub "$CH" a
	head -c 3000 /dev/zero | tr '\0' z | chpub --whole "$CH"
	seg="$CH/$(segments | tail -1)"
	truncate -s -1000 "$seg"
	strace -f -o "$T/trace" -e trace=ftruncate,fdatasync,pwrite64,pwritev \
	    chpub --sync=none "$CH" next
	run -0 awk '/ftruncate\(/ && !cut { cut = NR }
	    cut && /fdatasync\(/ && !synced { synced = NR }
	    cut && /pwritev?(64)?\(/ && !wrote { wrote = NR }
	    END { if (!cut || !synced || !wrote || synced > wrote) exit 1 }' "$T/trace"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'a\nnext'
}
