# monitoring.bash: chlag's outputs read by their real consumers: promtool,
# prometheus-node-exporter's textfile collector, and a strict reader of
# Nagios plugin output (nagios_output.py).  Load after common.bash and
# forward.bash (free_port) and common.bash (proc_gone).

# need PROGRAM PACKAGE: skip the test, saying what is missing, unless
# PROGRAM is installed (./bootstrap installs PACKAGE).
need() {
	command -v "$1" >/dev/null ||
		skip "$1 is not installed (Debian package $2; ./bootstrap installs it)"
}

# nagios_check EXIT OUTPUT: OUTPUT (chlag --nagios, which exited EXIT)
# read strictly as the plugin guidelines define it; the performance data,
# one "label value uom warn crit min max" per line (tab-separated), in
# $output.  Fails, saying why, if anything breaks the grammar.
nagios_check() {
	run python3 "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/nagios_output.py" \
	    "$1" CHLAG <<<"$2"
	assert_success
}

# start_node_exporter DIR: prometheus-node-exporter with only the textfile
# collector, reading DIR, on a free loopback port ($NE_PORT), its pid in
# $NE and its log in $T/node-exporter.log.  Another port if that one is
# taken in the meantime.
start_node_exporter() {
	local try
	for try in 1 2 3 4 5; do
		NE_PORT=$(free_port) || return 1
		start_bg prometheus-node-exporter \
		    --web.listen-address="127.0.0.1:$NE_PORT" \
		    --collector.disable-defaults --collector.textfile \
		    --collector.textfile.directory="$1" \
		    2>"$T/node-exporter.log"
		NE=$BG
		wait_for 20 ne_up_or_dead
		ne_up && return 0
		grep -q 'address already in use' "$T/node-exporter.log" || break
	done
	echo "# node exporter did not start: $(cat "$T/node-exporter.log")" >&2
	return 1
}
ne_up() { scrape >/dev/null 2>&1; }
ne_up_or_dead() { ne_up || proc_gone "$NE"; }

# stop_node_exporter: end it (teardown), bounded.
stop_node_exporter() {
	[ -n "${NE-}" ] || return 0
	kill -TERM "$NE" 2>/dev/null
	wait_for 10 proc_gone "$NE" || kill -KILL "$NE" 2>/dev/null
	NE=""
}

# scrape_clean DIR: start the node exporter on DIR and scrape it into
# $T/scraped, which must say it read every file, with nothing in its log
# (a duplicate series or a file it cannot parse is logged, not served).
scrape_clean() {
	start_node_exporter "$1"
	scrape >"$T/scraped"
	run -0 grep -E '^node_textfile_scrape_error ' "$T/scraped"
	assert_output 'node_textfile_scrape_error 0'
	run grep -iE 'error|duplicate|collected before' "$T/node-exporter.log"
	assert_failure
}

# scrape: what the node exporter serves at /metrics (10 s at most),
# straight from it: not through a proxy that http_proxy may name.
scrape() {
	python3 -c '
import sys, urllib.request
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with direct.open("http://127.0.0.1:%s/metrics" % sys.argv[1],
                 timeout=10) as r:
    sys.stdout.write(r.read().decode("utf-8"))' "$NE_PORT"
}
