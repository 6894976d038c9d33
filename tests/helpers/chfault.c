/*
 * chfault.c - an LD_PRELOAD shim for the crash and fault tests.
 *
 * libfiu's POSIX preload wraps write, pwrite, fsync, fdatasync, ftruncate,
 * open, rename and unlink, but not the *at() calls the tools use for
 * everything inside a channel (openat, renameat, renameat2, unlinkat,
 * mkdirat).  This shim wraps all the calls that change a file or a
 * directory, counts them, and on request:
 *
 *   CHFAULT_CRASH_AT=N   SIGKILL the process at the Nth such call, before
 *                        it runs (a deterministic kill -9 point);
 *   CHFAULT_TORN=1       ... and if that call is a write, first write a
 *                        prefix of it (a torn write);
 *   CHFAULT_STOP_AT=N    SIGSTOP the process at the Nth such call, before
 *                        it runs, so that a test can act between two of
 *                        its steps (SIGCONT goes on);
 *   CHFAULT_FAIL=FUNC:N:ERRNO[:COUNT]
 *                        make the Nth call of FUNC (a name below, or "any")
 *                        fail with ERRNO (a number or EIO, ENOSPC, EINTR,
 *                        EACCES, EROFS, EDQUOT, EPERM, EMFILE, EPIPE,
 *                        EAGAIN, ENOMEM, EINVAL; anything else aborts),
 *                        COUNT times (default 1,
 *                        0 = every call from the Nth on); up to four
 *                        such specs, separated by commas, each counting
 *                        its own calls (pwrite:2:ENOSPC,pread:3:EIO);
 *   CHFAULT_SHORT=1      pwrite and pwritev write only the first half (at
 *                        least a byte) of what they are given and say so,
 *                        as a write the kernel cut short may;
 *   CHFAULT_TRACE=FILE   append "PID FUNC" for every call to FILE;
 *                        (read: the Nth read of stdin; not counted);
 *   CHFAULT_FAIL_PATH=TEXT  with CHFAULT_FAIL=fstatat, faccessat or pread
 *                        (which change nothing: not counted, see the
 *                        end), only calls on a path that contains TEXT
 *                        (pread: of a file whose path does); read (of
 *                        stdin) and posix_spawn only without it.
 *   CHFAULT_VANISH=TEXT[:N]  the Nth (default first) open of a path that
 *                        contains TEXT unlinks it just before opening it,
 *                        as a compaction deleting that segment between a
 *                        reader's look at the channel and its open would
 *                        (not counted: the tool changes nothing).
 *   CHFAULT_SIGNAL_AT_POLL=SIG  raise signal number SIG in the process just
 *                        before its first poll(2) or ppoll(2), as a stop
 *                        signal landing just before a wait would (not
 *                        counted).
 *   CHFAULT_CLOSE_AT_POLL=I  close the fd of entry I of the first poll(2)
 *                        or ppoll(2) that has one there, just before that
 *                        wait: a descriptor the process still waits on,
 *                        closed under it (its inotify fd, say) as a stray
 *                        close of a number it was given would (not
 *                        counted).
 *   CHFAULT_FREE_BLOCKS=N  fstatvfs(2) says the file system has N blocks
 *                        free (a nearly full disk; not counted).
 *   CHFAULT_RUN=CMD, CHFAULT_RUN_AT=pread:TEXT:OFFSET, open:TEXT:N,
 *                        unlink:TEXT:N or watch:TEXT:N
 *                        run CMD with /bin/sh -c, and wait for it, just
 *                        before the first pread(2) at OFFSET or beyond of
 *                        a file whose path contains TEXT, or before the
 *                        Nth open, or unlink or rmdir (unlink, unlinkat),
 *                        or inotify_add_watch(2), of a path that
 *                        contains TEXT: a pause at
 *                        a chosen point of a tool's work, in which CMD
 *                        changes what the tool has looked at (a writer
 *                        racing a check, say).  Once only: CMD runs
 *                        without CHFAULT_RUN_AT.  Not counted.
 *
 * Wrapped: write pwrite pwrite64 pwritev pwritev64 (CHFAULT_FAIL=pwrite
 * fails all four; a torn pwritev writes a prefix of its buffers, taken in
 * order) ftruncate fsync fdatasync open openat
 * (only with O_CREAT) rename renameat renameat2 unlink unlinkat mkdirat.
 * Writes to fds 0-2 are counted as well: for chsub they are deliveries.
 * fallocate is wrapped too, not counted (see hooked_fallocate).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long calls;			/* mutating calls so far */
