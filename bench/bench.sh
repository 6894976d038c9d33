#!/usr/bin/env bash
# bench.sh - chtools against references on this machine (run by `make bench`).
#
# Every scenario runs the tool and its reference alternately (ABAB...) in
# this one invocation, takes the median of each over BENCH_RUNS runs and
# prints one line:  ID  what  tool  ref  ratio  target  PASS|FAIL|info
# Figures: MB/s (10^6 B), records/s, or microseconds (lower is better).
#
# Environment (make bench passes these through):
#   BENCH_QUICK=1        smaller data sets (about a minute)
#   BENCH_RUNS=N         runs per side (default 5)
#   BENCH_MB=N           bulk data set, MB of 100-byte lines (100; quick 20)
#   BENCH_BIG_MB=N       the "large channel" (1000; quick 200)
#   BENCH_SEGS=N         segments of the "many segments" channel (10000; quick 1000)
#   BENCH_SUBS=N         subscribers of the "many subscribers" channel (10000; quick 1000)
#   BENCH_FWD_N=N        records forwarded to Redis and NATS (100000; quick 20000)
#   BENCH_ONLY="P1 S1"   run only these ids (prefix match), BENCH_SKIP="peers ..." skip
#   BENCH_FORMAT=N       format of the channels measured (default 3)
#   BENCH_OTHER=N        format measured beside it, lines ending in /N (default 1)
#   BENCH_FORMAT1=0      no such lines (P1-P4, S1, S4, X1-X3)
#   TMPDIR               filesystem to measure (scratch dir removed on exit)
set -euo pipefail

BIN=${BENCH_BIN:?BENCH_BIN: directory of chpub, chsub...}
CHB=${CHBENCH:?CHBENCH: path of the chbench helper}
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=
RUNS=${BENCH_RUNS:-5}
MB=${BENCH_MB:-${QUICK:+20}}
MB=${MB:-100}
BIG_MB=${BENCH_BIG_MB:-${QUICK:+200}}
BIG_MB=${BIG_MB:-1000}
SEGS=${BENCH_SEGS:-${QUICK:+1000}}
SEGS=${SEGS:-10000}
SUBS=${BENCH_SUBS:-${QUICK:+1000}}
SUBS=${SUBS:-10000}
# Scenarios that depend on the on-disk format run chpub/chsub on format 3
# channels (the default) and, beside them in the same alternation, on
# another format's: ids ending in "/N" (P1 and P1/1, S4 and S4/1...).
MAINF=${BENCH_FORMAT:-3}
OTHERF=${BENCH_OTHER:-1}
WITH_F1=${BENCH_FORMAT1:-1}
[ "$WITH_F1" = 0 ] && WITH_F1=
SPAWNS=${QUICK:+200}
SPAWNS=${SPAWNS:-1000}
# spawns per run in the scale scenarios (four of them, ABAB)
SCALE_SPAWNS=${QUICK:+50}
SCALE_SPAWNS=${SCALE_SPAWNS:-200}
PINGS=${QUICK:+300}
PINGS=${PINGS:-1000}
E2E=${QUICK:+1000}
E2E=${E2E:-3000}
REDIS_N=${QUICK:+100000}
REDIS_N=${REDIS_N:-300000}
FWD_N=${BENCH_FWD_N:-${QUICK:+20000}}
FWD_N=${FWD_N:-100000}
FWD_BATCH=1000
EXAMPLES=$(cd "$(dirname "$0")/../examples" && pwd)
CHNATSPUB=${CHNATSPUB:-}
LINE=100
NLINES=$((MB * 1000000 / LINE))
BYTES=$((NLINES * LINE))
export PATH="$BIN:$PATH" LC_ALL=C
unset CH_ROOT

S=$(mktemp -d -t chbench.XXXXXX)
BG=()
cleanup() {
	local p
	for p in "${BG[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

want() { # want ID [GROUP]: is this scenario selected?
	local x
	for x in ${BENCH_SKIP:-}; do
		case "$1 $2" in "$x"* | *" $x"*) return 1 ;; esac
	done
	[ -z "${BENCH_ONLY:-}" ] && return 0
	for x in $BENCH_ONLY; do
		case "$1 $2" in "$x"* | *" $x"*) return 0 ;; esac
	done
	return 1
}
have() { command -v "$1" >/dev/null 2>&1; }
now() { echo "$EPOCHREALTIME"; }
# secs SNIPPET: wall seconds of a shell snippet
secs() {
	local t0 t1
	sync
	t0=$EPOCHREALTIME
	eval "$1"
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}
# get KEY < "k=v ..." line
get() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f\n", n / s }'; }

