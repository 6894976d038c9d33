#!/usr/bin/env bats
# chpub: records from arguments and stdin, channel creation, durability,
# streaming, a bounded channel, limits, errors.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
}
teardown() { ops_teardown; }

# payloads: every record from the earliest, each as %S:%s on one line.
payloads() { chsub --peek --from=earliest --format='%S:%s\n' "$CH"; }

@test "each line of stdin is one record, without its newline" {
	printf 'alpha\nbeta gamma\n' | chpub "$CH"
	run -0 payloads
	assert_output "5:alpha
10:beta gamma"
}

@test "a last line without a newline still counts" {
	printf 'one\ntwo' | chpub "$CH"
	run -0 payloads
	assert_output "3:one
3:two"
}

@test "lines of every length, written into the pipe in pieces of every size, come out byte for byte" {
	# chpub keeps each input byte at an address aligned as its position
	# in the input (leaving slack before what a batch left over) and
	# grows its buffer for a line longer than it, then shrinks it again.
	lines() { # lines FROM TO: line i has i * 7919 % 301 letters
		awk -v from="$1" -v to="$2" 'BEGIN {
			for (i = from; i < to; i++) {
				s = sprintf("%*s", (i * 7919) % 301, "")
				gsub(/ /, sprintf("%c", 97 + i % 26), s)
				print s
			}
		}'
	}
	{
		lines 0 9000
		head -c 1500000 /dev/zero | tr '\0' L	# longer than the buffer
		echo
		lines 9000 30000
		printf last
	} >"$T/in"
	{ cat "$T/in"; echo; } >"$T/want"
	local obs
	for obs in 61 4093 65537 1000003; do
		rm -rf "$CH"
		dd if="$T/in" ibs=1M obs="$obs" status=none | chpub "$CH"
		chsub --peek --from=earliest "$CH" >"$T/got"
		cmp "$T/want" "$T/got" || fail "pieces of $obs bytes"
	done
}

@test "a record over max_record_bytes is told the same way wherever in the input it starts" {
	# A record that fills chpub's buffer (768 KiB) is checked at the
	# buffer's length, also when it starts in the slack that keeps the
	# input aligned (below 64 bytes, as its position in the input says).
	local p line len max want
	for p in 0 1 2 63; do
		line=$((p ? 2 : 1))
		for len in 786431 800000; do
			{
				[ "$p" = 0 ] || { head -c $((p - 1)) /dev/zero |
				    tr '\0' p; echo; }
				head -c "$len" /dev/zero | tr '\0' x; echo
			} >"$T/in"
			# the whole record read, or not
			if [ "$len" = 786431 ]; then
				max=786366 want="record of $len bytes exceeds"
			else
				max=786430 want="record exceeds"
			fi
			rm -rf "$CH"
			run -1 --separate-stderr chpub --max-record-bytes="$max" \
			    "$CH" <"$T/in"
			assert_equal "$stderr" "chpub: $CH: line $line: $want max_record_bytes ($max)"
		done
	done
}

@test "an empty line is an empty record" {
	printf 'a\n\nb\n' | chpub "$CH"
	run -0 payloads
	assert_output "1:a
0:
1:b"
}

@test "each MESSAGE argument is one record, and an empty one is an empty record" {
	chpub "$CH" "first one" "" "with
newline"
	run -0 payloads
	assert_output "9:first one
0:
12:with
newline"
}

@test "a MESSAGE that starts with - follows --, as chpub(1) says; before it, it is an option" {
	run -0 chpub "$CH" -- -5 '- item' -q
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "-5
- item
-q"
	run -2 --separate-stderr chpub "$CH" -5
}

@test "-0 reads NUL-terminated records, newlines included" {
	printf 'a\nb\0c\0last' | chpub -0 "$CH"
	run -0 payloads
	assert_output "3:a
b
1:c
4:last"
}

@test "--whole publishes all of stdin as one record, byte-exact with NULs" {
	head -c 70000 /dev/urandom >"$T/blob"
	printf '\0\0\n\0' >>"$T/blob"
	chpub --whole "$CH" <"$T/blob"
	chsub --peek --from=earliest --format='%s' "$CH" >"$T/back"
	cmp "$T/blob" "$T/back"
}

@test "--whole with empty stdin publishes one empty record" {
	chpub --whole "$CH" </dev/null
	run -0 payloads
	assert_output "0:"
}