static long crash_at = -1, stop_at = -1;
static int torn;
/* CHFAULT_FAIL's specs. */
static struct fail {
	char fn[32];
	long at, count, calls;
	int err;
} fails[4];
static int nfails;
static int trace_fd = -1;
/* The buffers of the pwritev being hooked, for a torn one. */
static const struct iovec *hook_iov;
static int hook_iovcnt;
static int ready;

static int
errno_of(const char *s)
{
	static const struct { const char *n; int v; } t[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EINTR", EINTR },
		{ "EACCES", EACCES }, { "EROFS", EROFS }, { "EDQUOT", EDQUOT },
		{ "EPERM", EPERM }, { "EMFILE", EMFILE }, { "EPIPE", EPIPE },
		{ "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EINVAL", EINVAL },
	};
	char *end;
	long v;

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(s, t[i].n) == 0)
			return t[i].v;
	/* A name not in the table must not become EIO unseen: a test
	 * asking for EPIPE would pass on EIO's path. */
	v = strtol(s, &end, 10);
	if (end == s || *end || v <= 0) {
		static const char msg[] = "chfault: CHFAULT_FAIL: unknown errno\n";
		(void)syscall(SYS_write, 2, msg, sizeof msg - 1);
		abort();
	}
	return (int)v;
}

/* One of CHFAULT_FAIL's specs, FUNC:N:ERRNO[:COUNT]. */
static void
parse_fail(char *spec, struct fail *f)
{
	char *p = strchr(spec, ':'), *q;

	f->at = -1;
	f->count = 1;
	if (!p)
		return;
	*p++ = '\0';
	snprintf(f->fn, sizeof f->fn, "%.31s", spec);
	f->at = strtol(p, &q, 10);
	if (*q == ':') {
		p = q + 1;
		q = strchr(p, ':');
		if (q) {
			*q++ = '\0';
			f->count = atol(q);
		}
		f->err = errno_of(p);
	}
}

/* Does a spec of CHFAULT_FAIL make this call of fn fail?  (Every spec
 * naming fn counts it; "any" and "pwrite" for the pwrite family too,
 * unless exact.)  Sets errno if so. */
static int
fail_now(const char *fn, int exact)
{
	int fail = 0;

	for (int i = 0; i < nfails; i++) {
		struct fail *f = &fails[i];
		if (f->at <= 0 || !(strcmp(f->fn, fn) == 0 || (!exact &&
		    (strcmp(f->fn, "any") == 0 || (strcmp(f->fn, "pwrite") == 0 &&
		    strncmp(fn, "pwrite", 6) == 0)))))
			continue;
		f->calls++;
		if (f->calls >= f->at && (f->count == 0 ||
		    f->calls < f->at + f->count)) {
			errno = f->err ? f->err : EIO;
			fail = 1;
		}
	}
	return fail;
}

/* Does a spec of CHFAULT_FAIL name fn? */
static int
fails_named(const char *fn)
{
	for (int i = 0; i < nfails; i++)
		if (fails[i].at > 0 && strcmp(fails[i].fn, fn) == 0)
			return 1;
	return 0;
}

