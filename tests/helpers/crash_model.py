"""The persistence model of the crash-state explorer (tests/RELIABILITY.md).

A file system is a set of inodes: files (bytes) and directories (name ->
inode).  Replaying a trace keeps two views of each inode: the live one,
which every call changes at once (what a process sees, and what survives
kill -9), and the durable one, which changes only at a sync:

  - A write, pwrite or ftruncate (or O_TRUNC) is pending on its file until
    an fsync or fdatasync of that file makes every pending change to it
    durable.  After a power loss, any subset of a file's pending changes
    may have reached the disk, applied in their order, and any write may
    be torn at a 512-byte sector boundary (a prefix of it persisted, or a
    suffix: the later sectors without the earlier ones).
  - A create (O_CREAT), mkdir, rename, link, unlink or rmdir is pending on
    its directory until an fsync of that directory.  Any subset of a
    directory's pending entry operations may persist (the strict choice:
    not only a prefix), each one whole: a rename is atomic.  A file's own
    fsync does not make its name durable, nor does anything make a new
    directory reachable but an fsync of its parent.
  - sync_file_range starts writeback and makes nothing durable.

A crash state is the durable view plus a chosen selection of the pending
operations, read from the root of the workspace down: an inode whose
every name was lost is gone.

Variants chosen at each crash point are listed by variants(); they are
bounded so that small workloads can be explored exhaustively: every
subset when few operations are pending, single deviations (and tears)
when many are.
"""

import hashlib
import os
import random

SECTOR = 512
DIR = None		# marks a directory in a materialised tree


class ModelError(Exception):
    pass


class Inode:
    __slots__ = ("ino", "kind", "data", "entries")

    def __init__(self, ino, kind):
        self.ino = ino
        self.kind = kind			# "f" or "d"
        self.data = bytearray() if kind == "f" else None
        self.entries = {} if kind == "d" else None


class Pending:
    """One operation not yet durable.  kind: "w" write (off, data), "t"
    truncate (size), "e" directory entries (changes: [(name, ino|None)])."""
    __slots__ = ("seq", "kind", "ino", "off", "data", "size", "changes",
                 "desc")

    def __init__(self, seq, kind, ino, desc, off=0, data=b"", size=0,
                 changes=None):
        self.seq, self.kind, self.ino, self.desc = seq, kind, ino, desc
        self.off, self.data, self.size = off, data, size
        self.changes = changes


class Event:
    """What a syscall did to the model: kind "op" (something now pending)
    or "sync"; for writes, the path the file was opened as and the data."""
    __slots__ = ("kind", "desc", "path", "data")

    def __init__(self, kind, desc, path=None, data=None):
        self.kind, self.desc, self.path, self.data = kind, desc, path, data


class OpenFile:
    """An open file description: shared by dup'ed and inherited fds."""
    __slots__ = ("ino", "pos", "append", "path")

    def __init__(self, ino, append, path):
        self.ino, self.pos, self.append, self.path = ino, 0, append, path


def _put(buf, off, data):
    if off > len(buf):
        buf.extend(b"\0" * (off - len(buf)))
    buf[off:off + len(data)] = data


def _truncate(buf, size):
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(b"\0" * (size - len(buf)))


