#!/usr/bin/env bats
# chcompact --check and --repair: every record and every offset file.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	new_channel segment_bytes=4096
	fill 200
	choffset --create --earliest "$CH" s >/dev/null
}
teardown() { ops_teardown; }

# snapshot DIR: every file's name and checksum, to prove nothing changed.
snapshot() {
	(cd "$1" && find . -type f ! -name '*.lock' -print0 | sort -z |
		xargs -0 md5sum)
}

@test "a sound channel checks clean, silently" {
	run -0 --separate-stderr chcompact --check "$CH"
	assert_output ""
	assert_equal "$stderr" ""
}

@test "-v reports how much was checked" {
	run -0 --separate-stderr chcompact -v --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: checked 200 records in $(segments | wc -l) segments: 0 problems, 0 repaired"
	# one of each, in the singular
	local one=$T/one
	chpub "$one" x
	run -0 --separate-stderr chcompact -v --check "$one"
	assert_equal "$stderr" "chcompact: $one: checked 1 record in 1 segment: 0 problems, 0 repaired"
}

@test "--check changes nothing, even when it finds problems" {
	flip_byte "$CH/$(segments | head -1)" 1000
	truncate -s -5 "$CH/$(segments | tail -1)"
	touch "$CH/subscribers/s/.offset.tmp"
	before=$(snapshot "$CH")
	run -65 chcompact --check "$CH"
	assert_equal "$(snapshot "$CH")" "$before"
}

@test "finds a flipped byte in a sealed segment (65)" {
	seg=$(segments | head -1)
	flip_byte "$CH/$seg" 1000
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == "chcompact: $CH: $seg: corrupt record at offset "* ]]
}

# format1_channel: the setup's channel again, in format 1, where one
# flipped byte damages one record (11-format2.bats: format 2's frames).
format1_channel() {
	rm -rf "$CH"
	CH_FORMAT=1 new_channel segment_bytes=4096
	fill 200
	choffset --create --earliest "$CH" s >/dev/null
}

@test "--repair writes a gap record over a corrupt record, keeping every other; readers skip it with a warning" {
	format1_channel
	seg=$(segments | head -1)
	flip_byte "$CH/$seg" 1000
	size=$(stat -c %s "$CH/$seg")
	run -65 chsub --peek --from=earliest "$CH"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"$seg: corrupt record at offset "* ]]
	[[ $stderr =~ repaired:\ $seg:\ replaced\ [0-9]+\ damaged\ bytes\ at\ offset\ ([0-9]+)\ with\ a\ gap\ record:\ 1\ record\ lost ]]
	at=${BASH_REMATCH[1]}
	assert_equal "$(stat -c %s "$CH/$seg")" "$size"
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr == *"$seg: 1 record lost at offset $at (a gap record)"* ]]
	[[ $stderr == *"checked 199 records in "*": 0 problems, 0 repaired" ]]
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 199
	assert_equal "$stderr" "chsub: $CH: 1 record lost at offset $at"
	assert_line -n -1 --partial "rec-200 "
	# Numbering and lag stay whole: 200 records, one of them lost.
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_line -n -1 --partial "199 rec-200 "
	run -0 chlag --json "$CH"
	assert_output --partial '"lag_records":200,'
}

# zero_records FIRST LAST: overwrite the records from FIRST up to (not
# including) LAST with zeros, as a power loss that kept the writes after
# them would leave the newest segment.
zero_records() {
	local a b seg
	a=$(record_offset "$1")
	b=$(record_offset "$2")
	seg=$(segment_of "$a")
	dd if=/dev/zero of="$CH/$seg" bs=1 seek=$((a - 10#${seg%.seg} + 64)) \
	    count=$((b - a)) conv=notrunc status=none
	echo "$seg $a $((b - a))"
}

@test "a hole in the newest segment with records after it (a power loss): readers stop there (65) until --repair fills it with a gap" {
	format1_channel
	read -r seg at len < <(zero_records rec-196 rec-199)
	assert_equal "$seg" "$(segments | tail -1)"
	run -65 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 195
	run -65 chcompact --check "$CH"
	# The next writer appends after it, unaware (it looks at the tail).
	chpub "$CH" after
	run -0 --separate-stderr chcompact --repair "$CH"
	assert_equal "$stderr" "chcompact: $CH: $seg: corrupt record at offset $at ($len bytes up to the next valid record, 3 records lost)
chcompact: $CH: repaired: $seg: replaced $len damaged bytes at offset $at with a gap record: 3 records lost"
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "$stderr" "chsub: $CH: 3 records lost at offset $at"
	assert_equal "${#lines[@]}" 198
	assert_line -n -4 --partial "194 rec-195 "
	assert_line -n -3 --partial "198 rec-199 "
	assert_line -n -1 "200 after"
	# A subscriber whose offset was a lost record reads on from there.
	choffset --set="$at" "$CH" s >/dev/null
	run -0 --separate-stderr chsub "$CH" s
	assert_equal "$stderr" "chsub: $CH: 3 records lost at offset $at"
	assert_equal "${lines[0]%% *}" rec-199
	# ... and the writer goes on after a gap that precedes the tail.
	chpub "$CH" more
	run -0 chcompact --check "$CH"
}

@test "a gap as short as one lost record: an empty one (36 bytes, no payload) and one of 4 bytes (40)" {
	export CH_FORMAT=1	# byte positions of format 1 records
	rm -rf "$CH"
	new_channel
	printf 'one\n\nabcd\nlast\n' | chpub "$CH"
	dd if=/dev/zero of="$CH/00000000000000000000.seg" bs=1 seek=$((64 + 39)) \
	    count=76 conv=notrunc status=none
	run -65 chcompact --check "$CH"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"replaced 76 damaged bytes at offset 39 with a gap record: 2 records lost"* ]]
	run -0 --separate-stderr chsub --peek --from=earliest --format='%o %n %s\n' "$CH"
	assert_output $'0 0 one\n115 3 last'
	# Now each alone: the 36-byte gap has no room for a count.
	rm -rf "$CH"
	new_channel
	printf 'one\n\nmid\nabcd\nlast\n' | chpub "$CH"
	dd if=/dev/zero of="$CH/00000000000000000000.seg" bs=1 seek=$((64 + 39)) \
	    count=36 conv=notrunc status=none
	dd if=/dev/zero of="$CH/00000000000000000000.seg" bs=1 \
	    seek=$((64 + 114 + 2)) count=10 conv=notrunc status=none
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"replaced 36 damaged bytes at offset 39 with a gap record: 1 record lost"* ]]
	[[ $stderr == *"replaced 40 damaged bytes at offset 114 with a gap record: 1 record lost"* ]]
	run -0 --separate-stderr chsub --peek --from=earliest --format='%o %n %s\n' "$CH"
	assert_output $'0 0 one\n75 2 mid\n154 4 last'
	assert_equal "$stderr" "chsub: $CH: 1 record lost at offset 39