RESULTS=$S/results
: >"$RESULTS"
# report ID DESC UNIT TOOL REF TARGET   (TARGET: ">=0.5", "<=1.1" or "info")
# ratio = TOOL / REF
report() {
	awk -v id="$1" -v d="$2" -v u="$3" -v t="$4" -v r="$5" -v g="$6" 'BEGIN {
		ratio = r > 0 ? t / r : 0
		v = "info"
		if (g ~ /^>=/) v = ratio >= substr(g, 3) + 0 ? "PASS" : "FAIL"
		if (g ~ /^<=/) v = ratio <= substr(g, 3) + 0 ? "PASS" : "FAIL"
		printf "%-5s %-52s %12.6g %12.6g %-6s %7.3f %-7s %s\n", id, d, t, r, u, ratio, g, v
	}' | tee -a "$RESULTS"
}

# abab N TOOLFILE REFFILE TOOLSNIPPET REFSNIPPET: run the two alternately,
# appending each run's output line to the files.
abab() {
	local i
	: >"$2"
	: >"$3"
	for i in $(seq "$1"); do
		eval "$4" >>"$2"
		eval "$5" >>"$3"
	done
}
# abab3 N TOOL2FILE TOOL1FILE REFFILE TOOLSNIPPET REFSNIPPET: like abab, the
# tool on format MAINF channels, then on format OTHERF ones (CH_FORMAT, which
# chpub obeys when it creates a channel; skipped without WITH_F1), then the
# reference.
abab3() {
	local i
	: >"$2"
	: >"$3"
	: >"$4"
	for i in $(seq "$1"); do
		CH_FORMAT=$MAINF eval "$5" >>"$2"
		[ -z "$WITH_F1" ] || CH_FORMAT=$OTHERF eval "$5" >>"$3"
		eval "$6" >>"$4"
	done
}
# report3 ID DESC UNIT KEY TARGET: the lines of an abab3 run (files a, a1, b)
report3() {
	report "$1" "$2" "$3" "$(medkey "$S/a" "$4")" "$(medkey "$S/b" "$4")" "$5"
	[ -z "$WITH_F1" ] || report "${1}/$OTHERF" "  same, format $OTHERF" "$3" "$(medkey "$S/a1" "$4")" "$(medkey "$S/b" "$4")" info
}
medkey() { get_all "$2" <"$1" | med; } # medkey FILE KEY
get_all() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }'; }

mkchan() { # mkchan DIR: a fresh empty channel
	# a chsub -f that e2e just stopped may still be committing in it
	rm -rf "$1" 2>/dev/null || { sleep 0.5; rm -rf "$1"; }
	chpub "$1" </dev/null
}
setyaml() { # setyaml DIR KEY VALUE
	sed -i "s/^$2:.*/$2: $3/" "$1/channel.yaml"
}

echo "# chtools bench $(date -u +%Y-%m-%dT%H:%MZ)  runs=$RUNS  data=${MB}MB (${NLINES} x ${LINE}B lines)  big=${BIG_MB}MB  segments=$SEGS  subscribers=$SUBS${QUICK:+  (BENCH_QUICK)}"
echo "# host: $(nproc) cpu ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
	"$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)," \
	"scratch $(df -T "$S" | awk 'NR==2 {print $2}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-52s %12s %12s %-6s %7s %-7s %s\n' id scenario tool ref unit ratio target result

"$CHB" gen "$NLINES" "$LINE" >"$S/src"
printf '%099d\n' 7 >"$S/one"
MSG=$(head -c 99 "$S/one")
cat "$S/src" >/dev/null

