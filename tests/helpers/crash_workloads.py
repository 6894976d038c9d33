"""Workloads for the crash-state explorer (crash_explore.py).

A workload is a setup, run without tracing and then taken as durable (the
snapshot), and steps, each one run of a tool under strace.  Steps name
channels by key ("{ch}", "{dlq}"); an argument may be a function of the
ground truth so far (offsets and times of the records, see Truth in
crash_explore.py), for positions only known once the setup ran.

What a step acknowledges when it exits 0:
  durable   the channels whose every record is on stable storage once the
            step exited 0 (chpub --sync=always or periodic; the dead-letter
            channel of chsub -x, written with sync always)
Offsets, subscribers (created or deleted) and channel creation are always
durable once their tool exited 0 (channel(5), Sync policies): nothing to
declare.  Records published by a step are its `records`, in order.

Payloads are self-checking ("TAG-N-SIZE-xxxx", SIZE bytes long): a torn
or spliced record is never one of the published ones.  A handler fails on
the records whose payload holds "bad".
"""

import random
import sys


def rec(tag, n, size):
    head = "%s-%d-%d-" % (tag, n, size)
    return (head + "x" * max(0, size - len(head))).encode()


def recs(tag, count, rng, lo=20, hi=300):
    return [rec(tag, i, rng.randint(lo, hi)) for i in range(1, count + 1)]


class Step:
    def __init__(self, name, argv, records=(), channel="ch", durable=(),
                 stdin=None, expect=0, env=None):
        self.name = name
        self.argv = argv
        self.records = list(records)
        self.channel = channel
        self.durable = set(durable)
        self.stdin = stdin
        self.expect = expect
        self.env = env or {}


# Run "$@" (a chpub), then fail (status 99) unless the channel $2 has at
# least $1 segments more than before: a workload meant to roll over that
# no longer does (segment_bytes not set, records too small) must not pass
# by exploring nothing of a rollover.
ASSERT_ROLLS = r"""want=$1 ch=$2
shift 2
segs() { set -- "$ch"/*.seg; echo $#; }
n=$(segs)
"$@" || exit
m=$(segs)
[ $((m - n)) -ge "$want" ] && exit 0
echo "no rollover: $n segments before, $m after (wanted $want more)" >&2
exit 99
"""


def pub(name, records, sync=None, channel="ch", extra=(), rolls=0):
    """chpub of records from stdin, one per line.  rolls: the step must
    create at least that many segments (checked, see ASSERT_ROLLS)."""
    argv = ["chpub"] + (["--sync=" + sync] if sync else []) + list(extra) + \
        ["{%s}" % channel]
    if rolls:
        argv = ["sh", "-c", ASSERT_ROLLS, "sh", str(rolls),
                "{%s}" % channel] + argv
    durable = {channel} if sync in ("always", "periodic") else set()
    return Step(name, argv, records, channel, durable,
                stdin=b"".join(r + b"\n" for r in records))


# sed the channel.yaml $1 with script $2, then check that every line after
# them is in it: a key the template no longer spells so stops the setup.
CONFIG = r"""f=$1
sed -i "$2" "$f" || exit
shift 2
for line; do
	grep -qxF "$line" "$f" && continue
	echo "config: no line '$line' in $f after the sed" >&2
	exit 1
done
"""


def config(path_key, **kv):
    """A setup step that sets channel.yaml keys (through sed, untraced),
    and fails if one of them was not set."""
    script = "; ".join("s|^%s:.*|%s: %s|" % (k, k, v) for k, v in kv.items())
    return Step("config", ["sh", "-c", CONFIG, "sh",
                           "{%s}/channel.yaml" % path_key, script] +
                ["%s: %s" % (k, v) for k, v in kv.items()])


class Workload:
    def __init__(self, name, steps, setup=(), channels=None, size="small",
                 handler=None, journal=False):
        """size: "small" (explored exhaustively by default), "large"
        (sampled, with --large or by name), "probe" (by name only: the
        explorer's own tests)."""
        self.name = name
        # Steps change offsets through choffset or chcompact, which keep
        # a journal: its acknowledged entries must survive too.
        self.journal = journal
        self.setup = list(setup)
        self.steps = list(steps)
        self.channels = channels or {"ch": "ch"}
        self.size = size
        # (subscriber, dead-letter channel key): records holding "bad"
        # below that subscriber's offset must be in the dead letters.
        self.handler = handler