class FS:
    """Replays syscalls (crash_trace.Syscall) on a workspace directory."""

    def __init__(self, root, content=None):
        """root: the workspace path the trace names; content: where its
        starting tree is now (default: root itself)."""
        self.root = os.path.realpath(root)
        self.inodes = {}
        self.next_ino = 1
        self.durable_data = {}		# ino -> bytes
        self.durable_dirs = {}		# ino -> {name: ino}
        self.pending = []		# Pending, in the order they happened
        self.seq = 0			# model operations so far
        self.fds = {}			# pid -> {fd: OpenFile}
        self.cwd = {}
        self.root_ino = self._snapshot(content or self.root)

    # -- the starting tree, all of it durable ---------------------------
    def _new(self, kind):
        n = Inode(self.next_ino, kind)
        self.inodes[n.ino] = n
        self.next_ino += 1
        return n

    def _snapshot(self, path):
        if os.path.islink(path):
            raise ModelError("symlink in the workspace: " + path)
        if os.path.isdir(path):
            d = self._new("d")
            for name in sorted(os.listdir(path)):
                d.entries[name] = self._snapshot(os.path.join(path, name))
            self.durable_dirs[d.ino] = dict(d.entries)
            return d.ino
        f = self._new("f")
        with open(path, "rb") as fh:
            f.data = bytearray(fh.read())
        self.durable_data[f.ino] = bytes(f.data)
        return f.ino

    # -- paths ----------------------------------------------------------
    def inside(self, path):
        return path is not None and (path == self.root or
                                     path.startswith(self.root + "/"))

    def _parts(self, path):
        rel = os.path.relpath(path, self.root)
        return [] if rel == "." else rel.split("/")

    def lookup(self, path):
        """Inode number of a live path, or None."""
        ino = self.root_ino
        for p in self._parts(path):
            d = self.inodes[ino]
            if d.kind != "d" or p not in d.entries:
                return None
            ino = d.entries[p]
        return ino

    def _parent(self, path):
        parent = self.lookup(os.path.dirname(path))
        if parent is None or self.inodes[parent].kind != "d":
            raise ModelError("no live parent directory for " + path)
        return parent, os.path.basename(path)

    def _resolve(self, pid, dirfd, dirpath, name):
        name = os.fsdecode(name)
        if name.startswith("/"):
            return os.path.normpath(name)
        if dirfd == -100:
            base = dirpath or self.cwd.get(pid)
        else:
            base = dirpath
        if base is None:
            raise ModelError("cannot resolve %r (pid %d)" % (name, pid))
        return os.path.normpath(os.path.join(base, name))

    # -- model operations -------------------------------------------------
    def _op(self, kind, ino, desc, **kw):
        self.seq += 1
        p = Pending(self.seq, kind, ino, desc, **kw)
        self.pending.append(p)
        return p

    def _entry(self, path, changes, desc):
        parent, _ = self._parent(path)
        d = self.inodes[parent]
        for name, ino in changes:
            if ino is None:
                d.entries.pop(name, None)
            else:
                d.entries[name] = ino
        return self._op("e", parent, desc, changes=changes)

    def _write(self, of, off, data, what):
        f = self.inodes[of.ino]
        _put(f.data, off, data)
        return self._op("w", of.ino, "%s %d bytes at %d to %s" % (
            what, len(data), off, self.rel(of.path)), off=off,
            data=bytes(data))

    def _sync(self, ino, path):
        n = self.inodes[ino]
        keep = []
        for p in self.pending:
            if p.ino != ino:
                keep.append(p)
            elif p.kind == "e":
                d = dict(self.durable_dirs.get(ino, {}))
                for name, target in p.changes:
                    if target is None:
                        d.pop(name, None)
                    else:
                        d[name] = target
                self.durable_dirs[ino] = d
            else:
                buf = bytearray(self.durable_data.get(ino, b""))
                if p.kind == "w":
                    _put(buf, p.off, p.data)
                else:
                    _truncate(buf, p.size)
                self.durable_data[ino] = bytes(buf)
        self.pending = keep
        self.seq += 1
        return Event("sync", "%s %s" % ("fsync dir" if n.kind == "d" else
                                        "fsync", self.rel(path)))

    def rel(self, path):
        if path is None:
            return "?"
        r = os.path.relpath(path, self.root)
        return "." if r == "." else r

    def _table(self, pid):
        return self.fds.setdefault(pid, {})

    def _of(self, pid, fdarg, call):
        """The OpenFile of an fd inside the workspace, else None."""
        from crash_trace import fd_arg
        fd, path, _deleted = fd_arg(fdarg)
        of = self._table(pid).get(fd)
        if of is not None:
            return of
        if self.inside(path):
            raise ModelError("%s on fd %d of %s, not seen opened (pid %d)"
                             % (call, fd, path, pid))
        return None

    def apply(self, sc):
        """Apply one Syscall.  Returns the Events it made; none when it
        changed nothing in the workspace."""
        from crash_trace import fd_arg, string_arg, iov_arg
        name, a, pid = sc.name, sc.args, sc.pid
        if sc.ret is None or sc.ret < 0:
            if name in ("execve", "execveat"):
                return []
            return []
        out = []
        if name in ("open", "openat", "creat", "openat2"):
            if name == "openat" or name == "openat2":
                dfd, dpath, _ = fd_arg(a[0])
                path = self._resolve(pid, dfd, dpath, string_arg(a[1]))
                flags = a[2]
            elif name == "open":
                path = self._resolve(pid, -100, None, string_arg(a[0]))
                flags = a[1]
            else:
                path = self._resolve(pid, -100, None, string_arg(a[0]))
                flags = "O_CREAT|O_WRONLY|O_TRUNC"
            if sc.retpath and self.inside(sc.retpath):
                path = sc.retpath
            if not self.inside(path):
                self._table(pid).pop(sc.ret, None)
                return []
            ino = self.lookup(path)
            if ino is None:
                if "O_CREAT" not in flags:
                    raise ModelError("opened a missing file: " + path)
                n = self._new("f")
                ino = n.ino
                self.durable_data[ino] = b""
                self._entry(path, [(os.path.basename(path), ino)],
                            "create " + self.rel(path))
                out.append(Event("op", "create " + self.rel(path)))
            elif "O_TRUNC" in flags and self.inodes[ino].kind == "f":
                self.inodes[ino].data = bytearray()
                self._op("t", ino, "truncate " + self.rel(path), size=0)
                out.append(Event("op", "O_TRUNC " + self.rel(path)))
            self._table(pid)[sc.ret] = OpenFile(ino, "O_APPEND" in flags,
                                                path)
            return out
        if name in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
            of = self._of(pid, a[0], name)
            if of is None or sc.ret == 0:
                return []
            f = self.inodes[of.ino]
            if f.kind != "f":
                raise ModelError("write to a directory")
            data = string_arg(a[1]) if name in ("write", "pwrite64") \
                else iov_arg(a[1])
            data = data[:sc.ret]
            if name in ("pwrite64", "pwritev", "pwritev2"):
                off = int(a[-1] if name != "pwritev2" else a[3])
            else:
                off = len(f.data) if of.append else of.pos
                of.pos = off + len(data)
            self._write(of, off, data, name)
            return [Event("op", "%s %d bytes at %d to %s" % (
                name, len(data), off, self.rel(of.path)), of.path, data)]
        if name == "ftruncate":
            of = self._of(pid, a[0], name)
            if of is None:
                return []
            size = int(a[1])
            _truncate(self.inodes[of.ino].data, size)
            self._op("t", of.ino, "ftruncate %s to %d" % (
                self.rel(of.path), size), size=size)
            return [Event("op", "ftruncate %s to %d" % (self.rel(of.path),
                                                        size))]
        if name in ("fsync", "fdatasync"):
            of = self._of(pid, a[0], name)
            if of is None:
                return []
            return [self._sync(of.ino, of.path)]
        if name in ("sync", "syncfs"):
            for ino in list(self.inodes):
                self._sync(ino, None)
            return [Event("sync", name)]
        if name in ("mkdir", "mkdirat"):
            if name == "mkdirat":
                dfd, dpath, _ = fd_arg(a[0])
                path = self._resolve(pid, dfd, dpath, string_arg(a[1]))
            else:
                path = self._resolve(pid, -100, None, string_arg(a[0]))
            if not self.inside(path):
                return []
            n = self._new("d")
            self.durable_dirs[n.ino] = {}
            self._entry(path, [(os.path.basename(path), n.ino)],
                        "mkdir " + self.rel(path))
            return [Event("op", "mkdir " + self.rel(path))]
        if name in ("unlink", "unlinkat", "rmdir"):
            if name == "unlinkat":
                dfd, dpath, _ = fd_arg(a[0])
                path = self._resolve(pid, dfd, dpath, string_arg(a[1]))
            else:
                path = self._resolve(pid, -100, None, string_arg(a[0]))
            if not self.inside(path):
                return []
            what = "rmdir" if (name == "rmdir" or "AT_REMOVEDIR" in
                               (a[2] if len(a) > 2 else "")) else "unlink"
            self._entry(path, [(os.path.basename(path), None)],
                        "%s %s" % (what, self.rel(path)))
            return [Event("op", "%s %s" % (what, self.rel(path)))]
        if name in ("rename", "renameat", "renameat2", "link", "linkat"):
            if name in ("renameat", "renameat2", "linkat"):
                d1, p1, _ = fd_arg(a[0])
                d2, p2, _ = fd_arg(a[2])
                src = self._resolve(pid, d1, p1, string_arg(a[1]))
                dst = self._resolve(pid, d2, p2, string_arg(a[3]))
            else:
                src = self._resolve(pid, -100, None, string_arg(a[0]))
                dst = self._resolve(pid, -100, None, string_arg(a[1]))
            if not self.inside(src) and not self.inside(dst):
                return []
            if os.path.dirname(src) != os.path.dirname(dst):
                raise ModelError("%s across directories is not modelled: "
                                 "%s -> %s" % (name, src, dst))
            ino = self.lookup(src)
            if ino is None:
                raise ModelError("%s of a missing file: %s" % (name, src))
            verb = "link" if name.startswith("link") else "rename"
            changes = [(os.path.basename(dst), ino)]
            if verb == "rename":
                changes.insert(0, (os.path.basename(src), None))
            desc = "%s %s -> %s" % (verb, self.rel(src),
                                    os.path.basename(dst))
            self._entry(dst, changes, desc)
            return [Event("op", desc)]
        if name == "fallocate" and len(a) > 1 and a[1] == "FALLOC_FL_KEEP_SIZE":
            # Blocks reserved past the end: the size and the bytes up to
            # it stay as they are, so no state of the files changes.
            return []
        if name in ("truncate", "fallocate", "copy_file_range", "sendfile",
                    "symlink", "symlinkat"):
            paths = [fd_arg(x)[1] for x in a if x[:1].isdigit()]
            paths += [os.fsdecode(string_arg(x)) for x in a
                      if x.startswith('"')]
            if any(self.inside(p) or (p and not p.startswith("/"))
                   for p in paths):
                raise ModelError(name + " is not modelled")
            return []
        if name == "close":
            fd, _, _ = fd_arg(a[0])
            self._table(pid).pop(fd, None)
            return []
        if name == "close_range":
            lo, hi = int(a[0]), int(a[1])
            t = self._table(pid)
            for fd in [x for x in t if lo <= x <= hi]:
                del t[fd]
            return []
        if name == "lseek":
            of = self._of(pid, a[0], name)
            if of is not None:
                of.pos = sc.ret
            return []
        if name in ("dup", "dup2", "dup3") or (name == "fcntl" and
                                               "F_DUPFD" in a[1]):
            fd, _, _ = fd_arg(a[0])
            t = self._table(pid)
            if fd in t:
                t[sc.ret] = t[fd]
            else:
                t.pop(sc.ret, None)
            return []
        if name in ("clone", "clone3", "fork", "vfork"):
            if sc.ret > 0:
                flags = a[0] if a else ""
                if "CLONE_FILES" in flags:
                    self.fds[sc.ret] = self._table(pid)
                else:
                    self.fds[sc.ret] = dict(self._table(pid))
                self.cwd[sc.ret] = self.cwd.get(pid)
            return []
        if name in ("execve", "execveat"):
            # Every fd the tools open is O_CLOEXEC; a shell's redirection
            # into the workspace would stay open, so keep what is open.
            return []
        if name in ("chdir", "fchdir"):
            if name == "chdir":
                self.cwd[pid] = self._resolve(pid, -100, None,
                                              string_arg(a[0]))
            else:
                self.cwd[pid] = fd_arg(a[0])[1]
            return []
        return []

    # -- crash states -----------------------------------------------------
    def materialise(self, choice):
        """The tree a crash would leave: {relpath: bytes, or DIR}.
        choice(p) for each Pending p says what of it persisted: None
        (lost), True (whole) or (lo, hi) (a torn write: only file bytes
        [lo, hi) of it)."""
        dirs = {}
        data = {}
        for p in self.pending:
            c = choice(p)
            if c is None or c is False:
                continue
            if p.kind == "e":
                d = dirs.get(p.ino)
                if d is None:
                    d = dirs[p.ino] = dict(self.durable_dirs.get(p.ino, {}))
                for name, target in p.changes:
                    if target is None:
                        d.pop(name, None)
                    else:
                        d[name] = target
                continue
            buf = data.get(p.ino)
            if buf is None:
                buf = data[p.ino] = bytearray(self.durable_data.get(p.ino,
                                                                    b""))
            if p.kind == "t":
                _truncate(buf, p.size)
            elif c is True:
                _put(buf, p.off, p.data)
            else:
                lo, hi = c
                _put(buf, lo, p.data[lo - p.off:hi - p.off])
        tree = {}

        def walk(ino, rel, depth):
            if depth > 64:
                raise ModelError("directory loop")
            entries = dirs.get(ino)
            if entries is None:
                entries = self.durable_dirs.get(ino, {})
            for name in sorted(entries):
                t = entries[name]
                path = name if not rel else rel + "/" + name
                n = self.inodes[t]
                if n.kind == "d":
                    tree[path] = DIR
                    walk(t, path, depth + 1)
                else:
                    b = data.get(t)
                    tree[path] = bytes(b) if b is not None else \
                        self.durable_data.get(t, b"")
        walk(self.root_ino, "", 0)
        return tree

    def live_tree(self):
        """The tree a process crash (kill -9) would leave."""
        return self.materialise(lambda p: True)


