#!/usr/bin/env bats
# A rollover under --sync=none does not wait for the disk: the sealed
# segment is not fdatasynced, and the new segment's header says so
# (channel(5), SEGMENT FORMAT byte 40, Rollover).  Who makes it durable
# and clears the flag; what a power failure that took its tail looks like
# to readers, the check and --repair, with the flag and without.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	new_channel segment_bytes=4096
}
teardown() { ops_teardown; }

# flag SEG: byte 40 of a segment's header, in hex.
flag() { bytes "$1" 40 1; }
# newest: the path of the newest segment.
newest() { echo "$CH/$(segments | tail -n1)"; }

# records N: N lines rec-1 ... as fill (helpers/ops) makes them.
records() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf 'rec-%d padding padding padding padding\n' "$i"
	done
}

# one_roll: 100 records into the new channel with one chpub under
# --sync=none: one rollover in either format (two segments).
one_roll() {
	records 100 | chpub --sync=none "$CH"
	assert_equal "$(segments | wc -l)" 2
}

# lose_tail HOW: what a power failure may leave of the first segment's
# unsynced tail: its last 300 bytes zeroed ("zero"), or cut off ("cut").
lose_tail() {
	local s0 n
	s0=$(seg0)
	n=$(size "$s0")
	if [[ $1 == zero ]]; then
		dd if=/dev/zero of="$s0" bs=1 seek=$((n - 300)) count=300 \
		    conv=notrunc status=none
	else
		truncate -s $((n - 300)) "$s0"
	fi
}

# clear_flag SEG: the header without the flag, its CRC made right (as
# main's chpub, which always synced the sealed segment, writes it).
clear_flag() {
	printf '\0' | dd of="$1" bs=1 seek=40 conv=notrunc status=none
	fix_seghdr_crc "$1"
}

@test "a rollover under --sync=none flags the new segment and does not fdatasync the sealed one" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	local s0
	s0=$(seg0)
	records 100 >"$T/in"
	strace -f -y -e trace=fdatasync,fsync -o "$T/trace" \
	    chpub --sync=none "$CH" <"$T/in"
	assert_equal "$(segments | wc -l)" 2
	assert_equal "$(flag "$s0")" 00
	assert_equal "$(flag "$(newest)")" 01
	# The new segment's temp file and the directory are synced; the
	# sealed segment is not.
	run grep -c "fdatasync(.*\.seg\.tmp>" "$T/trace"
	assert_output 1
	run grep "$(basename "$s0")>" "$T/trace"
	assert_failure
	# Readers take it for what it is: a sound channel.
	run -0 chcompact --check "$CH"
	assert_output ""
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 100
}

@test "a rollover under --sync=periodic or always still syncs the sealed segment, unflagged" {
	local sync
	for sync in periodic always; do
		rm -rf "$CH"
		new_channel segment_bytes=4096
		records 100 | chpub --sync="$sync" "$CH"
		assert_equal "$(segments | wc -l)" 2
		assert_equal "$(flag "$(newest)")" 00
	done
}

@test "a writer under --sync=always or periodic makes the sealed segment durable and clears the flag; one under none does not" {
	one_roll
	chpub --sync=none "$CH" more
	assert_equal "$(flag "$(newest)")" 01
	chpub --sync=always "$CH" more
	assert_equal "$(flag "$(newest)")" 00

	rm -rf "$CH"
	new_channel segment_bytes=4096
	one_roll
	chpub --sync=periodic "$CH" more
	assert_equal "$(flag "$(newest)")" 00
}

