/* reader.c - reading records across segments (see reader.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "reader.h"

struct ch_reader {
	struct ch_channel *ch;
	int segfd;
	struct ch_seghdr seg;
	struct ch_segcur cur;
	uint64_t next_seq;
	int seq_unknown;		/* after skipping: take the next seq */
	int64_t last_ts;	/* time of the last record read (for resync) */
	int at_seal;		/* waiting for the segment after a seal */
	int seq_lost;		/* opened inside a damaged frame: next_seq is
				 * the caller's (ch_reader_set_seq) */
	int provisional;	/* no valid record of the segment read yet,
				 * the reader at its start: a writer may
				 * still rewrite the header in another format
				 * (it does while no valid record follows) */
	int hdr_fresh;		/* the header was read after the last try
				 * at a record: no need to read it again */
	int skip_corrupt;
	ch_warn_fn warn;
	void *warn_ctx;
	uint64_t probed_size;	/* file size at the last stuck-record probe */
	/* The index as it was when it last said last_base is the newest
	 * segment: while the file is the same, that still holds (entries
	 * are only appended; compaction replaces the file).  Saves reading
	 * the index at every end of the channel, such as each wake-up of
	 * a follower. */
	int last_known;
	uint64_t last_base;
	struct stat last_idx;
	int final_seen;		/* the segment was seen not to be the newest
				 * before the bytes past the cursor were read */
	uint64_t skips;		/* damage skipped (skip_corrupt) so far */
	uint64_t skip_at, skip_to;	/* the last: its offset, and where
					 * reading went on */
};

static int
same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Is `base` the newest segment (the last index entry)?  Returns 1, 0, or
 * -1 on error; *next gets the following segment's base when there is one. */
static int
is_last(struct ch_reader *r, uint64_t base, uint64_t *next,
    struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct stat st;
	uint64_t i;
	int rc = -1;

	if (r->last_known && r->last_base == base &&
	    fstatat(r->ch->dirfd, CH_IDX_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    same_file_state(&st, &r->last_idx))
		return 1;
	r->last_known = 0;
	if (ch_index_open(r->ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_find(&ix, base, &i, err) < 0)
		goto out;
	if (i + 1 >= ix.count) {
		/* The stat of what was read: a change after it shows. */
		if (fstat(ix.fd, &r->last_idx) == 0 &&
		    (uint64_t)r->last_idx.st_size ==
		    CH_IDX_HDR + ix.count * CH_IDX_ENTRY) {
			r->last_known = 1;
			r->last_base = base;
		}
		rc = 1;
		goto out;
	}
	if (ch_index_get(&ix, i + 1, &e, err) < 0)
		goto out;
	*next = e.base;
	rc = 0;
out:
	ch_index_close(&ix);
	return rc;
}

/* Sequence number of the record at file position pos, which is a
 * boundary: the record there, or the one due after what ends there. */
static int
seq_at(struct ch_reader *r, uint64_t pos, struct ch_error *err)
{
	struct ch_segcur c = { 0 };
	struct ch_rec rec;
	int rc;

	ch_segcur_init(&c, r->segfd, &r->seg, pos, r->cur.size);
	rc = ch_segcur_next(&c, &rec);
	ch_segcur_free(&c);
	if (rc == CH_CUR_OK) {
		r->next_seq = rec.h.seq;
		return 0;
	}
	if (pos == CH_SEG_HDR) {
		r->next_seq = r->seg.first_seq;
		return 0;
	}
	/* At the end: the record ending here says who comes next. */
	rc = ch_segment_seq_before(r->segfd, &r->seg, pos, &r->next_seq);
	if (rc == -1)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (rc < 0)
		return ch_err(err, CH_EXIT_DATAERR,
		    "offset %llu is not on a record boundary",
		    (unsigned long long)ch_seg_offset(r->seg.base, pos));
	return 0;
}

/* No valid record of the segment read yet, and it holds more than its
 * header: read the header again, in case a writer changed its format
 * (after cutting a torn first record, say).  0, 1 if the header does not
 * read whole now (a writer rewriting it: look again later), -1. */
static int
reread_header(struct ch_reader *r, struct ch_error *err)
{
	struct ch_seghdr h;

	if (ch_segment_header(r->segfd, r->seg.base, &h, err) < 0)
		return err->code == CH_EXIT_DATAERR ? 1 : -1;
	if (h.format != r->seg.format) {
		r->seg = h;
		ch_segcur_init(&r->cur, r->segfd, &h, r->cur.pos, r->cur.size);
	}
	return 0;
}

/* Read on from pos in the segment open at fd, whose header h was just
 * read.  Takes fd (closed on error). */
static int
adopt_segment(struct ch_reader *r, int fd, const struct ch_seghdr *h,
    uint64_t pos, struct ch_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "segment");
		close(fd);
		return -1;
	}
	if (r->segfd >= 0)
		close(r->segfd);
	r->segfd = fd;
	r->seg = *h;
	r->provisional = pos == CH_SEG_HDR;
	r->hdr_fresh = 1;
	r->final_seen = 0;
	ch_segcur_init(&r->cur, fd, h, pos, (uint64_t)st.st_size);
	return 0;
}

static int
switch_segment(struct ch_reader *r, uint64_t base, uint64_t pos,
    struct ch_error *err)
{
	struct ch_seghdr h;
	int fd;

	if (ch_segment_open(r->ch->dirfd, base, 0, &fd, &h, err) < 0)
		return -1;
	return adopt_segment(r, fd, &h, pos, err);
}

