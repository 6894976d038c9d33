"""Record a command under strace(1) and parse what it did to files.

The crash-state explorer (crash_explore.py) runs each step of a workload
under `strace -f -y -xx -s HUGE`: -f follows children (chsub -x handlers),
-y prints the path of every file descriptor, -xx prints every string,
paths included, in hex, so nothing needs unquoting, and the huge -s keeps
every byte written.  parse() turns the trace into Syscall tuples in the
order the calls completed, joining the "<unfinished ...>" and
"<... resumed>" halves that -f produces when processes interleave, with
each fork before its child's calls.  Exits are kept in the trace (no -qq):
a pid used again after an exit is a new process.
"""

import collections
import os
import re
import signal
import subprocess

# Every call that changes a file or a directory, and those needed to follow
# file descriptors and their positions (close, lseek, dup*, fcntl F_DUPFD,
# clone/fork, execve, chdir).  sync_file_range is recorded but starts
# writeback only: it makes nothing durable.
TRACED = (
    "open,openat,openat2,creat,write,pwrite64,writev,pwritev,pwritev2,"
    "ftruncate,truncate,fsync,fdatasync,sync_file_range,sync,syncfs,"
    "rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,"
    "link,linkat,symlink,symlinkat,fallocate,copy_file_range,sendfile,"
    "close,close_range,lseek,dup,dup2,dup3,fcntl,clone,clone3,fork,vfork,"
    "execve,execveat,chdir,fchdir"
)

Syscall = collections.namedtuple("Syscall", "pid name args ret retpath")


def record(argv, trace, cwd, env, stdin=b"", timeout=120):
    """Run argv under strace, the trace going to `trace`.  Returns a
    CompletedProcess (its returncode is the command's exit status, as
    strace passes it on; a command killed by signal N gives 128 + N)."""
    cmd = ["strace", "-f", "-y", "-xx", "-s", "100000000",
           "--quiet=attach,personality",
           "-o", trace, "-e", "trace=" + TRACED, "--"] + list(argv)
    # LeakSanitizer cannot work under ptrace: the same as common.bash does.
    env = dict(env)
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
    return run_group(cmd, stdin, cwd, env, timeout)


def run_group(argv, stdin, cwd, env, timeout):
    """subprocess.run(argv, capture_output=True, ...) in a process group
    of its own, which is killed whole when the timeout passes or the
    caller is interrupted: killing strace alone detaches the tool it
    traces, which runs on.  (A handler's own group, which chsub makes, is
    chsub's to stop.)"""
    with subprocess.Popen(argv, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=cwd, env=env, start_new_session=True) as p:
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except BaseException as e:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                out, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                out, err = b"", b""
            if isinstance(e, subprocess.TimeoutExpired):
                e.stdout, e.stderr = out, err
            raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def kill_children():
    """SIGKILL every child process still running, with its process
    group, and reap it: a signal that stops the explorer while Popen is
    starting a tool leaves that tool unknown to run_group, writing into
    the crash state being removed."""
    me = os.getpid()
    kids = set()
    for tid in os.listdir("/proc/%d/task" % me):
        try:
            with open("/proc/%d/task/%s/children" % (me, tid)) as f:
                kids.update(int(k) for k in f.read().split())
        except OSError:
            pass
    for k in kids:
        for kill in (os.killpg, os.kill):
            try:
                kill(k, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(k, 0)
        except ChildProcessError:
            pass


_HEX = re.compile(rb"\\x([0-9a-f]{2})")
_LINE = re.compile(r"^(\d+) +(.*)$")
_CALL = re.compile(r"^([a-z_0-9]+)\((.*)$", re.S)
_RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$", re.S)
_FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?(\(deleted\))?$")


class TraceError(Exception):
    pass


def unhex(s):
    """The bytes of a string as strace -xx prints it, without quotes."""
    b = s.encode("ascii")
    return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), b)


def split_args(s):
    """Split "a, {b, c}, [d]" at top-level commas; return (args, rest)
    where rest is what follows the closing parenthesis of the call."""
    args, depth, cur, i, inq = [], 0, [], 0, False
    while i < len(s):
        ch = s[i]
        if inq:
            cur.append(ch)
            if ch == '"':
                inq = False
        elif ch == '"':
            inq = True
            cur.append(ch)
        elif ch in "([{<":
            depth += 1
            cur.append(ch)
        elif ch in "]}>" or (ch == ")" and depth > 0):
            depth -= 1
            cur.append(ch)
        elif ch == ")":
            tail = "".join(cur).strip()
            if tail:
                args.append(tail)
            return args, s[i + 1:]
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    raise TraceError("unterminated call: " + s[:200])


