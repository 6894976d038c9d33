/* check.c - integrity check and repair (see check.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fsutil.h"
#include "index.h"
#include "journal.h"
#include "lock.h"
#include "reader.h"
#include "repair.h"
#include "sealsync.h"
#include "segment.h"
#include "subscriber.h"
#include "writer.h"

struct ctx {
	struct ch_channel *ch;
	int repair;
	ch_report_fn report;
	void *rctx;
	struct ch_check_result *res;
	int torn;		/* the active segment has a torn tail */
	uint64_t torn_base, torn_pos;	/* ... in that segment, from there */
	uint64_t torn_prev, torn_seq;	/* the record before it, the number due */
	int rollover;		/* a rollover was interrupted after the seal */
	int unindexed;		/* ... and left its segment, unindexed_base */
	uint64_t unindexed_base;
	int sealed_unindexed;	/* ... which is sealed too */
	struct ch_progress *progress;
	uint64_t first_seq;	/* of the earliest record, for progress */
};

static void say(struct ctx *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(struct ctx *c, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level == CH_REPORT_WARN) {
		c->res->problems++;
		c->res->left++;
	}
	if (!c->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->report(c->rctx, level, msg);
}

static void
vfixed(struct ctx *c, int problem, const char *fmt, va_list ap)
{
	char msg[1024];

	/* A problem said (say) and repaired is no longer left; a repair of
	 * what was no problem (an interrupted rollover) counts for none. */
	if (problem) {
		c->res->repaired++;
		c->res->left--;
	}
	if (!c->report)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	c->report(c->rctx, CH_REPORT_FIXED, msg);
}

/* One problem reported with say(c, CH_REPORT_WARN, ...) is repaired. */
static void
fixed(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fixed(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfixed(c, 1, fmt, ap);
	va_end(ap);
}

/* Something that was no problem is put right all the same. */
static void
finished(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
finished(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfixed(c, 0, fmt, ap);
	va_end(ap);
}

/*
 * --repair of damaged bytes d between two valid records of segment `name`
 * (header h): write over them one gap record of exactly their length
 * (channel(5), Gap records), numbered d->lost (the number due there) and
 * standing for the records up to d->next_seq, the number of the record
 * after; under append.lock, and only if they are still as the check saw
 * them (repair.h).  Damage that cannot be a run of lost records (unknown
 * or doubtful numbering, too short) is left, and said.  Returns 1 if the
 * gap was written, 0 if not, 2 if the segment is gone (deleted since the
 * check opened it), -1 on error.
 */
static int
fill_gap(struct ctx *c, const char *name, const struct ch_seghdr *h,
    const struct ch_damage *d, int doubtful, struct ch_error *err)
{
	uint64_t len = d->next - d->pos, off = ch_seg_offset(h->base, d->pos);
	uint64_t lost = d->lost, next_seq = d->next_seq;
	int64_t ts = d->min_ts > h->created ? d->min_ts : h->created;
	unsigned char *buf;
	int rc;

	if (doubtful) {
		say(c, CH_REPORT_UNFIXED, "%s: the damage at offset %llu is in a "
		    "segment whose record numbers disagree with the channel's; "
		    "left as it is", name, (unsigned long long)off);
		return 0;
	}
	if (lost == UINT64_MAX || next_seq == UINT64_MAX || next_seq < lost) {
		say(c, CH_REPORT_UNFIXED, "%s: the damage at offset %llu is not "
		    "where whole records were lost (their numbers do not add "
		    "up); left as it is", name, (unsigned long long)off);
		return 0;
	}
	if (next_seq == lost) {
		say(c, CH_REPORT_UNFIXED, "%s: the damage at offset %llu stands "
		    "for no lost record (such as a duplicate of one): no gap "
		    "record can replace it; left as it is", name,
		    (unsigned long long)off);
		return 0;
	}
	if (len > UINT32_MAX) {	/* a gap's length field has 32 bits */
		say(c, CH_REPORT_UNFIXED, "%s: the damage at offset %llu is too "
		    "long for one gap record (%llu bytes); left as it is", name,
		    (unsigned long long)off, (unsigned long long)len);
		return 0;
	}
	if (!(buf = malloc((size_t)len)))
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	if (ch_gap_make(buf, h, len, lost, ts, next_seq - lost) < 0) {
		say(c, CH_REPORT_UNFIXED, "%s: the damage at offset %llu (%llu "
		    "bytes) cannot be one gap record standing for %llu lost "
		    "record%s: too short for its header or for that many "
		    "records; left as it is", name, (unsigned long long)off,
		    (unsigned long long)len,
		    (unsigned long long)(next_seq - lost),
		    next_seq - lost == 1 ? "" : "s");
		free(buf);
		return 0;
	}
	rc = ch_repair_gap(c->ch, h, d, buf, err);
	free(buf);
	if (rc == CH_REPAIR_DONE) {
		fixed(c, "%s: replaced %llu damaged bytes at offset %llu with a "
		    "gap record: %llu record%s lost", name,
		    (unsigned long long)len, (unsigned long long)off,
		    (unsigned long long)(next_seq - lost),
		    next_seq - lost == 1 ? "" : "s");
		return 1;
	}
	if (rc == CH_REPAIR_GONE) {
		say(c, CH_REPORT_UNFIXED, "%s: deleted while checking (by "
		    "compaction): nothing left to repair there", name);
		return 2;
	}
	if (rc == CH_REPAIR_CHANGED)
		say(c, CH_REPORT_UNFIXED, "%s: the data at offset %llu changed "
		    "while checking (a writer wrote there); check again", name,
		    (unsigned long long)off);
	return rc < 0 ? -1 : 0;
}

/* --repair of the torn tail the check found: cut it where the check saw
 * it start, under append.lock, if a writer would cut it there now
 * (repair.h).  Returns 0 if cut (or a writer cut it), 1 if left, -1 on
 * error. */
static int
cut_tail(struct ctx *c, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	uint64_t cut, off = ch_seg_offset(c->torn_base, c->torn_pos);
	int rc = ch_repair_tail(c->ch, c->torn_base, c->torn_prev,
	    c->torn_pos, c->torn_seq, &cut, err);

	ch_seg_name(name, c->torn_base);
	if (rc == CH_REPAIR_DONE) {
		fixed(c, "cut a torn tail of %llu bytes at offset %llu",
		    (unsigned long long)cut, (unsigned long long)off);
		return 0;
	}
	if (rc == CH_REPAIR_BY_WRITER) {
		fixed(c, "the torn tail is gone (a writer cut it meanwhile)");
		return 0;
	}
	if (rc == CH_REPAIR_GONE)
		say(c, CH_REPORT_UNFIXED, "%s: deleted while checking (by "
		    "compaction): nothing left to repair there", name);
	else if (rc == CH_REPAIR_CHANGED)
		say(c, CH_REPORT_UNFIXED, "%s: the torn tail at offset %llu "
		    "changed while checking (a writer cut it, or wrote); check "
		    "again", name, (unsigned long long)off);
	return rc < 0 ? -1 : 1;
}

/*
 * The newest segment, open on fd, ended in an incomplete record when it
 * was size bytes long.  Writers append under append.lock: if it is held,
 * or the file has changed since, that was a write in progress, not a
 * torn tail.
 */
static int
writing(struct ctx *c, int fd, uint64_t size)
{
	struct stat st;
	int busy = 0;
	int lockfd = ch_open_file(c->ch->dirfd, CH_APPEND_LOCK, O_RDONLY, 0);

	if (lockfd >= 0) {
		busy = ch_flock(lockfd, LOCK_SH, CH_LOCK_NOWAIT) < 0;
		close(lockfd);
	}
	return busy || (fstat(fd, &st) == 0 && (uint64_t)st.st_size != size);
}

/*
 * The segment after segment `base` in the index, if its header says that
 * `base` was sealed without fdatasync (a rollover under sync none): 1
 * with its header in *nh, else 0.
 */
static int
successor_flagged(struct ctx *c, uint64_t base, struct ch_seghdr *nh)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_error ignored;
	uint64_t i;
	int fd, rc = 0;

	if (ch_index_open(c->ch->dirfd, &ix, &ignored) < 0)
		return 0;
	if (ch_index_find(&ix, base, &i, &ignored) == 0 && i + 1 < ix.count &&
	    ch_index_get(&ix, i + 1, &e, &ignored) == 0 &&
	    ch_segment_open(c->ch->dirfd, e.base, 0, &fd, nh, &ignored) == 0) {
		rc = (nh->flags & CH_SEGF_PRED_UNSYNCED) != 0;
		close(fd);
	}
	ch_index_close(&ix);
	return rc;
}

/*
 * Segment `name` (base) lost its tail from file position pos, where
 * record `lost` was due, and its successor (header nh) says it was sealed
 * without fdatasync: a power failure took what the kernel had not yet
 * written, as channel(5) allows under sync none.  Said as one problem;
 * --repair writes a gap record for the records lost and the seal, and
 * clears the flag.  Returns 0, or -1 on an error.
 */
static int
lost_tail(struct ctx *c, const char *name, uint64_t base, uint64_t pos,
    uint64_t lost, const struct ch_seghdr *nh, struct ch_error *err)
{
	uint64_t off = ch_seg_offset(base, pos), n = nh->first_seq - lost;
	uint64_t count;

	if (n)
		say(c, CH_REPORT_WARN, "%s: lost its tail from offset %llu "
		    "(%llu record%s): it was sealed without fdatasync (sync: "
		    "none) and a power failure took the rest; repairable: "
		    "chcompact --repair", name, (unsigned long long)off,
		    (unsigned long long)n, n == 1 ? "" : "s");
	else
		say(c, CH_REPORT_WARN, "%s: lost its seal at offset %llu: it "
		    "was sealed without fdatasync (sync: none) and a power "
		    "failure took it; repairable: chcompact --repair", name,
		    (unsigned long long)off);
	if (!c->repair)
		return 0;
	int rc = ch_repair_lost_tail(c->ch, base, pos, lost, nh, &count, err);
	if (rc == CH_REPAIR_DONE && count == 0)
		fixed(c, "%s: wrote its seal again at offset %llu", name,
		    (unsigned long long)off);
	else if (rc == CH_REPAIR_DONE)
		fixed(c, "%s: wrote a gap record for the %llu record%s lost "
		    "from offset %llu, and the seal", name,
		    (unsigned long long)count, count == 1 ? "" : "s",
		    (unsigned long long)off);
	else if (rc == -2)
		say(c, CH_REPORT_UNFIXED, "%s: the %llu bytes lost from offset "
		    "%llu cannot be one gap record standing for %llu lost "
		    "record%s; left as it is", name,
		    (unsigned long long)(nh->base - off), (unsigned long long)off,
		    (unsigned long long)count, count == 1 ? "" : "s");
	else if (rc == CH_REPAIR_GONE)
		say(c, CH_REPORT_UNFIXED, "%s: deleted while checking (by "
		    "compaction): nothing left to repair there", name);
	else if (rc == CH_REPAIR_CHANGED)
		say(c, CH_REPORT_UNFIXED, "%s: changed while checking; check "
		    "again", name);
	return rc == -1 ? -1 : 0;
}

/* Verify one segment.  *expect_seq is the sequence number its first
 * record must have (UINT64_MAX: unknown); on return, the next one.
 * *next_base gets the next segment's base from the seal (0 if none). */
static int
check_segment(struct ctx *c, const struct ch_idxent *e, int last,
    uint64_t *expect_seq, int64_t *last_ts, uint64_t *next_base,
    struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_segcur cur = { 0 };
	struct ch_seghdr h;
	struct ch_rec r;
	struct stat st;
	uint64_t records = 0, prev = 0, end_pos = 0, end_seq = UINT64_MAX;
	int fd, rc, sealed = 0, doubtful = 0, gone = 0, damaged_end = 0;
	struct ch_seghdr nh;

	*next_base = 0;
	ch_seg_name(name, e->base);
	if (ch_segment_open(c->ch->dirfd, e->base, 0, &fd, &h, err) < 0) {
		/* Gone since we looked for it: compaction deleted it. */
		if (err->code != CH_EXIT_NOINPUT || last)
			say(c, CH_REPORT_WARN, "%s", err->msg);
		*expect_seq = UINT64_MAX;
		return 0;
	}
	/* A header that disagrees on its first number makes the numbering
	 * of its records doubtful: no gap is counted from it. */
	if (e->first_seq != UINT64_MAX && h.first_seq != e->first_seq) {
		say(c, CH_REPORT_WARN, "%s: header says first record %llu, the "
		    "index says %llu", name, (unsigned long long)h.first_seq,
		    (unsigned long long)e->first_seq);
		doubtful = 1;
	}
	if (*expect_seq != UINT64_MAX && h.first_seq != *expect_seq) {
		say(c, CH_REPORT_WARN, "%s: starts at record %llu, expected "
		    "%llu (records missing or duplicated)", name,
		    (unsigned long long)h.first_seq,
		    (unsigned long long)*expect_seq);
		doubtful = 1;
	}
	*expect_seq = h.first_seq;
	/* The segment before was checked (and its lost tail repaired). */
	if ((h.flags & CH_SEGF_PRED_UNSYNCED) && c->repair) {
		rc = ch_sealsync(c->ch, e->base, 0, err);
		if (rc < 0) {
			close(fd);
			return -1;
		}
		if (rc == CH_SEALSYNC_CLEAR)
			say(c, CH_REPORT_INFO, "%s: made the segment before it, "
			    "sealed without fdatasync (sync: none), durable",
			    name);
	} else if (h.flags & CH_SEGF_PRED_UNSYNCED) {
		say(c, CH_REPORT_INFO, "%s: the segment before it was sealed "
		    "without fdatasync (sync: none); a sync under periodic "
		    "or always, an offset commit or chcompact makes it "
		    "durable", name);
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "%s", name);
	}
	ch_segcur_init(&cur, fd, &h, CH_SEG_HDR, (uint64_t)st.st_size);
	for (;;) {
		uint64_t here = ch_seg_offset(e->base, cur.pos);
		rc = ch_segcur_next(&cur, &r);
		if (rc == CH_CUR_IOERR) {
			ch_segcur_free(&cur);
			close(fd);
			return ch_err_sys(err, CH_EXIT_FAIL, "read %s", name);
		}
		if (rc == CH_CUR_OK && sealed) {
			say(c, CH_REPORT_WARN, "%s: data after the seal at offset "
			    "%llu", name, (unsigned long long)here);
			break;
		}
		/* Valid on its own but not the record due (a duplicate, say):
		 * not put there by a writer, so damage where it stands, as
		 * readers see it; the number due stays the one due. */
		int oos = rc == CH_CUR_OK && r.h.seq != *expect_seq;
		uint64_t oos_seq = oos ? r.h.seq : 0;
		if (oos) {
			ch_segcur_seek(&cur, r.pos);
			rc = CH_CUR_BAD;
		}
		if (rc == CH_CUR_OK) {
			prev = r.pos;
			if (r.h.type == CH_REC_GAP) {
				say(c, CH_REPORT_INFO, "%s: %llu record%s lost at "
				    "offset %llu (a gap record)", name,
				    (unsigned long long)r.nseq,
				    r.nseq == 1 ? "" : "s",
				    (unsigned long long)here);
				records += r.nseq;
				*expect_seq = r.h.seq + r.nseq;
				*last_ts = r.h.ts > *last_ts ? r.h.ts : *last_ts;
				continue;
			}
			if (r.h.type == CH_REC_SEAL) {
				struct ch_seal s;
				ch_seal_decode(r.payload, &s);
				if (s.records != records)
					say(c, CH_REPORT_WARN, "%s: seal counts %llu "
					    "records, the segment holds %llu", name,
					    (unsigned long long)s.records,
					    (unsigned long long)records);
				sealed = 1;
				*next_base = here;
				*expect_seq = r.h.seq;
				continue;
			}
			if (r.h.ts < *last_ts)
				say(c, CH_REPORT_WARN, "%s: record at offset %llu "
				    "goes back in time", name,
				    (unsigned long long)here);
			*last_ts = r.h.ts;
			*expect_seq = r.h.seq + r.nseq;
			records++;
			c->res->records++;
			ch_progress_update(c->progress, here,
			    c->first_seq + c->res->records);
			continue;
		}
		if (rc == CH_CUR_END && cur.pos == cur.size)
			break;
		/* Invalid bytes at cur.pos, or a record (frame) claiming to
		 * run past the end of the file.  The latter is a write in
		 * progress only at the very end of the newest segment: if the
		 * next record stands after it, its length field is damaged,
		 * as the reader sees it (reader.c, stuck). */
		char what[160];
		if (oos)
			snprintf(what, sizeof what, "record at offset %llu has "
			    "number %llu, expected %llu", (unsigned long long)here,
			    (unsigned long long)oos_seq,
			    (unsigned long long)*expect_seq);
		else
			snprintf(what, sizeof what, "corrupt record at offset %llu",
			    (unsigned long long)here);
		uint64_t next, next_seq;
		int found = ch_segcur_resync(&cur, *expect_seq, *last_ts,
		    &next, &next_seq);
		if (found < 0) {
			ch_segcur_free(&cur);
			close(fd);
			return ch_err_sys(err, CH_EXIT_FAIL, "read %s", name);
		}
		if (found) {
			uint64_t lost = *expect_seq;
			if (lost != UINT64_MAX)
				say(c, CH_REPORT_WARN, "%s: %s (%llu bytes up to "
				    "the next valid record, %llu record%s lost)",
				    name, what, (unsigned long long)(next - cur.pos),
				    (unsigned long long)(next_seq - lost),
				    next_seq - lost == 1 ? "" : "s");
			else
				say(c, CH_REPORT_WARN, "%s: %s (%llu bytes up to "
				    "the next valid record)", name, what,
				    (unsigned long long)(next - cur.pos));
			/* Continue checking numbering from the next record. */
			*expect_seq = next_seq;
			if (c->repair) {
				struct ch_damage d = { e->base, prev, cur.pos,
				    next, lost, next_seq, *last_ts };
				int filled = fill_gap(c, name, &h, &d, doubtful,
				    err);
				if (filled < 0) {
					ch_segcur_free(&cur);
					close(fd);
					return -1;
				}
				if (filled == 2) {	/* deleted meanwhile */
					gone = 1;
					*expect_seq = UINT64_MAX;
					break;
				}
				if (filled)	/* the seal counts them */
					records += next_seq - lost;
			}
			ch_segcur_seek(&cur, next);
			continue;
		}
		if (oos)
			say(c, CH_REPORT_INFO, "%s: %s", name, what);
		if (last && writing(c, fd, cur.size)) {
			say(c, CH_REPORT_INFO, "%s: a write in progress at offset "
			    "%llu", name, (unsigned long long)here);
		} else if (last) {
			say(c, CH_REPORT_WARN, "%s: torn tail at offset %llu (%llu "
			    "bytes; repairable: chcompact --repair, or the next "
			    "chpub, cuts it)", name, (unsigned long long)here,
			    (unsigned long long)(cur.size - cur.pos));
			c->torn = 1;
			c->torn_base = e->base;
			c->torn_pos = cur.pos;
			c->torn_prev = prev;
			c->torn_seq = *expect_seq;
		} else {
			damaged_end = 1;
			end_pos = cur.pos;
			end_seq = *expect_seq;
			if (doubtful || !successor_flagged(c, e->base, &nh))
				say(c, CH_REPORT_WARN, "%s: damaged from offset "
				    "%llu to its end (%llu bytes)", name,
				    (unsigned long long)here,
				    (unsigned long long)(cur.size - cur.pos));
			/* How many records it lost is unknown: the next
			 * segment's header, not this count, says where the
			 * numbering goes on. */
			*expect_seq = UINT64_MAX;
		}
		break;
	}
	if (!last && !sealed && !gone && !damaged_end && rc == CH_CUR_END) {
		end_pos = cur.pos;
		end_seq = *expect_seq;
	}
	/* Without its seal, but the next segment says it may have lost its
	 * tail to a power failure: that loss, nothing else. */
	if (!last && !sealed && !gone && !doubtful && end_pos &&
	    end_seq != UINT64_MAX && successor_flagged(c, e->base, &nh) &&
	    nh.first_seq >= end_seq) {
		if (lost_tail(c, name, e->base, end_pos, end_seq, &nh, err) < 0) {
			ch_segcur_free(&cur);
			close(fd);
			return -1;
		}
		*expect_seq = nh.first_seq;	/* its loss is said */
	} else if (!last && !sealed && !gone) {
		if (damaged_end && successor_flagged(c, e->base, &nh) &&
		    !doubtful)
			say(c, CH_REPORT_WARN, "%s: damaged from offset %llu to "
			    "its end (%llu bytes)", name, (unsigned long long)
			    ch_seg_offset(e->base, end_pos),
			    (unsigned long long)(cur.size - end_pos));
		say(c, CH_REPORT_WARN, "%s: not sealed, but a newer segment "
		    "exists", name);
	}
	ch_segcur_free(&cur);
	close(fd);
	c->res->segments++;
	return 0;
}

/* Is segment `base` in the index as it is now?  The check read the index
 * once, at its start; a writer's rollover may have added it since, or be
 * adding it: a rollover creates the segment, then lists it, both under
 * append.lock.  So held, it counts as listed; free, we hold it shared
 * while we look, and what we see stays true. */
static int
indexed_now(struct ctx *c, uint64_t base)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_error ignored;
	uint64_t i;
	int found = 0;
	int lockfd = ch_open_file(c->ch->dirfd, CH_APPEND_LOCK, O_RDONLY, 0);

	if (lockfd >= 0 && ch_flock(lockfd, LOCK_SH, CH_LOCK_NOWAIT) < 0) {
		close(lockfd);
		return 1;	/* a rollover at work */
	}
	if (ch_index_open(c->ch->dirfd, &ix, &ignored) == 0) {
		found = ch_index_find(&ix, base, &i, &ignored) == 0 &&
		    ch_index_get(&ix, i, &e, &ignored) == 0 && e.base == base;
		ch_index_close(&ix);
	}
	if (lockfd >= 0)
		close(lockfd);
	return found;
}