/*
 * Is file position pos a record boundary of the segment r has open?
 * Walked from the segment's start: a payload could hold bytes that look
 * like a record, a walk cannot be fooled.  Damage on the way is passed as
 * a reader passes it (ch_reader_next, damaged()): a record out of
 * sequence is damage where it stands, and the walk goes on at the next
 * valid record that the readers' resync finds, with the number due and
 * the time of the last record read; so that record and those after it
 * are boundaries, and no position in the damage is.  0, or -1.
 */
static int
walk_to(struct ch_reader *r, uint64_t pos, struct ch_error *err)
{
	struct ch_segcur c = { 0 };
	struct ch_rec rec;
	uint64_t due = r->seg.first_seq, next, seq;
	int64_t last_ts = INT64_MIN;
	int rc = CH_CUR_OK, found;

	ch_segcur_init(&c, r->segfd, &r->seg, CH_SEG_HDR, r->cur.size);
	while (c.pos < pos) {
		uint64_t at = c.pos;
		rc = ch_segcur_next(&c, &rec);
		if (rc == CH_CUR_OK && rec.h.seq != due) {
			ch_segcur_seek(&c, rec.pos);
			rc = CH_CUR_BAD;
		}
		if (rc == CH_CUR_OK && rec.h.type == CH_REC_SEAL)
			break;
		if (rc == CH_CUR_OK) {
			due = rec.h.seq + rec.nseq;
			last_ts = rec.h.ts;
			continue;
		}
		if (rc == CH_CUR_IOERR || (rc == CH_CUR_END && c.pos >= c.size))
			break;
		/* Invalid bytes, or a record claiming to run past the end of
		 * the file (which only a damaged length field leaves with a
		 * record after it: stuck()). */
		if ((found = ch_segcur_resync(&c, due, last_ts, &next,
		    &seq)) < 0) {
			rc = CH_CUR_IOERR;
			break;
		}
		if (found && next <= pos) {
			ch_segcur_seek(&c, next);
			due = seq;
			continue;
		}
		ch_segcur_free(&c);
		if (found)
			return ch_err(err, CH_EXIT_DATAERR, "offset %llu is "
			    "inside damaged data (offsets %llu to %llu), where "
			    "no record can be verified; reading goes on at "
			    "offset %llu, past the damage",
			    (unsigned long long)ch_seg_offset(r->seg.base, pos),
			    (unsigned long long)ch_seg_offset(r->seg.base, at),
			    (unsigned long long)ch_seg_offset(r->seg.base, next),
			    (unsigned long long)ch_seg_offset(r->seg.base, next));
		return ch_err(err, CH_EXIT_DATAERR, "offset %llu lies after "
		    "offset %llu, the last record boundary of its segment, in "
		    "bytes that hold no valid record (damage, a torn tail or a "
		    "write in progress)",
		    (unsigned long long)ch_seg_offset(r->seg.base, pos),
		    (unsigned long long)ch_seg_offset(r->seg.base, at));
	}
	ch_segcur_free(&c);
	if (rc == CH_CUR_IOERR)		/* no verdict on the offset */
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (c.pos != pos)
		return ch_err(err, CH_EXIT_DATAERR, "offset %llu is not on a "
		    "record boundary",
		    (unsigned long long)ch_seg_offset(r->seg.base, pos));
	return 0;
}

int
ch_reader_open(struct ch_channel *ch, uint64_t offset, int strict,
    struct ch_reader **rp, struct ch_error *err)
{
	struct ch_reader *r = calloc(1, sizeof *r);
	struct ch_seghdr h;
	uint64_t pos;
	int fd;

	if (!r)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	r->ch = ch;
	r->segfd = -1;
	r->last_ts = INT64_MIN;
	if (ch_channel_locate(ch, offset, &fd, &h, &pos, err) < 0) {
		if (err->code == CH_EXIT_NOINPUT && !ch_dir_removed(ch->dirfd))
			ch_err(err, CH_EXIT_NOINPUT,
			    "offset %llu is below the earliest record (deleted)",
			    (unsigned long long)offset);
		free(r);
		return -1;
	}
	if (adopt_segment(r, fd, &h, pos, err) < 0)
		goto fail;
	if (pos > r->cur.size) {
		struct ch_end end;
		if (ch_channel_end(ch, &end, err) < 0)
			goto fail;
		ch_err(err, CH_EXIT_DATAERR,
		    "offset %llu is past the end of the channel (%llu)",
		    (unsigned long long)offset, (unsigned long long)end.offset);
		goto fail;
	}
	if (strict && pos > CH_SEG_HDR && walk_to(r, pos, err) < 0)
		goto fail;
	/* A boundary has a valid record starting at it, or one ending at
	 * it; a damaged record at the offset is then left for
	 * ch_reader_next to report (or skip). */
	if (pos < r->cur.size) {
		struct ch_segcur c = { 0 };
		struct ch_rec rec;
		ch_segcur_init(&c, r->segfd, &r->seg, pos, r->cur.size);
		int rc = ch_segcur_next(&c, &rec);
		ch_segcur_free(&c);
		if (rc == CH_CUR_IOERR) {
			ch_err_sys(err, CH_EXIT_FAIL, "read segment");
			goto fail;
		}
		if (rc == CH_CUR_OK) {
			/* One out of sequence is damage where it stands:
			 * the number due there is the reader's. */
			uint64_t due;
			int oos = ch_segment_out_of_seq(r->segfd, &r->seg, pos,
			    rec.h.seq, &due);
			if (oos < 0) {
				ch_err_sys(err, CH_EXIT_FAIL, "read segment");
				goto fail;
			}
			r->next_seq = oos ? due : rec.h.seq;
			*rp = r;
			return 0;
		}
		if (rc == CH_CUR_BAD && c.in_damage && !strict) {
			/* Inside a frame that is damaged: its records, and so
			 * the number due here, cannot be known; reading
			 * reports the damage (or skips it). */
			r->next_seq = 0;
			r->seq_lost = 1;
			r->seq_unknown = 1;
			*rp = r;
			return 0;
		}
	}
	if (seq_at(r, pos, err) < 0)
		goto fail;
	*rp = r;
	return 0;
fail:
	ch_reader_close(r);
	return -1;
}

