# Shared setup for the bats suite: libraries, a private temp dir per test,
# bounded waits, and background processes that are always cleaned up.

common_setup() {
	bats_require_minimum_version 1.5.0
	bats_load_library bats-support
	bats_load_library bats-assert
	bats_load_library bats-file
	export HOME="$BATS_TEST_TMPDIR/home"
	mkdir -p "$HOME"
	unset CH_ROOT POSIXLY_CORRECT POSIX_ME_HARDER CH_NOTIFY_POLL NO_COLOR
	export LC_ALL=C
	# python3 snippets that doctor files import crc32c from here (and
	# leave no __pycache__ in the source tree)
	PYTHONPATH="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers${PYTHONPATH:+:$PYTHONPATH}"
	export PYTHONPATH PYTHONDONTWRITEBYTECODE=1
	T="$BATS_TEST_TMPDIR"
	CH="$T/ch"
	BG_PIDS=()
}

# python3: Debian's, whose modules (python3-yaml) ./bootstrap installs,
# whatever python3 comes first on the caller's PATH (a pyenv or virtualenv
# one has modules of its own, or lacks them).
python3() { /usr/bin/python3 "$@"; }

common_teardown() {
	local p
	# Continue only what is stopped (a test's SIGSTOP, CHFAULT_STOP_AT:
	# it would take the TERM only once it runs), and all of them before
	# any TERM: a SIGCONT reaching a sanitizer build while it exits
	# cancels the SIGSTOP of LeakSanitizer's stop-the-world and hangs it
	# for good, and a TERM to one job may end another (a reader's end
	# of a pipe).  A job that does not end takes a KILL.
	# Only jobs still this shell's children: one a test reaped with a
	# bare wait left its number in BG_PIDS, maybe another process's now.
	local own=()
	for p in "${BG_PIDS[@]}"; do
		! own_child "$p" || own+=("$p")
	done
	for p in "${own[@]}"; do
		cont_stopped "$p"
	done
	for p in "${own[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${own[@]}"; do
		end_bg "$p"
	done
	true
}

# own_child PID: PID is a child of this shell (running, stopped or a
# zombie not reaped yet).
own_child() {
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	local ppid
	ppid=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)
	[[ $ppid == "$BASHPID" ]]
}

# cont_stopped PID: SIGCONT to PID if it is stopped (state T), not to one
# that runs or exits (see common_teardown).
cont_stopped() {
	[[ $1 =~ ^[0-9]+$ ]] || return 0
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[[ $state != T ]] || kill -CONT "$1" 2>/dev/null || true
}

# end_bg PID: after its TERM, wait (bounded) for background job PID to
# end, continuing it should it have been stopped meanwhile, then KILL
# it; reap it.
end_bg() {
	wait_for 10 proc_gone "$1" 2>/dev/null || {
		cont_stopped "$1"
		wait_for 5 proc_gone "$1" 2>/dev/null ||
			kill -KILL "$1" 2>/dev/null || true
	}
	wait "$1" 2>/dev/null || true
}

# proc_gone PID: PID has exited (a zombie counts as exited).
proc_gone() {
	local state
	# not a pid (an empty pid file): /proc//stat would be /proc/stat
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	[ -e "/proc/$1/stat" ] || return 0
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) ||
		return 0
	[ -z "$state" ] || [ "$state" = Z ]
}

# bg_running PID: PID is a background job that teardown would stop (not
# reaped yet by wait_exit or stop_bg).
bg_running() {
	local p
	for p in "${BG_PIDS[@]}"; do
		[[ $p == "$1" ]] && return 0
	done
	return 1
}

# forget_bg PID: teardown no longer signals PID, which was reaped (its
# number may be another process's by then).
forget_bg() {
	local keep=() p
	for p in "${BG_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	BG_PIDS=("${keep[@]}")
}

# wait_exit SECONDS PID: wait (bounded) for a background job of this shell
# to end and reap it; its exit status goes to $WST.
wait_exit() {
	wait_for "$1" proc_gone "$2" || return 1
	WST=0
	wait "$2" || WST=$?
	forget_bg "$2"
}

# stop_bg SECONDS PID: stop background job PID now as teardown would
# (SIGCONT only if it is stopped, before SIGTERM: see common_teardown),
# wait for it (bounded; then SIGKILL) and reap it; nothing if it was
# reaped already.
# For a teardown that must stop one process before another (a forwarder
# before its server).
stop_bg() {
	bg_running "$2" || return 0
	own_child "$2" || { forget_bg "$2"; return 0; }	# reaped already
	cont_stopped "$2"
	kill "$2" 2>/dev/null || true
	wait_for "$1" proc_gone "$2" || {
		cont_stopped "$2"
		kill -KILL "$2" 2>/dev/null || true
	}
	wait "$2" 2>/dev/null || true
	forget_bg "$2"
}