/* Is `name` (a directory entry of the channel) something we know? */
static int
known_file(const char *name)
{
	static const char *ok[] = { ".", "..", CH_CONFIG_FILE, CH_APPEND_LOCK,
	    CH_COMPACT_LOCK, CH_IDX_FILE, CH_SUBSCRIBERS_DIR, CH_JOURNAL_FILE };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(name, ok[i]) == 0)
			return 1;
	return 0;
}

/*
 * A temp file `name` in dirfd, written only under the lock `lockname` in
 * lockdir (channel(5) FILES).  While someone holds that lock it may be
 * being written right now (a rollover, an index rewrite, a chsub's
 * commit), and its writer replaces or renames it: in use, not a problem.
 * With the lock free, it is a leftover (if it is still there once we hold
 * the lock), and --repair removes it.
 */
static void
check_temp(struct ctx *c, int dirfd, const char *shown, const char *name,
    int lockdir, const char *lockname, const char *lockshown)
{
	struct stat st;
	int lockfd = ch_open_file(lockdir, lockname, O_RDONLY, 0);

	if (lockfd >= 0 && ch_flock(lockfd, LOCK_EX, CH_LOCK_NOWAIT) < 0) {
		say(c, CH_REPORT_INFO, "%s: in use (%s is held), left alone",
		    shown, lockshown);
		close(lockfd);
		return;
	}
	/* No lock file: nobody can hold it, nobody is writing. */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		say(c, CH_REPORT_WARN, "%s: leftover temp file", shown);
		if (c->repair && unlinkat(dirfd, name, 0) == 0)
			fixed(c, "removed leftover temp file %s", shown);
		else if (c->repair && errno == ENOENT)	/* another --repair's */
			fixed(c, "leftover temp file %s is gone (removed "
			    "meanwhile)", shown);
		else if (c->repair)
			say(c, CH_REPORT_UNFIXED, "could not remove leftover "
			    "temp file %s: %s", shown, strerror(errno));
	}
	if (lockfd >= 0)
		close(lockfd);		/* and its lock */
}

