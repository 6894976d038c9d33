#!/usr/bin/env bats
# The on-disk format of channel(5): names, headers, framing, checksums,
# seals, locks, offset files, channel.yaml, versions and symlinks; in
# format 1, whatever CH_FORMAT the suite runs with (11-format2.bats holds
# format 2's frames).

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	export CH_FORMAT=1
}
teardown() { ops_teardown; }

@test "a new channel has its first segment named by base 0, in 20 digits" {
	chpub "$CH" </dev/null
	run -0 segments
	assert_output "00000000000000000000.seg"
	assert_file_exists "$CH/channel.yaml"
	assert_file_exists "$CH/index"
	assert_file_exists "$CH/append.lock"
	assert_dir_exists "$CH/subscribers"
}

@test "later segments are named by their base offset, which is their first record's offset" {
	new_channel segment_bytes=4096
	mapfile -t offs < <(for i in $(seq 300); do echo "record $i"; done |
		chpub -p "$CH")
	run segments
	((${#lines[@]} > 1))
	local s
	for s in "${lines[@]:1}"; do
		[[ $s =~ ^[0-9]{20}\.seg$ ]]
		local base=$((10#${s%.seg}))
		printf '%s\n' "${offs[@]}" | grep -qx "$base"
		assert_equal "$(u64 "$CH/$s" 16)" "$base"
	done
}

@test "a segment header is CHANSEG, version 1, size 64, base, with a CRC-32C" {
	chpub "$CH" x
	local f
	f=$(seg0)
	assert_equal "$(bytes "$f" 0 8)" "4348414e5345470a"
	assert_equal "$(u32 "$f" 8)" 1
	assert_equal "$(u32 "$f" 12)" 64
	assert_equal "$(u64 "$f" 16)" 0
	# Recomputing the CRC over the same bytes changes nothing.
	local before
	before=$(bytes "$f" 60 4)
	fix_seghdr_crc "$f"
	assert_equal "$(bytes "$f" 60 4)" "$before"
}

@test "the CRC-32C the tools compute (the CPU's instruction where it has one) agrees with the portable table on every length, alignment and chaining" {
	# tests/helpers/crc-check.c: lengths 0-20000 at 8 alignments, frame
	# and megabyte buffers, buffers checksummed in two pieces, and the
	# standard check value.  Three streams a round with a bad join, or a
	# round's tail miscounted, gives another CRC for some length; so does
	# a wrong constant of the 512-bit folding (x^(D+64) for x^(D+63):
	# "length 1024 at offset 0").
	run -0 "${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..}/tests/helpers/crc-check"
	assert_output --regexp '^ok [0-9]+ comparisons$'
}

@test "a record is framed: signature, lengths, type, trailer with its total size" {
	run -0 chpub -p "$CH" a bb ccc
	assert_output "0
37
75"
	local f
	f=$(seg0)
	assert_equal "$(size "$f")" $((64 + 37 + 38 + 39))
	assert_equal "$(bytes "$f" 64 4)" "c7524543"
	assert_equal "$(u32 "$f" 72)" 1
	assert_equal "$(bytes "$f" 78 2)" "0100"
	assert_equal "$(u64 "$f" 80)" 0
	assert_equal "$(u32 "$f" $((64 + 37 - 4)))" 37
	assert_equal "$(u64 "$f" $((64 + 37 + 16)))" 1
	assert_equal "$(u32 "$f" $((64 + 37 + 38 - 4)))" 38
}

@test "a flipped payload byte in the middle is detected by the CRC: 65 after the records before it" {
	chpub "$CH" first second third
	flip_byte "$(seg0)" $((64 + 37 + 32 + 2))
	run -65 --separate-stderr peek_all
	assert_output "first"
	[[ $stderr == "chsub: $CH: corrupt record at offset 41"* ]]
}

@test "a flipped byte in a header field is detected too" {
	chpub "$CH" first second third
	flip_byte "$(seg0)" $((64 + 41 + 20))
	run -65 --separate-stderr peek_all
	assert_output "first"
	refute_output --partial "second"
}

@test "a flipped byte in the last record is never delivered" {
	chpub "$CH" first second third
	flip_byte "$(seg0)" $(($(size "$(seg0)") - 8))
	run -0 --separate-stderr peek_all
	assert_output "first
second"
}

@test "a sealed segment ends with a 60-byte seal record naming the next base" {
	new_channel segment_bytes=4096
	for i in $(seq 200); do echo "record $i"; done | chpub "$CH"
	local first next
	first="$CH/$(segments | sed -n 1p)"
	next=$(segments | sed -n 2p)
	local sz
	sz=$(size "$first")
	assert_equal "$(u32 "$first" $((sz - 4)))" 60
	assert_equal "$(bytes "$first" $((sz - 60)) 4)" "c7524543"
	assert_equal "$(bytes "$first" $((sz - 60 + 14)) 1)" "02"
	# The seal says how many data records the segment holds.
	local n
	n=$(u64 "$first" $((sz - 60 + 32)))
	run -0 chsub --peek --from=earliest --format='%o\n' "$CH"
	assert_equal "${lines[$n]}" "$((10#${next%.seg}))"
}

@test "a reader at the end of a sealed segment goes on to the next one without waiting" {
	new_channel segment_bytes=4096
	for i in $(seq 200); do echo "record $i"; done | chpub "$CH"
	chsub --from=earliest "$CH" s >/dev/null
	chpub "$CH" after-seal
	# -t waited for more after the last record, not at the seal: one
	# that stopped there would have given up without after-seal (and
	# timeout(1) ends one that hangs).
	run -0 timeout 30 chsub -t 3s "$CH" s
	assert_output "after-seal"
	for i in $(seq 100); do echo "more $i"; done | chpub "$CH"
	run -0 timeout 10 chsub -n 100 "$CH" s
	assert_line -n 99 "more 100"
}

@test "append.lock is never renamed: the same inode across appends, rollovers and compaction" {
	new_channel segment_bytes=4096
	local ino
	ino=$(stat -c %i "$CH/append.lock")
	chsub --from=earliest "$CH" s >/dev/null
	for i in $(seq 300); do echo "record $i"; done | chpub "$CH"
	chsub "$CH" s >/dev/null
	chcompact "$CH"
	assert_equal "$(stat -c %i "$CH/append.lock")" "$ino"
}

@test "an offset file is the documented text, with a valid CRC-32C" {
	chpub "$CH" a bb
	chsub --from=earliest "$CH" s >/dev/null
	local f="$CH/subscribers/s/offset"
	run -0 cat "$f"
	assert_line -n 0 "chtools-offset 1"
	assert_line -n 1 "offset 75"
	assert_line -n 2 "seq 2"
	assert_line -n 3 --regexp '^time [0-9]+$'
	assert_line -n 4 --regexp '^history -?[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$'
	assert_line --regexp '^crc32c [0-9a-f]{8}$'
	check_offset_crc "$f"
}

@test "an offset file is replaced by rename and leaves no temp file" {
	chpub "$CH" a
	chsub --from=earliest "$CH" s >/dev/null
	local ino
	ino=$(stat -c %i "$CH/subscribers/s/offset")
	chpub "$CH" b
	chsub "$CH" s >/dev/null
	assert_not_equal "$(stat -c %i "$CH/subscribers/s/offset")" "$ino"
	assert_file_not_exists "$CH/subscribers/s/.offset.tmp"
	assert_equal "$(offset_of s)" 74
}

@test "an offset file with a wrong CRC is refused as corrupt, never reset" {
	chpub "$CH" a b
	chsub --from=earliest "$CH" s >/dev/null
	sed -i 's/^offset 74$/offset 37/' "$CH/subscribers/s/offset"
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == "chsub: $CH: "*"s"*"corrupt"* ]] ||
		[[ $stderr == "chsub: $CH: "*"checksum"* ]]
	grep -q '^offset 37$' "$CH/subscribers/s/offset"
}

@test "a new channel.yaml is commented and holds every default" {
	chpub "$CH" </dev/null
	local y="$CH/channel.yaml"
	grep -q '^# ' "$y"
	grep -qx 'format: 1' "$y"
	grep -qx 'segment_bytes: 64MiB' "$y"
	grep -qx 'sync: none' "$y"
	grep -qx 'max_record_bytes: 16MiB' "$y"
	grep -qx 'on_full: fail' "$y"
	grep -qx 'retention:' "$y"
}

@test "an empty channel.yaml means all defaults" {
	chpub "$CH" </dev/null
	: >"$CH/channel.yaml"
	run -0 chpub -p "$CH" a b
	assert_output "0
37"
	run -0 peek_all
	assert_output "a
b"
}

@test "a channel.yaml format newer than this chtools is refused with exit 1" {
	chpub "$CH" a
	local before
	before=$(size "$(seg0)")
	set_config format 4
	for tool in chpub chsub; do
		run -1 --separate-stderr $tool "$CH" s
		[[ $stderr == "$tool: $CH: "*"format 4"*"newer"* ]]
	done
	assert_equal "$(size "$(seg0)")" "$before"
}

@test "a segment whose header has a newer version is refused with exit 1" {
	chpub "$CH" a
	put_u32 "$(seg0)" 8 4
	fix_seghdr_crc "$(seg0)"
	run -1 --separate-stderr peek_all
	[[ $stderr == *"format 4, newer than this chtools supports"* ]]
	run -1 --separate-stderr chpub "$CH" b
	[[ $stderr == *"newer than this chtools supports"* ]]
}

@test "a segment header with a bad CRC is corrupt (65)" {
	chpub "$CH" a
	flip_byte "$(seg0)" 33
	run -65 --separate-stderr peek_all
	[[ $stderr == *"bad or truncated header"* ]]
}

@test "a symlinked segment is refused, not followed" {
	chpub "$CH" a
	mv "$(seg0)" "$T/elsewhere.seg"
	ln -s "$T/elsewhere.seg" "$CH/00000000000000000000.seg"
	run -1 --separate-stderr peek_all
	assert_output ""
	[[ $stderr == *"00000000000000000000.seg"*"symbolic link"* ]]
	run -1 --separate-stderr chpub "$CH" b
	[[ $stderr == *"symbolic link"* ]]
	assert_equal "$(size "$T/elsewhere.seg")" $((64 + 37))
}

@test "a symlinked offset file is refused, not followed" {
	chpub "$CH" a
	chsub --from=earliest "$CH" s >/dev/null
	mv "$CH/subscribers/s/offset" "$T/offset"
	ln -s "$T/offset" "$CH/subscribers/s/offset"
	run --separate-stderr chsub "$CH" s
	assert_failure
	[[ $stderr == *"offset"*"symbolic link"* ]]
	run --separate-stderr choffset "$CH" s
	assert_failure
	[[ $stderr == *"symbolic link"* ]]
}

@test "a symlinked subscriber directory is refused with a clear message" {
	chpub "$CH" a
	mkdir "$T/outside"
	ln -s "$T/outside" "$CH/subscribers/s"
	run --separate-stderr chsub "$CH" s
	assert_failure
	[[ $stderr == "chsub: $CH: "*"subscribers/s"*"symbolic link"* ]]
	run ls -A "$T/outside"
	assert_output ""
}

@test "a torn tail (truncated mid-record) is never delivered; the next chpub repairs it" {
	chpub "$CH" one two three
	truncate -s -5 "$(seg0)"
	run -0 peek_all
	assert_output "one
two"
	run -0 --separate-stderr chpub -v "$CH" four
	[[ $stderr == *"torn tail"* ]]
	run -0 peek_all
	assert_output "one
two
four"
}

@test "garbage appended after the last record is never delivered; the next chpub cuts it" {
	chpub "$CH" one two
	local good
	good=$(size "$(seg0)")
	printf '\xc7REC garbage garbage garbage garbage garbage' >>"$(seg0)"
	run -0 peek_all
	assert_output "one
two"
	chpub "$CH" three
	assert_equal "$(size "$(seg0)")" $((good + 36 + 5))
	run -0 peek_all
	assert_output "one
two
three"
}

@test "a record cut before its header ends is never delivered and is repaired" {
	chpub "$CH" one
	local good
	good=$(size "$(seg0)")
	chpub "$CH" two
	truncate -s $((good + 10)) "$(seg0)"
	run -0 peek_all
	assert_output "one"
	chpub "$CH" three
	run -0 peek_all
	assert_output "one
three"
}

# two_segments: a channel of 150 records over (at least) two segments.
two_segments() {
	new_channel segment_bytes=4096
	seq -f 'rec %g padding padding padding padding' 1 150 | chpub "$CH"
	(($(segments | wc -l) >= 2))
}

@test "damage just before a seal is corruption (65), not a torn tail to wait at" {
	two_segments
	local f sz
	f=$(seg0)
	sz=$(size "$f")
	flip_byte "$f" $((sz - 60 - 10))
	run -65 --separate-stderr timeout 10 chsub --peek --from=earliest "$CH"
	[[ $stderr == *"corrupt record at offset"* ]]
	run -0 --separate-stderr timeout 10 chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_equal "${#lines[@]}" 149
	assert_line -n 148 "rec 150 padding padding padding padding"
}

@test "a sealed segment that lost only its seal is read through, with a warning" {
	two_segments
	truncate -s -60 "$(seg0)"
	run -0 --separate-stderr timeout 10 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 150
	[[ $stderr == *"ends without its seal; continuing at offset $(base 1)"* ]]
}

@test "a follower at the end of a segment whose seal was lost goes on when the next segment is listed" {
	two_segments
	local last prev n
	last=$(segments | tail -1)
	prev=$(segments | tail -2 | head -1)
	cp "$CH/$last" "$T/last"
	cp "$CH/index" "$T/index"
	# the channel as it was before the rollover, minus prev's seal
	rm "$CH/$last"
	truncate -s -32 "$CH/index"
	truncate -s -60 "$CH/$prev"
	n=$(chsub --peek --from=earliest "$CH" | wc -l)
	: >"$T/ready"
	start_bg chsub -f --from=earliest --ready-fd=4 "$CH" s >"$T/out" \
		4>"$T/ready" 2>"$T/err"
	wait_for 10 test -s "$T/ready"
	wait_until 10 '[ "$(wc -l <"$T/out")" -eq "$n" ]'
	# the rollover lands, as a writer makes it: segment, then index entry
	cp "$T/last" "$CH/$last"
	tail -c 32 "$T/index" >>"$CH/index"
	wait_until 10 '[ "$(wc -l <"$T/out")" -eq 150 ]'
	grep -q "ends without its seal; continuing" "$T/err"
}

@test "an older segment cut short loses records: 65, or skipped with --skip-corrupt" {
	two_segments
	truncate -s -100 "$(seg0)"
	run -65 --separate-stderr timeout 10 chsub --peek --from=earliest "$CH"
	[[ $stderr == *"damaged"* ]]
	local n=${#lines[@]}
	run -0 --separate-stderr timeout 10 chsub --peek --from=earliest --skip-corrupt "$CH"
	((${#lines[@]} > n))
	assert_line "rec 150 padding padding padding padding"
	[[ $stderr == *"skipped"* ]]
}

@test "a damaged length field in the active segment, with records after it, is corruption" {
	chpub "$CH" one two three four
	# Make record two claim to run far past the end of the file.
	put_u32 "$(seg0)" $((64 + 39 + 8)) 100000
	run -65 --separate-stderr timeout 10 chsub --peek --from=earliest "$CH"
	assert_output "one"
	run -0 --separate-stderr timeout 10 chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_output "one
three
four"
}

@test "metadata written by another implementation: %{KEY} names the whole key, however long, never a prefix of it" {
	chpub "$CH" </dev/null
	local short long
	short=$(printf 'k%.0s' {1..63})
	long=${short}x$(printf 'y%.0s' {1..200})
	# one record, built by hand as channel(5) says, with two meta lines
	python3 - "$CH/$(segments | head -1)" "$short" "$long" <<'PY'
import struct, sys, time
from crc32c import crc32c
path, short, long = sys.argv[1], sys.argv[2], sys.argv[3]
meta = ('%s=short\n%s=long\n' % (short, long)).encode()
payload = b'payload'
total = 36 + len(meta) + len(payload)
hdr = struct.pack('<IHBBQq', len(payload), len(meta), 1, 0, 0, time.time_ns())
body = meta + payload + struct.pack('<I', total)
crc = crc32c(body + hdr)
with open(path, 'ab') as f:
    f.write(struct.pack('<II', 0x434552C7, crc) + hdr + body)
PY
	run -0 chsub --peek --from=earliest --format="%{$short}|%{$long}|%{${long}z}|%s\n" "$CH"
	assert_output "short|long||payload"
	run -0 bash -c 'chsub --peek --from=earliest --json "$1" | jq -r ".origin[\"$2\"]"' _ "$CH" "$long"
	assert_output long
}

@test "an offset file whose four bytes before the offset look like a trailer, inside a payload, is not on a boundary" {
	# Payload bytes 4-7 are 40 little-endian: offset 40 is 40 bytes
	# after the record's start, as if a 40-byte record ended there.
	printf 'AAAA(\0\0\0BBBBBBBB\n' | chpub "$CH"
	chpub "$CH" second
	chsub --from=earliest -n 1 "$CH" s >/dev/null
	doctor_offset s offset 40
	doctor_offset s seq 1
	run -65 --separate-stderr chsub "$CH" s
	assert_output ""
	[[ $stderr == *"offset 40 is not on a record boundary"* ]]
	run -2 chlag "$CH"
	assert_line --partial INVALID
}
