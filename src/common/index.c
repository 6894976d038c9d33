/* index.c - the segment index file. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"
#include "fsutil.h"
#include "index.h"

int
ch_index_open(int dirfd, struct ch_index *ix, struct ch_error *err)
{
	unsigned char h[CH_IDX_HDR];
	struct stat st;

	ix->fd = ch_open_file(dirfd, CH_IDX_FILE, O_RDONLY, 0);
	if (ix->fd < 0 && ch_channel_gone(dirfd, errno, err))
		return -1;
	if (ix->fd < 0)
		return ch_err_sys(err, errno == ENOENT ? CH_EXIT_DATAERR :
		    CH_EXIT_FAIL, "segment index");
	if (fstat(ix->fd, &st) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "segment index");
		goto fail;
	}
	ssize_t got = ch_pread_full(ix->fd, h, sizeof h, 0);
	if (got < 0) {	/* an I/O error is not a damaged index */
		ch_err_sys(err, CH_EXIT_FAIL, "segment index");
		goto fail;
	}
	if (got != sizeof h || ch_idxhdr_decode(h) < 0) {
		ch_err(err, CH_EXIT_DATAERR, "segment index: bad header");
		goto fail;
	}
	ix->count = ((uint64_t)st.st_size - CH_IDX_HDR) / CH_IDX_ENTRY;
	if (ix->count == 0) {
		ch_err(err, CH_EXIT_DATAERR, "segment index is empty");
		goto fail;
	}
	return 0;
fail:
	close(ix->fd);
	ix->fd = -1;
	return -1;
}

void
ch_index_close(struct ch_index *ix)
{
	if (ix->fd >= 0)
		close(ix->fd);
	ix->fd = -1;
}

int
ch_index_get(struct ch_index *ix, uint64_t i, struct ch_idxent *e,
    struct ch_error *err)
{
	unsigned char b[CH_IDX_ENTRY];
	ssize_t n;

	n = ch_pread_full(ix->fd, b, sizeof b,
	    (off_t)(CH_IDX_HDR + i * CH_IDX_ENTRY));
	if (n < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment index");
	if (n != sizeof b || ch_idxent_decode(b, e) < 0)
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment index: entry %llu is corrupt",
		    (unsigned long long)i);
	return 0;
}

int
ch_index_find(struct ch_index *ix, uint64_t offset, uint64_t *ip,
    struct ch_error *err)
{
	uint64_t lo = 0, hi = ix->count;	/* answer in [lo, hi) */
	struct ch_idxent e;

	if (ch_index_get(ix, 0, &e, err) < 0)
		return -1;
	if (offset < e.base)
		return ch_err(err, CH_EXIT_NOINPUT,
		    "offset %llu is below the first segment",
		    (unsigned long long)offset);
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ch_index_get(ix, mid, &e, err) < 0)
			return -1;
		if (e.base <= offset)
			lo = mid;
		else
			hi = mid;
	}
	*ip = lo;
	return 0;
}

int
ch_index_create(int dirfd, const struct ch_idxent *e, int durable,
    mode_t mode, struct ch_error *err)
{
	unsigned char b[CH_IDX_HDR + CH_IDX_ENTRY];

	(void)durable;	/* ch_atomic_replace always syncs: creation is rare */
	ch_idxhdr_encode(b);
	ch_idxent_encode(b + CH_IDX_HDR, e);
	if (ch_atomic_replace(dirfd, CH_IDX_FILE, b, sizeof b, mode) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "write segment index");
	return 0;
}

int
ch_index_append(int dirfd, const struct ch_idxent *e, int durable,
    struct ch_error *err)
{
	unsigned char b[CH_IDX_ENTRY];
	struct stat st;
	int fd;

	fd = ch_open_file(dirfd, CH_IDX_FILE, O_RDWR, 0);
	if (fd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment index");
	if (fstat(fd, &st) < 0)
		goto fail;
	uint64_t size = (uint64_t)st.st_size;
	uint64_t whole = size < CH_IDX_HDR ? CH_IDX_HDR :
	    CH_IDX_HDR + (size - CH_IDX_HDR) / CH_IDX_ENTRY * CH_IDX_ENTRY;
	if (whole != size && ftruncate(fd, (off_t)whole) < 0)
		goto fail;
	ch_idxent_encode(b, e);
	if (ch_pwrite_full(fd, b, sizeof b, (off_t)whole) < 0)
		goto fail;
	if (durable && ch_fdatasync(fd) < 0)
		goto fail;
	if (close(fd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment index");
	return 0;
fail:
	ch_err_sys(err, CH_EXIT_FAIL, "segment index");
	close(fd);
	return -1;
}

int
ch_index_drop_prefix(int dirfd, uint64_t drop, struct ch_error *err)
{
	struct ch_index ix;
	unsigned char *buf;
	size_t len;
	int rc = -1;

	if (drop == 0)
		return 0;
	if (ch_index_open(dirfd, &ix, err) < 0)
		return -1;
	if (drop >= ix.count) {
		ch_index_close(&ix);
		return ch_err(err, CH_EXIT_SOFTWARE,
		    "refusing to drop every index entry");
	}
	len = CH_IDX_HDR + (size_t)(ix.count - drop) * CH_IDX_ENTRY;
	buf = malloc(len);
	if (!buf) {
		ch_index_close(&ix);
		return ch_err_sys(err, CH_EXIT_FAIL, "segment index");
	}
	ch_idxhdr_encode(buf);
	if (ch_pread_full(ix.fd, buf + CH_IDX_HDR, len - CH_IDX_HDR,
	    (off_t)(CH_IDX_HDR + drop * CH_IDX_ENTRY)) !=
	    (ssize_t)(len - CH_IDX_HDR)) {
		ch_err_sys(err, CH_EXIT_FAIL, "read segment index");
		goto out;
	}
	struct stat st;
	if (fstat(ix.fd, &st) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "segment index");
		goto out;
	}
	if (ch_atomic_replace(dirfd, CH_IDX_FILE, buf, len,
	    st.st_mode & 07777) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "rewrite segment index");
		goto out;
	}
	rc = 0;
out:
	free(buf);
	ch_index_close(&ix);
	return rc;
}
