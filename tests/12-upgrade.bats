#!/usr/bin/env bats
# Formats side by side: CH_FORMAT at creation, upgrading a format 1 channel
# by editing channel.yaml, channels holding segments of both formats.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	unset CH_FORMAT
}
teardown() { ops_teardown; }

@test "a new channel is format 3 unless CH_FORMAT=1 or 2 says otherwise" {
	chpub "$CH" a
	grep -qx 'format: 3' "$CH/channel.yaml"
	assert_equal "$(u32 "$(seg0)" 8)" 3
	assert_equal "$(bytes "$(seg0)" 64 4)" "c946524d"
	# a format 3 data frame: P (2, "a" and its 0x0A) before H
	assert_equal "$(frames "$(seg0)" | cut -d' ' -f3,4,8)" "1 1 2"
	CH="$T/two"
	CH_FORMAT=2 chpub "$CH" a
	grep -qx 'format: 2' "$CH/channel.yaml"
	assert_equal "$(u32 "$(seg0)" 8)" 2
	assert_equal "$(frames "$(seg0)" | cut -d' ' -f3,4,8)" "1 1"
	CH="$T/one"
	CH_FORMAT=1 chpub "$CH" a
	grep -qx 'format: 1' "$CH/channel.yaml"
	assert_equal "$(u32 "$(seg0)" 8)" 1
	assert_equal "$(bytes "$(seg0)" 64 4)" "c7524543"
	# CH_FORMAT only matters when a channel is created.
	CH_FORMAT=2 chpub "$CH" b
	assert_equal "$(u32 "$(seg0)" 8)" 1
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
b"
}

@test "a CH_FORMAT other than 1, 2 or 3 is a usage error, and creates nothing" {
	for v in 0 4 x 2.0 3.0 -1; do
		CH_FORMAT=$v run -2 --separate-stderr chpub "$CH" a
		assert_equal "$stderr" "chpub: $CH: CH_FORMAT=$v: a channel can be created in format 1, 2 or 3"
		assert_not_exist "$CH"
	done
	CH_FORMAT=3 chpub "$CH" a
	grep -qx 'format: 3' "$CH/channel.yaml"
	assert_equal "$(u32 "$(seg0)" 8)" 3
	# CH_FORMAT only matters when a channel is created.
	CH_FORMAT=4 run -0 chpub "$CH" b
	CH_FORMAT=1 run -0 chpub "$CH" c
	assert_equal "$(u32 "$(seg0)" 8)" 3
	assert_equal "$(segments | wc -l)" 1
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
b
c"
}

# v1_channel N: a format 1 channel of N records "old-1".."old-N".
v1_channel() {
	CH_FORMAT=1 new_channel
	for ((i = 1; i <= $1; i++)); do echo "old-$i"; done | chpub "$CH"
}

@test "format: 2 in channel.yaml upgrades a channel: the format 1 segment is sealed, never rewritten, and format 2 follows" {
	v1_channel 3
	local before head
	before=$(size "$(seg0)")
	head=$(head -c "$before" "$(seg0)" | md5sum)
	chsub --from=earliest -n 1 "$CH" s >/dev/null
	set_config format 2
	run -0 chpub -p "$CH" new-1 new-2
	assert_equal "$(segments | wc -l)" 2
	local first second
	first="$CH/$(segments | sed -n 1p)"
	second="$CH/$(segments | sed -n 2p)"
	# The old segment got a format 1 seal and nothing else changed.
	assert_equal "$(size "$first")" $((before + 60))
	assert_equal "$(head -c "$before" "$first" | md5sum)" "$head"
	assert_equal "$(u32 "$first" $((before + 60 - 4)))" 60
	assert_equal "$(u32 "$second" 8)" 2
	assert_equal "${lines[0]}" "$((10#$(basename "$second" .seg)))"
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 old-1
1 old-2
2 old-3
3 new-1
4 new-2"
	# A subscriber inside the old segment reads on across the formats.
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":4'
	run -0 chsub "$CH" s
	assert_output "old-2
old-3
new-1
new-2"
	run -0 chcompact --check "$CH"
	# Offsets in either format can be set.
	choffset --set="$(record_offset old-3)" "$CH" s >/dev/null
	run -0 chsub -n 1 "$CH" s
	assert_output old-3
	choffset --set="$(record_offset new-2)" "$CH" s >/dev/null
	run -0 chsub "$CH" s
	assert_output new-2
	# And the old segment goes when it is consumed.
	chcompact "$CH"
	assert_equal "$(segments)" "$(basename "$second")"
}

