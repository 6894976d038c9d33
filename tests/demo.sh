#!/bin/sh
# demo.sh - chtools doing its main job on sample data; run by `make demo`.
#
# Publishes generated log lines to a channel, reads them with two
# subscribers (one catches up, one reads part), follows the channel while
# more lines are published, shows the files and the offsets, and survives a
# simulated crash.  Everything happens in a temporary directory that is
# removed at exit.  No sleeps: the follower says when it is listening
# (--ready-fd), and everything that could block runs under timeout(1).
set -eu

bin=${CH_DEMO_BIN:-$(cd "$(dirname "$0")/../bin" && pwd)}
for tool in chpub chsub; do
	if [ ! -x "$bin/$tool" ]; then
		echo "demo: $bin/$tool not found; build first (./bootstrap)" >&2
		exit 1
	fi
done
PATH=$bin:$PATH
export PATH
unset CH_NOTIFY_POLL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chtools-demo.XXXXXX")
follower=
cleanup() {
	if [ -n "$follower" ]; then
		kill "$follower" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$tmp"
# A CHANNEL without a slash is looked up under CH_ROOT.
CH_ROOT=$tmp
export CH_ROOT

step() { printf '\n== %s\n' "$*"; }
say() { printf '%s\n' "$*"; }
# show CMD: print a shell command, then run it.
show() {
	printf '$ %s\n' "$1"
	eval "$1"
}

# gen FIRST LAST: web server log lines numbered FIRST..LAST.
gen() {
	awk -v first="$1" -v last="$2" 'BEGIN {
		split("GET GET GET POST PUT DELETE", method, " ")
		split("/ /health /orders /orders/17 /users/42 /login", path, " ")
		split("200 200 200 201 404 500", status, " ")
		for (i = first; i <= last; i++)
			printf "10:%02d:%02d web %s %s %s %dms\n",
			    int(i / 60), i % 60, method[i % 6 + 1],
			    path[(i * 7) % 6 + 1], status[(i * 5) % 6 + 1],
			    (i * 37) % 200 + 3
	}'
}

step "1. Publish 20 log lines to the channel 'logs'"
gen 1 20 >app.log
show 'head -3 app.log'
show 'chpub -p logs < app.log > offsets'
say "chpub created the channel, appended one record per line, and printed"
say "each record's offset (a byte position that never changes meaning):"
show 'head -3 offsets'

step "2. The channel is a directory"
show 'ls -F logs'
say "Records live in the segment file, named by its first offset; 'index'"
say "lists the segments; channel.yaml holds the settings, with defaults."

step "3. Subscribers"
show 'chsub --from=earliest logs archive > archive.txt'
show 'wc -l < archive.txt'
say "'archive' read all 20 records and committed its offset."
show 'chsub --from=earliest -n 5 logs alerts'
say "'alerts' consumed exactly 5 records (-n 5) and stopped there."
show 'chsub logs newcomer'
say "'newcomer' started at the end (the default, --from=latest): nothing yet."

step "4. Offsets"
show 'cat logs/subscribers/alerts/offset'
say "The next records 'alerts' will read, without consuming them (--peek):"
show "chsub --peek -n 3 --format='%o %n %s\\n' logs alerts"
show 'chsub --peek logs alerts | wc -l'
say "15 records are waiting for 'alerts'."

step "5. Follow the channel while more lines are published"
mkfifo ready
# The follower writes a newline to fd 3 once its watch is in place.
say '$ chsub -f -n 5 --ready-fd=3 logs archive 3>ready >followed.txt &'
timeout 10 chsub -f -n 5 --ready-fd=3 logs archive 3>ready >followed.txt &
follower=$!
say '$ read -r _ <ready'
read -r _ <ready
say "'archive' is listening; publish 5 more lines while it follows:"
say '$ gen 21 25 | chpub logs'
gen 21 25 | chpub logs
say '$ wait'
st=0
wait "$follower" || st=$?
follower=
if [ "$st" -ne 0 ]; then
	echo "demo: the follower failed (status $st)" >&2
	exit 1
fi
show 'cat followed.txt'
say "The follower printed each new line as it was published, then stopped"
say "after 5 records (-n 5)."

step "6. A crash in the middle of a write"
seg=logs/00000000000000000000.seg
printf '\307REC torn half of a record' >>"$seg"
say "Appended half a record to the segment, as a writer killed mid-write would."
show 'chsub --peek logs alerts | wc -l'
say "Readers never deliver it: still 20 complete records for 'alerts'."
show "chpub -v logs 'first line after the crash' 2>&1"
show 'chsub logs archive'
say "The next chpub cut the torn tail off and appended after it."

step "7. Where everyone stands"
for sub in archive alerts newcomer; do
	n=$(chsub --peek logs "$sub" | wc -l)
	printf '%-9s offset %-5s unread %d\n' "$sub" \
	    "$(sed -n 's/^offset //p' "logs/subscribers/$sub/offset")" "$((n))"
done

step "What happened"
say "chpub appended 26 records to one channel, a plain directory.  Three"
say "named subscribers read it independently, each from its own saved"
say "offset: 'archive' caught up and then followed live, 'alerts' read 5 and"
say "has 21 waiting, 'newcomer' skipped the history and reads only what came"
say "after it.  A torn write was never delivered and was repaired by the"
say "next chpub.  See chtools(7), chpub(1), chsub(1) and channel(5)."
