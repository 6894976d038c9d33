#!/usr/bin/env bats
# chlag: the lag table, machine formats, thresholds and Nagios exit codes,
# and the status rules (OK, WARN, STALL, STOP, REWIND).  Time passes with
# faketime: commits and publications happen at chosen offsets from now,
# and chlag is evaluated at a later one.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	common_setup
	CH_BIRTH=-1d new_channel
}
teardown() { ops_teardown; }

# unreadable_offset SUB: SUB's offset file cannot be read (not damage, an
# I/O error: it is a directory), even by root.
unreadable_offset() {
	rm -f "$CH/subscribers/$1/offset"
	mkdir "$CH/subscribers/$1/offset"
}

# at WHEN CMD...: run CMD that far from now (WHEN like +5m, -1h).
at() { local w=$1; shift; faketime -f "$w" "$@"; }

# status_of SUBSCRIBER [CHLAG-ARGS...]: the STATUS column of its row.
status_of() {
	local s=$1
	shift
	chlag "$@" "$CH" | awk -v s="$s" '$2 == s { print $NF }'
}

# --- the table ---------------------------------------------------------

@test "prints a table with a header and one aligned row per subscriber" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" behind >/dev/null
	chsub "$CH" current >/dev/null	# registers at the end
	end=$(end_offset)
	run -0 --separate-stderr chlag "$CH"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 3
	assert_line -n 0 --regexp '^CHANNEL +SUBSCRIBER +OFFSET +END +LAG +RECORDS +AGE +COMMITTED +STATUS$'
	assert_line -n 1 --regexp "^$CH +behind +0 +$end +$end B +10 +[0-9]+(ms|s) +[0-9]+(ms|s) ago +OK$"
	assert_line -n 2 --regexp "^$CH +current +$end +$end +0 B +0 +- +[0-9]+(ms|s) ago +OK$"
	# aligned: every row's STATUS starts in the same column
	col() { local l=$1; l=${l%OK}; l=${l%STATUS}; echo ${#l}; }
	assert_equal "$(col "${lines[1]}")" "$(col "${lines[0]}")"
	assert_equal "$(col "${lines[2]}")" "$(col "${lines[0]}")"
}

@test "long channel paths and 128-byte subscriber names are printed whole, still aligned" {
	local sub ch
	sub=$(printf 's%.0s' {1..128})
	ch=$T/$(printf 'p%.0s' {1..200})/$(printf 'q%.0s' {1..200})
	mkdir -p "$(dirname "$ch")"
	chpub "$ch" a
	choffset --create --earliest "$ch" "$sub" >/dev/null
	choffset --create "$ch" t >/dev/null
	run -0 chlag "$ch"
	assert_line -n 1 --regexp "^$ch +$sub +0 +"
	assert_line -n 2 --regexp "^$ch +t {128} +"
}

@test "sizes and ages are human-readable" {
	for i in $(seq 2000); do echo "record $i of some length"; done | at -2h chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag "$CH"
	assert_line -n 1 --regexp " [0-9.]+ KiB +2000 +2h0[0-9]m +"
}

@test "a channel without subscribers says so" {
	run -0 chlag "$CH"
	assert_output "no subscribers"
}

@test "a missing channel is UNKNOWN (3)" {
	run -3 --separate-stderr chlag "$T/missing"
	[[ $stderr == "chlag: $T/missing: "* ]]
}

@test "piped output has no escape codes and no sparkline" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	TERM=xterm run -0 chlag "$CH"
	refute_output --partial $'\e'
	refute_output --partial TREND
}

@test "on a terminal the status is coloured and a TREND sparkline is added" {
	command -v script >/dev/null || skip "script(1) is not installed"
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	TERM=xterm run -0 script -qec "chlag '$CH'" /dev/null </dev/null
	assert_output --partial TREND
	assert_output --partial $'\e[32mOK\e[0m'
	NO_COLOR=1 TERM=xterm run -0 script -qec "chlag '$CH'" /dev/null </dev/null
	refute_output --partial $'\e['
}

@test "with no CHANNEL and CH_ROOT set, reports every channel under it" {
	export CH_ROOT="$T/root"
	mkdir -p "$CH_ROOT/not-a-channel"
	for c in beta alpha; do
		chpub "$CH_ROOT/$c" x
		choffset --create --earliest "$c" s >/dev/null
	done
	run -0 chlag
	assert_equal "${#lines[@]}" 3
	assert_line -n 1 --regexp '^alpha +s '
	assert_line -n 2 --regexp '^beta +s '
}

@test "with no CHANNEL and CH_ROOT set, a directory there that cannot be looked into is a channel that cannot be read (3, chlag_channel_up 0), not left out" {
	need_nobody
	export CH_ROOT="$T/root"
	mkdir -p "$CH_ROOT/not-a-channel"
	echo file >"$CH_ROOT/plain-file"
	for c in open shut; do
		chpub "$CH_ROOT/$c" x
		choffset --create --earliest "$c" s >/dev/null
	done
	chmod 700 "$CH_ROOT/shut"
	run -3 --separate-stderr as_nobody env CH_ROOT="$CH_ROOT" PATH="$PATH" chlag
	assert_line -n 1 --regexp '^open +s '
	assert_equal "$stderr" "chlag: shut: open channel: Permission denied"
	run -3 --separate-stderr as_nobody env CH_ROOT="$CH_ROOT" PATH="$PATH" chlag --prometheus
	assert_line 'chlag_channel_up{channel="open"} 1'
	assert_line 'chlag_channel_up{channel="shut"} 0'
	run -3 as_nobody env CH_ROOT="$CH_ROOT" PATH="$PATH" chlag --nagios
	assert_output --partial "CHLAG UNKNOWN"
	# root reads it: every row, no other entry
	run -0 chlag
	assert_equal "${#lines[@]}" 3
}

@test "with no CHANNEL and no CH_ROOT, it is a usage error (3)" {
	run -3 --separate-stderr chlag
	[[ $stderr == "chlag: missing CHANNEL (or set CH_ROOT to report every channel under it)"* ]]
}

@test "reports several channels in one table" {
	chsub "$CH" a >/dev/null
	one=$CH
	CH="$T/two"
	new_channel
	chsub "$CH" b >/dev/null
	run -0 chlag "$one" "$CH"
	assert_line -n 1 --regexp "^$one +a "
	assert_line -n 2 --regexp "^$CH +b "
}

# --- machine formats ----------------------------------------------------

@test "--json prints an array of objects that parses" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 --separate-stderr chlag --json "$CH"
	echo "$output" >"$T/out.json"
	run -0 python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1, rows
r = rows[0]
assert r["channel"] == sys.argv[2] and r["subscriber"] == "s", r
assert r["status"] == "OK" and r["lag_records"] == 10 and r["offset"] == 0, r
assert r["lag_bytes"] == r["end"] > 0 and r["running"] is False, r
assert r["age_seconds"] >= 0 and r["idle_seconds"] >= 0, r
print("ok")' "$T/out.json" "$CH"
	assert_output ok
}

@test "--json escapes what JSON needs escaped" {
	CH="$T/we\"ird\\name"
	new_channel
	chsub "$CH" s >/dev/null
	chlag --json "$CH" >"$T/out.json"
	run -0 python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))[0]["channel"])' "$T/out.json"
	assert_output "$CH"
}

