/* compact.c - deleting consumed and expired data (see compact.h). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compact.h"
#include "fsutil.h"
#include "index.h"
#include "journal.h"
#include "lock.h"
#include "offcheck.h"
#include "parse.h"
#include "sealsync.h"
#include "segment.h"
#include "subscriber.h"
#include "writer.h"

struct subinfo {
	char *name;
	struct ch_offset off;
	int ok;			/* off is its position: it counts */
	int bad;		/* its offset file cannot be trusted */
	int parsed;		/* ... but off is what the file says */
	struct ch_error why;	/* what is wrong with it (bad) */
};

static void
report(const struct ch_compact_opts *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report(const struct ch_compact_opts *o, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!o->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	o->report(o->ctx, level, msg);
}

/* Newest record time of a sealed segment, from its seal (0: unknown).
 * The seal must name `next`, the segment after it: a torn record at the
 * end of a segment that lost its tail may hold a whole-looking seal of
 * some other segment (a segment file published with --whole), whose
 * time says nothing about this one's records. */
static int64_t
sealed_last_ts(struct ch_channel *ch, uint64_t base, uint64_t next)
{
	struct ch_error ignored;
	struct ch_seghdr h;
	struct ch_tail t;
	struct stat st;
	int fd;

	if (ch_segment_open(ch->dirfd, base, 0, &fd, &h, &ignored) < 0)
		return 0;
	if (fstat(fd, &st) < 0 ||
	    ch_segment_tail(fd, &h, (uint64_t)st.st_size, &t,
	    &ignored) < 0 || !t.sealed || t.torn ||
	    ch_seg_offset(base, t.end) != next) {
		close(fd);
		return 0;
	}
	close(fd);
	/* An empty sealed segment counts by its creation. */
	return t.seal.records ? t.seal.last_ts : h.created;
}

/*
 * --dry-run: would the real run seal the active segment first, being
 * older than segment_age (ch_writer_seal_aged: it holds records, the
 * first of them that old)?  Then the plan takes it for sealed.
 */
static int
would_seal(struct ch_channel *ch, const struct ch_end *end, int64_t now)
{
	struct ch_error ignored;
	struct ch_seghdr h;
	int64_t t0 = 0;
	int fd, type;

	if (ch->cfg.segment_age_ns <= 0 || end->offset <= end->active_base)
		return 0;
	if (ch_segment_open(ch->dirfd, end->active_base, 0, &fd, &h,
	    &ignored) < 0)
		return 0;
	int rc = ch_segment_peek(fd, &h, CH_SEG_HDR, &type, &t0);
	close(fd);
	return rc == 0 && type == CH_REC_DATA && t0 &&
	    ch_age(now, t0) >= ch->cfg.segment_age_ns;
}

/*
 * When NAME was last known alive: the newer of its last commit and of
 * its stamp (the lock file's time, which every chsub run sets, moving
 * the offset or not).  -1 if the stamp cannot be read (err).
 */
static int
last_seen(struct ch_channel *ch, const char *name, const struct ch_offset *off,
    int64_t *when, struct ch_error *err)
{
	int64_t stamp;

	if (ch_sub_seen(ch, name, &stamp, err) < 0)
		return -1;
	*when = stamp > off->time ? stamp : off->time;
	return 0;
}

static void
expire(struct ch_channel *ch, const struct ch_compact_opts *o,
    struct subinfo *subs, size_t n, int64_t now, struct ch_compact_result *res)
{
	char idle[32], limit[32], reason[128];
	struct ch_error err;
	struct ch_sub s;
	int64_t seen;

	for (size_t i = 0; i < n; i++) {
		/* A time ahead of the clock is no idle time. */
		if (!subs[i].ok || ch_age(now, subs[i].off.time) <= o->expire_ns)
			continue;
		if (last_seen(ch, subs[i].name, &subs[i].off, &seen, &err) < 0) {
			report(o, CH_REPORT_WARN, "not expiring subscriber '%s': "
			    "%s", subs[i].name, err.msg);
			res->failed++;
			continue;
		}
		if (ch_age(now, seen) <= o->expire_ns)
			continue;
		ch_format_duration(idle, sizeof idle, ch_age(now, seen));
		ch_format_duration(limit, sizeof limit, o->expire_ns);
		if (ch_sub_running(ch, subs[i].name)) {
			report(o, CH_REPORT_INFO, "not expiring subscriber '%s': "
			    "idle %s but a chsub is running for it",
			    subs[i].name, idle);
			continue;
		}
		if (o->dry_run) {
			report(o, CH_REPORT_PLAN, "would expire subscriber '%s' "
			    "(no commit or run for %s, expire is %s)",
			    subs[i].name, idle, limit);
			subs[i].ok = 0;
			res->expired++;
			continue;
		}
		/* Its lock file missing (restored from a backup, removed
		 * by hand), taking the lock creates it: unstamped, not
		 * read below as a run now (nor by later passes). */
		if (ch_sub_acquire(ch, subs[i].name, CH_LOCK_NOWAIT,
		    CH_SUB_EXISTING | CH_SUB_UNSEEN, &s, &err) < 0) {
			if (err.code == CH_EXIT_NOINPUT) {
				/* deleted meanwhile: it counts no more */
				report(o, CH_REPORT_INFO, "not expiring "
				    "subscriber '%s': it was deleted meanwhile",
				    subs[i].name);
				subs[i].ok = 0;
				continue;
			}
			/* busy: a chsub started since; else an error */
			int busy = err.code == CH_EXIT_TEMPFAIL;
			report(o, busy ? CH_REPORT_INFO : CH_REPORT_WARN,
			    "not expiring subscriber '%s': %s", subs[i].name,
			    err.msg);
			res->failed += !busy;
			continue;
		}
		/* A chsub may have run, committed or not, since we read. */
		struct ch_offset again;
		if (ch_sub_read(ch, subs[i].name, &again, &subs[i].why) < 0) {
			/* Unreadable now: it holds back deletion, as one
			 * unreadable from the start (no longer counting
			 * would let the others' offsets delete its data). */
			report(o, CH_REPORT_INFO, "not expiring subscriber '%s': "
			    "its offset file cannot be read now", subs[i].name);
			ch_sub_release(&s);
			subs[i].ok = 0;
			subs[i].bad = 1;
			continue;
		}
		if (last_seen(ch, subs[i].name, &again, &seen, &err) < 0) {
			report(o, CH_REPORT_WARN, "not expiring subscriber '%s': "
			    "%s", subs[i].name, err.msg);
			res->failed++;
			ch_sub_release(&s);
			continue;
		}
		if (again.offset != subs[i].off.offset ||
		    ch_age(now, seen) <= o->expire_ns) {
			report(o, CH_REPORT_INFO, "not expiring subscriber '%s': "
			    "it committed or ran meanwhile", subs[i].name);
			ch_sub_release(&s);
			subs[i].off = again;
			continue;
		}
		snprintf(reason, sizeof reason, "expired: no commit or run for %s "
		    "(expire %s)", idle, limit);
		if (ch_sub_delete(&s, &err) < 0) {
			report(o, CH_REPORT_WARN, "%s", err.msg);
			res->failed++;
			ch_sub_release(&s);
			continue;
		}
		/* Expired it is, journal or not (the journal records
		 * changes, it does not make them). */
		if (ch_journal_append(ch, subs[i].name, "expire",
		    subs[i].off.offset, CH_NO_OFFSET, reason, &err) < 0)
			report(o, CH_REPORT_WARN, "expired subscriber '%s', but "
			    "the journal could not be written: %s", subs[i].name,
			    err.msg);
		ch_sub_release(&s);
		report(o, CH_REPORT_INFO, "expired subscriber '%s' (no commit "
		    "or run for %s)", subs[i].name, idle);
		subs[i].ok = 0;
		res->expired++;
	}
}

/*
 * Say what becomes of a subscriber whose offset file cannot be trusted.
 * It holds back the deletion of consumed segments, but not retention:
 * if this pass deletes (`st`, the earliest record before it, given),
 * everything before `kept` is gone, and it may not have read it; from
 * its offset on, if the file said one.
 */
static void
report_untrusted(const struct ch_compact_opts *o, const struct subinfo *s,
    const struct ch_start *st, uint64_t kept)
{
	const char *fix = s->parsed ? ": fix it with chcompact --repair or "
	    "choffset --set" : "";
	const char *lose = o->dry_run ? "may lose" : "may have lost";
	char size[32];

	if (!st && !o->max_age_ns && !o->max_bytes)
		report(o, CH_REPORT_WARN, "%s; keeping everything it may still "
		    "need%s", s->why.msg, fix);
	else if (!st)
		report(o, CH_REPORT_WARN, "%s; keeping everything it may still "
		    "need that retention does not delete%s", s->why.msg, fix);
	else if (s->parsed && s->off.offset < kept) {
		uint64_t from = s->off.offset > st->offset ? s->off.offset :
		    st->offset;
		ch_format_size(size, sizeof size, kept - from);
		report(o, CH_REPORT_WARN, "%s; it %s unread records to "
		    "retention: from offset %llu to %llu (%s)%s", s->why.msg,
		    lose, (unsigned long long)from, (unsigned long long)kept,
		    size, fix);
	} else
		report(o, CH_REPORT_WARN, "%s; it %s unread records to "
		    "retention: everything before offset %llu%s", s->why.msg,
		    lose, (unsigned long long)kept, fix);
}

/*
 * The entries before `first` (the first segment that exists, as
 * ch_channel_start finds it by binary search) must all be of deleted
 * segments: deletions are a prefix of the index.  A segment file
 * missing further on (lost, or removed by hand) makes that search skip
 * older segments that are still there, and dropping their entries would
 * cut them off the channel for good: refuse, naming one.
 */
static int
hole_check(struct ch_channel *ch, uint64_t first, struct ch_error *err)
{
	struct ch_index ix;
	int rc = 0;

	if (first == 0)
		return 0;
	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	for (uint64_t i = 0; i < first && rc == 0; i++) {
		struct ch_idxent e;
		char name[CH_SEG_NAME_LEN + 1];
		int there;
		if (ch_index_get(&ix, i, &e, err) < 0 ||
		    (there = ch_segment_exists(ch, e.base, err)) < 0) {
			rc = -1;
			break;
		}
		ch_seg_name(name, e.base);
		if (there)
			rc = ch_err(err, CH_EXIT_DATAERR, "segment %s is there "
			    "but a later one in the index is missing: nothing "
			    "changed (chcompact --check names it)", name);
	}
	ch_index_close(&ix);
	return rc;
}

int
ch_compact(struct ch_channel *ch, const struct ch_compact_opts *o,
    struct ch_compact_result *res, struct ch_error *err)
{
	struct subinfo *subs = NULL;
	char **names = NULL;
	size_t nsubs = 0;
	int cfd = -1, rc = -1;
	struct subinfo *bad = NULL;	/* unreadable or untrusted offset */
	int64_t now = ch_now_ns();
	struct ch_index ix = { -1, 0 };
	uint64_t *del = NULL;
	size_t ndel = 0;

	memset(res, 0, sizeof *res);
	if ((o->dry_run ? ch_lock_open_existing(ch->dirfd, CH_COMPACT_LOCK,
	    &cfd, err) : ch_lock_open(ch->dirfd, CH_COMPACT_LOCK, &cfd, err)) < 0)
		return -1;
	if (cfd >= 0 && ch_flock(cfd, LOCK_EX, o->lock_wait_ns) < 0) {
		if (errno == EWOULDBLOCK)
			ch_err(err, CH_EXIT_TEMPFAIL, "compaction lock is busy "
			    "(another chcompact or choffset is running)");
		else
			ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_COMPACT_LOCK);
		goto out;
	}

	/* An idle channel's active segment past segment_age is sealed so
	 * that retention can reach it. */
	if (!o->dry_run && ch->cfg.segment_age_ns > 0) {
		struct ch_pubopts po;
		struct ch_writer *w;
		ch_pubopts_from_config(&po, &ch->cfg);
		if (ch_writer_open(ch, &po, &w, err) < 0 ||
		    ch_writer_seal_aged(w, ch->cfg.segment_age_ns, &res->sealed,
		    err) < 0 || ch_writer_close(w, err) < 0)
			goto out;
		if (res->sealed)
			report(o, CH_REPORT_INFO, "sealed the active segment "
			    "(older than segment_age)");
	}

	/* The segments sealed without fdatasync (rollovers under sync none)
	 * are made durable: a power failure no longer takes their tails. */
	if (!o->dry_run && ch_sealsync_newest(ch, err) < 0)
		goto out;

	if (ch_sub_list(ch, &names, &nsubs, err) < 0)
		goto out;
	subs = calloc(nsubs ? nsubs : 1, sizeof *subs);
	if (!subs) {
		ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nsubs; i++) {
		subs[i].name = names[i];
		if (ch_sub_read(ch, names[i], &subs[i].off, &subs[i].why) == 0)
			subs[i].ok = 1;
		else
			subs[i].bad = 1;
	}

	/* The end is read after the offsets: a subscriber committing
	 * meanwhile must not look past the end.  An offset that disagrees
	 * with the data says nothing about what its subscriber consumed:
	 * it holds back everything, like an unreadable one, and is not
	 * expired on the strength of the time it claims. */
	struct ch_start st;
	struct ch_end end;
	if (ch_channel_start(ch, &st, err) < 0 ||
	    hole_check(ch, st.index_pos, err) < 0 ||
	    ch_channel_end(ch, &end, err) < 0)
		goto out;
	for (size_t i = 0; i < nsubs; i++) {
		if (!subs[i].ok || ch_offset_check(ch, &subs[i].off, &st, &end,
		    &subs[i].why) == 0)
			continue;
		ch_err_prefix(&subs[i].why, "subscriber '%s'", subs[i].name);
		subs[i].ok = 0;
		subs[i].bad = subs[i].parsed = 1;
	}
	if (o->expire_ns > 0)
		expire(ch, o, subs, nsubs, now, res);
	for (size_t i = 0; i < nsubs && !bad; i++)
		if (subs[i].bad)
			bad = &subs[i];

	/* The slowest subscriber holds back consumption-based deletion. */
	struct subinfo *slowest = NULL;
	size_t live = 0;
	for (size_t i = 0; i < nsubs; i++) {
		if (!subs[i].ok)
			continue;
		live++;
		if (!slowest || subs[i].off.offset < slowest->off.offset)
			slowest = &subs[i];
	}

	/* The active segment as the real run would leave it: sealed, its
	 * successor starting at the end. */
	int virt = o->dry_run && would_seal(ch, &end, now);
	struct ch_idxent after = { end.offset, end.seq, now };
	if (virt)
		report(o, CH_REPORT_PLAN, "would seal the active segment "
		    "(older than segment_age)");

	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		goto out;
	del = calloc(ix.count + 1, sizeof *del);
	if (!del) {
		ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		goto out;
	}
	uint64_t keep = st.index_pos;	/* index of the first kept entry */
	for (; keep + 1 < ix.count + (uint64_t)virt; keep++) {
		struct ch_idxent e, next;
		char name[CH_SEG_NAME_LEN + 1], size[32], why[160] = "";
		if (ch_index_get(&ix, keep, &e, err) < 0)
			goto out;
		if (keep + 1 == ix.count)
			next = after;
		else if (ch_index_get(&ix, keep + 1, &next, err) < 0)
			goto out;
		int active = e.base >= end.active_base;
		if (active && !virt)
			break;
		int consumed = live > 0 && !bad &&
		    slowest->off.offset >= next.base;
		int64_t last = !o->max_age_ns ? 0 : active ? end.last_ts :
		    sealed_last_ts(ch, e.base, next.base);
		int aged = o->max_age_ns && last &&
		    ch_age(now, last) > o->max_age_ns;
		int over = o->max_bytes && end.offset - e.base > o->max_bytes;
		if (!consumed && !aged && !over) {
			ch_seg_name(name, e.base);
			if (o->dry_run && bad)
				report(o, CH_REPORT_PLAN, "keeping %s and later: "
				    "held back by subscriber '%s' (its offset file "
				    "cannot be trusted)", name, bad->name);
			else if (o->dry_run && live == 0)
				report(o, CH_REPORT_PLAN, "keeping %s and later: "
				    "no subscribers (only retention deletes "
				    "without subscribers)", name);
			else if (o->dry_run && slowest) {
				char idle[32];
				ch_format_duration(idle, sizeof idle,
				    ch_age(now, slowest->off.time));
				report(o, CH_REPORT_PLAN, "keeping %s and later: "
				    "held back by subscriber '%s' (lag %llu "
				    "records, idle %s)", name, slowest->name,
				    (unsigned long long)(end.seq -
				    slowest->off.seq), idle);
			}
			break;
		}
		ch_seg_name(name, e.base);
		ch_format_size(size, sizeof size, next.base - e.base);
		snprintf(why, sizeof why, "%s%s%s",
		    consumed ? "consumed by all subscribers" : "",
		    !consumed && aged ? "older than max_age" : "",
		    !consumed && !aged && over ? "beyond max_bytes" : "");
		report(o, o->dry_run ? CH_REPORT_PLAN : CH_REPORT_INFO,
		    "%s %s (%s, %s)", o->dry_run ? "would delete" : "deleting",
		    name, size, why);
		del[ndel++] = e.base;
		res->segments++;
		res->bytes += next.base - e.base;
	}
	/* Every sealed segment goes: what stops the deletions is the
	 * active one, which the plan names too. */
	if (o->dry_run && keep + 1 >= ix.count + (uint64_t)virt) {
		char name[CH_SEG_NAME_LEN + 1];
		ch_seg_name(name, virt ? end.offset : end.active_base);
		report(o, CH_REPORT_PLAN, "keeping %s: the active segment", name);
	}

	/* Who loses unread data to retention. */
	struct ch_idxent first = after;
	if (ndel && keep < ix.count && ch_index_get(&ix, keep, &first, err) < 0)
		goto out;
	for (size_t i = 0; i < nsubs; i++) {
		if (!subs[i].bad)
			continue;
		report_untrusted(o, &subs[i], ndel ? &st : NULL, first.base);
		if (subs[i].why.code == CH_EXIT_FAIL)	/* not damage */
			res->failed++;
	}
	if (ndel) {
		for (size_t i = 0; i < nsubs; i++) {
			if (!subs[i].ok || subs[i].off.offset >= first.base)
				continue;
			uint64_t from = subs[i].off.offset > st.offset ?
			    subs[i].off.offset : st.offset;
			uint64_t fseq = subs[i].off.seq > st.seq ?
			    subs[i].off.seq : st.seq;
			char size[32];
			ch_format_size(size, sizeof size, first.base - from);
			report(o, CH_REPORT_WARN, "subscriber '%s' %s %llu unread "
			    "records (%s) to retention", subs[i].name,
			    o->dry_run ? "would lose" : "lost",
			    (unsigned long long)(first.first_seq - fseq), size);
		}
	}
	if (o->dry_run) {
		rc = 0;
		goto out;
	}
	/* Oldest first, each unlink made durable before the next: a power
	 * loss may keep any of a directory's unsynced changes and lose the
	 * others, and the deleted segments must stay a prefix of the index
	 * (readers skip a prefix; a hole would end the channel there). */
	for (size_t i = 0; i < ndel; i++) {
		char name[CH_SEG_NAME_LEN + 1];
		ch_seg_name(name, del[i]);
		if (unlinkat(ch->dirfd, name, 0) < 0 && errno != ENOENT) {
			ch_err_sys(err, CH_EXIT_FAIL, "delete %s", name);
			goto out;
		}
		if (ch_fsync_dir(ch->dirfd) < 0) {
			ch_err_sys(err, CH_EXIT_FAIL, "fsync channel directory");
			goto out;
		}
	}
	/* Drop index entries of deleted files (this pass's and any a crash
	 * left), under the append lock so no entry is appended meanwhile. */
	if (keep > 0) {
		int afd;
		if (ch_lock_open(ch->dirfd, CH_APPEND_LOCK, &afd, err) < 0)
			goto out;
		if (ch_flock(afd, LOCK_EX, CH_LOCK_WAIT) < 0) {
			ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_APPEND_LOCK);
			close(afd);
			goto out;
		}
		int r = ch_index_drop_prefix(ch->dirfd, keep, err);
		close(afd);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	ch_index_close(&ix);
	free(del);
	free(subs);
	ch_sub_list_free(names, nsubs);
	if (cfd >= 0)
		close(cfd);
	return rc;
}