/* --repair of a segment file not in the index: removed if it is what a
 * power failure leaves of a rollover under sync none (repair.h). */
static int
orphan(struct ctx *c, uint64_t base, const char *name, struct ch_error *err)
{
	int rc = ch_repair_orphan(c->ch, base, err);

	if (rc == CH_REPAIR_DONE)
		fixed(c, "removed %s: it held only a header, made by a rollover "
		    "under sync none that a power failure interrupted after "
		    "the segment before it lost its seal", name);
	else if (rc == CH_REPAIR_GONE)
		fixed(c, "%s is gone (removed meanwhile)", name);
	else if (rc == CH_REPAIR_CHANGED)
		say(c, CH_REPORT_UNFIXED, "%s: holds records, or is not from a "
		    "rollover under sync none; left as it is", name);
	return rc < 0 ? -1 : 0;
}

static int
check_files(struct ctx *c, struct ch_index *ix, struct ch_error *err)
{
	int fd = openat(c->ch->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "read channel directory");
	}
	while ((errno = 0, de = readdir(d))) {
		uint64_t base, i;
		struct ch_idxent e;
		struct ch_error ignored;
		struct stat st;
		if (known_file(de->d_name))
			continue;
		if (fstatat(c->ch->dirfd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (ch_seg_parse_name(de->d_name, &base) == 0) {
			if (!S_ISREG(st.st_mode)) {
				say(c, CH_REPORT_WARN, "%s: not a regular file",
				    de->d_name);
				continue;
			}
			if (c->unindexed && base == c->unindexed_base)
				continue;	/* reported by check_unindexed */
			if ((ch_index_find(ix, base, &i, &ignored) < 0 ||
			    ch_index_get(ix, i, &e, &ignored) < 0 ||
			    e.base != base) && !indexed_now(c, base)) {
				say(c, CH_REPORT_WARN, "%s: segment file not in "
				    "the index", de->d_name);
				if (c->repair && orphan(c, base, de->d_name,
				    err) < 0) {
					closedir(d);
					return -1;
				}
			}
			continue;
		}
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' && n > 4 &&
		    strcmp(de->d_name + n - 4, ".tmp") == 0) {
			check_temp(c, c->ch->dirfd, de->d_name, de->d_name,
			    c->ch->dirfd, CH_APPEND_LOCK, CH_APPEND_LOCK);
			continue;
		}
		say(c, CH_REPORT_INFO, "%s: unknown file, ignored", de->d_name);
	}
	int rderr = errno;	/* readdir's: a scan cut short is no pass */
	closedir(d);
	if (rderr) {
		errno = rderr;
		return ch_err_sys(err, CH_EXIT_FAIL, "read channel directory");
	}
	return 0;
}