# ---------------------------------------------------------------- chpub
if want P1 chpub; then
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/p1.$CH_FORMAT; rate $BYTES $(secs "cat \$S/src | chpub --sync=none \$S/p1.$CH_FORMAT") | sed "s/^/v=/"' \
		'rm -f $S/dst; rate $BYTES $(secs "cat \$S/src | cat > \$S/dst") | sed "s/^/v=/"'
	report3 P1 "bulk chpub --sync=none vs cat > file (B/s)" B/s v ">=0.85"
	P1_V=$(medkey "$S/a" v)
	# Before branch seal-sync, channel(5)'s rollover put a sealed segment
	# on stable storage before its successor existed, whatever the sync
	# policy; no writer keeping that rule beats this one once the input
	# is longer than a segment: the first 64 MiB (segment_bytes' default)
	# fdatasynced, the rest into the page cache, and no framing at all.
	# P1c is that old ceiling against cat > file; P1d is chpub against it
	# (above 1 now that a rollover under --sync=none does not sync).
	if [ "$BYTES" -gt $((64 << 20)) ]; then
		abab "$RUNS" "$S/a" "$S/b" \
			'rm -f $S/dst $S/dst2; rate $BYTES $(secs "cat \$S/src | { dd bs=1M count=64 iflag=fullblock conv=fdatasync status=none of=\$S/dst && cat > \$S/dst2; }") | sed "s/^/v=/"' \
			'rm -f $S/dst; rate $BYTES $(secs "cat \$S/src | cat > \$S/dst") | sed "s/^/v=/"'
		report P1c "  ceiling: 64 MiB fdatasynced, then cat (B/s)" B/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" info
		report P1d "  chpub (P1's median) vs that ceiling (B/s)" B/s "$P1_V" "$(medkey "$S/a" v)" info
		rm -f "$S/dst" "$S/dst2"
	fi