@test "binary lines with NUL bytes are kept byte-exact" {
	printf 'a\0b\nc\0\0\n' | chpub "$CH"
	chsub --peek --from=earliest --format='%s|' "$CH" >"$T/back"
	printf 'a\0b|c\0\0|' | cmp - "$T/back"
}

@test "--whole and -0 cannot be combined, and neither takes MESSAGEs" {
	run -2 --separate-stderr chpub --whole -0 "$CH"
	[[ $stderr == "chpub: --whole and --null cannot be combined"* ]]
	run -2 --separate-stderr chpub -0 "$CH" msg
	[[ $stderr == "chpub: "*"MESSAGE"* ]]
	assert_dir_not_exists "$CH"
}

@test "a missing channel is created with its parent directories" {
	run -0 chpub "$T/a/b/c" hello
	assert_file_exists "$T/a/b/c/channel.yaml"
	run -0 chsub --peek "$T/a/b/c"
	assert_output "hello"
}

@test "chpub CH </dev/null creates the channel and publishes nothing" {
	run -0 chpub "$CH" </dev/null
	assert_output ""
	assert_file_exists "$CH/channel.yaml"
	run -0 payloads
	assert_output ""
	assert_equal "$(size "$(seg0)")" 64
}

@test "an empty directory is made into a channel" {
	mkdir "$CH"
	run -0 chpub "$CH" x
	assert_file_exists "$CH/channel.yaml"
}

# preseed TEXT: a directory holding only a channel.yaml of TEXT, written
# by hand before any chpub; $T/want keeps a copy.
preseed() {
	mkdir "$CH"
	printf '%b' "$1" >"$CH/channel.yaml"
	cp "$CH/channel.yaml" "$T/want"
}

@test "a pre-seeded channel.yaml: readers wait for chpub, which sets the channel up with those settings and keeps the file" {
	preseed '# mine\nformat: 2\nsegment_bytes: 4096\n'
	local tool
	for tool in "chsub --peek" "choffset" "chcompact" "chpub --no-create"; do
		run -66 --separate-stderr $tool "$CH"
		assert_equal "$stderr" "${tool%% *}: $CH: not set up yet: channel.yaml is there but no index; the first chpub to the channel sets it up"
	done
	run -3 chlag "$CH"
	run ls -A "$CH"
	assert_output "channel.yaml"
	run -0 chpub "$CH" </dev/null
	assert_file_exists "$CH/index"
	assert_dir_exists "$CH/subscribers"
	assert_equal "$(u32 "$(seg0)" 8)" 2
	cmp "$T/want" "$CH/channel.yaml"
	run -0 chsub --peek "$CH"
	assert_output ""
	seq -f '%0100g' 100 | chpub "$CH"
	(($(segments | wc -l) > 1))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(seq -f '%0100g' 100)"
	cmp "$T/want" "$CH/channel.yaml"
}

@test "a pre-seeded channel.yaml without format makes a channel in the format of a new one (3, or CH_FORMAT)" {
	preseed 'segment_bytes: 4096\n'
	seq 3 | chpub "$CH"
	assert_equal "$(u32 "$(seg0)" 8)" "${CH_FORMAT:-3}"
	run -0 chsub --peek "$CH"
	assert_output "$(seq 3)"
	cmp "$T/want" "$CH/channel.yaml"
}

@test "a bad pre-seeded channel.yaml is refused (78) and nothing is set up" {
	preseed 'segment_bytes: 12\n'
	run -78 --separate-stderr chpub "$CH" x
	[[ $stderr == "chpub: $CH: channel.yaml:1:"* ]]
	run ls -A "$CH"
	assert_output "channel.yaml"
}

@test "a pre-seeded channel.yaml beside other files is refused (1) and left alone" {
	preseed 'segment_bytes: 4096\n'
	echo mine >"$CH/notes.txt"
	run -1 --separate-stderr chpub "$CH" x
	assert_equal "$stderr" "chpub: $CH: not a channel, and not an empty directory (found 'notes.txt'); refusing to create a channel here"
	run ls -A "$CH"
	assert_output "channel.yaml
notes.txt"
}

@test "concurrent chpubs setting up the same pre-seeded channel all succeed" {
	local round i
	for round in $(seq 6); do
		CH=$T/race$round preseed 'format: 2\nsegment_bytes: 4096\n'
		local pids=()
		for i in 1 2 3 4 5 6; do
			chpub "$T/race$round" "r$i" 3>&- 2>>"$T/errors" &
			pids+=($!)
		done
		for i in "${pids[@]}"; do
			wait "$i"
		done
		run -0 chsub --peek "$T/race$round"
		assert_equal "${#lines[@]}" 6
		cmp "$T/want" "$T/race$round/channel.yaml"
	done
	run cat "$T/errors"
	assert_output ""
}

