/* sealsync.c - making a segment sealed without fdatasync durable, and
 * clearing its successor's flag (see sealsync.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "index.h"
#include "lock.h"
#include "sealsync.h"
#include "segment.h"

/* The base of the segment before `base` in the index: 1, or 0 if there
 * is none (base is the first the index lists), -1 on an error. */
static int
pred_base(struct ch_channel *ch, uint64_t base, uint64_t *pred,
    struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	uint64_t i;
	int rc = 0;

	if (base == 0)
		return 0;
	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_find(&ix, base - 1, &i, err) < 0)
		rc = err->code == CH_EXIT_NOINPUT ? 0 : -1;
	else if (ch_index_get(&ix, i, &e, err) < 0)
		rc = -1;
	else if (e.base < base) {
		*pred = e.base;
		rc = 1;
	}
	ch_index_close(&ix);
	return rc;
}

/* Not ours to write (another user's channel, a read-only mount): the
 * flag then waits for a writer of the channel. */
static int
not_writable(const struct ch_error *err)
{
	return err->sys_errno == EACCES || err->sys_errno == EPERM ||
	    err->sys_errno == EROFS;
}

/* With `sync`, fdatasync segment `pb`; then look whether it ends with the
 * seal that names `base`: 1 whole, 0 not, 2 gone, -1 on an error. */
static int
sync_pred(struct ch_channel *ch, uint64_t pb, uint64_t base, int sync,
    struct ch_error *err)
{
	struct ch_seghdr h;
	struct ch_tail t;
	struct stat st;
	int fd, rc;

	if (ch_segment_open(ch->dirfd, pb, 0, &fd, &h, err) < 0) {
		if (err->code == CH_EXIT_NOINPUT)
			return 2;	/* deleted by compaction */
		return err->code == CH_EXIT_DATAERR ? 0 : -1;
	}
	if (sync && ch_fdatasync(fd) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "fdatasync sealed segment");
	} else if (fstat(fd, &st) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "sealed segment");
	} else if (ch_segment_tail(fd, &h, (uint64_t)st.st_size, &t,
	    err) < 0) {
		rc = -1;
	} else {
		rc = t.sealed && !t.torn && ch_seg_offset(pb, t.end) == base;
	}
	close(fd);
	return rc;
}

/* Rewrite the header of segment `base` without the flag (append.lock
 * held).  CH_SEALSYNC_CLEAR, CH_SEALSYNC_SYNCED if we may not write it,
 * -1 on an error. */
static int
clear_flag(struct ch_channel *ch, uint64_t base, struct ch_error *err)
{
	unsigned char buf[CH_SEG_HDR];
	struct ch_seghdr h;
	int fd, rc = CH_SEALSYNC_CLEAR;

	if (ch_segment_open(ch->dirfd, base, 1, &fd, &h, err) < 0) {
		if (err->code == CH_EXIT_NOINPUT)
			return CH_SEALSYNC_CLEAR;	/* deleted meanwhile */
		return not_writable(err) ? CH_SEALSYNC_SYNCED : -1;
	}
	if (h.flags & CH_SEGF_PRED_UNSYNCED) {
		h.flags &= ~CH_SEGF_PRED_UNSYNCED;
		ch_seghdr_encode(buf, &h);
		/* One write within one sector: a reader sees the old header
		 * or the new one, and reads a mix again (ch_segment_header). */
		if (ch_pwrite_full(fd, buf, sizeof buf, 0) < 0 ||
		    ch_fdatasync(fd) < 0)
			rc = ch_err_sys(err, CH_EXIT_FAIL, "rewrite segment "
			    "header");
	}
	if (close(fd) < 0 && rc == CH_SEALSYNC_CLEAR)
		rc = ch_err_sys(err, CH_EXIT_FAIL, "rewrite segment header");
	return rc;
}

int
ch_sealsync(struct ch_channel *ch, uint64_t base, int locked,
    struct ch_error *err)
{
	/* The probe of the explorer's own test (tests/broken): the flag is
	 * cleared before the segment it speaks for is durable. */
	int late = ch_broken_order("flag-clear-before-sync");
	uint64_t pb = 0;
	int rc, lockfd = -1, pred;