fi
if want P2 chpub; then
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/p2; rate $BYTES $(secs "cat \$S/src | chpub --sync=periodic \$S/p2") | sed "s/^/v=/"' \
		'rm -f $S/dst; rate $BYTES $(secs "cat \$S/src | dd bs=1M iflag=fullblock conv=fdatasync status=none of=\$S/dst") | sed "s/^/v=/"'
	report3 P2 "bulk --sync=periodic vs dd conv=fdatasync (B/s)" B/s v ">=0.95"
	mkchan "$S/p2"
	chpub "$S/p2" <"$S/src"
	# The same against dd writing the bytes chpub puts on disk (headers
	# and trailers included), both counted in input bytes per second.
	cat "$S"/p2/*.seg >"$S/segbytes"
	abab "$RUNS" "$S/a" "$S/b" \
		'mkchan $S/p2; rate $BYTES $(secs "cat \$S/src | chpub --sync=periodic \$S/p2") | sed "s/^/v=/"' \
		'rm -f $S/dst; rate $BYTES $(secs "cat \$S/segbytes | dd bs=1M iflag=fullblock conv=fdatasync status=none of=\$S/dst") | sed "s/^/v=/"'
	report P2b "  reference: dd of chpub's on-disk bytes (B/s)" B/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" "info"
	rm -rf "$S/p2" "$S/segbytes" "$S/dst"
fi
if want P3 chpub; then
	n64=$(( (QUICK ? 300 : 600) ))
	abab "$RUNS" "$S/a" "$S/b" \
		'mkchan $S/p3; rate $BYTES $(secs "cat \$S/src | chpub --sync=always \$S/p3") | sed "s/^/v=/"' \
		'"$CHB" fsync $S/f64 $n64 65536 | sed "s/MB_s=\([0-9.]*\)/v=\1e6/"; rm -f $S/f64'
	P3_RATE=$(awk -v b="$(medkey "$S/a" v)" -v l=$LINE 'BEGIN { print b / l }')
	report P3 "bulk --sync=always vs 64KiB append+fdatasync (B/s)" B/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" ">=0.7"
	rm -rf "$S/p3"
fi
if want P4 chpub; then
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/p4; "$CHB" ping $PINGS "chpub --sync=always -p $S/p4"' \
		'"$CHB" fsync $S/f1 $PINGS 100; rm -f $S/f1'
	report3 P4 "one record at a time, --sync=always p50 (us)" us p50_us "<=1.15"
	report P4b "  same, p99 (us)" us "$(medkey "$S/a" p99_us)" "$(medkey "$S/b" p99_us)" "<=1.5"
	# no worse than format 1 (same alternation)
	[ -z "$WITH_F1" ] || report P4= "  format $MAINF vs format $OTHERF, p50 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/a1" p50_us)" "<=1.1"
	rm -rf "$S/p4"
fi
if want P5 chpub; then
	mkchan "$S/p5"
	: >"$S/f5"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SPAWNS chpub $S/p5 "$MSG"' \
		'"$CHB" spawn $SPAWNS -i $S/one -a $S/f5 cat'
	report P5 "spawn 'chpub CH msg' vs 'cat <one >>f' p50 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.1"
	# The share of exec and loading chpub's libraries: no channel work.
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SPAWNS chpub --version' \
		'"$CHB" spawn $SPAWNS -i $S/one -a $S/f5 cat'
	report P5b "  reference: spawn 'chpub --version' vs the same cat (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "info"
	rm -rf "$S/p5" "$S/f5"
fi

# ---------------------------------------------------------------- chsub
if want S1 chsub; then
	for f in $MAINF ${WITH_F1:+$OTHERF}; do
		[ -d "$S/p1.$f" ] || { CH_FORMAT=$f mkchan "$S/p1.$f"; chpub "$S/p1.$f" <"$S/src"; }
		cat "$S/p1.$f"/*.seg >/dev/null
	done
	cp "$S/src" "$S/dst"
	cat "$S/dst" >/dev/null
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'rm -rf $S/p1.$CH_FORMAT/subscribers/s1; rate $BYTES $(secs "chsub --from=earliest \$S/p1.$CH_FORMAT s1 | cat > /dev/null") | sed "s/^/v=/"' \
		'rate $BYTES $(secs "cat \$S/dst | cat > /dev/null") | sed "s/^/v=/"'
	S1_RATE=$(awk -v b="$(medkey "$S/a" v)" -v l=$LINE 'BEGIN { print b / l }')
	report3 S1 "catch-up chsub | cat vs cat file | cat (B/s)" B/s v ">=0.8"
	rm -f "$S/dst"
fi
if want S4 chsub; then
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/p4f.$CH_FORMAT; "$CHB" e2e $E2E "chpub $S/p4f.$CH_FORMAT" "chsub -f $S/p4f.$CH_FORMAT s"' \
		'rm -f $S/tf; : > $S/tf; "$CHB" e2e $E2E "cat >> $S/tf" "tail -n0 -f $S/tf"'
	report3 S4 "follow chpub|chsub -f vs cat>>f|tail -f p50 (us)" us p50_us "<=1.0"
	report S4b "  same, p99 (us)" us "$(medkey "$S/a" p99_us)" "$(medkey "$S/b" p99_us)" "<=1.2"
	[ -z "$WITH_F1" ] || report S4= "  format $MAINF vs format $OTHERF, p50 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/a1" p50_us)" "<=1.1"
	rm -rf "$S"/p4f.* "$S/tf"
fi

# ---------------------------------------------------------------- peers
redis_up=
if want X peers && have redis-server && have redis-cli; then
	RPORT=$((20000 + RANDOM % 20000))
	mkdir -p "$S/redis"
	redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$S/redis" --appendonly yes \
		--appendfsync everysec --save '' --auto-aof-rewrite-percentage 0 \
		--daemonize no --logfile "$S/redis/log" &
	BG+=($!)
	for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
	redis-cli -p "$RPORT" ping >/dev/null 2>&1 && redis_up=1
	"$CHB" gen "$REDIS_N" "$LINE" | awk '{ id = "0-" NR; v = $0 "\n";
		printf "*5\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$%d\r\n%s\r\n$1\r\nd\r\n$%d\r\n%s\r\n", length(id), id, length(v), v }' >"$S/xadd.resp"
	awk -v n="$REDIS_N" 'BEGIN { for (k = 0; k * 1000 < n; k++) { a = "0-" (k * 1000 + 1); b = "0-" ((k + 1) * 1000);
		printf "*4\r\n$6\r\nXRANGE\r\n$5\r\nbench\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(a), a, length(b), b } }' >"$S/xrange.resp"
fi
redis_pipe() { # redis_pipe FILE: records/s for the RESP file through one connection
	local t
	t=$(secs "redis-cli -p $RPORT --pipe < $1 > $S/pipe.out")
	grep -q 'errors: 0' "$S/pipe.out" || { echo "redis --pipe errors" >&2; cat "$S/pipe.out" >&2; }
	rate "$REDIS_N" "$t"
}
if [ -n "$redis_up" ]; then
	redis-cli -p "$RPORT" config set appendfsync always >/dev/null
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/x3; rate $NLINES $(secs "cat \$S/src | chpub --sync=always \$S/x3") | sed "s/^/v=/"' \
		'redis-cli -p $RPORT del bench >/dev/null; redis_pipe $S/xadd.resp | sed "s/^/v=/"'
	report3 X1 "bulk --sync=always vs Redis XADD aof=always (rec/s)" rec/s v ">=10"
	rm -rf "$S/x3"
	redis-cli -p "$RPORT" config set appendfsync everysec >/dev/null
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'mkchan $S/x1.$CH_FORMAT; rate $NLINES $(secs "cat \$S/src | chpub \$S/x1.$CH_FORMAT") | sed "s/^/v=/"' \
		'redis-cli -p $RPORT del bench >/dev/null; redis_pipe $S/xadd.resp | sed "s/^/v=/"'
	report3 X2 "bulk chpub vs Redis XADD --pipe aof=everysec (rec/s)" rec/s v ">=10"
	abab3 "$RUNS" "$S/a" "$S/a1" "$S/b" \
		'rm -rf $S/x1.$CH_FORMAT/subscribers/s; rate $NLINES $(secs "chsub --from=earliest \$S/x1.$CH_FORMAT s | cat > /dev/null") | sed "s/^/v=/"' \
		'redis_pipe $S/xrange.resp | sed "s/^/v=/"'
	report3 X3 "catch-up chsub vs Redis XRANGE scan (rec/s)" rec/s v ">=10"
	rm -rf "$S"/x1.*
elif want X peers; then
	echo "X1-3 Redis peers skipped (redis-server/redis-cli not installed)" | tee -a "$RESULTS"
fi
if want X4 peers && have sqlite3; then
	SQN=$((REDIS_N / 2))
	head -n "$SQN" "$S/src" | awk 'BEGIN { print "PRAGMA journal_mode=WAL;"; print "PRAGMA synchronous=NORMAL;";
		print "CREATE TABLE q(id INTEGER PRIMARY KEY, body BLOB);" }
		{ if ((NR - 1) % 1000 == 0) print "BEGIN;"; print "INSERT INTO q(body) VALUES(\047" $0 "\047);"; if (NR % 1000 == 0) print "COMMIT;" }
		END { if (NR % 1000) print "COMMIT;" }' >"$S/q.sql"
	abab "$RUNS" "$S/a" "$S/b" \
		'mkchan $S/x1; rate $NLINES $(secs "cat \$S/src | chpub \$S/x1") | sed "s/^/v=/"' \
		'rm -f $S/q.db*; rate $SQN $(secs "sqlite3 \$S/q.db < \$S/q.sql > /dev/null") | sed "s/^/v=/"'
	report X4 "bulk chpub vs sqlite3 WAL, 1000 INSERTs/txn (rec/s)" rec/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" info
	rm -rf "$S/x1" "$S"/q.*
elif want X4 peers; then
	echo "X4   SQLite peer skipped (sqlite3 not installed)" | tee -a "$RESULTS"
fi
if [ -n "$redis_up" ]; then
	kill "${BG[0]}" 2>/dev/null; wait "${BG[0]}" 2>/dev/null || true
	BG=()
fi
rm -f "$S"/*.resp

# ---------------------------------------------------------------- forward
# Forwarding FWD_N records of 100-byte lines into a server, in batches of
# FWD_BATCH, with the recipes of examples/forwarding.md:
#   chsub --batch=1000 -x 'redis-xadd-batch.sh ...'   (Redis, AOF always)
#   chsub --batch=1000 -x 'chnats-pub -b ...'         (JetStream, file store)
# against the same handler run on the same batches by a shell loop, without
# chsub (what chsub costs as a forwarder), and, for reference, the server
# taking all the records from one client at once (its ceiling here).  Each
# run starts from an empty stream; a chsub that fails stops the bench.
if want F forward; then
	"$CHB" gen "$FWD_N" "$LINE" >"$S/fsrc"
	mkdir -p "$S/fchunks"
	split -l "$FWD_BATCH" -a 4 -d "$S/fsrc" "$S/fchunks/c."
	# fwd_chan: a fresh channel holding the records; the snippet times
	# a new subscriber's chsub over it, to the end.
	fwd_chan() { mkchan "$S/fch"; chpub "$S/fch" <"$S/fsrc"; }
	# fwd_loop CMD: CMD on each batch file in turn, with the environment
	# chsub would give it.
	fwd_loop() {
		local f k=0
		for f in "$S"/fchunks/c.*; do
			CH_CHANNEL=$S/loop CH_SEQ=$k sh -c "$1" <"$f"
			k=$((k + FWD_BATCH))
		done
	}
fi
if want F1 forward && have redis-server && have redis-cli; then
	FPORT=$((20000 + RANDOM % 12000))
	mkdir -p "$S/fredis"
	redis-server --bind 127.0.0.1 --port "$FPORT" --dir "$S/fredis" \
		--appendonly yes --appendfsync always --save '' \
		--auto-aof-rewrite-percentage 0 --daemonize no \
		--logfile "$S/fredis/log" &
	BG+=($!)
	for _ in $(seq 100); do redis-cli -p "$FPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
	FCMD="sh $EXAMPLES/redis-xadd-batch.sh fwd -p $FPORT"
	fredis_empty() { redis-cli -p "$FPORT" del fwd >/dev/null; }
	fredis_check() { # all FWD_N entries are there
		[ "$(redis-cli -p "$FPORT" xlen fwd)" = "$FWD_N" ] ||
			{ echo "F1: Redis holds $(redis-cli -p "$FPORT" xlen fwd) of $FWD_N" >&2; exit 1; }
	}
	abab "$RUNS" "$S/a" "$S/b" \
		'fwd_chan; fredis_empty; rate $FWD_N $(secs "chsub --from=earliest --batch=$FWD_BATCH -x \"\$FCMD\" \$S/fch s") | sed "s/^/v=/"; fredis_check' \
		'fredis_empty; rate $FWD_N $(secs "fwd_loop \"\$FCMD\"") | sed "s/^/v=/"; fredis_check'
	report F1 "forward to Redis, chsub --batch=$FWD_BATCH vs handler loop (rec/s)" rec/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" ">=0.8"
	F1_RATE=$(medkey "$S/a" v)
	# The server's ceiling: the same XADDs from one redis-cli --pipe.
	LC_ALL=C awk '{ printf "*7\r\n$4\r\nXADD\r\n$3\r\nfwd\r\n$1\r\n*\r\n$2\r\nid\r\n$%d\r\n%s\r\n$4\r\ndata\r\n$%d\r\n%s\r\n", length("x/" NR), "x/" NR, length($0), $0 }' \
		"$S/fsrc" >"$S/fxadd.resp"
	: >"$S/b"
	for _ in $(seq "$RUNS"); do
		fredis_empty
		rate "$FWD_N" "$(secs 'redis-cli -p $FPORT --pipe < $S/fxadd.resp > $S/pipe.out')" | sed "s/^/v=/" >>"$S/b"
		grep -q 'errors: 0' "$S/pipe.out" || { cat "$S/pipe.out" >&2; exit 1; }
		fredis_check
	done
	report F1b "  reference: one redis-cli --pipe of all $FWD_N (rec/s)" rec/s "$F1_RATE" "$(medkey "$S/b" v)" info
	kill "${BG[-1]}" 2>/dev/null; wait "${BG[-1]}" 2>/dev/null || true
	rm -rf "$S/fredis" "$S/fxadd.resp"
elif want F1 forward; then
	echo "F1   Redis forwarding skipped (redis-server/redis-cli not installed)" | tee -a "$RESULTS"
fi
if want F2 forward && have nats-server && [ -x "$CHNATSPUB" ]; then
	NPORT=$((20000 + RANDOM % 12000))
	NATS_PID=
	# fnats_fresh: a new nats-server -js with an empty store and the
	# stream FWD for subject fwd (a stream that grew over the previous
	# runs, or remembered their ids, would not be the same work).
	fnats_fresh() {
		if [ -n "$NATS_PID" ]; then
			kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null || true
		fi
		rm -rf "$S/fnats"
		mkdir -p "$S/fnats"
		nats-server -a 127.0.0.1 -p "$NPORT" -js -sd "$S/fnats" -l "$S/fnats/log" &
		NATS_PID=$!
		BG+=("$NATS_PID")
		for _ in $(seq 100); do
			"$CHNATSPUB" -s "nats://127.0.0.1:$NPORT" --create-stream=FWD fwd 2>/dev/null && return 0
			sleep 0.1
		done
		echo "F2: nats-server did not start" >&2
		exit 1
	}
	FCMD="$CHNATSPUB -b -s nats://127.0.0.1:$NPORT fwd"
	abab "$RUNS" "$S/a" "$S/b" \
		'fwd_chan; fnats_fresh; rate $FWD_N $(secs "chsub --from=earliest --batch=$FWD_BATCH -x \"\$FCMD\" \$S/fch s") | sed "s/^/v=/"' \
		'fnats_fresh; rate $FWD_N $(secs "fwd_loop \"\$FCMD\"") | sed "s/^/v=/"'
	report F2 "forward to NATS, chsub --batch=$FWD_BATCH vs handler loop (rec/s)" rec/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" ">=0.8"
	F2_RATE=$(medkey "$S/a" v)
	# The ceiling: all the records from one chnats-pub, one connection.
	: >"$S/b"
	for _ in $(seq "$RUNS"); do
		fnats_fresh
		rate "$FWD_N" "$(secs 'CH_CHANNEL=$S/one CH_SEQ=0 $CHNATSPUB -b -t 60000 -s nats://127.0.0.1:$NPORT fwd < $S/fsrc')" | sed "s/^/v=/" >>"$S/b"
	done
	report F2b "  reference: one chnats-pub -b of all $FWD_N (rec/s)" rec/s "$F2_RATE" "$(medkey "$S/b" v)" info
	kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null || true
	rm -rf "$S/fnats"
elif want F2 forward; then
	echo "F2   NATS forwarding skipped (nats-server or chnats-pub (libnats-dev) missing)" | tee -a "$RESULTS"
fi
rm -rf "$S/fch" "$S/fchunks" "$S/fsrc"

# ---------------------------------------------------------------- scale
if want L scale; then
	# small: one segment; many: $SEGS segments of one record each (made by
	# chbench mksegs with the project's encoders; rolling over through
	# chpub costs two fsyncs per segment)
	mkchan "$S/one1"
	"$CHB" gen $((SPAWNS * RUNS * 2 + 1000)) 100 | chpub "$S/one1"
	mkchan "$S/many"
	t0=$(now)
	"$CHB" mksegs "$S/many" "$SEGS" >/dev/null
	"$CHB" gen $((SPAWNS * RUNS * 2 + 1000)) 100 | chpub "$S/many"
	echo "#    built $(ls "$S/many" | grep -c '\.seg$') segments in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
	for c in one1 many; do chsub -n 1 --from=earliest "$S/$c" s >/dev/null; done
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SCALE_SPAWNS chpub $S/many "$MSG"' \
		'"$CHB" spawn $SCALE_SPAWNS chpub $S/one1 "$MSG"'
	report L1 "chpub CH msg p50: $SEGS segments vs 1 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.1"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SCALE_SPAWNS chsub -n 1 $S/many s' \
		'"$CHB" spawn $SCALE_SPAWNS chsub -n 1 $S/one1 s'
	report L2 "chsub -n 1 p50: $SEGS segments vs 1 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.1"
	rm -rf "$S/many"
	# subscribers: one1 has 1; manys has $SUBS; somes has $SUBS/10
	for c in manys somes; do
		mkchan "$S/$c"
		"$CHB" gen $((SPAWNS * RUNS * 2 + 1000)) 100 | chpub "$S/$c"
		chsub -n 1 --from=earliest "$S/$c" s >/dev/null
	done
	"$CHB" clonesub "$S/manys/subscribers" s $((SUBS - 1)) >/dev/null
	"$CHB" clonesub "$S/somes/subscribers" s $((SUBS / 10 - 1)) >/dev/null
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SCALE_SPAWNS chpub $S/manys "$MSG"' \
		'"$CHB" spawn $SCALE_SPAWNS chpub $S/one1 "$MSG"'
	report L3 "chpub CH msg p50: $SUBS subscribers vs 1 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.1"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn $SCALE_SPAWNS chsub -n 1 $S/manys s' \
		'"$CHB" spawn $SCALE_SPAWNS chsub -n 1 $S/one1 s'
	report L4 "chsub -n 1 p50: $SUBS subscribers vs 1 (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.1"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" rss -x chlag $S/manys | awk -v n=$SUBS "{ sub(/secs=/, \"\", \$1); print \"v=\" \$1 / n * 1e6 }"' \
		'"$CHB" rss -x chlag $S/somes | awk -v n=$((SUBS / 10)) "{ sub(/secs=/, \"\", \$1); print \"v=\" \$1 / n * 1e6 }"'
	report L5 "chlag per subscriber: $SUBS vs $((SUBS / 10)) subs (us)" us "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" "<=1.2"
	rm -rf "$S/manys" "$S/somes" "$S/one1"
fi

# the large channel, for backlog and memory
if want L6 scale || want M memory; then
	mkchan "$S/big"
	t0=$(now)
	"$CHB" gen $((BIG_MB * 10000)) 100 | chpub "$S/big"
	echo "#    built a ${BIG_MB}MB channel in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
	mkchan "$S/small"
	"$CHB" gen 10000 100 | chpub "$S/small"
	for c in big small; do chsub -n 1 --from=earliest "$S/$c" s >/dev/null; done
fi
if want L6 scale; then
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" spawn 20 -x chlag $S/big' \
		'"$CHB" spawn 20 -x chlag $S/small'
	report L6 "chlag p50: ${BIG_MB}MB backlog vs 1MB (us)" us "$(medkey "$S/a" p50_us)" "$(medkey "$S/b" p50_us)" "<=1.2"
fi
if want M memory; then
	head -n 100000 "$S/src" >"$S/10m"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" rss -i $S/10m chpub $S/big' \
		'"$CHB" rss -i $S/10m chpub $S/small'
	report M1 "chpub peak RSS, 10MB into ${BIG_MB}MB vs 1MB channel (KiB)" KiB "$(medkey "$S/a" maxrss_kb)" "$(medkey "$S/b" maxrss_kb)" "<=1.1"
	abab "$RUNS" "$S/a" "$S/b" \
		'"$CHB" rss chsub --peek --from=earliest $S/big' \
		'"$CHB" rss chsub --peek --from=earliest $S/small'
	report M2 "chsub peak RSS, read all of ${BIG_MB}MB vs 1MB (KiB)" KiB "$(medkey "$S/a" maxrss_kb)" "$(medkey "$S/b" maxrss_kb)" "<=1.1"
	rm -f "$S/10m"
fi
rm -rf "$S/big" "$S/small"

if want L7 compact; then
	# chcompact deleting K segments of 64 KiB vs K segments of 8 MiB
	K=20
	BIGSEG=$(( QUICK ? 4 : 8 ))
	mkcomp() { # mkcomp DIR SEGBYTES RECORDS
		mkchan "$1"
		setyaml "$1" segment_bytes "$2"
		"$CHB" gen "$3" 100 | chpub "$1"
	}
	abab "$RUNS" "$S/a" "$S/b" \
		'mkcomp $S/cb ${BIGSEG}MiB $((K * BIGSEG * 1048576 / 104 + 10)); secs "chcompact --max-bytes=1 \$S/cb" | awk "{ print \"v=\" \$1 * 1e6 }"' \
		'mkcomp $S/cs 64KiB $((K * 65536 / 104 + 10)); secs "chcompact --max-bytes=1 \$S/cs" | awk "{ print \"v=\" \$1 * 1e6 }"'
	report L7 "chcompact, $K segments of ${BIGSEG}MiB vs of 64KiB (us)" us "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" "<=1.2"
	# The filesystem's own share: rm(1) of the same segment files.
	abab "$RUNS" "$S/a" "$S/b" \
		'mkcomp $S/cb ${BIGSEG}MiB $((K * BIGSEG * 1048576 / 104 + 10)); secs "rm \$S/cb/0*.seg" | awk "{ print \"v=\" \$1 * 1e6 }"' \
		'mkcomp $S/cs 64KiB $((K * 65536 / 104 + 10)); secs "rm \$S/cs/0*.seg" | awk "{ print \"v=\" \$1 * 1e6 }"'
	report L7b "  reference: rm of the same segment files (us)" us "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" "info"
	rm -rf "$S/cb" "$S/cs"
fi

if want C1 concurrency; then
	q=$((NLINES / 4))
	split -l "$q" -d "$S/src" "$S/q."
	abab "$RUNS" "$S/a" "$S/b" \
		'mkchan $S/c4; rate $BYTES $(secs "for f in \$S/q.0[0-3]; do chpub \$S/c4 < \$f & done; wait") | sed "s/^/v=/"' \
		'mkchan $S/c1; rate $BYTES $(secs "chpub \$S/c1 < \$S/src") | sed "s/^/v=/"'
	report C1 "4 concurrent chpub vs 1, aggregate (B/s)" B/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" ">=0.8"
	# The machine's own share: 4 cat(1)s appending to one file vs one.
	abab "$RUNS" "$S/a" "$S/b" \
		'rm -f $S/c4f; rate $BYTES $(secs "for f in \$S/q.0[0-3]; do cat \$f >> \$S/c4f & done; wait") | sed "s/^/v=/"' \
		'rm -f $S/c1f; rate $BYTES $(secs "cat \$S/src > \$S/c1f") | sed "s/^/v=/"'
	report C1b "  reference: 4 concurrent cat >> f vs 1 (B/s)" B/s "$(medkey "$S/a" v)" "$(medkey "$S/b" v)" "info"
	rm -f "$S/c4f" "$S/c1f"
	rm -rf "$S/c4" "$S/c1" "$S"/q.*
fi

echo "# done $(date -u +%H:%MZ); $(grep -c ' PASS$' "$RESULTS") PASS, $(grep -c ' FAIL$' "$RESULTS") FAIL"
