#!/usr/bin/env bats
# Format 2 of channel(5), whatever CH_FORMAT the suite runs with: frames,
# their checksums, offsets inside frames, seals, gaps, damage and repair.
# 10-format.bats holds the same for format 1; 12-upgrade.bats the mixed
# channels.  helpers/frames.py reads frames independently of the C code.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	export CH_FORMAT=2
}
teardown() { ops_teardown; }

# frame N [SEG]: field FIELD (pos len type count seq ts h) of frame N.
frame_field() {
	frames "${3:-$(seg0)}" | awk -v n="$1" -v f="$2" 'NR == n + 1 {
		split("pos len type count seq ts h", k, " ")
		for (i = 1; i <= 7; i++) if (k[i] == f) print $i }'
}

@test "a format 2 channel says so in channel.yaml and in its segment header" {
	chpub "$CH" </dev/null
	grep -qx 'format: 2' "$CH/channel.yaml"
	assert_equal "$(bytes "$(seg0)" 0 8)" "4348414e5345470a"
	assert_equal "$(u32 "$(seg0)" 8)" 2
	assert_equal "$(u32 "$(seg0)" 12)" 64
}

@test "the records of one append share one frame: signature, length, type, count, header length, records, trailer" {
	run -0 chpub -p "$CH" a bb ccc
	local f h len
	f=$(seg0)
	run -0 frames "$f"
	assert_equal "${#lines[@]}" 1
	read -r pos len type count seq _ h <<<"${lines[0]}"
	assert_equal "$pos $type $count $seq" "64 1 3 0"
	assert_equal "$(bytes "$f" 64 4)" "c946524d"
	assert_equal "$(u32 "$f" 72)" "$len"
	assert_equal "$(bytes "$f" 76 2)" "0100"
	assert_equal "$((16#$(bytes "$f" $((64 + h - 1)) 1)))" "$h"
	assert_equal "$(u32 "$f" $((64 + len - 4)))" "$len"
	# Records: a (attributes, length, byte); bb and ccc with a position.
	assert_equal "$(bytes "$f" $((64 + h)) 3)" "000161"
	assert_equal "$(bytes "$f" $((64 + h + 3)) 5)" "0003026262"
	assert_equal "$(bytes "$f" $((64 + h + 8)) 6)" "000803636363"
	assert_equal "$len" $((h + 3 + 5 + 6 + 4))
	assert_equal "$(size "$f")" $((64 + len))
	# Record 0 has the frame's offset; the others their own.
	run -0 chpub -p "$CH" </dev/null
	run -0 chsub --peek --from=earliest --format='%o %n %s\n' "$CH"
	assert_output "0 0 a
$((h + 3)) 1 bb
$((h + 8)) 2 ccc"
}

@test "one short record takes less framing than format 1's 36 bytes" {
	chpub "$CH" "$(printf '%099d' 7)"
	local len
	len=$(frame_field 0 len)
	((len - 99 < 36))
	assert_equal "$(size "$(seg0)")" $((64 + len))
}

@test "bulk 100-byte lines take at most 8 bytes of framing each" {
	seq -f '%099g' 1 20000 | chpub "$CH"
	local bytes
	bytes=$(($(size "$(seg0)") - 64))
	echo "# $((bytes - 20000 * 99)) bytes of framing for 20000 records" >&3
	((bytes - 20000 * 99 <= 8 * 20000))
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 20000
	assert_line -n 19999 "$(printf '%099d' 20000)"
}

# three_frames: frames "first", "second third", "fourth"; F1 and F2 the
# file positions of the second and third frames.
three_frames() {
	chpub "$CH" first
	chpub "$CH" second third
	chpub "$CH" fourth
	F1=$(frame_field 1 pos)
	F2=$(frame_field 2 pos)
}

@test "a flipped byte anywhere in a frame: none of its records is delivered, the frames around it are" {
	three_frames
	local k
	for ((k = F1; k < F2; k++)); do
		cp "$(seg0)" "$T/seg"
		flip_byte "$(seg0)" "$k"
		run -65 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_output "first"
		[[ $stderr == "chsub: $CH: corrupt record at offset $((F1 - 64)) (use --skip-corrupt to skip it)" ]] ||
			fail "byte $k: $stderr"
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
		assert_output "first
fourth"
		[[ $stderr == "chsub: $CH: skipped $((F2 - F1)) corrupt bytes at offset $((F1 - 64)), 2 records lost" ]] ||
			fail "byte $k: $stderr"
		cp "$T/seg" "$(seg0)"
	done
}

