#!/usr/bin/env python3
"""crash_explore.py - the power-loss crash-state explorer (ALICE-style).

  crash_explore.py run [options]
  crash_explore.py replay DIR --point K --variant V [--done]

`run` records each workload (crash_workloads.py) under strace
(crash_trace.py), replays every trace into the crash states the
persistence model allows (crash_model.py), materialises each distinct
state in a scratch directory, runs the tools' own recovery on it (a raw
read, the offsets, chcompact --check, then the next chpub, chcompact
--repair and --check, a full read and every subscriber) and checks the
invariants of tests/RELIABILITY.md.  Small workloads are explored
exhaustively, large ones sampled with a printed seed.  `replay` checks one
state again from a directory kept with --keep (CH_CRASH_KEEP).

Environment (each also an option): CH_CRASH_SEED, CH_CRASH_FORMATS
("1"), CH_CRASH_WORKLOADS (names, comma-separated), CH_CRASH_MAX_STATES
(distinct states checked per workload; more are sampled down to it),
CH_CRASH_SAMPLES (crash states drawn from a large workload), CH_CRASH_KEEP
(directory for traces and failing states), CH_CRASH_TOOL_TIMEOUT
(seconds a tool may run on a crash state, 30).  CH_FORMAT=N is passed to
every tool: a channel is created in format N when it is set.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash_model as M	 # noqa: E402
import crash_trace as T	 # noqa: E402
import crash_workloads as W	 # noqa: E402

MARKER = b"MARKER"
SAMPLES_PER_ROUND = 150
FMT = "--format=%o %n %t %s\\n"
TOOL_TIMEOUT = float(os.environ.get("CH_CRASH_TOOL_TIMEOUT", "30"))


class WorkloadError(Exception):
    pass


# -- running the tools --------------------------------------------------
class Tools:
    def __init__(self, bindir, fmt):
        self.bindir = bindir
        self.env = dict(os.environ)
        self.env["LC_ALL"] = "C"
        self.env.pop("CH_ROOT", None)
        if fmt is not None:
            self.env["CH_FORMAT"] = str(fmt)
        else:
            self.env.pop("CH_FORMAT", None)
        self.env["PATH"] = bindir + ":" + self.env.get("PATH", "")

    def run(self, argv, stdin=b"", cwd=None):
        """[exit status or "timeout", stdout, stderr] of argv."""
        try:
            p = T.run_group(argv, stdin, cwd, self.env, TOOL_TIMEOUT)
            return [p.returncode, p.stdout.decode("latin-1"),
                    p.stderr.decode("latin-1")]
        except subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode("latin-1")
            return ["timeout", "", err]


def crashed(r):
    """Why a tool run counts as a crash or a hang, else None."""
    rc, _, err = r
    if rc == "timeout":
        return "hung (no exit within %gs)" % TOOL_TIMEOUT
    if rc < 0 or rc >= 128:
        return "killed by a signal (status %s)" % rc
    if "Sanitizer" in err or "runtime error:" in err:
        return "sanitizer report"
    return None


def parse_records(out):
    """Records printed with FMT: [(offset, seq, time, payload)].  A line
    that is not one (a payload that was never published, with a newline
    in it) comes back whole as a payload at offset -1, for the checks to
    report."""
    recs = []
    for line in out.split("\n")[:-1]:
        try:
            off, seq, ts, payload = line.split(" ", 3)
            recs.append((int(off), int(seq), ts, payload.encode("latin-1")))
        except ValueError:
            recs.append((-1, -1, "", line.encode("latin-1")))
    return recs


def parse_offsets(out):
    offs = {}
    for line in out.split("\n"):
        if line:
            name, off = line.rsplit(" ", 1)
            offs[name] = int(off)
    return offs


# -- ground truth, between steps ------------------------------------------
class Chan:
    """A channel as a crash-free run left it after a step: its records,
    its subscribers' offsets, those of them that retention left behind
    the earliest record (which chcompact --check reports), and the number
    of entries in its offset journal."""

    def __init__(self, exists=False, recs=(), offs=None, behind=(),
                 journal=0):
        self.exists = exists
        self.recs = [tuple(r) for r in recs]
        self.offs = dict(offs or {})
        self.behind = set(behind)
        self.journal = journal

    def to_json(self):
        return {"exists": self.exists,
                "recs": [[o, s, t, p.decode("latin-1")]
                         for o, s, t, p in self.recs],
                "offs": self.offs, "behind": sorted(self.behind),
                "journal": self.journal}

    @staticmethod
    def from_json(j):
        return Chan(j["exists"], [(o, s, t, p.encode("latin-1"))
                                  for o, s, t, p in j["recs"]], j["offs"],
                    j["behind"], j["journal"])


class Truth:
    def __init__(self, chans):
        self.chans = chans

    def records(self, key):
        return self.chans[key].recs

    def payloads(self, key):
        return [r[3] for r in self.chans[key].recs]


def gather(tools, paths):
    chans = {}
    for key, path in paths.items():
        peek = tools.run(["chsub", "--peek", "--from=earliest", FMT, path])
        if peek[0] != 0:
            if not os.path.exists(os.path.join(path, "channel.yaml")):
                chans[key] = Chan(False)
                continue
            raise WorkloadError("reading %s failed: %s" % (path, peek[2]))
        lst = tools.run(["choffset", path])
        if lst[0] != 0:
            raise WorkloadError("choffset %s failed: %s" % (path, lst[2]))
        offs = parse_offsets(lst[1])
        behind, journal = set(), 0
        if offs:
            chk = tools.run(["chcompact", "--check", path])
            behind = behind_earliest(chk[2])
        if os.path.exists(os.path.join(path, "journal")):
            hist = tools.run(["choffset", "--history", path])
            journal = hist[1].count("\n")
        chans[key] = Chan(True, parse_records(peek[1]), offs, behind,
                          journal)
    return Truth(chans)


def behind_earliest(text):
    """Subscribers that chcompact --check says retention left behind."""
    return set(re.findall(r"subscriber '([^']*)': offset \d+ is inside "
                          r"removed data", text))


def resolve(x, truth, paths):
    if callable(x):
        x = x(truth)
    if isinstance(x, bytes):
        return x
    for key, path in paths.items():
        x = x.replace("{%s}" % key, path)
    return x


# -- recording --------------------------------------------------------------
def record(wl, fmt, workdir, tools):
    """Run the workload: its setup plainly, its steps under strace.
    Writes meta.json, snapshot/ and trace.N into workdir."""
    ws = os.path.join(workdir, "w")
    os.makedirs(ws)
    paths = {k: os.path.join(ws, rel) for k, rel in wl.channels.items()}
    truth = gather(tools, paths)
    published = {k: [] for k in wl.channels}
    for st in wl.setup:
        argv = [resolve(a, truth, paths) for a in st.argv]
        stdin = resolve(st.stdin, truth, paths) if st.stdin is not None \
            else b""
        r = tools.run(argv, stdin, cwd=ws)
        if r[0] != st.expect:
            raise WorkloadError("setup %r exited %s: %s" % (st.name, r[0],
                                                            r[2]))
        published[st.channel] += st.records
        truth = gather(tools, paths)
    truths = [truth]
    shutil.copytree(ws, os.path.join(workdir, "snapshot"), symlinks=True)
    steps = []
    for i, st in enumerate(wl.steps):
        argv = [resolve(a, truth, paths) for a in st.argv]
        stdin = resolve(st.stdin, truth, paths) if st.stdin is not None \
            else b""
        env = dict(tools.env)
        env.update(st.env)
        trace = os.path.join(workdir, "trace.%d" % i)
        p = T.record(argv, trace, ws, env, stdin)
        if p.returncode != st.expect:
            raise WorkloadError("step %d (%s) exited %d, expected %d: %s" % (
                i, st.name, p.returncode, st.expect,
                p.stderr.decode("latin-1")[-2000:]))
        truth = gather(tools, paths)
        truths.append(truth)
        steps.append({"name": st.name, "argv": argv, "rc": p.returncode,
                      "channel": st.channel,
                      "records": [r.decode("latin-1") for r in st.records],
                      "durable": sorted(st.durable)})
    meta = {"workload": wl.name, "format": fmt, "root": os.path.realpath(ws),
            "channels": wl.channels, "handler": wl.handler,
            "journal": wl.journal, "bin": tools.bindir,
            "setup_records": {k: [r.decode("latin-1") for r in v]
                              for k, v in published.items()},
            "steps": steps,
            "truths": [{k: c.to_json() for k, c in t.chans.items()}
                       for t in truths]}
    with open(os.path.join(workdir, "meta.json"), "w") as f:
        json.dump(meta, f)
    return meta


# -- the invariants ---------------------------------------------------------
class Rules:
    """What must hold in a crash state, from the workload's meta data."""

    def __init__(self, meta):
        self.meta = meta
        self.keys = list(meta["channels"])
        self.truths = [Truth({k: Chan.from_json(c) for k, c in t.items()})
                       for t in meta["truths"]]
        self.steps = meta["steps"]
        self.published = {k: [r.encode("latin-1") for r in v]
                          for k, v in meta["setup_records"].items()}
        self.step_of = {k: {r: -1 for r in v}
                        for k, v in self.published.items()}
        for j, st in enumerate(self.steps):
            for r in st["records"]:
                r = r.encode("latin-1")
                self.published[st["channel"]].append(r)
                self.step_of[st["channel"]][r] = j
        self.pos = {k: {r: i for i, r in enumerate(v)}
                    for k, v in self.published.items()}
        # A channel no step publishes to (a dead-letter channel) holds
        # copies of the records a handler failed on.
        self.copies = [k for k in self.keys if not self.published[k]]
        bad = set()
        for k in self.keys:
            bad |= {r for r in self.published[k] if b"bad" in r}
        self.bad = bad
        # durable[a][k]: the truth after step a acknowledged every record
        # of channel k as durable (a = -1: the snapshot, all durable).
        self.durable = [set(self.keys)]
        for st in self.steps:
            self.durable.append(set(st["durable"]))
        # Steps whose chpub has --atomic (in its argv, or in a shell
        # command line that runs it): all of their records or none.
        self.atomic = [
            (j, st["channel"], [r.encode("latin-1") for r in st["records"]])
            for j, st in enumerate(self.steps)
            if re.search(r"\bchpub\b[^|;&]*\s--atomic\b",
                         " ".join(st["argv"]))]

    def truth(self, a):
        return self.truths[a + 1]

    def must_have(self, k, j, done):
        """Payloads of channel k that must survive a crash in step j."""
        a = j if done else j - 1
        last = None
        for b in range(a, -2, -1):
            if k in self.durable[b + 1]:
                last = b
                break
        if last is None:
            return []
        keep = self.truth(last).payloads(k)
        if k in self.copies:
            upto = set(keep)
            out = [p for p in self.truth(a).payloads(k) if p in upto]
        else:
            upto = max((self.pos[k][p] for p in keep), default=-1)
            out = [p for p in self.truth(a).payloads(k)
                   if self.pos[k].get(p, 1 << 60) <= upto]
        if not done:
            after = set(self.truth(j).payloads(k))
            out = [p for p in out if p in after]
        return out

    def allowed(self, k, j):
        if k in self.copies:
            return self.bad
        return {p for p, s in self.step_of[k].items() if s <= j}

    def check_records(self, k, recs, allowed, what, problems):
        seen, last_pos, last_off, last_seq = set(), -1, -1, -1
        for off, seq, _, p in recs:
            if p not in allowed:
                problems.append("%s of %s delivered a record that was never "
                                "published (or torn): %r at offset %d" % (
                                    what, k, p[:60], off))
            if p in seen:
                problems.append("%s of %s delivered %r twice" % (what, k,
                                                                 p[:40]))
            seen.add(p)
            if off <= last_off or seq <= last_seq:
                problems.append("%s of %s: offset %d (record %d) after "
                                "offset %d (record %d)" % (what, k, off, seq,
                                                           last_off,
                                                           last_seq))
            last_off, last_seq = off, seq
            if k not in self.copies and p in self.pos[k]:
                if self.pos[k][p] < last_pos:
                    problems.append("%s of %s: %r out of publish order" % (
                        what, k, p[:40]))
                last_pos = self.pos[k][p]

    def verdict(self, res, j, done, written):
        """Problems of a crash state (tool results `res`) in step j."""
        problems = []
        for name, r in res.items():
            why = crashed(r)
            if why:
                problems.append("%s: %s; stderr: %s" % (" ".join(name), why,
                                                       r[2][-300:]))
        a = j if done else j - 1
        for k in self.keys:
            self.verdict_channel(k, res, j, a, done, written, problems)
        h = self.meta.get("handler")
        if h:
            self.verdict_handler(h, res, problems)
        return problems

    def verdict_channel(self, k, res, j, a, done, written, problems):
        ta, tj = self.truth(a).chans[k], self.truth(j).chans[k]
        rc, out, err = res[("raw-read", k)]
        missing_channel = rc == 66 or (rc == 1 and "not a channel" in err)
        if missing_channel:
            if ta.exists:
                problems.append("channel %s is gone (created and "
                                "acknowledged before the crash): %s" % (
                                    k, err.strip()[-200:]))
            raw = []
        elif rc not in (0, 65):
            problems.append("reading %s exited %s: %s" % (k, rc,
                                                          err.strip()[-300:]))
            raw = []
        else:
            raw = parse_records(out)
        allowed = self.allowed(k, j)
        self.check_records(k, raw, allowed, "the read before recovery",
                           problems)
        # A sealed segment loses its tail to a power failure only when it
        # was sealed without fdatasync, which its successor's header says
        # (a rollover under sync none): any other such loss is a broken
        # order.
        flags = res.get(("seg-flags", k), [0, "", ""])[1]
        for m in re.finditer(r"segment damaged from offset (\d+) to its end",
                             err):
            if not lost_tail_flagged(flags, int(m.group(1))):
                problems.append("a sealed segment of %s lost its tail from "
                                "offset %s, and the segment after it does "
                                "not say it was sealed without a sync "
                                "(segments and flags: %s)" % (
                                    k, m.group(1), flags))
        got = {r[3] for r in raw}
        must = self.must_have(k, j, done)
        lost = [p for p in must if p not in got]
        if lost:
            problems.append("%d acknowledged records of %s missing before "
                            "recovery (read exit %s), first %r" % (
                                len(lost), k, rc, lost[0][:40]))
        # Offsets, as the crash left them.
        listed = {}
        if ("offsets", k) in res:
            rc2, out2, err2 = res[("offsets", k)]
            if rc2 == 0:
                listed = parse_offsets(out2)
            elif not missing_channel:
                problems.append("choffset %s exited %s: %s" % (
                    k, rc2, err2.strip()[-300:]))
        if done:
            want = set(tj.offs)
            maybe = set()
        else:
            want = set(ta.offs) & set(tj.offs)
            maybe = (set(ta.offs) | set(tj.offs) |
                     {s for (c, s) in written if c == k}) - want
        for s in sorted(want - set(listed)):
            problems.append("subscriber %s of %s is gone (registered and "
                            "acknowledged before the crash)" % (s, k))
        for s in sorted(set(listed) - want - maybe):
            problems.append("subscriber %s of %s exists but was deleted "
                            "(acknowledged) or never registered" % (s, k))
        for s, off in sorted(listed.items()):
            if done:
                ok = {tj.offs.get(s)}
            else:
                ok = {ta.offs.get(s)} | written.get((k, s), set())
            if off not in ok:
                problems.append("subscriber %s of %s is at offset %d; "
                                "acknowledged or written since: %s" % (
                                    s, k, off, sorted(x for x in ok
                                                      if x is not None)))
        # An offset never survives a power failure that the records
        # before it did not (channel(5), Sync policies): a commit syncs
        # the newest segment and those sealed without a sync first.  Not
        # the records a compaction deleted, before the step or in it.
        kept = {p for _, _, _, p in ta.recs} & {p for _, _, _, p in tj.recs}
        at = {p: o for o, _, _, p in ta.recs + tj.recs}
        for s, off in sorted(listed.items()):
            gone = [p for p in sorted(kept, key=at.get)
                    if at[p] < off and p not in got]
            if gone:
                problems.append("subscriber %s of %s is at offset %d, but "
                                "%d records before it are missing (read "
                                "exit %s), first %r" % (s, k, off, len(gone),
                                                        rc, gone[0][:40]))
        if ("check-raw", k) in res:
            rc3, out3, err3 = res[("check-raw", k)]
            # Retention may leave a subscriber behind the earliest record
            # (chsub then skips ahead with a warning): not a crash's doing
            # when a crash-free run leaves it there too.
            behind = ta.behind | tj.behind
            for line in (out3 + err3).split("\n"):
                if "subscriber '" in line and not (
                        behind_earliest(line) & behind):
                    problems.append("chcompact --check before recovery: " +
                                    line.strip())
        if ("history", k) in res:
            n = res[("history", k)][1].count("\n")
            if n < ta.journal:
                problems.append("the offset journal of %s has %d entries, "
                                "%d were acknowledged" % (k, n, ta.journal))
        # Recovery: the next writer, --repair, --check, a full read.
        for step, ok in (("next-chpub", (0,)), ("repair", (0,)),
                         ("check", (0,)), ("read", (0,))):
            r = res[(step, k)]
            if r[0] not in ok:
                msg = [x for x in r[2].split("\n") if x and
                       "repaired:" not in x]
                problems.append("%s on %s exited %s: %s" % (
                    step, k, r[0], " | ".join(msg[:3])[:400]))
        final = parse_records(res[("read", k)][1]) \
            if res[("read", k)][0] == 0 else []
        self.check_records(k, final, allowed | {MARKER},
                           "the read after recovery", problems)
        if final and final[-1][3] != MARKER:
            problems.append("the read of %s after recovery does not end "
                            "with the record the next chpub added" % k)
        fgot = {r[3] for r in final}
        lost = [p for p in must if p not in fgot]
        if lost and res[("read", k)][0] == 0:
            problems.append("%d acknowledged records of %s missing after "
                            "recovery, first %r" % (len(lost), k,
                                                    lost[0][:40]))
        for s, ch, recs in self.atomic:
            if ch != k:
                continue
            for what, have, ok in (("before", got, True),
                                   ("after", fgot, res[("read", k)][0] == 0)):
                n = sum(1 for p in recs if p in have)
                if ok and 0 < n < len(recs):
                    problems.append("%d of the %d records of step %d "
                                    "(chpub --atomic) in %s %s recovery, "
                                    "all or none expected" % (
                                        n, len(recs), s, k, what))
        gone = [p for p in got if p not in fgot]
        if gone and res[("read", k)][0] == 0:
            problems.append("recovery lost %d valid records of %s, first %r"
                            % (len(gone), k, gone[0][:40]))
        # Every subscriber resumes where its offset says.
        for s, off in sorted(listed.items()):
            r = res.get(("chsub", k, s))
            if r is None:
                continue
            if r[0] != 0:
                problems.append("chsub %s of %s after recovery exited %s: %s"
                                % (s, k, r[0], r[2].strip()[-300:]))
                continue
            want_recs = [x[3] for x in final if x[0] >= off]
            got_recs = [x[3] for x in parse_records(r[1])]
            if got_recs != want_recs:
                problems.append("chsub %s of %s from offset %d delivered %d "
                                "records, the channel holds %d from there" % (
                                    s, k, off, len(got_recs),
                                    len(want_recs)))

    def verdict_handler(self, h, res, problems):
        sub, dlq = h
        src = [k for k in self.keys if k != dlq][0]
        rc, out, _ = res[("offsets", src)]
        if rc != 0:
            return
        off = parse_offsets(out).get(sub)
        if off is None:
            return
        final = parse_records(res[("read", src)][1]) \
            if res[("read", src)][0] == 0 else []
        dead = {r[3] for r in parse_records(res[("read", dlq)][1])} \
            if res[("read", dlq)][0] == 0 else set()
        for o, _, _, p in final:
            if o < off and b"bad" in p and p not in dead:
                problems.append("record %r at offset %d was consumed by %s "
                                "(offset %d) but is not in the dead letters"
                                % (p[:40], o, sub, off))