chsub: $CH: 1 record lost at offset 114"
	run -0 chcompact --check "$CH"
}

# length_flipped FORMAT [N]: a channel of N (5) records, one per append,
# whose second record's length (format 1) or frame length (format 2) has
# its high byte flipped: it claims to run gigabytes past the end of the
# file, which only a write in progress may do, and only at the end.
length_flipped() {
	rm -rf "$CH"
	CH_FORMAT=$1 new_channel segment_bytes=4096
	local i offsets
	for ((i = 1; i <= ${2:-5}; i++)); do chpub "$CH" "record $i"; done
	offsets=$(chsub --peek --from=earliest --format='%o\n' "$CH")
	at=$(sed -n 2p <<<"$offsets")
	len=$(($(sed -n 3p <<<"$offsets") - at))
	flip_byte "$CH/$(segments | head -1)" $((64 + at + 11))
}

@test "a length damaged to run past the end of the file is one corrupt record, in the newest segment (not a torn tail) and in a sealed one (not the rest of it); --repair fills a gap" {
	local f
	for f in 1 2; do
		length_flipped $f
		seg=$(segments | head -1)
		corrupt="chcompact: $CH: $seg: corrupt record at offset $at ($len bytes up to the next valid record, 1 record lost)"
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "$corrupt"
		fill 100	# the writer appends after it and rolls over
		[[ $(segments | wc -l) -gt 1 ]] || fail "no rollover"
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "${stderr_lines[0]}" "$corrupt"
		refute [ "${#stderr_lines[@]}" -gt 2 ]
		[[ ${stderr_lines[1]:-} == *": $seg: seal counts "* ]]
		run -0 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: repaired: $seg: replaced $len damaged bytes at offset $at with a gap record: 1 record lost"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$stderr" "chsub: $CH: 1 record lost at offset $at"
		assert_equal "${#lines[@]}" 104
		assert_equal "${lines[0]} ${lines[1]}" "record 1 record 3"
		run -0 chcompact --check "$CH"
	done
}

@test "a length damaged to run past the end in the record before the last is corruption, and the next chpub keeps the last record" {
	local f
	for f in 1 2; do
		length_flipped $f 3
		run -65 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_output "record 1"
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $(segments | head -1): corrupt record at offset $at ($len bytes up to the next valid record, 1 record lost)"
		chpub "$CH" "record 4"
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
		assert_output "record 1
record 3
record 4"
		assert_equal "$stderr" "chsub: $CH: skipped $len corrupt bytes at offset $at, 1 record lost"
	done
}

@test "a torn record whose payload holds whole records (a segment file) is a torn tail: none of them is read, --check says so, the next chpub cuts it" {
	local f i seg other=$T/other
	for f in 1 2; do
		rm -rf "$CH" "$other"
		CH_FORMAT=$f chpub "$other" </dev/null
		for i in 1 2 3 4 5 6; do chpub "$other" "inner $i"; done
		CH_FORMAT=$f new_channel
		chpub --whole "$CH" <"$other/$(segments "$other" | head -1)"
		seg=$(segments | head -1)
		# Cut in the middle of the last record of the segment inside.
		truncate -s -20 "$CH/$seg"
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
		assert_output ""
		assert_equal "$stderr" ""
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: torn tail at offset 0 ($(($(stat -c %s "$CH/$seg") - 64)) bytes; repairable: chcompact --repair, or the next chpub, cuts it)"
		choffset --create --earliest "$CH" s >/dev/null
		run -0 --separate-stderr chsub --skip-corrupt "$CH" s
		assert_output ""
		assert_equal "$(offset_of s)" 0
		chpub "$CH" after
		run -0 --separate-stderr chsub "$CH" s
		assert_output after
		run -0 chcompact --check "$CH"
	done
}

