#!/bin/bash
# crashtest.sh CHANNEL-PARENT-DIR TEST [ARGS...]: the loops of 80-crash.bats,
# run outside bats (whose per-command DEBUG trap makes long loops slow).
# Prints what went wrong and exits non-zero on the first failure.
# Needs PATH to hold the tools and CHFAULT the shim.
set -euo pipefail
T=$1
shift
CH="$T/ch"
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/crash.bash"
exec 3>&2

# run [-N] [--separate-stderr] CMD...: like bats' run: status, output,
# stderr; with -N, fail unless the status is N.
run() {
	local want= sep=
	while :; do
		case $1 in
		-[0-9]*) want=${1#-}; shift ;;
		--separate-stderr) sep=1; shift ;;
		*) break ;;
		esac
	done
	status=0
	if [[ -n $sep ]]; then
		output=$("$@" 2>"$T/.stderr") || status=$?
		stderr=$(cat "$T/.stderr")
	else
		output=$("$@" 2>&1) || status=$?
		stderr=
	fi
	[[ -z $want ]] || ((status == want)) ||
	    { echo "exit $status, wanted $want: $*"; echo "$output"; echo "$stderr"; return 1; }
}
new_channel() {
	chpub "$CH" </dev/null
	local kv
	for kv in "$@"; do
		sed -i "s|^${kv%%=*}:.*|${kv%%=*}: ${kv#*=}|" "$CH/channel.yaml"
	done
}
segments() { (cd "${1:-$CH}" && ls -1 -- *.seg 2>/dev/null); }
# shim VAR=VALUE... -- CMD...: run CMD with the chfault shim preloaded.
shim() {
	local env=()
	while [[ $1 != -- ]]; do env+=("$1"); shift; done
	shift
	env "${env[@]}" LD_PRELOAD="$CHFAULT" "$@"
}

# calls CMD...: how many file-changing calls CMD makes (it runs for real).
calls() {
	rm -f "$T/trace"
	CHFAULT_TRACE="$T/trace" LD_PRELOAD="$CHFAULT" "$@" >/dev/null
	wc -l <"$T/trace"
}

# after_crash: what must hold after any kill.  The next writer repairs
# the tail and publishes (marker TAG), the channel checks clean apart from
# stale temp files (which --repair removes), the audit subscriber reads on.
after_crash() {
	local tag=$1
	rec "$tag" 1 40 >>"$T/acked"
	rec "$tag" 1 40 | chpub "$CH" || { echo "the next writer failed after $what"; return 1; }
	run --separate-stderr chcompact --check "$CH"
	if ((status != 0)); then
		if ((status != 65)) || grep -v 'temp\|tmp' <<<"$output$stderr" | grep -q .; then
			echo "after $what: chcompact --check exited $status:"
			echo "$output$stderr"
			return 1
		fi
		chcompact --repair "$CH" >/dev/null 2>&1
		chcompact --check "$CH" || { echo "--repair did not fix it after $what"; return 1; }
	fi
	chsub "$CH" audit >>"$T/audit" 2>"$T/audit.err" ||
		{ echo "audit subscriber failed after $what:"; cat "$T/audit.err"; return 1; }
	[[ ! -s $T/audit.err ]] || { echo "audit warned after $what:"; cat "$T/audit.err"; return 1; }
}

