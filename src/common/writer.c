/* writer.c - appending records to a channel (see writer.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "fsutil.h"
#include "lock.h"
#include "notify.h"
#include "parse.h"
#include "reserve.h"
#include "sealsync.h"
#include "segment.h"
#include "tailmark.h"
#include "writer.h"

struct ch_writer {
	struct ch_channel *ch;
	struct ch_pubopts o;
	int lockfd;
	int segfd;
	struct ch_seghdr seg;		/* header of the active segment */
	int have_state;
	uint64_t end;			/* file position after the last record */
	uint64_t next_seq;
	int64_t last_ts;
	int64_t seg_first_ts;		/* time of its first record, or 0 */
	uint64_t start;			/* earliest offset, as last seen */
	int have_start;
	uint32_t format;		/* of the segments it writes */
	struct stat cfg_st;		/* channel.yaml when last read */
	int have_cfg_st;
	int64_t cfg_checked;		/* monotonic ns of the last look */
	struct ch_batch b;		/* queued records, framed */
	uint64_t *offs;
	size_t noffs, offs_cap;
	int dirty;			/* written but not fdatasynced */
	int64_t dirty_since;		/* monotonic ns of first unsynced write */
	uint64_t wb_from;		/* file position not yet sent to writeback */
	struct ch_reserve rsv;		/* blocks reserved past its end */
	uint64_t repaired;
	uint64_t total;		/* records written, all batches */
	int total_unsure;	/* total is a lower bound */
};

void
ch_pubopts_from_config(struct ch_pubopts *o, const struct ch_config *c)
{
	memset(o, 0, sizeof *o);
	o->sync = c->sync;
	o->sync_interval_ns = c->sync_interval_ns;
	o->max_bytes = c->max_bytes;
	o->on_full = c->on_full;
	o->max_record_bytes = c->max_record_bytes;
	o->segment_bytes = c->segment_bytes;
	o->segment_age_ns = c->segment_age_ns;
	o->format = (uint32_t)c->format;
}

int
ch_writer_open(struct ch_channel *ch, const struct ch_pubopts *o,
    struct ch_writer **wp, struct ch_error *err)
{
	struct ch_writer *w = calloc(1, sizeof *w);

	if (!w)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	w->ch = ch;
	w->o = *o;
	w->segfd = -1;
	w->format = o->format ? o->format : 1;
	if (o->atomic && w->format < 2) {
		free(w);
		return ch_err(err, CH_EXIT_FAIL, "atomic publishing needs a "
		    "format 2 or 3 channel (this one is format 1; set "
		    "'format: 3' in %s to upgrade it)", CH_CONFIG_FILE);
	}
	ch_batch_init(&w->b, w->format, o->max_record_bytes, o->atomic);
	w->cfg_checked = ch_mono_ns();
	if (ch_lock_open(ch->dirfd, CH_APPEND_LOCK, &w->lockfd, err) < 0) {
		free(w);
		return -1;
	}
	*wp = w;
	return 0;
}

size_t
ch_writer_pending(const struct ch_writer *w)
{
	return ch_batch_pending(&w->b);
}

uint64_t
ch_writer_total(const struct ch_writer *w, int *at_least)
{
	*at_least = w->total_unsure;
	return w->total;
}

uint64_t
ch_writer_repaired(const struct ch_writer *w)
{
	return w->repaired;
}

const uint64_t *
ch_writer_offsets(const struct ch_writer *w, size_t *n)
{
	*n = w->noffs;
	return w->offs;
}

int
ch_writer_add(struct ch_writer *w, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	return ch_batch_add(&w->b, meta, meta_len, payload, len, err);
}

int
ch_writer_add_split(struct ch_writer *w, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	return ch_batch_add_split(&w->b, buf, len, delim, meta, meta_len, used,
	    nrec, err);
}

int
ch_writer_add_split_kept(struct ch_writer *w, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	return ch_batch_add_split_kept(&w->b, buf, len, delim, meta, meta_len,
	    used, nrec, err);
}

static int
open_segment(struct ch_writer *w, uint64_t base, struct ch_error *err)
{
	int fd;
	struct ch_seghdr h;

	if (ch_segment_open(w->ch->dirfd, base, 1, &fd, &h, err) < 0)
		return ch_segment_must_exist(w->ch->dirfd, err);
	if (w->segfd >= 0)
		close(w->segfd);
	w->segfd = fd;
	w->seg = h;
	w->seg_first_ts = 0;
	w->wb_from = 0;
	ch_reserve_forget(&w->rsv);
	return 0;
}