# A power cut tears a record holding a segment file exactly where one of
# the records inside ends: the tail's quick look sees two records in a
# row there.  --repair used to trust it, say "a writer cut it meanwhile"
# and exit 0 with nothing cut.
@test "--repair cuts a torn tail that ends exactly on a record inside its payload" {
	local f i seg at end other=$T/other
	for f in 1 2; do
		rm -rf "$CH" "$other"
		CH_FORMAT=$f chpub "$other" </dev/null
		for i in 1 2 3 4 5 6; do chpub "$other" "inner $i"; done
		# the end of the inner record 4: where record 5 starts
		end=$(($(chsub --peek --from=earliest --format='%o\n' "$other" | sed -n 5p) + 64))
		CH_FORMAT=$f new_channel
		chpub --whole "$CH" <"$other/$(segments "$other" | head -1)"
		seg=$(segments | head -1)
		at=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().find(open(sys.argv[2], "rb").read()))' \
		    "$CH/$seg" "$other/$(segments "$other" | head -1)")
		((at > 64)) || fail "the inner segment is not in the record: $at"
		truncate -s $((at + end)) "$CH/$seg"
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: torn tail at offset 0 ($((at + end - 64)) bytes; repairable: chcompact --repair, or the next chpub, cuts it)"
		# the writers' tail mark (channel(5)) names the end of the
		# record; the repair takes it back
		assert_equal "$(head -c 4 "$CH/append.lock")" CHTM
		run -0 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: repaired: cut a torn tail of $((at + end - 64)) bytes at offset 0"
		assert_equal "$(stat -c %s "$CH/$seg")" 64
		cmp -n 64 "$CH/append.lock" /dev/zero
		chpub "$CH" after
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_output after
		run -0 chcompact --check "$CH"
	done
}

@test "a length damaged to run past the end, then records, then a torn tail: --repair and the next chpub cut only the torn tail" {
	local f end
	for f in 1 2; do
		length_flipped $f
		seg=$(segments | head -1)
		head -c 12 /dev/zero >>"$CH/$seg"
		end=$(($(stat -c %s "$CH/$seg") - 12 - 64))
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: $seg: torn tail at offset $end (12 bytes; repairable: chcompact --repair, or the next chpub, cuts it)"
		rm -rf "$T/copy"
		cp -a "$CH" "$T/copy"
		run -0 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[3]}" "chcompact: $CH: repaired: cut a torn tail of 12 bytes at offset $end"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_output $'record 1\nrecord 3\nrecord 4\nrecord 5'
		# The writer used to take the damaged length for a torn write
		# and cut every record after it.
		chpub "$T/copy" after
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$T/copy"
		assert_output $'record 1\nrecord 3\nrecord 4\nrecord 5\nafter'
	done
}

# A record valid on its own but out of sequence (record 5 replaced by a
# copy of record 0, as a disk that wrote a block twice) is damage where
# it stands, as readers see it.  The check used to take its number for the
# one due, so that it found the records after it out of sequence too: a
# corrupt record after it became a gap standing for most of the segment,
# and a torn tail after it was cut where the duplicate stands.
@test "a record out of sequence (a copy of an earlier one) is damage where it stands: --repair replaces it and a corrupt record after it with one gap counted from the number due, keeping every other record" {
	local f pos len at
	for f in 1 2; do
		CH_FORMAT=$f numbered_channel 8
		seg=$(segments | tail -1)
		read -r pos len < <(copy_unit "$CH/$seg" 0 5)
		at=$((pos - 64))
		# Record 6's payload, "r06", made "r0X".
		printf X | dd of="$CH/$seg" bs=1 seek=$((pos + 2 * len - 5)) \
		    conv=notrunc status=none
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: record at offset $at has number 0, expected 5 ($((2 * len)) bytes up to the next valid record, 2 records lost)"
		run -65 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04"
		run -0 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: repaired: $seg: replaced $((2 * len)) damaged bytes at offset $at with a gap record: 2 records lost"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$stderr" "chsub: $CH: 2 records lost at offset $at"
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04 $(echo $(printf 'r%02d ' $(seq 7 7)))"
		run -0 chcompact --check "$CH"
	done
}

@test "a record out of sequence before a torn tail: --repair cuts only the torn tail it reported, and so does the next chpub" {
	local f pos len end rest
	rest=$(echo $(printf 'r%02d ' $(seq 6 7)))
	for f in 1 2; do
		CH_FORMAT=$f numbered_channel 8
		seg=$(segments | tail -1)
		read -r pos len < <(copy_unit "$CH/$seg" 0 5)
		head -c 12 /dev/zero >>"$CH/$seg"
		end=$(($(stat -c %s "$CH/$seg") - 12 - 64))
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: record at offset $((pos - 64)) has number 0, expected 5 ($len bytes up to the next valid record, 1 record lost)
chcompact: $CH: $seg: torn tail at offset $end (12 bytes; repairable: chcompact --repair, or the next chpub, cuts it)"
		rm -rf "$T/copy"
		cp -a "$CH" "$T/copy"
		run -0 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[3]}" "chcompact: $CH: repaired: cut a torn tail of 12 bytes at offset $end"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04 $rest"
		run -0 chcompact --check "$CH"
		chpub "$T/copy" after
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$T/copy"
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04 $rest after"
	done
}

# A segment header with a valid checksum whose first record number
# disagrees with the segment before it and the index: its format 1
# records (which carry their numbers) are all out of sequence against it,
# and the number found after the "damage" may lie far on.  --repair used
# to count a gap from it, over the valid records in between.
@test "no gap is counted from a segment header whose first record number disagrees with the channel's: --repair leaves its damage and changes nothing" {
	format1_channel
	seg=$(segments | sed -n 2p)
	python3 - "$CH/$seg" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(24)
    first = struct.unpack('<Q', f.read(8))[0]
    f.seek(24)
    f.write(struct.pack('<Q', first - 1))
PY
	fix_seghdr_crc "$CH/$seg"
	before=$(snapshot "$CH")
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"chcompact: $CH: not repaired: $seg: the damage at offset $(base 1) is in a segment whose record numbers disagree with the channel's; left as it is"* ]]
	assert_equal "$(snapshot "$CH")" "$before"
}