@test "a non-empty directory that is not a channel is refused (1) and left alone" {
	mkdir "$CH"
	echo mine >"$CH/notes.txt"
	run -1 --separate-stderr chpub "$CH" x
	assert_equal "$stderr" "chpub: $CH: not a channel, and not an empty directory (found 'notes.txt'); refusing to create a channel here"
	run ls -A "$CH"
	assert_output "notes.txt"
}

@test "a CHANNEL that is a file is not a channel (1)" {
	echo x >"$T/file"
	run -1 --separate-stderr chpub "$T/file" x
	[[ $stderr == "chpub: $T/file: not a channel"* ]]
}

@test "--no-create fails with 66 on a missing channel and creates nothing" {
	run -66 --separate-stderr chpub --no-create "$CH" x
	assert_equal "$stderr" "chpub: $CH: no such channel"
	assert_not_exists "$CH"
}

@test "--no-create publishes to an existing channel" {
	new_channel
	run -0 chpub --no-create "$CH" x
	run -0 payloads
	assert_output "1:x"
}

@test "an empty channel name is a usage error without an empty prefix" {
	run -2 --separate-stderr chpub "" x
	assert_equal "$stderr" "chpub: empty channel name"
}

@test "CH_ROOT names a channel given without a slash" {
	mkdir "$T/root"
	CH_ROOT="$T/root" chpub jobs one
	assert_file_exists "$T/root/jobs/channel.yaml"
	run -0 env CH_ROOT="$T/root" chsub --peek jobs
	assert_output "one"
}

@test "concurrent chpubs creating the same new channel all succeed" {
	local round i
	for round in $(seq 15); do
		local pids=()
		for i in 1 2 3 4 5 6; do
			chpub "$T/race$round" "r$i" 3>&- 2>>"$T/errors" &
			pids+=($!)
		done
		for i in "${pids[@]}"; do
			wait "$i"
		done
		run -0 chsub --peek "$T/race$round"
		assert_equal "${#lines[@]}" 6
	done
	run cat "$T/errors"
	assert_output ""
}

@test "-p prints each record's offset, one per line" {
	run -0 chpub -p "$CH" a bb ccc
	local first=$output
	run -0 bash -c "printf 'x\ny\n' | chpub -p '$CH'"
	run -0 chsub --peek --from=earliest --format='%o\n' "$CH"
	assert_output "$first
${lines[3]}
${lines[4]}"
	assert_equal "${lines[0]}" 0
	((lines[0] < lines[1] && lines[1] < lines[2] && lines[2] < lines[3] &&
	    lines[3] < lines[4]))
}

@test "concurrent writers never interleave and each keeps its order" {
	new_channel segment_bytes=8192
	local w pids=()
	for w in a b c d; do
		seq -f "$w-%g" 1 400 | chpub "$CH" 3>&- &
		pids+=($!)
	done
	for w in "${pids[@]}"; do
		wait "$w"
	done
	payloads >"$T/all"
	assert_equal "$(wc -l <"$T/all")" 1600
	for w in a b c d; do
		diff <(grep "^[0-9]*:$w-" "$T/all" | cut -d: -f2) \
			<(seq -f "$w-%g" 1 400)
	done
}

@test "--sync=always fdatasyncs before exiting 0" {
	need_strace
	new_channel
	run -0 strace -f -e trace=fdatasync -o "$T/trace" chpub --sync=always "$CH" x
	grep -q fdatasync "$T/trace"
}

@test "--sync=none never calls fdatasync for records" {
	need_strace
	new_channel
	run -0 strace -f -e trace=fdatasync,fsync -o "$T/trace" chpub --sync=none "$CH" x
	run grep -c 'fdatasync\|fsync' "$T/trace"
	assert_output "0"
}

@test "--sync=periodic syncs before exiting" {
	need_strace
	new_channel
	run -0 strace -f -e trace=fdatasync -o "$T/trace" chpub --sync=periodic "$CH" x
	grep -q fdatasync "$T/trace"
}

