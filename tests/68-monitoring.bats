#!/usr/bin/env bats
# chlag's monitoring outputs, read by their real consumers: the Prometheus
# report checked by `promtool check metrics` (lint included) and scraped
# through a real prometheus-node-exporter's textfile collector on
# loopback; the Nagios line parsed strictly against the plugin
# guidelines' grammar (helpers/nagios_output.py).  Channels with every
# status, and paths holding what those formats cannot carry as is.

setup() {
	load helpers/common
	load helpers/ops
	load helpers/forward
	load helpers/monitoring
	common_setup
	NE=""
}

teardown() {
	stop_node_exporter
	ops_teardown
}

# hostile_channel: a channel in $HOSTILE whose path holds a quote, a
# backslash, '=', '|', a space, a tab, a line feed and a byte that is not
# UTF-8; its subscriber s has a lag of 1.
hostile_channel() {
	HOSTILE="$T/we\"ird\\na=me|x 'q'"$'\t\n\377'
	chpub "$HOSTILE" a
	chsub "$HOSTILE" s >/dev/null
	chpub "$HOSTILE" b
}

# every_status: $CH with subscribers that are OK, STOP, FAILED, INVALID
# and ERROR (unreadable offset file).
every_status() {
	chpub "$CH" one two
	chsub "$CH" ok >/dev/null
	choffset --create --earliest "$CH" stop >/dev/null
	choffset --create --earliest "$CH" failed >/dev/null
	run -69 chsub --retries=0 -x 'exit 3' "$CH" failed
	choffset --create --earliest "$CH" invalid >/dev/null
	doctor_offset invalid offset 5
	choffset --create --earliest "$CH" error >/dev/null
	# unreadable (a directory: an I/O error, even for root), not damage
	rm "$CH/subscribers/error/offset"
	mkdir "$CH/subscribers/error/offset"
}

# The gauges, as chlag(1) lists them.
METRICS="chlag_channel_up chlag_end_offset_bytes chlag_lag_bytes
chlag_lag_records chlag_lag_seconds chlag_last_commit_timestamp_seconds
chlag_offset_bytes chlag_retry_attempts
chlag_retry_next_attempt_timestamp_seconds chlag_running
chlag_scrape_timestamp_seconds chlag_status"

@test "--prometheus: promtool check metrics accepts the report, lint included, with every status, a channel it cannot read and a hostile channel path" {
	need promtool prometheus
	every_status
	hostile_channel
	run -2 --separate-stderr chlag --prometheus "$CH" "$HOSTILE" "$T/nothing"
	printf '%s\n' "$output" >"$T/chlag.prom"
	run promtool check metrics <"$T/chlag.prom"
	assert_success
	assert_output ""
	# the backslash as \\, the byte that is not UTF-8 as \xff, then the
	# format's escapes (17 samples of its row, whether it could be read
	# and its scrape time)
	run grep -cF -- "channel=\"$T/we\\\"ird\\\\\\\\na=me|x 'q'"$'\t\\n\\\\xff"' "$T/chlag.prom"
	assert_output 19
}

# alike_channels: channels in $ALIKE whose paths differ only in bytes that
# are not UTF-8, or in text that one of those could be written as (\xff,
# U+FFFD); a subscriber s with a lag of 1 in each.
alike_channels() {
	ALIKE=("$T/a"$'\xff' "$T/a"$'\xfe' "$T/a\\xff" "$T/a"$'\xef\xbf\xbd' "$T/a\\")
	local c
	for c in "${ALIKE[@]}"; do
		chpub "$c" a
		chsub "$c" s >/dev/null
		chpub "$c" b
	done
}