@test "an offset commit makes the sealed segment durable, before the offset, and clears the flag" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	one_roll
	assert_equal "$(flag "$(newest)")" 01
	strace -f -y -e trace=fdatasync,renameat,renameat2,rename \
	    -o "$T/trace" chsub -n 1 --from=earliest "$CH" s >/dev/null
	assert_equal "$(flag "$(newest)")" 00
	# The sealed segment is synced before the offset is renamed in.
	local synced renamed
	synced=$(grep -n "fdatasync(.*$(basename "$(seg0)")>" "$T/trace" |
	    head -n1 | cut -d: -f1)
	renamed=$(grep -n 'rename.*"offset"' "$T/trace" | head -n1 | cut -d: -f1)
	[[ -n $synced && -n $renamed ]] && ((synced < renamed)) ||
		{ cat "$T/trace"; false; }
}

# flags: byte 40 of every segment, oldest first, one line.
flags() {
	local f out=()
	for f in $(segments); do
		out+=("$(flag "$CH/$f")")
	done
	echo "${out[*]}"
}

# many_rolls: 400 records under --sync=none, each chpub its own: several
# rollovers, none of them waiting for the disk.
many_rolls() {
	local i
	for ((i = 0; i < 4; i++)); do
		records 100 | chpub --sync=none "$CH"
	done
	(($(segments | wc -l) >= 5))
}

@test "rollovers under --sync=none do not sync each other: every sealed segment stays unsynced, each flagged in its successor" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	records 400 >"$T/in"
	strace -f -y -e trace=fdatasync,fsync -o "$T/trace" \
	    chpub --sync=none "$CH" <"$T/in"
	local n
	n=$(segments | wc -l)
	((n >= 5))
	# Every segment but the first says the one before it is unsynced.
	assert_equal "$(flags)" "00$(printf ' 01%.0s' $(seq 2 "$n"))"
	run grep -E "fdatasync\(.*/?[0-9]{20}\.seg>" "$T/trace"
	assert_failure
	run -0 chcompact --check "$CH"
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 400
}

@test "an offset commit makes every segment sealed without a sync durable, oldest first, and clears every flag" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	many_rolls
	local n segs
	n=$(segments | wc -l)
	mapfile -t segs < <(segments)
	strace -f -y -e trace=fdatasync,pwrite64,renameat,renameat2,rename \
	    -o "$T/trace" chsub -n 1 --from=earliest "$CH" s >/dev/null
	assert_equal "$(flags)" "00$(printf ' 00%.0s' $(seq 2 "$n"))"
	# Each sealed segment is synced before the flag that speaks for it
	# is cleared, the oldest first, all before the offset is renamed in.
	local i last=0 synced cleared renamed
	renamed=$(grep -n 'rename.*"offset"' "$T/trace" | head -n1 | cut -d: -f1)
	for ((i = 0; i < n - 1; i++)); do
		synced=$(grep -n "fdatasync(.*${segs[i]}>" "$T/trace" |
		    head -n1 | cut -d: -f1)
		cleared=$(grep -n "pwrite64(.*${segs[i + 1]}>" "$T/trace" |
		    head -n1 | cut -d: -f1)
		[[ -n $synced && -n $cleared && -n $renamed ]] &&
		    ((last < synced && synced < cleared && cleared < renamed)) ||
			{ echo "segment $i: $synced $cleared $renamed"; cat "$T/trace"; false; }
		last=$cleared
	done
}

@test "a writer under --sync=always makes every segment sealed without a sync durable; chcompact too" {
	many_rolls
	local n
	n=$(segments | wc -l)
	chpub --sync=always "$CH" more
	assert_equal "$(flags)" "00$(printf ' 00%.0s' $(seq 2 "$n"))"

	rm -rf "$CH"
	new_channel segment_bytes=4096
	many_rolls
	n=$(segments | wc -l)
	run -0 chcompact "$CH"
	assert_equal "$(flags)" "00$(printf ' 00%.0s' $(seq 2 "$n"))"
}

@test "a rollover under --sync=periodic after rollovers under none syncs them all first: no unflagged segment after an unsynced one" {
	many_rolls
	records 100 | chpub --sync=periodic "$CH"
	local n
	n=$(segments | wc -l)
	assert_equal "$(flags)" "00$(printf ' 00%.0s' $(seq 2 "$n"))"
}