@test "a frame whose CRC is right but whose record positions lie is invalid as a whole" {
	three_frames
	local h
	h=$(frame_field 1 h)
	# The second record of the frame says it starts a byte later.
	assert_equal "$(bytes "$(seg0)" $((F1 + h + 8)) 3)" "000805"
	printf '\x09' | dd of="$(seg0)" bs=1 seek=$((F1 + h + 9)) conv=notrunc status=none
	fix_frame_crc "$(seg0)" "$F1"
	run -65 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output "first"
	refute_output --partial second
}

@test "a flipped byte in the last frame is never delivered, and the next chpub cuts it" {
	three_frames
	flip_byte "$(seg0)" $((F2 + 20))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "first
second
third"
	run -0 --separate-stderr chpub -v "$CH" fifth
	[[ $stderr == *"torn tail"* ]]
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "first
second
third
fifth"
}

@test "a frame cut short at any byte is never partly delivered; the next chpub cuts it" {
	chpub "$CH" first
	local good cut
	good=$(size "$(seg0)")
	chpub "$CH" second third
	for ((cut = good + 1; cut < $(size "$(seg0)"); cut += 3)); do
		cp "$(seg0)" "$T/seg"
		truncate -s "$cut" "$(seg0)"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "first"
		cp "$T/seg" "$(seg0)"
	done
	truncate -s $((good + 9)) "$(seg0)"
	chpub "$CH" fourth
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "first
fourth"
	run -0 chcompact --check "$CH"
}

@test "a sealed segment ends with a seal frame that counts its records and names the next segment" {
	new_channel segment_bytes=4096
	for i in $(seq 300); do echo "record $i"; done | chpub "$CH"
	local first next last pos len type count seq
	first="$CH/$(segments | sed -n 1p)"
	next=$(segments | sed -n 2p)
	last=$(frames "$first" | tail -1)
	read -r pos len type count seq _ <<<"$last"
	assert_equal "$type $count" "2 0"
	assert_equal "$((pos + len))" "$(size "$first")"
	assert_equal "$((pos - 64))" "$((10#${next%.seg}))"
	# Its sequence number is the next segment's first; its payload counts
	# the records before it.
	assert_equal "$seq" "$(u64 "$CH/$next" 24)"
	assert_equal "$(u64 "$first" $((pos + len - 4 - 24)))" "$seq"
}

@test "an append is cut where the segment ends: no segment grows past segment_bytes, no record is lost" {
	new_channel segment_bytes=4096
	for i in $(seq 1000); do echo "record $i padding padding"; done | chpub "$CH"
	(($(segments | wc -l) > 5))
	local s
	for s in $(segments | head -n -1); do
		(($(size "$CH/$s") <= 4096 + 73)) || fail "$s is $(size "$CH/$s") bytes"
	done
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "${#lines[@]}" 1000
	assert_line -n 0 "0 record 1 padding padding"
	assert_line -n 999 "999 record 1000 padding padding"
	run -0 chcompact --check "$CH"
}

@test "the records of one append go into frames of at most 1 MiB; a larger record gets one of its own" {
	local a
	a=$(head -c 120000 /dev/zero | tr '\0' a)
	# ten arguments of 120000 bytes: eight fit in the first frame
	chpub "$CH" "$a" "$a" "$a" "$a" "$a" "$a" "$a" "$a" "$a" "$a"
	run -0 frames "$(seg0)"
	assert_equal "${#lines[@]}" 2
	assert_equal "$(frame_field 0 count) $(frame_field 1 count)" "8 2"
	(($(frame_field 0 len) <= 1048576))
	head -c 2000000 /dev/zero | chpub --whole "$CH"
	assert_equal "$(frame_field 2 count)" 1
	(($(frame_field 2 len) > 2000000))
	run -0 chsub --peek --from=earliest --format='%S\n' "$CH"
	assert_equal "${#lines[@]}" 11
	assert_line -n 9 120000
	assert_line -n 10 2000000
}

# ten: records r1..r10 in one frame (one append: arguments, not a pipe
# whose reads may each bring one line).
ten() {
	# shellcheck disable=SC2046
	chpub "$CH" $(printf 'r%d ' $(seq 10))
	assert_equal "$(frame_field 0 count)" 10
}

@test "every record of a frame has an offset: chsub -n stops inside the frame and the next run goes on from there" {
	ten
	run -0 chsub --from=earliest -n 3 "$CH" s
	assert_output "r1
r2
r3"
	local at
	at=$(record_offset r4)
	assert_equal "$(offset_of s)" "$at"
	((at > 0))
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":7'
	run -0 chsub "$CH" s
	assert_equal "${#lines[@]}" 7
	assert_line -n 0 r4
	assert_line -n 6 r10
}