/* The last indexed segment is sealed: a rollover was interrupted after the
 * seal.  The next segment may not exist yet, or exist without its index
 * entry; channel(5) allows both and the next writer finishes the rollover.
 * base is the seal's offset, *expect_seq its number. */
static int
check_unindexed(struct ctx *c, uint64_t base, uint64_t *expect_seq,
    int64_t *last_ts, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	struct ch_idxent e = { .base = base, .first_seq = UINT64_MAX };
	uint64_t next_base;

	c->rollover = 1;
	ch_seg_name(name, base);
	if (faccessat(c->ch->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		say(c, CH_REPORT_INFO, "the newest segment is sealed and %s "
		    "is not created yet (an interrupted rollover; the next "
		    "chpub finishes it)", name);
		return 0;
	}
	c->unindexed = 1;
	c->unindexed_base = base;
	say(c, CH_REPORT_INFO, "%s: not in the index yet (an interrupted "
	    "rollover; the next chpub adds it)", name);
	if (check_segment(c, &e, 1, expect_seq, last_ts, &next_base, err) < 0)
		return -1;
	if (next_base && !indexed_now(c, base)) {
		say(c, CH_REPORT_WARN, "%s: sealed, but not in the index", name);
		c->sealed_unindexed = 1;	/* a writer indexes it */
	}
	return 0;
}

/* The record boundary at or before offset (in its segment). */
static int
boundary_before(struct ch_channel *ch, uint64_t offset, uint64_t *out,
    uint64_t *seq, struct ch_error *err)
{
	struct ch_segcur cur = { 0 };
	struct ch_seghdr h;
	struct ch_rec r;
	struct stat st;
	uint64_t pos;
	int fd;

	if (ch_channel_locate(ch, offset, &fd, &h, &pos, err) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "segment");
	}
	ch_segcur_init(&cur, fd, &h, CH_SEG_HDR, (uint64_t)st.st_size);
	*out = h.base;
	*seq = h.first_seq;
	int64_t ts = h.created;
	int rc, found = 0;
	while ((rc = ch_segcur_next(&cur, &r)) == CH_CUR_OK &&
	    r.h.type != CH_REC_SEAL && cur.pos <= pos) {
		if (r.h.seq != *seq) {
			/* Out of sequence (a copy): damage where it stands,
			 * as readers see it; the boundary is after it, at the
			 * record due, if that is still before the offset. */
			uint64_t next, next_seq;
			ch_segcur_seek(&cur, r.pos);
			found = ch_segcur_resync(&cur, *seq, ts, &next,
			    &next_seq);
			if (found != 1 || next > pos)
				break;
			*out = ch_seg_offset(h.base, next);
			*seq = next_seq;
			ch_segcur_seek(&cur, next);
			continue;
		}
		*out = ch_seg_offset(h.base, cur.pos);
		*seq = r.h.seq + r.nseq;
		ts = r.h.ts;
	}
	/* A read that failed is no end of the walk: the boundary found so
	 * far may lie well before the true one. */
	int failed = rc == CH_CUR_IOERR || found < 0 ?
	    ch_err_sys(err, CH_EXIT_FAIL, "read segment") : 0;
	ch_segcur_free(&cur);
	close(fd);
	return failed;
}