@test "--yaml double-quotes names, so 007 and no stay strings" {
	chsub "$CH" 007 >/dev/null
	chsub "$CH" no >/dev/null
	run -0 chlag --yaml "$CH"
	assert_line '  subscriber: "007"'
	assert_line '  subscriber: "no"'
	assert_line "- channel: \"$CH\""
	echo "$output" >"$T/out.yaml"
	# not run: a python3 that fails shows its error (no module yaml?)
	local rows
	rows=$(python3 -c '
import sys, yaml
rows = yaml.safe_load(open(sys.argv[1]))
print(" ".join(repr(r["subscriber"]) for r in rows), rows[0]["lag_records"])' "$T/out.yaml")
	assert_equal "$rows" "'007' 'no' 0"
}

@test "--prometheus prints gauges with channel and subscriber labels" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --prometheus "$CH"
	assert_line '# TYPE chlag_lag_records gauge'
	assert_line "chlag_lag_records{channel=\"$CH\",subscriber=\"s\"} 10"
	assert_line "chlag_offset_bytes{channel=\"$CH\",subscriber=\"s\"} 0"
	assert_line "chlag_running{channel=\"$CH\",subscriber=\"s\"} 0"
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"s\",status=\"OK\"} 1"
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"s\",status=\"STOP\"} 0"
	assert_line --regexp "^chlag_scrape_timestamp_seconds\\{channel=\"$CH\"\\} [0-9]+\\.[0-9]+\$"
	# every sample line is NAME{LABELS} VALUE or NAME VALUE
	run -1 grep -Ev '^(# (HELP|TYPE) .*|[a-z_]+(\{[^}]*\})? [-+0-9.e]+)$' <<<"$output"
}

@test "--prometheus escapes label values" {
	CH="$T/we\"ird\\name"
	new_channel
	chsub "$CH" s >/dev/null
	run -0 chlag --prometheus "$CH"
	# the label value we"ird\\name (a backslash doubled, so that \xHH
	# stays a byte that is not UTF-8), in the format's escapes
	assert_line --partial "chlag_lag_records{channel=\"$T/we\\\"ird\\\\\\\\name\",subscriber=\"s\"} 0"
}

@test "--prometheus: chlag_channel_up is 1 for each channel read (an ERROR subscriber or none at all included), 0 for one that cannot be, which keeps its scrape time" {
	choffset --create "$CH" broken >/dev/null
	unreadable_offset broken
	local empty=$T/empty bad=$T/bad
	chpub "$empty" </dev/null
	chpub "$bad" </dev/null
	echo 'segment_bytes: [' >"$bad/channel.yaml"
	run -3 --separate-stderr chlag --prometheus -o "$T/out.prom" \
	    "$CH" "$empty" "$bad" "$T/nothing"
	[[ $stderr == *"chlag: $bad: channel.yaml:"* ]] || fail "$stderr"
	[[ $stderr == *"chlag: $T/nothing: no such channel"* ]] || fail "$stderr"
	run -0 grep -A4 '^# TYPE chlag_channel_up gauge$' "$T/out.prom"
	assert_output "# TYPE chlag_channel_up gauge
chlag_channel_up{channel=\"$CH\"} 1
chlag_channel_up{channel=\"$empty\"} 1
chlag_channel_up{channel=\"$bad\"} 0
chlag_channel_up{channel=\"$T/nothing\"} 0"
	run -0 grep -c '^chlag_channel_up{' "$T/out.prom"
	assert_output 4
	# the unreadable ones have no other series but their scrape time,
	# which is that of the report, as for the others
	run -0 grep -Fe "\"$bad\"" -e "\"$T/nothing\"" "$T/out.prom"
	assert_equal "${#lines[@]}" 4
	run -0 sed -n 's/^chlag_scrape_timestamp_seconds{channel=".*"} //p' "$T/out.prom"
	assert_equal "${#lines[@]}" 4
	[[ ${lines[0]} =~ ^[0-9]+\.[0-9]+$ ]] || fail "${lines[0]}"
	assert_equal "$(printf '%s\n' "${lines[@]}" | sort -u)" "${lines[0]}"
}

@test "--output writes the report to FILE atomically" {
	chsub "$CH" s >/dev/null
	echo old >"$T/chlag.prom"
	ino=$(stat -c %i "$T/chlag.prom")
	run -0 --separate-stderr chlag --prometheus --output="$T/chlag.prom" "$CH"
	assert_output ""
	run -0 grep -c '^chlag_lag_records{' "$T/chlag.prom"
	assert_output 1
	# replaced by a rename, not rewritten in place; no temp file left
	[[ $(stat -c %i "$T/chlag.prom") != "$ino" ]]
	run -0 ls "$T"
	refute_output --partial chlag.prom.tmp
}

@test "--output: a FIFO, a symlink or a hard link planted at its temporary name neither blocks it nor is written through" {
	seq 3 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	echo precious >"$T/victim"
	local kind
	for kind in fifo symlink hardlink; do
		rm -f "$T/out.prom"
		# exec keeps the pid, which names the temporary file
		run -0 timeout 10 bash -c '
			case $2 in
			fifo) mkfifo "$1.tmp.$$" ;;
			symlink) ln -s "$3" "$1.tmp.$$" ;;
			hardlink) ln "$3" "$1.tmp.$$" ;;
			esac
			exec chlag --prometheus -o "$1" "$4"' _ "$T/out.prom" "$kind" "$T/victim" "$CH"
		grep -q '^chlag_lag_records{.*subscriber="s"} 3$' "$T/out.prom"
		assert_equal "$(cat "$T/victim")" precious
		run -0 ls "$T"
		refute_output --partial "out.prom.tmp"
	done
}

@test "--output: a new file gets 0644 less the umask; one it replaces keeps its mode and group (cron's umask 077 made a 0640 report of the exporter's group unreadable to it)" {
	getent group nogroup >/dev/null || skip "no group nogroup"
	chsub "$CH" s >/dev/null
	run -0 bash -c 'umask 022; chlag --prometheus -o "$1" "$2"' _ "$T/new.prom" "$CH"
	assert_equal "$(stat -c %a "$T/new.prom")" 644
	echo old >"$T/out.prom"
	chmod 640 "$T/out.prom"
	chgrp nogroup "$T/out.prom"
	run -0 bash -c 'umask 077; chlag --prometheus -o "$1" "$2"' _ "$T/out.prom" "$CH"
	assert_equal "$(stat -c '%a %G' "$T/out.prom")" "640 nogroup"
	run -0 grep -c '^chlag_channel_up' "$T/out.prom"
}

@test "--output keeps the Nagios exit status" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -1 chlag --warn=records:5 -o "$T/out.txt" "$CH"
	assert_output ""
	run -0 grep -c ' s ' "$T/out.txt"
}

@test "--output into a missing directory is UNKNOWN (3)" {
	chsub "$CH" s >/dev/null
	run -3 --separate-stderr chlag --prometheus --output="$T/no/such/file" "$CH"
	[[ $stderr == "chlag: $T/no/such/file.tmp."*": No such file or directory" ]]
}

@test "--yaml or --json to a full disk (/dev/full) is UNKNOWN (3) and says so" {
	[[ -c /dev/full ]] || skip "no /dev/full"
	local ch=$T s
	# Rows long enough (a 1600-byte channel path) that the report fills
	# stdio's buffer many times over, so that a write fails while the YAML
	# is emitted, not only at the last flush.
	for s in 1 2 3 4 5 6 7 8; do
		ch+=/$(printf "$s%.0s" {1..200})
	done
	mkdir -p "$(dirname "$ch")"
	chpub "$ch" a
	for s in a b c d e f g h i j; do
		choffset --create "$ch" "$s" >/dev/null
	done
	to_full() { "$@" >/dev/full; }
	run -3 --separate-stderr to_full chlag --yaml "$ch"
	assert_equal "$stderr" "chlag: YAML output failed
chlag: write error: No space left on device"
	run -3 --separate-stderr to_full chlag --json "$ch"
	assert_equal "$stderr" "chlag: write error: No space left on device"
}