@test "a copy of a record inserted right after it stands for no record: readers stop there, --skip-corrupt loses nothing, --repair leaves it and says why" {
	local f pos len at before
	for f in 1 2; do
		CH_FORMAT=$f numbered_channel 8
		seg=$(segments | tail -1)
		read -r pos len < <(insert_copy "$CH/$seg" 4)
		at=$((pos - 64))
		run -65 --separate-stderr chcompact --check "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: record at offset $at has number 4, expected 5 ($len bytes up to the next valid record, 0 records lost)"
		before=$(snapshot "$CH")
		run -65 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: not repaired: $seg: the damage at offset $at stands for no lost record (such as a duplicate of one): no gap record can replace it; left as it is"
		assert_equal "$(snapshot "$CH")" "$before"
		run -65 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$(echo $output)" "r00 r01 r02 r03 r04"
		run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
		assert_equal "$stderr" "chsub: $CH: skipped $len corrupt bytes at offset $at, 0 records lost"
		assert_equal "$(echo $output)" "$(echo $(printf 'r%02d ' $(seq 0 7)))"
	done
}

# A copy of record 0 inserted before record 5 stands for no record:
# --repair leaves it.  An offset inside record 5 is moved to its start,
# which the copy's number, taken for the one due, used to label record 1.
@test "--repair moves an offset inside the record after an inserted copy to that record, with its own number" {
	local f pos len o
	for f in 1 2; do
		CH_FORMAT=$f numbered_channel 8
		seg=$(segments | head -1)
		read -r pos len < <(insert_copy "$CH/$seg" 0 5)
		o=$((pos + len - 64))	# record 5, after the copy
		choffset --create --earliest "$CH" s >/dev/null
		doctor_offset s offset $((o + 1))
		run -65 --separate-stderr chcompact --repair "$CH"
		assert_equal "${stderr_lines[-1]}" "chcompact: $CH: repaired: subscriber 's': moved from offset $((o + 1)) to $o (was not on a record boundary)"
		run -0 choffset "$CH"
		assert_output "s $o"
		run -0 --separate-stderr chsub --peek "$CH" s
		assert_equal "$(echo $output)" "r05 r06 r07"
		run -65 --separate-stderr chcompact --check "$CH"
		[[ $stderr != *"subscriber 's'"* ]] || fail "$stderr"
	done
}

# A segment damaged to its end lost an unknown number of records: the
# next segment's header says where the numbering goes on.  Counting from
# the damaged one made the next segment "start at the wrong record" and
# its own hole unrepairable.  (Published under periodic: under none the
# first segment's lost tail would be what a power failure may do to a
# segment sealed without a sync, repairable as such: 81-seal-sync.)
@test "a hole in the segment after one damaged to its end is still repaired" {
	local f s0 s1 size
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f new_channel segment_bytes=4096 sync=periodic
		fill 200
		s0=$(segments | sed -n 1p)
		s1=$(segments | sed -n 2p)
		size=$(stat -c %s "$CH/$s0")
		dd if=/dev/zero of="$CH/$s0" bs=1 seek=$((size - 100)) count=100 conv=notrunc status=none
		flip_byte "$CH/$s1" 1000
		run -65 --separate-stderr chcompact --check "$CH"
		[[ $stderr == *"$s0: damaged from offset "* ]] || fail "$stderr"
		[[ $stderr != *"$s1: starts at record"* ]] || fail "$stderr"
		run -65 --separate-stderr chcompact --repair "$CH"
		[[ $stderr == *"repaired: $s1: replaced "*" damaged bytes at offset "*" with a gap record"* ]] || fail "$stderr"
		run -65 --separate-stderr chcompact --check "$CH"
		[[ $stderr != *"$s1"* ]] || fail "$stderr"
	done
}

# The check reads without a lock.  After a power failure the newest
# segment ends in a long torn tail of zeros; while --repair scans through
# it, a chpub cuts it and publishes more than the check has read so far,
# and the scan lands on one of the new records (the shim runs the
# publisher at the check's first read 200000 bytes into the segment).
# --repair used to write a gap over every record before that one.
@test "--repair never writes a gap over records a writer published while it looked (a torn tail cut and written over during the check): it says the data changed (65)" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local f at
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f new_channel
		fill 10 old
		seg=$(segments | tail -1)
		at=$(($(stat -c %s "$CH/$seg") - 64))
		truncate -s +1M "$CH/$seg"
		# 20 appends (format 2: 20 frames) of 500 records, 450 KB.
		cat >"$T/publish" <<-EOF
			i=0
			while [ \$i -lt 20 ]; do
			    i=\$((i + 1))
			    seq 500 | sed "s/.*/new-\$i-& padding padding padding padding/" |
			        chpub "$CH" || exit 1
			done
		EOF
		run -65 --separate-stderr env CHFAULT_RUN_AT="pread:$seg:200000" \
		    CHFAULT_RUN="sh $T/publish" LD_PRELOAD="$CHFAULT" \
		    chcompact --repair "$CH"
		[[ ${stderr_lines[0]} == "chcompact: $CH: $seg: corrupt record at offset $at ("* ]] ||
			fail "the check did not see the new records: $stderr"
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: not repaired: $seg: the data at offset $at changed while checking (a writer wrote there); check again"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "$stderr" ""
		assert_equal "${#lines[@]}" 10010
		assert_equal "${lines[-1]}" "new-20-500 padding padding padding padding"
		run -0 chcompact --check "$CH"
	done
}

# A chpub cuts the torn tail the check found and publishes, between the
# check and the repair (the shim runs it at the repair's open of
# append.lock, the second of the run): cutting where the check saw the
# tail start would cut the new record.  The problem is gone: exit 0.
@test "--repair does not cut a torn tail that a writer cut and wrote after since the check found it: it says the writer cut it (0)" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local f at
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f new_channel
		fill 10
		seg=$(segments | tail -1)
		at=$(($(stat -c %s "$CH/$seg") - 64))
		head -c 12 /dev/zero >>"$CH/$seg"
		run -0 --separate-stderr env CHFAULT_RUN_AT="open:append.lock:2" \
		    CHFAULT_RUN="chpub '$CH' after" LD_PRELOAD="$CHFAULT" \
		    chcompact --repair "$CH"
		assert_equal "$stderr" "chcompact: $CH: $seg: torn tail at offset $at (12 bytes; repairable: chcompact --repair, or the next chpub, cuts it)