/* Is offset inside a frame that is damaged (so that it cannot be proven a
 * record boundary, nor disproven)? */
static int
in_damage(struct ch_channel *ch, uint64_t offset, struct ch_error *err)
{
	struct ch_reader *r;
	int lost;

	/* Refused as data (not a boundary, say): not inside damage.  A
	 * failed read says nothing either way. */
	if (ch_reader_open(ch, offset, 0, &r, err) < 0)
		return err->code == CH_EXIT_DATAERR ? 0 : -1;
	lost = ch_reader_seq_lost(r);
	ch_reader_close(r);
	return lost;
}

/* Where --repair moves an offset that check_offsets found wrong. */
enum target {
	TO_END,			/* it was past the end */
	TO_EARLIEST,		/* it was inside removed data */
	TO_BOUNDARY,		/* it was between records: to the record's start */
	TO_RECORD,		/* its record number was wrong: the record's */
};

/*
 * Work out where `to` is for offset o now, under the locks move_offset
 * holds: *why is what was wrong with it as the channel is now (data may
 * have gone, or come, since it was checked).  0, or -1 with a reason
 * said as not repaired.
 */
static int
target(struct ctx *c, const char *name, const struct ch_offset *o,
    enum target to, uint64_t *off, uint64_t *seq, const char **why)
{
	struct ch_error err;
	struct ch_start st;
	struct ch_end end;
	struct ch_reader *r;