# -- checking one state -------------------------------------------------------
def seg_flags(path):
    """The segments of a channel in a crash state, before any tool ran:
    "BASE:FLAG ..." with byte 40 of each header (channel(5): 1 when the
    segment before it was sealed without fdatasync)."""
    out = []
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".seg"))
    except OSError:
        return ""
    for n in names:
        with open(os.path.join(path, n), "rb") as f:
            h = f.read(41)
        out.append("%d:%d" % (int(n[:-4]), h[40] & 1 if len(h) > 40 else 0))
    return " ".join(out)


def lost_tail_flagged(flags, off):
    """Is the loss of a segment's tail from offset off one the persistence
    model allows: is the segment after the damaged one flagged?  The
    damaged one holds off, or, if off is the base of the next (only its
    seal was lost), is the one before."""
    segs = sorted(tuple(int(x) for x in e.split(":")) for e in flags.split())
    for i, (b, _) in enumerate(segs):
        holds = b <= off and (i + 1 == len(segs) or segs[i + 1][0] >= off)
        if holds and i + 1 < len(segs) and segs[i + 1][1] == 1:
            return True
    return False


# -- checking one state (running the tools) ------------------------------------
class Checker:
    def __init__(self, meta, tools, scratch):
        self.meta = meta
        self.tools = tools
        self.scratch = scratch

    def run(self, tree):
        ws = os.path.join(self.scratch, "w")
        shutil.rmtree(ws, ignore_errors=True)
        os.makedirs(ws)
        M.write_tree(tree, ws)
        paths = {k: os.path.join(ws, rel)
                 for k, rel in self.meta["channels"].items()}
        t = self.tools
        res = {}
        subs = {}
        for k, p in paths.items():
            res[("seg-flags", k)] = [0, seg_flags(p), ""]
            res[("raw-read", k)] = t.run(["chsub", "--peek",
                                          "--from=earliest", FMT, p])
            if os.path.isdir(os.path.join(p, "subscribers")):
                res[("offsets", k)] = r = t.run(["choffset", p])
                subs[k] = parse_offsets(r[1]) if r[0] == 0 else {}
                if subs[k]:
                    res[("check-raw", k)] = t.run(["chcompact", "--check",
                                                   p])
                if self.meta.get("journal"):
                    res[("history", k)] = t.run(["choffset", "--history",
                                                 p])
        for k, p in paths.items():
            res[("next-chpub", k)] = t.run(["chpub", "--sync=always", p,
                                            MARKER.decode()])
            res[("repair", k)] = t.run(["chcompact", "--repair", p])
            res[("check", k)] = t.run(["chcompact", "--check", p])
            res[("read", k)] = t.run(["chsub", "--peek", "--from=earliest",
                                      FMT, p])
            for s in sorted(subs.get(k, {})):
                res[("chsub", k, s)] = t.run(["chsub", FMT, p, s])
        return res