@test "upgrading a channel whose format 1 segment holds nothing rewrites its header; a follower there reads on" {
	CH_FORMAT=1 new_channel
	: >"$T/ready"
	start_bg chsub -f --from=earliest --ready-fd=4 "$CH" s >"$T/out" \
		4>"$T/ready" 2>"$T/err"
	wait_for 10 test -s "$T/ready"
	set_config format 2
	chpub "$CH" one two
	wait_until 10 '[ "$(wc -l <"$T/out")" -eq 2 ]'
	assert_equal "$(cat "$T/out")" "one
two"
	assert_equal "$(segments | wc -l)" 1
	assert_equal "$(u32 "$(seg0)" 8)" 2
	run -0 chcompact --check "$CH"
	[[ ! -s $T/err ]] || fail "$(cat "$T/err")"
}

@test "format: 1 again makes the next segments format 1; every segment still reads" {
	CH_FORMAT=2 new_channel
	chpub "$CH" two-1 two-2
	set_config format 1
	chpub "$CH" one-1
	set_config format 2
	chpub "$CH" two-3
	run -0 segments
	assert_equal "${#lines[@]}" 3
	assert_equal "$(u32 "$CH/${lines[0]}" 8) $(u32 "$CH/${lines[1]}" 8) $(u32 "$CH/${lines[2]}" 8)" "2 1 2"
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 two-1
1 two-2
2 one-1
3 two-3"
	run -0 chcompact --check "$CH"
}

@test "a channel.yaml that names no format keeps the channel's format: written over a format 3 or 2 channel, it lowers nothing; a format 1 channel stays format 1" {
	local f want
	for f in 3 2 1; do
		CH=$T/ch$f
		CH_FORMAT=$f new_channel
		chpub "$CH" a
		# limits kept in the channel, as chcompact(1) shows them
		printf 'retention:\n  max_age: 7d\nexpire: 30d\n' >"$CH/channel.yaml"
		chpub "$CH" b
		echo c | chpub "$CH"
		run -0 segments
		assert_equal "${#lines[@]} $(u32 "$CH/${lines[0]}" 8)" "1 $f"
		if ((f >= 2)); then
			run -0 chpub --atomic "$CH" d
		else
			run -1 --separate-stderr chpub --atomic "$CH" d
			assert_equal "$stderr" "chpub: $CH: atomic publishing needs a format 2 or 3 channel (this one is format 1; set 'format: 3' in channel.yaml to upgrade it)"
		fi
		: >"$CH/channel.yaml"	# an empty file: the same
		chpub "$CH" e
		assert_equal "$(segments | wc -l)" 1
		want=$'a\nb\nc\n'
		((f == 1)) || want+=$'d\n'
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "${want}e"
		run -0 chcompact --check "$CH"
	done
}

@test "a crash in the middle of rewriting an empty segment's header is repaired by the next writer" {
	CH_FORMAT=1 new_channel
	# A torn header: the rewrite stopped after 10 bytes.
	printf 'CHANSEG\n\x02\x00' | dd of="$(seg0)" conv=notrunc status=none
	run -65 chsub --peek --from=earliest "$CH"
	set_config format 2
	run -0 chpub "$CH" a
	assert_equal "$(u32 "$(seg0)" 8)" 2
	run -0 chsub --peek --from=earliest "$CH"
	assert_output a
	run -0 chcompact --check "$CH"
}

# start_fifo_writer [OPTION...]: a chpub reading the FIFO $T/in, whose other
# end is this shell's fd 5, as in `tail -F log | chpub ch`; $pub is its pid.
start_fifo_writer() {
	mkfifo "$T/in"
	exec 5<>"$T/in"		# read-write: opening it does not block
	chpub "$@" "$CH" <"$T/in" 3>&- 5>&- &
	pub=$!
	BG_PIDS+=("$pub")
}

# stop_fifo_writer: end its input; it exits 0.
stop_fifo_writer() {
	exec 5>&-
	wait_for 10 eval '! kill -0 '"$pub"' 2>/dev/null'
	run wait "$pub"
	assert_equal "$status" 0
}

# records: how many records the channel holds.
records() { chsub --peek --from=earliest "$CH" | wc -l; }

# formats: the format of each segment, oldest first, on one line.
formats() {
	local s out=
	for s in $(segments); do out+="$(u32 "$CH/$s" 8) "; done
	echo "${out% }"
}