	if (ch_channel_start(c->ch, &st, &err) < 0 ||
	    ch_channel_end(c->ch, &end, &err) < 0)
		goto failed;
	if (o->offset < st.offset) {
		*off = st.offset;
		*seq = st.seq;
		*why = "was inside removed data";
		return 0;
	}
	switch (to) {
	case TO_END:
		if (o->offset <= end.offset)
			break;
		*off = end.offset;
		*seq = end.seq;
		*why = "was past the end";
		return 0;
	case TO_EARLIEST:	/* the earliest only ever moves forward */
		break;
	case TO_BOUNDARY:
		if (boundary_before(c->ch, o->offset, off, seq, &err) < 0)
			goto failed;
		*why = "was not on a record boundary";
		return 0;
	case TO_RECORD:
		if (ch_reader_open(c->ch, o->offset, 1, &r, &err) < 0)
			goto failed;
		*off = o->offset;
		*seq = ch_reader_seq(r);
		ch_reader_close(r);
		*why = "its record number disagreed with the data";
		return 0;
	}
	say(c, CH_REPORT_UNFIXED, "subscriber '%s': offset %llu is no longer "
	    "where it was checked (the channel changed meanwhile); check "
	    "again", name, (unsigned long long)o->offset);
	return -1;
failed:
	say(c, CH_REPORT_UNFIXED, "subscriber '%s': %s", name, err.msg);
	return -1;
}

/*
 * Move NAME's offset, found wrong as o, to `to`.  Under its lock, then
 * compact.lock shared (channel(5), LOCKING: a position the tool chooses,
 * such as the earliest record, is chosen and written with no compaction
 * at work), the offset is read again and where `to` is worked out anew.
 */
static void
move_offset(struct ctx *c, const char *name, const struct ch_offset *o,
    enum target to)
{
	struct ch_error err;
	struct ch_offset n;
	struct ch_sub s;
	uint64_t off = 0, seq = 0;
	const char *why;
	int cfd;

	/* A lock file this creates is no sign of the subscriber running
	 * (--expire): unseen. */
	if (ch_sub_acquire(c->ch, name, CH_LOCK_NOWAIT, CH_SUB_EXISTING |
	    CH_SUB_UNSEEN, &s, &err) < 0) {
		if (err.code == CH_EXIT_NOINPUT)	/* nothing to repair */
			fixed(c, "subscriber '%s' was deleted while checking: "
			    "nothing left to repair", name);
		else if (err.code == CH_EXIT_TEMPFAIL)
			say(c, CH_REPORT_UNFIXED, "subscriber '%s' is held by "
			    "a running chsub; stop it and repair again", name);
		else
			say(c, CH_REPORT_UNFIXED, "%s", err.msg);
		return;
	}
	if (ch_lock_open(c->ch->dirfd, CH_COMPACT_LOCK, &cfd, &err) < 0) {
		say(c, CH_REPORT_UNFIXED, "subscriber '%s': %s", name, err.msg);
		ch_sub_release(&s);
		return;
	}
	if (ch_flock(cfd, LOCK_SH, CH_LOCK_WAIT) < 0) {
		say(c, CH_REPORT_UNFIXED, "subscriber '%s': lock %s: %s", name,
		    CH_COMPACT_LOCK, strerror(errno));
		goto out;
	}
	/* Moved since we looked (a chsub committed, choffset set it)?  Then
	 * the value we judged is gone: leave the new one alone. */
	if (ch_sub_read(c->ch, name, &n, &err) < 0 || n.offset != o->offset ||
	    n.seq != o->seq) {
		say(c, CH_REPORT_UNFIXED, "subscriber '%s': its offset changed "
		    "while checking; check again", name);
		goto out;
	}
	if (target(c, name, o, to, &off, &seq, &why) < 0)
		goto out;
	n.offset = off;
	n.seq = seq;
	/* Not durable: in place all the same, so repaired, and journaled. */
	char note[2 * sizeof err.msg + 64] = "";
	int rc = ch_sub_write(&s, &n, &err);
	if (rc < 0 && rc != CH_NOT_DURABLE) {
		say(c, CH_REPORT_UNFIXED, "%s", err.msg);
		goto out;
	}
	if (rc == CH_NOT_DURABLE)
		snprintf(note, sizeof note, "; but a power loss may undo it "
		    "(fsync: %s)", strerror(err.sys_errno));
	/* Repaired, journal or not (it records changes, not makes them). */
	if (ch_journal_append(c->ch, name, "repair", o->offset, off, why,
	    &err) < 0)
		snprintf(note + strlen(note), sizeof note - strlen(note),
		    "; the journal could not be written: %s", err.msg);
	if (off == o->offset)
		fixed(c, "subscriber '%s': offset %llu now says record %llu "
		    "(%s)%s", name, (unsigned long long)off,
		    (unsigned long long)seq, why, note);
	else
		fixed(c, "subscriber '%s': moved from offset %llu to %llu (%s)%s",
		    name, (unsigned long long)o->offset,
		    (unsigned long long)off, why, note);
out:
	close(cfd);
	ch_sub_release(&s);
}

