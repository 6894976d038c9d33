#!/usr/bin/env bats
# Hostile input and files: bad subscriber names, absurd length fields,
# symlinks and FIFOs where the channel's files go, channels owned by
# someone else or unreadable, and the permissions of everything created
# (channel(5), PERMISSIONS).

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/owner"
	common_setup
}
teardown() { common_teardown; }

@test "subscriber names with /, .., a leading dot, control characters or 10 KB are refused (2), nothing created" {
	new_channel
	local long n
	long=$(head -c 10240 /dev/zero | tr '\0' a)
	for n in a/b / .. ../x ../../etc/passwd .hidden . $'a\nb' $'a\x01b' $'a\x7f' "$long" "" "a b" 'a*'; do
		for tool in "chsub" "chsub --peek" "choffset" "choffset --create" "choffset --delete"; do
			run -2 --separate-stderr $tool "$CH" "$n"
			[[ $stderr == *"invalid subscriber name"* || $stderr == *"longer than 128"* ||
			   $stderr == *"empty subscriber name"* ]] || { echo "$tool '$n': $stderr"; false; }
		done
	done
	run -0 ls -A "$CH/subscribers"
	assert_output ""
}

# long_path LEN: a path under $T of exactly LEN bytes (200-byte names).
long_path() {
	local p="$T/long" part
	while ((${#p} + 201 < $1)); do
		p+=/$(printf 'd%.0s' {1..200})
	done
	part=$(head -c $(($1 - ${#p} - 1)) /dev/zero | tr '\0' c)
	echo "$p/$part"
}

@test "channel paths up to PATH_MAX: messages keep their 'TOOL: CHANNEL:' prefix, and their cause" {
	local ch len dl
	for len in 2100 4095; do
		ch=$(long_path "$len")
		run -66 --separate-stderr chsub --peek "$ch"
		assert_equal "$stderr" "chsub: $ch: no such channel"
		mkdir -p "$(dirname "$ch")"
		chpub "$ch" a
		choffset --create --earliest "$ch" s >/dev/null
		# a message that names a long path ends with its cause (the
		# dead-letter channel's channel.yaml is a FIFO: a bad channel.yaml, 78)
		dl=$(long_path 4000)/dl
		mkdir -p "$dl"
		mkfifo "$dl/channel.yaml"
		run -78 --separate-stderr timeout 10 chsub --dead-letter="$dl" -x 'cat >/dev/null; exit 1' "$ch" s
		[[ $stderr == "chsub: $ch: dead-letter channel $T/long/dd"*"...dd"*"/dl: channel.yaml: not a regular file" ]] ||
		    { echo "$stderr" | cut -c 1-100; echo ...; echo "$stderr" | rev | cut -c 1-100 | rev; false; }
		rm -rf "$T/long"
	done
}

# plant_record_len LEN: set the payload length of the channel's first
# record to LEN (and so break it).
plant_record_len() {
	local seg="$CH/$(segments | head -1)"
	printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))" |
	    dd of="$seg" bs=1 seek=$((64 + 8)) conv=notrunc status=none
}

@test "a record claiming 4 GiB in a sparse 5 GiB segment: bounded memory, no crash, reported as damage" {
	new_channel
	chpub "$CH" one two
	plant_record_len 4294967040
	truncate -s 5G "$CH/$(segments | head -1)" || skip "no sparse 5 GiB file here"
	# 512 MiB of address space is plenty: nothing may try to hold 4 GiB
	# (AddressSanitizer reserves terabytes of shadow: no limit then)
	local lim='ulimit -v 524288;'
	ldd "$(command -v chsub)" | grep -q libasan && lim=
	run --separate-stderr bash -c "$lim"' chsub --peek --from=earliest "$1"' _ "$CH"
	((status == 0 || status == 65)) || { echo "exit $status: $stderr"; false; }
	refute_output --partial one
	run --separate-stderr bash -c "$lim"' chcompact --check "$1"' _ "$CH"
	assert_equal "$status" 65
}

# big_record: $T/big, a 12 MB record, and lim, the shell command that
# keeps what follows it below 8 MiB of address space (none under
# AddressSanitizer, which reserves terabytes of shadow).
big_record() {
	lim='ulimit -v 8192;'
	ldd "$(command -v chpub)" | grep -q libasan && lim=
	head -c 9000000 /dev/urandom | base64 -w 0 | head -c 12000000 >"$T/big"
}

# A writer or a reader registering at the end with no tail mark to start
# from (a channel from before tail marks, after a power failure) walks
# the newest segment from its header: a record bigger than its address
# space is checked by streaming it, never held whole.
@test "with no tail mark, writers and readers at the end walk past a record bigger than their address space" {
	local lim f seg
	big_record
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		chpub "$CH" a
		chpub --whole "$CH" <"$T/big"
		: >"$CH/append.lock"
		run --separate-stderr bash -c "$lim"' choffset --create "$1" late' _ "$CH"
		assert_equal "$status/$stderr" "0/"
		: >"$CH/append.lock"
		run --separate-stderr bash -c "$lim"' chpub "$1" next' _ "$CH"
		assert_equal "$status/$stderr" "0/"
		# a torn tail behind it: only the torn bytes are cut
		seg="$CH/$(segments | tail -1)"
		head -c 100 /dev/urandom >>"$seg"
		: >"$CH/append.lock"
		run --separate-stderr bash -c "$lim"' chpub "$1" last' _ "$CH"
		assert_equal "$status/$stderr" "0/"
		run -0 chsub "$CH" late
		assert_output $'next\nlast'
		{ echo a; cat "$T/big"; echo; echo next; echo last; } >"$T/want"
		chsub --peek --from=earliest "$CH" >"$T/got"
		cmp "$T/want" "$T/got"
		run -0 chcompact --check "$CH"
	done
}

@test "damage, then a record bigger than a writer's address space: the writer walks past both and cuts nothing valid (formats 1-3)" {
	local lim f seg off
	big_record
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		chpub "$CH" a
		chpub "$CH" bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
		chpub --whole "$CH" <"$T/big"
		seg="$CH/$(segments | tail -1)"
		off=$(grep -abo bbbbbbbbbb "$seg" | head -1 | cut -d: -f1)
		printf X | dd of="$seg" bs=1 seek=$((off + 5)) conv=notrunc status=none
		head -c 100 /dev/urandom >>"$seg"
		: >"$CH/append.lock"
		run --separate-stderr bash -c "$lim"' chpub "$1" next' _ "$CH"
		assert_equal "$status/$stderr" "0/"
		{ echo a; cat "$T/big"; echo; echo next; } >"$T/want"
		chsub --peek --from=earliest --skip-corrupt "$CH" >"$T/got" 2>/dev/null
		cmp "$T/want" "$T/got"
	done
}

@test "a big frame whose CRC passes but whose record does not parse is no end to write after: the next writer cuts it (formats 2, 3)" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	local f seg pos h p
	for f in 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		chpub "$CH" a
		head -c 2000000 /dev/zero | tr '\0' x | chpub --whole "$CH"
		seg="$CH/$(segments | tail -1)"
		read -r pos h p < <(frames "$seg" | awk '$2 > 1048576 { print $1, $7, $8 }')
		# the record's attribute byte gets a bit no writer sets, and the
		# frame a CRC that matches
		printf '\x04' | dd of="$seg" bs=1 seek=$((pos + h + ${p:-0})) \
		    conv=notrunc status=none
		fix_frame_crc "$seg" "$pos"
		: >"$CH/append.lock"
		run -0 chpub "$CH" next
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		assert_output $'a\nnext'
		run -0 chcompact --check "$CH"
	done
}

@test "offsets, bases and sequence numbers claiming 2^62 are refused as corrupt, never followed" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	new_channel
	chpub "$CH" one two
	choffset --create --earliest "$CH" s >/dev/null
	doctor_offset s offset $((1 << 62))
	run --separate-stderr chsub "$CH" s
	((status == 65 || status == 1)) || { echo "exit $status"; false; }
	[[ $stderr == "chsub: $CH: "* ]]
	run -0 choffset --earliest "$CH" s
	doctor_offset s seq $((1 << 62))
	run --separate-stderr chsub "$CH" s
	((status == 65 || status == 1)) || { echo "exit $status $output"; false; }
	run -0 choffset --earliest "$CH" s
	# a segment whose header claims base 2^62 (CRC fixed up)
	python3 - "$CH/$(segments | head -1)" <<'EOF'
import struct, sys
from crc32c import crc32c
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[16:24] = struct.pack('<Q', 1 << 62)
b[60:64] = struct.pack('<I', crc32c(bytes(b[0:60])))
open(p, 'wb').write(b)
EOF
	run --separate-stderr chsub --peek --from=earliest "$CH"
	assert_equal "$status" 65
	[[ $stderr == *"header says base offset $((1 << 62))"* ]]
	run -65 chcompact --check "$CH"
}

# place KIND REL: put a symlink or a FIFO at $CH/REL.  The symlink points
# out of the channel at what was there (moved out whole, so a tool that
# followed it would work as if nothing happened), or at a file holding
# "precious" for temporary names.
place() {
	local target="$T/outside/target"
	rm -rf "$target"
	if [[ -e $CH/$2 ]]; then
		mv "$CH/$2" "$target"
	else
		echo precious >"$target"
	fi
	case $1 in
	symlink) ln -s "$target" "$CH/$2" ;;
	fifo) rm -rf "$CH/$2"; mkfifo "$CH/$2" ;;
	esac
}

@test "a sealed segment cut under a running chsub, below what it has read: damage (65), or skipped with the records lost counted, never a quiet stop (formats 1-3)" {
	# The cut comes just before chsub's first read at 256 KiB or more of
	# the first segment, into the first record, which chsub has read by
	# then (how far it has read depends on how chpub's reads cut the
	# pipe into frames): it stands past the cut.  It used to find the file's end behind it, call that the end
	# of the channel and exit 0 (chsub -f: wait forever) with two
	# segments unread; format 2, whose next read was the trailer of a big
	# frame, exited 1 with "read segment: No data available".
	need_chfault
	local f first total lost rc
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel segment_bytes=300KiB
		chpub "$CH" first
		seq -f 'line %g of some length here' 1 30000 | chpub "$CH"
		total=30001
		(($(segments | wc -l) >= 3)) || { echo "$(segments)"; false; }
		first="$CH/$(segments | head -1)"
		choffset --create --earliest "$CH" s
		choffset --create --earliest "$CH" k
		cp "$first" "$T/first"
		rc=0
		CHFAULT_RUN="truncate -s 80 '$first'" \
		    CHFAULT_RUN_AT="pread:$(basename "$first"):262208" \
		    LD_PRELOAD="$CHFAULT" chsub "$CH" s >"$T/out" 2>"$T/err" || rc=$?
		assert_equal "$rc" 65
		run cat "$T/err"
		assert_output --regexp "^chsub: $CH: segment damaged from offset [0-9]+ to its end \(use --skip-corrupt to skip it\)\$"
		# it stood past the cut, and commits what it delivered
		(($(choffset "$CH" s) > 16)) || { echo "format $f: at $(choffset "$CH" s)"; false; }
		(($(wc -l <"$T/out") > 0))
		cp "$T/first" "$first"
		rc=0
		CHFAULT_RUN="truncate -s 80 '$first'" \
		    CHFAULT_RUN_AT="pread:$(basename "$first"):262208" \
		    LD_PRELOAD="$CHFAULT" chsub --skip-corrupt "$CH" k >"$T/out" 2>"$T/err" || rc=$?
		assert_equal "$rc" 0
		assert_equal "$(tail -n 1 "$T/out")" "line 30000 of some length here"
		lost=$(sed -n 's/.*, \([0-9]*\) records lost$/\1/p' "$T/err")
		[[ -n $lost ]] || { cat "$T/err"; false; }
		assert_equal "$(($(wc -l <"$T/out") + lost))" "$total"
	done
}

@test "the newest segment cut under a chsub -f below what it has read: it stops with 65, never waits for offsets to be used again (formats 1-3)" {
	# Writers append from the end of what is valid: after the cut, from
	# below offsets this subscriber has handed out and committed.  It
	# used to wait for the file to grow past its position, and then read
	# from the middle of other records.
	need_chfault
	local f end
	for f in 1 2 3; do
		export CH_FORMAT=$f
		rm -rf "$CH"
		new_channel
		seq -f 'line %g of some length here' 1 10000 | chpub "$CH"
		choffset --create --earliest "$CH" s
		# chsub stops itself just before its first wait
		CHFAULT_SIGNAL_AT_POLL=$(kill -l STOP) LD_PRELOAD="$CHFAULT" \
		    start_bg chsub -f "$CH" s >"$T/out" 2>"$T/err"
		wait_for 20 stopped_at_wait "$BG"
		assert_equal "$(wc -l <"$T/out")" 10000
		end=$(($(stat -c %s "$CH/$(segments | tail -1)") - 64))	# offsets leave out the header
		truncate -s 2000 "$CH/$(segments | tail -1)"
		chpub "$CH" after
		kill -CONT "$BG"
		wait_until 10 '! kill -0 "$BG" 2>/dev/null'
		run wait "$BG"
		assert_failure 65
		run cat "$T/err"
		assert_output --regexp "^chsub: $CH: segment at offset 0 was cut to [0-9]+ bytes under the reader, which had read to offset $end \\(damaged channel\\)\$"
		assert_equal "$(choffset "$CH" s)" "$end"
		assert_equal "$(wc -l <"$T/out")" 10000
	done
}

@test "symlinks and FIFOs where segments, index, offsets, locks, temp files and channel.yaml go: never followed, never blocked on" {
	local kind rel tool noticed sum
	mkdir -p "$T/outside"
	for kind in symlink fifo; do
		for rel in 00000000000000000000.seg index channel.yaml append.lock compact.lock \
		    subscribers/s/offset subscribers/s/lock subscribers/s/.offset.tmp \
		    .index.tmp .00000000000000000000.seg.tmp subscribers/s subscribers; do
			rm -rf "$CH" "$T/outside"/*
			new_channel
			chpub "$CH" one two
			choffset --create --earliest "$CH" s >/dev/null
			: >"$CH/compact.lock"
			place "$kind" "$rel"
			sum=$(find "$T/outside" -type f -exec cat {} + | cksum)
			noticed=0
			for tool in "chpub $CH three" "chsub $CH s" "chsub --peek --from=earliest $CH" \
			    "choffset --earliest $CH s" "choffset $CH" "chcompact $CH" \
			    "chcompact --check $CH" "chlag $CH"; do
				run timeout 10 $tool
				((status != 124)) || { echo "$kind at $rel: '$tool' blocked"; false; }
				((status < 128)) || { echo "$kind at $rel: '$tool' crashed ($status)"; false; }
				((status == 0)) || noticed=1
			done
			[[ $(find "$T/outside" -type f -exec cat {} + | cksum) == "$sum" ]] ||
			    { echo "$kind at $rel: wrote through"; false; }
			# a planted file is refused by something, unless it sits at a
			# temporary name, which the tools remove and reuse
			[[ $rel == *.tmp ]] || ((noticed)) ||
			    { echo "$kind at $rel: followed without complaint"; false; }
		done
	done
}

@test "hard links planted at temporary names (creation, commit, index rewrite) are removed, never written through" {
	mkdir -p "$T/outside" "$CH"
	local f
	for f in a b c d e; do echo "precious $f" >"$T/outside/$f"; done
	# a channel's creation: the names an interrupted creation may leave
	ln "$T/outside/a" "$CH/.index.tmp"
	ln "$T/outside/b" "$CH/.00000000000000000000.seg.tmp"
	ln "$T/outside/c" "$CH/.channel.yaml.tmp"
	run -0 chpub "$CH" one
	set_config segment_bytes 4096
	# an offset commit
	choffset --create --earliest "$CH" s >/dev/null
	ln "$T/outside/d" "$CH/subscribers/s/.offset.tmp"
	for i in $(seq 200); do echo "record $i padding padding"; done | chpub "$CH"
	run -0 chsub "$CH" s
	# compaction's index rewrite
	ln "$T/outside/e" "$CH/.index.tmp"
	run -0 chcompact "$CH"
	((${#lines[@]} == 0))
	run -0 segments
	assert_equal "${#lines[@]}" 1
	for f in a b c d e; do
		assert_equal "$(cat "$T/outside/$f")" "precious $f"
		assert_equal "$(stat -c %h "$T/outside/$f")" 1
	done
	run -0 chcompact --check "$CH"
	run -0 chsub --peek --from=earliest -n 1 "$CH"
}

@test "a byte flipped anywhere in a record is never delivered" {
	# format 1's records; 11-format2.bats flips every byte of a frame
	CH_FORMAT=1 new_channel
	chpub "$CH" first middle-record-payload last
	local seg="$CH/$(segments | head -1)" start=$((64 + 41)) k byte
	cp -a "$CH" "$T/pristine"
	# the middle record: 36 bytes of frame + 21 of payload, at 64 + 41
	for ((k = start; k < start + 57; k++)); do
		rm -rf "$CH"
		cp -a "$T/pristine" "$CH"
		# flip every bit: writing a fixed byte would change nothing where
		# the CRC or the time happens to hold that byte already
		byte=$(od -An -tu1 -j "$k" -N1 "$seg")
		printf "\\x$(printf %02x $((byte ^ 0xff)))" |
			dd of="$seg" bs=1 seek="$k" conv=notrunc status=none
		cmp -s "$seg" "$T/pristine/${seg##*/}" && { echo "flip at $k: no change"; false; }
		run --separate-stderr chsub --peek --from=earliest "$CH"
		((status == 65 || status == 0)) || { echo "flip at $k: exit $status"; false; }
		refute_output --partial "middle-record"
		# nothing but the two intact records, whole
		[[ -z $(grep -vx -e first -e last <<<"$output") ]] ||
			{ echo "flip at $k: delivered '$output'"; false; }
	done
}