@test "--output: a report that fails half way (a write refused by ulimit -f) leaves no temporary file and is UNKNOWN (3)" {
	local ch=$T s
	# As above: a report long enough that the YAML emitter itself writes,
	# and fails, before the end.
	for s in 1 2 3 4 5 6 7 8; do
		ch+=/$(printf "$s%.0s" {1..200})
	done
	mkdir -p "$(dirname "$ch")"
	chpub "$ch" a
	for s in a b c d e f g h i j; do
		choffset --create "$ch" "$s" >/dev/null
	done
	mkdir "$T/out"
	# SIGXFSZ ignored: a write past the limit fails (EFBIG) instead of
	# killing chlag.  The limit is chlag's alone: its stderr goes through
	# a pipe to a cat without it.
	run -3 bash -c '(trap "" XFSZ; ulimit -f 0
		exec chlag --yaml -o "$1" "$2") 2>&1 | cat
		exit "${PIPESTATUS[0]}"' _ "$T/out/lag.yaml" "$ch"
	assert_output "chlag: YAML output failed"
	run -0 ls -A "$T/out"
	assert_output ""
}

@test "output that cannot be written (/dev/full) is UNKNOWN (3) even when the report is WARNING or CRITICAL, in the table, --nagios and --watch" {
	[[ -c /dev/full ]] || skip "no /dev/full"
	chpub "$CH" x
	choffset --create --earliest "$CH" s >/dev/null
	run -1 chlag -w records:0 "$CH"		# the report's own status
	run -2 chlag -c records:0 "$CH"
	local args
	for args in "-w records:0" "-c records:0" "--nagios -w records:0" \
	    "--nagios -c records:0" "--watch=0.1 -c records:0"; do
		# shellcheck disable=SC2086 # $args: several words
		run -3 --separate-stderr timeout 20 bash -c \
		    'exec chlag "$@" >/dev/full' _ $args "$CH"
		assert_equal "$stderr" "chlag: write error: No space left on device"
	done
}

@test "--nagios prints one status line with performance data" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	chsub "$CH" t >/dev/null
	run -1 chlag --nagios --warn=records:5 --crit=records:50 "$CH"
	assert_equal "${#lines[@]}" 1
	# (its STATUS is OK: the text says which limit it is over)
	assert_output --regexp "^CHLAG WARNING - 1 of 2 subscribers need attention; worst $CH/s: OK, lag 10 records, age [0-9]+(ms|s); over --warn records:5 \| '$CH/s_records'=10;5;50;0; '$CH/s_bytes'=[1-9][0-9]*B;;;0; '$CH/s_age'=[0-9]+s;;;0; '$CH/s_attempts'=0;;;0; '$CH/t_records'=0;5;50;0; '$CH/t_bytes'=0B;;;0; '$CH/t_age'=0s;;;0; '$CH/t_attempts'=0;;;0;\$"
	run -2 chlag --nagios --warn=records:5 --crit=records:8,bytes:10,age:1h "$CH"
	assert_output --regexp "^CHLAG CRITICAL - 1 of 2 subscribers need attention; worst $CH/s: OK, lag 10 records, age [0-9]+(ms|s); over --crit records:8 and bytes:10 \| "
	# every limit given shows beside its value: bytes in B, age in seconds
	run -1 chlag --nagios --warn=records:5,bytes:1k,age:5m --crit=records:50,age:1h "$CH"
	assert_output --regexp "'$CH/s_records'=10;5;50;0; '$CH/s_bytes'=[1-9][0-9]*B;1024;;0; '$CH/s_age'=[0-9]+s;300;3600;0; '$CH/s_attempts'=0;;;0; "
	# a limit under a second keeps its fraction (0 would read "always over")
	run chlag --nagios --warn=age:1500ms --crit=age:100ms "$CH"
	assert_output --regexp "'$CH/s_age'=[0-9]+s;1.5;0.1;0; "
	# one record behind: "lag 1 record"
	chsub -n 9 "$CH" s >/dev/null
	run -1 chlag --nagios --warn=records:0 "$CH"
	assert_output --regexp "; worst $CH/s: OK, lag 1 record, age [0-9]+(ms|s); over --warn records:0 \| "
}

@test "--nagios: the age in the performance data is the one in the text, whole seconds cut the same way" {
	at -40.7s chpub "$CH" old
	at -40.7s choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --nagios "$CH"
	[[ $output =~ age\ ([0-9]+)s\ \|.*\'$CH/s_age\'=([0-9]+)s\; ]] || fail "$output"
	# 40.7 s and what the run took: a rounded value would often be one more
	assert_equal "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
	((BASH_REMATCH[1] >= 40))
}

@test "--nagios doubles a quote in a performance data label" {
	CH="$T/it's"
	new_channel
	chsub "$CH" s >/dev/null
	run -0 chlag --nagios "$CH"
	assert_output --partial "| '$T/it''s/s_records'=0;;;0; '$T/it''s/s_bytes'=0B;;;0; '$T/it''s/s_age'=0s;;;0; '$T/it''s/s_attempts'=0;;;0;"
}

# --- thresholds and exit codes ------------------------------------------

@test "--warn and --crit on records alert when the lag is above the value" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --warn=records:10 "$CH"
	run -1 chlag --warn=records:9 "$CH"
	run -0 chlag --crit=records:10 "$CH"
	run -2 chlag --warn=records:5 --crit=records:9 "$CH"
}

@test "--warn and --crit on bytes take a SIZE" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	end=$(end_offset)
	run -0 chlag --warn=bytes:$end "$CH"
	run -1 chlag --warn=bytes:$((end - 1)) "$CH"
	run -2 chlag --crit=bytes:0 "$CH"
	run -0 chlag --crit=bytes:1K "$CH"
}

@test "--warn and --crit on age take a DUR" {
	seq 10 | at -10m chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --warn=age:11m "$CH"
	run -1 chlag --warn=age:9m "$CH"
	run -2 chlag --warn=age:1m --crit=age:5m "$CH"
}

@test "several thresholds of different kinds combine: any one over alerts" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --warn=records:100,bytes:1M,age:1h "$CH"
	run -1 chlag --warn=records:100,bytes:1M,age:0s "$CH"
	run -1 chlag --warn=records:5,bytes:1M,age:1h "$CH"
}

@test "the exit status is the worst row's" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" far >/dev/null
	choffset --create --set="$(record_offset 6)" "$CH" near >/dev/null
	chsub "$CH" none >/dev/null
	run -1 chlag --warn=records:4 --crit=records:20 "$CH"
	run -2 chlag --warn=records:4 --crit=records:8 "$CH"
}

@test "CRITICAL outranks UNKNOWN, which outranks WARNING" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" a >/dev/null
	choffset --create "$CH" broken >/dev/null
	unreadable_offset broken
	run -3 chlag --warn=records:5 "$CH"
	assert_line --regexp "^$CH +broken +- .* ERROR$"
	assert_line --partial "(subscriber 'broken': offset: Is a directory)"
	run -2 chlag --crit=records:5 "$CH"
	run -3 chlag "$CH"
}