@test "power failures took the tails of two segments sealed without a sync: --repair fixes both" {
	many_rolls
	local segs n0 n1 total
	mapfile -t segs < <(segments)
	total=$(chsub --peek --from=earliest "$CH" | wc -l)
	n0=$(size "$CH/${segs[0]}")
	n1=$(size "$CH/${segs[2]}")
	truncate -s $((n0 - 300)) "$CH/${segs[0]}"
	dd if=/dev/zero of="$CH/${segs[2]}" bs=1 seek=$((n1 - 300)) count=300 \
	    conv=notrunc status=none
	run -65 chcompact --check "$CH"
	run -0 --separate-stderr chcompact --repair "$CH"
	# One gap per damaged segment, counting what it lost (a whole frame
	# in format 2, however many records chpub's read put in it).
	local lost0 lost2
	lost0=$(grep -o "${segs[0]}: wrote a gap record for the [0-9]*" <<<"$stderr" | grep -o '[0-9]*$')
	lost2=$(grep -o "${segs[2]}: wrote a gap record for the [0-9]*" <<<"$stderr" | grep -o '[0-9]*$')
	[[ -n $lost0 && -n $lost2 ]] || { echo "$stderr"; false; }
	run -0 chcompact --check "$CH"
	run -0 chsub -q --from=earliest "$CH" s
	assert_equal "${#lines[@]}" $((total - lost0 - lost2))
	assert_equal "$(flags)" "00$(printf ' 00%.0s' $(seq 2 "${#segs[@]}"))"
}

@test "chcompact clears the flag; chcompact --check leaves it and says so only with -v" {
	one_roll
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	run -0 --separate-stderr chcompact -v --check "$CH"
	assert_equal "$(flag "$(newest)")" 01
	[[ $stderr == *"$(basename "$(newest)"): the segment before it was sealed without fdatasync (sync: none)"* ]] ||
		{ echo "$stderr"; false; }
	run -0 chcompact "$CH"
	assert_equal "$(flag "$(newest)")" 00
}

# lost_tail_repaired HOW: the checks on a channel whose first segment lost
# its tail the HOW way, with the second segment's flag set.
lost_tail_repaired() {
	local first second lost
	# The first segment must hold more than the frame the loss hits
	# (formats 2 and 3 frame what one read of the pipe brings, and a
	# busy machine brings all 100 lines in one): its first 10 records go
	# in on their own.
	records 100 >"$T/all"
	head -n 10 "$T/all" | chpub --sync=none "$CH"
	tail -n +11 "$T/all" | chpub --sync=none "$CH"
	assert_equal "$(segments | wc -l)" 2
	first=$(u64 "$(newest)" 24)
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 100
	lose_tail "$1"

	# Readers deliver what is before the loss, then report it.
	run -65 --separate-stderr chsub --peek --from=earliest "$CH"
	local before=${#lines[@]}
	((before > 0 && before < first)) || { echo "$before"; false; }
	assert_equal "${lines[-1]}" "rec-$before padding padding padding padding"
	[[ $stderr == *"segment damaged from offset"*"to its end (use --skip-corrupt to skip it)" ]] ||
		{ echo "$stderr"; false; }
	lost=$((first - before))

	# --skip-corrupt goes on in the next segment, saying how many.
	run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_equal "${#lines[@]}" $((100 - lost))
	[[ $stderr == *", $lost record"*" lost"* ]] || { echo "$stderr"; false; }

	# The check reports it as the loss the flag allows; --repair fills it.
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"$(basename "$(seg0)"): lost its tail from offset"*"($lost record"*"sealed without fdatasync"* ]] ||
		{ echo "$stderr"; false; }
	run -0 --separate-stderr chcompact --check --repair "$CH"
	[[ $stderr == *"repaired: $(basename "$(seg0)"): wrote a gap record for the $lost record"*" lost from offset"*", and the seal"* ]] ||
		{ echo "$stderr"; false; }
	assert_equal "$(flag "$(newest)")" 00
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""

	# Every record after the loss reads, numbered as published; readers
	# skip the gap with a warning.
	run -0 --separate-stderr chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "${#lines[@]}" $((100 - lost))
	# (record numbers count from 0: rec-N is number N-1)
	assert_equal "${lines[$((before - 1))]}" "$((before - 1)) rec-$before padding padding padding padding"
	assert_equal "${lines[$before]}" "$first rec-$((first + 1)) padding padding padding padding"
	assert_equal "${lines[-1]}" "99 rec-100 padding padding padding padding"
	[[ $stderr == *"$lost record"*" lost at offset"* ]] || { echo "$stderr"; false; }
	# The writer goes on after it, numbering on.
	chpub "$CH" after
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "${lines[-1]}" "100 after"
}