def tree_hash(tree):
    h = hashlib.sha1()
    for path in sorted(tree):
        v = tree[path]
        h.update(path.encode() + b"\0")
        if v is DIR:
            h.update(b"d\0")
        else:
            h.update(b"f%d\0" % len(v))
            h.update(hashlib.sha1(v).digest())
    return h.hexdigest()


def write_tree(tree, dest):
    """Create the files and directories of a tree under dest (empty)."""
    for path in sorted(tree):
        full = os.path.join(dest, path)
        if tree[path] is DIR:
            os.mkdir(full)
        else:
            with open(full, "wb") as f:
                f.write(tree[path])


def boundaries(p, limit=6):
    """Sector boundaries inside a pending write where it may tear: every
    512-byte one when there are few, else the 4096-byte ones, else the
    first, middle and last few of those (at most `limit`)."""
    lo, hi = p.off, p.off + len(p.data)
    b = [x for x in range((lo // SECTOR + 1) * SECTOR, hi, SECTOR)]
    if len(b) > limit:
        b = [x for x in b if x % 4096 == 0] or b
    if len(b) > limit:
        k = limit // 3 or 1
        mid = len(b) // 2
        b = sorted(set(b[:k] + b[mid:mid + k] + b[-k:]))
    return b


# The bounded variants of one crash point.  With P pending operations, at
# most RECENT of them (the most recent, plus the OLDEST oldest) are dropped,
# kept alone or torn one at a time; with at most SUBSETS pending, every
# subset of them persists, each operation whole (2^SUBSETS states at
# most: the small workloads' crash points have no more than 6 pending).
RECENT = 12
OLDEST = 4
SUBSETS = 6


def variants(pending):
    """Yield (name, choice) for the variants of a crash point: all pending
    operations persisted (what kill -9 leaves), none of them, each one
    lost alone, each one persisted alone, each prefix in order, each write
    torn at each boundary (prefix or suffix kept; the others persisted),
    each write torn with everything after it lost, each write torn
    keeping its suffix with the truncations of its file pending before it
    lost, and, when few are pending, every subset of them (two losses
    together: a bug that needs both would pass every single deviation)."""
    yield "all", lambda p: True
    if not pending:
        return
    yield "none", lambda p: None
    chosen = pending if len(pending) <= RECENT + OLDEST else \
        pending[:OLDEST] + pending[-RECENT:]
    for q in chosen:
        yield "drop:%d" % q.seq, (lambda q: lambda p: None if p is q
                                  else True)(q)
    for q in chosen:
        yield "only:%d" % q.seq, (lambda q: lambda p: True if p is q
                                  else None)(q)
    for q in chosen[1:]:
        yield "prefix:%d" % q.seq, (lambda q: lambda p: True
                                    if p.seq < q.seq else None)(q)
    for q in chosen:
        if q.kind != "w":
            continue
        for b in boundaries(q):
            end = q.off + len(q.data)
            for keep, rng in (("head", (q.off, b)), ("tail", (b, end))):
                yield "tear:%d:%d:%s" % (q.seq, b, keep), \
                    (lambda q, rng: lambda p: rng if p is q
                     else True)(q, rng)
            yield "cut:%d:%d" % (q.seq, b), \
                (lambda q, b: lambda p: (q.off, b) if p is q else
                 (True if p.seq < q.seq else None))(q, b)
    # A truncation lost while a later write to its file kept only its
    # later sectors: the cut bytes back in front of them (the order a
    # writer must close with a sync after cutting a torn tail).
    for q in chosen:
        cuts = [t for t in pending if t.kind == "t" and t.ino == q.ino and
                t.seq < q.seq] if q.kind == "w" else []
        if not cuts:
            continue
        for b in boundaries(q):
            end = q.off + len(q.data)
            yield "uncut:%d:%d" % (q.seq, b), \
                (lambda q, rng, cuts: lambda p: rng if p is q else
                 (None if p in cuts else True))(q, (b, end), cuts)
    # The subsets not already built above: at least two operations
    # dropped and at least two kept (the states are hashed, so one built
    # twice is checked once anyway).
    n = len(pending)
    if n <= SUBSETS:
        for mask in range(1, (1 << n) - 1):
            kept = bin(mask).count("1")
            if kept < 2 or kept > n - 2:
                continue
            yield "subset:%x" % mask, \
                (lambda keep: lambda p: True if p.seq in keep else None)(
                    {q.seq for i, q in enumerate(pending)
                     if mask >> i & 1})


def variant_by_name(pending, name):
    for n, choice in variants(pending):
        if n == name:
            return choice
    if name.startswith("random:"):
        return random_choice(pending, random.Random(int(name[7:])))
    raise ModelError("no variant %s at this crash point" % name)


def random_choice(pending, rng):
    """A random selection: each pending operation kept with probability
    1/2, a kept write torn at a random boundary with probability 1/4."""
    sel = {}
    for p in pending:
        if rng.random() < 0.5:
            sel[p.seq] = None
            continue
        sel[p.seq] = True
        if p.kind == "w" and rng.random() < 0.25:
            b = boundaries(p, limit=64)
            if b:
                x = rng.choice(b)
                sel[p.seq] = (p.off, x) if rng.random() < 0.5 else \
                    (x, p.off + len(p.data))
    return lambda p: sel.get(p.seq)