@test "sync: always in channel.yaml applies, and --sync overrides it" {
	need_strace
	new_channel sync=always
	strace -f -e trace=fdatasync -o "$T/trace1" chpub "$CH" x
	grep -q fdatasync "$T/trace1"
	strace -f -e trace=fdatasync,fsync -o "$T/trace2" chpub --sync=none "$CH" y
	run grep -c 'fdatasync\|fsync' "$T/trace2"
	assert_output "0"
}

@test "an unknown --sync policy is a usage error" {
	run -2 --separate-stderr chpub --sync=sometimes "$CH" x
	[[ $stderr == "chpub: --sync: invalid sync policy 'sometimes'"* ]]
	assert_not_exists "$CH"
}

@test "a line is visible to a follower before chpub's stdin closes" {
	new_channel
	mkfifo "$T/in"
	: >"$T/ready"
	start_bg chsub -f --from=earliest --ready-fd=4 "$CH" s >"$T/out" 4>"$T/ready"
	wait_for 10 test -s "$T/ready"
	# Read-write open of a FIFO does not block; then chpub's does not.
	exec 5<>"$T/in"
	# Not start_bg: a background command's stdin would be /dev/null.
	chpub "$CH" <"$T/in" 3>&- &
	BG_PIDS+=($!)
	echo first >&5
	wait_for 10 grep -qx first "$T/out"
	echo second >&5
	wait_for 10 grep -qx second "$T/out"
	exec 5>&-
}

# The resident memory of process PID, in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

@test "a long-running chpub lets go of the memory one long record took" {
	# tail -F app.log | chpub logs, after one 12 MB line: chpub's input
	# buffer and its batch's grew to hold it; kept, they stayed resident
	# (25 MB) for the rest of the run.
	ldd "$(command -v chpub)" | grep -q libasan &&
		skip "memory measured without the sanitizers' allocator"
	local pid rss
	new_channel
	mkfifo "$T/in"
	exec 5<>"$T/in"
	# Without fd 5: chpub must see the end of its input when we close it.
	chpub "$CH" <"$T/in" 3>&- 5>&- &
	pid=$!
	BG_PIDS+=("$pid")
	head -c 12000000 /dev/zero | tr '\0' x >&5
	printf '\nafter\n' >&5
	wait_until 20 '[[ $(chsub --peek --from=earliest --format="%S\n" "$CH" | tr "\n" " ") == "12000000 5 " ]]'
	rss=$(rss_kib "$pid")
	exec 5>&-
	((rss < 10000)) || fail "chpub holds $rss KiB after the long record"
	wait "$pid"
}

# last_is LINE: the last record of the channel is LINE (says what it is).
last_is() {
	local last
	last=$(chsub --peek --from=earliest "$CH" | tail -1)
	[[ $last == "$1" ]] || { echo "# last record: $last" >&2; return 1; }
}

# A chpub that stays open (tail -F | chpub) looks at the tail again before
# each batch, from the end it left.  Another writer killed in the middle
# of a write after records of a third one: the scan from that end used to
# number nothing before it, take the next record for one out of sequence
# and cut the segment back to its header.
@test "a long-running chpub cuts only the torn tail another writer left, never the records before it" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local f
	for f in 1 2; do
		rm -rf "$CH" "$T/in"
		CH_FORMAT=$f new_channel
		chpub "$CH" pre0 pre1 pre2
		mkfifo "$T/in"
		exec 5<>"$T/in"
		# Not start_bg: a background command's stdin would be /dev/null.
		chpub "$CH" <"$T/in" 3>&- &
		BG_PIDS+=($!)
		echo a >&5
		wait_for 10 last_is a
		chpub "$CH" acked
		printf 'k1\nk2 %0200d\n' 0 | env CHFAULT_CRASH_AT=2 CHFAULT_TORN=1 \
		    LD_PRELOAD="$CHFAULT" chpub "$CH" || true
		echo b >&5
		wait_for 10 last_is b
		exec 5>&-
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$(echo ${lines[@]:0:5})" "pre0 pre1 pre2 a acked"
		assert_equal "${lines[-1]}" b
		refute [ "${#lines[@]}" -gt 7 ]
		run -0 chcompact --check "$CH"
	done
}

