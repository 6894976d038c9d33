#!/usr/bin/env bats
# chcompact: deleting consumed segments, retention, expiry, --dry-run, and
# safety against concurrent subscribers and offset changes.  (--check and
# --repair: 65-check.bats.)

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/owner"
	common_setup
	CH_BIRTH=-1d new_channel segment_bytes=4096
}
teardown() { ops_teardown; }

# list ARRAY-ELEMENTS...: one per line, to compare with `segments`.
list() { printf '%s\n' "$@"; }

@test "deletes the sealed segments every subscriber has fully consumed" {
	fill 500	# five segments or more in either format
	mapfile -t before < <(segments)
	((${#before[@]} >= 5))
	chsub --from=earliest "$CH" fast >/dev/null
	choffset --create --set="$(base 2)" "$CH" slow >/dev/null
	run -0 --separate-stderr chcompact "$CH"
	assert_output ""
	assert_equal "$stderr" ""
	run -0 segments
	assert_output "$(list "${before[@]:2}")"
	# nothing the slow subscriber still needs went
	run -0 --separate-stderr chsub "$CH" slow
	assert_equal "$stderr" ""
	assert_line -n -1 --partial "rec-500 "
}

@test "keeps a segment that a subscriber has only partly consumed" {
	fill 300
	mapfile -t before < <(segments)
	choffset --create --set="$(base 1)" "$CH" s >/dev/null
	chsub -n 1 "$CH" s >/dev/null	# now inside segment 1
	chcompact "$CH"
	run -0 segments
	assert_output "$(list "${before[@]:1}")"
}

@test "never deletes the active segment, even when everything is consumed" {
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" s >/dev/null
	chcompact "$CH"
	run -0 segments
	assert_output "${before[-1]}"
	chpub "$CH" more
	run -0 chsub "$CH" s
	assert_output "more"
}

@test "deletes nothing when there are no subscribers" {
	fill 300
	mapfile -t before < <(segments)
	run -0 chcompact -v "$CH"
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

@test "a subscriber at the earliest record holds everything back" {
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" fast >/dev/null
	choffset --create --earliest "$CH" slow >/dev/null
	chcompact "$CH"
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

@test "is silent without -v when it deletes; -v says what it deleted" {
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" s >/dev/null
	cp -a "$CH" "$T/copy"
	run -0 --separate-stderr chcompact "$CH"
	assert_output ""
	assert_equal "$stderr" ""
	CH="$T/copy"
	run -0 --separate-stderr chcompact -v "$CH"
	assert_output ""
	[[ $stderr == *"chcompact: $CH: deleting ${before[0]} ("*", consumed by all subscribers)"* ]]
	local n=$((${#before[@]} - 1)) s=s
	((n != 1)) || s=
	[[ $stderr == *"chcompact: $CH: deleted $n segment$s ("* ]]
}

@test "--dry-run names what would go and who holds the rest back, and changes nothing" {
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" fast >/dev/null
	choffset --create --set="$(base 2)" "$CH" slow >/dev/null
	run -0 --separate-stderr chcompact --dry-run "$CH"
	assert_equal "$stderr" ""
	assert_line -n 0 --regexp "^$CH: would delete ${before[0]} \(.*, consumed by all subscribers\)$"
	assert_line -n 1 --regexp "^$CH: would delete ${before[1]} \("
	assert_line -n 2 --regexp "^$CH: keeping ${before[2]} and later: held back by subscriber 'slow' \(lag [0-9]+ records, idle [0-9]+m?s\)$"
	assert_equal "${#lines[@]}" 3
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

@test "--dry-run: when every sealed segment would go, it names the active segment as what keeps the rest" {
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" s >/dev/null
	run -0 --separate-stderr chcompact --dry-run "$CH"
	assert_equal "$stderr" ""
	local i n=$((${#before[@]} - 1))
	for ((i = 0; i < n; i++)); do
		assert_line -n "$i" --regexp "^$CH: would delete ${before[i]} \("
	done
	assert_line -n "$n" "$CH: keeping ${before[n]}: the active segment"
	assert_equal "${#lines[@]}" $((n + 1))
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

@test "-v gives the summary also when nothing was due, in the singular for one" {
	fill 300
	chsub --from=earliest "$CH" s >/dev/null
	choffset --create --set="$(base 1)" "$CH" slow >/dev/null
	run -0 --separate-stderr chcompact -v "$CH"
	[[ $(tail -n 1 <<<"$stderr") =~ ^"chcompact: $CH: deleted 1 segment ("[^\)]*"), expired 0 subscribers"$ ]]
	run -0 --separate-stderr chcompact -v "$CH"
	assert_equal "$stderr" "chcompact: $CH: deleted 0 segments (0 B), expired 0 subscribers"
}

@test "a segment file missing in the middle (lost, or removed by hand): nothing changed, 65, the older segments kept in the index" {
	fill 500
	mapfile -t before < <(segments)
	((${#before[@]} >= 4))
	choffset --create --earliest "$CH" s >/dev/null
	chsub -n 10 "$CH" s >/dev/null
	cp "$CH/index" "$T/index.before"
	# the one the search for the first segment still there looks at
	# first (the index's middle entry): missing, it took the older ones
	# for deleted too
	local o m=$(((${#before[@]} - 1) / 2))
	rm "$CH/${before[m]}"
	for o in -v -n --max-bytes=1 --expire=1s; do
		run -65 --separate-stderr chcompact $o "$CH"
		assert_equal "$stderr" "chcompact: $CH: segment ${before[0]} is there but a later one in the index is missing: nothing changed (chcompact --check names it)"
		cmp "$CH/index" "$T/index.before"
		run -0 segments
		assert_output "$(list "${before[@]:0:m}" "${before[@]:m+1}")"
		run -0 choffset "$CH"
		assert_output --regexp "^s [0-9]+$"
	done
}

@test "--dry-run: a commit stamped ahead of the clock (the clock stepped back since) is idle 0, not negative" {
	fill 300
	mapfile -t before < <(segments)
	faketime -f +1h choffset --create --earliest "$CH" s >/dev/null
	run -0 --separate-stderr chcompact --dry-run --expire=1m "$CH"
	assert_output "$CH: keeping ${before[0]} and later: held back by subscriber 's' (lag 300 records, idle 0ms)"
}

@test "--dry-run says that nothing goes without subscribers" {
	fill 100
	run -0 chcompact -n "$CH"
	assert_output "$CH: keeping $(segments | head -1) and later: no subscribers (only retention deletes without subscribers)"
}

@test "--max-age deletes segments whose newest record is older, and says who lost how much" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300 old -2h
	fill 5 new
	keep=$(segment_of "$(record_offset new-1)")
	mapfile -t before < <(segments)
	[[ $keep != "${before[0]}" ]]
	run -0 --separate-stderr chcompact --max-age=1h "$CH"
	assert_output ""
	run -0 segments
	assert_output "$(list "${before[@]}" | sed -n "/^$keep\$/,\$p")"
	# the records not kept are lost to s (all 300 old ones when the new
	# records began a segment of their own: how chpub's reads of the pipe
	# cut the appends decides that)
	lost=$((305 - $(chsub --peek --from=earliest "$CH" | wc -l)))
	((lost > 0))
	[[ $stderr == "chcompact: $CH: subscriber 's' lost $lost unread records ("*") to retention" ]]
}

@test "--max-age keeps a segment that holds old records if its newest record is recent" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 3 old -2h
	fill 3 new
	mapfile -t before < <(segments)
	chcompact --max-age=1h "$CH"
	run -0 segments
	assert_output "$(list "${before[@]}")"
	run -0 chsub -n 1 "$CH" s
	assert_output --partial "old-1 "
}

@test "--max-age never deletes the active segment" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300 old -2h
	mapfile -t before < <(segments)
	chcompact -q --max-age=1h "$CH"
	run -0 segments
	assert_output "${before[-1]}"
}

@test "--max-bytes deletes the oldest segments until the rest, active included, fits" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300
	end=$(end_offset)
	mapfile -t before < <(segments)
	run -0 --separate-stderr chcompact --max-bytes=10000 "$CH"
	[[ $stderr == "chcompact: $CH: subscriber 's' lost "*" unread records ("*") to retention" ]]
	(( end - $(base 0) <= 10000 ))
	# and not one segment more than needed went
	prev=${before[$(( ${#before[@]} - $(segments | wc -l) - 1 ))]}
	(( end - 10#${prev%.seg} > 10000 ))
}

@test "--max-bytes never deletes the active segment" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300
	mapfile -t before < <(segments)
	chcompact -q --max-bytes=1 "$CH"
	run -0 segments
	assert_output "${before[-1]}"
}

@test "retention comes from channel.yaml, and the command line overrides it" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300
	mapfile -t before < <(segments)
	set_retention max_bytes 10000
	chcompact -q --max-bytes=0 "$CH"	# 0: no limit, for this run
	run -0 segments
	assert_output "$(list "${before[@]}")"
	chcompact -q "$CH"
	(( $(segments | wc -l) < ${#before[@]} ))
	(( $(end_offset) - $(base 0) <= 10000 ))
}

@test "retention.max_age in channel.yaml applies" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300 old -2h
	mapfile -t before < <(segments)
	set_retention max_age 1h
	chcompact -q "$CH"
	run -0 segments
	assert_output "${before[-1]}"
}

@test "a subscriber behind removed data is told how much it skipped when it next reads" {
	choffset --create --earliest "$CH" s >/dev/null
	fill 300
	chcompact -q --max-bytes=10000 "$CH"
	start=$(base 0)
	first=$(chsub --peek --from=earliest "$CH" | head -1)
	first=${first%% *}
	run -0 --separate-stderr chsub -n 1 "$CH" s
	assert_output --partial "$first "
	assert_equal "$stderr" "chsub: $CH: subscriber is behind the earliest record: skipping $start bytes ($((${first#rec-} - 1)) records) removed by retention, continuing at offset $start"
}

@test "an offset file that disagrees with the data (past the end, off a boundary, wrong record number) holds everything back, with a warning" {
	local kind want
	fill 300
	mapfile -t before < <(segments)
	chsub --from=earliest "$CH" s >/dev/null
	end=$(end_offset)
	cp "$CH/subscribers/s/offset" "$T/good"
	for kind in past boundary seq copied; do
		cp "$T/good" "$CH/subscribers/s/offset"
		case $kind in
		past) doctor_offset s offset $((end + 4000))
		      want="offset $((end + 4000)) is past the end of the channel ($end)" ;;
		boundary) doctor_offset s offset $(($(base 2) + 5))
		      want="offset $(($(base 2) + 5)) is not on a record boundary" ;;
		seq) doctor_offset s seq 0
		      want="offset file says record 0 at offset $end, the channel has record 300 there" ;;
		copied)	# restored from a longer channel
		      mkdir "$T/other" && cp -a "$CH" "$T/other/ch"
		      CH=$T/other/ch fill 300 other
		      CH=$T/other/ch chsub "$T/other/ch" s >/dev/null
		      cp "$T/other/ch/subscribers/s/offset" "$CH/subscribers/s/offset"
		      want="offset $(CH=$T/other/ch end_offset) is past the end of the channel ($(end_offset))" ;;
		esac
		run -0 --separate-stderr chcompact "$CH"
		assert_equal "$stderr" "chcompact: $CH: subscriber 's': $want; keeping everything it may still need: fix it with chcompact --repair or choffset --set"
		run -0 segments
		assert_output "$(list "${before[@]}")"
		run -0 --separate-stderr chcompact -n "$CH"
		assert_output "$CH: keeping ${before[0]} and later: held back by subscriber 's' (its offset file cannot be trusted)"
	done
	# once fixed, it counts again
	choffset --latest "$CH" s >/dev/null
	run -0 --separate-stderr chcompact "$CH"
	assert_equal "$stderr" ""
	run -0 segments
	assert_output "${before[-1]}"
}

@test "retention deletes what a subscriber whose offset file cannot be trusted may need, and says so instead of claiming to keep it" {
	fill 300
	choffset --create --earliest "$CH" a >/dev/null
	choffset --create --earliest "$CH" b >/dev/null
	choffset --create --earliest "$CH" c >/dev/null
	echo garbage >"$CH/subscribers/b/offset"
	doctor_offset c offset 5	# inside the first record
	run -0 --separate-stderr chcompact -n --max-bytes=8K "$CH"
	planned=("${stderr_lines[@]}")
	run -0 --separate-stderr chcompact --max-bytes=8K "$CH"
	kept=$(base 0)
	((kept > 0))
	assert_equal "${planned[0]}" "chcompact: $CH: subscriber 'b': offset file is not a chtools offset file (format 1); it may lose unread records to retention: everything before offset $kept"
	[[ ${planned[1]} == "chcompact: $CH: subscriber 'c': offset 5 is not on a record boundary; it may lose unread records to retention: from offset 5 to $kept ("*"): fix it with chcompact --repair or choffset --set" ]]
	assert_equal "${stderr_lines[0]}" "chcompact: $CH: subscriber 'b': offset file is not a chtools offset file (format 1); it may have lost unread records to retention: everything before offset $kept"
	[[ ${stderr_lines[1]} == "chcompact: $CH: subscriber 'c': offset 5 is not on a record boundary; it may have lost unread records to retention: from offset 5 to $kept ("*"): fix it with chcompact --repair or choffset --set" ]]
	[[ ${stderr_lines[2]} == "chcompact: $CH: subscriber 'a' lost "*" unread records ("*") to retention" ]]
	refute [ "${#stderr_lines[@]}" -gt 3 ]
	# With retention set but deleting nothing more, it says what it keeps.
	run -0 --separate-stderr chcompact --max-bytes=8K "$CH"
	assert_equal "${stderr_lines[0]}" "chcompact: $CH: subscriber 'b': offset file is not a chtools offset file (format 1); keeping everything it may still need that retention does not delete"
}

@test "--expire leaves a subscriber alone whose offset file disagrees with the data: its time cannot be believed either" {
	fill 300
	mapfile -t before < <(segments)
	faketime -f '-2h' chsub --from=earliest "$CH" s >/dev/null
	doctor_offset s offset 999999
	run -0 --separate-stderr chcompact --expire=1h "$CH"
	[[ $stderr == "chcompact: $CH: subscriber 's': offset 999999 is past the end"* ]]
	run -0 choffset "$CH"
	assert_output "s 999999"
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

# The offset file of an idle subscriber becomes unreadable after the pass
# read it and before --expire reads it again under the subscriber's lock
# (the shim damages it just before that read: the third open of a file
# named offset, after the pass read busy's and idle's).  It used to stop counting at all, so the busy
# subscriber alone decided what was consumed, and the idle one's unread
# segments were deleted.
@test "--expire: an offset file that becomes unreadable during the pass holds back deletion like one unreadable from the start" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	fill 300
	mapfile -t before < <(segments)
	faketime -f '-2h' chsub -n 1 --from=earliest "$CH" idle >/dev/null
	chsub --from=earliest "$CH" busy >/dev/null
	run -0 --separate-stderr env CHFAULT_RUN_AT="open:offset:3" \
	    CHFAULT_RUN="echo damaged >'$CH/subscribers/idle/offset'" \
	    LD_PRELOAD="$CHFAULT" chcompact --expire=1h "$CH"
	assert_equal "$(cat "$CH/subscribers/idle/offset")" damaged
	[[ $stderr == *"subscriber 'idle'"*"keeping everything it may still need"* ]] ||
		fail "no warning about idle: $stderr"
	run -0 segments
	assert_output "$(list "${before[@]}")"
}

@test "--expire deregisters subscribers idle for longer, and journals it" {
	fill 10
	faketime -f '-2h' chsub --from=earliest "$CH" idle >/dev/null
	chsub --from=earliest "$CH" busy >/dev/null
	run -0 --separate-stderr chcompact --expire=1h "$CH"
	assert_equal "$stderr" ""
	run -0 choffset "$CH"
	assert_output "busy $(end_offset)"
	run -0 choffset --history "$CH" idle
	assert_output --regexp "expire +idle +$(end_offset) -> - +expired: no commit or run for 2h00m \(expire 1h00m\) +\(chcompact\["
}

@test "--expire with a journal that cannot be written still expires, counts and says so" {
	fill 300
	mapfile -t before < <(segments)
	faketime -f '-2h' choffset --create --earliest "$CH" idle >/dev/null
	chsub --from=earliest "$CH" busy >/dev/null
	rm "$CH/journal"
	mkdir "$CH/journal"
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"chcompact: $CH: expired subscriber 'idle', but the journal could not be written: journal: Is a directory"* ]]
	[[ $stderr == *"expired 1 subscriber"* ]]
	run -0 choffset "$CH"
	assert_output "busy $(end_offset)"
	# and it no longer held anything back in that same run
	run -0 segments
	assert_output "${before[-1]}"
}

@test "--expire says what it expired with -v" {
	faketime -f '-2h' chsub "$CH" idle >/dev/null
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"chcompact: $CH: expired subscriber 'idle' (no commit or run for 2h00m)"* ]]
}

# A consumer run from cron on a quiet channel commits nothing new: its
# offset's time stays where its last record was read.  --expire took it
# for gone for good, and its next run registered it again at the end,
# skipping what was published meanwhile.
@test "--expire never expires a subscriber that runs but has nothing new to commit" {
	fill 10
	faketime -f '-2h' chsub --from=earliest "$CH" cron >/dev/null
	run -0 chsub "$CH" cron
	assert_output ""
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr != *"expired subscriber"* ]] || fail "expired: $stderr"
	chpub "$CH" important >/dev/null
	run -0 chsub "$CH" cron
	assert_output "important"
}

@test "--expire judges a subscriber by the newer of its last commit and its last run" {
	faketime -f '-3h' chsub "$CH" gone >/dev/null
	faketime -f '-2h' chsub "$CH" gone >/dev/null
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"chcompact: $CH: expired subscriber 'gone' (no commit or run for 2h00m)"* ]] ||
		fail "not expired after its last run: $stderr"
	run -0 choffset "$CH"
	assert_output ""
}

# A run with nothing new between the pass's look at the subscriber and
# --expire taking its lock (the shim runs it just before the fourth open
# of its directory, that of taking the lock): the stamp is looked at
# again under the lock.
@test "--expire does not expire a subscriber that ran while the pass looked at it" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	faketime -f '-2h' chsub "$CH" cron >/dev/null
	run -0 --separate-stderr env CHFAULT_RUN_AT="open:cron:4" \
	    CHFAULT_RUN="chsub '$CH' cron >'$T/out'" \
	    LD_PRELOAD="$CHFAULT" chcompact -v --expire=1h "$CH"
	[[ $stderr == *"not expiring subscriber 'cron': it committed or ran meanwhile"* ]] ||
		fail "not said: $stderr"
	run -0 choffset "$CH"
	assert_output "cron $(end_offset)"
}

# Deleted between the pass's look at it and --expire taking its lock (the
# shim removes it just before the third open of its directory): taking
# the lock used to make the directory again, a bare one left behind.
@test "--expire does not bring back a subscriber deleted meanwhile as a bare directory" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	faketime -f '-2h' chsub "$CH" idle >/dev/null
	run -0 --separate-stderr env CHFAULT_RUN_AT="open:idle:3" \
	    CHFAULT_RUN="rm -r '$CH/subscribers/idle'" \
	    LD_PRELOAD="$CHFAULT" chcompact -v --expire=1h "$CH"
	assert_not_exist "$CH/subscribers/idle"
	run -0 choffset "$CH"
	assert_output ""
}

# lockless_old: subscriber "old", registered 2h ago, whose lock file is
# gone; would_expire_old: --expire=1h's plan says it goes.
lockless_old() {
	faketime -f '-2h' choffset --create --earliest "$CH" old >/dev/null
	rm "$CH/subscribers/old/lock"
}
would_expire_old() {
	run -0 chcompact -n --expire=1h "$CH"
	assert_line -n 0 "$CH: would expire subscriber 'old' (no commit or run for 2h00m, expire is 1h00m)"
}

# An offset file without its lock file (restored from a backup, the lock
# removed in a cleanup): --expire taking the lock created it, stamped now,
# and then read that stamp as a run meanwhile, so the dry run's "would
# expire" never happened, and the stamp kept it another whole period.
@test "--expire expires a subscriber whose lock file is missing, as --dry-run says" {
	lockless_old
	would_expire_old
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"chcompact: $CH: expired subscriber 'old' (no commit or run for 2h00m)"* ]] ||
		fail "not expired: $stderr"
	[[ $stderr != *"not expiring"* ]] || fail "$stderr"
	run -0 choffset "$CH"
	assert_output ""
	assert_not_exist "$CH/subscribers/old"
}

@test "choffset taking the lock of a subscriber whose lock file is missing (an idempotent --create) does not make it look run: --expire still expires it" {
	lockless_old
	run -0 choffset --create "$CH" old
	assert_exist "$CH/subscribers/old/lock"
	would_expire_old
}

# The same, but its deregistration fails (the rename): the lock file the
# pass made is left, and must not read as a run then either.
@test "--expire: a lock file it made for a subscriber it could not expire does not keep it" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	lockless_old
	run -1 --separate-stderr env CHFAULT_FAIL=renameat:1:EIO \
	    LD_PRELOAD="$CHFAULT" chcompact -v --expire=1h "$CH"
	[[ $stderr == *"delete subscriber 'old': Input/output error"* ]] ||
		fail "did not fail: $stderr"
	assert_exist "$CH/subscribers/old/lock"
	run -0 choffset "$CH"
	assert_output "old 0"
	would_expire_old
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"chcompact: $CH: expired subscriber 'old' (no commit or run for 2h00m)"* ]] ||
		fail "not expired: $stderr"
	run -0 choffset "$CH"
	assert_output ""
}

@test "--expire that an error keeps from deregistering a subscriber says so, keeps what it needs, finishes the pass and exits 1" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	fill 300
	mapfile -t before < <(segments)
	cp -a "$CH" "$T/two"
	faketime -f '-2h' choffset --create --earliest "$CH" old >/dev/null
	chsub --from=earliest "$CH" busy >/dev/null
	chsub --from=earliest "$T/two" busy >/dev/null
	# The first look at a lock file's stamp (old's) fails.
	run -1 --separate-stderr env CHFAULT_FAIL=fstatat:1:EIO \
	    CHFAULT_FAIL_PATH=lock LD_PRELOAD="$CHFAULT" \
	    chcompact --expire=1h "$CH" "$T/two"
	assert_equal "$stderr" "chcompact: $CH: not expiring subscriber 'old': subscriber 'old': subscribers/old/lock: Input/output error"
	run -0 choffset "$CH"
	assert_output "busy $(end_offset)
old 0"
	run -0 segments
	assert_output "$(list "${before[@]}")"
	# the next channel was compacted all the same
	run -0 segments "$T/two"
	assert_output "${before[-1]}"
	# and so is this one, once the error is gone
	run -0 --separate-stderr chcompact --expire=1h "$CH"
	assert_equal "$stderr" ""
	run -0 segments
	assert_output "${before[-1]}"
}

@test "--expire never expires a subscriber whose chsub is running" {
	faketime -f '-2h' chsub "$CH" idle >/dev/null
	hold idle
	# as a chsub -f started two hours ago, waiting since on a quiet channel
	touch -d '2 hours ago' "$CH/subscribers/idle/lock"
	run -0 --separate-stderr chcompact -v --expire=1h "$CH"
	[[ $stderr == *"not expiring subscriber 'idle': idle 2h00m but a chsub is running for it"* ]]
	run -0 choffset "$CH"
	assert_output "idle $(end_offset)"
}

@test "expire in channel.yaml applies" {
	faketime -f '-2h' chsub "$CH" idle >/dev/null
	set_config expire 1h
	chcompact "$CH"
	run -0 choffset "$CH"
	assert_output ""
}

@test "--expire --dry-run names the subscriber and deregisters nothing" {
	faketime -f '-2h' chsub "$CH" idle >/dev/null
	run -0 chcompact -n --expire=1h "$CH"
	assert_line -n 0 "$CH: would expire subscriber 'idle' (no commit or run for 2h00m, expire is 1h00m)"
	run -0 choffset "$CH"
	assert_output "idle $(end_offset)"
}

@test "an offset file that cannot be read for permission holds back deletion, is named, and makes the exit status 1 (damage: 0)" {
	need_owner
	own_channel "$T/own"
	as_nobody chsub --from=earliest "$OWN" done >/dev/null
	as_nobody choffset --create --earliest "$OWN" s >/dev/null
	as_nobody chmod 000 "$OWN/subscribers/s/offset"
	mapfile -t mine < <(segments "$OWN")
	run -1 --separate-stderr as_nobody chcompact --expire=1s "$OWN"
	assert_equal "$stderr" "chcompact: $OWN: subscriber 's': offset: Permission denied; keeping everything it may still need"
	assert_equal "$(segments "$OWN")" "$(list "${mine[@]}")"
	# a damaged one holds back as well, and is no failure of the run
	as_nobody chmod 644 "$OWN/subscribers/s/offset"
	as_nobody sh -c 'echo garbage >"$1"' _ "$OWN/subscribers/s/offset"
	run -0 --separate-stderr as_nobody chcompact "$OWN"
	[[ $stderr == "chcompact: $OWN: subscriber 's': "*"; keeping everything it may still need"* ]] || fail "$stderr"
	assert_equal "$(segments "$OWN")" "$(list "${mine[@]}")"
}

@test "an expired subscriber no longer holds compaction back" {
	fill 300
	mapfile -t before < <(segments)
	faketime -f '-2h' choffset --create --earliest "$CH" idle >/dev/null
	chsub --from=earliest "$CH" busy >/dev/null
	chcompact --expire=1h "$CH"
	run -0 segments
	assert_output "${before[-1]}"
}

@test "compacts several channels in one call" {
	fill 300
	chsub --from=earliest "$CH" s >/dev/null
	one=$CH
	CH="$T/two"
	new_channel segment_bytes=4096
	fill 300
	chsub --from=earliest "$CH" s >/dev/null
	run -0 chcompact "$one" "$CH"
	(( $(segments "$one" | wc -l) == 1 ))
	(( $(segments | wc -l) == 1 ))
}

@test "a missing channel among several fails with 66, the others are still compacted" {
	fill 300
	chsub --from=earliest "$CH" s >/dev/null
	run -66 --separate-stderr chcompact "$T/missing" "$CH"
	[[ $stderr == "chcompact: $T/missing: "* ]]
	(( $(segments | wc -l) == 1 ))
}

@test "a bad channel.yaml fails with 78" {
	echo 'segment_bytes: [' >"$CH/channel.yaml"
	run -78 --separate-stderr chcompact "$CH"
	[[ $stderr == "chcompact: $CH: "*"channel.yaml:"* ]]
}

@test "bad option values are usage errors" {
	run -2 --separate-stderr chcompact --max-age=soon "$CH"
	[[ $stderr == "chcompact: --max-age: invalid duration 'soon'"* ]]
	run -2 --separate-stderr chcompact --max-bytes=lots "$CH"
	[[ $stderr == "chcompact: --max-bytes: invalid size 'lots'"* ]]
	run -2 --separate-stderr chcompact --expire=x "$CH"
	[[ $stderr == "chcompact: --expire: invalid duration 'x'"* ]]
}

@test "waits for another compaction, and gives up with 75 after --wait" {
	exec 7>"$CH/compact.lock"
	flock -x 7
	run -75 --separate-stderr timeout 10 chcompact --wait=200ms "$CH"
	[[ $stderr == "chcompact: $CH: compaction lock is busy"* ]]
	exec 7>&-
	run -0 timeout 10 chcompact --wait=200ms "$CH"
}

@test "concurrent chsub and choffset never see data reclaimed before it was consumed" {
	fill 200
	choffset --create --earliest "$CH" s >/dev/null
	# A pause per round so that the loop does not starve the rest.
	start_bg bash -c 'while :; do chcompact "$1" || echo "chcompact exit $?"; sleep 0.05; done' \
		_ "$CH" 2>"$T/compact.err"
	start_bg bash -c "$(declare -f fill)"'
		CH=$1; for i in $(seq 40); do fill 20 "more$i"; done' _ "$CH" 2>"$T/pub.err"
	pub=$BG
	start_bg bash -c 'for i in $(seq 60); do
			choffset --shift=-40 "$1" s
			choffset --earliest "$1" s
			choffset --export "$1" >"$2/saved"
			choffset --import "$2/saved" "$1"
		done; true' _ "$CH" "$T" >/dev/null 2>"$T/offset.err"
	off=$BG
	for i in $(seq 80); do
		timeout 10 chsub --wait -n 25 "$CH" s >/dev/null 2>>"$T/sub.err" ||
			echo "chsub exit $?" >>"$T/sub.err"
	done
	# Both loops are finite.  (The offset loop's status is not its last
	# choffset's: one that found s busy exits 75, and its message is
	# allowed below.)
	wait "$pub"
	wait "$off"
	run -0 cat "$T/pub.err"
	assert_output ""
	# the compaction loop, still running, reclaims what s has consumed
	# (on a loaded machine the resets above may have held it back so far)
	chsub "$CH" s >/dev/null 2>>"$T/sub.err"
	reclaimed() { (( $(base 0) > 0 )); }
	wait_for 30 reclaimed
	run -0 cat "$T/sub.err"
	assert_output ""
	run grep -v -e 'held by a running chsub' -e 'is busy' -e 'clamped' \
		-e 'below the earliest record' "$T/offset.err"
	assert_output ""
	run -0 cat "$T/compact.err"
	assert_output ""
}

@test "a chpub that stays open while another rolls over and compaction deletes its segment goes on in the newest one (records not lost in a segment made again)" {
	choffset --create --earliest "$CH" s >/dev/null
	mkfifo "$T/in"
	exec 5<>"$T/in"		# read-write: opening it does not block
	chpub "$CH" <"$T/in" 3>&- 5>&- &
	local pub=$!
	BG_PIDS+=("$pub")
	echo a1 >&5
	wait_until 10 '[ "$(chsub --peek --from=earliest "$CH")" = a1 ]'
	# Another writer rolls over past the open writer's segment, all is
	# consumed, and compaction deletes every sealed segment.
	fill 300 b
	(($(segments | wc -l) > 2)) || fail "no rollover"
	first=$(segments | head -n 1)
	chsub "$CH" s >/dev/null
	run -0 chcompact "$CH"
	assert_not_exists "$CH/$first"
	echo a2 >&5
	echo a3 >&5
	exec 5>&-
	wait_for 10 eval '! kill -0 '"$pub"' 2>/dev/null'
	run wait "$pub"
	assert_equal "$status" 0
	run -0 chsub "$CH" s
	assert_output $'a2\na3'
	run -0 chcompact --check "$CH"
}

@test "segment_age: an active segment whose first record is older is sealed and, once consumed, deleted; --dry-run plans just that and changes nothing" {
	set_config segment_age 1m
	choffset --create --earliest "$CH" s >/dev/null
	fill 5 old -2m		# stamped two minutes ago, in the one segment
	local seg
	seg=$(segments)
	chsub "$CH" s >/dev/null
	run -0 --separate-stderr chcompact --dry-run "$CH"
	assert_line -n 0 "$CH: would seal the active segment (older than segment_age)"
	assert_line -n 1 --regexp "^$CH: would delete $seg \(.*, consumed by all subscribers\)$"
	assert_equal "$(segments)" "$seg"
	run -0 --separate-stderr chcompact -v "$CH"
	[[ $stderr == *"sealed the active segment (older than segment_age)"* ]] || fail "$stderr"
	[[ $stderr == *"deleting $seg ("*"consumed by all subscribers)"* ]] || fail "$stderr"
	assert_not_exist "$CH/$seg"
	# A young one stays as it is.
	fill 2 new
	run -0 --separate-stderr chcompact --dry-run "$CH"
	refute_output --partial "would seal"
}

# rm -rf of the channel while chcompact works on it (the shim removes it
# just before its first open of the index): it used to exit 65, "segment
# index: No such file or directory", and --check counted a problem.
@test "a channel removed while chcompact, --check or --repair works on it: 66, channel removed" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	local opt
	for opt in --dry-run --check --repair; do
		rm -rf "$CH"
		new_channel
		chpub "$CH" a
		CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:index:1 \
		    LD_PRELOAD="$CHFAULT" run -66 --separate-stderr chcompact $opt "$CH"
		assert_equal "$stderr" "chcompact: $CH: channel removed"
		assert_not_exist "$CH"
	done
}

# Channels owned by another user, with root's chcompact (a root crontab):
# helpers/owner.bash.
@test "run by root on a channel another user owns, chcompact refuses (1) to compact, apply retention, expire, seal by segment_age or repair it, changing nothing; the other channels named are compacted; the owner compacts it" {
	need_owner
	own_channel "$T/own"
	as_nobody sed -i 's/^segment_age:.*/segment_age: 1h/' "$OWN/channel.yaml"
	as_nobody chsub --from=earliest "$OWN" s >/dev/null
	mapfile -t mine < <(segments "$OWN")
	((${#mine[@]} >= 4))
	# root's own channel, consumed: compacted as before
	fill 300
	chsub --from=earliest "$CH" s >/dev/null
	mapfile -t before < <(segments)
	tree_state "$OWN" >"$T/state.before"
	run -1 --separate-stderr chcompact "$OWN" "$CH"
	assert_output ""
	assert_equal "$stderr" "$(refusal chcompact "$OWN")"
	assert_equal "$(segments)" "${before[-1]}"
	local opt
	for opt in -v -q --max-age=1s --max-bytes=1 --expire=1s --wait=0 --repair; do
		run -1 --separate-stderr chcompact $opt "$OWN"
		assert_equal "$stderr" "$(refusal chcompact "$OWN")"
	done
	# a channel given after it is still compacted
	fill 300
	chsub "$CH" s >/dev/null
	run -1 --separate-stderr chcompact -v "$OWN" "$CH"
	[[ ${stderr_lines[0]} == "$(refusal chcompact "$OWN")" ]] || fail "$stderr"
	[[ $stderr == *$'\n'"chcompact: $CH: deleted "* ]] || fail "$stderr"
	run -0 diff "$T/state.before" <(tree_state "$OWN")
	run -0 find "$OWN" -not -user 65534
	assert_output ""
	# The owner compacts it (sealing the aged active segment), and
	# publishes across a rollover, registers and compacts on.
	run -0 --separate-stderr as_nobody chcompact -v "$OWN"
	[[ $stderr == *"sealed the active segment (older than segment_age)"* ]] || fail "$stderr"
	[[ $stderr == *"deleting ${mine[0]} ("*"consumed by all subscribers)"* ]] || fail "$stderr"
	recs 300 more | as_nobody chpub "$OWN"
	as_nobody chsub --from=earliest "$OWN" t >/dev/null
	as_nobody choffset --create "$OWN" u >/dev/null
	as_nobody chsub "$OWN" s >/dev/null
	run -0 as_nobody chcompact "$OWN"
	run -0 find "$OWN" -not -user 65534
	assert_output ""
	run -0 chcompact --check "$OWN"
}

@test "run by root on a channel another user owns, --check and --dry-run work and change nothing: no compact.lock of root's (the owner's chsub could not register)" {
	need_owner
	own_channel "$T/own"
	as_nobody sed -i 's/^segment_age:.*/segment_age: 1h/' "$OWN/channel.yaml"
	assert_not_exist "$OWN/compact.lock"
	tree_state "$OWN" >"$T/state.before"
	run -0 chcompact --dry-run "$OWN"
	assert_line "$OWN: would seal the active segment (older than segment_age)"
	run -0 chcompact -n --max-age=1s --expire=1s "$OWN"
	assert_line --regexp "^$OWN: would delete [0-9]+\.seg \(.*, older than max_age\)$"
	run -0 --separate-stderr chcompact --check "$OWN"
	assert_equal "$stderr" ""
	run -0 diff "$T/state.before" <(tree_state "$OWN")
	assert_not_exist "$OWN/compact.lock"
	# the owner registers (taking compact.lock, its own), and root's
	# dry run plans with it
	run -0 as_nobody chsub --from=earliest "$OWN" s
	tree_state "$OWN" >"$T/state.before"
	run -0 chcompact -n "$OWN"
	assert_line --regexp "^$OWN: would delete [0-9]+\.seg \(.*, consumed by all subscribers\)$"
	run -0 chcompact --check "$OWN"
	run -0 diff "$T/state.before" <(tree_state "$OWN")
	run -0 find "$OWN" -not -user 65534
	assert_output ""
}

@test "a channel shared by a group (channel(5) PERMISSIONS): a member who is not the owner compacts it, sealing by segment_age, and the owner goes on; root is refused there under umask 022" {
	need_owner
	getent group 65534 >/dev/null || skip "no group 65534"
	member() { setpriv --reuid=4242 --regid=4242 --groups=65534 "$@"; }
	mkdir "$T/shared"
	chown 65534:65534 "$T/shared"
	chmod 2775 "$T/shared"
	OWN=$T/shared/c
	as_nobody bash -c 'umask 002
		faketime -f -2d chpub "$1" </dev/null &&
		sed -i "s/^segment_bytes:.*/segment_bytes: 4096/; s/^segment_age:.*/segment_age: 1h/" "$1/channel.yaml" &&
		chsub "$1" s >/dev/null' _ "$OWN"
	recs 300 own | as_nobody bash -c 'umask 002; faketime -f -1d chpub "$1"' _ "$OWN"
	run -1 --separate-stderr bash -c 'umask 022; chcompact "$1"' _ "$OWN"
	assert_equal "$stderr" "$(refusal chcompact "$OWN" group)"
	# the member publishes, consumes, registers and compacts: the index
	# it rewrites and the segment it starts are its, the group's, 0664
	recs 100 member | member bash -c 'umask 002; faketime -f -1d chpub "$1"' _ "$OWN"
	run -0 --separate-stderr member bash -c 'umask 002
		chsub "$1" s >/dev/null && chsub --from=earliest "$1" m >/dev/null &&
		chcompact -v "$1"' _ "$OWN"
	[[ $stderr == *"sealed the active segment (older than segment_age)"* ]] || fail "$stderr"
	[[ $stderr == *"deleting "* ]] || fail "$stderr"
	assert_equal "$(stat -c '%u:%g %a' "$OWN/index")" "4242:65534 664"
	# the owner publishes across a rollover, registers, compacts
	run -0 as_nobody bash -c 'umask 002
		for i in $(seq 300); do echo "late-$i padding padding padding"; done |
		chpub "$1" && chsub "$1" s >/dev/null && chsub "$1" m >/dev/null &&
		choffset --create "$1" n >/dev/null && chcompact "$1" &&
		chsub --peek "$1" m' _ "$OWN"
	assert_output ""
	run -0 member chsub --peek --from=earliest "$OWN"
	assert_line -n -1 "late-300 padding padding padding"
	run -0 chcompact --check "$OWN"
}