@test "a sealed segment whose unsynced tail a power failure zeroed: chsub 65, --skip-corrupt, --repair" {
	lost_tail_repaired zero
}

@test "a sealed segment that a power failure left shorter: chsub 65, --skip-corrupt, --repair extends it" {
	lost_tail_repaired cut
}

@test "a lost tail whose last whole record follows bytes that stand for no record: --repair still fills it" {
	local i
	for ((i = 1; i <= 100; i++)); do
		records 100 | sed -n "${i}p" | chpub --sync=none "$CH"
	done
	lose_tail cut
	# 40 bytes of junk in front of the last whole record or frame: the
	# trailers no longer chain, but the walk from the header goes on past
	python3 - "$(seg0)" <<'PY'
import struct, sys
path = sys.argv[1]
d = bytearray(open(path, 'rb').read())
fmt, pos, last = struct.unpack_from('<I', d, 8)[0], 64, None
while pos + 16 <= len(d):
    n = struct.unpack_from('<I', d, pos + 8)[0]
    if fmt == 1:
        n += 36 + struct.unpack_from('<H', d, pos + 12)[0]
    if pos + n > len(d):
        break
    last, pos = pos, pos + n
d[last:last] = b'x' * 40
open(path, 'wb').write(d)
PY
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"$(basename "$(seg0)"): lost its tail from offset"* ]] ||
		{ echo "$stderr"; false; }
	run --separate-stderr chcompact --repair "$CH"
	[[ $stderr == *"repaired: $(basename "$(seg0)"): wrote a gap record for the "*", and the seal"* ]] ||
		{ echo "$stderr"; false; }
	assert_equal "$(flag "$(newest)")" 00
	run -0 --separate-stderr chsub --peek --from=earliest --skip-corrupt "$CH"
	assert_equal "${lines[-1]}" "rec-100 padding padding padding padding"
}

@test "the same damage without the flag is corruption, left unrepaired" {
	local how
	for how in zero cut; do
		rm -rf "$CH"
		new_channel segment_bytes=4096
		one_roll
		clear_flag "$(newest)"
		lose_tail "$how"
		run -65 chsub --peek --from=earliest "$CH"
		run -65 --separate-stderr chcompact --check --repair "$CH"
		[[ $stderr == *"not sealed, but a newer segment exists"* ]] ||
			{ echo "$stderr"; false; }
		[[ $stderr != *"lost its tail"* && $stderr != *"repaired:"* ]] ||
			{ echo "$stderr"; false; }
		run -65 chcompact --check "$CH"
	done
}

@test "a writer under --sync=always after the loss goes on, and leaves the flag for --repair" {
	one_roll
	lose_tail zero
	run -0 chpub --sync=always "$CH" after
	assert_equal "$(flag "$(newest)")" 01
	run -0 chcompact --check --repair "$CH"
	assert_equal "$(flag "$(newest)")" 00
	run -0 chcompact --check "$CH"
}