def string_arg(a):
    """The bytes of a quoted string argument."""
    if a.endswith('"...'):
        raise TraceError("strace cut a string short (raise -s)")
    if len(a) < 2 or a[0] != '"' or a[-1] != '"':
        raise TraceError("not a string: " + a[:80])
    return unhex(a[1:-1])


def fd_arg(a):
    """(fd, path or None, deleted) of an fd argument like 3<\\x2f...>."""
    m = _FD.match(a.strip())
    if not m:
        raise TraceError("not a file descriptor: " + a[:80])
    fd = m.group(1)
    fd = -100 if fd == "AT_FDCWD" else int(fd)
    path = m.group(2)
    if path is not None and path.startswith("\\x"):
        path = os.fsdecode(unhex(path))
    elif path is not None:
        path = None		# pipe:[..], socket:[..], anon_inode:...
    return fd, path, bool(m.group(3))


def iov_arg(a):
    """The bytes of a writev/pwritev iovec array, in order."""
    out = b""
    for m in re.finditer(r'iov_base="((?:[^"\\]|\\x[0-9a-f]{2})*)"(\.\.\.)?',
                         a):
        if m.group(2):
            raise TraceError("strace cut an iovec short (raise -s)")
        out += unhex(m.group(1))
    return out


def _ret(rest):
    """(return value, path annotation) from ' = 3<...> ...'."""
    m = re.match(r"^\s*=\s*(-?\d+|0x[0-9a-f]+|\?)(?:<([^>]*)>)?", rest)
    if not m:
        raise TraceError("no return value: " + rest[:80])
    v = m.group(1)
    if v == "?":
        return None, None
    val = int(v, 16) if v.startswith("0x") else int(v)
    path = m.group(2)
    if path is not None and path.startswith("\\x"):
        path = os.fsdecode(unhex(path))
    else:
        path = None
    return val, path


FORKS = ("clone", "clone3", "fork", "vfork")


def parse(trace):
    """The Syscalls of a trace file, in completion order, except that a
    fork is put before its child's first call: the child may run, and
    strace print its calls (even its exit), before the parent's clone
    returns (on a busy machine it often does), and the child's fd table
    is the parent's as it was at the fork."""
    out = []
    live = set()	# pids of processes seen and not exited
    early = {}		# pid -> index of its first call, its fork not yet seen
    for sc in _parse(trace):
        if sc.name is None:		# exited: the pid may be used again
            live.discard(sc.pid)
            continue
        child = sc.ret if sc.name in FORKS and sc.ret else None
        at = early.pop(child, None) if child is not None else None
        if at is None:
            at = len(out)
            out.append(sc)
            if child is not None:
                live.add(child)		# its calls come after
        else:
            out.insert(at, sc)
            early = {p: i + 1 if i >= at else i for p, i in early.items()}
        if sc.pid not in live:		# a process whose fork is not seen
            live.add(sc.pid)
            early[sc.pid] = at
    return out


def _parse(trace):
    """Yield the Syscalls of a trace file in completion order, and for
    each process that exited a Syscall named None."""
    pending = {}
    with open(trace, encoding="ascii", errors="strict") as f:
        for line in f:
            line = line.rstrip("\n")
            m = _LINE.match(line)
            if not m:
                raise TraceError("unexpected trace line: " + line[:120])
            pid, text = int(m.group(1)), m.group(2)
            if text.startswith("+++ exited") or \
                    text.startswith("+++ killed"):
                yield Syscall(pid, None, [], None, None)
                continue
            if text.startswith("+++") or text.startswith("---"):
                continue	# signals
            if text.endswith(" <unfinished ...>"):
                pending[pid] = text[:-len(" <unfinished ...>")]
                continue
            r = _RESUMED.match(text)
            if r:
                if pid not in pending:
                    raise TraceError("resumed without a start: " + line[:120])
                text = pending.pop(pid) + r.group(2)
            c = _CALL.match(text)
            if not c:
                raise TraceError("unexpected trace line: " + line[:120])
            args, rest = split_args(c.group(2))
            ret, retpath = _ret(rest)
            yield Syscall(pid, c.group(1), args, ret, retpath)