void
ch_reader_close(struct ch_reader *r)
{
	if (!r)
		return;
	if (r->segfd >= 0)
		close(r->segfd);
	ch_segcur_free(&r->cur);
	free(r);
}

void
ch_reader_set_skip_corrupt(struct ch_reader *r, int on, ch_warn_fn warn,
    void *ctx)
{
	r->skip_corrupt = on;
	r->warn = warn;
	r->warn_ctx = ctx;
}

uint64_t
ch_reader_offset(const struct ch_reader *r)
{
	return ch_seg_offset(r->seg.base, r->cur.pos);
}

int
ch_reader_buffered(const struct ch_reader *r)
{
	return !r->at_seal && ch_segcur_buffered(&r->cur);
}

uint64_t
ch_reader_seq(const struct ch_reader *r)
{
	return r->next_seq;
}

int
ch_reader_seq_lost(const struct ch_reader *r)
{
	return r->seq_lost;
}

void
ch_reader_set_seq(struct ch_reader *r, uint64_t seq)
{
	r->next_seq = seq;
}

/*
 * The record at the cursor claims to end past the end of the file.  A
 * write in progress is the last thing in the file, so if the very next
 * record (by sequence number; in format 2, the next frame) already stands
 * where the record's own trailer says it ends, its length field is
 * damaged.  Nothing else inside it counts (ch_segcur_resync).  Probed
 * again only when the file has grown.
 */
static int
stuck(struct ch_reader *r)
{
	struct ch_segcur c = { 0 };
	uint64_t next, seq;
	int found;

	if (r->cur.size == r->probed_size)
		return 0;
	r->probed_size = r->cur.size;
	ch_segcur_init(&c, r->segfd, &r->seg, r->cur.pos, r->cur.size);
	found = ch_segcur_resync(&c, r->next_seq, r->last_ts, &next, &seq);
	ch_segcur_free(&c);
	return found > 0;
}