@test "choffset --set, --shift and --from take offsets inside a frame" {
	ten
	choffset --create --earliest "$CH" s >/dev/null
	run -0 choffset --set="$(record_offset r5)" "$CH" s
	run -0 chsub -n 1 "$CH" s
	assert_output r5
	run -0 --separate-stderr choffset --shift=+3 "$CH" s
	assert_equal "$(offset_of s)" "$(record_offset r9)"
	run -0 --separate-stderr choffset --shift=-5 "$CH" s
	assert_equal "$(offset_of s)" "$(record_offset r4)"
	run -0 chsub --peek --from="$(record_offset r8)" "$CH"
	assert_output "r8
r9
r10"
}

@test "choffset --time lands on the first record of the frame published at that time" {
	CH_BIRTH=-3h new_channel
	printf 'old%d\n' 1 2 3 | faketime -f -2h chpub "$CH"
	printf 'mid%d\n' 1 2 3 | faketime -f -1h chpub "$CH"
	printf 'new%d\n' 1 2 3 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	choffset --time=90m "$CH" s >/dev/null
	assert_equal "$(offset_of s)" "$(record_offset mid1)"
	run -0 chsub -n 1 "$CH" s
	assert_output mid1
}

@test "an offset inside a record or inside a frame's header is refused" {
	ten
	local at
	at=$(record_offset r5)
	for bad in $((at + 1)) $((at + 2)) 1 5 17; do
		run -2 --separate-stderr choffset --create --set="$bad" "$CH" s
		[[ $stderr == *"offset $bad is not on a record boundary"* ]] ||
			fail "offset $bad: $stderr"
		run -2 --separate-stderr chsub --peek --from="$bad" "$CH"
		assert_output ""
	done
}

@test "a subscriber inside a frame that is then damaged gets 65, never part of the frame" {
	ten
	chpub "$CH" after
	chsub --from=earliest -n 3 "$CH" s >/dev/null
	flip_byte "$(seg0)" $(($(frame_field 0 pos) + 30))
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == *"corrupt record at offset $(($(offset_of s)))"* ]]
	run -0 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output after
	[[ $stderr == *"records lost"* ]]
}

@test "an offset file inside a damaged frame must name one of the records its header counts, or it is INVALID" {
	ten
	chpub "$CH" after
	chsub --from=earliest -n 3 "$CH" s >/dev/null
	flip_byte "$(seg0)" $(($(frame_field 0 pos) + 30))
	# Record 3 of records 0-9: taken, reading reports the damage.
	run -0 chlag "$CH"
	# A number the frame cannot hold: refused, never followed.
	doctor_offset s seq 999
	run -65 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output ""
	[[ $stderr == *"offset file says record 999 at offset $(offset_of s), inside a damaged frame of records 0 to 9"* ]]
	run -2 --separate-stderr chlag "$CH"
	assert_line --partial INVALID
	doctor_offset s seq 0	# the frame's own offset has that number
	run -65 chsub --skip-corrupt "$CH" s
	doctor_offset s seq 3
	run -0 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output after
}

@test "a subscriber inside a frame whose position field is what is then damaged keeps its offset; --skip-corrupt goes on after the frame" {
	ten
	chpub "$CH" after
	chsub --from=earliest -n 3 "$CH" s >/dev/null
	local at lost_bytes
	at=$(offset_of s)
	lost_bytes=$(($(frame_field 1 pos) - 64 - at))
	# The byte after r4's attributes: its position in the frame, which
	# a reader starting there follows to find the frame.
	flip_byte "$(seg0)" $((64 + at + 1))
	run -0 chlag "$CH"
	refute_output --partial INVALID
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	assert_equal "$stderr" "chsub: $CH: corrupt record at offset $at (use --skip-corrupt to skip it)"
	# Found from the frame after it: the offset file must still name
	# one of the records its header counts.
	doctor_offset s seq 999
	run -65 --separate-stderr chsub --skip-corrupt "$CH" s
	[[ $stderr == *"offset file says record 999 at offset $at, inside a damaged frame of records 0 to 9"* ]]
	doctor_offset s seq 3
	# An offset typed by a user is proven by a walk, which passes the
	# damage as readers do: one inside it cannot be verified, and is
	# refused saying so.
	run -2 --separate-stderr chsub --peek --from="$at" "$CH"
	[[ $stderr == *"offset $at is inside damaged data (offsets 0 to $((at + lost_bytes))), where no record can be verified; reading goes on at offset $((at + lost_bytes)), past the damage"* ]]
	run -0 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output after
	assert_equal "$stderr" "chsub: $CH: skipped $lost_bytes corrupt bytes at offset $at, 7 records lost"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "damage too short to hold a gap frame's header is left as it is, and said so" {
	chpub "$CH" first
	chpub "$CH" a
	chpub "$CH" last
	local f1 f2
	f1=$(frame_field 1 pos)
	f2=$(frame_field 2 pos)
	# Frame 1 replaced by 12 zero bytes: one record lost in less room
	# than the shortest frame header (no real crash leaves that).
	python3 - "$(seg0)" "$f1" "$f2" <<-'PY'
	import sys
	path, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
	d = open(path, 'rb').read()
	open(path, 'wb').write(d[:a] + bytes(12) + d[b:])
	PY
	cp "$(seg0)" "$T/before"
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"the damage at offset $((f1 - 64)) (12 bytes) cannot be one gap record standing for 1 lost record: too short for its header or for that many records; left as it is"* ]]
	cmp "$(seg0)" "$T/before"
	run -0 --separate-stderr chsub --peek --skip-corrupt --from=earliest "$CH"
	assert_output "first