chcompact: $CH: repaired: the torn tail is gone (a writer cut it meanwhile)"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_equal "${#lines[@]}" 11
		assert_equal "${lines[-1]}" after
		run -0 chcompact --check "$CH"
	done
}

# Compaction deletes a consumed segment while --repair looks at it (the
# shim deletes it just before the repair's open, the second of the run).
@test "a segment that compaction deletes while --repair repairs it is nothing left to repair: the rest is still checked and repaired" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local f
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f new_channel segment_bytes=4096
		fill 200
		choffset --create --earliest "$CH" s >/dev/null
		seg=$(segments | head -1)
		flip_byte "$CH/$seg" 1000
		touch "$CH/.index.tmp"
		doctor_offset s offset 99999999
		end=$(end_offset)
		run -65 --separate-stderr env CHFAULT_VANISH="$seg:2" \
		    LD_PRELOAD="$CHFAULT" chcompact --repair "$CH"
		[[ ${stderr_lines[0]} == "chcompact: $CH: $seg: corrupt record at offset "* ]]
		assert_equal "${stderr_lines[1]}" "chcompact: $CH: not repaired: $seg: deleted while checking (by compaction): nothing left to repair there"
		assert_equal "${stderr_lines[*]:2}" "chcompact: $CH: .index.tmp: leftover temp file chcompact: $CH: repaired: removed leftover temp file .index.tmp chcompact: $CH: subscriber 's': offset 99999999 is past the end ($end) chcompact: $CH: repaired: subscriber 's': moved from offset 99999999 to $end (was past the end)"
		assert_file_not_exists "$CH/$seg"
		run -0 chcompact --check "$CH"
	done
}

@test "reports a torn tail as repairable (65)" {
	seg=$(segments | tail -1)
	truncate -s -5 "$CH/$seg"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == "chcompact: $CH: $seg: torn tail at offset "*" bytes; repairable: chcompact --repair, or the next chpub, cuts it)" ]]
}

@test "an incomplete last record while a writer holds append.lock is a write in progress, not a torn tail" {
	seg=$(segments | tail -1)
	truncate -s -5 "$CH/$seg"
	exec 5<"$CH/append.lock"
	flock -x 5		# as a writer does
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr == "chcompact: $CH: $seg: a write in progress at offset "* ]] || fail "$stderr"
	exec 5<&-
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == "chcompact: $CH: $seg: torn tail at offset "* ]]
}

# A torn tail cuts the last append (a format 1 record, a format 2 frame):
# make that one record, so that what survives is the same in both.
@test "--repair cuts a torn tail and says so; the channel then checks clean" {
	chpub "$CH" torn
	truncate -s -5 "$CH/$(segments | tail -1)"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"chcompact: $CH: repaired: cut a torn tail of "*" bytes"* ]]
	run -0 chcompact --check "$CH"
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 200
	assert_line -n -1 --partial "rec-200 "
}

@test "the next chpub fixes a torn tail too" {
	chpub "$CH" torn
	truncate -s -5 "$CH/$(segments | tail -1)"
	run -65 chcompact --check "$CH"
	chpub "$CH" after
	run -0 chcompact --check "$CH"
	run -0 chsub --peek --from=earliest "$CH"
	assert_line -n -2 --partial "rec-200 "
	assert_line -n -1 "after"
}

@test "an interrupted rollover, newest segment not in the index yet, is no problem; --repair adds it" {
	local newest size
	newest=$(segments | tail -1)
	size=$(stat -c %s "$CH/index")
	truncate -s -32 "$CH/index"	# the writer died before the entry
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr == *"chcompact: $CH: $newest: not in the index yet (an interrupted rollover; the next chpub adds it)"* ]]
	[[ $stderr == *": 0 problems, 0 repaired" ]]
	assert_equal "$(stat -c %s "$CH/index")" $((size - 32))
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"chcompact: $CH: repaired: finished an interrupted rollover"* ]]
	assert_equal "$(stat -c %s "$CH/index")" "$size"
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr != *"not in the index"* ]]
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 200
}

@test "a rollover interrupted between the seal and the next segment is no problem; the next chpub finishes it" {
	local newest
	newest=$(segments | tail -1)
	# the state of a writer killed right after sealing the segment before
	rm "$CH/$newest"
	truncate -s -32 "$CH/index"
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr == *"chcompact: $CH: the newest segment is sealed and $newest is not created yet"* ]]
	chpub "$CH" after
	assert_equal "$(segments | tail -1)" "$newest"
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr != *"not created yet"* ]]
	run -0 chsub --peek --from=earliest "$CH"
	assert_line -n -1 after
}

@test "an index that lost its last two entries (a sealed segment not in it): --repair indexes it again, finishing the rollover, and exits 0" {
	local size
	size=$(stat -c %s "$CH/index")
	rm "$CH/$(segments | tail -1)"
	truncate -s -64 "$CH/index"
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: $(segments | tail -1): sealed, but not in the index"
	run -0 --separate-stderr chcompact --repair "$CH"
	assert_equal "${stderr_lines[1]}" "chcompact: $CH: repaired: finished an interrupted rollover (indexed the sealed segment)"
	assert_equal "$(stat -c %s "$CH/index")" "$size"
	run -0 chcompact --check "$CH"
}

