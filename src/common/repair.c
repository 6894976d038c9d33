/* repair.c - in-place repairs of a segment under append.lock (see repair.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "index.h"
#include "lock.h"
#include "repair.h"
#include "sealsync.h"
#include "segment.h"
#include "tailmark.h"

/* Take append.lock, as every writer does for each batch. */
static int
lock_append(struct ch_channel *ch, int *fdp, struct ch_error *err)
{
	if (ch_lock_open(ch->dirfd, CH_APPEND_LOCK, fdp, err) < 0)
		return -1;
	if (ch_flock(*fdp, LOCK_EX, CH_LOCK_WAIT) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_APPEND_LOCK);
		close(*fdp);
		return -1;
	}
	return 0;
}

/* A repair changed the channel: the writers' tail mark may name a
 * boundary that is gone.  The check a writer makes of the mark stands
 * guard if it cannot be cleared. */
static void
forget_tail_mark(int afd)
{
	(void)ch_tailmark_clear(afd);
}

/* Open segment `base` to write it: 0, or CH_REPAIR_GONE (deleted),
 * CH_REPAIR_CHANGED (its header is not one now), -1 on an error. */
static int
open_rw(struct ch_channel *ch, uint64_t base, int *fdp, struct ch_seghdr *h,
    struct ch_error *err)
{
	if (ch_segment_open(ch->dirfd, base, 1, fdp, h, err) == 0)
		return 0;
	if (err->code == CH_EXIT_NOINPUT)
		return CH_REPAIR_GONE;
	return err->code == CH_EXIT_DATAERR ? CH_REPAIR_CHANGED : -1;
}

/* Does the valid record at prev (0: the header) still end at pos, with
 * *due the number after it (UINT64_MAX: any, and *due gets it)?  Read as
 * the check did, with cursor c set at prev (or pos), which is then at pos.
 * 1, 0, or -1 on an I/O error. */
static int
ends_at(struct ch_segcur *c, const struct ch_seghdr *h, uint64_t prev,
    uint64_t pos, uint64_t *due)
{
	struct ch_rec r;
	uint64_t after = h->first_seq;
	int rc;

	if (prev) {
		rc = ch_segcur_next(c, &r);
		if (rc == CH_CUR_IOERR)
			return -1;
		if (rc != CH_CUR_OK || r.h.type == CH_REC_SEAL ||
		    r.pos != prev || c->pos != pos)
			return 0;
		after = r.h.seq + r.nseq;
	} else if (pos != CH_SEG_HDR) {
		return 0;
	}
	if (*due != UINT64_MAX && *due != after)
		return 0;
	*due = after;
	return 1;
}

/* Is the damage d in the segment open on fd still as the check saw it
 * (repair.h)?  1, 0, or -1 on an I/O error. */