@test "--prometheus: channels whose paths differ only in bytes that are not UTF-8 get distinct labels (\xHH, a backslash doubled), not one duplicate series" {
	alike_channels
	run -0 --separate-stderr chlag --prometheus "${ALIKE[@]}"
	printf '%s\n' "$output" >"$T/chlag.prom"
	run -0 grep '^chlag_channel_up{' "$T/chlag.prom"
	# as the format escapes them: each backslash of the label doubled
	assert_output "chlag_channel_up{channel=\"$T/a\\\\xff\"} 1
chlag_channel_up{channel=\"$T/a\\\\xfe\"} 1
chlag_channel_up{channel=\"$T/a\\\\\\\\xff\"} 1
chlag_channel_up{channel=\"$T/a"$'\xef\xbf\xbd'"\"} 1
chlag_channel_up{channel=\"$T/a\\\\\\\\\"} 1"
	# no series twice
	run -0 bash -c 'grep -v "^#" "$1" | sed "s/} .*/}/" | sort | uniq -d' _ "$T/chlag.prom"
	assert_output ""
	run -0 grep -c '^chlag_lag_records{.*} 1$' "$T/chlag.prom"
	assert_output 5
}

@test "--prometheus -o: channels whose paths differ only in bytes that are not UTF-8, scraped through a real prometheus-node-exporter: every series served, none a duplicate" {
	need prometheus-node-exporter prometheus-node-exporter
	need promtool prometheus
	alike_channels
	mkdir "$T/textfile"
	run -0 chlag --prometheus -o "$T/textfile/chlag.prom" "${ALIKE[@]}"
	run -0 promtool check metrics <"$T/textfile/chlag.prom"
	scrape_clean "$T/textfile"
	run -0 grep -c '^chlag_channel_up{.*} 1$' "$T/scraped"
	assert_output 5
	run -0 grep -c '^chlag_lag_records{.*} 1$' "$T/scraped"
	assert_output 5
}

@test "--prometheus: metric names follow the Prometheus conventions (snake case, base units, no counters) and chlag(1) lists each" {
	chpub "$CH" a
	chsub "$CH" s >/dev/null
	run -0 chlag --prometheus "$CH"
	local names
	names=$(grep '^# TYPE ' <<<"$output" | awk '{ print $3 }' | sort)
	assert_equal "$names" "$(tr ' ' '\n' <<<"$METRICS" | sort)"
	run -0 awk '/^# TYPE / { print $4 }' <<<"$output"
	refute_line --regexp '^(counter|histogram|summary)$'
	local m man="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../man/chlag.1"
	for m in $names; do
		[[ $m =~ ^chlag_[a-z]+(_[a-z]+)*$ ]] || fail "$m: not snake case"
		[[ $m != *_total ]] || fail "$m: a gauge named like a counter"
		# bytes and seconds, never kilobytes or milliseconds; every
		# time a _timestamp_seconds; offsets are byte positions
		[[ ! $m =~ _(kilo|mega|milli|micro|nano)?(bytes|seconds)_ ]] ||
			fail "$m: unit not at the end"
		[[ ! $m =~ (milli|micro|nano)seconds$|[kmg]i?b$|_minutes$|_ms$ ]] ||
			fail "$m: not a base unit"
		[[ $m != *offset* || $m == *_bytes ]] || fail "$m: offset without _bytes"
		[[ $m != *timestamp* || $m == *_timestamp_seconds ]] ||
			fail "$m: time stamp not in seconds"
		grep -q "$m" "$man" || fail "$m: not in chlag(1)"
	done
}

@test "--prometheus -o: scraped through a real prometheus-node-exporter, two reports side by side, every sample as written" {
	need prometheus-node-exporter prometheus-node-exporter
	every_status
	hostile_channel
	mkdir "$T/textfile"
	run -2 chlag --prometheus -o "$T/textfile/chlag.prom" "$CH" "$HOSTILE" "$CH"
	local other="$T/other"
	chpub "$other" x
	choffset --create --earliest "$other" s >/dev/null
	run -0 chlag --prometheus -o "$T/textfile/other.prom" "$other"
	scrape_clean "$T/textfile"
	# Every sample of both files, with the same labels and value.
	run -0 python3 - "$T/scraped" "$T/textfile/chlag.prom" "$T/textfile/other.prom" <<'EOF'
import re, sys
SAMPLE = re.compile(r'([a-z_]+)(?:\{(.*)\})? (\S+)$')
PAIR = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)",?')
def samples(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        labels = frozenset(PAIR.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, "twice: %r" % line
        out[key] = float(m.group(3))
    return out
scraped = samples(sys.argv[1])
n = 0
for f in sys.argv[2:]:
    for key, v in samples(f).items():
        assert key in scraped, "not scraped: %r" % (key,)
        assert scraped[key] == v, "%r: %r scraped as %r" % (key, v, scraped[key])
        n += 1
print(n, "samples")
EOF
	[[ $output =~ ^([0-9]+)\ samples$ ]] || fail "$output"
	((BASH_REMATCH[1] > 50)) || fail "too few samples: $output"
	grep -q 'chlag_status{channel="'"$CH"'",status="FAILED",subscriber="failed"} 1' "$T/scraped" ||
		fail "no FAILED status in: $(grep chlag_status "$T/scraped")"
}

@test "--nagios: every line parses strictly as the plugin guidelines define it: each state, thresholds, unreadable channels, no subscribers, a hostile path" {
	every_status
	run -2 chlag --nagios "$CH"
	nagios_check 2 "$output"
	# no ERROR or INVALID rows in the performance data
	run cut -f1 <<<"$output"
	assert_output "$(printf '%s\n' "$CH/failed_records" "$CH/failed_bytes" \
	    "$CH/failed_age" "$CH/failed_attempts" "$CH/ok_records" \
	    "$CH/ok_bytes" "$CH/ok_age" "$CH/ok_attempts" "$CH/stop_records" \
	    "$CH/stop_bytes" "$CH/stop_age" "$CH/stop_attempts")"
	CH=$T/second
	chpub "$CH" a b c
	choffset --create --earliest "$CH" s >/dev/null
	chsub -n 1 "$CH" s >/dev/null
	run -0 chlag --nagios "$CH"
	nagios_check 0 "$output"
	run -1 chlag --nagios --warn=records:1 --crit=records:5,age:1h "$CH"
	nagios_check 1 "$output"
	assert_line "$(printf '%s\t2\t\t1\t5\t0\t' "$CH/s_records")"
	assert_line --regexp "^$CH/s_bytes	[1-9][0-9]*	B			0	\$"
	assert_line --regexp "^$CH/s_age	[0-9]+	s		3600	0	\$"
	run -2 chlag --nagios --crit=records:1 "$CH"
	nagios_check 2 "$output"
	# a channel that cannot be read: UNKNOWN, and said in the text
	run -3 --separate-stderr chlag --nagios "$T/nothing" "$CH"
	[[ $output == "CHLAG UNKNOWN - 1 channel cannot be read, $T/nothing: no such channel; 0 of 1 "* ]] ||
		fail "$output"
	nagios_check 3 "$output"
	run -3 --separate-stderr chlag --nagios "$T/nothing"
	assert_output "CHLAG UNKNOWN - 1 channel cannot be read, $T/nothing: no such channel"
	nagios_check 3 "$output"
	# no subscribers: no performance data, and no '|'
	CH=$T/empty
	new_channel
	run -0 chlag --nagios "$CH"
	assert_output "CHLAG OK - no subscribers"
	nagios_check 0 "$output"
	# '=', '|', quotes, space, tab, line feed, not UTF-8
	hostile_channel
	run -0 chlag --nagios "$HOSTILE" "$HOSTILE"
	nagios_check 0 "$output"
	local shown="$T/we\"ird\\na_me|x 'q'__"$'\xef\xbf\xbd'
	assert_equal "${#lines[@]}" 4
	assert_line -n 0 "${shown}/s_records	1				0	"
	[[ ${lines[1]} =~ ^"${shown}/s_bytes	"[1-9][0-9]*"	B			0	"$ ]] ||
		fail "${lines[1]}"
	[[ ${lines[2]} =~ ^"${shown}/s_age	"[0-9]+"	s			0	"$ ]] ||
		fail "${lines[2]}"
	assert_line -n 3 "${shown}/s_attempts	0				0	"
	run -0 chlag --nagios "$HOSTILE"
	[[ $output == "CHLAG OK - 0 of 1 subscribers need attention; worst $T/we\"ird\\na=me_x 'q'__"$'\xef\xbf\xbd'"/s: "* ]] ||
		fail "$output"
}

@test "--nagios: a retrying subscriber's line and attempts parse strictly too" {
	chpub "$CH" doomed
	choffset --create --earliest "$CH" s >/dev/null
	run -69 chsub --retries=0 -x 'exit 3' "$CH" s
	run -2 chlag --nagios "$CH"
	nagios_check 2 "$output"
	assert_line "$(printf '%s\t1\t\t\t\t0\t' "$CH/s_attempts")"
}

@test "examples/chlag-alerts.yml: every metric and status the rules name is one chlag prints; a rule sees each row without a lag and each channel it cannot read" {
	every_status
	run -2 --separate-stderr chlag --prometheus "$CH" "$T/nothing"
	printf '%s\n' "$output" >"$T/chlag.prom"
	local rules="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../examples/chlag-alerts.yml"
	local printed statuses used ruled name line n=0
	printed=$(awk '/^# TYPE / { print $3 }' "$T/chlag.prom" | sort -u)
	statuses=$(grep -o 'status="[A-Z]*"' "$T/chlag.prom" | sort -u |
	    sed 's/status="\(.*\)"/\1/')
	used=$(grep -E '^ *expr:' "$rules") || fail "no expr in $rules"
	for name in $(grep -oE 'chlag_[a-z_]+' <<<"$used" | sort -u); do
		grep -qxF "$name" <<<"$printed" ||
			fail "$name: in the rules, not printed by chlag"
		n=$((n + 1))
	done
	((n >= 3)) || fail "only $n metrics in: $used"
	# the statuses in status="X" and status=~"X|Y"
	ruled=$(grep -oE 'status=~?"[^"]*"' <<<"$used" |
	    sed 's/.*"\(.*\)"/\1/' | tr '|' '\n' | sort -u)
	for name in $ruled; do
		grep -qxF "$name" <<<"$statuses" ||
			fail "$name: a status in the rules that chlag does not have"
	done
	# A row without chlag_lag_seconds (ERROR, INVALID) is seen by its
	# status alone.
	n=0
	while IFS= read -r line; do
		[[ $line =~ ^chlag_status\{(.*),status=\"([A-Z]+)\"\}\ 1$ ]] ||
			continue
		grep -qF "chlag_lag_seconds{${BASH_REMATCH[1]}}" "$T/chlag.prom" &&
			continue
		grep -qxF "${BASH_REMATCH[2]}" <<<"$ruled" ||
			fail "no rule for status ${BASH_REMATCH[2]}, a row without a lag"
		n=$((n + 1))
	done <"$T/chlag.prom"
	assert_equal "$n" 2
	# A channel it cannot read: 0 (1 for one it can), and a rule on it.
	run -0 grep '^chlag_channel_up' "$T/chlag.prom"
	assert_output "chlag_channel_up{channel=\"$CH\"} 1
chlag_channel_up{channel=\"$T/nothing\"} 0"
	run -0 grep -c 'expr: chlag_channel_up == 0$' "$rules"
	assert_output 1
}

@test "examples/chlag-alerts.yml: promtool checks the rules and, on a real chlag report, fires for a stopped subscriber that is behind, one whose offset file cannot be read and a channel chlag cannot read, not for one that is fine" {
	need promtool prometheus
	local rules="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../examples/chlag-alerts.yml"
	run -0 promtool check rules "$rules"
	at() { local w=$1; shift; faketime -f "$w" "$@"; }
	at -20m chpub "$CH" a
	at -20m chsub "$CH" ok >/dev/null
	at -20m choffset --create --earliest "$CH" stop >/dev/null
	at -20m choffset --create --earliest "$CH" error >/dev/null
	rm "$CH/subscribers/error/offset"	# unreadable, not damage
	mkdir "$CH/subscribers/error/offset"
	local bad=$T/bad
	chpub "$bad" </dev/null
	echo 'segment_bytes: [' >"$bad/channel.yaml"
	run -2 --separate-stderr chlag --prometheus "$CH" "$bad"
	printf '%s\n' "$output" >"$T/chlag.prom"
	# Every sample of the report as a series that holds its value for 20
	# minutes, and the alerts expected 12 minutes in.
	python3 - "$T/chlag.prom" "$rules" "$CH" "$bad" >"$T/test.yml" <<'EOF'
import json, sys
prom, rules, ch, bad = sys.argv[1:]
series, behind = [], None
for line in open(prom):
    if line.startswith("#") or not line.strip():
        continue
    name, value = line.rsplit(" ", 1)
    if not name.startswith("chlag_scrape_timestamp_seconds"):
        series.append({"series": name, "values": "%sx20" % value.strip()})
    if name.startswith("chlag_lag_seconds{") and 'subscriber="stop"' in name:
        behind = int(float(value))	# as humanizeDuration shows it
def sub(name):
    return {"channel": ch, "subscriber": name}
def alert(name, *exp):
    return {"eval_time": "12m", "alertname": name, "exp_alerts": [
        {"exp_labels": labels, "exp_annotations": annotations}
        for labels, annotations in exp]}
def stuck(name, status):
    return (dict(sub(name), status=status, severity="critical"),
            {"summary": "%s/%s is %s" % (ch, name, status), "description":
             "Run `chlag --explain %s` to see which rule set it and why." % ch})
print(json.dumps({"rule_files": [rules], "evaluation_interval": "1m",
    "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": [
        alert("ChannelSubscriberStuck", stuck("stop", "STOP"),
              stuck("error", "ERROR")),
        alert("ChannelSubscriberBehind", (dict(sub("stop"), severity="warning"),
              {"summary": "%s/stop is %dm %ds behind"
               % (ch, behind // 60, behind % 60)})),
        alert("ChannelUnreadable", ({"channel": bad, "severity": "critical"},
              {"summary": "chlag cannot read %s" % bad,
               "description": "Run `chlag %s` to see why." % bad})),
        alert("ChannelSubscriberRetrying"),
    ]}]}))
EOF
	run promtool test rules "$T/test.yml"
	assert_success
}