@test "--repair exits 65 while a problem is left, even when it also finished an interrupted rollover (which was no problem)" {
	rm "$CH/$(segments | tail -1)"
	truncate -s -32 "$CH/index"
	echo garbage >"$CH/subscribers/s/offset"
	run -65 chcompact --check "$CH"
	run -65 --separate-stderr chcompact -v --repair "$CH"
	[[ $stderr == *"chcompact: $CH: repaired: finished an interrupted rollover"* ]]
	[[ $stderr == *"chcompact: $CH: not repaired: subscriber 's': the offset it had is unknown: "* ]]
	[[ $stderr == *": 1 problem, 0 repaired" ]]
	run -65 chcompact --check "$CH"
	choffset --earliest "$CH" s >/dev/null 2>&1
	run -0 chcompact --check "$CH"
}

# state PID: the state letter of process PID (R, S, T stopped, Z ended but
# not waited for), or nothing once it is gone.
state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true; }

# finish PID: wait (at most 30s) for background process PID to end; its
# exit status in $rc.
finish() {
	wait_until 30 '[[ $(state '"$1"') == Z || -z $(state '"$1"') ]]' || return 1
	rc=0
	wait "$1" || rc=$?
}

# 70-concurrency's stress caught --check saying "starts at record N,
# expected M (records missing or duplicated)" of a segment whose
# predecessors a compaction had deleted while --check read the first.
@test "--check while a compaction deletes the segment it reads and the next: nothing is missing" {
	need_chfault
	# (how many segments 200 records take depends on how chpub's reads
	# of the pipe split them into frames: a busy machine packs them)
	fill 400 more
	mapfile -t segs < <(segments)
	((${#segs[@]} >= 3)) || fail "only ${#segs[@]} segments"
	choffset --set="$(base 2)" "$CH" s >/dev/null	# consumed two segments
	run -0 --separate-stderr env CHFAULT_RUN="chcompact '$CH'" \
	    CHFAULT_RUN_AT="pread:${segs[0]}:0" LD_PRELOAD="$CHFAULT" \
	    chcompact --check "$CH"
	assert_equal "$stderr" ""
	assert_not_exist "$CH/${segs[0]}"
	assert_not_exist "$CH/${segs[1]}"
}

@test "--repair exits 0 when a chpub cut the torn tail it found before it could, and says so" {
	need_chfault
	chpub "$CH" torn
	truncate -s -5 "$CH/$(segments | tail -1)"
	# A chpub (which cuts it) runs just before --repair opens append.lock
	# the second time: the first is the check's look for a writer, the
	# second the lock it takes to cut the tail it found.
	run -0 --separate-stderr env CHFAULT_RUN="chpub '$CH' after" \
	    CHFAULT_RUN_AT=open:append.lock:2 LD_PRELOAD="$CHFAULT" \
	    chcompact --repair "$CH"
	assert_equal "$stderr" "$(grep "torn tail at offset" <<<"$stderr")
chcompact: $CH: repaired: the torn tail is gone (a writer cut it meanwhile)"
	[[ $stderr == *"torn tail at offset"* ]]
	run -0 chcompact --check "$CH"
	run -0 chsub --from=earliest "$CH" reader
	assert_equal "$(tail -1 <<<"$output")" after
}

@test "--repair says so when a leftover temp file cannot be removed (65)" {
	need_chfault
	touch "$CH/.index.tmp"
	run -65 --separate-stderr env CHFAULT_FAIL=unlinkat:1:EACCES \
	    LD_PRELOAD="$CHFAULT" chcompact --repair "$CH"
	assert_equal "$stderr" "chcompact: $CH: .index.tmp: leftover temp file
chcompact: $CH: not repaired: could not remove leftover temp file .index.tmp: Permission denied"
	assert_exist "$CH/.index.tmp"
}

@test "a segment file that is neither in the index nor the newest is a problem (65)" {
	local stray
	stray=$(printf '%020d.seg' 999999999)
	cp "$CH/$(segments | head -1)" "$CH/$stray"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"chcompact: $CH: $stray: segment file not in the index"* ]]
	# While a writer holds append.lock it may be a rollover that has made
	# the segment and not listed it yet: no problem.
	exec 5<"$CH/append.lock"
	flock -x 5
	run -0 chcompact --check "$CH"
	exec 5<&-
}

@test "finds an offset file edited to a non-boundary offset, and --repair moves it to its record's start" {
	# One byte into rec-3: inside its format 1 header, format 2 sub-header
	# or format 3 table entry (at least 3 bytes each).
	at=$(record_offset rec-3)
	doctor_offset s offset $((at + 1))
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset $((at + 1)) is not on a record boundary"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': moved from offset $((at + 1)) to $at (was not on a record boundary)"* ]]
	assert_equal "$(offset_of s)" "$at"
	run -0 chcompact --check "$CH"
	run -0 choffset --history "$CH" s
	assert_line -n 1 --regexp "repair +s +$((at + 1)) -> $at +was not on a record boundary +\(chcompact\["
}

# repair_failing_read N: chcompact --repair on a fresh copy of $T/saved,
# the Nth read of a segment failing (EIO); run's status and stderr.
repair_failing_read() {
	rm -rf "$CH"
	cp -a "$T/saved" "$CH"
	CHFAULT_FAIL=pread:$1:EIO CHFAULT_FAIL_PATH=.seg LD_PRELOAD="$CHFAULT" \
	    run --separate-stderr chcompact --repair "$CH"
}

