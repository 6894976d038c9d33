#!/usr/bin/env bats
# Power-loss crash consistency.  helpers/crash_explore.py records
# workloads of the real tools under strace, replays each trace into the
# crash states the persistence model of tests/RELIABILITY.md allows (a
# power cut keeps any subset of what was not yet synced), and checks each
# state after the tools' own recovery: acknowledged records, subscribers
# and offsets survive, nothing unpublished or torn is delivered, the next
# chpub works and chcompact --check is clean after --repair, no tool
# crashes or hangs.
#
# CH_CRASH_SEED replays a run; CH_CRASH_MAX_STATES caps the distinct states
# checked per workload (a seeded sample beyond it: sanitizer builds);
# CH_CRASH_WORKLOADS names the workloads of the first test (default: every
# small one);
# CH_CRASH_SAMPLES sets how many states of the large workload are drawn
# (make check-long: more); CH_CRASH_FORMATS the channel formats to create
# (CH_FORMAT, comma-separated, default "1,2,3"); CH_CRASH_KEEP=DIR keeps traces and failing
# states for `crash_explore.py replay`.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	EXPLORE="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash_explore.py"
	BROKEN="${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..}/tests/broken"
	need_strace
	SEED=${CH_CRASH_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
}
teardown() { common_teardown; }

# explore ARGS...: run the explorer (seeded); its report goes to the TAP
# log on fd 3 as well as to $output.
explore() {
	run python3 "$EXPLORE" run --seed "$SEED" --tmp "$T" "$@" 3>&-
	local line
	for line in "${lines[@]}"; do
		echo "# $line" >&3
	done
}

@test "every crash state of the small workloads recovers with nothing acknowledged lost" {
	explore
	((status == 0)) || { echo "$output"; false; }
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: 0, seed $SEED "
}

@test "sampled crash states of a long mixed workload recover too" {
	[[ ${CH_CRASH_SAMPLES:-25} != 0 ]] || skip "CH_CRASH_SAMPLES=0"
	explore --workloads mixed --samples "${CH_CRASH_SAMPLES:-25}"
	((status == 0)) || { echo "$output"; false; }
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: 0, seed $SEED "
}

# no_sanitizers: skip a test of the explorer's own checks (not of the
# tools) in a sanitizer build, where exploring every state of a probe
# workload takes minutes: the plain build's pass runs it.
no_sanitizers() {
	! ldd "$BROKEN/chpub" 2>/dev/null | grep -q libasan ||
		skip "the explorer's own check, run by the plain build's pass"
}

# The explorer's own tests: tools built with one ordering broken on
# purpose (tests/broken, CH_TEST_BROKEN_ORDER) must fail it, where the
# real tools pass (the first test and the last).  Small probe workloads,
# every state of them whatever CH_CRASH_MAX_STATES says: a sample could
# miss the failing ones.