random_points() {
	crash_seed
	local points=${CH_CRASH_POINTS:-200} i kind n rc pid sync torn what
	local runs="$T/runs" nrun=0
	mkdir -p "$runs"
	new_channel segment_bytes=4096
	choffset --create --earliest "$CH" audit >/dev/null
	choffset --create --earliest "$CH" s >/dev/null
	: >"$T/acked"
	for ((i = 1; i <= points; i++)); do
		kind=$((RANDOM % 10))
		n=$((1 + RANDOM % 24))
		torn=$((RANDOM % 2))
		case $kind in
		0 | 1 | 2 | 3)	# chpub, killed at the Nth call or after a delay
			local syncs=(none periodic always)
			sync=${syncs[RANDOM % 3]}
			records "p$i" $((1 + RANDOM % 40)) 600 >"$T/batch"
			if ((RANDOM % 5 == 0)); then	# one big record
				rec "p$i" 1 $((5000 + RANDOM * 2)) >"$T/batch"
			fi
			if ((kind < 3)); then
				what="chpub --sync=$sync killed at call $n (torn=$torn)"
				rc=0
				shim CHFAULT_CRASH_AT=$n CHFAULT_TORN=$torn -- \
				    chpub --sync="$sync" "$CH" <"$T/batch" || rc=$?
			else
				what="chpub --sync=$sync killed mid-stream"
				chpub --sync="$sync" "$CH" < <(head -n 5 "$T/batch"
				    sleep 0.005; tail -n +6 "$T/batch") 3>&- &
				pid=$!
				usleep_rand 15
				kill -9 "$pid" 2>/dev/null || true
				rc=0
				wait "$pid" || rc=$?
			fi
			((rc == 0 || rc == 137)) || { echo "$what: exit $rc"; false; }
			((rc != 0)) || cat "$T/batch" >>"$T/acked"
			;;
		4 | 5)	# chsub, killed mid-delivery or mid-commit
			printf -v f '%s/%05d.out' "$runs" $((++nrun))
			rc=0
			if ((kind == 4)); then
				what="chsub killed at call $n (torn=$torn)"
				shim CHFAULT_CRASH_AT=$n CHFAULT_TORN=$torn -- \
				    chsub "$CH" s >"$f" || rc=$?
			else
				what="chsub killed after a delay"
				chsub "$CH" s >"$f" 3>&- &
				pid=$!
				usleep_rand 10
				kill -9 "$pid" 2>/dev/null || true
				wait "$pid" || rc=$?
			fi
			((rc == 0 || rc == 137)) || { echo "$what: exit $rc"; false; }
			end_run "$f" "$rc"
			;;
		6 | 7)	# chcompact mid-delete (the subscribers caught up first)
			printf -v f '%s/%05d.out' "$runs" $((++nrun))
			chsub "$CH" s >"$f"
			end_run "$f" 0
			chsub "$CH" audit >>"$T/audit"
			choffset --latest "$CH" o >/dev/null 2>&1 || true
			rc=0
			if ((kind == 6)); then
				what="chcompact killed at call $n"
				shim CHFAULT_CRASH_AT=$n -- chcompact "$CH" || rc=$?
			else
				what="chcompact killed after a delay"
				chcompact "$CH" 3>&- &
				pid=$!
				usleep_rand 8
				kill -9 "$pid" 2>/dev/null || true
				wait "$pid" || rc=$?
			fi
			((rc == 0 || rc == 137)) || { echo "$what: exit $rc"; false; }
			;;
		*)	# choffset: create, move, delete a third subscriber
			local ops=(--create\ --latest --latest --earliest --shift=-3 --delete)
			local op=${ops[RANDOM % 5]}
			what="choffset $op killed at call $n (torn=$torn)"
			rc=0
			# shellcheck disable=SC2086
			shim CHFAULT_CRASH_AT=$n CHFAULT_TORN=$torn -- \
			    choffset $op "$CH" o >/dev/null 2>"$T/err" || rc=$?
			((rc == 0 || rc == 137 || rc == 66 || rc == 1)) ||
			    { echo "$what: exit $rc"; cat "$T/err"; false; }
			((rc != 1)) || grep -q "exists\|already" "$T/err" ||
			    { echo "$what: exit 1"; cat "$T/err"; false; }
			rc=0
			choffset "$CH" o >/dev/null 2>"$T/err" || rc=$?
			((rc == 0 || rc == 66)) || { echo "after $what: choffset exit $rc"; cat "$T/err"; false; }
			# a moved offset is still one a subscriber can read from
			((rc != 0)) || chsub --peek -n 1 "$CH" o >/dev/null ||
			    { echo "after $what: o unreadable"; false; }
			;;
		esac
		after_crash "m$i"
	done
	# drain, then check the whole history
	printf -v f '%s/%05d.out' "$runs" $((++nrun))
	chsub "$CH" s >"$f"
	end_run "$f" 0
	check_records "$T/audit"
	check_order "$T/audit"
	run comm -23 <(sort "$T/acked") <(sort "$T/audit")
	[[ -z $output ]] || { echo "acknowledged but missing:"; echo "$output" | head; false; }
	check_runs "$T/audit" "$runs"
	for f in "$runs"/*.out; do check_records "$f"; done
}

# crash_every_call NAME SETUP CMD...: for every file-changing call N of CMD
# (torn and whole), restore the channel from SETUP's state, kill CMD at
# call N, and check after_crash.  SETUP is a function run once.
crash_every_call() {
	local name=$1 setup=$2 n total torn rc
	shift 2
	"$setup"
	cp -a "$CH" "$T/pristine"
	cp "$T/acked" "$T/acked.pristine"
	cp "$T/audit" "$T/audit.pristine"
	total=$(calls "$@")
	((total > 2)) || { echo "$name: only $total calls traced"; false; }
	echo "# $name: $total kill points" >&3
	for ((n = 1; n <= total; n++)); do
		for torn in 0 1; do
			rm -rf "$CH" "$T/audit"
			cp -a "$T/pristine" "$CH"
			cp "$T/acked.pristine" "$T/acked"
			cp "$T/audit.pristine" "$T/audit"
			what="$name killed at call $n of $total (torn=$torn)"
			rc=0
			rm -f "$T/victim.trace"
			shim CHFAULT_CRASH_AT=$n CHFAULT_TORN=$torn \
			    CHFAULT_TRACE="$T/victim.trace" -- "$@" \
			    >"$T/victim.out" 2>"$T/victim.err" || rc=$?
			# A run may make fewer calls than the counted one (chsub
			# commits on a one-second timer while it catches up: a
			# counted run that stalled made more): then this run has
			# no call n to be killed at.
			if ((rc == 0)) && (($(wc -l <"$T/victim.trace") < n)); then
				echo "# $what: this run made only $(wc -l <"$T/victim.trace") calls" >&3
				continue
			fi
			((rc == 137)) || { echo "$what: exit $rc"; false; }
			if declare -F after_victim >/dev/null; then after_victim; fi
			after_crash "m$n"
			chsub --peek --from=earliest "$CH" >"$T/all"
			check_records "$T/all"
			check_records "$T/audit"
			check_order "$T/audit"
			run comm -23 <(sort "$T/acked") <(sort "$T/audit")
			[[ -z $output ]] || { echo "$what: missing $output"; false; }
		done
	done
}

setup_rollover() {	# [SEGMENT_BYTES BATCH_RECORDS RECORD_BYTES]
	new_channel segment_bytes="${1:-4096}"
	choffset --create --earliest "$CH" audit >/dev/null
	records a 30 200 >"$T/acked"
	chpub "$CH" <"$T/acked"
	chsub "$CH" audit >"$T/audit"
	records b "${2:-40}" "${3:-300}" >"$T/batch"	# rolls over at least once
}

# A channel whose last record is "last"; prints that record's offset.
torn_setup() {
	new_channel
	records t 20 100 >"$T/before"
	chpub "$CH" <"$T/before"
	chpub -p "$CH" last
}

torn_every_byte() {
	local off seg size start k
	off=$(torn_setup)
	seg="$CH/$(segments | tail -1)"
	size=$(stat -c %s "$seg")
	start=$((off + 64))	# first segment: file position = offset + header
	cp -a "$CH" "$T/pristine"
	for ((k = start; k < size; k++)); do
		rm -rf "$CH"
		cp -a "$T/pristine" "$CH"
		truncate -s "$k" "$seg"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		[[ $output == "$(cat "$T/before")" ]] || { echo "cut at $k: delivered $output"; false; }
		if ((k > start)); then
			run -65 --separate-stderr chcompact --check "$CH"
			[[ $output$stderr == *torn* ]] || { echo "cut at $k: $output$stderr"; false; }
		fi
		run -0 chpub -v "$CH" after
		run -0 chsub --peek --from=earliest "$CH"
		[[ $output == "$(cat "$T/before")"$'\n'after ]] || { echo "cut at $k: $output"; false; }
		run -0 chcompact --check "$CH"
	done
}

garbage_after() {
	local off seg g
	off=$(torn_setup)
	seg="$CH/$(segments | tail -1)"
	cp -a "$CH" "$T/pristine"
	local garbage=(
		"printf '\\0\\0\\0\\0\\0\\0\\0\\0'"
		"head -c 4096 /dev/zero"
		"printf '\\xff%.0s' {1..100}"
		"printf '\\xc7REC'"
		"printf '\\xc7REC\\xff\\xff\\xff\\xff'; head -c 100 /dev/urandom"
		"printf '\\xc9FRM'"
		"printf '\\xc9FRM\\0\\0\\0\\0\\x30\\0\\0\\0\\x01\\0'; head -c 100 /dev/urandom"
		"head -c 37 /dev/urandom"
		"printf 'junk\\n%.0s' {1..50}"
		"printf '\\x24\\x00\\x00\\x00'"
		"tail -c 40 '$seg'"	# a copy of the last record's tail
	)
	for g in "${garbage[@]}"; do
		rm -rf "$CH"
		cp -a "$T/pristine" "$CH"
		eval "$g" >>"$seg"
		run -0 --separate-stderr chsub --peek --from=earliest "$CH"
		[[ $output == "$(cat "$T/before")"$'\n'last ]] || { echo "garbage $g: delivered $output"; false; }
		run -65 chcompact --check "$CH"
		run -0 chpub "$CH" after
		run -0 chsub --peek --from=earliest "$CH"
		[[ $output == "$(cat "$T/before")"$'\n'last$'\n'after ]] || { echo "garbage $g: $output"; false; }
		run -0 chcompact --check "$CH"
	done
}

setup_consumed() {
	setup_rollover
	chpub "$CH" <"$T/batch"
	cat "$T/batch" >>"$T/acked"
	chsub "$CH" audit >>"$T/audit"
	choffset --create --earliest "$CH" s >/dev/null
}

# every_call WHAT: the exhaustive kill-point tests of 80-crash.bats.
every_call() {
	case $1 in
	chpub-always)
		crash_every_call "chpub --sync=always" setup_rollover \
		    chpub --sync=always "$CH" "$(rec b 1 3000)" "$(rec b 2 3000)" ;;
	chpub-none)
		crash_every_call "chpub --sync=none" setup_rollover \
		    sh -c 'exec chpub --sync=none "$1" <"$2"' sh "$CH" "$T/batch" ;;
	chpub-frames)
		# format 3: a batch of 256-384 KiB is several frames,
		# written with one pwritev; torn, whole frames of it stay or
		# none.  About 400 KB into segments of 300 KB: it rolls over.
		setup_frames() { setup_rollover 300000 4000 150; }
		crash_every_call "chpub, several frames a write" setup_frames \
		    sh -c 'exec chpub --sync=none "$1" <"$2"' sh "$CH" "$T/batch"
		grep -q pwritev "$T/trace" ||
		    { echo "chpub never wrote several frames at once"; false; } ;;
	chpub-atomic)
		# all of the batch or none of it, whenever the kill comes
		after_victim() {
			local n
			n=$(chsub --peek --from=earliest "$CH" | grep -c '^b-' || true)
			((n == 0 || n == $(wc -l <"$T/batch"))) ||
			    { echo "$what: $n records of the atomic batch"; false; }
		}
		crash_every_call "chpub --atomic" setup_rollover \
		    sh -c 'exec chpub --atomic --sync=always "$1" <"$2"' sh \
		    "$CH" "$T/batch" ;;
	chsub)
		# the killed run committed nothing it had not delivered, and a
		# new run reads on from there, at least once
		after_victim() {
			rm -rf "$T/runs"
			mkdir "$T/runs"
			cp "$T/victim.out" "$T/runs/1.out"
			end_run "$T/runs/1.out" 137
			chsub "$CH" s >"$T/runs/2.out"
			end_run "$T/runs/2.out" 0
			check_runs "$T/audit" "$T/runs"
			cat "$T/runs/"*.out >"$T/runs.all"
			check_records "$T/runs.all"
		}
		crash_every_call "chsub" setup_consumed chsub "$CH" s ;;
	chcompact)
		setup_compact() {
			setup_consumed
			chsub "$CH" s >/dev/null
			(($(segments | wc -l) >= 3)) || { echo "setup: too few segments"; false; }
		}
		crash_every_call "chcompact" setup_compact chcompact "$CH"
		chcompact "$CH"
		(($(segments | wc -l) == 1)) ;;
	choffset-set)
		crash_every_call "choffset --earliest" setup_consumed \
		    choffset --earliest "$CH" s ;;
	choffset-create)
		crash_every_call "choffset --create" setup_consumed \
		    choffset --create --latest "$CH" new ;;
	choffset-delete)
		crash_every_call "choffset --delete" setup_consumed \
		    choffset --delete "$CH" s ;;
	esac
}

"$@"