# -- exploring ------------------------------------------------------------------
class Point:
    """A crash point: after model event k, in step j."""
    __slots__ = ("k", "j", "done", "desc", "written")

    def __init__(self, k, j, done, desc, written):
        self.k, self.j, self.done, self.desc = k, j, done, desc
        self.written = written


def replay(meta, workdir):
    """Yield (point, fs) for every crash point of the recorded workload:
    the start, after each model event, and after each step exited."""
    root = meta["root"]
    snap = os.path.join(workdir, "snapshot")
    fs = M.FS(root, content=snap)
    k = 0
    offre = re.compile(rb"^chtools-offset 1\noffset (\d+)\n")
    chans = {os.path.join(root, rel): key
             for key, rel in meta["channels"].items()}
    yield Point(0, 0, False, "start", {}), fs
    for j, st in enumerate(meta["steps"]):
        written = {}
        for sc in T.parse(os.path.join(workdir, "trace.%d" % j)):
            fs.cwd.setdefault(sc.pid, root)
            for ev in fs.apply(sc):
                k += 1
                if ev.path and ev.path.endswith("/.offset.tmp") and ev.data:
                    m = offre.match(ev.data)
                    sub = os.path.dirname(ev.path)
                    ch = os.path.dirname(os.path.dirname(sub))
                    if m and ch in chans:
                        written.setdefault((chans[ch],
                                            os.path.basename(sub)),
                                           set()).add(int(m.group(1)))
                yield Point(k, j, False, "%s: %s" % (st["name"], ev.desc),
                            {x: set(v) for x, v in written.items()}), fs
        yield Point(k, j, True, "%s: exited %d" % (st["name"], st["rc"]),
                    {}), fs


