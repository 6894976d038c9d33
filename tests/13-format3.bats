#!/usr/bin/env bats
# Format 3, whatever CH_FORMAT the suite runs with: data frames whose
# payloads lie together, each followed by 0x0A, then the record table;
# offsets inside frames, damage, repair, cuts at a segment's end.
# 11-format2.bats holds the same for format 2, 12-upgrade.bats the mixed
# channels.  helpers/frames.py reads frames independently of the C code.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	export CH_FORMAT=3
}
teardown() { ops_teardown; }

# frame_field N FIELD [SEG]: field FIELD (pos len type count seq ts h p)
# of frame N.
frame_field() {
	frames "${3:-$(seg0)}" | awk -v n="$1" -v f="$2" 'NR == n + 1 {
		split("pos len type count seq ts h p", k, " ")
		for (i = 1; i <= 8; i++) if (k[i] == f) print $i }'
}

# areas SEG: the payload areas of its data frames, concatenated.
areas() { python3 -m frames areas "$1"; }

# all_areas: those of every segment, oldest first.
all_areas() {
	local s
	for s in $(segments); do areas "$CH/$s" || return; done
}

# chsub_records: every record from the earliest as frame_records prints
# them (file position, seq, length), for a one-segment channel.
chsub_records() {
	chsub --peek --from=earliest --format='%o %n %S\n' "$CH" |
		awk '{ print $1 + 64, $2, $3 }'
}

@test "a format 3 channel says so in channel.yaml and in its segment header" {
	chpub "$CH" </dev/null
	grep -qx 'format: 3' "$CH/channel.yaml"
	assert_equal "$(bytes "$(seg0)" 0 8)" "4348414e5345470a"
	assert_equal "$(u32 "$(seg0)" 8)" 3
	assert_equal "$(u32 "$(seg0)" 12)" 64
	chpub "$CH" a
	assert_equal "$(u32 "$(seg0)" 8)" 3
	assert_equal "$(bytes "$(seg0)" 64 4)" "c946524d"
}

@test "one append is one frame: header with P, the payloads each followed by 0x0A, then the table, then the trailer" {
	run -0 chpub -p "$CH" a bb ccc
	local f pos len type count seq h p
	f=$(seg0)
	run -0 frames "$f"
	assert_equal "${#lines[@]}" 1
	read -r pos len type count seq _ h p <<<"${lines[0]}"
	assert_equal "$pos $type $count $seq $p" "64 1 3 0 9"
	assert_equal "$(bytes "$f" 64 4)" "c946524d"
	assert_equal "$(u32 "$f" 72)" "$len"
	assert_equal "$(bytes "$f" 76 2)" "0100"
	# H is the byte before the body, and P the varint before it.
	assert_equal "$((16#$(bytes "$f" $((64 + h - 1)) 1)))" "$h"
	assert_equal "$(bytes "$f" $((64 + h - 2)) 1)" "09"
	# The payload area, then the table: a (attributes, length); bb and
	# ccc (attributes, position from the body, length).
	assert_equal "$(bytes "$f" $((64 + h)) 9)" "610a62620a6363630a"
	assert_equal "$(bytes "$f" $((64 + h + 9)) 2)" "0001"
	assert_equal "$(bytes "$f" $((64 + h + 11)) 3)" "000b02"
	assert_equal "$(bytes "$f" $((64 + h + 14)) 3)" "000e03"
	assert_equal "$len" $((h + 9 + 2 + 3 + 3 + 4))
	assert_equal "$(u32 "$f" $((64 + len - 4)))" "$len"
	assert_equal "$(size "$f")" $((64 + len))
	# Record 0's offset is the frame's, the others' their table entry's.
	run -0 chsub --peek --from=earliest --format='%o %n %s\n' "$CH"
	assert_output "0 0 a
$((h + 11)) 1 bb
$((h + 14)) 2 ccc"
	run -0 frame_records "$f"
	assert_output "64 0 1
$((64 + h + 11)) 1 2
$((64 + h + 14)) 2 3"
}