last"
}

@test "chcompact --check finds a corrupt frame and says how many records it held; --repair writes a gap frame over it" {
	three_frames
	flip_byte "$(seg0)" $((F1 + 20))
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: $(basename "$(seg0)"): corrupt record at offset $((F1 - 64)) ($((F2 - F1)) bytes up to the next valid record, 2 records lost)"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: $(basename "$(seg0)"): replaced $((F2 - F1)) damaged bytes at offset $((F1 - 64)) with a gap record: 2 records lost" ]]
	# A gap frame of exactly the damaged bytes, standing for the two.
	assert_equal "$(frame_field 1 type) $(frame_field 1 count) $(frame_field 1 seq) $(frame_field 1 len)" "3 2 1 $((F2 - F1))"
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 first
3 fourth"
	assert_equal "$stderr" "chsub: $CH: 2 records lost at offset $((F1 - 64))"
	# The writer goes on after it, numbering intact.
	chpub "$CH" fifth
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_line -n 2 "4 fifth"
}

@test "a hole of zeros over frames in the newest segment (a power loss): readers stop there until --repair fills it with a gap frame" {
	chpub "$CH" first
	chpub "$CH" second third
	chpub "$CH" fourth
	chpub "$CH" fifth
	local f1 f3
	f1=$(frame_field 1 pos)
	f3=$(frame_field 3 pos)
	dd if=/dev/zero of="$(seg0)" bs=1 seek="$f1" count=$((f3 - f1)) \
	    conv=notrunc status=none
	run -65 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output first
	run -65 chcompact --check "$CH"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"replaced $((f3 - f1)) damaged bytes at offset $((f1 - 64)) with a gap record: 3 records lost" ]]
	run -0 chcompact --check "$CH"
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 first
4 fifth"
	run -0 chlag --json "$CH"
	# A subscriber set at the gap reads on after it.
	choffset --create --set=$((f1 - 64)) "$CH" s >/dev/null
	run -0 --separate-stderr chsub "$CH" s
	assert_output fifth
	assert_equal "$stderr" "chsub: $CH: 3 records lost at offset $((f1 - 64))"
}

@test "chcompact --repair cuts a torn frame and the channel checks clean" {
	new_channel segment_bytes=4096
	fill 200
	truncate -s -5 "$CH/$(segments | tail -1)"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"torn tail at offset"* ]]
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: cut a torn tail of "*" bytes"* ]]
	run -0 chcompact --check "$CH"
}

@test "a gap frame is skipped with a warning that says how many records were lost" {
	three_frames
	gap_frame "$(seg0)" "$F1"
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output "first
fourth"
	assert_equal "$stderr" "chsub: $CH: 2 records lost at offset $((F1 - 64))"
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_line -n 1 "3 fourth"
	run -0 chcompact --check "$CH"
	chpub "$CH" fifth
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_line -n 2 "4 fifth"
}

@test "a duplicated last frame is not delivered twice, and the next chpub cuts it" {
	chpub "$CH" one
	chpub "$CH" two three
	local pos len
	pos=$(frame_field 1 pos)
	len=$(frame_field 1 len)
	tail -c "$len" "$(seg0)" >>"$(seg0)"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'one\ntwo\nthree'
	chpub "$CH" four
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'one\ntwo\nthree\nfour'
	run -0 chcompact --check "$CH"
}