def w_create(rng):
    return Workload("create", [
        Step("create a channel and its missing parents",
             ["chpub", "{ch}"], stdin=b""),
        pub("publish one record (always)", [rec("c", 1, 40)], "always"),
    ], channels={"ch": "a/b/ch"})


def w_publish(rng, sync):
    base = recs("s", 3, rng)
    return Workload("publish-" + sync, [
        Step("publish one record (%s)" % sync,
             ["chpub", "--sync=" + sync, "{ch}", rec("o", 1, 60).decode()],
             [rec("o", 1, 60)], durable={"ch"} if sync != "none" else ()),
        pub("publish 40 records (%s)" % sync, recs("b", 40, rng), sync),
    ], setup=[pub("setup", base, "always")])


def w_roll(rng, sync):
    """Each step's 15 records, of 280 to 300 bytes, cannot fit in what is
    left of a 4096-byte segment (64 of them the header): each rolls over
    once or twice (20 records of 100 to 300 bytes sometimes did not)."""
    return Workload("roll-" + sync, [
        pub("publish 15 records (%s)" % sync, recs("r", 15, rng, 280, 300),
            sync, rolls=1),
        pub("publish 15 more (%s)" % sync, recs("q", 15, rng, 280, 300),
            sync, rolls=1),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=4096)])


def w_subscriber(rng):
    return Workload("subscriber", [
        Step("chsub registers s from the earliest and commits",
             ["chsub", "--from=earliest", "{ch}", "s"]),
        pub("publish 3 more (always)", recs("m", 3, rng), "always"),
        Step("chsub s commits", ["chsub", "{ch}", "s"]),
        pub("publish 3 more (none)", recs("n", 3, rng), "none"),
        Step("chsub s commits past unsynced records",
             ["chsub", "{ch}", "s"]),
        Step("choffset --delete s", ["choffset", "--delete", "{ch}", "s"]),
    ], setup=[pub("setup", recs("s", 5, rng), "always")], journal=True)


def _nth_offset(key, n):
    return lambda truth: str(truth.records(key)[n][0])


def _nth_time(key, n):
    return lambda truth: truth.records(key)[n][2]


def w_choffset(rng):
    return Workload("choffset", [
        Step("choffset --create --earliest t",
             ["choffset", "--create", "--earliest", "{ch}", "t"]),
        Step("choffset --set s", ["choffset", lambda t: "--set=" +
                                  _nth_offset("ch", 2)(t), "{ch}", "s"]),
        Step("choffset --time s", ["choffset", lambda t: "--time=" +
                                   _nth_time("ch", 4)(t), "{ch}", "s"]),
        Step("choffset --import (s, t, new u)",
             ["choffset", "--import=-", "{ch}"],
             stdin=lambda t: ("s %s\nt %s\nu %s\n" % (
                 _nth_offset("ch", 1)(t), _nth_offset("ch", 5)(t),
                 _nth_offset("ch", 3)(t))).encode()),
        pub("publish 2 (none)", recs("n", 2, rng), "none"),
        Step("choffset --latest t", ["choffset", "--latest", "{ch}", "t"]),
    ], setup=[pub("setup", recs("s", 6, rng), "always"),
              Step("register s", ["choffset", "--create", "--latest",
                                  "{ch}", "s"])], journal=True)


