#!/bin/bash
# check-stress.sh: run the whole suite again and again on a machine that is
# busy, to shake out tests that pass only when the box is idle.  Run by
# `make check-stress` in a configured build tree (a sanitizer build is
# configured with --enable-sanitizers); see tests/RELIABILITY.md.
#
#   STRESS_RUNS=N       full runs (default 20)
#   STRESS_MODES="..."  load for each run, in turn (default "cpu io onecore"):
#                         cpu      stress-ng keeps both cores busy
#                         io       stress-ng adds file-system and sync load
#                         onecore  the suite is pinned to one core (taskset)
#                         idle     no load
#   STRESS_JOBS=N       make -jN for each run (default 2)
#   STRESS_TESTS="..."  only these test files (default: the whole suite)
#   STRESS_LOG=DIR      where the logs of failed runs are kept
#
# Prints one line per run and a summary; exits 1 if any run failed.
set -u
top=$(pwd)
runs=${STRESS_RUNS:-20}
read -r -a modes <<<"${STRESS_MODES:-cpu io onecore}"
jobs=${STRESS_JOBS:-2}
logdir=${STRESS_LOG:-$top/stress-logs}
mkdir -p "$logdir" || exit 1

load_pid=
stop_load() {
	if [[ -n $load_pid ]]; then
		kill "$load_pid" 2>/dev/null
		wait "$load_pid" 2>/dev/null
		load_pid=
	fi
}
trap 'stop_load; exit 130' INT TERM
trap stop_load EXIT

start_load() {
	local what=$1
	command -v stress-ng >/dev/null ||
		{ echo "check-stress: stress-ng is not installed (./bootstrap installs it)" >&2; exit 1; }
	case $what in
	cpu) stress-ng --quiet --cpu 2 --cpu-load 90 --timeout 0 & ;;
	io) stress-ng --quiet --cpu 1 --cpu-load 60 --hdd 1 --hdd-bytes 64M \
		--iomix 1 --iomix-bytes 32M --temp-path "${TMPDIR:-/tmp}" --timeout 0 & ;;
	esac
	load_pid=$!
}

failed_runs=0
streak=0
best=0
for ((i = 1; i <= runs; i++)); do
	mode=${modes[$(((i - 1) % ${#modes[@]}))]}
	prefix=()
	case $mode in
	cpu | io) start_load "$mode" ;;
	onecore) prefix=(taskset -c 0) ;;
	idle) ;;
	*) echo "check-stress: unknown mode '$mode'" >&2; exit 2 ;;
	esac
	started=$SECONDS
	tests=()
	[[ -n ${STRESS_TESTS:-} ]] && tests=(TESTS="$STRESS_TESTS")
	"${prefix[@]}" make -j"$jobs" check "${tests[@]}" >"$logdir/run-$i.log" 2>&1
	rc=$?
	stop_load
	took=$((SECONDS - started))
	if ((rc == 0)); then
		streak=$((streak + 1))
		((streak > best)) && best=$streak
		echo "run $i/$runs ($mode): pass in ${took}s"
		rm -f "$logdir/run-$i.log"
	else
		failed_runs=$((failed_runs + 1))
		streak=0
		mkdir -p "$logdir/run-$i"
		cp tests/*.log "$logdir/run-$i/" 2>/dev/null
		bad=$(grep -l '^not ok' tests/*.log 2>/dev/null | tr '\n' ' ')
		echo "run $i/$runs ($mode): FAIL in ${took}s: ${bad:-see $logdir/run-$i.log}"
		grep -h '^not ok' tests/*.log 2>/dev/null | sed 's/^/    /'
	fi
done
echo "check-stress: $((runs - failed_runs)) of $runs runs passed; longest green streak $best; logs of failures in $logdir"
((failed_runs == 0))