static int
same_damage(int fd, const struct ch_seghdr *h, const struct ch_damage *d)
{
	struct ch_segcur c = { 0 };
	struct ch_rec r;
	struct stat st;
	uint64_t next, next_seq;
	int rc, same = 0;

	if (fstat(fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size < d->next)
		return 0;
	ch_segcur_init(&c, fd, h, d->prev ? d->prev : d->pos,
	    (uint64_t)st.st_size);
	uint64_t due = d->lost;	/* known: fill_gap asks for no other */
	if ((rc = ends_at(&c, h, d->prev, d->pos, &due)) <= 0) {
		ch_segcur_free(&c);
		return rc;
	}
	rc = ch_segcur_next(&c, &r);
	if (rc == CH_CUR_IOERR)
		goto ioerr;
	if (rc == CH_CUR_OK && r.h.seq == d->lost)
		goto out;	/* the record due: a writer wrote it there */
	if (rc == CH_CUR_OK)
		ch_segcur_seek(&c, d->pos);	/* out of sequence: damage */
	rc = ch_segcur_resync(&c, d->lost, d->min_ts, &next, &next_seq);
	if (rc < 0)
		goto ioerr;
	same = rc == 1 && next == d->next && next_seq == d->next_seq;
out:
	ch_segcur_free(&c);
	return same;
ioerr:
	ch_segcur_free(&c);
	return -1;
}

int
ch_repair_gap(struct ch_channel *ch, const struct ch_seghdr *h,
    const struct ch_damage *d, const unsigned char *gap,
    struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_seghdr now;
	int afd, fd, rc;

	ch_seg_name(name, d->base);
	if (lock_append(ch, &afd, err) < 0)
		return -1;
	if ((rc = open_rw(ch, d->base, &fd, &now, err)) != 0)
		goto out;
	if (now.format != h->format || now.first_seq != h->first_seq ||
	    now.created != h->created)
		rc = CH_REPAIR_CHANGED;
	else if ((rc = same_damage(fd, h, d)) < 0)
		ch_err_sys(err, CH_EXIT_FAIL, "read %s", name);
	else if (rc == 1 && (ch_pwrite_full(fd, gap, (size_t)(d->next - d->pos),
	    (off_t)d->pos) < 0 || ch_fdatasync(fd) < 0)) {
		ch_err_sys(err, CH_EXIT_FAIL, "%s: write gap record", name);
		rc = -1;
	} else if (rc == 1) {
		rc = CH_REPAIR_DONE;
	}
	if (close(fd) < 0 && rc == CH_REPAIR_DONE) {
		ch_err_sys(err, CH_EXIT_FAIL, "%s: write gap record", name);
		rc = -1;
	}
out:
	if (rc == CH_REPAIR_DONE)
		forget_tail_mark(afd);
	close(afd);
	return rc;
}

int
ch_repair_tail(struct ch_channel *ch, uint64_t base, uint64_t prev,
    uint64_t pos, uint64_t due, uint64_t *cut, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_segcur c = { 0 };
	struct ch_seghdr h;
	struct ch_rec r;
	struct stat st;
	int afd, fd, rc;

	*cut = 0;
	ch_seg_name(name, base);
	if (lock_append(ch, &afd, err) < 0)
		return -1;
	if ((rc = open_rw(ch, base, &fd, &h, err)) != 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s", name);
		goto close;
	}
	/* Walked as the check did, not through the tail's quick look,
	 * which a torn payload holding records can fool. */
	ch_segcur_init(&c, fd, &h, prev ? prev : pos, (uint64_t)st.st_size);
	rc = (uint64_t)st.st_size < pos ? 0 : ends_at(&c, &h, prev, pos, &due);
	if (rc < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "read %s", name);
	} else if (rc == 0) {
		rc = CH_REPAIR_CHANGED;	/* what the check saw is gone */
	} else if ((uint64_t)st.st_size == pos) {
		rc = CH_REPAIR_BY_WRITER;	/* cut, and nothing written */
	} else if ((rc = ch_segcur_next(&c, &r)) == CH_CUR_IOERR) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "read %s", name);
	} else if (rc == CH_CUR_OK && r.h.seq == due) {
		rc = CH_REPAIR_BY_WRITER;	/* cut, and the record due written */
	} else if (ftruncate(fd, (off_t)pos) < 0 || ch_fdatasync(fd) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s: cut torn tail", name);
	} else {
		*cut = (uint64_t)st.st_size - pos;
		rc = CH_REPAIR_DONE;
	}
close:
	ch_segcur_free(&c);
	if (close(fd) < 0 && rc == CH_REPAIR_DONE) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s: cut torn tail", name);
		*cut = 0;
	}
out:
	if (rc == CH_REPAIR_DONE)
		forget_tail_mark(afd);
	close(afd);
	return rc;
}

/* The seal and the gap before it that end segment h at the offset of its
 * successor nh, its valid records ending at pos with t (their tail):
 * built in a buffer of *len bytes.  NULL if no gap can stand for the
 * records lost there (or on no memory: errno). */
static unsigned char *
lost_tail_bytes(int fd, const struct ch_seghdr *h, const struct ch_tail *t,
    uint64_t pos, const struct ch_seghdr *nh, size_t *len)
{
	unsigned char sbuf[CH_SEAL_MAX], *seal, *buf;
	uint64_t at = nh->base - h->base + CH_SEG_HDR;	/* the seal's place */
	uint64_t count = nh->first_seq - t->next_seq;
	int64_t ts = t->last_ts > h->created ? t->last_ts : h->created;
	struct ch_seal s;
	uint32_t slen;
	int type;

	s.records = nh->first_seq - h->first_seq;
	s.first_ts = 0;
	if (ch_segment_peek(fd, h, CH_SEG_HDR, &type, &s.first_ts) < 0 ||
	    type != CH_REC_DATA)
		s.first_ts = 0;
	s.last_ts = t->last_ts;
	seal = ch_seal_make(sbuf, h, nh->first_seq, nh->created > ts ?
	    nh->created : ts, &s, &slen);
	if (at - pos > UINT32_MAX || !(buf = malloc((size_t)(at - pos) + slen)))
		return NULL;
	if (at > pos && ch_gap_make(buf, h, at - pos, t->next_seq, ts,
	    count) < 0) {
		free(buf);
		errno = 0;
		return NULL;
	}
	memcpy(buf + (at - pos), seal, slen);
	*len = (size_t)(at - pos) + slen;
	return buf;
}

