/* fsutil.c - careful file-system primitives. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

#ifdef CH_TEST_BROKEN_ORDER
int
ch_broken_order(const char *what)
{
	const char *list = getenv("CH_BROKEN_ORDER");
	size_t n = strlen(what);

	for (const char *p = list; p && *p; p += strcspn(p, ","),
	    p += *p == ',')
		if (strncmp(p, what, n) == 0 && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}
#endif

int
ch_open_file(int dirfd, const char *name, int flags, mode_t mode)
{
	struct stat st = { 0 };
	int fd;

	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	    mode);
	if (fd < 0)
		return -1;
	int failed = fstat(fd, &st) < 0;
	if (failed || !S_ISREG(st.st_mode)) {
		int saved = errno;
		if (!failed)	/* an fstat error is itself the cause */
			saved = S_ISDIR(st.st_mode) ? EISDIR : CH_ENOTREG;
		close(fd);
		errno = saved;
		return -1;
	}
	/* Regular files ignore O_NONBLOCK, but clear it so nothing surprises.
	 * F_SETFL sets only the status flags (O_APPEND, O_NONBLOCK, ...):
	 * those asked for, without O_NONBLOCK; no F_GETFL needed. */
	(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

int
ch_dir_removed(int dirfd)
{
	struct stat st;
	int saved = errno;
	int gone = fstat(dirfd, &st) == 0 && st.st_nlink == 0;

	errno = saved;
	return gone;
}

int
ch_open_dir(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	/* O_DIRECTORY reports a symlink as ENOTDIR: say what it is. */
	if (fd < 0 && errno == ENOTDIR &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		errno = ELOOP;
	return fd;
}

ssize_t
ch_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t
ch_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
		    off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			/* Callers that needed every byte report errno: not
			 * a stale one ("Success") but what happened. */
			errno = ENODATA;
			break;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int
ch_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int
ch_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
		    off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int
ch_pwritev_full(int fd, struct iovec *iov, int niov, off_t off)
{
	/* One buffer: pwrite, the call the fault tests' libfiu wraps. */
	if (niov == 1)
		return ch_pwrite_full(fd, iov[0].iov_base, iov[0].iov_len, off);
	while (niov > 0) {
		ssize_t n = pwritev(fd, iov, niov > IOV_MAX ? IOV_MAX : niov,
		    off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		off += (off_t)n;
		/* Past what was written: whole buffers, then part of one. */
		while (niov > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			niov--;
		}
		if (niov > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int
ch_fsync_dir(int dirfd)
{
	while (fsync(dirfd) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

int
ch_fdatasync(int fd)
{
	/* EINTR is retried (a signal handler without SA_RESTART, or an
	 * interrupted NFS wait); EIO is not: after a failed writeback the
	 * kernel may have dropped the dirty pages, and a second call
	 * succeeding would prove nothing. */
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

int
ch_open_temp(int dirfd, const char *tmp, mode_t mode)
{
	struct stat st;
	int fd;

	for (int tries = 0; ; tries++) {
		/* O_EXCL: only a file this call creates is ever written, so
		 * nothing planted at the name (a symlink, a FIFO that would
		 * block the open, a device, a hard link to a file elsewhere)
		 * is opened at all.  O_NONBLOCK and O_NOFOLLOW all the same,
		 * should a file system not honour O_EXCL. */
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			(void)fcntl(fd, F_SETFL, 0);	/* blocking writes */
			return fd;
		}
		int saved = fd >= 0 ? CH_ENOTREG : errno;
		if (fd >= 0)
			close(fd);
		/* Something is there: a leftover of a crash, or an intruder.
		 * The name is ours: remove it once and try again. */
		if (tries > 0 || saved != EEXIST || unlinkat(dirfd, tmp, 0) < 0) {
			if (saved == EEXIST && tries == 0)
				saved = errno;	/* why it could not go */
			errno = saved;
			return -1;
		}
	}
}

static int
temp_name(char *tmp, size_t len, const char *name)
{
	if (snprintf(tmp, len, ".%s.tmp", name) >= (int)len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
ch_atomic_prepare(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char tmp[512];
	int fd, saved;

	if (temp_name(tmp, sizeof tmp, name) < 0)
		return -1;
	fd = ch_open_temp(dirfd, tmp, mode);
	if (fd < 0)
		return -1;
	if (ch_write_full(fd, data, len) < 0 ||
	    (!ch_broken_order("rename-before-fsync") && ch_fdatasync(fd) < 0))
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

int
ch_atomic_commit(int dirfd, const char *name)
{
	char tmp[512];
	int saved;

	if (temp_name(tmp, sizeof tmp, name) < 0)
		return -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return ch_fsync_dir(dirfd) < 0 ? CH_NOT_DURABLE : 0;
}

void
ch_atomic_abort(int dirfd, const char *name)
{
	char tmp[512];

	if (temp_name(tmp, sizeof tmp, name) == 0)
		(void)unlinkat(dirfd, tmp, 0);
}

int
ch_atomic_replace(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode)
{
	if (ch_atomic_prepare(dirfd, name, data, len, mode) < 0)
		return -1;
	return ch_atomic_commit(dirfd, name);
}

/* fsync the directory that holds path (path is changed and restored). */
static int
fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == path)
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else if (slash) {
		*slash = '\0';
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
	} else
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)	/* a parent we may write but not read: nothing to do */
		return errno == EACCES ? 0 : -1;
	rc = ch_fsync_dir(fd);
	close(fd);
	return rc;
}

int
ch_mkdir_parents(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf) {
		errno = len ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		/* A new directory exists after a power loss only once its
		 * parent is fsynced.  The last one is synced even if another
		 * process created it a moment ago and has not synced yet. */
		int made = mkdir(buf, mode) == 0;
		if (!made && errno != EEXIST)
			return -1;
		if ((made || c == '\0') && fsync_parent(buf) < 0)
			return -1;
		buf[i] = c;
	}
	return 0;
}

int
ch_slurp(int dirfd, const char *name, size_t max, char **out, size_t *lenp)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd, saved;

	fd = ch_open_file(dirfd, name, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail_fd;
	if ((uintmax_t)st.st_size > max) {
		errno = EFBIG;
		goto fail_fd;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail_fd;
	n = ch_read_full(fd, buf, (size_t)st.st_size);
	if (n < 0) {
		saved = errno;
		free(buf);
		close(fd);
		errno = saved;
		return -1;
	}
	buf[n] = '\0';
	close(fd);
	*out = buf;
	if (lenp)
		*lenp = (size_t)n;
	return 0;
fail_fd:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int64_t
ch_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
ch_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
ch_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur == rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl);
}