static void
setup(void)
{
	const char *s;

	if (ready)
		return;
	ready = 1;
	if ((s = getenv("CHFAULT_CRASH_AT")) && *s)
		crash_at = atol(s);
	torn = (s = getenv("CHFAULT_TORN")) && *s == '1';
	if ((s = getenv("CHFAULT_STOP_AT")) && *s)
		stop_at = atol(s);
	if ((s = getenv("CHFAULT_FAIL")) && *s) {
		char buf[256], *spec, *save = NULL;
		snprintf(buf, sizeof buf, "%s", s);
		for (spec = strtok_r(buf, ",", &save); spec && nfails < 4;
		    spec = strtok_r(NULL, ",", &save))
			parse_fail(spec, &fails[nfails++]);
	}
	if ((s = getenv("CHFAULT_TRACE")) && *s) {
		int (*real_open)(const char *, int, ...) =
		    (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
		trace_fd = real_open(s, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0644);
	}
}

/* Called before each wrapped call: returns -1 (errno set) to fail it. */
/* Write the first `part` bytes of the pwritev being hooked, at off. */
static ssize_t
torn_pwritev(int fd, size_t part, off_t off)
{
	struct iovec v[64];
	int n = 0;

	for (int i = 0; i < hook_iovcnt && n < 64 && part > 0; i++) {
		v[n] = hook_iov[i];
		if (v[n].iov_len > part)
			v[n].iov_len = part;
		part -= v[n].iov_len;
		n++;
	}
	ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t) =
	    (ssize_t (*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT,
	    "pwritev");
	return real_pwritev(fd, v, n, off);
}

/* CHFAULT_SHORT: how much of len to write. */
static size_t
short_len(size_t len)
{
	const char *s = getenv("CHFAULT_SHORT");

	return s && *s == '1' && len > 1 ? len / 2 : len;
}

static int
hook(const char *fn, int fd, const void *buf, size_t len, off_t off,
    int positional)
{
	int saved = errno;

	setup();
	calls++;
	if (trace_fd >= 0) {
		char line[96];
		int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(),
		    fn);
		ssize_t (*real_write)(int, const void *, size_t) =
		    (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
		    "write");
		if (real_write(trace_fd, line, (size_t)n) < 0)
			(void)0;
	}
	if (crash_at > 0 && calls == crash_at) {
		if (torn && hook_iov && len > 1) {
			size_t part = 1 + (size_t)(crash_at * 7919) % (len - 1);
			(void)!torn_pwritev(fd, part, off);
		} else if (torn && buf && len > 1) {
			size_t part = 1 + (size_t)(crash_at * 7919) % (len - 1);
			if (positional)
				(void)!syscall(SYS_pwrite64, fd, buf, part, off);
			else
				(void)!syscall(SYS_write, fd, buf, part);
		}
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
	if (stop_at > 0 && calls == stop_at)
		kill(getpid(), SIGSTOP);
	if (fail_now(fn, 0))
		return -1;
	errno = saved;
	return 0;
}

/* CHFAULT_VANISH: unlink path (relative to dirfd) if this is the open
 * asked for. */
static void
vanish(int dirfd, const char *path)
{
	static long seen;
	const char *spec = getenv("CHFAULT_VANISH");
	char text[256], *colon;
	long nth = 1;
	int saved = errno;

	if (!spec || !*spec || !path)
		return;
	snprintf(text, sizeof text, "%s", spec);
	if ((colon = strrchr(text, ':'))) {
		*colon = '\0';
		nth = atol(colon + 1);
	}
	if (!strstr(path, text) || ++seen != nth)
		return;
	int (*real_unlinkat)(int, const char *, int) =
	    (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
	if (real_unlinkat(dirfd, path, 0) < 0)
		(void)0;	/* then the open shows what is there */
	errno = saved;
}

/* CHFAULT_RUN_AT, if it names fn: its TEXT and number. */
static int
run_spec(const char *fn, char *text, size_t size, long long *num)
{
	const char *at = getenv("CHFAULT_RUN_AT");
	size_t n = strlen(fn);
	char *colon;

	if (!at || strncmp(at, fn, n) != 0 || at[n] != ':')
		return 0;
	snprintf(text, size, "%s", at + n + 1);
	if (!(colon = strrchr(text, ':')))
		return 0;
	*colon = '\0';
	*num = atoll(colon + 1);
	return 1;
}

static void
run_cmd(void)
{
	const char *cmd = getenv("CHFAULT_RUN");
	int saved = errno;

	unsetenv("CHFAULT_RUN_AT");	/* CMD's tools must not stop in turn */
	if (cmd && *cmd && system(cmd) != 0)
		(void)0;	/* the test sees what CMD did, or did not */
	errno = saved;
}

static int fail_only(const char *fn, const char *path);

/* CHFAULT_FAIL=pread:N:ERRNO: the Nth pread(2) (of a file whose path
 * contains CHFAULT_FAIL_PATH, if set) fails, as a bad disk would. */
static int
fail_pread(int fd)
{
	char link[64], path[4096];

	setup();
	if (!fails_named("pread"))
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	path[n < 0 ? 0 : n] = '\0';
	return fail_only("pread", path);
}

/* CHFAULT_RUN_AT=pread:TEXT:OFFSET: is this pread of fd at off the one? */
static void
run_at_pread(int fd, off_t off)
{
	char text[256], link[64], path[4096];
	long long from;

	if (!run_spec("pread", text, sizeof text, &from) || off < from)
		return;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		return;
	path[n] = '\0';
	if (strstr(path, text))
		run_cmd();
}

/* CHFAULT_RUN_AT=FN:TEXT:N: run CMD if this call of fn on path (counted
 * in *seen when path contains TEXT) is the Nth. */
static void
run_at_nth(const char *fn, const char *path, long *seen)
{
	char text[256];
	long long nth;

	if (path && run_spec(fn, text, sizeof text, &nth) &&
	    strstr(path, text) && ++*seen == nth)
		run_cmd();
}

/* CHFAULT_RUN_AT=open:TEXT:N: is this open of path the one? */
static void
run_at_open(const char *path)
{
	static long seen;

	run_at_nth("open", path, &seen);
}

/* CHFAULT_RUN_AT=unlink:TEXT:N: is this unlink or rmdir of path the one? */
static void
run_at_unlink(const char *path)
{
	static long seen;

	run_at_nth("unlink", path, &seen);
}

#define REAL(name, ret, ...) \
	static ret (*real)(__VA_ARGS__); \
	if (!real) \
		real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL("write", ssize_t, int, const void *, size_t);
	if (hook("write", fd, buf, len, 0, 0) < 0)
		return -1;
	return real(fd, buf, len);
}

typedef ssize_t pwrite_fn(int, const void *, size_t, off_t);

/* pwrite and pwrite64: the same hook, and cut short with CHFAULT_SHORT. */
static ssize_t
hooked_pwrite(const char *name, pwrite_fn *real, int fd, const void *buf,
    size_t len, off_t off)
{
	if (hook(name, fd, buf, len, off, 1) < 0)
		return -1;
	return real(fd, buf, short_len(len), off);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL("pwrite", ssize_t, int, const void *, size_t, off_t);
	return hooked_pwrite("pwrite", real, fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	REAL("pwrite64", ssize_t, int, const void *, size_t, off_t);
	return hooked_pwrite("pwrite64", real, fd, buf, len, off);
}

/* The bytes of iov[0..cnt). */
static size_t
iov_bytes(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

typedef ssize_t pwritev_fn(int, const struct iovec *, int, off_t);

/* pwritev and pwritev64: the hook sees the buffers (a torn write is a
 * prefix of them, in order); CHFAULT_SHORT writes half of them. */
static ssize_t
hooked_pwritev(const char *name, pwritev_fn *real, int fd,
    const struct iovec *iov, int cnt, off_t off)
{
	hook_iov = iov;
	hook_iovcnt = cnt;
	size_t len = iov_bytes(iov, cnt);
	int rc = hook(name, fd, NULL, len, off, 1);
	ssize_t n = 0;
	if (rc == 0 && short_len(len) < len)
		n = torn_pwritev(fd, short_len(len), off);
	hook_iov = NULL;
	if (rc < 0)
		return -1;
	return short_len(len) < len ? n : real(fd, iov, cnt, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL("pwritev", ssize_t, int, const struct iovec *, int, off_t);
	return hooked_pwritev("pwritev", real, fd, iov, cnt, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL("pwritev64", ssize_t, int, const struct iovec *, int, off_t);
	return hooked_pwritev("pwritev64", real, fd, iov, cnt, off);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	REAL("pread", ssize_t, int, void *, size_t, off_t);
	if (fail_pread(fd) < 0)
		return -1;
	run_at_pread(fd, off);
	return real(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off_t off)
{
	REAL("pread64", ssize_t, int, void *, size_t, off_t);
	if (fail_pread(fd) < 0)
		return -1;
	run_at_pread(fd, off);
	return real(fd, buf, len, off);
}

int
ftruncate(int fd, off_t len)
{
	REAL("ftruncate", int, int, off_t);
	if (hook("ftruncate", fd, NULL, 0, 0, 0) < 0)
		return -1;
	return real(fd, len);
}

int
ftruncate64(int fd, off_t len)
{
	REAL("ftruncate64", int, int, off_t);
	if (hook("ftruncate", fd, NULL, 0, 0, 0) < 0)
		return -1;
	return real(fd, len);
}

int
fsync(int fd)
{
	REAL("fsync", int, int);
	if (hook("fsync", fd, NULL, 0, 0, 0) < 0)
		return -1;
	return real(fd);
}

int
fdatasync(int fd)
{
	REAL("fdatasync", int, int);
	if (hook("fdatasync", fd, NULL, 0, 0, 0) < 0)
		return -1;
	return real(fd);
}

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	REAL("open", int, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && hook("open", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_open(path);
	vanish(AT_FDCWD, path);
	return real(path, flags, m);
}

int
open64(const char *path, int flags, ...)
{
	REAL("open64", int, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && hook("open", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_open(path);
	vanish(AT_FDCWD, path);
	return real(path, flags, m);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	REAL("openat", int, int, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && hook("openat", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_open(path);
	vanish(dirfd, path);
	return real(dirfd, path, flags, m);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	REAL("openat64", int, int, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if ((flags & O_CREAT) && hook("openat", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_open(path);
	vanish(dirfd, path);
	return real(dirfd, path, flags, m);
}

int
rename(const char *a, const char *b)
{
	REAL("rename", int, const char *, const char *);
	if (hook("rename", -1, NULL, 0, 0, 0) < 0)
		return -1;
	return real(a, b);
}

int
renameat(int da, const char *a, int db, const char *b)
{
	REAL("renameat", int, int, const char *, int, const char *);
	if (hook("renameat", -1, NULL, 0, 0, 0) < 0)
		return -1;
	return real(da, a, db, b);
}

int
renameat2(int da, const char *a, int db, const char *b, unsigned int fl)
{
	REAL("renameat2", int, int, const char *, int, const char *,
	    unsigned int);
	if (hook("renameat2", -1, NULL, 0, 0, 0) < 0)
		return -1;
	return real(da, a, db, b, fl);
}

int
unlink(const char *p)
{
	REAL("unlink", int, const char *);
	if (hook("unlink", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_unlink(p);
	return real(p);
}

int
unlinkat(int d, const char *p, int fl)
{
	REAL("unlinkat", int, int, const char *, int);
	if (hook("unlinkat", -1, NULL, 0, 0, 0) < 0)
		return -1;
	run_at_unlink(p);
	return real(d, p, fl);
}

int
mkdirat(int d, const char *p, mode_t m)
{
	REAL("mkdirat", int, int, const char *, mode_t);
	if (hook("mkdirat", -1, NULL, 0, 0, 0) < 0)
		return -1;
	return real(d, p, m);
}

/*
 * Calls that change nothing: not counted, not traced, never a crash
 * point; only CHFAULT_FAIL=fstatat:... or faccessat:... makes them fail,
 * and with CHFAULT_FAIL_PATH=TEXT only for paths that contain TEXT.
 */
static int
fail_only(const char *fn, const char *path)
{
	const char *only = getenv("CHFAULT_FAIL_PATH");

	setup();
	if (!fails_named(fn) ||
	    (only && *only && (!path || !strstr(path, only))))
		return 0;
	return fail_now(fn, 1) ? -1 : 0;
}

int
fstatat(int d, const char *p, struct stat *st, int fl)
{
	REAL("fstatat", int, int, const char *, struct stat *, int);
	if (fail_only("fstatat", p) < 0)
		return -1;
	return real(d, p, st, fl);
}

int
fstatat64(int d, const char *p, struct stat64 *st, int fl)
{
	REAL("fstatat64", int, int, const char *, struct stat64 *, int);
	if (fail_only("fstatat", p) < 0)
		return -1;
	return real(d, p, st, fl);
}

/* fallocate (a reservation past a file's end, which changes no byte of
 * it): not counted either; CHFAULT_FAIL=fallocate:N:ENOSPC first reserves
 * half the range for real, as ext4 keeps what a reservation that ran out
 * of space got. */
static int
hooked_fallocate(int (*real)(int, int, off_t, off_t), int fd, int mode,
    off_t off, off_t len)
{
	if (fail_only("fallocate", NULL) < 0) {
		int e = errno;
		if (e == ENOSPC && len > 1)
			(void)real(fd, mode, off, len / 2);
		errno = e;
		return -1;
	}
	return real(fd, mode, off, len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL("fallocate", int, int, int, off_t, off_t);
	return hooked_fallocate(real, fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	REAL("fallocate64", int, int, int, off_t, off_t);
	return hooked_fallocate(real, fd, mode, off, len);
}

/* CHFAULT_FREE_BLOCKS: the free blocks fstatvfs reports. */
static int
hooked_fstatvfs(int (*real)(int, struct statvfs *), int fd,
    struct statvfs *sv)
{
	const char *free_blocks = getenv("CHFAULT_FREE_BLOCKS");
	int rc = real(fd, sv);

	if (rc == 0 && free_blocks && *free_blocks)
		sv->f_bavail = sv->f_bfree = strtoul(free_blocks, NULL, 10);
	return rc;
}

int
fstatvfs(int fd, struct statvfs *sv)
{
	REAL("fstatvfs", int, int, struct statvfs *);
	return hooked_fstatvfs(real, fd, sv);
}

int
faccessat(int d, const char *p, int mode, int fl)
{
	REAL("faccessat", int, int, const char *, int, int);
	if (fail_only("faccessat", p) < 0)
		return -1;
	return real(d, p, mode, fl);
}

/* Reading changes nothing (not counted); CHFAULT_FAIL=read:N:ERRNO makes
 * the Nth read(2) of stdin fail, as a reset socket or a bad disk would. */
ssize_t
read(int fd, void *buf, size_t len)
{
	REAL("read", ssize_t, int, void *, size_t);
	if (fd == 0 && fail_only("read", NULL) < 0)
		return -1;
	return real(fd, buf, len);
}

/* Starting a program changes nothing (not counted);
 * CHFAULT_FAIL=posix_spawn:N:ERRNO makes the Nth posix_spawn(3) fail, as
 * a process limit (EAGAIN) would. */
int
posix_spawn(pid_t *pid, const char *path,
    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
    char *const argv[], char *const envp[])
{
	REAL("posix_spawn", int, pid_t *, const char *,
	    const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
	    char *const[], char *const[]);
	if (fail_only("posix_spawn", NULL) < 0)
		return errno;
	return real(pid, path, fa, at, argv, envp);
}

/* CHFAULT_SIGNAL_AT_POLL: the signal, once, before the first wait. */
static void
signal_before_wait(void)
{
	static int done;
	const char *s = getenv("CHFAULT_SIGNAL_AT_POLL");

	if (done || !s || !*s)
		return;
	done = 1;
	raise(atoi(s));
}

/* CHFAULT_CLOSE_AT_POLL: close fds[I].fd, once, before a wait on it. */
static void
close_before_wait(struct pollfd *fds, nfds_t n)
{
	static int done;
	const char *s = getenv("CHFAULT_CLOSE_AT_POLL");

	if (done || !s || !*s)
		return;
	nfds_t i = (nfds_t)atoi(s);
	if (i >= n || fds[i].fd < 0)
		return;
	done = 1;
	close(fds[i].fd);
}

int
poll(struct pollfd *fds, nfds_t n, int ms)
{
	REAL("poll", int, struct pollfd *, nfds_t, int);
	signal_before_wait();
	close_before_wait(fds, n);
	return real(fds, n, ms);
}

int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *mask)
{
	REAL("ppoll", int, struct pollfd *, nfds_t, const struct timespec *,
	    const sigset_t *);
	signal_before_wait();
	close_before_wait(fds, n);
	return real(fds, n, ts, mask);
}

/* CHFAULT_RUN_AT=watch:TEXT:N: run CMD before the Nth inotify watch of a
 * path that contains TEXT (a writer at work while a follower sets up its
 * watch, after it has looked at the channel). */
int
inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	REAL("inotify_add_watch", int, int, const char *, uint32_t);
	static long seen;

	run_at_nth("watch", path, &seen);
	return real(fd, path, mask);
}