# rm -rf of the channel under a chpub reading a pipe: its next record used
# to end it with 65, "segment index: No such file or directory", as for a
# damaged channel.
@test "a channel removed under a streaming chpub ends it with 66, channel removed, at its next record" {
	new_channel
	mkfifo "$T/in"
	exec 5<>"$T/in"
	chpub "$CH" <"$T/in" 2>"$T/err" 3>&- &
	local pub=$!
	BG_PIDS+=("$pub")
	echo first >&5
	wait_until 10 '[ "$(chsub --peek --from=earliest "$CH")" = first ]'
	rm -rf "$CH"
	echo second >&5
	wait_for 10 bash -c "! kill -0 $pub 2>/dev/null"
	exec 5>&-
	run -66 wait "$pub"
	assert_equal "$(cat "$T/err")" "chpub: $CH: channel removed"
	assert_not_exist "$CH"
}

# Removed between chpub's look at the index and its open of the segment
# (the chfault shim removes it just before that open): it used to exit 65.
@test "a channel removed just before chpub opens its segment: 66, channel removed" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	new_channel
	CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:.seg:1 \
	    LD_PRELOAD="$CHFAULT" run -66 --separate-stderr chpub "$CH" a
	assert_equal "$stderr" "chpub: $CH: channel removed"
	assert_not_exist "$CH"
}

# twenty: the arguments record-01 .. record-20.
twenty() { seq -f 'record-%02g' 20; }