static void warn(struct ch_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
warn(struct ch_reader *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!r->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->warn(r->warn_ctx, msg);
}

/*
 * Damage is judged only from bytes read after the segment was seen not to
 * be the newest, or while it is the newest: a writer can cut a torn tail,
 * write over it, seal and roll over between a read of the bytes and the
 * look at the index, and its records must not pass for damage.  Returns 2
 * if the segment is the newest, 1 if it was seen final before the bytes
 * were read, 0 if it is only now (the bytes past the cursor are dropped:
 * read them again), -1.  *nbase gets the next segment's base.
 */
static int
final_look(struct ch_reader *r, uint64_t *nbase, struct ch_error *err)
{
	int last = is_last(r, r->seg.base, nbase, err);

	if (last != 0)
		return last < 0 ? -1 : 2;
	if (r->final_seen)
		return 1;
	r->final_seen = 1;
	if (ch_segcur_refresh(&r->cur) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment");
	return 0;
}

/* Bad bytes at the cursor: skip, stop with an error, or (torn tail)
 * report the end.  Returns 1 to go on reading, 0 for end, -1. */
static int
damaged(struct ch_reader *r, struct ch_error *err)
{
	uint64_t next, seq, here = ch_reader_offset(r), nbase;
	int fin = final_look(r, &nbase, err);

	if (fin <= 0)
		return fin < 0 ? -1 : 1;
	int found = ch_segcur_resync(&r->cur, r->next_seq, r->last_ts, &next,
	    &seq);

	if (found < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (found) {
		if (!r->skip_corrupt)
			return ch_err(err, CH_EXIT_DATAERR,
			    "corrupt record at offset %llu (use --skip-corrupt "
			    "to skip it)", (unsigned long long)here);
		warn(r, "skipped %llu corrupt bytes at offset %llu, %llu "
		    "record%s lost", (unsigned long long)(next - r->cur.pos),
		    (unsigned long long)here,
		    (unsigned long long)(seq - r->next_seq),
		    seq - r->next_seq == 1 ? "" : "s");
		r->next_seq = seq;	/* the one found: plausible */
		ch_segcur_seek(&r->cur, next);
		r->skips++;
		r->skip_at = here;
		r->skip_to = ch_reader_offset(r);
		r->seq_unknown = 1;	/* records were skipped */
		return 1;
	}
	/* Nothing valid follows in this segment.  The newest when looked
	 * at before: is it still? */
	if (fin == 2 && (fin = final_look(r, &nbase, err)) <= 0)
		return fin < 0 ? -1 : 1;
	if (fin == 2)
		return 0;	/* a torn tail: the next writer repairs it */
	/* The next segment must start at or after the damage: one starting
	 * before it overlaps records already handed out (segments from
	 * different channels, a hand-edited index).  Going there would
	 * deliver offsets backwards and make the bytes skipped negative. */
	if (nbase < here)
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment %llu starts at offset %llu, before the end of the "
		    "segment before it (damaged channel)",
		    (unsigned long long)nbase, (unsigned long long)here);
	if (!r->skip_corrupt)
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment damaged from offset %llu to its end (use "
		    "--skip-corrupt to skip it)", (unsigned long long)here);
	uint64_t due = r->next_seq;
	if (switch_segment(r, nbase, CH_SEG_HDR, err) < 0 ||
	    seq_at(r, CH_SEG_HDR, err) < 0)
		return -1;
	uint64_t lost = r->next_seq > due ? r->next_seq - due : 0;
	r->skips++;
	r->skip_at = here;
	r->skip_to = nbase;
	warn(r, "skipped %llu bytes of a damaged segment at offset %llu, "
	    "%llu record%s lost", (unsigned long long)(nbase - here),
	    (unsigned long long)here, (unsigned long long)lost,
	    lost == 1 ? "" : "s");
	return 1;
}

/*
 * An incomplete record at the end of a segment that is not the newest:
 * nobody will finish it, so it is damage (1), unless the file grew since
 * we looked (2: a rollover listed the next segment after writing this
 * one's last records).  0 if this is the newest segment, -1 on error.
 */
static int
older(struct ch_reader *r, struct ch_error *err)
{
	uint64_t nbase;
	int last = is_last(r, r->seg.base, &nbase, err), g;

	if (last != 0)
		return last < 0 ? -1 : 0;
	if ((g = ch_segcur_refresh(&r->cur)) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment");
	return g == 1 ? 2 : 1;
}

/*
 * At the end of a segment that has no seal.  If it is the newest, this is
 * the end of the channel for now.  Otherwise its seal was lost: when the
 * next segment starts right here no record is missing, so go on (with a
 * warning); else the records in between are gone, which is damage.
 * Returns 1 to go on reading, 0 for end, -1.
 */
static int
unsealed_end(struct ch_reader *r, struct ch_error *err)
{
	uint64_t nbase, here = ch_reader_offset(r);
	int last = is_last(r, r->seg.base, &nbase, err), g;

	if (last != 0)
		return last < 0 ? -1 : 0;
	/* A rollover lists the next segment only after sealing this one:
	 * look at this file again before calling anything damage. */
	if ((g = ch_segcur_refresh(&r->cur)) != 0)
		return g < 0 ? ch_err_sys(err, CH_EXIT_FAIL, "segment") : 1;
	if (nbase != here)
		return damaged(r, err);
	warn(r, "segment at offset %llu ends without its seal; continuing "
	    "at offset %llu", (unsigned long long)r->seg.base,
	    (unsigned long long)here);
	if (switch_segment(r, nbase, CH_SEG_HDR, err) < 0)
		return -1;
	return 1;
}

/*
 * The file ends before the cursor: something cut it below records this
 * reader has already read.  No writer does (a writer cuts only a torn
 * tail, which no reader passes), so it is damage.  In an older segment it
 * is the damage of a segment that ends early (reported, or skipped to the
 * next segment); in the newest one, writers will append from the cut on,
 * so offsets this reader has handed out would be used again: stop.
 * Returns 1 to go on reading, 0 for end, -1.
 */
static int
cut_under(struct ch_reader *r, struct ch_error *err)
{
	uint64_t nbase;
	int last = is_last(r, r->seg.base, &nbase, err);

	if (last < 0)
		return -1;
	if (!last)
		return damaged(r, err);
	return ch_err(err, CH_EXIT_DATAERR,
	    "segment at offset %llu was cut to %llu bytes under the reader, "
	    "which had read to offset %llu (damaged channel)",
	    (unsigned long long)r->seg.base, (unsigned long long)r->cur.size,
	    (unsigned long long)ch_reader_offset(r));
}

/*
 * The segment at `base`, named by the seal just read, is not there.  If
 * the channel now starts after it, retention deleted it (and maybe more)
 * while we read the one before: say what was skipped and go on at the
 * earliest record, as a subscriber that starts behind it does.  Returns 1
 * to go on reading, 0 if it is just not created yet, -1.
 */
static int
deleted(struct ch_reader *r, uint64_t base, struct ch_error *err)
{
	struct ch_start st;
	char msg[256];

	for (int tries = 0; tries < 100; tries++) {
		if (ch_channel_start(r->ch, &st, err) < 0)
			return -1;
		if (st.offset <= base)
			return 0;
		if (switch_segment(r, st.offset, CH_SEG_HDR, err) == 0)
			break;
		if (err->code != CH_EXIT_NOINPUT)
			return -1;
		/* deleted in turn since we looked: look again */
	}
	if (r->seg.base != st.offset)
		return ch_err(err, CH_EXIT_TEMPFAIL, "segments keep being "
		    "deleted under the reader");
	if (r->warn) {
		snprintf(msg, sizeof msg, "subscriber is behind the earliest "
		    "record: skipping %llu bytes (%llu records) removed by "
		    "retention, continuing at offset %llu",
		    (unsigned long long)(st.offset - base),
		    (unsigned long long)(st.seq > r->next_seq ?
		    st.seq - r->next_seq : 0), (unsigned long long)st.offset);
		r->warn(r->warn_ctx, msg);
	}
	r->next_seq = st.seq;
	r->at_seal = 0;
	return 1;
}

/*
 * Format 3: the next records of the frame being read, as far as max and
 * `room` bytes of output let them go (at least one), measured in its
 * payload area, where they lie as plain output with newlines renders them
 * (payload, 0x0A).  marks[i].end counts from the first one's payload.
 * Moves the cursor past them; *len gets their bytes, *pay0 where they
 * start in the cursor's buffer.  Returns how many.
 */
static size_t
run3(struct ch_reader *r, size_t room, size_t max, struct ch_runmark *marks,
    size_t base, const unsigned char **pay0p, size_t *len)
{
	struct ch_segcur *c = &r->cur;
	const unsigned char *buf = c->buf;
	const unsigned char *p = buf + (c->pos - c->buf_pos);
	const unsigned char *tab = buf + (c->ftab - c->buf_pos);
	const unsigned char *lim = buf + (c->fend - CH_FRAME_TRAILER -
	    c->buf_pos);
	const unsigned char *pay0 = buf + (c->fpay - c->buf_pos), *pay = pay0;
	uint64_t off0 = ch_seg_offset(r->seg.base, c->buf_pos);
	uint64_t seq = c->fseq, left = c->left, age = 0;
	size_t k = 0;

	while (k < max && (k == 0 || (size_t)(pay - pay0) < room)) {
		struct ch_frec fr;
		uint64_t at;
		if (p != tab && ch_frec3_common(p, lim, &at, &fr.len)) {
			fr.age = 0;
			fr.end = p + 5;
		} else if (*p == 0 && p != tab) {
			/* The common entry: no age, no metadata; skip the
			 * position, read the length (verified frame). */
			const unsigned char *q = p + 1;
			while (*q++ & 0x80)
				;
			uint64_t v = 0;
			unsigned sh = 0, b;
			do {
				b = *q++;
				v |= (uint64_t)(b & 0x7f) << sh;
				sh += 7;
			} while ((b & 0x80) && sh < 64);
			fr.len = v;
			fr.age = 0;
			fr.end = q;
		} else if (ch_frec3_decode(p, lim, p == tab, &fr) < 0) {
			break;	/* cannot happen: verified */
		}
		pay += fr.len + 1;
		age = fr.age;
		p = fr.end;
		seq++;
		left--;
		marks[k++] = (struct ch_runmark){ base + (size_t)(pay - pay0),
		    left ? off0 + (uint64_t)(p - buf) :
		    ch_seg_offset(r->seg.base, c->fend), seq };
		if (!left)
			break;
	}
	*pay0p = pay0;
	*len = (size_t)(pay - pay0);
	if (!k)
		return 0;
	c->pos = left ? c->buf_pos + (uint64_t)(p - buf) : c->fend;
	c->fpay += *len;
	c->left = left;
	c->fseq = seq;
	r->next_seq = seq;
	r->last_ts = c->fts;
	if (age)
		(void)ch_frec_time(c->fts, age, &r->last_ts);
	return k;
}

/* ch_reader_plain_run for a format 3 frame: one copy of the payload range
 * (with another delim than a newline, the delims put in after). */
static int
plain_run3(struct ch_reader *r, struct ch_buf *out, char delim, size_t limit,
    size_t max, struct ch_runmark *marks, size_t *n)
{
	const unsigned char *pay0;
	size_t len, base = out->len;
	size_t k = run3(r, limit - out->len, max, marks, base, &pay0, &len);

	*n = 0;
	if (!k)
		return 0;
	/* The cursor moved on, but its buffer is untouched until the next
	 * read: the bytes are still there. */
	if (ch_buf_reserve(out, len) < 0)
		return -1;
	memcpy(out->p + base, pay0, len);
	if (delim != '\n')
		for (size_t i = 0; i < k; i++)
			out->p[marks[i].end - 1] = delim;
	out->len = base + len;
	*n = k;
	return 0;
}

size_t
ch_reader_plain_span(struct ch_reader *r, size_t room, size_t max,
    struct ch_runmark *marks, size_t *n, const unsigned char **span)
{
	struct ch_segcur *c = &r->cur;
	size_t len;

	*n = 0;
	if (!c->left || !c->fpay || r->provisional || !max)
		return 0;
	*n = run3(r, room, max, marks, 0, span, &len);
	return *n ? len : 0;
}

int
ch_reader_unread_first(struct ch_reader *r)
{
	struct ch_segcur *c = &r->cur;

	if (!c->left || !c->fpay || r->provisional ||
	    c->fseq != c->fseq0 + 1)
		return 0;
	c->pos = c->ftab;
	c->fpay = c->fbody;
	c->left++;
	c->fseq = c->fseq0;
	r->next_seq = c->fseq0;
	return 1;
}

int
ch_reader_plain_run(struct ch_reader *r, struct ch_buf *out, char delim,
    size_t limit, size_t max, struct ch_runmark *marks, size_t *n)
{
	struct ch_segcur *c = &r->cur;
	size_t k = 0;

	*n = 0;
	if (!c->left || r->provisional || !max || out->len >= limit)
		return 0;
	if (c->fpay)
		return plain_run3(r, out, delim, limit, max, marks, n);
	const unsigned char *buf = c->buf;
	const unsigned char *p = buf + (c->pos - c->buf_pos);
	const unsigned char *body = buf + (c->fbody - c->buf_pos);
	const unsigned char *lim = buf + (c->fend - CH_FRAME_TRAILER -
	    c->buf_pos);
	/* Offset of buf[0], so that a record's is where it is in buf. */
	uint64_t off0 = ch_seg_offset(r->seg.base, c->buf_pos);
	uint64_t seq = c->fseq, left = c->left, age = 0;
	int rc = 0;

	/* Payloads are copied in whole 128- or 32-byte blocks where the
	 * buffer (with its slack) has the bytes past them, else in 16-byte
	 * ones (ch_output_record). */
	const unsigned char *bufend = buf + c->cap + CH_CUR_SLACK;
	while (k < max && out->len < limit) {
		struct ch_frec fr;
		if (*p == 0 && p != body) {
			/* The common record, decoded without the checks
			 * that verifying the frame made: no age, no
			 * metadata; skip the position, read the length. */
			const unsigned char *q = p + 1;
			while (*q++ & 0x80)
				;
			uint64_t v = 0;
			unsigned sh = 0, b;
			do {
				b = *q++;
				v |= (uint64_t)(b & 0x7f) << sh;
				sh += 7;
			} while ((b & 0x80) && sh < 64);
			fr.len = v;
			fr.age = 0;
			fr.payload = q;
			fr.end = q + v;
			if (q > lim || v > (uint64_t)(lim - q))
				break;	/* cannot happen: ch_reader_next says so */
		} else if (ch_frec_decode(p, lim, p == body, &fr) < 0) {
			break;
		}
		size_t len = (size_t)fr.len;
		if (out->len + len + 129 > out->cap &&
		    ch_buf_reserve(out, len + 129) < 0) {
			rc = -1;
			break;
		}
		char *d = out->p + out->len;
		size_t readable = (size_t)(bufend - fr.payload);
		if (len <= 128 && readable >= 128) {
			/* One fixed-size copy, no loop: lines are short. */
			memcpy(d, fr.payload, 128);
		} else if (len <= 256 && readable >= len + 31) {
			for (size_t i = 0; i < len; i += 32)
				memcpy(d + i, fr.payload + i, 32);
		} else if (len <= 256) {
			/* As ch_output_record: past the end on both sides,
			 * into the cursor's slack. */
			for (size_t i = 0; i < len; i += 16)
				memcpy(d + i, fr.payload + i, 16);
		} else {
			memcpy(d, fr.payload, len);
		}
		d[len] = delim;
		out->len += len + 1;
		age = fr.age;
		p = fr.end;
		seq++;
		left--;
		marks[k++] = (struct ch_runmark){ out->len,
		    left ? off0 + (uint64_t)(p - buf) :
		    ch_seg_offset(r->seg.base, c->fend), seq };
		if (!left)
			break;
	}
	if (k) {
		c->pos = left ? c->buf_pos + (uint64_t)(p - buf) : c->fend;
		c->left = left;
		c->fseq = seq;
		r->next_seq = seq;
		r->last_ts = c->fts;
		if (age)
			(void)ch_frec_time(c->fts, age, &r->last_ts);
	}
	*n = k;
	return rc;
}

int
ch_reader_next(struct ch_reader *r, struct ch_rec *rec, struct ch_error *err)
{
	int grew = 0;

	/* The rest of a verified frame: its first record was checked below,
	 * the others follow it in sequence by construction. */
	if (r->cur.left && !r->provisional &&
	    ch_segcur_emit(&r->cur, rec, r->cur.pos) == CH_CUR_OK) {
		r->next_seq = rec->h.seq + 1;
		r->last_ts = rec->h.ts;
		rec->offset = ch_seg_offset(r->seg.base, rec->pos);
		return 1;
	}
	/* Only a header read in this call spares reading it again: one read
	 * before may be stale (the caller may have set up its watch since,
	 * and a writer rewritten the header before it). */
	r->hdr_fresh = 0;
	for (;;) {
		if (r->provisional && r->cur.size > CH_SEG_HDR &&
		    !r->hdr_fresh) {
			int rh = reread_header(r, err);
			if (rh != 0)
				return rh < 0 ? -1 : 0;
		}
		if (r->at_seal) {
			uint64_t base = ch_reader_offset(r);
			if (switch_segment(r, base, CH_SEG_HDR, err) < 0) {
				if (err->code != CH_EXIT_NOINPUT)
					return -1;
				/* Not created yet, or deleted by retention
				 * while we were reading the one before. */
				int gone = deleted(r, base, err);
				if (gone <= 0)
					return gone;
				continue;
			}
			r->at_seal = 0;
			continue;
		}
		int rc = ch_segcur_next(&r->cur, rec);
		r->hdr_fresh = 0;
		if (rc == CH_CUR_OK)
			r->provisional = 0;	/* the format is the header's */
		if (rc == CH_CUR_OK && rec->h.seq != r->next_seq &&
		    !r->seq_unknown) {
			/* Valid on its own but out of sequence (a duplicated
			 * record): not something a writer put there, so damage
			 * where it stands, searched past from there. */
			ch_segcur_seek(&r->cur, rec->pos);
			rc = CH_CUR_BAD;
		}
		r->seq_unknown = 0;
		if (rc == CH_CUR_OK) {
			if (rec->h.type == CH_REC_SEAL) {
				r->next_seq = rec->h.seq;
				/* its offset is the next segment's base */
				ch_segcur_seek(&r->cur, rec->pos);
				r->at_seal = 1;
				continue;
			}
			r->next_seq = rec->h.seq + rec->nseq;
			rec->offset = ch_seg_offset(r->seg.base, rec->pos);
			if (rec->h.type == CH_REC_GAP) {
				/* Records lost (to a power failure, say) and
				 * accounted for by chcompact --repair. */
				warn(r, rec->nseq == 1 ? "%llu record lost at "
				    "offset %llu" : "%llu records lost at offset "
				    "%llu", (unsigned long long)rec->nseq,
				    (unsigned long long)rec->offset);
				r->last_ts = rec->h.ts;
				continue;
			}
			r->last_ts = rec->h.ts;
			return 1;
		}
		if (rc == CH_CUR_IOERR)
			return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
		if (rc == CH_CUR_BAD && !grew) {
			/* The bad bytes may be a torn tail that a writer has
			 * since cut off and written over: read them again. */
			grew = 1;
			if (ch_segcur_refresh(&r->cur) < 0)
				return ch_err_sys(err, CH_EXIT_FAIL, "segment");
			continue;
		}
		if (rc == CH_CUR_BAD) {
			rc = damaged(r, err);
			if (rc <= 0)
				return rc;
			continue;
		}
		/* CH_CUR_END: maybe the file grew, or was cut and written
		 * over, since we last looked. */
		if (!grew) {
			grew = 1;
			int g = ch_segcur_refresh(&r->cur);
			if (g < 0)
				return ch_err_sys(err, CH_EXIT_FAIL, "segment");
			if (g > 0)
				continue;
		}
		/* A record running past the end of an older segment (one
		 * the index lists another after) can only be damage, not a
		 * write in progress; so is one in the active segment that the
		 * writers have written past. */
		int dmg = 0;
		if (r->cur.pos < r->cur.size) {
			dmg = stuck(r);
			if (!dmg && (dmg = older(r, err)) < 0)
				return -1;
			if (dmg == 2) {		/* it grew after all */
				grew = 0;
				continue;
			}
		}
		if (dmg) {
			rc = damaged(r, err);
			if (rc <= 0)
				return rc;
			grew = 0;
			continue;
		}
		if (r->cur.pos == r->cur.size) {
			rc = unsealed_end(r, err);
			if (rc <= 0)
				return rc;
			grew = 0;
			continue;
		}
		if (r->cur.pos > r->cur.size) {
			rc = cut_under(r, err);
			if (rc <= 0)
				return rc;
			grew = 0;
			continue;
		}
		return 0;
	}
}

/* Time of the first record of segment `base` (0 if it has none), as
 * peeked: unverified. */
static int
first_record_time(struct ch_channel *ch, uint64_t base, int64_t *ts,
    struct ch_error *err)
{
	struct ch_seghdr h;
	int fd, type;

	if (ch_segment_open(ch->dirfd, base, 0, &fd, &h, err) < 0)
		return -1;
	int rc = ch_segment_peek(fd, &h, CH_SEG_HDR, &type, ts);
	close(fd);
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (type != CH_REC_DATA)
		*ts = 0;
	return 0;
}

/* *sound: the record at offset is whole, its checksum right, and its time
 * ts (0 if it is damaged, or not there). */
static int
record_sound(struct ch_channel *ch, uint64_t offset, int64_t ts, int *sound,
    struct ch_error *err)
{
	struct ch_reader *r;
	struct ch_rec rec;
	struct ch_error e;
	int rc = -1;

	*sound = 0;
	if (ch_reader_open(ch, offset, 0, &r, &e) == 0) {
		rc = ch_reader_next(r, &rec, &e);
		ch_reader_close(r);
	}
	if (rc < 0 && e.code != CH_EXIT_DATAERR) {
		*err = e;
		return -1;
	}
	*sound = rc > 0 && rec.offset == offset && rec.h.ts == ts;
	return 0;
}

/* The damage the reader just passed may have held what a seek looks for;
 * rec is the first valid record after it (NULL if none follows). */
static int
hidden(const struct ch_reader *r, int by_time, const struct ch_rec *rec,
    struct ch_error *err)
{
	if (!by_time)	/* a count of records across it, as a reader */
		return ch_err(err, CH_EXIT_DATAERR, "corrupt record at offset "
		    "%llu (use --skip-corrupt to skip it)",
		    (unsigned long long)r->skip_at);
	if (!rec)
		return ch_err(err, CH_EXIT_DATAERR, "corrupt data at offsets "
		    "%llu to %llu may hold the first record published at or "
		    "after that time (no valid record follows it)",
		    (unsigned long long)r->skip_at,
		    (unsigned long long)r->skip_to);
	return ch_err(err, CH_EXIT_DATAERR, "corrupt data at offsets %llu to "
	    "%llu may hold the first record published at or after that time "
	    "(the next valid record, at offset %llu, was published at or "
	    "after it)", (unsigned long long)r->skip_at,
	    (unsigned long long)r->skip_to, (unsigned long long)rec->offset);
}

/*
 * Scan forward from `offset` to the first record published at or after ts
 * (by_time) or numbered seq or after; *out gets its offset (the end if
 * there is none) and *out_seq its number.  With `pass`, damage on the way
 * is passed as chsub --skip-corrupt passes it (the readers' resync,
 * damaged()), unless what it hid may hold the answer: the first record
 * after it is already at or after ts, or numbered after seq (or none
 * follows).  Without, damage fails (CH_EXIT_DATAERR), as does damage
 * between that record and offset `upto` (read too, when it lies beyond):
 * a count of records from there to it would cross the damage.
 */
static int
scan_to(struct ch_channel *ch, uint64_t offset, int pass, int by_time,
    int64_t ts, uint64_t seq, uint64_t upto, uint64_t *out,
    uint64_t *out_seq, struct ch_error *err)
{
	struct ch_reader *r;
	struct ch_rec rec;
	int rc;

	if (ch_reader_open(ch, offset, 0, &r, err) < 0)
		return -1;
	ch_reader_set_skip_corrupt(r, pass, NULL, NULL);
	for (;;) {
		uint64_t here = ch_reader_offset(r), skips = r->skips;
		rc = ch_reader_next(r, &rec, err);
		if (rc < 0)
			break;
		if (rc == 0 || (by_time ? rec.h.ts >= ts : rec.h.seq >= seq)) {
			if (r->skips != skips && (rc == 0 || by_time ||
			    rec.h.seq > seq)) {
				rc = hidden(r, by_time, rc ? &rec : NULL, err);
				break;
			}
			/* (here is before the damage passed, if any) */
			*out = rc == 0 ? ch_reader_offset(r) :
			    r->skips != skips ? rec.offset : here;
			if (out_seq)
				*out_seq = rc == 0 ? ch_reader_seq(r) : rec.h.seq;
			rc = 0;
			break;
		}
	}
	ch_reader_set_skip_corrupt(r, 0, NULL, NULL);
	while (rc == 0 && ch_reader_offset(r) < upto &&
	    (rc = ch_reader_next(r, &rec, err)) > 0)
		rc = 0;
	ch_reader_close(r);
	return rc < 0 ? -1 : 0;
}

static int
seek_time_from(struct ch_channel *ch, const struct ch_start *start,
    int64_t ts, uint64_t *offset, uint64_t *seq, struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	uint64_t lo, hi;

	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	/* Last segment whose first record is older than ts: the answer is
	 * in it or at the start of the next.  Times never decrease.  A
	 * peeked time that sends the search on is checked against the
	 * record's checksum: a flipped bit in it (format 1 stores the time
	 * whole; formats 2 and 3 relative to the segment's creation, which
	 * bounds it from below) must not pass over the segment before.  One
	 * whose first record's time is not known counts as not older: the
	 * scan starts before it, which costs only time. */
	lo = start->index_pos;
	hi = ix.count;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		int64_t t0;
		int sound = 1;
		if (ch_index_get(&ix, mid, &e, err) < 0 ||
		    first_record_time(ch, e.base, &t0, err) < 0 ||
		    (t0 != 0 && t0 < ts &&
		    record_sound(ch, e.base, t0, &sound, err) < 0)) {
			ch_index_close(&ix);
			return -1;
		}
		if (t0 != 0 && t0 < ts && sound)
			lo = mid;
		else
			hi = mid;
	}
	if (ch_index_get(&ix, lo, &e, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	return scan_to(ch, e.base, 1, 1, ts, 0, 0, offset, seq, err);
}

int
ch_seek_time(struct ch_channel *ch, int64_t ts, uint64_t *offset,
    uint64_t *seq, struct ch_error *err)
{
	struct ch_start s, now;
	struct ch_error e;

	if (ch_channel_start(ch, &s, err) < 0)
		return -1;
	/* A compaction that deletes the segments being looked at makes
	 * them "below the earliest record": look again from the new
	 * start (a few times: each look is a few reads). */
	for (int tries = 0;; tries++) {
		if (seek_time_from(ch, &s, ts, offset, seq, err) == 0)
			return 0;
		if (err->code != CH_EXIT_NOINPUT || tries == 3 ||
		    ch_channel_start(ch, &now, &e) < 0 || now.offset == s.offset)
			return -1;
		s = now;
	}
}

int
ch_seek_seq(struct ch_channel *ch, uint64_t seq, uint64_t from,
    uint64_t from_seq, uint64_t *offset, struct ch_error *err)
{
	struct ch_start s;
	struct ch_index ix;
	struct ch_idxent e;
	uint64_t lo, hi;

	if (ch_channel_start(ch, &s, err) < 0)
		return -1;
	/* Forward: the records from `from` on are counted, and damage
	 * among them fails. */
	if (seq >= from_seq)
		return scan_to(ch, from > s.offset ? from : s.offset, 0, 0, 0,
		    seq, 0, offset, NULL, err);
	/* Back: the record is looked for from its segment's start, past
	 * damage before it, and the records from it to `from` are read. */
	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	lo = s.index_pos;
	hi = ix.count;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ch_index_get(&ix, mid, &e, err) < 0) {
			ch_index_close(&ix);
			return -1;
		}
		if (e.first_seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	if (ch_index_get(&ix, lo, &e, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	return scan_to(ch, e.base, 1, 0, 0, seq, from, offset, NULL, err);
}

int
ch_record_time(struct ch_channel *ch, uint64_t offset, int64_t *ts,
    int64_t *written, struct ch_error *err)
{
	struct ch_seghdr h;
	struct stat st;
	uint64_t pos;
	int fd, type;

	if (written)
		*written = 0;
	if (ch_channel_locate(ch, offset, &fd, &h, &pos, err) < 0)
		return -1;
	int rc = ch_segment_peek(fd, &h, pos, &type, ts);
	if (rc == 0 && written && type != CH_REC_SEAL) {
		if (fstat(fd, &st) < 0)
			rc = -1;
		else
			*written = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			    st.st_mtim.tv_nsec;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (type != CH_REC_DATA)
		*ts = 0;
	if (type == CH_REC_SEAL) {
		/* At a seal: the record is the next segment's first. */
		if (first_record_time(ch, offset, ts, err) < 0)
			*ts = 0;
	}
	return 0;
}