@test "--yaml: a channel path that is not UTF-8 comes out with U+FFFD, as in --json, instead of failing the whole report" {
	CH=$T/bad$'\xff'
	new_channel
	chpub "$CH" x
	choffset --create --earliest "$CH" s >/dev/null
	local want="- channel: \"$T/bad"$'\xef\xbf\xbd"'
	run -0 --separate-stderr chlag --yaml "$CH"
	assert_equal "$stderr" ""
	assert_line -n 0 "$want"
	assert_line '  subscriber: "s"'
	run -0 --separate-stderr chlag --yaml --explain "$CH"
	assert_equal "$stderr" ""
	assert_line -n 0 "$want"
	assert_line '  explain: |-'
	run -0 chlag --json "$CH"
	assert_output --partial "{\"channel\":\"$T/bad"$'\xef\xbf\xbd"'
}

@test "an ERROR row, and an INVALID one of a damaged offset file, have exactly channel, subscriber, status, error and running in --json and --yaml (nothing it could not read)" {
	seq 10 | chpub "$CH"
	choffset --create "$CH" broken >/dev/null
	local check='
import json, sys
rows = json.loads(sys.argv[1]) if sys.argv[2] == "json" else __import__("yaml").safe_load(sys.argv[1])
assert len(rows) == 1, rows
r = rows[0]
assert sorted(r) == ["channel", "error", "running", "status", "subscriber"], sorted(r)
assert r["status"] == sys.argv[3] and r["subscriber"] == "broken" and r["running"] is False, r
assert sys.argv[4] in r["error"], r
print("ok")'
	# rows CODE STATUS ERROR: the one row in both formats
	rows() {
		local f
		for f in json yaml; do
			run -"$1" chlag --$f "$CH"
			run -0 python3 -c "$check" "$output" $f "$2" "$3"
			assert_output ok
		done
	}
	unreadable_offset broken
	rows 3 ERROR "offset: Is a directory"
	rmdir "$CH/subscribers/broken/offset"
	echo garbage >"$CH/subscribers/broken/offset"
	rows 2 INVALID "offset file is not a chtools offset file"
	# the table, Nagios and Prometheus: no numbers either
	run -2 chlag "$CH"
	assert_line --regexp "^$CH +broken +- +- +- +- +- +- +INVALID$"
	assert_line --partial "  (subscriber 'broken': offset file is not a chtools offset file"
	run -2 chlag --nagios "$CH"
	assert_output --partial "CHLAG CRITICAL - 1 of 1 subscribers need attention; worst $CH/broken: INVALID: subscriber 'broken': offset file is not a chtools offset file"
	run -2 chlag --prometheus "$CH"
	refute_output --partial "chlag_offset_bytes{"
	refute_output --partial "chlag_last_commit_timestamp_seconds{"
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"broken\",status=\"INVALID\"} 1"
}

@test "a subscriber deleted between the listing and the reading of its offset file is left out, not an ERROR (UNKNOWN)" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	seq 3 | chpub "$CH"
	choffset --create --earliest "$CH" a-gone >/dev/null
	choffset --create --earliest "$CH" b >/dev/null
	run -1 --separate-stderr env CHFAULT_RUN="choffset --delete '$CH' a-gone >/dev/null" \
	    CHFAULT_RUN_AT=open:offset:1 LD_PRELOAD="$CHFAULT" \
	    chlag --warn=records:1 "$CH"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 2
	assert_line -n 1 --regexp "^$CH +b "
	assert_not_exist "$CH/subscribers/a-gone"
}

@test "--json and --yaml: a channel that cannot be read is a row of its own (channel, status ERROR, error), in the order given" {
	seq 3 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	local check='
import json, sys
rows = json.loads(sys.argv[1]) if sys.argv[2] == "json" else __import__("yaml").safe_load(sys.argv[1])
assert [r["channel"] for r in rows] == [sys.argv[3] + "/nothing", sys.argv[3] + "/ch"], rows
assert rows[0] == {"channel": sys.argv[3] + "/nothing", "status": "ERROR", "error": "no such channel"}, rows[0]
assert rows[1]["subscriber"] == "s" and rows[1]["status"] == "OK", rows[1]
print("ok")'
	run -3 --separate-stderr chlag --json "$T/nothing" "$CH"
	assert_equal "$stderr" "chlag: $T/nothing: no such channel"
	run -0 python3 -c "$check" "$output" json "$T"
	assert_output ok
	run -3 --separate-stderr chlag --yaml --explain "$T/nothing" "$CH"
	run -0 python3 -c "$check" "$output" yaml "$T"
	assert_output ok
}

@test "an offset file that disagrees with the channel is INVALID, CRITICAL (2) in every format, thresholds or not" {
	local kind why
	seq 10 | chpub "$CH"
	end=$(end_offset)
	choffset --create --earliest "$CH" good >/dev/null
	chsub "$CH" s >/dev/null
	cp "$CH/subscribers/s/offset" "$T/good"
	for kind in past boundary seq; do
		cp "$T/good" "$CH/subscribers/s/offset"
		case $kind in
		past) doctor_offset s offset $((end + 100)); off=$((end + 100))
		      why="offset $off is past the end of the channel ($end)" ;;
		boundary) off=$(($(record_offset 3) + 2)); doctor_offset s offset $off
		      why="offset $off is not on a record boundary" ;;
		seq) doctor_offset s seq 4; off=$end
		      why="offset file says record 4 at offset $end, the channel has record 10 there" ;;
		esac
		run -2 --separate-stderr chlag "$CH"
		assert_line -n 2 --regexp "^$CH +s +$off +$end +- +- +- +[0-9]+(ms|s) ago +INVALID$"
		assert_line -n 3 "  ($why)"
		run -2 chlag --warn=records:100 --crit=records:100 "$CH"
	done
	run -2 chlag --json "$CH"
	python3 -c '
import json, sys
rows = {r["subscriber"]: r for r in json.loads(sys.argv[1])}
s = rows["s"]
assert s["status"] == "INVALID" and s["error"] == sys.argv[2], s
assert s["offset"] == int(sys.argv[3]) and s["end"] == int(sys.argv[3]), s
assert "lag_records" not in s and "age_seconds" not in s, s
assert rows["good"]["status"] == "OK"' "$output" "$why" "$end"
	run -2 chlag --yaml "$CH"
	assert_output --partial '  status: "INVALID"
  error: "'"$why"'"
  offset: '"$end"'
  end: '"$end"
	run -2 chlag --prometheus "$CH"
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"s\",status=\"INVALID\"} 1"
	assert_line "chlag_offset_bytes{channel=\"$CH\",subscriber=\"s\"} $end"
	refute_line --partial "chlag_lag_records{channel=\"$CH\",subscriber=\"s\"}"
	run -2 chlag --nagios "$CH"
	assert_output --regexp "^CHLAG CRITICAL - 1 of 2 subscribers need attention; worst $CH/s: INVALID: $why \\| '$CH/good_records'=10;;;0; '$CH/good_bytes'=[0-9]+B;;;0; '$CH/good_age'=[0-9]+s;;;0; '$CH/good_attempts'=0;;;0;\$"
	run -2 chlag --nagios --warn=records:100 "$CH"
	# fixed, it is OK again
	choffset --latest "$CH" s >/dev/null 2>&1
	run -0 chlag --warn=records:100 "$CH"
}

