/* session.c - a subscriber's reading session (see session.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fsutil.h"
#include "lock.h"
#include "offcheck.h"
#include "parse.h"
#include "session.h"

static void
say(struct ch_session *s, const char *fmt, unsigned long long a,
    unsigned long long b, unsigned long long c)
{
	char msg[512];

	if (!s->o.warn)
		return;
	snprintf(msg, sizeof msg, fmt, a, b, c);
	s->o.warn(s->o.warn_ctx, msg);
}

/* Register a new subscriber at o->from (default latest). */
static int
do_register(struct ch_session *s, struct ch_error *err)
{
	struct ch_pos latest = { .kind = CH_POS_LATEST };
	struct ch_end end;
	uint64_t offset, seq;
	int cfd, rc = -1;

	if (ch_lock_open(s->ch->dirfd, CH_COMPACT_LOCK, &cfd, err) < 0)
		return -1;
	if (ch_flock(cfd, LOCK_SH, CH_LOCK_WAIT) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_COMPACT_LOCK);
		goto out;
	}
	if (ch_pos_resolve(s->ch, s->o.have_from ? &s->o.from : &latest, 0,
	    &offset, &seq, NULL, err) < 0 || ch_channel_end(s->ch, &end, err) < 0)
		goto out;
	memset(&s->off, 0, sizeof s->off);
	/* The first history entry records the lag it starts with: chlag's
	 * WARN rule compares later lags with it. */
	ch_offset_advance(&s->off, offset, seq, ch_now_ns(), end.offset, end.seq);
	if (ch_sub_write(&s->sub, &s->off, err) < 0)
		goto out;
	s->registered = s->created = 1;
	rc = 0;
out:
	close(cfd);
	return rc;
}

/*
 * Check the offset against the channel and open the reader there.  An
 * offset file that disagrees with the data is refused, never reset; data
 * removed by retention: warn, start at the earliest.  That includes a
 * compaction deleting the segment between our look at the channel's start
 * and opening it (chsub takes no lock that holds compaction off, see
 * channel(5) LOCKING): a segment that is missing then, while the channel
 * now starts after the offset, was deleted meanwhile, so look again, as
 * the reader does at a seal (deleted() in reader.c).  check: *offset is
 * that of s->off, to be checked.  *offset and *seq become where the reader
 * is.
 */
static int
open_reader(struct ch_session *s, int check, uint64_t *offset, uint64_t *seq,
    struct ch_error *err)
{
	struct ch_start start, now;
	struct ch_end end;
	struct ch_error again;
	uint64_t at = *offset, at_seq = *seq;

	for (int tries = 0;; tries++) {
		if (ch_channel_start(s->ch, &start, err) < 0)
			return -1;
		at = *offset;
		at_seq = *seq;
		if (at < start.offset) {
			at = start.offset;
			at_seq = start.seq;
		}
		if ((!check || (ch_channel_end(s->ch, &end, err) == 0 &&
		    ch_offset_check(s->ch, &s->off, &start, &end, err) == 0)) &&
		    ch_reader_open(s->ch, at, 0, &s->r, err) == 0)
			break;
		/* A segment missing: deleted since we looked, if the channel
		 * now starts after it; if not, it is missing for another
		 * reason: say so. */
		if (err->code != CH_EXIT_NOINPUT ||
		    ch_channel_start(s->ch, &now, &again) < 0 ||
		    now.offset <= at)
			goto fail;
		if (tries == 100) {
			ch_err(err, CH_EXIT_TEMPFAIL, "segments keep being "
			    "deleted under the reader");
			goto fail;
		}
	}
	if (*offset < start.offset)
		say(s, "subscriber is behind the earliest record: skipping %llu "
		    "bytes (%llu records) removed by retention, continuing at "
		    "offset %llu", (unsigned long long)(start.offset - *offset),
		    (unsigned long long)(start.seq > *seq ? start.seq - *seq : 0),
		    (unsigned long long)start.offset);
	*offset = at;
	*seq = at_seq;
	return 0;
fail:
	if (s->o.name)
		ch_err_prefix(err, "subscriber '%s'", s->o.name);
	return -1;
}

int
ch_session_open(struct ch_channel *ch, const struct ch_session_opts *o,
    struct ch_session *s, struct ch_error *err)
{
	uint64_t offset, seq;
	int have_off = 0;