def w_compact(rng):
    setup = [Step("create", ["chpub", "{ch}"], stdin=b""),
             config("ch", segment_bytes=4096)]
    for i in range(8):
        setup.append(pub("setup %d" % i, recs("k%d" % i, 12, rng, 150, 300),
                         "always"))
    setup += [
        Step("register s at the end", ["choffset", "--create", "--latest",
                                       "{ch}", "s"]),
        Step("register t in the middle",
             ["choffset", "--create", lambda t: "--set=" +
              str(t.records("ch")[len(t.records("ch")) // 2][0]),
              "{ch}", "t"]),
    ]
    return Workload("compact", [
        Step("chcompact deletes consumed segments", ["chcompact", "{ch}"]),
        Step("chcompact --max-bytes", ["chcompact", "--max-bytes=9000",
                                       "{ch}"]),
        Step("chcompact --max-age", ["chcompact", "--max-age=1ms", "{ch}"]),
        Step("chcompact --expire", ["chcompact", "--expire=1ms", "{ch}"]),
    ], setup=setup, journal=True)


def w_handler(rng):
    records = []
    for i in range(1, 11):
        tag = "bad" if i in (3, 4, 8) else "ok"
        records.append(rec(tag, i, rng.randint(20, 120)))
    handler = "if grep -q bad; then exit 1; fi"
    return Workload("handler", [
        Step("chsub -x --batch=3 -P 4 --dead-letter",
             ["chsub", "--from=earliest", "-x", handler, "--batch=3", "-P",
              "4", "--retries=0", "--dead-letter={dlq}", "{ch}", "h"],
             durable={"dlq"}),
    ], setup=[pub("setup", records, "always")],
        channels={"ch": "ch", "dlq": "dlq"}, handler=("h", "dlq"))


def w_roll_once(rng):
    """A probe for the explorer's own tests: one rollover under
    --sync=always, few crash points."""
    return Workload("roll-once", [
        pub("publish 6 records that roll over (always)",
            recs("o", 6, rng, 200, 300), "always", rolls=1),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=4096),
              pub("fill", recs("f", 14, rng, 200, 250), "always")],
        size="probe")


def w_roll_none_once(rng):
    """A probe for the explorer's own tests: one rollover under
    --sync=none (the sealed segment is not synced, the new one flagged),
    then a record under --sync=always, which makes it durable."""
    return Workload("roll-none-once", [
        pub("publish 6 records that roll over (none)",
            recs("o", 6, rng, 200, 300), "none", rolls=1),
        pub("publish one more (always)", recs("a", 1, rng, 40, 60),
            "always"),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=4096),
              pub("fill", recs("f", 14, rng, 200, 250), "always")],
        size="probe")


def w_roll_none_twice(rng):
    """Rollovers under --sync=none one after another: neither waits for
    the disk, so two sealed segments are unsynced at once, each flagged
    in its successor; a record under --sync=always then makes both
    durable, the older first.  The fill and the 22 records, of 260 bytes
    or more, are more than two segments hold."""
    return Workload("roll-none-twice", [
        pub("publish 22 records that roll over twice (none)",
            recs("t", 22, rng, 260, 300), "none", rolls=2),
        pub("publish one more (always)", recs("a", 1, rng, 40, 60),
            "always"),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=4096),
              pub("fill", recs("f", 14, rng, 200, 250), "always")],
        size="probe")


def w_commit_once(rng):
    """A probe for the explorer's own tests: one registration and
    commit."""
    return Workload("commit-once", [
        Step("chsub registers s and commits",
             ["chsub", "--from=earliest", "{ch}", "s"]),
    ], setup=[pub("setup", recs("c", 3, rng), "always")], size="probe")


# A torn record whose payload is another channel's segment (its records
# and 8000 more bytes: more than the steps write after it, so that its
# header, brought back, runs past the end of the file and reads as a torn
# tail), published with --whole and torn right after the records inside
# it, as 80-crash's torn_embedded does ("ahead": the mark its writer left
# is past the end now).  $1: the channel.
TEAR_AFTER_EMBEDDED = r"""set -e
ch=$1 src=$1.src
chpub "$src" e-1-embedded
chpub "$src" e-2-embedded
seg=$(ls "$src"/*.seg | tail -n 1)
ab=$(($(stat -c %s "$seg") - 64))
{ tail -c +65 "$seg"; head -c 8000 /dev/zero | tr '\0' z; } >"$src.payload"
seg=$(ls "$ch"/*.seg | tail -n 1)
chpub --whole "$ch" <"$src.payload"
start=$(python3 -c 'import sys
print(open(sys.argv[1], "rb").read().index(open(sys.argv[2], "rb").read(64)))' \
    "$seg" "$src.payload")
truncate -s $((start + ab)) "$seg"
rm -rf "$src" "$src.payload"
"""