@test "a record stamped ahead of the clock (the clock stepped back since): its age is never negative, a backlog never shows as empty" {
	choffset --create "$CH" s >/dev/null
	at +1h chpub "$CH" from-the-future
	end=$(end_offset)
	# its age: since its segment was last written, a moment ago
	run -0 --separate-stderr chlag "$CH"
	assert_line -n 1 --regexp "^$CH +s +0 +$end +$end B +1 +[0-9]+(ms|s) +[0-9]+(ms|s) ago +OK$"
	run -0 chlag --json "$CH"
	python3 -c '
import json, sys
r = json.loads(sys.argv[1])[0]
assert r["lag_records"] == 1 and 0 < r["age_seconds"] < 60, r' "$output"
	run -0 chlag --yaml "$CH"
	assert_line --regexp "^  age_seconds: [0-9]+\.[0-9]{3}$"
	refute_line "  age_seconds: 0.000"
	run -0 chlag --prometheus "$CH"
	assert_line --regexp "^chlag_lag_seconds\{channel=\"$CH\",subscriber=\"s\"\} [0-9.e-]+$"
	run -0 chlag --nagios "$CH"
	assert_output --regexp "age [0-9]+(ms|s) \\| '$CH/s_records'=1;;;0; '$CH/s_bytes'=[0-9]+B;;;0; '$CH/s_age'=[0-9.]+s;;;0; '$CH/s_attempts'=0;;;0;\$"
	# a commit stamped ahead of the clock is no negative idle time either
	at +1h choffset --shift=+0 "$CH" s >/dev/null
	run -0 chlag --json "$CH"
	python3 -c '
import json, sys
r = json.loads(sys.argv[1])[0]
assert r["idle_seconds"] == 0, r' "$output"
	run -0 chlag "$CH"
	assert_line -n 1 --regexp " 0ms ago +OK$"
}

@test "a record stamped ahead of the clock: age thresholds fire once the commit history shows it has waited that long" {
	at +1h chpub "$CH" from-the-future
	# registered behind it: the history says it was there from now on
	choffset --create --earliest "$CH" s >/dev/null
	run -0 chlag --warn=age:5m "$CH"
	run -1 at +10m chlag --warn=age:5m --crit=age:1h "$CH"
	run -1 at +10m chlag --nagios --warn=age:5m "$CH"
	assert_output --regexp "'$CH/s_age'=(599|6[0-9][0-9])s;300;;0;"
	run -2 at +2h chlag --crit=age:1h "$CH"
	# and a stopped reader behind it is STOP once that is long enough
	run -2 at +2h chlag --json "$CH"
	assert_output --partial '"status":"STOP"'
}

@test "bad thresholds and options are usage errors (3)" {
	run -3 --separate-stderr chlag --warn=foo:1 "$CH"
	[[ $stderr == "chlag: --warn: unknown kind 'foo' (records, bytes or age)"* ]]
	run -3 --separate-stderr chlag --crit=records "$CH"
	[[ $stderr == "chlag: --crit: 'records' is not KIND:VALUE"* ]]
	run -3 --separate-stderr chlag --warn=records:many "$CH"
	[[ $stderr == "chlag: --warn: records: "* ]]
	run -3 --separate-stderr chlag --warn=age:soon "$CH"
	[[ $stderr == "chlag: --warn: age: invalid duration 'soon'"* ]]
	run -3 --separate-stderr chlag --json --yaml "$CH"
	[[ $stderr == "chlag: give only one of --json, --yaml, --prometheus, --nagios"* ]]
	run -3 --separate-stderr chlag --watch=0 "$CH"
	run -3 --separate-stderr chlag --watch=1 --output="$T/x" "$CH"
}

@test "--warn and --crit refuse an empty item (a comma too many) and a kind given twice (3); an empty value is no limit" {
	seq 10 | chpub "$CH"
	choffset --create --earliest "$CH" s >/dev/null
	local v
	for v in records:10, ,records:10 records:10,,age:1h; do
		run -3 --separate-stderr chlag --warn="$v" "$CH"
		assert_output ""
		assert_equal "$stderr" "chlag: --warn: empty KIND:VALUE in '$v' (a comma too many?)
Try 'chlag --help' for more information."
	done
	# an empty value is no limit at that level (a Nagios command line's
	# empty $ARG1$), the thresholds deciding: 10 records behind
	run -2 chlag --nagios --warn= --crit=records:5 "$CH"
	run -0 chlag --nagios --warn= --crit=records:50 "$CH"
	run -1 chlag --nagios --warn=records:5 --crit= "$CH"
	# both empty: the statuses decide, a FAILED subscriber is critical
	run -0 chlag --nagios --warn= --crit= "$CH"
	chsub --from=earliest --retries=0 -x 'exit 1' "$CH" failing >/dev/null 2>&1 || true
	run -2 chlag --nagios --warn= --crit= "$CH"
	assert_output --partial FAILED
	run -3 --separate-stderr chlag --warn=records:10,records:20 "$CH"
	[[ $stderr == "chlag: --warn: records given twice, 'records:10' and 'records:20'"* ]]
	run -3 --separate-stderr chlag --crit=age:1h,bytes:1k,age:2h "$CH"
	[[ $stderr == "chlag: --crit: age given twice, 'age:1h' and 'age:2h'"* ]]
	# in two -w: the last one held (-w records:0 -w records:1000 was OK)
	run -3 --separate-stderr chlag -w records:0 -w records:1000 "$CH"
	[[ $stderr == "chlag: --warn: records given in two --warn options"* ]]
	# each kind once is fine, in any order, and a later -w adds to an
	# earlier one
	run -1 chlag --warn=age:1h,bytes:1M,records:5 "$CH"
	run -1 chlag -w age:1h -w records:5 "$CH"
}

# --- --watch --------------------------------------------------------------

@test "--watch refreshes the report until interrupted" {
	chsub "$CH" s >/dev/null
	run -124 command timeout 4 chlag --watch=0.1 "$CH"
	(( $(grep -c '^CHANNEL ' <<<"$output") >= 2 ))
	refute_output --partial $'\e'
}

@test "--watch with CH_ROOT and no CHANNEL lists the channels afresh for each report: one made meanwhile shows up" {
	export CH_ROOT="$T/root"
	chpub "$CH_ROOT/first" x
	choffset --create --earliest first s >/dev/null
	start_bg bash -c 'exec chlag --watch=0.1 >"$1"' _ "$T/watch.out"
	wait_for 10 grep -q '^first ' "$T/watch.out"
	chpub "$CH_ROOT/second" y
	choffset --create --earliest second s >/dev/null
	wait_for 10 grep -q '^second ' "$T/watch.out"
}

@test "--watch to a full disk stops at the first report that cannot be written (3), instead of refreshing for nobody" {
	chsub "$CH" s >/dev/null
	run -3 --separate-stderr timeout 20 bash -c 'exec chlag --watch=0.1 "$1" >/dev/full' _ "$CH"
	assert_equal "$stderr" "chlag: write error: No space left on device"
}