@test "a channel owned by another user: read-only tools work, writers fail with a clear message (1)" {
	need_nobody
	new_channel
	chpub "$CH" one
	choffset --create --earliest "$CH" s >/dev/null
	chmod -R go-w "$CH"
	run -1 --separate-stderr as_nobody chpub "$CH" two
	assert_equal "$stderr" "chpub: $CH: lock file append.lock: Permission denied"
	run -1 --separate-stderr as_nobody chsub "$CH" s
	[[ $stderr == "chsub: $CH: "*"Permission denied" ]]
	run -0 as_nobody chsub --peek --from=earliest "$CH"
	assert_output one
	run -0 as_nobody chlag "$CH"
	run -0 as_nobody chcompact --check "$CH"
	run -0 choffset "$CH" s
	assert_output 0
}

# Root's files in a channel of another user would lock the owner out (its
# chpub: "segment index: Permission denied"): refused before anything
# changes.  (chcompact: 60-chcompact.bats.)
@test "run by root on a channel another user owns, chpub, chsub and choffset's changes are refused (1), changing nothing; peeking, listing, --dry-run and chlag work; the owner goes on" {
	need_owner
	own_channel "$T/own"
	as_nobody chsub --from=earliest "$OWN" s >/dev/null
	as_nobody choffset --create --earliest "$OWN" t >/dev/null
	tree_state "$OWN" >"$T/state.before"
	run -1 --separate-stderr chpub "$OWN" root-record
	assert_equal "$stderr" "$(refusal chpub "$OWN")"
	run -1 --separate-stderr bash -c 'echo piped | chpub "$1"' _ "$OWN"
	assert_equal "$stderr" "$(refusal chpub "$OWN")"
	local opts
	# OPTIONS before the channel, then the subscriber: t, or a new one
	for opts in ": t" ": new" "--from=earliest: t" "-f -t 0: t" "-x true: t"; do
		run -1 --separate-stderr chsub ${opts%:*} "$OWN" ${opts#*:}
		assert_equal "$stderr" "$(refusal chsub "$OWN")"
	done
	for opts in "--earliest: t" "--latest --all:" "--create: u" \
	    "--delete: t" "--shift=1: t" "--set=0: t"; do
		run -1 --separate-stderr choffset ${opts%:*} "$OWN" ${opts#*:}
		assert_equal "$stderr" "$(refusal choffset "$OWN")"
	done
	run -1 --separate-stderr choffset --import=- "$OWN" <<<"t 0"
	assert_equal "$stderr" "$(refusal choffset "$OWN")"
	# what changes nothing works
	run -0 chsub --peek --from=earliest "$OWN"
	assert_line -n -1 "own-300 padding padding padding padding"
	run -0 choffset "$OWN"
	assert_line --regexp "^t 0$"
	run -0 choffset --history "$OWN"
	run -0 choffset --export "$OWN"
	run -0 choffset --dry-run --latest "$OWN" t
	run -0 chlag "$OWN"
	run -0 chcompact --check "$OWN"
	run -0 diff "$T/state.before" <(tree_state "$OWN")
	run -0 find "$OWN" -not -user 65534
	assert_output ""
	# the owner publishes, reads and moves offsets on
	run -0 as_nobody chpub "$OWN" late
	run -0 as_nobody chsub "$OWN" s
	assert_output late
	run -0 as_nobody choffset --latest "$OWN" t
}

@test "run by root under umask 022, the tools refuse a channel set up by another user in a group's directory of root's, and peek into it; under umask 002 root works there as a member" {
	need_owner
	getent group 65534 >/dev/null || skip "no group 65534"
	mkdir -m 2775 "$T/g"
	chgrp 65534 "$T/g"
	as_nobody sh -c 'umask 002
		chpub "$1" first &&
		sed -i "s/^segment_bytes:.*/segment_bytes: 4096/" "$1/channel.yaml"' _ "$T/g"
	tree_state "$T/g" >"$T/state.before"
	umask 022
	run -1 --separate-stderr chpub "$T/g" root-record
	assert_equal "$stderr" "$(refusal chpub "$T/g" group)"
	run -1 --separate-stderr chsub --from=earliest "$T/g" rootsub
	assert_equal "$stderr" "$(refusal chsub "$T/g" group)"
	run -1 --separate-stderr chcompact "$T/g"
	assert_equal "$stderr" "$(refusal chcompact "$T/g" group)"
	run -0 chsub --peek --from=earliest "$T/g"
	assert_output first
	run -0 diff "$T/state.before" <(tree_state "$T/g")
	# Under umask 002 what root makes is the group's to write: root
	# publishes across rollovers and registers, the owner goes on.
	umask 002
	run -0 bash -c 'seq -f "root-%g padding padding padding padding" 300 | chpub "$1"' _ "$T/g"
	run -0 chsub --from=earliest "$T/g" rootsub
	run -0 find "$T/g" -user 0 -not -perm -g+w
	assert_output ""
	run -0 as_nobody sh -c 'umask 002
		seq -f "late-%g padding padding padding padding" 300 | chpub "$1" &&
		chsub "$1" rootsub | tail -1 && chcompact "$1"' _ "$T/g"
	assert_output "late-300 padding padding padding padding"
}

@test "run by root, chsub -x refuses a dead-letter channel another user owns (1) before any handler runs: the record stays unconsumed, the channel unchanged" {
	need_owner
	own_channel "$T/own"
	new_channel
	chpub "$CH" doomed
	tree_state "$OWN" >"$T/state.before"
	printf 'touch "%s/ran"; exit 1\n' "$T" >"$T/handler.sh"
	run -1 --separate-stderr chsub -x "sh $T/handler.sh" --retries=0 \
	    --dead-letter="$OWN" --from=earliest "$CH" s
	assert_equal "$stderr" "chsub: $CH: dead-letter channel $OWN: $(refusal chsub "$OWN" | sed 's/^chsub: [^:]*: //')"
	assert_not_exist "$T/ran"
	run -0 diff "$T/state.before" <(tree_state "$OWN")
	run -0 chsub --peek --from=earliest "$CH" s
	assert_output doomed
}

@test "an unreadable channel directory: every tool fails with 'open channel: Permission denied' (1)" {
	need_nobody
	new_channel
	chpub "$CH" one
	chmod 000 "$CH"
	for tool in chpub "chsub --peek" choffset chcompact; do
		run -1 --separate-stderr as_nobody $tool "$CH"
		assert_equal "$stderr" "${tool%% *}: $CH: open channel: Permission denied"
	done
	run -3 --separate-stderr as_nobody chlag "$CH"
}

# modes DIR: "MODE TYPE PATH" for everything under DIR.
modes() { (cd "$1" && find . -mindepth 1 -printf '%m %y %p\n' | sort -k3); }

@test "everything created follows the umask: 0666 and 0777 less the umask (022, 002, 077)" {
	local u want_f want_d
	for u in 022 002 077; do
		rm -rf "$CH"
		(
			umask "$u"
			new_channel segment_bytes=4096
			choffset --create --earliest "$CH" s >/dev/null
			for i in $(seq 200); do echo "record $i padding padding"; done | chpub "$CH"
			chsub "$CH" s >/dev/null
			chlag "$CH" >/dev/null
			chcompact "$CH"
		)
		want_f=$(printf '%o' $((0666 & ~8#$u)))
		want_d=$(printf '%o' $((0777 & ~8#$u)))
		run -0 modes "$CH"
		refute_line --regexp "^[0-7]+ [^fd] "
		while read -r m y p; do
			if [[ $y == d ]]; then
				[[ $m == "$want_d" ]] || { echo "umask $u: $p is $m, not $want_d"; false; }
			else
				[[ $m == "$want_f" ]] || { echo "umask $u: $p is $m, not $want_f"; false; }
			fi
		done <<<"$output"
	done
}

@test "a setgid group-shared directory: the channel inherits the group and setgid; a group member publishes and consumes" {
	need_nobody
	getent group nogroup >/dev/null || skip "no group nogroup"
	mkdir "$T/shared"
	chgrp nogroup "$T/shared"
	chmod 2775 "$T/shared"
	CH="$T/shared/ch"
	(umask 002; new_channel segment_bytes=4096; choffset --create --earliest "$CH" s >/dev/null)
	run -0 modes "$CH"
	while read -r m y p; do
		[[ $(stat -c %G "$CH/$p") == nogroup ]] || { echo "$p: group $(stat -c %G "$CH/$p")"; false; }
		if [[ $y == d ]]; then
			[[ $m == 2775 ]] || { echo "$p is $m"; false; }
		else
			[[ $m == 664 ]] || { echo "$p is $m"; false; }
		fi
	done <<<"$output"
	# another member of the group (not the owner) uses it fully
	run -0 setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c '
		umask 002
		for i in $(seq 150); do echo "r$i padding padding padding"; done | chpub "$1" &&
		chsub "$1" s >/dev/null && chsub "$1" t2 >/dev/null &&
		chpub "$1" last && chsub "$1" s && chcompact "$1"' _ "$CH"
	assert_output last
	[[ $(stat -c %G "$CH/subscribers/t2") == nogroup ]]
	[[ $(stat -c %a "$CH/subscribers/t2") == 2775 ]]
	# root, a member working under umask 002 as well
	run -0 bash -c 'umask 002; chsub "$1" s' _ "$CH"
	run -0 chcompact --check "$CH"
}

@test "run with stdin, stdout and stderr closed, no tool writes a message into the channel's files" {
	chpub "$CH" a b c
	choffset --create --earliest "$CH" s >/dev/null
	cp "$CH/00000000000000000000.seg" "$T/seg.before"
	# Errors and warnings with nowhere to go: a full channel (75), a
	# usage error, a subscriber that does not exist.
	closed() { "$@" <&- >&- 2>&-; }
	run -75 closed chpub --max-bytes=50 "$CH" d
	run -2 closed chsub --bogus "$CH" s
	run -66 closed choffset "$CH" nobody-here
	run -0 closed chcompact -v "$CH"
	run -0 closed chlag "$CH"
	# What was there is untouched (the full channel seals the segment:
	# its seal comes after).
	cmp -n "$(stat -c %s "$T/seg.before")" "$CH/00000000000000000000.seg" "$T/seg.before"
	run -0 chcompact --check "$CH"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output $'a\nb\nc'
}