def w_torn_cut(rng):
    """The newest segment ends in a torn record (holding whole-looking
    records, and claiming more bytes than the steps write): the next
    writer cuts it, under --sync=none, and must sync the cut before
    writing its batch there.  Else a power failure could keep the
    batch's later sectors and the tail mark but lose the cut: the torn
    header back in front of them, readers stop there, the next writer
    appends after the mark and --repair cuts what it acknowledged.  A
    second batch under none, then a record under --sync=always, which
    makes all durable: in formats 2 and 3 a mark is believed only if
    its last frame follows the one before it, and the first batch is
    one frame whose header the failure took."""
    return Workload("torn-cut", [
        pub("cut the torn tail, publish 8 records after it (none)",
            recs("n", 8, rng, 100, 200), "none"),
        pub("publish 2 more (none)", recs("m", 2, rng, 40, 60), "none"),
        pub("publish one more (always)", recs("a", 1, rng, 40, 60),
            "always"),
    ], setup=[pub("setup", recs("s", 2, rng, 20, 40), "always"),
              Step("tear a record holding records after them",
                   ["sh", "-c", TEAR_AFTER_EMBEDDED, "sh", "{ch}"])],
        size="probe")


def w_mixed(rng, nsteps=24):
    """A longer random sequence for sampling (check-long)."""
    steps = []
    registered = False		# t, by a chsub -n 5 t that exited 0
    for i in range(nsteps):
        k = rng.randrange(8)
        if k <= 2:
            sync = rng.choice(["none", "periodic", "always"])
            steps.append(pub("publish (%s)" % sync,
                             recs("x%d" % i, rng.randint(1, 40), rng,
                                  20, 600), sync))
        elif k == 3:
            steps.append(Step("chsub s", ["chsub", "--from=earliest",
                                          "{ch}", "s"]))
        elif k == 4:
            steps.append(Step("chsub -n 5 t", ["chsub", "-n", "5",
                                               "--from=earliest", "{ch}",
                                               "t"]))
            registered = True
        elif k == 5:
            steps.append(Step("chcompact", ["chcompact", "{ch}"]))
        elif k == 6:
            steps.append(Step("chcompact --max-bytes",
                              ["chcompact", "--max-bytes=6000", "{ch}"]))
        elif registered:
            steps.append(Step("choffset --earliest t",
                              ["choffset", "--earliest", "{ch}", "t"]))
        else:
            # Before any chsub -n 5 t, t is not registered (and nothing
            # else registers it): choffset must refuse with 66
            # (EX_NOINPUT), its one legitimate failure here.
            steps.append(Step("choffset --earliest t (not registered: 66)",
                              ["choffset", "--earliest", "{ch}", "t"],
                              expect=66))
    return Workload("mixed", steps, setup=[
        Step("create", ["chpub", "{ch}"], stdin=b""),
        config("ch", segment_bytes=4096)], size="large")


def w_publish_bulk(rng):
    """Bulk input: in format 3 each read of it is several frames, written
    with one pwritev (torn across frames at a crash)."""
    return Workload("publish-bulk", [
        pub("publish 1500 records, 190 KB (always)",
            recs("k", 1500, rng, 60, 190), "always"),
    ], setup=[pub("setup", recs("s", 3, rng), "always")])


def w_roll_commit(rng):
    """A rollover under --sync=none, then a subscriber's commit past it:
    the commit must make the sealed segment (flagged in its successor)
    durable before its offset, and clear the flag (channel(5), Sync
    policies: an offset never survives a power failure that the records
    before it did not)."""
    return Workload("roll-commit", [
        pub("publish 6 records that roll over (none)",
            recs("o", 6, rng, 200, 300), "none", rolls=1),
        Step("chsub s reads every record and commits",
             ["chsub", "{ch}", "s"]),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=4096),
              pub("fill", recs("f", 14, rng, 200, 250), "always"),
              Step("register s at the earliest",
                   ["choffset", "--create", "--earliest", "{ch}", "s"])],
        journal=True)


# Write each argument to stdout, waiting before each but the first until
# the pipe is empty (FIONREAD): the reader has taken the one before, so it
# reads the input in at least as many reads as there are arguments.  It
# gives up after 20 s without the pipe emptying (a chpub that died): the
# step then exits non-zero or publishes part of its records, a failure.
PARTS = r"""import fcntl, struct, sys, termios, time
for i, part in enumerate(sys.argv[1:]):
    end = time.time() + 20
    while i and struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD,
                                               b"\0" * 4))[0]:
        if time.time() > end:
            sys.exit("the reader took nothing of part %d in 20 s" % i)
        time.sleep(0.01)
    sys.stdout.buffer.write(part.encode())
    sys.stdout.buffer.flush()
"""