@test "--watch: SIGINT or SIGTERM while a report is blocked on a full pipe lets that report out whole, then exits 0; a second signal ends it at once" {
	local sig
	chpub "$CH" a
	choffset --create --earliest "$CH" s0 >/dev/null
	# 150 subscribers: a Prometheus report of about 200 KB
	mkdir "$CH"/subscribers/s{1..149}
	tee "$CH"/subscribers/s{1..149}/offset <"$CH/subscribers/s0/offset" >/dev/null
	mkfifo "$T/pipe"
	for sig in INT TERM; do
		exec 5<>"$T/pipe"
		start_bg chlag --prometheus --watch=1 "$CH" >"$T/pipe"
		wait_for 20 grep -q pipe "/proc/$BG/wchan"
		kill -"$sig" "$BG"
		exec 6<"$T/pipe"
		exec 5>&-
		timeout 20 cat <&6 >"$T/got"
		exec 6<&-
		wait_for 10 bash -c "! kill -0 $BG 2>/dev/null"
		run wait "$BG"
		assert_success
		# whole reports only: the last one ends with its scrape time
		(($(grep -c '^chlag_scrape_timestamp_seconds{' "$T/got") >= 1))
		run tail -n 2 "$T/got"
		assert_line -n 0 --regexp '^chlag_scrape_timestamp_seconds\{channel=".*"\} [0-9.]+$'
		assert_line -n 1 ''
	done
	# two signals: the second one ends it even with nobody reading
	exec 5<>"$T/pipe"
	start_bg chlag --prometheus --watch=1 "$CH" >"$T/pipe"
	wait_for 20 grep -q pipe "/proc/$BG/wchan"
	kill -INT "$BG"
	wait_until 20 'grep -Eq "^ShdPnd:\s+0+$" "/proc/$BG/status" &&
	    grep -Eq "^SigPnd:\s+0+$" "/proc/$BG/status"'
	kill -INT "$BG"
	wait_for 10 bash -c "! kill -0 $BG 2>/dev/null"
	exec 5>&-
}

# --- status rules ---------------------------------------------------------

@test "acceptance: killed -> STOP, keeping up -> OK, falling behind -> WARN, stuck -> STALL, moved back -> REWIND, idle -> OK" {
	seq 10 | chpub "$CH"
	# stop: a following chsub, caught up, then killed
	hold stop
	wait_until 10 '[ "$(offset_of stop)" = "$(end_offset)" ]'
	kill "$BG"
	wait "$BG" || true
	# stall: a following chsub that is caught up, then stopped
	hold stall
	stall=$BG
	wait_until 10 '[ "$(offset_of stall)" = "$(end_offset)" ]'
	kill -STOP "$stall"
	# ok, warn and rewind start together
	chsub "$CH" ok >/dev/null
	chsub --from=earliest -n 2 "$CH" warn >/dev/null
	chsub --from=earliest "$CH" rewind >/dev/null
	# two minutes apart, ten records arrive and warn reads only two
	for t in +2m +4m; do
		seq 10 | at "$t" chpub "$CH"
		at "$t" chsub -n 2 "$CH" warn >/dev/null
	done
	at +4m chsub "$CH" ok >/dev/null
	at +4m choffset --shift=-5 "$CH" rewind >/dev/null
	# an idle channel whose subscriber read everything long ago
	idle="$T/idle"
	chpub "$idle" a b c
	chsub --from=earliest "$idle" reader >/dev/null

	run -2 at +5m chlag "$CH" "$idle"
	assert_line --regexp "^$CH +ok +.* OK$"
	assert_line --regexp "^$CH +warn +.* WARN$"
	assert_line --regexp "^$CH +stop +.* STOP$"
	assert_line --regexp "^$CH +stall +.* STALL$"
	assert_line --regexp "^$CH +rewind +.* REWIND$"
	assert_line --regexp "^$idle +reader +.* OK$"
	run -2 at +5m chlag --json "$CH"
	assert_output --regexp '"subscriber":"stall","status":"STALL",[^}]*"running":true,"pid":'"$stall"'\}'
	run -0 at +1h chlag "$idle"
}

# explain_of SUBSCRIBER: the --explain lines under its row in the table
# in $T/table, their indent removed, and durations rounded down to the
# 10 seconds.
explain_of() {
	awk -v s="$1" 'NR > 1 && !/^  / { on = ($2 == s) } on && /^  / { print substr($0, 3) }' \
	    "$T/table" | sed -E 's/\<([0-9]+m)?([0-9])[0-9]s\>/\1\20s/g'
}

@test "--explain: under each row the rule that set its status, with the numbers it compared and the samples it used; the same text in JSON and YAML" {
	# at_t0 SECONDS CMD...: CMD with its clock stopped SECONDS after t0
	# (faketime's i0: it moves by 0 at each reading).  Offsets from now
	# added the real time the commands before took to the durations the
	# reports show: seconds on a loaded machine, more than the 10 s
	# explain_of rounds off.
	local t0
	t0=$(date +%s)
	at_t0() { faketime -f "@$(date -d "@$((t0 + $1))" '+%Y-%m-%d %H:%M:%S') i0" "${@:2}"; }
	seq 10 | at_t0 0 chpub "$CH"
	local e10 rewound warn_at
	e10=$(end_offset)
	at_t0 0 chsub "$CH" ok >/dev/null
	at_t0 0 chsub --from=earliest -n 2 "$CH" warn >/dev/null
	at_t0 0 chsub --from=earliest "$CH" rewind >/dev/null
	at_t0 0 choffset --create --earliest "$CH" stop >/dev/null
	for t in 120 240; do
		seq 10 | at_t0 "$t" chpub "$CH"
		at_t0 "$t" chsub -n 2 "$CH" warn >/dev/null
	done
	at_t0 240 chsub "$CH" ok >/dev/null
	at_t0 240 choffset --shift=-5 "$CH" rewind >/dev/null
	at_t0 270 chsub --from=earliest -n 25 "$CH" slow >/dev/null
	rewound=$(offset_of rewind)
	warn_at=$(offset_of warn)
	# The table, JSON and YAML reports, 5 minutes on.
	run -2 at_t0 300 chlag --explain "$CH"
	printf '%s\n' "$output" >"$T/table"
	explain_of ok >"$T/ok"
	assert_equal "$(cat "$T/ok")" "$(printf '%s\n' \
	    'OK by rule 3: lag 0 records is within --allowed-lag 0 and no handler is failing: caught up, however long ago it last committed (1m00s).' \
	    'Samples: the commit history within --window 10m00s, oldest first, then now:' \
	    "  1. 5m00s ago: offset $e10, record 10, lag 0 records" \
	    "  2. 1m00s ago: offset $(end_offset), record 30, lag 0 records" \
	    "  3. now: offset $(end_offset), record 30, lag 0 records")"
	explain_of warn >"$T/warn"
	assert_equal "$(head -n 2 "$T/warn")" "$(printf '%s\n' \
	    "WARN by rule 7: over 4 samples the offset advanced from 0 to $warn_at but the lag never shrank and grew from 10 to 24 records: it consumes, but falls behind; not STALL: last commit 1m00s ago (within stop_after 4m00s), oldest unread record 5m00s old (over stop_after 4m00s)." \
	    'stop_after 4m00s = max(--stall 1m00s, min(2 x median gap 2m00s of the 2 gaps between the 3 history entries, --window 10m00s)).')"
	assert_equal "$(sed -n '4,$p' "$T/warn" | cut -d, -f3)" "$(printf ' lag %s records\n' 10 16 24 24)"
	explain_of rewind >"$T/rewind"
	run grep -c . "$T/rewind"
	assert_output 6
	run cat "$T/rewind"
	assert_line -n 0 "REWIND by rule 1: the offset went back from $e10 (sample 2) to $rewound (sample 3, 1m00s ago), within --window 10m00s; REWIND lasts until that sample is older than the window."
	assert_line -n 4 "  3. 1m00s ago: offset $rewound, record 5, lag 25 records (moved back)"
	explain_of stop >"$T/stop"
	run cat "$T/stop"
	assert_line -n 0 'STOP by rule 4: lag 30 records, last commit 5m00s ago (over stop_after 1m00s), oldest unread record 5m00s old (over stop_after 1m00s), and no chsub is running: the reader is gone.'
	assert_line -n 1 'stop_after 1m00s = --stall (fewer than 2 history entries to tell how often it commits).'
	explain_of slow >"$T/slow"
	run cat "$T/slow"
	assert_line -n 0 --regexp '^OK by rule 8: lag 5 records is over --allowed-lag 0, but not STOP or STALL: last commit 30s ago \(within stop_after 1m00s\), .*; and not WARN: the lag did not grow over the samples \(30 records then, 5 now\)\.$'
	# The same words in JSON and YAML, one string with the lines.
	run -2 --separate-stderr at_t0 300 chlag --explain --json "$CH"
	printf '%s\n' "$output" >"$T/json"
	run -2 --separate-stderr at_t0 300 chlag --explain --yaml "$CH"
	printf '%s\n' "$output" >"$T/yaml"
	run -0 python3 -c '
import json, re, sys, yaml
def norm(t):	# as explain_of does
    return re.sub(r"\b((?:\d+m)?)(\d)\ds\b", r"\g<1>\g<2>0s", t)
js = {r["subscriber"]: norm(r["explain"]) for r in json.load(open(sys.argv[1]))}
ys = {r["subscriber"]: norm(r["explain"]) for r in yaml.safe_load(open(sys.argv[2]))}
for s in ("ok", "warn", "rewind", "stop", "slow"):
    want = open(sys.argv[3] + "/" + s).read().rstrip("\n")
    assert js[s] == want, (s, js[s], want)
    assert ys[s] == want, (s, ys[s], want)
print("ok")' "$T/json" "$T/yaml" "$T"
	assert_output ok
	# Without --explain, none of it.
	run -2 at_t0 300 chlag --json "$CH"
	refute_output --partial explain
	run -2 at_t0 300 chlag "$CH"
	refute_output --partial 'by rule'
}

