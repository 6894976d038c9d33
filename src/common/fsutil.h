/*
 * fsutil.h - careful file-system primitives used by every module.
 *
 * Everything inside a channel is opened relative to the channel directory
 * fd with O_NOFOLLOW, so a symlink planted inside a channel is refused
 * (ELOOP) instead of followed, and with O_NONBLOCK, so a FIFO planted where
 * a file belongs is refused (not a regular file) instead of blocking us.
 * All functions return -1 with errno set on failure; short reads and writes
 * and EINTR are handled here so callers never see them.
 */
#ifndef CH_FSUTIL_H
#define CH_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Test builds only (tests/broken/, see tests/RELIABILITY.md): an ordering
 * broken on purpose, named in $CH_BROKEN_ORDER, so that the crash-state
 * explorer can prove it catches one.  The tools are built without
 * CH_TEST_BROKEN_ORDER: for them this is the constant 0.
 */
#ifdef CH_TEST_BROKEN_ORDER
int ch_broken_order(const char *what);
#else
#define ch_broken_order(what) 0
#endif

/* errno for "exists but is not a regular file" (a FIFO, a device...).
 * EBADFD is never returned by openat(2), and ch_err_sys() prints this one
 * as "not a regular file". */
#define CH_ENOTREG EBADFD

/* Open a regular file under dirfd without following symlinks.  Fails with
 * ELOOP for a symlink, EISDIR for a directory, CH_ENOTREG for anything else
 * that is not a regular file. */
int ch_open_file(int dirfd, const char *name, int flags, mode_t mode);

/* After a file under dirfd was not found: was the directory itself
 * removed (its link count is 0: rm -rf of a channel under a tool)?  errno
 * is kept. */
int ch_dir_removed(int dirfd);

/* Open a directory under dirfd (never through a symlink). */
int ch_open_dir(int dirfd, const char *name);

ssize_t ch_read_full(int fd, void *buf, size_t len);	/* < len only at EOF */
/* < len only at EOF, with errno ENODATA (the file ended early). */
ssize_t ch_pread_full(int fd, void *buf, size_t len, off_t off);
int ch_write_full(int fd, const void *buf, size_t len);
int ch_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* iov[0..niov) at off, all of it (iov is used up on the way). */
int ch_pwritev_full(int fd, struct iovec *iov, int niov, off_t off);

int ch_fsync_dir(int dirfd);
/* fdatasync(2), retried on EINTR. */
int ch_fdatasync(int fd);

/* Raise the soft limit of open files to the hard one, for a tool that
 * holds descriptors per subscriber (choffset --all, --import: a lock and
 * a directory each, until all are checked).  Best effort: returns 0, or
 * -1 with errno if the limits could not be read or set. */
int ch_raise_fd_limit(void);

/* Create the temporary file `tmp` for writing, exclusively (O_EXCL): never
 * through a symlink, never a FIFO, a device or a file linked from
 * elsewhere; whatever is at the name (a crash's leftover, or planted) is
 * removed first, since temporary names belong to chtools. */
int ch_open_temp(int dirfd, const char *tmp, mode_t mode);

/*
 * Replace dirfd/name atomically with `len` bytes of `data`: write
 * ".name.tmp", fdatasync it, rename over name, fsync the directory.  A crash
 * leaves either the old or the new file, never a mix.  The temp file is
 * removed on failure.
 */
int ch_atomic_replace(int dirfd, const char *name, const void *data,
    size_t len, mode_t mode);

/* ch_atomic_replace in two steps, for changing several files all or
 * nothing: prepare writes and fdatasyncs ".name.tmp" (removed on failure),
 * commit renames it over name and fsyncs the directory, abort removes it.
 * Once every prepare succeeded, what is left to fail (rename, fsync of a
 * directory) needs no free space.  Commit (and ch_atomic_replace) fail
 * with CH_NOT_DURABLE, errno set, when only the fsync failed: the new file
 * is in place, but a power loss may still bring the old one back; with
 * -1 nothing changed. */
#define CH_NOT_DURABLE (-2)
int ch_atomic_prepare(int dirfd, const char *name, const void *data,
    size_t len, mode_t mode);
int ch_atomic_commit(int dirfd, const char *name);
void ch_atomic_abort(int dirfd, const char *name);

/* mkdir -p for an absolute or relative path (mode applies to new dirs),
 * fsyncing the parent of each directory it creates, and of the last one,
 * so that the path survives a power loss. */
int ch_mkdir_parents(const char *path, mode_t mode);

/* Read a whole small file (at most max bytes) into a malloc'd, NUL-terminated
 * buffer.  Fails with EFBIG when the file is larger. */
int ch_slurp(int dirfd, const char *name, size_t max, char **out, size_t *lenp);

/* Wall-clock time in nanoseconds since the epoch. */
int64_t ch_now_ns(void);
/* Monotonic time in nanoseconds (for timeouts). */
int64_t ch_mono_ns(void);

/* t + d (d >= 0), INT64_MAX should it not fit: a duration as long as the
 * options take (up to INT64_MAX ns) added to a clock means "never", not
 * a time long past. */
static inline int64_t
ch_ns_add(int64_t t, int64_t d)
{
	return d > INT64_MAX - t ? INT64_MAX : t + d;
}

#endif