class Explorer:
    def __init__(self, meta, workdir, tools, scratch, opts, out):
        self.meta = meta
        self.workdir = workdir
        self.rules = Rules(meta)
        self.checker = Checker(meta, tools, scratch)
        self.opts = opts
        self.out = out
        self.failures = []
        self.results = {}
        self.states = 0

    def ctxkey(self, p):
        return (p.j, p.done, tuple(sorted((x, tuple(sorted(v)))
                                          for x, v in p.written.items())))

    def exhaustive(self):
        """Pass 1: every point and variant, hashed; pass 2: check the
        distinct states (a seeded sample of them beyond max_states)."""
        first = {}		# hash -> (k, done, variant)
        evals = {}		# (hash, ctxkey) -> (point, variant)
        self.points = 0
        for p, fs in replay(self.meta, self.workdir):
            self.points += 1
            for name, choice in M.variants(fs.pending):
                h = M.tree_hash(fs.materialise(choice))
                first.setdefault(h, (p.k, p.done, name))
                evals.setdefault((h, self.ctxkey(p)), (p, name))
        self.states = len(evals)
        chosen = set(first)
        cap = self.opts.max_states
        if cap and len(chosen) > cap:
            rng = random.Random(self.opts.seed)
            chosen = set(rng.sample(sorted(chosen), cap))
        self.distinct = len(first)
        self.checked_distinct = len(chosen)
        need = {}
        for h in chosen:
            need.setdefault(first[h][:2], []).append((first[h][2], h))
        for p, fs in replay(self.meta, self.workdir):
            for name, h in need.get((p.k, p.done), []):
                tree = fs.materialise(M.variant_by_name(fs.pending, name))
                self.results[h] = (self.checker.run(tree), tree)
        self.checked = 0
        for (h, ck), (p, name) in sorted(evals.items(),
                                         key=lambda e: e[1][0].k):
            if h not in self.results:
                continue
            self.checked += 1
            self.judge(p, name, h)

    def sampled(self, n):
        rng = random.Random(self.opts.seed)
        npoints = sum(1 for _ in replay(self.meta, self.workdir))
        self.points = npoints
        picks = {}
        for _ in range(n):
            picks.setdefault(rng.randrange(npoints), []).append(
                "random:%d" % rng.randrange(1 << 30))
        i = 0
        seen = set()
        self.checked = 0
        for p, fs in replay(self.meta, self.workdir):
            for name in picks.get(i, []):
                tree = fs.materialise(M.variant_by_name(fs.pending, name))
                h = M.tree_hash(tree)
                if h not in self.results:
                    self.results[h] = (self.checker.run(tree), tree)
                seen.add(h)
                self.checked += 1
                self.judge(p, name, h)
            i += 1
        self.states = self.checked
        self.distinct = self.checked_distinct = len(seen)

    def judge(self, p, name, h):
        res, tree = self.results[h]
        problems = self.rules.verdict(res, p.j, p.done, p.written)
        if not problems:
            return
        n = len(self.failures) + 1
        self.failures.append((p, name, problems))
        kept = ""
        if self.opts.keep:
            d = os.path.join(self.workdir, "failed-%d" % n)
            if not os.path.exists(d):
                os.makedirs(d)
                M.write_tree(tree, d)
            kept = " (state kept in %s)" % d
        if n <= self.opts.show:
            self.out("FAIL %s, format %s, point %d (%s%s), variant %s%s:" % (
                self.meta["workload"], self.meta["format"], p.k, p.desc,
                ", after the step exited" if p.done and "exited" not in
                p.desc else "", name, kept))
            for pr in problems[:6]:
                self.out("    " + pr)
            if self.opts.keep:
                self.out("    replay: %s replay %s --point %d --variant %s%s"
                         % (os.path.relpath(__file__), self.workdir, p.k,
                            name, " --done" if p.done else ""))
            else:
                broken = os.environ.get("CH_BROKEN_ORDER")
                self.out("    replay: %sCH_CRASH_SEED=%d CH_CRASH_KEEP=DIR "
                         "CH_CRASH_WORKLOADS=%s CH_CRASH_FORMATS=%s "
                         "CH_CRASH_BIN=%s, then the replay command it "
                         "prints" % (
                             "CH_BROKEN_ORDER=%s " % broken if broken
                             else "", self.opts.seed,
                             self.meta["workload"],
                             self.meta["format"] or "default",
                             self.meta["bin"]))