@test "--explain with --prometheus or --nagios is a usage error (3); ERROR and INVALID rows say no rule applies" {
	chsub "$CH" s >/dev/null
	run -3 --separate-stderr chlag --explain --prometheus "$CH"
	assert_equal "$stderr" "$(printf '%s\n' "chlag: --explain goes with the table, --json or --yaml, not with --prometheus" "Try 'chlag --help' for more information.")"
	run -3 --separate-stderr chlag --nagios --explain "$CH"
	[[ $stderr == *"not with --nagios"* ]] || fail "stderr: $stderr"
	echo damage >"$CH/subscribers/s/offset"
	run -2 chlag --explain "$CH"
	assert_line --regexp "^  INVALID: the offset file is damaged, so no rule applies: subscriber 's': .*\\.\$"
	unreadable_offset s
	run -3 chlag --explain "$CH"
	assert_line --regexp "^  ERROR: the offset file cannot be read, so no rule applies: subscriber 's': offset: Is a directory\\.\$"
}

@test "RETRY while chsub -x retries a failing record, FAILED once it gave up: attempts and next attempt in every format" {
	chpub "$CH" doomed
	choffset --create --earliest "$CH" s >/dev/null
	start_bg chsub --retries=5 --backoff=1h -x 'exit 3' "$CH" s
	wait_for 10 grep -q '^retry ' "$CH/subscribers/s/offset"
	run -1 chlag "$CH"
	assert_line --regexp '^[^ ]+ +s .* RETRY$'
	assert_line --regexp '^  \(retrying: the handler failed 1 time on the record at offset 0, the last [0-9a-z]+ ago \(exit 3\); attempt 2 in (59m|1h)'
	run -1 --separate-stderr chlag --json "$CH"
	run -0 python3 -c '
import json, sys
r = json.loads(sys.argv[1])[0]
t = r["retry"]
assert r["status"] == "RETRY" and r["running"], r
assert t["attempts"] == 1 and t["records"] == 1 and t["offset"] == 0, t
assert t["last_status"] == "exit 3" and t["next_attempt"] > t["last_failure"], t
print("ok")' "$output"
	run -1 chlag --yaml "$CH"
	assert_line '  status: "RETRY"'
	assert_line '    attempts: 1'
	assert_line '    last_status: "exit 3"'
	assert_line --regexp '^    next_attempt: "[0-9T:-]+Z"$'
	run -1 chlag --prometheus "$CH"
	assert_line "chlag_retry_attempts{channel=\"$CH\",subscriber=\"s\"} 1"
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"s\",status=\"RETRY\"} 1"
	assert_line --regexp "^chlag_retry_next_attempt_timestamp_seconds\\{channel=\"$CH\",subscriber=\"s\"\\} [0-9.e+]+\$"
	run -1 chlag --nagios "$CH"
	assert_output --regexp "^CHLAG WARNING - 1 of 1 subscribers need attention; worst $CH/s: RETRY, .*; attempt 2 in .* '$CH/s_attempts'=1;;;0;\$"
	run -1 chlag --explain "$CH"
	assert_line --regexp '^  RETRY by rule 5: the handler failed 1 time on the record at offset 0 and chsub tries again in (59m|1h)[0-9ms]*; not STOP or STALL: last commit [0-9ms]+ ago \(within stop_after 1m00s\), '
	kill -TERM "$BG"
	wait "$BG"
	# No attempt left for --retries=0: chsub gives up at once.
	run -69 chsub --retries=0 -x 'exit 3' "$CH" s
	run -2 chlag "$CH"
	assert_line --regexp '^[^ ]+ +s .* FAILED$'
	assert_line --partial 'and chsub gave up: it exits 69 until the record gets more attempts)'
	run -2 chlag --json "$CH"
	assert_output --partial '"next_attempt":null}'
	run -2 chlag --prometheus "$CH"
	refute_line --partial chlag_retry_next_attempt_timestamp_seconds'{'
	assert_line "chlag_status{channel=\"$CH\",subscriber=\"s\",status=\"FAILED\"} 1"
	run -2 chlag --nagios "$CH"
	assert_output --regexp "^CHLAG CRITICAL - .* FAILED, "
	run -2 chlag --explain "$CH"
	assert_line '  FAILED by rule 2: the handler failed 1 time on the record at offset 0 and chsub gave up on it (no attempt left, no dead-letter channel).'
	# Through at last: OK, no retry state left.
	run -0 chsub --retries=1 -x true "$CH" s
	run -0 chlag --json "$CH"
	refute_output --partial retry
	assert_output --partial '"status":"OK"'
}

@test "RETRY with no chsub running turns STOP once nothing moved for long; FAILED stays FAILED" {
	at -2h chpub "$CH" doomed
	at -2h choffset --create --earliest "$CH" s >/dev/null
	# Fails once, 2 hours ago, and is stopped in its backoff.
	at -2h chsub --retries=3 --backoff=1h \
	    -x "echo \$PPID >'$T/chsub.pid'; exit 1" "$CH" s 3>&- &
	local p=$!
	wait_for 10 grep -q '^retry ' "$CH/subscribers/s/offset"
	wait_for 10 test -s "$T/chsub.pid"
	kill -TERM "$(cat "$T/chsub.pid")"
	wait "$p"
	assert_equal "$(status_of s)" STOP
	run -69 at -2h chsub --retries=0 -x 'exit 1' "$CH" s
	assert_equal "$(status_of s)" FAILED
}

@test "OK: a subscriber that keeps up, committing now and then" {
	for t in +0s +1m +2m +3m; do
		seq 5 | at "$t" chpub "$CH"
		at "$t" chsub "$CH" s >/dev/null
	done
	run -0 at +4m chlag "$CH"
	assert_line -n 1 --regexp ' OK$'
}