@test "--repair removes the empty segment of a rollover that a power failure cut off from the segment before it" {
	one_roll
	local second idx
	second=$(newest)
	# The state a power failure leaves when it comes after the new
	# segment's name was synced but before its index entry was, and takes
	# the sealed segment's unsynced tail, seal included: a segment file
	# holding only its header, that nothing leads to.
	truncate -s 64 "$second"
	idx=$(size "$CH/index")
	truncate -s $((idx - 32)) "$CH/index"
	lose_tail cut
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"$(basename "$second"): segment file not in the index"* ]] ||
		{ echo "$stderr"; false; }
	run -0 --separate-stderr chcompact --check --repair "$CH"
	[[ $stderr == *"repaired: removed $(basename "$second"): it held only a header"* ]] ||
		{ echo "$stderr"; false; }
	assert_file_not_exists "$second"
	run -0 chcompact --check "$CH"
	run -0 chpub "$CH" after
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${lines[-1]}" after
}

@test "an empty segment file without the flag, not in the index, is left" {
	one_roll
	local second idx
	second=$(newest)
	truncate -s 64 "$second"
	clear_flag "$second"
	idx=$(size "$CH/index")
	truncate -s $((idx - 32)) "$CH/index"
	lose_tail cut
	run -65 --separate-stderr chcompact --check --repair "$CH"
	[[ $stderr == *"not repaired: $(basename "$second"): holds records, or is not from a rollover under sync none"* ]] ||
		{ echo "$stderr"; false; }
	assert_file_exists "$second"
}

@test "a rollover that finds such an empty segment at its name, with another first record number, writes its own header over it" {
	one_roll
	local s0 second idx n seal first
	s0=$(seg0)
	second=$(newest)
	first=$(u64 "$second" 24)
	# The leftover of a rollover cut off by a power failure, at the very
	# offset where the next rollover seals again, but numbered otherwise
	# (the records lost before it were not as many as those published
	# since): the seal gone, the segment not in the index, its header
	# numbered 5 further.
	truncate -s 64 "$second"
	python3 - "$second" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(24)
    n = struct.unpack('<Q', f.read(8))[0]
    f.seek(24)
    f.write(struct.pack('<Q', n + 5))
PY
	fix_seghdr_crc "$second"
	idx=$(size "$CH/index")
	truncate -s $((idx - 32)) "$CH/index"
	n=$(size "$s0")
	seal=$(u32 "$s0" $((n - 4)))
	truncate -s $((n - seal)) "$s0"
	# A record too large for what is left of the segment: sealed again
	# right there, at the leftover's name.
	run -0 chpub --sync=none "$CH" "big-$(printf '%0300d' 0)"
	assert_equal "$(newest)" "$second"
	run -0 --separate-stderr chcompact --check "$CH"
	assert_equal "$stderr" ""
	run -0 chsub --peek --from=earliest --format='%n %s\n' "$CH"
	assert_equal "${#lines[@]}" $((first + 1))
	[[ ${lines[-1]} == "$first big-"* ]] || { echo "${lines[-1]}"; false; }
}

@test "a sealed segment that lost only its seal: --repair writes the seal again" {
	one_roll
	local s0 n seal
	s0=$(seg0)
	n=$(size "$s0")
	seal=$(u32 "$s0" $((n - 4)))
	truncate -s $((n - seal)) "$s0"
	run -0 --separate-stderr chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 100
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"$(basename "$s0"): lost its seal at offset"* ]] ||
		{ echo "$stderr"; false; }
	run -0 --separate-stderr chcompact --check --repair "$CH"
	[[ $stderr == *"repaired: $(basename "$s0"): wrote its seal again at offset"* ]] ||
		{ echo "$stderr"; false; }
	assert_equal "$(size "$s0")" "$n"
	assert_equal "$(flag "$(newest)")" 00
	run -0 chcompact --check "$CH"
}