def default_scratch(tmp):
    """Crash states are checked in a tmpfs when there is one: the tools'
    fsyncs cost nothing there, and the state is thrown away anyway."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tmp


def run(opts, out):
    tools_fmts = [None if f in ("", "default") else f
                  for f in opts.formats.split(",")]
    wls = W.workloads(opts.seed)
    if opts.workloads:
        names = opts.workloads.split(",")
        unknown = set(names) - {w.name for w in wls}
        if unknown:
            raise SystemExit("unknown workloads: " + ", ".join(unknown))
        wls = [w for w in wls if w.name in names]
    else:
        wls = [w for w in wls if w.size == "small" or
               (opts.large and w.size == "large")]
    # A large workload sampled many times repeats its few distinct states:
    # beyond SAMPLES_PER_ROUND samples, more workloads of its kind are
    # drawn (round i from seed * 1000 + i), each sampled in turn.
    rounds = max(1, opts.samples // SAMPLES_PER_ROUND)
    more = []
    for w in wls:
        if w.size == "large":
            for i in range(1, rounds):
                extra = W.w_mixed(random.Random(opts.seed * 1000 + i))
                extra.name = "%s-r%d" % (w.name, i)
                more.append(extra)
    wls += more
    tmp = opts.tmp or tempfile.gettempdir()
    base = opts.keep or tempfile.mkdtemp(prefix="crash-explore.", dir=tmp)
    os.makedirs(base, exist_ok=True)
    # strace prints resolved paths: the workspace must be one already.
    base = os.path.realpath(base)
    scratch = tempfile.mkdtemp(prefix="crash-state.",
                               dir=opts.scratch or default_scratch(tmp))
    total = failed = distinct = 0
    t_all = time.time()
    try:
        for fmt in tools_fmts:
            tools = Tools(opts.bin, fmt)
            for wl in wls:
                t0 = time.time()
                wd = os.path.join(base, "%s-f%s" % (wl.name, fmt or "d"))
                shutil.rmtree(wd, ignore_errors=True)
                os.makedirs(wd)
                meta = record(wl, fmt, wd, tools)
                ex = Explorer(meta, wd, tools, scratch, opts, out)
                if wl.size != "large":
                    ex.exhaustive()
                    how = "exhaustive" if ex.checked_distinct == ex.distinct \
                        else "%d of %d distinct sampled" % (
                            ex.checked_distinct, ex.distinct)
                else:
                    ex.sampled(max(1, opts.samples // rounds))
                    how = "sampled"
                nf = len({(p.k, p.done, n) for p, n, _ in ex.failures})
                kinds = {}
                for _, _, probs in ex.failures:
                    for pr in probs:
                        sig = re.sub(r"/[^ :]*|\d+|b'[^']*'", "#", pr)[:150]
                        kinds[sig] = kinds.get(sig, 0) + 1
                for sig, n in sorted(kinds.items(), key=lambda x: -x[1]):
                    out("  %5d x %s" % (n, sig))
                out("%s (format %s): %d crash states checked at %d crash "
                    "points (%s; %d distinct), %d failed, %.1f s" % (
                        wl.name, fmt or "default", ex.checked, ex.points,
                        how, ex.checked_distinct, nf, time.time() - t0))
                total += ex.checked
                failed += nf
                distinct += ex.checked_distinct
    finally:
        T.kill_children()
        shutil.rmtree(scratch, ignore_errors=True)
        if not opts.keep:
            shutil.rmtree(base, ignore_errors=True)
    out("crash states checked: %d (%d distinct), failed: %d, seed %d "
        "(replay with CH_CRASH_SEED=%d), %.0f s" % (
            total, distinct, failed, opts.seed, opts.seed,
            time.time() - t_all))
    return 1 if failed else 0


def replay_one(opts, out):
    with open(os.path.join(opts.dir, "meta.json")) as f:
        meta = json.load(f)
    tools = Tools(opts.bin or meta["bin"], meta["format"])
    scratch = tempfile.mkdtemp(prefix="crash-state.",
                               dir=default_scratch(tempfile.gettempdir()))
    try:
        for p, fs in replay(meta, opts.dir):
            if p.k != opts.point or p.done != opts.done:
                continue
            tree = fs.materialise(M.variant_by_name(fs.pending,
                                                    opts.variant))
            out("point %d: %s; variant %s; pending:" % (p.k, p.desc,
                                                       opts.variant))
            for q in fs.pending:
                out("    %d %s" % (q.seq, q.desc))
            res = Checker(meta, tools, scratch).run(tree)
            for name, r in res.items():
                out("%s: exit %s\n%s%s" % (" ".join(name), r[0], r[1],
                                          r[2]))
            problems = Rules(meta).verdict(res, p.j, p.done, p.written)
            for pr in problems:
                out("PROBLEM " + pr)
            return 1 if problems else 0
        raise SystemExit("no point %d (done=%s)" % (opts.point, opts.done))
    finally:
        T.kill_children()
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    env = os.environ
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    default_bin = os.path.dirname(shutil.which("chpub") or "bin/chpub")
    r = sub.add_parser("run")
    r.add_argument("--bin", default=env.get("CH_CRASH_BIN", default_bin))
    r.add_argument("--seed", type=int, default=int(env.get(
        "CH_CRASH_SEED") or random.randrange(1 << 16)))
    r.add_argument("--formats", default=env.get("CH_CRASH_FORMATS") or "1,2,3")
    r.add_argument("--workloads", default=env.get("CH_CRASH_WORKLOADS"))
    r.add_argument("--large", action="store_true",
                   help="also the large (sampled) workloads")
    r.add_argument("--max-states", type=int,
                   default=int(env.get("CH_CRASH_MAX_STATES") or 0))
    r.add_argument("--samples", type=int,
                   default=int(env.get("CH_CRASH_SAMPLES") or 100))
    r.add_argument("--keep", default=env.get("CH_CRASH_KEEP") or None)
    r.add_argument("--tmp", default=None)
    r.add_argument("--scratch", default=env.get("CH_CRASH_SCRATCH"))
    r.add_argument("--show", type=int, default=8,
                   help="failures shown in detail per workload")
    p = sub.add_parser("replay")
    p.add_argument("dir")
    p.add_argument("--point", type=int, required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--done", action="store_true")
    p.add_argument("--bin", default=env.get("CH_CRASH_BIN"),
                   help="the tools (default: those the run used)")
    opts = ap.parse_args()

    def out(s):
        print(s, flush=True)

    # A run stopped by a signal (timeout(1), bats, ^C) still removes its
    # workspace and the crash states in /dev/shm: SystemExit unwinds
    # through the finally clauses, and run_group (crash_trace.py) kills
    # the process group of the tool it was waiting for.
    def stop(signum, frame):
        sys.exit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    if opts.cmd == "run":
        if opts.keep:
            opts.keep = os.path.abspath(opts.keep)
        sys.exit(run(opts, out))
    sys.exit(replay_one(opts, out))


if __name__ == "__main__":
    main()