/*
 * subscribers/NAME, a directory a deletion renamed a subscriber to
 * (ch_sub_delete): the subscriber is gone, and what is left is ignored;
 * if the deletion did not finish (it crashed), --repair removes it.  One
 * whose lock is held is still being deleted: left alone.
 */
static void
check_deleted(struct ctx *c, int sfd, const char *name)
{
	int dfd = ch_open_dir(sfd, name), lockfd = -1;

	if (dfd >= 0) {
		lockfd = ch_open_file(dfd, "lock", O_RDONLY, 0);
		close(dfd);
	}
	if (lockfd >= 0 && ch_flock(lockfd, LOCK_EX, CH_LOCK_NOWAIT) < 0) {
		say(c, CH_REPORT_INFO, "%s/%s: being deleted, left alone",
		    CH_SUBSCRIBERS_DIR, name);
		close(lockfd);
		return;
	}
	if (lockfd >= 0)
		close(lockfd);
	say(c, CH_REPORT_WARN, "%s/%s: left by an interrupted deletion of a "
	    "subscriber", CH_SUBSCRIBERS_DIR, name);
	if (!c->repair)
		return;
	if (ch_sub_remove_deleted(sfd, name) == 0)
		fixed(c, "removed %s/%s, left by an interrupted deletion",
		    CH_SUBSCRIBERS_DIR, name);
	else
		say(c, CH_REPORT_UNFIXED, "could not remove %s/%s: %s",
		    CH_SUBSCRIBERS_DIR, name, strerror(errno));
}