@test "a long-running chpub started before format: 2 was set, and newer ones, taking turns: the old one takes up format 2 instead of sealing a segment per batch, and follows format: 1 back" {
	CH_FORMAT=1 new_channel
	local pub i n=1
	start_fifo_writer -k old
	echo old-0 >&5
	wait_until 10 '[ "$(records)" -eq 1 ]'
	set_config format 2
	for i in 1 2 3 4 5; do
		chpub "$CH" "new-$i"
		printf 'old-%d-a\nold-%d-b\n' "$i" "$i" >&5
		n=$((n + 3))
		wait_until 10 '[ "$(records)" -eq $n ]'
	done
	# The first new writer sealed the format 1 segment; then no more.
	assert_equal "$(formats)" "1 2"
	# Back to format 1 (for older chtools): the same, the other way.
	set_config format 1
	for i in 6 7 8; do
		chpub "$CH" "new-$i"
		printf 'old-%d-a\nold-%d-b\n' "$i" "$i" >&5
		n=$((n + 3))
		wait_until 10 '[ "$(records)" -eq $n ]'
	done
	assert_equal "$(formats)" "1 2 1"
	stop_fifo_writer
	run -0 chsub --peek --from=earliest --format='%k:%s\n' "$CH"
	local want=old:old-0
	for i in 1 2 3 4 5 6 7 8; do
		want+=$'\n'":new-$i"$'\n'"old:old-$i-a"$'\n'"old:old-$i-b"
	done
	assert_output "$want"
	run -0 chcompact --check "$CH"
}

@test "a long-running chpub follows a channel.yaml that names no format into the format of the active segment: a downgrade another writer made is kept" {
	CH_FORMAT=3 new_channel
	local pub
	start_fifo_writer
	echo A1 >&5
	wait_until 10 '[ "$(records)" -eq 1 ]'
	# for older chtools: format 1 from the next segment on
	set_config format 1
	chpub "$CH" B1
	assert_equal "$(formats)" "3 1"
	# the file written again without the key (chcompact(1)'s limits)
	printf 'max_bytes: 1GiB\n' >"$CH/channel.yaml"
	chpub "$CH" C1
	# the old writer finds the active segment in format 1 and the file
	# naming none: it goes on in format 1 (it made a format 3 segment)
	echo A2 >&5
	wait_until 10 '[ "$(records)" -eq 4 ]'
	assert_equal "$(formats)" "3 1"
	stop_fifo_writer
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "A1
B1
C1
A2"
}

@test "a channel.yaml without format on a channel whose newest segment's header cannot be read: the format of the segment before it, not format 1" {
	CH_FORMAT=3 new_channel segment_bytes=4096 segment_age=1s
	chpub "$CH" a b c
	printf 'segment_bytes: 4096\nsegment_age: 1s\n' >"$CH/channel.yaml"
	# chcompact seals the aged segment: the newest holds only a header
	faketime -f +2s chcompact "$CH"
	local last
	last=$(segments | tail -n 1)
	assert_equal "$(segments | wc -l) $(size "$CH/$last")" "2 64"
	truncate -s 20 "$CH/$last"	# torn
	chpub "$CH" x
	assert_equal "$(formats)" "3 3"
	run -0 chpub --atomic "$CH" y
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
b
c
x
y"
}

@test "a long-running chpub upgrades the channel by itself within a second or so of format: 2 being set" {
	CH_FORMAT=1 new_channel
	local pub
	start_fifo_writer
	echo before >&5
	wait_until 10 '[ "$(records)" -eq 1 ]'
	set_config format 2
	# It looks at channel.yaml at most once a second, when it has records
	# to append: feed it a line on each try.
	tick() { echo tick >&5; }
	wait_until 10 '[ "$(tick; formats)" = "1 2" ]'
	echo after >&5
	stop_fifo_writer
	run -0 chsub --peek --from=earliest "$CH"
	assert_line --index 0 before
	assert_line --index -1 after
	assert_equal "$(grep -cvxE 'before|tick|after' <<<"$output")" 0
	run -0 chcompact --check "$CH"
}

@test "a writer that finds another format but cannot read channel.yaml then goes on in the newer one: it never downgrades a channel on its own" {
	CH_FORMAT=1 new_channel
	local pub
	start_fifo_writer
	echo old-1 >&5
	wait_until 10 '[ "$(records)" -eq 1 ]'
	set_config format 2
	chpub "$CH" new-1
	assert_equal "$(formats)" "1 2"
	# An editor in the middle of saving channel.yaml.
	cp "$CH/channel.yaml" "$T/saved"
	echo 'format: [' >"$CH/channel.yaml"
	local last before
	last="$CH/$(segments | tail -n 1)"
	before=$(size "$last")
	echo old-2 >&5
	wait_until 10 '[ "$(size "$last")" -gt "$before" ] || [ "$(segments | wc -l)" -gt 2 ]'
	assert_equal "$(formats)" "1 2"
	cp "$T/saved" "$CH/channel.yaml"
	stop_fifo_writer
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "old-1
new-1
old-2"
	run -0 chcompact --check "$CH"
}