/*
 * sync=periodic: start writeback of every WRITEBACK_BYTES written,
 * without waiting for it, so that the disk works while we append and the
 * periodic, final or rollover fdatasync finds little left to do.  Bulk
 * input then runs at about the speed of one write-and-fdatasync of the
 * same bytes (P2).  Under none nothing waits for the disk (a rollover
 * does not sync: see roll), so the kernel writes back in its own time.
 */
#define WRITEBACK_BYTES (4u << 20)

static void
kick_writeback(struct ch_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
	if (w->o.sync != CH_SYNC_PERIODIC || w->end < w->wb_from ||
	    w->end - w->wb_from < WRITEBACK_BYTES)
		return;
	(void)sync_file_range(w->segfd, (off_t)w->wb_from,
	    (off_t)(w->end - w->wb_from), SYNC_FILE_RANGE_WRITE);
	w->wb_from = w->end;
#else
	(void)w;
#endif
}

/* The last entry of the index: the newest segment. */
static int
last_entry(struct ch_writer *w, struct ch_idxent *last, struct ch_error *err)
{
	struct ch_index ix;

	if (ch_index_open(w->ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_get(&ix, ix.count - 1, last, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	return 0;
}

static int load(struct ch_writer *w, struct ch_error *err);

/*
 * The active segment's header says the segment before it was sealed
 * without fdatasync (a rollover under sync none): make that one durable,
 * and every one sealed so before it, and clear their flags (sealsync.h).
 * Before anything that promises the records before it: a sync under
 * periodic or always, a rollover under them.
 * A segment before it whose tail a power failure took keeps the flag on
 * disk for chcompact --repair; this writer goes on.
 */
static int
sync_sealed(struct ch_writer *w, int locked, struct ch_error *err)
{
	int rc = ch_sealsync_chain(w->ch, w->seg.base, locked, err);

	if (rc < 0)
		return -1;
	if (rc != CH_SEALSYNC_SYNCED)
		w->seg.flags &= ~CH_SEGF_PRED_UNSYNCED;
	return 0;
}

/* The header flags of a segment made after sealing the active one: under
 * sync none, the sealed segment is not synced and the new one says so;
 * otherwise it is synced first. */
static int
sealed_flags(struct ch_writer *w, uint32_t *flags, struct ch_error *err)
{
	*flags = 0;
	if (w->o.sync == CH_SYNC_NONE) {
		*flags = CH_SEGF_PRED_UNSYNCED;
		return 0;
	}
	if (ch_fdatasync(w->segfd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "fdatasync sealed segment");
	return 0;
}

/* Make sure segment `base` exists and is indexed, and make it active.
 * Finishes a rollover that we, or a crashed writer, started. */
static int
finish_roll(struct ch_writer *w, uint64_t base, uint64_t first_seq,
    uint32_t flags, struct ch_error *err)
{
	struct ch_idxent last;

	/* A rollover is durable in this order: the sealed segment (roll:
	 * fdatasynced, or under sync none the new segment's flag says it is
	 * not), the new segment and its name, its index entry.  Without
	 * that, a power loss could keep a new segment while losing the seal
	 * or the records before it with nothing to say they may be lost (a
	 * hole in the middle of the channel, or a segment nothing leads to),
	 * or keep a later index entry and lose an earlier one (a corrupt
	 * index).  The new header, flag included, is fdatasynced before its
	 * rename: it is on disk before any record in the new segment. */
	int64_t now = ch_now_ns();
	if (ch_segment_create(w->ch->dirfd, base, w->format, first_seq,
	    now > w->last_ts ? now : w->last_ts, flags, 1, 0666, err) < 0)
		return -1;
	if (open_segment(w, base, err) < 0)
		return -1;
	if (last_entry(w, &last, err) < 0)
		return -1;
	if (last.base < base) {
		struct ch_idxent e = { base, w->seg.first_seq, w->seg.created };
		if (ch_index_append(w->ch->dirfd, &e, 1, err) < 0)
			return -1;
	}
	return 0;
}

static int roll(struct ch_writer *w, int64_t now, struct ch_error *err);

/* Write format `format` from now on; the records queued are framed again.
 * An atomic batch stays in a framed format (2 or 3; framed again between
 * them, as one frame): format 1 has no frame to make it all or nothing. */
static int
adopt_format(struct ch_writer *w, uint32_t format, struct ch_error *err)
{
	if (format == w->format || (w->o.atomic && format < 2))
		return 0;
	if (ch_batch_reformat(&w->b, format, err) < 0)
		return -1;
	w->format = format;
	return 0;
}

/* Read channel.yaml again and write the format it names; one that names
 * none keeps the format of the active segment (channel(5), VERSIONING).
 * Should it not read (half saved by an editor, say), write `fallback`. */
static int
reread_format(struct ch_writer *w, uint32_t fallback, struct ch_error *err)
{
	struct ch_config c;
	struct ch_error ignored;
	struct stat st;

	if (fstatat(w->ch->dirfd, CH_CONFIG_FILE, &st,
	    AT_SYMLINK_NOFOLLOW) == 0 &&
	    ch_config_load(w->ch->dirfd, &c, &ignored) == 0) {
		w->cfg_st = st;
		w->have_cfg_st = 1;
		if (c.format != CH_FORMAT_UNSET)
			fallback = (uint32_t)c.format;
		else if (w->segfd >= 0)
			fallback = w->seg.format;
	}
	return adopt_format(w, fallback, err);
}

/*
 * A long-running writer (tail -F | chpub) learns that channel.yaml names
 * another format: it looks whether the file changed at most once a
 * second, so that batches of a line or two pay no system call for it.
 * The active segment is then sealed or rewritten by settle().
 */
#define CONFIG_LOOK_NS 1000000000

static int
look_at_config(struct ch_writer *w, struct ch_error *err)
{
	int64_t now = ch_mono_ns();
	struct stat st;

	if (now - w->cfg_checked < CONFIG_LOOK_NS)
		return 0;
	w->cfg_checked = now;
	if (fstatat(w->ch->dirfd, CH_CONFIG_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;	/* its readers will say what is wrong */
	if (w->have_cfg_st && st.st_dev == w->cfg_st.st_dev &&
	    st.st_ino == w->cfg_st.st_ino && st.st_size == w->cfg_st.st_size &&
	    st.st_mtim.tv_sec == w->cfg_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == w->cfg_st.st_mtim.tv_nsec &&
	    st.st_ctim.tv_sec == w->cfg_st.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == w->cfg_st.st_ctim.tv_nsec)
		return 0;
	return reread_format(w, w->format, err);
}

/* Where the tail mark says the valid records of the active segment end,
 * if it checks out: 1 with *t filled, 0. */
static int
marked_tail(struct ch_writer *w, struct ch_tail *t)
{
	struct stat st;

	return fstat(w->segfd, &st) == 0 && ch_tailmark_tail(w->lockfd,
	    w->segfd, &w->seg, (uint64_t)st.st_size, t) == 1;
}

/*
 * Cut the segment at pos, durably before anything is written there: a
 * power failure could otherwise bring the cut bytes back under the
 * records written after them, where a torn record's header would hide
 * them from readers (and the tail mark would lead the next writer past
 * them).  Cut and synced, what is lost there can only be zeros, which
 * readers report and chcompact --repair fills.  Rare: after a crash or a
 * failed write.
 */
static int
cut_tail(struct ch_writer *w, uint64_t pos)
{
	ch_reserve_forget(&w->rsv);
	if (ftruncate(w->segfd, (off_t)pos) < 0)
		return -1;
	if (!ch_broken_order("cut-no-sync") && ch_fdatasync(w->segfd) < 0)
		return -1;
	return 0;
}

/* Leave the tail mark at our end (lock held). */
static void
leave_mark(struct ch_writer *w)
{
	struct ch_tailmark m = { w->seg.base, w->seg.first_seq,
	    w->seg.created, w->seg.format, w->end, w->next_seq };

	/* Only a hint: one not written leaves the one before, which still
	 * names a boundary, and the next writer walks from further back. */
	(void)ch_tailmark_write(w->lockfd, &m);
}

/*
 * Bring the view of the active segment's tail up to date (lock held),
 * walking from `from`, a record boundary known for sure (NULL: the
 * header).  Never from a guess made at the end of the file: see
 * tailmark.h.
 */
static int
settle(struct ch_writer *w, const struct ch_tail *from, struct ch_error *err)
{
	struct stat st;
	struct ch_tail t;

	for (;;) {
		if (fstat(w->segfd, &st) < 0)
			return ch_err_sys(err, CH_EXIT_FAIL, "segment");
		if (from)
			t = *from;
		else
			memset(&t, 0, sizeof t);
		if (ch_segment_walk(w->segfd, &w->seg, (uint64_t)st.st_size,
		    &t, err) < 0)
			return -1;
		if (t.file_end < (uint64_t)st.st_size) {
			/* A torn tail: cut it off so the next record starts
			 * on a boundary. */
			if (cut_tail(w, t.file_end) < 0)
				return ch_err_sys(err, CH_EXIT_FAIL,
				    "repair torn tail");
			w->repaired += (uint64_t)st.st_size - t.file_end;
		}
		if (t.last_ts > w->last_ts)
			w->last_ts = t.last_ts;
		if (t.sealed) {
			uint64_t next = ch_seg_offset(w->seg.base, t.end);
			struct ch_idxent last;
			if (last_entry(w, &last, err) < 0)
				return -1;
			/* Another writer rolled over past it since our last
			 * batch, and compaction may have deleted the segments
			 * in between: go on in the newest.  Creating the next
			 * one again would put records where no reader looks. */
			if (last.base >= next)
				return load(w, err);
			/* A rollover someone left half done: finished as
			 * roll() does it, the segments sealed under none
			 * before it made durable under periodic or always
			 * (else the new segment, unflagged, would hide them
			 * from every later sync). */
			uint32_t flags;
			ch_reserve_release(w->segfd, t.file_end);
			if (w->o.sync != CH_SYNC_NONE &&
			    (w->seg.flags & CH_SEGF_PRED_UNSYNCED) &&
			    sync_sealed(w, 1, err) < 0)
				return -1;
			if (sealed_flags(w, &flags, err) < 0 ||
			    finish_roll(w, next, t.next_seq, flags, err) < 0)
				return -1;
			from = NULL;
			continue;
		}
		w->end = t.end;
		w->next_seq = t.next_seq;
		w->have_state = 1;
		if (w->seg.format == w->format)
			return 0;
		/* The active segment is in another format than ours: a newer
		 * writer upgraded the channel, or channel.yaml changed since
		 * we read it.  channel.yaml, read again, decides, so that a
		 * writer started before the change and newer ones do not seal
		 * each other's segment on every batch.  (Unreadable, the newer
		 * of the two formats: a writer never downgrades on its own.) */
		if (reread_format(w, w->seg.format > w->format ?
		    w->seg.format : w->format, err) < 0)
			return -1;
		if (w->seg.format == w->format)
			return 0;
		/* channel.yaml names another format: a segment holding
		 * records is sealed and the next one made in that format;
		 * one holding none just gets a new header. */
		if (t.end > CH_SEG_HDR)
			return roll(w, ch_now_ns(), err);
		if (ch_segment_reformat(w->ch->dirfd, w->seg.base, w->format,
		    w->seg.first_seq, w->seg.created, w->seg.flags, err) < 0 ||
		    open_segment(w, w->seg.base, err) < 0)
			return -1;
		from = NULL;
	}
}

/* The active segment, from the last index entry.  One that holds no
 * record and whose header a crash tore gets its header again, with the
 * flag that the segment before may be unsynced: nothing says it is not. */
static int
load(struct ch_writer *w, struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_tail t;
	struct stat st;
	char name[CH_SEG_NAME_LEN + 1];

	if (ch_index_open(w->ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_get(&ix, ix.count - 1, &e, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	if (open_segment(w, e.base, err) < 0) {
		ch_seg_name(name, e.base);
		if (err->code != CH_EXIT_DATAERR ||
		    fstatat(w->ch->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_size > CH_SEG_HDR ||
		    ch_segment_reformat(w->ch->dirfd, e.base, w->format,
		    e.first_seq, e.created, CH_SEGF_PRED_UNSYNCED, err) < 0 ||
		    open_segment(w, e.base, err) < 0)
			return -1;
	}
	return settle(w, marked_tail(w, &t) ? &t : NULL, err);
}

static int
refresh(struct ch_writer *w, struct ch_error *err)
{
	struct stat st;

	if (!w->have_state)
		return load(w, err);
	if (fstat(w->segfd, &st) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "segment");
	/* Records appended to a segment of a channel removed under us
	 * (rm -rf) would be acknowledged and lost. */
	if (st.st_nlink == 0 && ch_dir_removed(w->ch->dirfd))
		return ch_err(err, CH_EXIT_NOINPUT, "channel removed");
	/* While the segment holds only its header, another writer may have
	 * written that again in another format (a format change,
	 * ch_segment_reformat), with or without records after it (it may
	 * have found the channel full, or been chcompact sealing by age):
	 * go on with the header as it is now, not the one we kept. */
	if (w->end == CH_SEG_HDR) {
		struct ch_seghdr h;
		if (ch_segment_header(w->segfd, w->seg.base, &h, err) < 0)
			return -1;
		if (h.first_seq != w->seg.first_seq)
			return load(w, err);
		w->seg = h;
	}
	if ((uint64_t)st.st_size == w->end && w->seg.format == w->format)
		return 0;	/* nobody wrote since our last batch */
	/* Others wrote after our last batch: walk what they wrote, from the
	 * tail mark the last of them left if it is not behind our end (it
	 * was written while this process lived: no power failure can have
	 * lost what it counts), else from our end, still a boundary unless
	 * a repair cut the segment short meanwhile (then start over as a new
	 * writer does).  So the walk covers one batch, not every batch of
	 * every other writer. */
	uint64_t due;
	struct ch_tail from = { .end = w->end, .file_end = w->end,
	    .next_seq = w->next_seq, .last_ts = w->last_ts };
	struct ch_tail marked;
	if (marked_tail(w, &marked) && marked.file_end > w->end) {
		if (marked.last_ts < w->last_ts)
			marked.last_ts = w->last_ts;
		return settle(w, &marked, err);
	}
	if (w->end > CH_SEG_HDR && ((uint64_t)st.st_size < w->end ||
	    ch_segment_seq_before(w->segfd, &w->seg, w->end, &due) != 0 ||
	    due != w->next_seq))
		return load(w, err);
	return settle(w, w->end > CH_SEG_HDR ? &from : NULL, err);
}

static int64_t
first_ts(struct ch_writer *w)
{
	int type;
	int64_t ts;

	if (w->seg_first_ts == 0 && w->end > CH_SEG_HDR &&
	    ch_segment_peek(w->segfd, &w->seg, CH_SEG_HDR, &type, &ts) == 0 &&
	    type == CH_REC_DATA)
		w->seg_first_ts = ts;
	return w->seg_first_ts;
}

/* Seal the active segment and start the next (lock held). */
static int
roll(struct ch_writer *w, int64_t now, struct ch_error *err)
{
	unsigned char buf[CH_SEAL_MAX], *seal;
	struct ch_seal s;
	uint32_t len, flags;
	int64_t ts = now > w->last_ts ? now : w->last_ts;

	/* Under periodic or always the new segment will say that all before
	 * it is durable: the segments sealed by rollovers under none too.
	 * Under none, no wait for the disk, and the flags chain up. */
	if (w->o.sync != CH_SYNC_NONE &&
	    (w->seg.flags & CH_SEGF_PRED_UNSYNCED) && sync_sealed(w, 1, err) < 0)
		return -1;

	s.records = w->next_seq - w->seg.first_seq;
	s.first_ts = first_ts(w);
	s.last_ts = w->last_ts;
	seal = ch_seal_make(buf, &w->seg, w->next_seq, ts, &s, &len);
	if (ch_pwrite_full(w->segfd, seal, len, (off_t)w->end) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "seal segment");
		if (cut_tail(w, w->end) < 0)
			w->have_state = 0;
		return -1;
	}
	/* Sealed, it never grows: the blocks reserved past the seal go
	 * back (before sealed_flags syncs it, under periodic or always). */
	ch_reserve_release(w->segfd, w->end + len);
	/* A sealed segment is whole on disk before its successor exists
	 * there, or the successor says it may not be (see finish_roll). */
	if (sealed_flags(w, &flags, err) < 0)
		return -1;
	uint64_t base = ch_seg_offset(w->seg.base, w->end);
	if (finish_roll(w, base, w->next_seq, flags, err) < 0) {
		w->have_state = 0;	/* the next flush finishes it */
		return -1;
	}
	w->end = CH_SEG_HDR;
	w->dirty = 0;		/* the sealed segment was synced, or is the
				 * new one's to sync (its flag) */
	return 0;
}

static int
need_roll(struct ch_writer *w, uint64_t next_total, int64_t now)
{
	if (w->end <= CH_SEG_HDR)
		return 0;	/* never seal an empty segment */
	if (w->end + next_total > w->o.segment_bytes)
		return 1;
	if (w->o.segment_age_ns > 0) {
		/* ch_age: a time from the file may be anything (no
		 * overflow), and one ahead of the clock is age 0. */
		int64_t t0 = first_ts(w);
		if (t0 && ch_age(now, t0) >= w->o.segment_age_ns)
			return 1;
	}
	return 0;
}

/* Record bytes the channel may still take (UINT64_MAX: no limit). */
static int
room(struct ch_writer *w, uint64_t *out, int fresh, struct ch_error *err)
{
	uint64_t used;

	if (w->o.max_bytes == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	if (!w->have_start || fresh) {
		struct ch_start s;
		if (ch_channel_start(w->ch, &s, err) < 0)
			return -1;
		w->start = s.offset;
		w->have_start = 1;
	}
	used = ch_seg_offset(w->seg.base, w->end) - w->start;
	*out = used >= w->o.max_bytes ? 0 : w->o.max_bytes - used;
	return 0;
}

static int
lock(struct ch_writer *w, struct ch_error *err)
{
	if (ch_flock(w->lockfd, LOCK_EX, CH_LOCK_WAIT) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_APPEND_LOCK);
	return 0;
}

static void
unlock(struct ch_writer *w)
{
	flock(w->lockfd, LOCK_UN);
}

/* The channel is full: fail, or wait for chcompact to make room.  Returns
 * with the lock held unless *locked was cleared. */
static int
full(struct ch_writer *w, uint64_t need, int *locked, struct ch_error *err)
{
	uint64_t used = ch_seg_offset(w->seg.base, w->end) - w->start;
	uint64_t active = ch_seg_offset(w->seg.base, w->end) - w->seg.base;

	if (need > w->o.max_bytes)
		return ch_err(err, CH_EXIT_TEMPFAIL,
		    "channel full: a record of %llu bytes can never fit in "
		    "max_bytes (%llu)", (unsigned long long)need,
		    (unsigned long long)w->o.max_bytes);
	/* Only sealed segments are ever deleted: when the active one alone
	 * keeps the channel full (max_bytes not above segment_bytes), no
	 * compaction could make room.  Seal it, so that it goes once it is
	 * consumed. */
	if (active > 0 && active + need > w->o.max_bytes &&
	    roll(w, ch_now_ns(), err) < 0)
		return -1;
	if (w->o.on_full != CH_FULL_BLOCK)
		return ch_err(err, CH_EXIT_TEMPFAIL,
		    "channel full (segments hold %llu bytes, max_bytes is "
		    "%llu); run chcompact, or use --on-full=block",
		    (unsigned long long)used, (unsigned long long)w->o.max_bytes);
	unlock(w);
	*locked = 0;
	/* Wait for a segment to be deleted (or a little time to pass). */
	ch_notify_wait_dir(w->ch->dirfd, 200000000);
	if (lock(w, err) < 0)
		return -1;
	*locked = 1;
	return refresh(w, err);
}

/* The next n records' offsets (positions in the segment, as
 * ch_batch_take left them) join ch_writer_offsets' as channel offsets. */
static void
offsets_written(struct ch_writer *w, uint64_t n)
{
	if (!w->o.want_offsets)
		return;
	for (uint64_t i = 0; i < n; i++)
		w->offs[w->noffs + i] = ch_seg_offset(w->seg.base,
		    w->offs[w->noffs + i]);
	w->noffs += n;
}

/*
 * The write of piece pc failed, maybe part way (the disk filled up after
 * a pwritev wrote some of it).  Frames it wrote whole may have been read
 * already: a reader delivers a valid frame and commits past it, so
 * cutting it off would take back records delivered, and leave that
 * subscriber's offset off any record boundary once the next batch is
 * written there.  So they stay, published, as after a crash at that
 * point, and only the torn rest is cut (if that fails too, the next
 * writer cuts it).  They are found the way a reader finds them: frame
 * after frame from where the piece began (a guess from the end of the
 * file could take a record inside a torn one's payload for a whole one).
 * Returns how many records stay; their offsets join ch_writer_offsets'.
 * If the walk cannot finish, more may: *unsure is then its errno, and
 * nothing is cut.
 */
static uint64_t
keep_whole_frames(struct ch_writer *w, const struct ch_piece *pc,
    int *unsure)
{
	struct stat st;
	struct ch_segcur c;
	struct ch_rec r;
	uint64_t end = w->end, seq = w->next_seq, upto = w->next_seq;
	int k = CH_CUR_END;

	*unsure = 0;
	if (fstat(w->segfd, &st) < 0) {
		*unsure = errno;
	} else if ((uint64_t)st.st_size > w->end) {
		memset(&c, 0, sizeof c);
		ch_segcur_init(&c, w->segfd, &w->seg, w->end,
		    (uint64_t)st.st_size);
		while (seq - w->next_seq < pc->nrec &&
		    (k = ch_segcur_next(&c, &r)) == CH_CUR_OK &&
		    r.h.seq == seq && r.h.type != CH_REC_SEAL) {
			seq += r.nseq;
			if (!c.left) {	/* the end of a frame */
				end = c.pos;
				upto = seq;
			}
		}
		if (k == CH_CUR_IOERR)
			*unsure = errno ? errno : EIO;
		ch_segcur_free(&c);
	}
	uint64_t kept = upto - w->next_seq;
	if (kept > pc->nrec) {	/* not this piece's: keep none */
		kept = 0;
		end = w->end;
	}
	offsets_written(w, kept);
	/* If the walk could not finish (a read failed, out of memory),
	 * frames past where it stopped may be whole and read already:
	 * nothing is cut.  The next writer's walk finds them and cuts the
	 * rest, as it does if this cut fails. */
	if (!*unsure && cut_tail(w, end) < 0)
		w->have_state = 0;
	return kept;
}

/* Append to err's message that the first n records of the batch are in
 * the channel. */
static void
tell_written(struct ch_error *err, uint64_t n)
{
	size_t len = strlen(err->msg);

	snprintf(err->msg + len, sizeof err->msg - len, " (the first %llu "
	    "record%s of the batch %s written whole, and stay%s published)",
	    (unsigned long long)n, ch_plural(n), n == 1 ? "was" : "were",
	    n == 1 ? "s" : "");
}

int
ch_writer_flush(struct ch_writer *w, struct ch_error *err)
{
	size_t nrec = ch_batch_records(&w->b);
	uint64_t written = 0;	/* records of the batch written so far */
	int rc = -1, locked = 0, told = 0;

	w->noffs = 0;
	if (nrec == 0)
		return 0;
	if (w->o.want_offsets && w->offs_cap < nrec) {
		uint64_t *no = realloc(w->offs, nrec * sizeof *no);
		if (!no) {
			ch_batch_clear(&w->b);
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		}
		w->offs = no;
		w->offs_cap = nrec;
	}
	if (look_at_config(w, err) < 0 || lock(w, err) < 0)
		goto out;
	locked = 1;
	if (refresh(w, err) < 0)
		goto out_unlock;
	while (ch_batch_records(&w->b)) {
		int64_t now = ch_now_ns();
		int64_t ts = now > w->last_ts ? now : w->last_ts;
		if (ts < w->seg.created)
			ts = w->seg.created;	/* never before the segment */
		uint64_t first = ch_batch_first(&w->b, &w->seg, w->next_seq, ts);
		uint64_t avail;

		if (need_roll(w, first, now)) {
			if (roll(w, now, err) < 0)
				goto out_unlock;
			continue;
		}
		if (room(w, &avail, 0, err) < 0)
			goto out_unlock;
		if (first > avail) {
			if (room(w, &avail, 1, err) < 0)
				goto out_unlock;
			if (first > avail) {
				if (full(w, first, &locked, err) < 0)
					goto out_unlock;
				continue;
			}
		}
		/* Take what fits in this segment and the room, numbered and
		 * timed on the way. */
		uint64_t space = w->end < w->o.segment_bytes ?
		    w->o.segment_bytes - w->end : 0;
		struct ch_piece pc;
		ch_batch_take(&w->b, &w->seg, w->next_seq, ts,
		    space < avail ? space : avail, w->end,
		    w->o.want_offsets ? w->offs + w->noffs : NULL, &pc);
		/* Not under sync always: the fdatasync after each batch would
		 * also convert the reserved blocks it wrote (ext4: an extent
		 * change, a fifth more latency for a record alone: P4). */
		if (w->o.sync != CH_SYNC_ALWAYS)
			ch_reserve_ahead(&w->rsv, w->segfd, CH_SEG_HDR, w->end,
			    w->end + pc.len, w->o.segment_bytes);
		if (ch_pwritev_full(w->segfd, pc.iov, pc.niov,
		    (off_t)w->end) < 0) {
			int e = errno, unsure;
			written += keep_whole_frames(w, &pc, &unsure);
			if (unsure)
				ch_err(err, CH_EXIT_FAIL, "write segment: %s "
				    "(the records of the batch written whole "
				    "stay published: at least the first %llu; "
				    "reading back the rest failed: %s)",
				    strerror(e), (unsigned long long)written,
				    strerror(unsure));
			else
				ch_err(err, CH_EXIT_FAIL, "write segment: %s",
				    strerror(e));
			told = w->total_unsure = unsure != 0;
			w->have_state = 0;
			goto out_unlock;
		}
		ch_batch_consume(&w->b);
		written += pc.nrec;
		offsets_written(w, pc.nrec);
		if (!w->dirty) {
			w->dirty = 1;
			w->dirty_since = ch_mono_ns();
		}
		if (w->seg_first_ts == 0 && w->end == CH_SEG_HDR)
			w->seg_first_ts = ts;
		w->end += pc.len;
		w->next_seq += pc.nrec;
		w->last_ts = ts;
		kick_writeback(w);
	}
	leave_mark(w);
	rc = 0;
out_unlock:
	if (locked)
		unlock(w);
	/* A rollover or a wait for room that failed after part of the
	 * batch went into the segment before: a caller that retries the
	 * whole batch would publish that part twice. */
	if (rc < 0 && written && !told)
		tell_written(err, written);
	w->total += written;
out:
	ch_batch_clear(&w->b);
	if (rc == 0 && w->o.sync == CH_SYNC_ALWAYS)
		rc = ch_writer_sync(w, err);
	else if (rc == 0 && w->o.sync == CH_SYNC_PERIODIC &&
	    ch_writer_sync_due(w) == 0)
		rc = ch_writer_sync(w, err);
	return rc;
}

int
ch_writer_seal_aged(struct ch_writer *w, int64_t min_age_ns, int *sealed,
    struct ch_error *err)
{
	int rc = -1;

	*sealed = 0;
	if (lock(w, err) < 0)
		return -1;
	if (refresh(w, err) < 0)
		goto out;
	int64_t now = ch_now_ns(), t0 = first_ts(w);
	if (w->end > CH_SEG_HDR && t0 && ch_age(now, t0) >= min_age_ns) {
		if (roll(w, now, err) < 0)
			goto out;
		leave_mark(w);
		*sealed = 1;
	}
	rc = 0;
out:
	unlock(w);
	return rc;
}

int64_t
ch_writer_sync_due(const struct ch_writer *w)
{
	if (!w->dirty || w->o.sync != CH_SYNC_PERIODIC)
		return -1;
	int64_t left = ch_ns_add(w->dirty_since, w->o.sync_interval_ns) -
	    ch_mono_ns();
	return left > 0 ? left : 0;
}

int
ch_writer_sync(struct ch_writer *w, struct ch_error *err)
{
	if (!w->dirty || w->segfd < 0)
		return 0;
	/* Every record before ours too: those of a segment sealed without
	 * a sync. */
	if ((w->seg.flags & CH_SEGF_PRED_UNSYNCED) && sync_sealed(w, 0, err) < 0)
		return -1;
	if (ch_fdatasync(w->segfd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "fdatasync");
	w->dirty = 0;
	return 0;
}

int
ch_writer_close(struct ch_writer *w, struct ch_error *err)
{
	int rc = 0;

	if (!w)
		return 0;
	if (w->o.sync != CH_SYNC_NONE)
		rc = ch_writer_sync(w, err);
	/* Under sync none, close is where a network file system reports
	 * that the records written since could not be stored. */
	if (w->segfd >= 0 && close(w->segfd) < 0 && rc == 0)
		rc = ch_err_sys(err, CH_EXIT_FAIL, "close segment");
	close(w->lockfd);
	ch_batch_free(&w->b);
	free(w->offs);
	free(w);
	return rc;
}