# Create the channel $1, in format 2 when CH_FORMAT asks for 1 (chpub
# --atomic needs 2 or 3): the format-1 pass explores format 2 once more.
CREATE_FRAMED = r"""[ "${CH_FORMAT:-}" != 1 ] || CH_FORMAT=2
export CH_FORMAT
exec chpub "$1" </dev/null
"""


def w_atomic(rng):
    """chpub --atomic, its input arriving in two reads (3 records, then 3
    more once chpub took the first): in every crash state all six or none
    (Rules: a step whose chpub has --atomic)."""
    first, second = recs("a", 3, rng, 30, 90), recs("b", 3, rng, 30, 90)
    lines = [b"".join(r + b"\n" for r in part).decode()
             for part in (first, second)]
    return Workload("atomic", [
        Step("chpub --atomic of input in two reads (always)",
             ["sh", "-c", '"$1" -B -c "$2" "$3" "$4" | '
              'chpub --atomic --sync=always "$5"', "sh", sys.executable,
              PARTS] + lines + ["{ch}"], first + second, durable={"ch"}),
    ], setup=[Step("create (format 2 or 3)",
                   ["sh", "-c", CREATE_FRAMED, "sh", "{ch}"]),
              pub("setup", recs("s", 2, rng, 20, 40), "always")])


def w_repair(rng):
    """chcompact --repair cuts a torn tail (one claiming more bytes than
    the steps write, as in torn-cut), then writers: the cut must be
    durable before --repair exits, else a power failure could bring the
    torn header back in front of the records written after it."""
    return Workload("repair", [
        Step("chcompact --repair cuts the torn tail",
             ["chcompact", "--repair", "{ch}"]),
        pub("publish 8 records (none)", recs("n", 8, rng, 100, 200),
            "none"),
        pub("publish 2 more (none)", recs("m", 2, rng, 40, 60), "none"),
        pub("publish one more (always)", recs("a", 1, rng, 40, 60),
            "always"),
    ], setup=[pub("setup", recs("s", 2, rng, 20, 40), "always"),
              Step("tear a record holding records after them",
                   ["sh", "-c", TEAR_AFTER_EMBEDDED, "sh", "{ch}"])])


def w_subscribers_dir(rng):
    """The first registration in a channel without subscribers/ (removed
    in the setup): the directory's entry must be durable before the
    registration is acknowledged."""
    return Workload("subscribers-dir", [
        Step("chsub registers s (making subscribers/) and commits",
             ["chsub", "--from=earliest", "{ch}", "s"]),
    ], setup=[pub("setup", recs("d", 3, rng), "always"),
              Step("remove subscribers/", ["rmdir", "{ch}/subscribers"])])


def w_reserve(rng):
    """Writes into blocks reserved past the active segment's end
    (fallocate, FALLOC_FL_KEEP_SIZE, under none and periodic), a rollover
    that gives back what the sealed segment did not use (ftruncate to its
    own size, then its fdatasync under periodic), then a record synced
    alone: none of it may change a byte that readers see."""
    return Workload("reserve", [
        pub("publish 30 records (none)", recs("v", 30, rng, 40, 90),
            "none"),
        pub("publish a record that does not fit (periodic)",
            [rec("big", 1, 130000)], "periodic", rolls=1),
        pub("publish one more (always)", recs("w", 1, rng, 40, 60),
            "always"),
    ], setup=[Step("create", ["chpub", "{ch}"], stdin=b""),
              config("ch", segment_bytes=131072)])


def workloads(seed):
    """Every workload, with records drawn from a generator seeded by
    seed (so a run can be replayed)."""
    rng = random.Random(seed)
    out = [w_create(rng)]
    for sync in ("none", "periodic", "always"):
        out.append(w_publish(rng, sync))
    for sync in ("none", "always"):
        out.append(w_roll(rng, sync))
    out += [w_subscriber(rng), w_choffset(rng), w_compact(rng),
            w_handler(rng), w_mixed(rng)]
    # Drawn last, so that adding them changed no other workload's records.
    out += [w_roll_once(rng), w_commit_once(rng)]
    out += [w_roll_none_once(rng)]
    out += [w_roll_none_twice(rng)]
    out += [w_publish_bulk(rng)]
    out += [w_torn_cut(rng)]
    out += [w_roll_commit(rng), w_atomic(rng), w_repair(rng),
            w_subscribers_dir(rng)]
    out += [w_reserve(rng)]
    return out