@test "a read error while --repair looks for the record boundary before an offset: the offset is moved to its record's start or not at all" {
	# The walk to the boundary took a failed read for the end of the
	# segment, and moved the offset back to the last boundary it had
	# reached (the segment's start), exit 0.
	need_chfault
	local at n moved=0 failed=0
	at=$(record_offset rec-150)
	doctor_offset s offset $((at + 1))
	cp -a "$CH" "$T/saved"
	for n in $(seq 1 100); do
		repair_failing_read "$n"
		case $(offset_of s) in
		"$at") ((++moved)) ;;
		"$((at + 1))")
			((++failed))
			((status != 0)) || { echo "read $n: exit 0, offset not moved"; false; }
			;;
		*) echo "read $n failed: offset moved to $(offset_of s), not $at; $stderr"; false ;;
		esac
	done
	# both happened: reads that failed, and runs past the last read
	((moved > 0 && failed > 0)) || { echo "moved $moved, failed $failed"; false; }
	# An offset on a boundary: a failed read is no verdict on it.  The
	# check's walk to it used to take a failed read for the end and call
	# the offset "not on a record boundary".
	rm -rf "$CH"
	cp -a "$T/saved" "$CH"
	doctor_offset s offset "$at"
	rm -rf "$T/saved"
	cp -a "$CH" "$T/saved"
	for n in $(seq 1 100); do
		repair_failing_read "$n"
		[[ $stderr != *"not on a record boundary"* && $(offset_of s) == "$at" ]] ||
		    { echo "read $n failed: offset $(offset_of s); $stderr"; false; }
	done
}

@test "finds an offset file edited past the end, and --repair moves it to the end" {
	end=$(end_offset)
	doctor_offset s offset 99999999
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset 99999999 is past the end ($end)"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': moved from offset 99999999 to $end (was past the end)"* ]]
	assert_equal "$(offset_of s)" "$end"
	run -0 chcompact --check "$CH"
}

@test "finds an offset inside removed data, and --repair moves it to the earliest record" {
	chsub --from=earliest "$CH" t >/dev/null
	choffset --set="$(base 2)" "$CH" s >/dev/null
	chcompact "$CH"
	start=$(base 0)
	doctor_offset s offset 0
	doctor_offset s seq 0
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset 0 is inside removed data (earliest is $start)"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': moved from offset 0 to $start (was inside removed data)"* ]]
	run -0 chcompact --check "$CH"
}

@test "--repair moves an offset holding compact.lock shared, to the earliest record as it is once it holds it" {
	fill 300
	chsub --from=earliest "$CH" t >/dev/null
	choffset --set="$(base 2)" "$CH" s >/dev/null
	chcompact "$CH"
	doctor_offset s offset 0
	doctor_offset s seq 0
	local ino
	ino=$(stat -c %i "$CH/compact.lock")
	exec 5<"$CH/compact.lock"
	flock -x 5		# a compaction at work
	start_bg chcompact --repair "$CH" 2>"$T/err" 5<&-
	# it waits for the lock (or, wrongly, has ended)
	wait_until 30 'grep -q "^[0-9]*: -> FLOCK  ADVISORY  READ $BG [0-9a-f:]*:$ino " /proc/locks || [[ $(state $BG) == Z ]]'
	[[ $(state "$BG") != Z ]] || fail "--repair did not wait for compact.lock: $(cat "$T/err")"
	assert_equal "$(offset_of s)" 0
	# the compaction deletes one more segment (its files first)
	rm "$CH/$(segments | head -1)"
	start=$(base 0)
	exec 5<&-
	finish "$BG"
	assert_equal "$rc" 0
	grep -q "repaired: subscriber 's': moved from offset 0 to $start (was inside removed data)" "$T/err" ||
	    fail "$(cat "$T/err")"
	assert_equal "$(offset_of s)" "$start"
	run -0 chcompact --check "$CH"
}

@test "--repair: an offset moved whose directory could not be fsynced is repaired all the same, said so and journaled" {
	need_chfault
	end=$(end_offset)
	doctor_offset s offset 99999999
	# the first fsync: the offset file's directory, after the rename
	run -0 --separate-stderr env CHFAULT_FAIL=fsync:1:EIO \
	    LD_PRELOAD="$CHFAULT" chcompact --repair "$CH"
	assert_equal "${stderr_lines[1]}" "chcompact: $CH: repaired: subscriber 's': moved from offset 99999999 to $end (was past the end); but a power loss may undo it (fsync: Input/output error)"
	assert_equal "$(offset_of s)" "$end"
	run -0 choffset --history "$CH" s
	assert_line -n 1 --regexp "repair +s +99999999 -> $end +was past the end +\(chcompact\["
	run -0 chcompact --check "$CH"
}

@test "finds an offset file whose sequence number disagrees with the data; --repair keeps the offset and takes the record's number" {
	doctor_offset s seq 7
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset file says record 7, the channel has record 0 there"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': offset 0 now says record 0 (its record number disagreed with the data)"* ]]
	run -0 chcompact --check "$CH"
	run -0 choffset --history "$CH" s
	assert_line -n 1 --regexp "repair +s +0 -> 0 +its record number disagreed with the data +\(chcompact\["
	run -0 chsub -n 1 "$CH" s
	assert_output --partial "rec-1 "
}

@test "--repair with a journal that cannot be written still repairs, exits 0, and says the journal missed it" {
	doctor_offset s offset 99999999
	rm -f "$CH/journal"
	mkdir "$CH/journal"
	end=$(end_offset)
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': moved from offset 99999999 to $end (was past the end); the journal could not be written: journal: Is a directory"* ]]
	assert_equal "$(offset_of s)" "$end"
}

@test "finds a garbage offset file; --repair leaves it and says how to fix it" {
	echo garbage >"$CH/subscribers/s/offset"
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset file is not a chtools offset file (format 1)"
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"subscriber 's': offset file is not a chtools offset file (format 1)"* ]]
	[[ $stderr == *"not repaired: subscriber 's': the offset it had is unknown: set it with choffset --set, --earliest, --latest or --time, or --delete it"* ]]
	run -0 cat "$CH/subscribers/s/offset"
	assert_output garbage
	choffset --earliest "$CH" s 2>/dev/null
	run -0 chcompact --check "$CH"
}