@test "the explorer catches a temp file renamed before its data is synced" {
	[[ -x $BROKEN/chsub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=rename-before-fsync explore --bin "$BROKEN" \
	    --workloads commit-once --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "offset file is not a chtools offset file"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "the explorer catches a new segment whose directory entry is never synced" {
	[[ -x $BROKEN/chpub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=segment-no-dirsync explore --bin "$BROKEN" \
	    --workloads roll-once --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "acknowledged records of ch missing"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "the explorer catches a rollover under --sync=none whose new segment does not say the sealed one is unsynced" {
	no_sanitizers
	[[ -x $BROKEN/chpub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=roll-no-flag explore --bin "$BROKEN" \
	    --workloads roll-none-once --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "does not say it was sealed without a sync"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "the explorer catches the flag cleared before the segment sealed without a sync is durable" {
	no_sanitizers
	[[ -x $BROKEN/chpub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=flag-clear-before-sync explore --bin "$BROKEN" \
	    --workloads roll-none-once --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "does not say it was sealed without a sync"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "the explorer catches a sync that makes only the newest of several segments sealed without a sync durable" {
	no_sanitizers
	[[ -x $BROKEN/chpub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=sync-newest-only explore --bin "$BROKEN" \
	    --workloads roll-none-twice --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "acknowledged records of ch missing"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "the explorer catches a torn tail cut without a sync before the batch written after it" {
	no_sanitizers
	[[ -x $BROKEN/chpub ]] || skip "tests/broken not built (make check builds it)"
	CH_BROKEN_ORDER=cut-no-sync explore --bin "$BROKEN" \
	    --workloads torn-cut --max-states 0 --show 2
	assert_equal "$status" 1
	assert_line --partial "does not end with the record the next chpub added"
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: [1-9][0-9]*, "
}

@test "rollovers under --sync=none one after another, then a sync: the real tools pass" {
	no_sanitizers
	explore --workloads roll-none-twice --max-states 0
	((status == 0)) || { echo "$output"; false; }
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: 0, "
}

@test "the probe workloads pass on the real tools" {
	explore --workloads commit-once,roll-once,roll-none-once,torn-cut
	((status == 0)) || { echo "$output"; false; }
	assert_line --regexp "^crash states checked: [1-9][0-9]* \([0-9]+ distinct\), failed: 0, "
}

# hex PATH: PATH as strace -xx prints it (every byte \xNN).
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n' | sed 's/../\\x&/g'; }

# A trace as strace -f writes it on a busy machine: the child of a vfork
# opens the channel directory before its parent's vfork is seen to return
# (the replay once gave it the parent's fds then and failed at its fsync),
# another ends before its parent's vfork is seen to return, and a later
# process gets a pid used before.
@test "the trace replay gives a child the fds of its fork even when strace prints the child's calls first" {
	mkdir -p "$T/w/ch"
	local ch; ch=$(hex "$T/w/ch")
	cat > "$T/trace" <<-TRACE
	100   vfork( <unfinished ...>
	101   execve("\x2fbin\x2fchoffset", ["choffset"], 0x1 /* 1 var */) = 0
	101   openat(AT_FDCWD, "$ch", O_RDONLY|O_DIRECTORY|O_CLOEXEC) = 3<$ch>
	100   <... vfork resumed>) = 101
	101   fsync(3<$ch>) = 0
	101   +++ exited with 0 +++
	100   openat(AT_FDCWD, "$ch", O_RDONLY|O_DIRECTORY|O_CLOEXEC) = 4<$ch>
	100   vfork( <unfinished ...>
	102   fsync(4<$ch>) = 0
	102   +++ exited with 0 +++
	100   <... vfork resumed>) = 102
	100   vfork() = 101
	101   fsync(3<$ch>) = 0
	TRACE
	run python3 - "$TESTS_SRCDIR/helpers" "$T/w" "$T/trace" <<-'PY'
	import sys
	sys.path.insert(0, sys.argv[1])
	import crash_model as M, crash_trace as T
	calls = list(T.parse(sys.argv[3]))
	print(" ".join("%d:%s" % (c.pid, c.name) for c in calls))
	fs = M.FS(sys.argv[2])
	for c in calls:
	    fs.cwd.setdefault(c.pid, fs.root)
	    for ev in fs.apply(c):
	        print(ev.desc)
	PY
	echo "$output"
	assert_line --index 0 "100:vfork 101:execve 101:openat 101:fsync 100:openat 100:vfork 102:fsync 100:vfork 101:fsync"
	assert_line --index 1 "fsync dir ch"
	# (a child that ended before its vfork was seen to return)
	assert_line --index 2 "fsync dir ch"
	# The second child, pid 101 again, inherits no fd 3: the replay says so.
	assert_equal "$status" 1
	assert_line --partial "fsync on fd 3 of $T/w/ch, not seen opened (pid 101)"
}

# A power cut may keep any subset of what was not synced: with few
# operations pending, the model builds every subset, not only single
# deviations and prefixes (a bug that needs two losses together, here
# the second and the fourth of four new names, would pass those).
@test "with few operations pending, every subset of them is a crash state" {
	mkdir -p "$T/w/ch"
	local n f
	: >"$T/trace"
	for n in a b c d; do
		f=$(hex "$T/w/ch/$n")
		printf '100   openat(AT_FDCWD, "%s", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 3<%s>\n100   close(3<%s>) = 0\n' \
		    "$f" "$f" "$f" >>"$T/trace"
	done
	run python3 - "$TESTS_SRCDIR/helpers" "$T/w" "$T/trace" <<-'PY'
	import sys
	sys.path.insert(0, sys.argv[1])
	import crash_model as M, crash_trace as T
	fs = M.FS(sys.argv[2])
	for c in T.parse(sys.argv[3]):
	    fs.cwd.setdefault(c.pid, fs.root)
	    list(fs.apply(c))
	print("pending", len(fs.pending))
	states = set()
	for name, choice in M.variants(fs.pending):
	    tree = fs.materialise(choice)
	    states.add("".join(sorted(k[-1] for k in tree if k.startswith("ch/"))))
	print("states", len(states), " ".join(sorted(states)))
	PY
	echo "$output"
	assert_success
	assert_line --index 0 "pending 4"
	# All 16 subsets of the four names, "ac" among them.
	assert_line --index 1 --partial "states 16 "
	assert_line --index 1 --partial " ac "
}

# bats' timeout, timeout(1) and ^C stop the explorer by a signal: it
# must not leave its workspace and crash states behind (they piled up
# in /dev/shm), nor a tool it was running.
@test "an explorer stopped by SIGTERM removes its workspace and crash states, and stops the tool it ran" {
	mkdir "$T/scratch" "$T/tmp"
	start_bg python3 "$EXPLORE" run --seed 1 --tmp "$T/tmp" \
	    --scratch "$T/scratch" --workloads subscriber,choffset --formats 3
	# (bats' traps keep the background subshell from exec'ing python)
	local pid st=0
	wait_until 30 'pid=$(pgrep -f -P "$BG" crash_explore.py)'
	# Stopped while it checks a crash state (one is materialised under
	# its scratch directory).
	wait_until 60 '[[ -n "$(ls -A "$T"/scratch/crash-state.* 2>/dev/null)" ]]'
	kill -TERM "$pid"
	wait_for 30 proc_gone "$pid"
	wait "$BG" || st=$?
	assert_equal "$st" 143
	assert_equal "$(ls -A "$T/scratch")" ""
	assert_equal "$(ls -A "$T/tmp")" ""
	run -1 pgrep -f "$T/"
}