# wait_for SECONDS CMD...: poll CMD until it succeeds or time runs out.
# On time out it says on stderr (shown with a failing test) what it
# waited for.  Its locals have odd names: wait_until's expressions are
# evaluated in here and must see the caller's variables.  SECONDS is
# what the wait takes on a machine that is merely busy; it is stretched
# CH_TEST_WAIT_SCALE times (3) because it only bounds a wait that ends
# as soon as its condition holds, and a box with a load of 20 took more
# than 10 s to start python3 and let it bind a socket.
wait_for() {
	local _wf_secs=$(($1 * ${CH_TEST_WAIT_SCALE:-3}))
	local _wf_deadline=$((SECONDS + _wf_secs))
	shift
	until "$@"; do
		if ((SECONDS >= _wf_deadline)); then
			[[ $1 == eval ]] && shift
			echo "# gave up after ${_wf_secs}s waiting for: $*" >&2
			return 1
		fi
		sleep 0.02
	done
}

# wait_until SECONDS 'EXPR': like wait_for, but EXPR is a shell string that
# is evaluated afresh on each try.  Use it whenever the condition holds a
# $(...): in `wait_for 10 test "$(f)" = x` the substitution runs once, at
# the call, and wait_for only polls its stale result.  On time out it
# also shows EXPR's words as last expanded, e.g. `[ 120 = 240 ]`.
wait_until() {
	local _wu_secs=$1
	shift
	wait_for "$_wu_secs" eval "$1" && return 0
	echo "# last seen: $(eval "set -- $1" 2>/dev/null && echo "$*")" >&2
	return 1
}

# timeout [-k SECS] SECS CMD...: timeout(1) as a guard against a hang,
# its limits stretched CH_TEST_WAIT_SCALE times (3) as wait_for's are: it
# ends a command that should have ended long before, on a machine that may
# be busy.  A test that stops a command by time on purpose calls
# `command timeout`.
timeout() {
	local _to_scale=${CH_TEST_WAIT_SCALE:-3} _to_kill=()
	if [[ $1 == -k ]]; then
		_to_kill=(-k "$(($2 * _to_scale))")
		shift 2
	fi
	command timeout "${_to_kill[@]}" "$(($1 * _to_scale))" "${@:2}"
}

# start_bg CMD...: run CMD in the background without bats' fd 3; its pid
# goes to BG_PIDS (killed in teardown) and to $BG.
start_bg() {
	"$@" 3>&- &
	BG=$!
	BG_PIDS+=("$BG")
}

# faketime -f SPEC CMD...: run CMD with the clock moved by SPEC (e.g. -2h),
# through libfaketime preloaded directly, the way sanitizer builds need.
faketime() {
	local lib
	[[ $1 == -f ]] && shift
	for lib in /usr/lib/*/faketime/libfaketime.so.1; do
		[[ -e $lib ]] && break
	done
	[[ -e $lib ]] || { echo "faketime: libfaketime not installed" >&2; return 127; }
	# LeakSanitizer's exit-time check aborts under libfaketime (a futex
	# error), every time: leaks are checked by every other run instead.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	FAKETIME="$1" FAKETIME_DONT_FAKE_MONOTONIC=1 \
		LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" "${@:2}"
}

# strace ARGS...: strace(1), with LeakSanitizer off in sanitizer builds,
# since it cannot work under ptrace.
strace() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		command strace "$@"
}

# need_strace: skip the test where strace cannot trace (ptrace is not
# allowed in some containers).
need_strace() {
	command strace -f -o /dev/null true 2>/dev/null ||
		skip "strace cannot trace processes here"
}

# new_channel [KEY=VALUE...]: create $CH, then set channel.yaml keys.
# With CH_BIRTH set (e.g. -1d), the channel is created that far from now:
# publish times never go below the first segment's creation time, so tests
# that publish "in the past" need a channel born before that.
new_channel() {
	if [[ -n ${CH_BIRTH:-} ]]; then
		faketime -f "$CH_BIRTH" chpub "$CH" </dev/null
	else
		chpub "$CH" </dev/null
	fi
	local kv
	for kv in "$@"; do
		set_config "${kv%%=*}" "${kv#*=}"
	done
}

# set_config KEY VALUE: replace a top-level key in $CH/channel.yaml.
set_config() {
	sed -i "s|^$1:.*|$1: $2|" "$CH/channel.yaml"
	grep -q "^$1: $2\$" "$CH/channel.yaml"
}

# segments [DIR]: the segment files of a channel, oldest first.
segments() {
	(cd "${1:-$CH}" && ls -1 -- *.seg 2>/dev/null)
}

# as_nobody CMD...: run CMD as uid and gid 65534 (nobody, nogroup), after
# need_nobody.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# need_nobody: skip unless this can run commands as 65534, who can reach
# $T.  bats' own temp directories are private: they are opened, not the
# caller's directories above them.
need_nobody() {
	command -v setpriv >/dev/null && as_nobody true 2>/dev/null ||
	    skip "cannot run as uid 65534 here"
	local d=$T
	while chmod o+x "$d" && [[ $d == "$BATS_RUN_TMPDIR"/* ]]; do
		d=$(dirname "$d")
	done
	as_nobody test -x "$T" ||
	    skip "uid 65534 cannot reach $T (a directory above it is not o+x; TMPDIR=/tmp would do)"
}