static int
check_offsets(struct ctx *c, struct ch_error *err)
{
	struct ch_start st;
	struct ch_end end;
	int sfd;
	DIR *d;
	struct dirent *de;

	if (ch_channel_start(c->ch, &st, err) < 0 ||
	    ch_channel_end(c->ch, &end, err) < 0)
		return -1;
	sfd = ch_open_dir(c->ch->dirfd, CH_SUBSCRIBERS_DIR);
	if (sfd < 0) {
		if (errno == ENOENT)
			return 0;
		return ch_err_sys(err, CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
	}
	d = fdopendir(sfd);
	if (!d) {
		close(sfd);
		return ch_err_sys(err, CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
	}
	while ((errno = 0, de = readdir(d))) {
		struct ch_error e;
		struct ch_offset o;
		const char *name = de->d_name;
		struct stat sst;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (ch_sub_deleted_name(name)) {
			check_deleted(c, sfd, name);
			continue;
		}
		if (ch_sub_check_name(name, &e) < 0) {
			say(c, CH_REPORT_WARN, "%s/%s: not a valid subscriber name",
			    CH_SUBSCRIBERS_DIR, name);
			continue;
		}
		if (fstatat(sfd, name, &sst, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sst.st_mode)) {
			say(c, CH_REPORT_WARN, "%s/%s: not a directory",
			    CH_SUBSCRIBERS_DIR, name);
			continue;
		}
		int dfd = ch_open_dir(sfd, name);
		if (dfd >= 0) {
			struct stat tst;
			if (fstatat(dfd, ".offset.tmp", &tst,
			    AT_SYMLINK_NOFOLLOW) == 0) {
				char shown[300], lock[300];
				snprintf(shown, sizeof shown, "%s/%s/.offset.tmp",
				    CH_SUBSCRIBERS_DIR, name);
				snprintf(lock, sizeof lock, "%s/%s/lock",
				    CH_SUBSCRIBERS_DIR, name);
				check_temp(c, dfd, shown, ".offset.tmp", dfd,
				    "lock", lock);
			}
			close(dfd);
		}
		int raced = 0;
reread:
		if (ch_sub_read(c->ch, name, &o, &e) < 0) {
			if (e.code == CH_EXIT_NOINPUT) {
				say(c, CH_REPORT_INFO, "%s/%s: registration never "
				    "finished (no offset file), ignored",
				    CH_SUBSCRIBERS_DIR, name);
				continue;
			}
			say(c, CH_REPORT_WARN, "%s", e.msg);
			if (c->repair)
				say(c, CH_REPORT_UNFIXED, "subscriber '%s': the "
				    "offset it had is unknown: set it with choffset "
				    "--set, --earliest, --latest or --time, or "
				    "--delete it", name);
			continue;
		}
		/* The check runs beside writers, readers and compaction: an
		 * offset past the end we saw, or inside data removed since we
		 * looked at the start, is judged by the channel as it is now. */
		if (o.offset > end.offset &&
		    ch_channel_end(c->ch, &end, err) < 0)
			break;
		if (o.offset > end.offset) {
			say(c, CH_REPORT_WARN, "subscriber '%s': offset %llu is "
			    "past the end (%llu)", name,
			    (unsigned long long)o.offset,
			    (unsigned long long)end.offset);
			if (c->repair)
				move_offset(c, name, &o, TO_END);
			continue;
		}
		if (o.offset < st.offset) {
			say(c, CH_REPORT_WARN, "subscriber '%s': offset %llu is "
			    "inside removed data (earliest is %llu)", name,
			    (unsigned long long)o.offset,
			    (unsigned long long)st.offset);
			if (c->repair)
				move_offset(c, name, &o, TO_EARLIEST);
			continue;
		}
		struct ch_reader *r;
		int opened = ch_reader_open(c->ch, o.offset, 1, &r, &e);
		if (opened < 0 && e.code == CH_EXIT_NOINPUT && !raced) {
			/* Its segment went since we looked: compaction, which
			 * deletes only what the subscriber had consumed by
			 * then.  Look again at both. */
			if (ch_channel_start(c->ch, &st, err) < 0)
				break;
			raced = 1;
			goto reread;
		}
		if (opened < 0) {
			struct ch_error why;
			int dmg = e.code == CH_EXIT_DATAERR ?
			    in_damage(c->ch, o.offset, &why) : 0;
			if (dmg < 0)
				e = why;	/* said below, not repaired */
			if (dmg > 0) {
				/* The damage is reported with its segment;
				 * the offset may well be right: keep it. */
				say(c, CH_REPORT_WARN, "subscriber '%s': offset "
				    "%llu is inside damaged data", name,
				    (unsigned long long)o.offset);
				continue;
			}
			say(c, CH_REPORT_WARN, "subscriber '%s': %s", name, e.msg);
			if (c->repair && e.code == CH_EXIT_DATAERR)
				move_offset(c, name, &o, TO_BOUNDARY);
			continue;
		}
		if (ch_reader_seq(r) != o.seq) {
			say(c, CH_REPORT_WARN, "subscriber '%s': offset file says "
			    "record %llu, the channel has record %llu there", name,
			    (unsigned long long)o.seq,
			    (unsigned long long)ch_reader_seq(r));
			/* The offset is a proven boundary: keep it, and the
			 * number of the record that is there. */
			if (c->repair)
				move_offset(c, name, &o, TO_RECORD);
		}
		ch_reader_close(r);
	}
	int rderr = de ? 0 : errno; /* readdir's: a scan cut short is no pass */
	closedir(d);
	if (de)			/* broke out on an error in err */
		return -1;
	if (rderr) {
		errno = rderr;
		return ch_err_sys(err, CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
	}
	return 0;
}

static int
check(struct ch_channel *ch, int repair, ch_report_fn report, void *rctx,
    struct ch_progress *progress, struct ch_check_result *res,
    struct ch_error *err)
{
	struct ctx c = { .ch = ch, .repair = repair, .report = report,
	    .rctx = rctx, .res = res, .progress = progress };
	struct ch_index ix;
	struct ch_idxent e, prev = { 0 };
	uint64_t expect = UINT64_MAX, next_base = 0, tail_next = 0;
	int64_t last_ts = INT64_MIN;
	int seen_existing = 0;
	uint64_t last_seen = 0;
	struct ch_start start;
	struct ch_end end;
	struct ch_error ignored;

	memset(res, 0, sizeof *res);
	if (ch_index_open(ch->dirfd, &ix, err) < 0) {
		if (err->code == CH_EXIT_NOINPUT)
			return -1;	/* the channel was removed */
		say(&c, CH_REPORT_WARN, "%s", err->msg);
		return 0;
	}
	/* Progress over the data as it is now; a channel too damaged to
	 * say where it starts and ends is checked without. */
	if (progress && progress->on &&
	    ch_channel_start(ch, &start, &ignored) == 0 &&
	    ch_channel_end(ch, &end, &ignored) == 0) {
		c.first_seq = start.seq;
		ch_progress_range(progress, start.offset, end.offset, start.seq,
		    end.seq);
	}
	for (uint64_t i = 0; i < ix.count; i++) {
		char name[CH_SEG_NAME_LEN + 1];
		if (ch_index_get(&ix, i, &e, err) < 0) {
			say(&c, CH_REPORT_WARN, "%s", err->msg);
			continue;
		}
		if (i > 0 && e.base <= prev.base)
			say(&c, CH_REPORT_WARN, "index entry %llu is out of order",
			    (unsigned long long)i);
		prev = e;
		ch_seg_name(name, e.base);
		if (faccessat(ch->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
			/* Compaction deletes oldest first: if the last one
			 * we saw is gone too, it deleted up to here while
			 * we checked. */
			char seen[CH_SEG_NAME_LEN + 1];
			ch_seg_name(seen, last_seen);
			if (seen_existing && faccessat(ch->dirfd, seen, F_OK,
			    AT_SYMLINK_NOFOLLOW) < 0)
				seen_existing = 0;
			if (seen_existing)
				say(&c, CH_REPORT_WARN, "%s: missing (it is in the "
				    "index after existing segments)", name);
			else	/* numbering goes on after what it deleted */
				expect = UINT64_MAX;
			continue;	/* a deleted prefix is normal */
		}
		last_seen = e.base;
		if (seen_existing && next_base && next_base != e.base)
			say(&c, CH_REPORT_WARN, "%s: the previous segment's seal "
			    "says the next segment starts at %llu", name,
			    (unsigned long long)next_base);
		seen_existing = 1;
		if (check_segment(&c, &e, i + 1 == ix.count, &expect, &last_ts,
		    &next_base, err) < 0) {
			ch_index_close(&ix);
			return -1;
		}
		if (i + 1 == ix.count)
			tail_next = next_base;
	}
	if (tail_next && check_unindexed(&c, tail_next, &expect, &last_ts,
	    err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	if (check_files(&c, &ix, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	int tail_left = 0;
	if (c.torn && repair)
		tail_left = cut_tail(&c, err);
	if (tail_left < 0)
		return -1;
	/* The writer would cut a tail we left: only where we cut it. */
	if (c.rollover && repair && !tail_left) {
		struct ch_pubopts po;
		struct ch_writer *w;
		int sealed;
		ch_pubopts_from_config(&po, &ch->cfg);
		if (ch_writer_open(ch, &po, &w, err) < 0 ||
		    ch_writer_seal_aged(w, INT64_MAX, &sealed, err) < 0)
			return -1;
		uint64_t cut = ch_writer_repaired(w);
		if (ch_writer_close(w, err) < 0)
			return -1;
		/* A torn tail the check found is cut_tail's: this one was
		 * left since the check, by a writer's death. */
		if (cut)
			finished(&c, "cut a torn tail of %llu bytes",
			    (unsigned long long)cut);
		if (c.rollover && c.sealed_unindexed)
			fixed(&c, "finished an interrupted rollover (indexed "
			    "the sealed segment)");
		else if (c.rollover)
			finished(&c, "finished an interrupted rollover");
	}
	return check_offsets(&c, err);
}

int
ch_check(struct ch_channel *ch, int repair, ch_report_fn report, void *rctx,
    struct ch_progress *progress, struct ch_check_result *res,
    struct ch_error *err)
{
	int rc = check(ch, repair, report, rctx, progress, res, err);

	if (progress)
		ch_progress_end(progress);
	return rc;
}
