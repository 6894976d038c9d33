#!/usr/bin/env bats
# chcompact --check and --repair: every record and every offset file.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
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

@test "--repair leaves a corrupt record alone and still exits 65" {
	seg=$(segments | head -1)
	flip_byte "$CH/$seg" 1000
	before=$(md5sum <"$CH/$seg")
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"$seg: corrupt record at offset "* ]]
	assert_equal "$(md5sum <"$CH/$seg")" "$before"
}

@test "reports a torn tail as repairable (65)" {
	seg=$(segments | tail -1)
	truncate -s -5 "$CH/$seg"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == "chcompact: $CH: $seg: torn tail at offset "*" bytes; repairable: chcompact --repair, or the next chpub, cuts it)" ]]
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

@test "a segment file that is neither in the index nor the newest is a problem (65)" {
	local stray
	stray=$(printf '%020d.seg' 999999999)
	cp "$CH/$(segments | head -1)" "$CH/$stray"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"chcompact: $CH: $stray: segment file not in the index"* ]]
}

@test "finds an offset file edited to a non-boundary offset, and --repair moves it to its record's start" {
	at=$(record_offset rec-3)
	doctor_offset s offset $((at + 5))
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset $((at + 5)) is not on a record boundary"
	run -0 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: subscriber 's': moved from offset $((at + 5)) to $at (was not on a record boundary)"* ]]
	assert_equal "$(offset_of s)" "$at"
	run -0 chcompact --check "$CH"
	run -0 choffset --history "$CH" s
	assert_line -n 1 --regexp "repair +s +$((at + 5)) -> $at +was not on a record boundary +\(chcompact\["
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

@test "finds an offset file whose sequence number disagrees with the data" {
	doctor_offset s seq 7
	run -65 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" "chcompact: $CH: subscriber 's': offset file says record 7, the channel has record 0 there"
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

@test "--repair leaves a temp file alone while a chsub holds its subscriber" {
	hold_caught_up s
	touch "$CH/subscribers/s/.offset.tmp"
	run -65 --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"chcompact: $CH: not repaired: subscribers/s/.offset.tmp: in use, left alone"* ]]
	assert_exist "$CH/subscribers/s/.offset.tmp"
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

@test "--check does not combine with compaction options" {
	run -2 --separate-stderr chcompact --check --max-age=1h "$CH"
	[[ $stderr == "chcompact: --check does not combine with compaction options"* ]]
}