# cut_roll: one rollover under none (seg0 sealed, seg1 flagged), then a
# second one cut off between the seal and the new segment's name (the
# rename failing, as a full disk or a kill -9 would leave it): seg1
# sealed and flagged, newest, with no successor.
# (helpers/crash's shim, without the helpers that would shadow records)
CHFAULT=${CHFAULT:-${TOP_BUILDDIR:-${BATS_TEST_DIRNAME:-.}/..}/tests/helpers/chfault.so}
cut_roll() {
	[[ -f $CHFAULT ]] || skip "tests/helpers/chfault.so not built (make check builds it)"
	one_roll
	records 100 >"$T/in"
	CHFAULT_FAIL=renameat2:1:ENOSPC LD_PRELOAD="$CHFAULT" \
	    run -1 chpub --sync=none "$CH" <"$T/in"
	assert_equal "$(flags)" "00 01"
}

@test "a rollover under --sync=always that finishes one cut off under none first makes the segments sealed without a sync durable" {
	cut_roll
	chpub --sync=always "$CH" acked
	# The finished rollover's new segment is unflagged: every flag
	# before it must be clear, or nothing would ever look at them.
	assert_equal "$(flags)" "00 00 00"
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${lines[-1]}" acked
}

@test "an offset commit while the newest segment is sealed with no successor yet makes the segments before it durable" {
	cut_roll
	run -0 chsub -n 1 --from=earliest "$CH" s
	assert_equal "$(flags)" "00 00"
}

@test "a rollover that writes its header over a leftover of one cut off after its rename syncs the directory" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	cut_roll
	# Under none the new segment is named, flagged, and the directory
	# fsync that would make the name durable fails: not in the index.
	CHFAULT_FAIL=fsync:1:EIO LD_PRELOAD="$CHFAULT" \
	    run -1 chpub --sync=none "$CH" x
	local last
	last=$(segments | tail -n1)
	assert_equal "$(flags)" "00 01 01"
	assert_equal "$(size "$CH/$last")" 64
	strace -f -y -e trace=pwrite64,fsync -o "$T/trace" \
	    chpub --sync=always "$CH" acked
	assert_equal "$(flags)" "00 00 00"
	local rewritten dirsync
	rewritten=$(grep -n "pwrite64(.*$last>" "$T/trace" | head -n1 | cut -d: -f1)
	dirsync=$(grep -n "fsync([0-9]*<$CH>)" "$T/trace" | tail -n1 | cut -d: -f1)
	[[ -n $rewritten && -n $dirsync ]] && ((rewritten < dirsync)) ||
		{ cat "$T/trace"; false; }
}

# The walk back used to stop with an error at a header it could not read:
# every sync, offset commit and compaction failed (65) until a repair.
@test "a damaged header in the chain is damage for --check, not a stop: writers sync, commits and compaction go on, and the segments before it are still made durable" {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
	many_rolls
	local segs
	mapfile -t segs < <(segments)
	# its CRC (header bytes 60-63) wrong
	printf '\xff' | dd of="$CH/${segs[2]}" bs=1 seek=60 conv=notrunc status=none
	strace -f -y -e trace=fdatasync -o "$T/trace" \
	    chpub --sync=periodic "$CH" more
	# The segment before the damaged one is synced; the flag before it
	# cleared, the one after it kept (its seal check fails), the newer
	# ones cleared.
	grep -q "fdatasync(.*${segs[1]}>" "$T/trace" || { cat "$T/trace"; false; }
	grep -q "fdatasync(.*${segs[0]}>" "$T/trace" || { cat "$T/trace"; false; }
	assert_equal "$(flag "$CH/${segs[1]}")" 00
	assert_equal "$(flag "$CH/${segs[3]}")" 01
	assert_equal "$(flag "$CH/${segs[4]}")" 00
	run -0 chsub -n 5 --from=earliest "$CH" s
	assert_equal "${#lines[@]}" 5
	run -0 chcompact "$CH"
	run -65 --separate-stderr chcompact --check "$CH"
	[[ $stderr == *"${segs[2]}"* ]] || { echo "$stderr"; false; }
}