# A writer blocked on a full channel had sealed its segment and started a
# new one, holding nothing but a format 1 header; another writer, told
# format: 2 meanwhile, wrote that header again in format 2 and published.
# The blocked one woke, read the new records with the header it had kept
# (format 1), took them for a torn tail and cut them off: acknowledged
# records lost, and its own written under the wrong header.
@test "a writer blocked on a full channel while another rewrites the empty segment's header in format 2 and publishes reads the header again: nothing is cut" {
	CH_FORMAT=1 new_channel segment_bytes=65536 max_bytes=6000 \
	    on_full=block sync=none
	chsub "$CH" s
	fill 60 old
	(($(size "$(seg0)") > 3900 && $(size "$(seg0)") < 4900))
	printf '%02000d' 0 >"$T/big"
	start_bg chpub "$CH" "$(cat "$T/big")"
	# it sealed segment 0 and started segment 1, then waits for room
	wait_until 10 '[ "$(segments | wc -l)" = 2 ]'
	set_config format 2
	chpub --sync=always "$CH" B-one B-two
	assert_equal "$(u32 "$CH/$(segments | tail -n1)" 8)" 2
	chsub "$CH" s >/dev/null
	chcompact "$CH"
	wait_until 10 '! kill -0 "$BG" 2>/dev/null'
	run -0 wait "$BG"
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" B-one
	assert_equal "${lines[1]}" B-two
	assert_equal "${lines[2]}" "$(cat "$T/big")"
	run -0 chcompact --check "$CH"
}

# The same, with a writer that rewrites the header and then publishes
# nothing: one that finds the channel full (75), or chcompact sealing by
# segment_age through a writer of its own.  The size stayed 64, so the
# blocked writer took it that nobody wrote, kept its format 1 header and
# wrote a format 1 record under a format 2 one: exit 0, and the next
# writer cut the record as a torn tail.
@test "a writer blocked on a full channel while another rewrites the empty segment's header in format 2 and publishes nothing writes its record in format 2" {
	local how
	for how in full compact; do
		rm -rf "$CH"
		CH_FORMAT=1 new_channel segment_bytes=65536 max_bytes=6000 \
		    on_full=block sync=none
		chsub "$CH" s
		fill 60 old
		printf '%02000d' 0 >"$T/big"
		start_bg chpub "$CH" "$(cat "$T/big")"
		wait_until 10 '[ "$(segments | wc -l)" = 2 ]'
		set_config format 2
		if [[ $how == full ]]; then
			printf '%01600d' 1 >"$T/mid"
			run -75 chpub --on-full=fail "$CH" "$(cat "$T/mid")"
			assert_equal "$(u32 "$CH/$(segments | tail -n1)" 8)" 2
			assert_equal "$(size "$CH/$(segments | tail -n1)")" 64
			chsub "$CH" s >/dev/null
			chcompact "$CH"
		else
			set_config segment_age 1h
			chsub "$CH" s >/dev/null
			chcompact "$CH"
		fi
		wait_until 10 '! kill -0 "$BG" 2>/dev/null'
		run -0 wait "$BG"
		chpub "$CH" after
		run -0 chsub --peek --from=earliest "$CH"
		assert_equal "${#lines[@]}" 2
		assert_equal "${lines[0]}" "$(cat "$T/big")"
		assert_equal "${lines[1]}" after
		run -0 chcompact --check "$CH"
	done
}

# upgrade_to_3 FROM: a format FROM channel of records old-1..old-3, a
# subscriber s after old-1, then format: 3 and records new-1 new-2 new-3
# (one frame); the tests below check what that made.
upgrade_to_3() {
	CH_FORMAT=$1 new_channel
	printf 'old-%d\n' 1 2 3 | chpub "$CH"
	chsub --from=earliest -n 1 "$CH" s >/dev/null
	BEFORE=$(size "$(seg0)")
	HEAD=$(md5sum <"$(seg0)")
	set_config format 3
	run -0 chpub -p "$CH" new-1 new-2 new-3
	assert_equal "$(segments | wc -l)" 2
	FIRST="$CH/$(segments | sed -n 1p)"
	SECOND="$CH/$(segments | sed -n 2p)"
	assert_equal "${lines[0]}" "$((10#$(basename "$SECOND" .seg)))"
}