@test "finds an offset file edited by hand without fixing its checksum" {
	sed -i 's/^offset 0$/offset 1/' "$CH/subscribers/s/offset"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"subscriber 's': offset file checksum mismatch"* ]]
}

@test "finds leftover temp files, and --repair removes them and says so" {
	touch "$CH/.index.tmp" "$CH/subscribers/s/.offset.tmp"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"chcompact: $CH: .index.tmp: leftover temp file"* ]]
	[[ $stderr == *"chcompact: $CH: subscribers/s/.offset.tmp: leftover temp file"* ]]
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: removed leftover temp file .index.tmp"* ]]
	[[ $stderr == *"repaired: removed leftover temp file subscribers/s/.offset.tmp"* ]]
	assert_not_exist "$CH/.index.tmp"
	assert_not_exist "$CH/subscribers/s/.offset.tmp"
	run -0 chcompact --check "$CH"
}

@test "a temp file whose lock is held is in use, not a problem: --check and --repair leave it alone (a chsub's commit, a writer's rollover)" {
	hold_caught_up s
	touch "$CH/subscribers/s/.offset.tmp" "$CH/.00000000000000999999.seg.tmp"
	exec 5<"$CH/append.lock"
	flock -x 5
	run -0 --separate-stderr chcompact -v --check "$CH"
	[[ $stderr == *"chcompact: $CH: subscribers/s/.offset.tmp: in use (subscribers/s/lock is held), left alone"* ]]
	[[ $stderr == *"chcompact: $CH: .00000000000000999999.seg.tmp: in use (append.lock is held), left alone"* ]]
	run -0 --separate-stderr chcompact --repair "$CH"
	assert_equal "$stderr" ""
	assert_exist "$CH/subscribers/s/.offset.tmp"
	assert_exist "$CH/.00000000000000999999.seg.tmp"
	# Once nobody holds append.lock it is a leftover.
	exec 5<&-
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: .00000000000000999999.seg.tmp: leftover temp file"
}

# choffset --delete between the check's look at a wrong offset and
# --repair taking the subscriber's lock (the shim runs it just before the
# third open of its directory): taking the lock used to make the
# directory again, a bare one left behind.
@test "--repair of a subscriber deleted meanwhile repairs nothing and does not bring it back" {
	need_chfault
	choffset --create --earliest "$CH" victim >/dev/null
	doctor_offset victim offset 99999999
	run -0 --separate-stderr env CHFAULT_RUN_AT="open:victim:3" \
	    CHFAULT_RUN="choffset --delete '$CH' victim >/dev/null" \
	    LD_PRELOAD="$CHFAULT" chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 'victim' was deleted while checking: nothing left to repair"* ]] ||
		fail "not said: $stderr"
	assert_not_exist "$CH/subscribers/victim"
	run -0 choffset "$CH"
	assert_output "s $(offset_of s)"
	run -0 chcompact --check "$CH"
}

@test "a subscriber being deleted (its lock held) is left alone by --check and --repair" {
	mkdir "$CH/subscribers/.deleted.1.gone"
	touch "$CH/subscribers/.deleted.1.gone/lock"
	run -0 --separate-stderr flock "$CH/subscribers/.deleted.1.gone/lock" \
	    chcompact -v --repair "$CH"
	[[ $stderr == *"chcompact: $CH: subscribers/.deleted.1.gone: being deleted, left alone"* ]] ||
		fail "not said: $stderr"
	assert_exist "$CH/subscribers/.deleted.1.gone/lock"
}

@test "--repair does not move the offset of a subscriber a chsub holds" {
	hold_caught_up s
	doctor_offset s offset 99999999
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"chcompact: $CH: not repaired: subscriber 's' is held by a running chsub; stop it and repair again"* ]]
	run -0 offset_of s
	assert_output 99999999
}

@test "problems are reported even with -q" {
	truncate -s -5 "$CH/$(segments | tail -1)"
	run -65 --separate-stderr chcompact -q --check "$CH"
	[[ $stderr == *"torn tail"* ]]
}

@test "checks several channels in one call, exiting with the worst status" {
	good=$CH
	CH="$T/bad"
	new_channel
	chpub "$CH" a b c
	truncate -s -2 "$CH/$(segments | tail -1)"
	run -65 --separate-stderr chcompact --check "$good" "$CH"
	[[ $stderr == "chcompact: $CH: "*"torn tail"* ]]
	run -65 --separate-stderr chcompact --check "$T/missing" "$CH" "$good"
	[[ $stderr == *"chcompact: $T/missing: "* ]]
	run -66 chcompact --check "$good" "$T/missing"
}

@test "--check and --repair do not combine with compaction options, and say which was given" {
	run -2 --separate-stderr chcompact --check --max-age=1h "$CH"
	[[ $stderr == "chcompact: --check does not combine with compaction options"* ]]
	run -2 --separate-stderr chcompact --repair --dry-run "$CH"
	[[ $stderr == "chcompact: --repair does not combine with compaction options"* ]]
	run -2 --separate-stderr chcompact --check --repair --expire=1d "$CH"
	[[ $stderr == "chcompact: --check does not combine with compaction options"* ]]
}

@test "--repair moving the offset of a subscriber whose lock file is missing does not make it look run: --expire still expires it" {
	fill 50
	faketime -f '-2h' choffset --create --earliest "$CH" old >/dev/null
	rm "$CH/subscribers/old/lock"
	doctor_offset old offset 99999999
	run -0 chcompact --repair "$CH"
	assert_output --partial "repaired: subscriber 'old': moved from offset 99999999"
	run -0 chcompact -n --expire=1h "$CH"
	assert_line -n 0 "$CH: would expire subscriber 'old' (no commit or run for 2h00m, expire is 1h00m)"
}