	memset(s, 0, sizeof *s);
	s->ch = ch;
	s->o = *o;
	s->sub.dirfd = s->sub.lockfd = -1;
	if (o->peek) {
		struct ch_pos earliest = { .kind = CH_POS_EARLIEST };
		int have = 0;
		if (o->name) {
			if (ch_sub_read(ch, o->name, &s->off, err) == 0)
				have = 1;
			else if (err->code != CH_EXIT_NOINPUT)
				return -1;
		}
		if (have) {
			have_off = 1;
			offset = s->off.offset;
			seq = s->off.seq;
		} else if (ch_pos_resolve(ch, o->have_from ? &o->from : &earliest,
		    0, &offset, &seq, NULL, err) < 0) {
			return -1;
		}
	} else {
		/* A --from that cannot be taken (off a boundary, past the
		 * end) is refused before a new subscriber's directory and
		 * lock file are made; do_register resolves it again. */
		struct ch_offset cur;
		if (o->have_from && ch_sub_read(ch, o->name, &cur, err) < 0 &&
		    (err->code != CH_EXIT_NOINPUT || ch_pos_resolve(ch,
		    &o->from, 0, &offset, &seq, NULL, err) < 0))
			goto fail;
		if (ch_sub_acquire(ch, o->name, o->wait_ns, CH_SUB_LIVE, &s->sub,
		    err) < 0)
			goto fail;
		s->held = 1;
		if (ch_sub_read(ch, o->name, &s->off, err) == 0) {
			s->registered = 1;
		} else if (err->code != CH_EXIT_NOINPUT ||
		    do_register(s, err) < 0) {
			goto fail;
		}
		offset = s->off.offset;
		seq = s->off.seq;
	}

	if (open_reader(s, s->registered || have_off, &offset, &seq, err) < 0)
		goto fail;
	if (ch_reader_seq_lost(s->r))
		ch_reader_set_seq(s->r, seq);
	if (ch_reader_seq(s->r) != seq && s->registered) {
		ch_err(err, CH_EXIT_DATAERR,
		    "subscriber '%s': offset file says record %llu at offset "
		    "%llu, the channel has record %llu there",
		    o->name ? o->name : "", (unsigned long long)seq,
		    (unsigned long long)offset,
		    (unsigned long long)ch_reader_seq(s->r));
		goto fail;
	}
	ch_reader_set_skip_corrupt(s->r, o->skip_corrupt, o->warn, o->warn_ctx);
	s->done_offset = offset;
	s->done_seq = ch_reader_seq(s->r);
	s->last_commit_mono = ch_mono_ns();
	return 0;
fail:
	/* A file of the channel missing while it registers or opens the
	 * subscriber: a channel being removed (rm -rf) is not a failure of
	 * ours. */
	(void)ch_channel_gone(ch->dirfd, err->sys_errno, err);
	ch_session_close(s);
	return -1;
}

void
ch_session_delivered(struct ch_session *s, uint64_t offset, uint64_t seq)
{
	s->done_offset = offset;
	s->done_seq = seq;
	ch_progress_update(s->o.progress, offset, seq);
}

int
ch_session_dirty(const struct ch_session *s)
{
	return !s->o.peek && s->held && s->done_offset != s->off.offset;
}

int
ch_session_commit(struct ch_session *s, struct ch_error *err)
{
	struct ch_end end;

	s->last_commit_mono = ch_mono_ns();
	/* Nothing read since: the offset stays, but the stamp says the
	 * consumer was here (chcompact --expire must not take a subscriber
	 * that runs on a quiet channel for one gone for good). */
	if (!ch_session_dirty(s))
		return s->o.peek || !s->held ? 0 : ch_sub_stamp(&s->sub, err);
	if (ch_channel_end(s->ch, &end, err) < 0)
		return -1;
	ch_offset_advance(&s->off, s->done_offset, s->done_seq, ch_now_ns(),
	    end.offset, end.seq);
	return ch_sub_write(&s->sub, &s->off, err);
}

int
ch_session_set_retry(struct ch_session *s, const struct ch_retry *r,
    struct ch_error *err)
{
	struct ch_end end;

	if (s->o.peek || !s->held)
		return 0;
	if (ch_session_dirty(s)) {
		if (ch_channel_end(s->ch, &end, err) < 0)
			return -1;
		ch_offset_advance(&s->off, s->done_offset, s->done_seq,
		    ch_now_ns(), end.offset, end.seq);
		s->last_commit_mono = ch_mono_ns();
	}
	s->off.retry = *r;
	s->off.retry.offset = s->off.offset;
	return ch_sub_write(&s->sub, &s->off, err);
}

void
ch_session_close(struct ch_session *s)
{
	ch_reader_close(s->r);
	s->r = NULL;
	if (s->held)
		ch_sub_release(&s->sub);
	s->held = 0;
}