@test "an idle, caught-up channel is OK however long nothing happens" {
	seq 5 | chpub "$CH"
	chsub --from=earliest "$CH" s >/dev/null
	run -0 at +3d chlag "$CH"
	assert_line -n 1 --regexp ' OK$'
}

@test "a new record on a long idle channel is not an alarm (its age counts, not the idle time)" {
	chsub "$CH" s >/dev/null
	at +2h chpub "$CH" fresh
	run -0 at +2h chlag "$CH"
	assert_line -n 1 --regexp " s +.* 1 +[0-9]+(ms|s) +2h00m ago +OK$"
}

@test "STOP: not committing while lag > 0, no chsub running" {
	chsub "$CH" s >/dev/null
	seq 5 | chpub "$CH"
	run -0 at +50s chlag "$CH"
	assert_line -n 1 --regexp ' OK$'
	run -2 at +2m chlag "$CH"
	assert_line -n 1 --regexp ' STOP$'
}

@test "STALL: a running chsub whose output nobody reads" {
	chsub "$CH" s >/dev/null
	mkfifo "$T/fifo"
	# the reader holds the FIFO open but never reads: chsub blocks writing
	start_bg bash -c 'exec 5<"$1"; kill -STOP $$' _ "$T/fifo"
	start_bg chsub -f "$CH" s >"$T/fifo"
	wait_until 10 'chlag --json "$CH" | grep -q "\"running\":true"'
	# far more than a pipe buffer (chsub may grow its stdout pipe to the
	# 1 MiB limit): chsub blocks with a lag
	seq -f 'a record of some length number %g' 60000 | chpub "$CH"
	run -2 at +5m chlag "$CH"
	assert_line -n 1 --regexp ' STALL$'
}

@test "WARN: consuming, but the lag keeps growing" {
	seq 10 | chpub "$CH"
	chsub --from=earliest -n 2 "$CH" s >/dev/null
	for t in +1m +2m +3m; do
		seq 10 | at "$t" chpub "$CH"
		at "$t" chsub -n 2 "$CH" s >/dev/null
	done
	run -1 at +3m30s chlag "$CH"
	assert_line -n 1 --regexp ' WARN$'
}

# A consumer run from cron catches up at every run; between runs its lag
# is what was published since: lags 0, 0, 0, 0, then 10 now.  WARN said
# it fell behind (an audit finding).
# One publish while the clock was a day ahead: every record after it is
# stamped with that time until the clock catches up.  A subscriber that
# stopped then showed AGE 0 and OK for up to a day (an audit finding).
@test "records stamped ahead of the clock by one publish before a clock step are as old as their segment's last write: a stopped reader is STOP" {
	at -1d1h chpub "$CH" early-in-the-day
	at +1d chpub "$CH" ahead
	choffset --create --latest "$CH" reader >/dev/null
	seq 100 | chpub "$CH"
	# (libfaketime would move the segment's mtime along with the clock)
	export NO_FAKE_STAT=1
	run -2 at +6h chlag -c age:30m "$CH"
	assert_line -n 1 --regexp "^$CH +reader .* (5h59m|6h00m) +6h00m ago +STOP$"
}

@test "a periodic consumer that catches up at every run is OK between runs, not WARN, and --explain says why" {
	at -10m chpub "$CH" </dev/null
	at -10m choffset --create "$CH" cron >/dev/null
	for m in 4 3 2 1; do
		seq 10 | at "-${m}m5s" chpub "$CH"
		at "-${m}m" chsub "$CH" cron >/dev/null
	done
	seq 10 | at -20s chpub "$CH"
	run -0 chlag --explain "$CH"
	assert_line -n 1 --regexp ' OK$'
	assert_line --regexp "^  OK by rule 8: .*; and not WARN: it was caught up within the window \(lag 0 at sample 1, within --allowed-lag 0\)\.$"
	run -0 chlag --nagios "$CH"
}

@test "a subscriber that catches up from a backlog it was registered behind is OK, not WARN" {
	seq 100 | chpub "$CH"
	# registered at the earliest record: lag 100 from the start
	chsub --from=earliest -n 10 "$CH" s >/dev/null
	for t in +1m +2m; do
		seq 5 | at "$t" chpub "$CH"
		at "$t" chsub -n 4 "$CH" s >/dev/null
	done
	# lag: 100 at registration, 91 at +1m, 92 at +2m: shrinking overall
	run -0 at +2m30s chlag "$CH"
	assert_line -n 1 --regexp ' OK$'
}

@test "REWIND: the offset moved backwards within the window" {
	seq 10 | chpub "$CH"
	chsub --from=earliest "$CH" s >/dev/null
	at +1m choffset --shift=-3 "$CH" s >/dev/null
	at +1m chsub "$CH" s >/dev/null	# caught up again: still REWIND
	run -2 at +2m chlag "$CH"
	assert_line -n 1 --regexp ' REWIND$'
	assert_line -n 1 --regexp " s +$(end_offset) +"
}

@test "a rewind older than the window is forgotten; --window sets the window" {
	seq 10 | chpub "$CH"
	chsub --from=earliest "$CH" s >/dev/null
	choffset --shift=-3 "$CH" s >/dev/null
	chsub "$CH" s >/dev/null
	run -2 at +9m chlag "$CH"
	run -0 at +11m chlag "$CH"
	run -0 at +9m chlag --window=5m "$CH"
}

@test "how long counts as stopped adapts to the subscriber's usual commit interval" {
	# commits every 4 minutes (catching up each time): stop_after = 8m
	for t in +0s +4m +8m; do
		seq 5 | at "$t" chpub "$CH"
		at "$t" chsub --from=earliest "$CH" s >/dev/null
	done
	seq 5 | at +8m1s chpub "$CH"
	run -0 at +15m chlag "$CH"	# 7m since the last commit
	assert_line -n 1 --regexp ' OK$'
	run -2 at +17m chlag "$CH"	# 9m
	assert_line -n 1 --regexp ' STOP$'
}

@test "--stall sets the least time without progress that is STALL or STOP" {
	chsub "$CH" s >/dev/null
	seq 5 | chpub "$CH"
	run -2 at +3m chlag "$CH"
	run -0 at +3m chlag --stall=5m "$CH"
	run -2 at +6m chlag --stall=5m "$CH"
}

@test "--allowed-lag counts a small lag as caught up" {
	chsub "$CH" s >/dev/null
	seq 3 | chpub "$CH"
	run -2 at +5m chlag "$CH"
	run -0 at +5m chlag --allowed-lag=3 "$CH"
	assert_line -n 1 --regexp ' OK$'
	run -2 at +5m chlag --allowed-lag=2 "$CH"
}

@test "with thresholds given, they decide the exit status, not the status column" {
	chsub "$CH" s >/dev/null
	seq 3 | chpub "$CH"
	run -0 at +5m chlag --warn=records:10 "$CH"
	assert_line -n 1 --regexp ' STOP$'
	run -1 at +5m chlag --warn=records:2 "$CH"
}

# As for chcompact (60-chcompact): chlag used to say "segment index: No
# such file or directory".  Its status for any failure is 3 (UNKNOWN).
@test "a channel removed while chlag looks at it: channel removed" {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/crash"
	need_chfault
	chpub "$CH" a
	CHFAULT_RUN="rm -rf '$CH'" CHFAULT_RUN_AT=open:index:1 \
	    LD_PRELOAD="$CHFAULT" run -3 --separate-stderr chlag "$CH"
	assert_equal "$stderr" "chlag: $CH: channel removed"
	assert_not_exist "$CH"
}