	if ((pred = pred_base(ch, base, &pb, err)) < 0)
		return -1;
	if (pred) {
		if ((rc = sync_pred(ch, pb, base, !late, err)) < 0)
			return -1;
		if (rc == 0)
			return CH_SEALSYNC_DAMAGED;
	}
	if (!locked) {
		if (ch_lock_open(ch->dirfd, CH_APPEND_LOCK, &lockfd, err) < 0)
			return not_writable(err) ? CH_SEALSYNC_SYNCED : -1;
		if (ch_flock(lockfd, LOCK_EX, CH_LOCK_NOWAIT) < 0) {
			int busy = errno == EWOULDBLOCK;
			rc = busy ? CH_SEALSYNC_SYNCED : ch_err_sys(err,
			    CH_EXIT_FAIL, "lock %s", CH_APPEND_LOCK);
			close(lockfd);
			return rc;
		}
	}
	rc = clear_flag(ch, base, err);
	if (lockfd >= 0)
		close(lockfd);
	if (rc >= 0 && late && pred && sync_pred(ch, pb, base, 1, err) < 0)
		return -1;
	return rc;
}

/* Whether segment `base` has the flag: 1, 0 (or gone: 0), 2 if its
 * header is damaged, -1 on an error. */
static int
flagged(struct ch_channel *ch, uint64_t base, struct ch_error *err)
{
	struct ch_seghdr h;
	int fd;

	if (ch_segment_open(ch->dirfd, base, 0, &fd, &h, err) < 0) {
		if (err->code == CH_EXIT_DATAERR)
			return 2;
		return err->code == CH_EXIT_NOINPUT ? 0 : -1;
	}
	close(fd);
	return (h.flags & CH_SEGF_PRED_UNSYNCED) != 0;
}

/* A segment whose header cannot be read may have had the flag: make the
 * segment before it durable all the same, clearing nothing. */
static int
sync_before_damaged(struct ch_channel *ch, uint64_t base,
    struct ch_error *err)
{
	uint64_t pb;
	int pred = pred_base(ch, base, &pb, err);

	if (pred <= 0)
		return pred;
	return sync_pred(ch, pb, base, 1, err) < 0 ? -1 : 0;
}

struct link {
	uint64_t base;
	int damaged;	/* its header unreadable: flag unknown */
};

int
ch_sealsync_chain(struct ch_channel *ch, uint64_t base, int locked,
    struct ch_error *err)
{
	struct link *chain = NULL;
	uint64_t pb;
	size_t n = 0, cap = 0;
	int rc = 0, worst = CH_SEALSYNC_CLEAR;

	/* The probe of the explorer's own test (tests/broken): only the
	 * newest segment's flag is seen to. */
	int newest_only = ch_broken_order("sync-newest-only");

	/* Back from `base` while the flag says the segment before is not
	 * durable: every rollover under sync none since the last sync.  A
	 * header that cannot be read is damage for chcompact --check; it
	 * must not stop every sync, commit and compaction, nor hide the
	 * segments before it, so the walk goes on past it. */
	for (;;) {
		int f = flagged(ch, base, err);
		if (f <= 0) {
			rc = f;
			break;
		}
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct link *p = realloc(chain, c * sizeof *p);
			if (!p) {
				rc = ch_err(err, CH_EXIT_FAIL, "out of memory");
				break;
			}
			chain = p;
			cap = c;
		}
		chain[n++] = (struct link){ base, f == 2 };
		if (newest_only)
			break;
		if ((f = pred_base(ch, base, &pb, err)) <= 0) {
			rc = f;
			break;
		}
		base = pb;
	}
	/* Oldest first, each flag cleared only once the segment it speaks
	 * for is durable; a damaged one keeps its flag (or its segment
	 * after, whose seal check fails) and the newer ones are still made
	 * durable. */
	while (rc == 0 && n > 0) {
		struct link *l = &chain[--n];
		int r;
		if (l->damaged)
			r = sync_before_damaged(ch, l->base, err) < 0 ? -1 :
			    CH_SEALSYNC_DAMAGED;
		else
			r = ch_sealsync(ch, l->base, locked, err);
		if (r < 0)
			rc = -1;
		else if (r == CH_SEALSYNC_DAMAGED ||
		    (r == CH_SEALSYNC_SYNCED && worst == CH_SEALSYNC_CLEAR))
			worst = r;
	}
	free(chain);
	return rc < 0 ? -1 : worst;
}

int
ch_sealsync_newest(struct ch_channel *ch, struct ch_error *err)
{
	struct ch_end end;

	if (ch_channel_end(ch, &end, err) < 0)
		return -1;
	return ch_sealsync_chain(ch, end.active_base, 0, err);
}