@test "200 KB of lines piped into chpub lie in the segment byte for byte, in frames of at most 64 KiB" {
	local i
	for ((i = 1; i <= 6000; i++)); do
		printf 'line %05d padding padding padding\n' "$i"
	done >"$T/in"
	(($(size "$T/in") >= 200000))
	chpub "$CH" <"$T/in"
	areas "$(seg0)" >"$T/areas"
	cmp "$T/in" "$T/areas"
	run -0 frames "$(seg0)"
	((${#lines[@]} >= 4)) || fail "${#lines[@]} frames"
	local pos len type count seq ts h p total=0 records=0 next=64
	for i in "${lines[@]}"; do
		read -r pos len type count seq ts h p <<<"$i"
		assert_equal "$pos $type" "$next 1"
		((len <= 65536)) || fail "a frame of $len bytes"
		total=$((total + p))
		records=$((records + count))
		next=$((pos + len))
	done
	assert_equal "$total" "$(size "$T/in")"
	assert_equal "$records" 6000
	assert_equal "$next" "$(size "$(seg0)")"
	# Plain output is the input again, and the tools show the offsets
	# and numbers frames.py reads.
	chsub --peek --from=earliest "$CH" | cmp - "$T/in"
	assert_equal "$(chsub_records)" "$(frame_records "$(seg0)")"
}

@test "bulk input waiting to be read goes in full frames, a batch of about 512 KiB at a time" {
	local i n pos len type count seq ts h p short=0
	seq 100000 999999 | head -n 150000 >"$T/in"	# 1.05 MB
	# A file is always ready to be read (a fast producer's pipe is, but
	# not at every instant: the test would race).
	chpub "$CH" <"$T/in"
	chsub --peek --from=earliest "$CH" | cmp - "$T/in"
	run -0 frames "$(seg0)"
	n=${#lines[@]}
	((n >= 17)) || fail "$n frames"
	# Every frame full (64 KiB less a line and the header's slack) but
	# the last of each batch (of 512-768 KiB: 8 to 12 frames), and the
	# last one.
	for ((i = 0; i < n - 1; i++)); do
		read -r pos len type count seq ts h p <<<"${lines[i]}"
		((len > 65536 - 200)) || short=$((short + 1))
	done
	((short * 4 <= n)) || fail "$short short frames of $n"
}

@test "after a record longer than a batch, the lines after it still go in batches of about 512 KiB" {
	# chpub's buffer grows to hold one long record; the batches after it
	# must not grow with it (each is a lock held while followers wait,
	# and what a crash can leave half written).  One append.lock a batch.
	local locks
	chpub "$CH" </dev/null
	{ head -c 3000000 /dev/zero | tr '\0' x; echo
	  seq 100000 999999 | head -n 450000; } >"$T/in"	# 3 MB, then 3.15 MB
	strace -f -e trace=flock -o "$T/trace" chpub "$CH" <"$T/in"
	chsub --peek --from=earliest "$CH" | cmp - "$T/in"
	locks=$(grep -c 'LOCK_EX' "$T/trace")
	# The long line's batch, then 3 MB in batches of 512-768 KiB (all of
	# it in one batch of the grown buffer before the cap: 2 in all).
	((locks >= 6)) || fail "append.lock taken $locks times: batches too large"
}

@test "-0 input of long records then runs of empty ones: every frame's table fits the batch's buffer" {
	# The copying path reserved 4 bytes an input byte; an empty record
	# takes 6 (its 0x0A, its entry, its position), so a run of them
	# overflowed the buffer when the frame closed: heap corruption,
	# chpub dying after publishing (134).  ASan builds see any overflow.
	local x m
	for x in 23000 40000 61000; do
		for m in 2001 9000 30000; do
			rm -rf "$CH"
			{ head -c "$x" /dev/zero | tr '\0' a; head -c "$m" /dev/zero
			  printf b; } >"$T/in"
			printf '\0' >>"$T/in"
			run -0 chpub -0 "$CH" <"$T/in"
			chsub -0 --peek --from=earliest "$CH" | cmp - "$T/in"
			run -0 chcompact --check "$CH"
		done
	done
}

@test "-0 input: each payload is followed by 0x0A in the file; chsub -0 prints NUL-delimited records" {
	printf 'a\0b\nc\0\0d\0' | chpub -0 "$CH"
	assert_equal "$(frame_field 0 count) $(frame_field 0 p)" "4 9"
	areas "$(seg0)" | od -An -tx1 | tr -d ' \n' >"$T/hex"
	assert_equal "$(cat "$T/hex")" "610a620a630a0a640a"
	chsub -0 --peek --from=earliest "$CH" | od -An -tx1 | tr -d ' \n' >"$T/hex"
	assert_equal "$(cat "$T/hex")" "6100620a6300006400"
	run -0 chsub --peek --from=earliest --format='%n:%S\n' "$CH"
	assert_output "0:1
1:3
2:0
3:1"
}

@test "metadata lies in the table entries, not in the payload area, and round-trips" {
	local meta f h
	meta=$'key=order-17\nh.Content-Type=application/json\nh.trace-id=ab12\n'
	chpub -k order-17 -H Content-Type=application/json -H trace-id=ab12 \
		"$CH" PAYLOAD second
	f=$(seg0)
	h=$(frame_field 0 h)
	assert_equal "$(frame_field 0 p)" 15
	assert_equal "$(bytes "$f" $((64 + h)) 15)" "$(printf 'PAYLOAD\nsecond\n' | od -An -tx1 | tr -d ' \n')"
	# entry 0: attributes 02 (metadata), length 7, metadata length 61
	assert_equal "$(bytes "$f" $((64 + h + 15)) 3)" "02073d"
	assert_equal "$(bytes "$f" $((64 + h + 18)) 61)" "$(printf '%s' "$meta" | od -An -tx1 | tr -d ' \n')"
	# entry 1: attributes, its position (15 + 3 + 61), length 6, 61, ...
	assert_equal "$(bytes "$f" $((64 + h + 79)) 4)" "024f063d"
	assert_equal "$(bytes "$f" $((64 + h + 83)) 61)" "$(printf '%s' "$meta" | od -An -tx1 | tr -d ' \n')"
	assert_equal "$(frame_field 0 len)" $((h + 15 + 3 + 61 + 4 + 61 + 4))
	run -0 chsub --peek --from=earliest --format='%k|%{Content-Type}|%{trace-id}|%s\n' "$CH"
	assert_output "order-17|application/json|ab12|PAYLOAD
order-17|application/json|ab12|second"
	printf 'x\ny\n' | chpub --atomic -k d -H n=4 "$CH"
	printf 'z1\0z2\0' | chpub -0 -k b -H n=2 "$CH"
	chpub "$CH" plain
	run -0 chsub --peek --from=earliest --format='%k %{n} %s|' "$CH"
	assert_output "order-17  PAYLOAD|order-17  second|d 4 x|d 4 y|b 2 z1|b 2 z2|  plain|"
	run -0 chsub --peek --from=earliest --json "$CH"
	assert_line -n 6 --partial '"payload":"plain"'
	refute_line -n 6 --partial key
	run -0 chcompact --check "$CH"
}

@test "chpub --atomic writes one frame, larger than 64 KiB if it must" {
	local i
	for ((i = 1; i <= 3000; i++)); do
		printf 'atomic %05d padding padding padding\n' "$i"
	done >"$T/in"
	chpub --atomic "$CH" <"$T/in"
	run -0 frames "$(seg0)"
	assert_equal "${#lines[@]}" 1
	assert_equal "$(frame_field 0 count)" 3000
	(($(frame_field 0 len) > 65536))
	areas "$(seg0)" | cmp - "$T/in"
	chsub --peek --from=earliest "$CH" | cmp - "$T/in"
}

@test "a record too large for 64 KiB gets a frame of its own" {
	local a
	a=$(head -c 100000 /dev/zero | tr '\0' a)
	chpub "$CH" small1 "$a" small2
	run -0 frames "$(seg0)"
	assert_equal "${#lines[@]}" 3
	assert_equal "$(frame_field 0 count) $(frame_field 1 count) $(frame_field 2 count)" "1 1 1"
	assert_equal "$(frame_field 1 p)" 100001
	run -0 chsub --peek --from=earliest --format='%S\n' "$CH"
	assert_output "6
100000
6"
}

# ten: records r1..r10 in one frame, then "after" in a frame of its own.
ten() {
	# shellcheck disable=SC2046
	chpub "$CH" $(printf 'r%d ' $(seq 10))
	chpub "$CH" after
	assert_equal "$(frame_field 0 count)" 10
}

@test "every record offset frames.py reads is one chsub shows, and chsub and choffset --set start there with exactly the records from there" {
	ten
	chpub "$CH" x y
	assert_equal "$(chsub_records)" "$(frame_records "$(seg0)")"
	local all pos seq len k=0
	all=$(chsub --peek --from=earliest "$CH")
	choffset --create --earliest "$CH" s >/dev/null
	while read -r pos seq len; do
		assert_equal "$seq" "$k"
		run -0 chsub --peek --from=$((pos - 64)) "$CH"
		assert_equal "$output" "$(tail -n +$((k + 1)) <<<"$all")"
		run -0 choffset --set=$((pos - 64)) "$CH" s
		run -0 chsub --format='%n %s\n' "$CH" s
		assert_equal "${lines[0]}" "$k $(sed -n "$((k + 1))p" <<<"$all")"
		assert_equal "${#lines[@]}" $((13 - k))
		k=$((k + 1))
	done < <(frame_records "$(seg0)")
	assert_equal "$k" 13
}

@test "no other position in a frame is an offset: not a payload byte, not a 0x0A, not entry 0, not inside an entry, not the header or trailer" {
	ten
	local start end x ok=" " pos _
	start=$(frame_field 0 pos)
	end=$((start + $(frame_field 0 len)))
	while read -r pos _; do ok+="$pos "; done < <(frame_records "$(seg0)")
	# entry 0 is the table's first byte: it must be refused too
	[[ $ok != *" $((start + $(frame_field 0 h) + $(frame_field 0 p))) "* ]]
	for ((x = start + 1; x < end; x++)); do
		[[ $ok == *" $x "* ]] && continue
		run -2 --separate-stderr choffset --create --set=$((x - 64)) "$CH" s
		[[ $stderr == *"offset $((x - 64)) is not on a record boundary"* ]] ||
			fail "offset $((x - 64)): $stderr"
	done
	# chsub --from the same, at a few of them
	local h p
	h=$(frame_field 0 h)
	p=$(frame_field 0 p)
	for x in 1 $((h - 1)) $h $((h + 1)) $((h + 2)) $((h + p - 1)) $((h + p)) \
	    $((h + p + 1)) $((end - 64 - 4)) $((end - 64 - 1)); do
		run -2 --separate-stderr chsub --peek --from="$x" "$CH"
		assert_output ""
		[[ $stderr == *"offset $x is not on a record boundary"* ]] ||
			fail "offset $x: $stderr"
	done
}

@test "chsub -n stops inside a frame, the next run goes on from there; choffset --shift and chlag count records inside it" {
	ten
	run -0 chsub --from=earliest -n 3 "$CH" s
	assert_output "r1
r2
r3"
	assert_equal "$(offset_of s)" "$(record_offset r4)"
	assert_equal "$(($(offset_of s) + 64))" "$(frame_records "$(seg0)" | sed -n 4p | cut -d' ' -f1)"
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":8'
	run -0 --separate-stderr choffset --shift=+3 "$CH" s
	assert_equal "$(offset_of s)" "$(record_offset r7)"
	run -0 --separate-stderr choffset --shift=-5 "$CH" s
	assert_equal "$(offset_of s)" "$(record_offset r2)"
	run -0 chsub "$CH" s
	assert_equal "${#lines[@]}" 10
	assert_line -n 0 r2
	assert_line -n 9 after
}

# three_frames: frames "first", "second third", "fourth"; F1 and F2 the
# file positions of the second and third frames, H1 and P1 the second's
# header and payload area lengths.
three_frames() {
	chpub "$CH" first
	chpub "$CH" second third
	chpub "$CH" fourth
	F1=$(frame_field 1 pos)
	F2=$(frame_field 2 pos)
	H1=$(frame_field 1 h)
	P1=$(frame_field 1 p)
	assert_equal "$P1" 13
}

# damaged_frame WHAT: readers stop at the second frame, --skip-corrupt
# skips it saying so, chcompact --check reports it (WHAT names the damage).
damaged_frame() {
	run -65 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output "first"
	[[ $stderr == "chsub: $CH: corrupt record at offset $((F1 - 64)) (use --skip-corrupt to skip it)" ]] ||
		fail "$1: $stderr"
	run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_output "first
fourth"
	[[ $stderr == "chsub: $CH: skipped $((F2 - F1)) corrupt bytes at offset $((F1 - 64)), 2 records lost" ]] ||
		fail "$1: $stderr"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == "chcompact: $CH: $(basename "$(seg0)"): corrupt record at offset $((F1 - 64)) ($((F2 - F1)) bytes up to the next valid record, 2 records lost)" ]] ||
		fail "$1: $stderr"
}

@test "a flipped byte anywhere in a frame (payload, 0x0A, table entry, P, ...): none of its records is delivered, the frames around it are" {
	three_frames
	# the second payload's first byte and its 0x0A, an entry, P
	local k
	for k in $((F1 + H1)) $((F1 + H1 + 6)) $((F1 + H1 + P1 + 3)) $((F1 + H1 - 2)); do
		((k > F1 && k < F2))
	done
	for ((k = F1; k < F2; k++)); do
		cp "$(seg0)" "$T/seg"
		flip_byte "$(seg0)" "$k"
		damaged_frame "byte $k"
		cp "$T/seg" "$(seg0)"
	done
}

@test "a frame whose CRC is right but whose payloads, 0x0A, table or P lie is invalid as a whole" {
	three_frames
	cp "$(seg0)" "$T/seg"
	# the layout the edits below assume: "second\nthird\n", then entry 0
	# (attributes, length 6), entry 1 (attributes, position 15, length 5)
	assert_equal "$(bytes "$(seg0)" $((F1 + H1 + 6)) 1)" "0a"
	assert_equal "$(bytes "$(seg0)" $((F1 + H1 + 12)) 1)" "0a"
	assert_equal "$(bytes "$(seg0)" $((F1 + H1 + P1)) 5)" "0006000f05"
	local what at val
	while read -r what at val; do
		printf "\\x$val" | dd of="$(seg0)" bs=1 seek=$((F1 + at)) \
			conv=notrunc status=none
		python3 -m frames fixcrc "$(seg0)" "$F1"
		damaged_frame "$what"
		cp "$T/seg" "$(seg0)"
	done <<-EOF
		first-terminator $((H1 + 6)) 20
		last-terminator $((H1 + 12)) 00
		P-one-more $((H1 - 2)) 0e
		P-one-less $((H1 - 2)) 0c
		length-0-one-more $((H1 + P1 + 1)) 07
		length-1-one-less $((H1 + P1 + 4)) 04
		position-1-lies $((H1 + P1 + 3)) 10
		attributes-age $((H1 + P1 + 2)) 01
		count-one-more 14 03
	EOF
}

@test "chcompact --repair turns a corrupt frame into a gap frame; readers skip it saying how many records were lost; the writer goes on" {
	three_frames
	flip_byte "$(seg0)" $((F1 + H1 + 2))
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: $(basename "$(seg0)"): replaced $((F2 - F1)) damaged bytes at offset $((F1 - 64)) with a gap record: 2 records lost" ]] ||
		fail "$stderr"
	# A gap frame (format 2's layout: no P) of exactly the damaged bytes.
	run -0 frames "$(seg0)"
	assert_line -n 1 --regexp "^$F1 $((F2 - F1)) 3 2 1 [0-9]+ [0-9]+\$"
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_output "0 first
3 fourth"
	assert_equal "$stderr" "chsub: $CH: 2 records lost at offset $((F1 - 64))"
	chpub "$CH" fifth
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_line -n 2 "4 fifth"
	run -0 chcompact --check "$CH"
}

@test "frames.py gap and fixcrc write frames the tools take" {
	three_frames
	gap_frame "$(seg0)" "$F1"
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output "first
fourth"
	assert_equal "$stderr" "chsub: $CH: 2 records lost at offset $((F1 - 64))"
	run -0 chcompact --check "$CH"
	# A payload byte changed and the CRC fixed: a valid frame again.
	printf 'X' | dd of="$(seg0)" bs=1 seek=$((F2 + $(frame_field 2 h))) \
		conv=notrunc status=none
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output first
	fix_frame_crc "$(seg0)" "$F2"
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_output "first
Xourth"
}

@test "a subscriber inside a frame that is then damaged gets 65; --skip-corrupt goes on after the frame" {
	ten
	chsub --from=earliest -n 3 "$CH" s >/dev/null
	local at
	at=$(offset_of s)
	# a payload byte of r1
	flip_byte "$(seg0)" $((64 + $(frame_field 0 h)))
	run -0 chlag "$CH"
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	assert_equal "$stderr" "chsub: $CH: corrupt record at offset $at (use --skip-corrupt to skip it)"
	run -0 --separate-stderr chsub --skip-corrupt "$CH" s
	assert_output after
	[[ $stderr == *"7 records lost"* ]] || fail "$stderr"
	assert_equal "$(offset_of s)" "$(end_offset)"
}

@test "a flipped last frame is never delivered, and the next chpub cuts it" {
	three_frames
	flip_byte "$(seg0)" $((F2 + $(frame_field 2 h) + 1))
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
	run -0 chcompact --check "$CH"
}

@test "a frame cut short at any byte is never partly delivered" {
	chpub "$CH" first
	local good cut
	good=$(size "$(seg0)")
	chpub "$CH" second third
	for ((cut = good + 1; cut < $(size "$(seg0)"); cut++)); do
		cp "$(seg0)" "$T/seg"
		truncate -s "$cut" "$(seg0)"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output "first"
		cp "$T/seg" "$(seg0)"
	done
}

@test "an append is cut where the segment ends: both halves are valid frames, every record is delivered once, in order, from every offset" {
	new_channel segment_bytes=4096
	local args=() i
	for ((i = 1; i <= 300; i++)); do args+=("$(printf 'record %03d padding padding' "$i")"); done
	# one append of about 9 KB: one frame unless cut
	chpub "$CH" "${args[@]}"
	(($(segments | wc -l) >= 3))
	# the second segment starts with the second half of a frame
	assert_equal "$(frame_field 0 seq "$CH/$(segments | sed -n 2p)")" "$(frame_field 0 count)"
	local s n=0 total=0 kinds
	for s in $(segments); do
		(($(size "$CH/$s") <= 4096 + 73)) || fail "$s is $(size "$CH/$s") bytes"
		# frames.py checks every data frame's layout
		run -0 frame_records "$CH/$s"
		total=$((total + ${#lines[@]}))
		kinds=$(frames "$CH/$s" | awk '{ printf "%s", $3 }')
		[[ $kinds == 1 || $kinds == 12 ]] || fail "$s: frame types $kinds"
		n=$((n + 1))
	done
	assert_equal "$total" 300
	printf '%s\n' "${args[@]}" >"$T/in"
	all_areas | cmp - "$T/in"
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "${#lines[@]}" 300
	for ((i = 0; i < 300; i++)); do
		assert_equal "${lines[i]}" "$i ${args[i]}"
	done
	run -0 chcompact --check "$CH"
	# Every record offset of both halves is an offset: chsub from there
	# delivers that record and every one after it, once.
	# (r, not i: bats' run sets i)
	local offs r
	mapfile -t offs < <(chsub --peek --from=earliest --format='%o\n' "$CH")
	assert_equal "${#offs[@]}" 300
	for ((r = 0; r < 300; r++)); do
		run -0 chsub --peek --from="${offs[r]}" --format='%n\n' "$CH"
		assert_equal "${lines[0]} ${lines[-1]} ${#lines[@]}" "$r 299 $((300 - r))"
	done
}

@test "200 KB piped into small segments: every segment's frames are valid and their payload areas are the input" {
	new_channel segment_bytes=16384
	local i
	for ((i = 1; i <= 6000; i++)); do
		printf 'line %05d padding padding padding\n' "$i"
	done >"$T/in"
	chpub "$CH" <"$T/in"
	(($(segments | wc -l) >= 12))
	all_areas | cmp - "$T/in"
	chsub --peek --from=earliest "$CH" | cmp - "$T/in"
	run -0 chcompact --check "$CH"
}

@test "an offset file edited to a position inside a frame: --check finds it, --repair moves it back to the record boundary before it" {
	ten
	choffset --create --earliest "$CH" s >/dev/null
	local h p e1 e2
	h=$(frame_field 0 h)
	p=$(frame_field 0 p)
	e1=$(record_offset r2)
	e2=$(record_offset r3)
	assert_equal "$e1" $((h + p + 2))
	# a payload byte, a 0x0A, entry 0: the frame's start (no record
	# skipped); inside entry 1: entry 1
	local bad want
	while read -r bad want; do
		doctor_offset s offset "$bad"
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset $bad is not on a record boundary"
		run -0 --separate-stderr chcompact --repair "$CH"
		[[ $stderr == *"repaired: subscriber 's': moved from offset $bad to $want (was not on a record boundary)"* ]] ||
			fail "$bad: $stderr"
		assert_equal "$(offset_of s)" "$want"
		run -0 chcompact --check "$CH"
	done <<-EOF2
		$((h + 1)) 0
		$((h + 2)) 0
		$((h + p)) 0
		$((e1 + 1)) $e1
		$((e2 - 1)) $e1
	EOF2
}

@test "a record table entry with an age (bit 0; writers never write one): readers take the record's time as the frame's minus the age" {
	CH_BIRTH=-1d new_channel
	chpub "$CH" a bb ccc
	run -0 chsub --peek --from=earliest --format='%T\n' "$CH"
	local t0=${lines[0]}
	assert_equal "${lines[1]} ${lines[2]}" "$t0 $t0"
	# The frame again, entry 0 with an age of 5 s and entry 1 of 2 ms
	# (times must not go back: chcompact --check says so).
	python3 - "$(seg0)" 5000000000 2000000 0 <<-'PY'
	import struct, sys
	from frames import frame_at, records, put_uvarint, frame_crc
	path, ages = sys.argv[1], [int(a) for a in sys.argv[2:]]
	d = bytearray(open(path, 'rb').read())
	f = frame_at(d, 64)
	recs = list(records(d, f))
	assert len(d) == 64 + f['len'] and len(recs) == len(ages)
	body = 64 + f['h']
	table = bytearray()
	for k, (_, _, payload) in enumerate(recs):
	    at = f['p'] + len(table)
	    e = bytes([1 if ages[k] else 0])
	    if k:
	        e += put_uvarint(at)
	    e += put_uvarint(len(payload))
	    if ages[k]:
	        e += put_uvarint(ages[k])
	    table += e
	n = f['h'] + f['p'] + len(table) + 4
	frame = d[64:body + f['p']] + table + struct.pack('<I', n)
	struct.pack_into('<I', frame, 8, n)
	struct.pack_into('<I', frame, 4, frame_crc(frame, dict(pos=0, len=n, h=f['h'])))
	open(path, 'wb').write(d[:64] + frame)
	PY
	run -0 frame_records "$(seg0)"
	run -0 chsub --peek --from=earliest --format='%n %T %s\n' "$CH"
	assert_output "0 $((t0 - 5000)) a
1 $((t0 - 2)) bb
2 $t0 ccc"
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	assert_equal "$(chsub_records)" "$(frame_records "$(seg0)")"
	run -0 chsub --peek --from="$(record_offset ccc)" "$CH"
	assert_output ccc
	chpub "$CH" after
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
bb
ccc
after"
}