@test "--max-bytes with --on-full=fail exits 75 after publishing what fitted" {
	new_channel
	# shellcheck disable=SC2046
	run -75 --separate-stderr chpub --max-bytes=100 "$CH" $(twenty)
	[[ $stderr == "chpub: $CH: channel full"* ]]
	# The first records, as many as fit in 100 bytes, at least one.
	run -0 chsub --peek --from=earliest "$CH"
	((${#lines[@]} >= 1 && ${#lines[@]} < 20))
	assert_output "$(twenty | head -n ${#lines[@]})"
	(($(end_offset) <= 100))
}

@test "max_bytes from channel.yaml makes the channel full too" {
	new_channel max_bytes=100
	# shellcheck disable=SC2046
	run -75 chpub "$CH" $(twenty)
	run -0 --separate-stderr chpub --max-bytes=0 "$CH" d
}

@test "a record that could never fit fails at once even with --on-full=block" {
	new_channel
	run -75 timeout 10 chpub --max-bytes=50 --on-full=block "$CH" "a record much longer than fifty bytes, surely it is"
}

@test "--on-full=block waits until chcompact frees room" {
	new_channel segment_bytes=4096
	chsub --from=earliest "$CH" s >/dev/null
	seq -f 'filler record %g padding padding padding' 1 120 | chpub "$CH"
	local used
	used=$(end_offset)
	start_bg chpub --max-bytes="$used" --on-full=block "$CH" one-more
	local pub=$BG
	# Blocked: waiting for the channel directory to change (poll on its
	# inotify descriptor), nothing appended.
	wait_for 10 grep -q '^poll' "/proc/$pub/wchan"
	kill -0 "$pub"
	run -0 bash -c "chsub --peek --from=earliest '$CH' | tail -n1"
	assert_output "filler record 120 padding padding padding"
	chsub "$CH" s >/dev/null
	chcompact "$CH"
	wait_for 10 bash -c "! kill -0 $pub 2>/dev/null"
	wait "$pub"
	run -0 bash -c "chsub --peek --from=earliest '$CH' | tail -n1"
	assert_output "one-more"
}

@test "max_bytes not above segment_bytes: the full active segment is sealed, so compaction frees room once it is consumed (fail and block)" {
	new_channel		# segments of 64 MiB, max_bytes of 100 bytes
	choffset --create "$CH" s >/dev/null
	# shellcheck disable=SC2046
	run -75 chpub --max-bytes=100 "$CH" $(twenty)
	chsub "$CH" s >/dev/null
	chcompact "$CH"
	run -0 chpub --max-bytes=100 "$CH" after
	run -0 chsub "$CH" s
	assert_output after
	# --on-full=block: waits, and goes on once it is consumed and
	# compacted.
	seq -f 'filler record %g padding padding padding' 1 30 | chpub "$CH"
	start_bg chpub --max-bytes=100 --on-full=block "$CH" blocked
	local pub=$BG
	wait_for 10 grep -q '^poll' "/proc/$pub/wchan"
	chsub "$CH" s >/dev/null
	chcompact "$CH"
	wait_for 10 bash -c "! kill -0 $pub 2>/dev/null"
	wait "$pub"
	run -0 chsub "$CH" s
	assert_output blocked
}

@test "an unknown --on-full policy is a usage error" {
	run -2 --separate-stderr chpub --on-full=wait "$CH" x
	[[ $stderr == "chpub: --on-full: invalid on_full policy 'wait'"* ]]
}

@test "a record over --max-record-bytes fails naming the line; the lines before it stay" {
	run -1 --separate-stderr bash -c "printf 'ok\nfine\ntoo long here\nnever\n' | chpub --max-record-bytes=8 '$CH'"
	assert_equal "$stderr" "chpub: $CH: line 3: record of 13 bytes exceeds max_record_bytes (8)"
	run -0 payloads
	assert_output "2:ok
4:fine"
}

@test "a record over the limit after records that do not fit a full channel: both said, and the exit is the full channel's (75)" {
	run -75 --separate-stderr chpub --max-bytes=100 --max-record-bytes=40 "$CH" \
	    "$(printf 'a%.0s' {1..35})" "$(printf 'b%.0s' {1..35})" \
	    "$(printf 'c%.0s' {1..35})" "$(printf 'x%.0s' {1..41})"
	[[ ${stderr_lines[0]} == "chpub: $CH: argument 4: record of 41 bytes exceeds max_record_bytes (40)" ]]
	[[ ${stderr_lines[1]} == "chpub: $CH: channel full"* ]]
}

@test "-p into a pipe whose reader went away: exit 1 with a message, not killed by SIGPIPE" {
	run -0 --separate-stderr bash -c 'seq 300000 | chpub -p "$1" | head -n 1 >/dev/null; echo "${PIPESTATUS[1]}"' _ "$CH"
	assert_output 1
	[[ $stderr == "chpub: $CH: write offsets: Broken pipe"* ]] || fail "$stderr"
}

@test "a MESSAGE over the limit names the argument" {
	run -1 --separate-stderr chpub --max-record-bytes=4 "$CH" abc abcde x
	assert_equal "$stderr" "chpub: $CH: argument 2: record of 5 bytes exceeds max_record_bytes (4)"
	run -0 payloads
	assert_output "3:abc"
}

@test "max_record_bytes is exact: SIZE units 1K and 1KB" {
	run -0 bash -c "head -c 1024 /dev/zero | chpub --whole --max-record-bytes=1K '$CH'"
	run -1 bash -c "head -c 1025 /dev/zero | chpub --whole --max-record-bytes=1K '$CH'"
	run -0 bash -c "head -c 1000 /dev/zero | chpub --whole --max-record-bytes=1KB '$CH'"
	run -1 bash -c "head -c 1001 /dev/zero | chpub --whole --max-record-bytes=1KB '$CH'"
	run -0 bash -c "head -c 1024 /dev/zero | chpub --whole --max-record-bytes=1KiB '$CH'"
	run -0 payloads
	assert_equal "${#lines[@]}" 3
}

@test "a long line over the limit is rejected without reading on (-0 says record)" {
	run -1 --separate-stderr bash -c "{ printf 'a\0'; head -c 3000000 /dev/zero | tr '\0' x; printf '\0b\0'; } | chpub -0 --max-record-bytes=1MiB '$CH'"
	[[ $stderr == "chpub: $CH: record 2: "*"exceeds max_record_bytes (1048576)" ]]
	run -0 payloads
	assert_output "1:a"
}

@test "payload and metadata past the formats' 32-bit lengths are refused as too large, even under the highest max_record_bytes; the records around stay" {
	# Through the library (tests/helpers/record-limit.c): a 4 GiB payload
	# that nobody may read, and 300 bytes of metadata; a dead letter's
	# origin takes the same way.  It used to be written as a frame whose
	# length wrapped around: a record lost, and chpub exiting 0.
	local f msg="record of 4294967040 bytes with 300 bytes of metadata is too large: a record holds at most 4294967040 bytes of payload and metadata"
	for f in 1 2 3; do
		CH="$T/ch$f"
		CH_FORMAT=$f run -0 --separate-stderr \
			"${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..}/tests/helpers/record-limit" "$CH"
		assert_equal "${#lines[@]}" 7
		assert_line --index 0 "format 1: record of 4294966741 bytes with 300 bytes of metadata is too large: a record holds at most 4294967040 bytes of payload and metadata"
		assert_line --index 3 "format 2: $msg"
		assert_line --index 5 "format 3: $msg"
		assert_line --index 6 "writer: $msg"
		assert_equal "$(u32 "$(seg0)" 8)" "$f"
		run -0 chsub --peek --from=earliest --format='%s\n' "$CH"
		assert_output "before
after"
		run -0 chcompact --check "$CH"
	done
}

@test "--max-record-bytes out of range is a usage error" {
	run -2 chpub --max-record-bytes=0 "$CH" x
	run -2 chpub --max-record-bytes=5GiB "$CH" x
}

@test "bad SIZE values are usage errors with the option named" {
	local v
	for v in 12X -5 "" K 1.5.5M 99999999999999999999; do
		run -2 --separate-stderr chpub --max-bytes="$v" "$CH" x
		[[ $stderr == "chpub: --max-bytes: "*"'$v'"* ]]
	done
	assert_not_exists "$CH"
}

@test "a torn tail is cut off by the next chpub, and -v says how much" {
	chpub "$CH" one two
	printf 'torn!' >>"$(seg0)"
	run -0 --separate-stderr chpub -v "$CH" three
	[[ $stderr == *"repaired a torn tail (5 bytes cut)"* ]]
	run -0 payloads
	assert_output "3:one
3:two
5:three"
}

@test "a crash mid-record (partial record after good ones) loses only that record" {
	chpub "$CH" one
	chpub "$CH" two
	chpub "$CH" three
	local f
	f=$(seg0)
	truncate -s $(($(size "$f") - 3)) "$f"
	run -0 payloads
	assert_output "3:one
3:two"
	chpub "$CH" four
	run -0 payloads
	assert_output "3:one
3:two
4:four"
}

@test "the repair never removes good records after damage in the middle of the segment" {
	chpub "$CH" one
	local two three
	two=$(chpub -p "$CH" two)
	three=$(chpub -p "$CH" three four | head -1)
	# a byte in the middle of what holds "two" (a record or a frame)
	flip_byte "$(seg0)" $((64 + (two + three) / 2))
	printf 'torn tail' >>"$(seg0)"
	chpub "$CH" five
	run -65 --separate-stderr payloads
	run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_output "one
three
four
five"
}

@test "a segment header newer than chpub knows is refused, nothing appended" {
	chpub "$CH" a
	put_u32 "$(seg0)" 8 4
	fix_seghdr_crc "$(seg0)"
	local before
	before=$(size "$(seg0)")
	run -1 --separate-stderr chpub "$CH" b
	[[ $stderr == "chpub: $CH: "*"newer than this chtools supports" ]]
	assert_equal "$(size "$(seg0)")" "$before"
}

@test "records published in one batch share a time that never decreases" {
	chpub "$CH" a
	faketime -f -1h chpub "$CH" b
	run -0 chsub --peek --from=earliest --format='%T\n' "$CH"
	((${lines[1]} >= ${lines[0]}))
}

# allocated FILE: the bytes of disk FILE holds, reserved blocks included.
allocated() { echo $(($(stat -c '%b * %B' "$1"))); }
# need_reserve: skip where $T's file system cannot reserve blocks past a
# file's end (fallocate --keep-size).
need_reserve() {
	command -v fallocate >/dev/null || skip "no fallocate(1) to probe with"
	: >"$T/probe"
	fallocate -n -l 1M "$T/probe" 2>/dev/null ||
		skip "the file system of $T cannot reserve blocks"
	(($(allocated "$T/probe") >= 1 << 20)) ||
		skip "the file system of $T does not count reserved blocks"
	rm -f "$T/probe"
}

@test "bulk input reserves blocks past the active segment's end, and a rollover gives back the sealed segment's" {
	need_reserve
	new_channel segment_bytes=1MiB
	seq -f '%099g' 3000 | chpub "$CH"
	local seg
	seg=$(seg0)
	# Reserved ahead: at least 16 KiB past the end.
	(($(allocated "$seg") >= $(size "$seg") + 12288))
	# A record that does not fit seals it: only its own blocks stay.
	head -c 900000 /dev/zero | tr '\0' x | chpub --whole "$CH"
	assert_equal "$(segments | wc -l)" 2
	(($(allocated "$seg") <= $(size "$seg") + 8192))
	run -0 chsub --peek --from=earliest --format='%S\n' "$CH"
	assert_equal "${#lines[@]}" 3001
	assert_equal "${lines[3000]}" 900000
}

@test "a writer finishing a rollover another left half done gives back the sealed segment's reservation" {
	need_reserve
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	new_channel segment_bytes=1MiB
	seq -f '%099g' 3000 >"$T/in"
	chpub "$CH" <"$T/in"
	head -c 900000 /dev/zero | tr '\0' x >"$T/big"
	# The seal is the rollover's first pwrite (a dry run on a copy says
	# which call that is); the kill lands on the call after it.
	cp -a "$CH" "$T/copy"
	CHFAULT_TRACE="$T/calls" LD_PRELOAD="$CHFAULT" \
		chpub --whole "$T/copy" <"$T/big"
	local at
	at=$(awk '{ print $2 }' "$T/calls" | grep -n -m1 '^pwrite$' | cut -d: -f1)
	[[ -n $at ]]
	run env CHFAULT_CRASH_AT=$((at + 1)) LD_PRELOAD="$CHFAULT" \
		chpub --whole "$CH" <"$T/big"
	assert_equal "$status" 137
	assert_equal "$(segments | wc -l)" 1
	(($(allocated "$(seg0)") > $(size "$(seg0)") + 8192))
	chpub "$CH" after
	assert_equal "$(segments | wc -l)" 2
	(($(allocated "$(seg0)") <= $(size "$(seg0)") + 8192))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(cat "$T/in"; echo after)"
}

@test "--sync=always reserves no blocks: each record's fdatasync would convert them" {
	need_reserve
	new_channel segment_bytes=1MiB
	seq -f '%099g' 3000 | chpub --sync=always "$CH"
	(($(allocated "$(seg0)") <= $(size "$(seg0)") + 8192))
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 3000
}

@test "one chpub a record reserves now and then, not each time" {
	need_reserve
	need_strace
	local i
	for i in $(seq 40); do
		printf 'record %0200d\n' "$i" |
			strace -f -qq -e trace=fallocate -o "$T/trace.$i" chpub "$CH"
	done
	# 40 records of 208 bytes: 8 KiB, inside the first 16 KiB reserved
	# (one call; none where the file system reserved ahead on its own).
	local calls
	calls=$(cat "$T"/trace.* | grep -c '^[0-9]* *fallocate(' || true)
	((calls <= 1))
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 40
}

@test "a reservation that fails gives back what it got, is not tried again, and publishes everything" {
	need_reserve
	need_strace
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	# Every reservation runs out of space after half its blocks, as on a
	# full ext4 (the shim reserves them for real, then fails).
	nospace() {
		strace -f -qq -e trace=fallocate -o "$T/trace" \
			env CHFAULT_FAIL=fallocate:1:ENOSPC:0 \
			LD_PRELOAD="$CHFAULT" chpub "$@"
	}
	# A segment holding 300 KB reserves as much past its end: the half
	# the failure kept goes back.
	new_channel segment_bytes=1MiB
	seq -f '%099g' 3000 >"$T/in"
	chpub "$CH" <"$T/in"
	seq -f 'more %094g' 100 >>"$T/in"
	tail -n 100 "$T/in" | nospace "$CH"
	assert_equal "$(grep -c 'fallocate(' "$T/trace")" 1
	(($(allocated "$(seg0)") <= $(size "$(seg0)") + 8192))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(cat "$T/in")"
	# 300 KB fill five segments of 64 KiB, each of which would reserve.
	CH=$T/small new_channel segment_bytes=64KiB
	seq -f '%099g' 3000 | nospace "$T/small"
	assert_equal "$(grep -c 'fallocate(' "$T/trace")" 1
	(($(segments "$T/small" | wc -l) >= 5))
	run -0 chsub --peek --from=earliest "$T/small"
	assert_output "$(seq -f '%099g' 3000)"
}

@test "nothing is reserved while the file system is short of free space" {
	need_reserve
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	new_channel segment_bytes=1MiB
	# 300 blocks free: not 32 times the 16 KiB or more it would reserve.
	seq -f '%099g' 3000 |
		CHFAULT_FREE_BLOCKS=300 LD_PRELOAD="$CHFAULT" chpub "$CH"
	(($(allocated "$(seg0)") <= $(size "$(seg0)") + 8192))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "$(seq -f '%099g' 3000)"
}

@test "a channel of a few records takes little disk: what is reserved grows with what it holds" {
	need_reserve
	local i
	for i in 1 2 3; do
		chpub "$CH" "record $i"
	done
	(($(allocated "$(seg0)") <= 48 << 10))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "record 1
record 2
record 3"
}

@test "usage errors: missing CHANNEL, unknown option" {
	run -2 --separate-stderr chpub
	[[ $stderr == "chpub: missing CHANNEL"* ]]
	run -2 --separate-stderr chpub --bogus "$CH"
	[[ $stderr == "chpub: "*"bogus"* ]]
}