# upgraded_reads_across: the checks common to 1 -> 3 and 2 -> 3.
upgraded_reads_across() {
	# the old segment: its bytes kept, a seal after them
	assert_equal "$(head -c "$BEFORE" "$FIRST" | md5sum)" "$HEAD"
	(($(size "$FIRST") > BEFORE))
	assert_equal "$(u32 "$SECOND" 8)" 3
	# the new segment: one format 3 frame, the payloads together
	run -0 frames "$SECOND"
	assert_equal "${#lines[@]}" 1
	assert_equal "$(cut -d' ' -f3,4,8 <<<"${lines[0]}")" "1 3 18"
	assert_equal "$(python3 -m frames areas "$SECOND")" "new-1
new-2
new-3"
	grep -qx 'format: 3' "$CH/channel.yaml"
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 old-1
1 old-2
2 old-3
3 new-1
4 new-2
5 new-3"
	# A subscriber inside the old segment reads on across the formats.
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":5'
	run -0 chsub -n 3 "$CH" s
	assert_output "old-2
old-3
new-1"
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":2'
	# Offsets in either format can be set, inside the format 3 frame too
	# (new-2's: its table entry's position).
	assert_equal "$(record_offset new-2)" $(($(frame_records "$SECOND" | sed -n 2p | cut -d' ' -f1) - 64 + 10#$(basename "$SECOND" .seg)))
	choffset --set="$(record_offset old-2)" "$CH" s >/dev/null
	run -0 chsub -n 1 "$CH" s
	assert_output old-2
	choffset --set="$(record_offset new-2)" "$CH" s >/dev/null
	# (status REWIND, exit 2: it was just moved back to old-2)
	run -2 chlag --json "$CH"
	assert_output --partial '"lag_records":2'
	run -0 --separate-stderr choffset --shift=-2 "$CH" s
	assert_equal "$(offset_of s)" "$(record_offset old-3)"
	run -0 chsub "$CH" s
	assert_output "old-3
new-1
new-2
new-3"
	run -0 chcompact --check "$CH"
	# And the old segment goes when it is consumed.
	chcompact "$CH"
	assert_equal "$(segments)" "$(basename "$SECOND")"
	run -0 chcompact --check "$CH"
}

@test "format: 3 in channel.yaml upgrades a format 2 channel: the format 2 segment is sealed, never rewritten, and format 3 follows" {
	upgrade_to_3 2
	assert_equal "$(u32 "$FIRST" 8)" 2
	# a format 2 seal frame, unchanged in format 3
	run -0 frames "$FIRST"
	assert_equal "$(tail -n 1 <<<"$output" | cut -d' ' -f3,4)" "2 0"
	upgraded_reads_across
}

@test "format: 3 in channel.yaml upgrades a format 1 channel: the format 1 segment is sealed, never rewritten, and format 3 follows" {
	upgrade_to_3 1
	assert_equal "$(u32 "$FIRST" 8)" 1
	assert_equal "$(size "$FIRST")" $((BEFORE + 60))
	upgraded_reads_across
}

@test "upgrading to format 3 a channel whose segment holds nothing rewrites its header; a follower there reads on" {
	local from
	for from in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$from new_channel
		: >"$T/ready"
		start_bg chsub -f --from=earliest --ready-fd=4 "$CH" s >"$T/out" \
			4>"$T/ready" 2>"$T/err"
		wait_for 10 test -s "$T/ready"
		set_config format 3
		chpub "$CH" one two
		wait_until 10 '[ "$(wc -l <"$T/out")" -eq 2 ]'
		assert_equal "$(cat "$T/out")" "one
two"
		assert_equal "$(segments | wc -l)" 1
		assert_equal "$(u32 "$(seg0)" 8)" 3
		assert_equal "$(frame_field_p)" 8
		run -0 chcompact --check "$CH"
		[[ ! -s $T/err ]] || fail "$(cat "$T/err")"
		kill "$BG"
		wait "$BG" || true
	done
}

# frame_field_p: P of the first frame of the oldest segment.
frame_field_p() { frames "$(seg0)" | awk 'NR == 1 { print $8 }'; }

@test "format: 2 again after 3 makes the next segments format 2; every segment still reads" {
	CH_FORMAT=3 new_channel
	chpub "$CH" three-1 three-2
	set_config format 2
	chpub "$CH" two-1
	set_config format 1
	chpub "$CH" one-1
	set_config format 3
	chpub "$CH" three-3
	assert_equal "$(formats)" "3 2 1 3"
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 three-1
1 three-2
2 two-1
3 one-1
4 three-3"
	run -0 chcompact --check "$CH"
}