int
ch_repair_lost_tail(struct ch_channel *ch, uint64_t base, uint64_t pos,
    uint64_t lost, const struct ch_seghdr *nh, uint64_t *count,
    struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_seghdr h, now;
	struct ch_tail t;
	struct stat st;
	unsigned char *buf = NULL;
	size_t len = 0;
	int afd, fd = -1, nfd, rc;

	*count = nh->first_seq >= lost ? nh->first_seq - lost : 0;
	ch_seg_name(name, base);
	if (lock_append(ch, &afd, err) < 0)
		return -1;
	/* The successor still says this one may be unsynced, and holds
	 * what the check saw. */
	if ((rc = open_rw(ch, nh->base, &nfd, &now, err)) != 0)
		goto out;
	close(nfd);
	if (!(now.flags & CH_SEGF_PRED_UNSYNCED) ||
	    now.first_seq != nh->first_seq || nh->base <= base) {
		rc = CH_REPAIR_CHANGED;
		goto out;
	}
	if ((rc = open_rw(ch, base, &fd, &h, err)) != 0)
		goto out;
	uint64_t at = nh->base - base + CH_SEG_HDR;
	if (fstat(fd, &st) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s", name);
		goto out;
	}
	/* Its valid records still end at pos, numbered up to lost, nothing
	 * valid after them, and the seal's place is not before pos.  Walked
	 * from the header, as the check walked, not judged from the end of
	 * the file: the torn record there may hold whole-looking records, a
	 * seal among them. */
	memset(&t, 0, sizeof t);
	if (ch_segment_walk(fd, &h, (uint64_t)st.st_size, &t, err) < 0) {
		rc = -1;
		goto out;
	}
	if (t.sealed || t.file_end != pos || t.next_seq != lost ||
	    nh->first_seq < lost || at < pos) {
		rc = CH_REPAIR_CHANGED;
		goto out;
	}
	if (!(buf = lost_tail_bytes(fd, &h, &t, pos, nh, &len))) {
		rc = errno ? ch_err_sys(err, CH_EXIT_FAIL, "out of memory") : -2;
		goto out;
	}
	if (ch_pwrite_full(fd, buf, len, (off_t)pos) < 0 ||
	    ftruncate(fd, (off_t)(pos + len)) < 0 || ch_fdatasync(fd) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s: write gap record and "
		    "seal", name);
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s: write gap record and "
		    "seal", name);
		goto out;
	}
	/* Whole now: the flag has nothing left to say. */
	rc = ch_sealsync(ch, nh->base, 1, err) < 0 ? -1 : CH_REPAIR_DONE;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	if (rc == CH_REPAIR_DONE)
		forget_tail_mark(afd);
	close(afd);
	return rc;
}

int
ch_repair_orphan(struct ch_channel *ch, uint64_t base, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_seghdr h;
	struct ch_index ix;
	struct ch_idxent e;
	struct stat st;
	uint64_t i;
	int afd, fd, rc, indexed = 0;

	ch_seg_name(name, base);
	if (lock_append(ch, &afd, err) < 0)
		return -1;
	if ((rc = open_rw(ch, base, &fd, &h, err)) != 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		rc = ch_err_sys(err, CH_EXIT_FAIL, "%s", name);
		close(fd);
		goto out;
	}
	close(fd);
	if (ch_index_open(ch->dirfd, &ix, err) < 0) {
		rc = -1;
		goto out;
	}
	indexed = ch_index_find(&ix, base, &i, err) == 0 &&
	    ch_index_get(&ix, i, &e, err) == 0 && e.base == base;
	ch_index_close(&ix);
	if (indexed || st.st_size != CH_SEG_HDR ||
	    !(h.flags & CH_SEGF_PRED_UNSYNCED))
		rc = CH_REPAIR_CHANGED;
	else if (unlinkat(ch->dirfd, name, 0) < 0 || ch_fsync_dir(ch->dirfd) < 0)
		rc = ch_err_sys(err, CH_EXIT_FAIL, "remove %s", name);
	else
		rc = CH_REPAIR_DONE;
out:
	if (rc == CH_REPAIR_DONE)
		forget_tail_mark(afd);
	close(afd);
	return rc;
}
