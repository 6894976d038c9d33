/* lag.c - lag and status per subscriber (see lag.h). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lag.h"
#include "offcheck.h"
#include "parse.h"
#include "reader.h"

void
ch_lag_defaults(struct ch_lag_opts *o)
{
	o->window_ns = 600LL * 1000000000;	/* 10 minutes */
	o->allowed_lag = 0;
	o->stall_ns = 60LL * 1000000000;	/* 1 minute */
}

const char *
ch_status_name(int status)
{
	static const char *names[CH_ST_COUNT] = { "OK", "WARN", "STALL",
	    "STOP", "REWIND", "RETRY", "FAILED", "ERROR", "INVALID" };
	return status >= 0 && status < CH_ST_COUNT ? names[status] : "?";
}

/*
 * a - b, clamped to the int64_t range.  Times come from offset files,
 * which an operator or damage can fill with any 64-bit value; a plain
 * subtraction of two such times overflows (undefined behaviour) and could
 * turn "very old" into "in the future".
 */
static int64_t
sat_sub(int64_t a, int64_t b)
{
	int64_t d;

	if (__builtin_sub_overflow(a, b, &d))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return d;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The status, and which rule gave it. */
static int
ruled(struct ch_lag_why *why, int rule, int status)
{
	why->rule = rule;
	return status;
}

int
ch_lag_status(const struct ch_offset *off, uint64_t end_offset,
    uint64_t end_seq, int64_t age_ns, int running, int64_t now,
    const struct ch_lag_opts *o, struct ch_lag_why *why)
{
	struct ch_lag_why w;
	struct ch_lag_sample *pts;
	int np = 0;
	uint64_t lag = end_seq > off->seq ? end_seq - off->seq : 0;

	(void)end_offset;
	if (!why)
		why = &w;
	memset(why, 0, sizeof *why);
	pts = why->samples;
	why->opts = *o;
	why->lag = lag;
	why->age_ns = age_ns;
	why->running = running;
	why->idle_ns = sat_sub(now, off->time);
	why->nentries = off->nhist;
	for (int i = 0; i < off->nhist; i++) {
		const struct ch_commit *c = &off->hist[i];
		if (sat_sub(now, c->time) > o->window_ns) {
			why->outside++;
			continue;
		}
		pts[np].time = c->time;
		pts[np].offset = c->offset;
		pts[np].seq = c->seq;
		pts[np].lag = c->end_seq > c->seq ? c->end_seq - c->seq : 0;
		np++;
	}
	pts[np].time = now;
	pts[np].offset = off->offset;
	pts[np].seq = off->seq;
	pts[np].lag = lag;
	np++;
	why->nsamples = np;

	/* 1. REWIND */
	for (int i = 1; i < np; i++)
		if (pts[i].offset < pts[i - 1].offset) {
			why->moved_back = i;
			return ruled(why, 1, CH_ST_REWIND);
		}
	/* 2. FAILED: chsub gave up on the record at the offset. */
	const struct ch_retry *retry = ch_offset_retry(off);
	if (retry && retry->gave_up)
		return ruled(why, 2, CH_ST_FAILED);
	/* 3. caught up */
	if (lag <= o->allowed_lag && !retry)
		return ruled(why, 3, CH_ST_OK);
	/* How long is "too long" adapts to how often this subscriber
	 * usually commits, but never beyond the window. */
	int64_t stop_after = o->stall_ns, gaps[CH_HISTORY_MAX];
	int ng = 0;
	for (int i = 1; i < off->nhist; i++)
		gaps[ng++] = sat_sub(off->hist[i].time,
		    off->hist[i - 1].time);
	if (ng) {
		qsort(gaps, (size_t)ng, sizeof gaps[0], cmp_i64);
		int64_t g = gaps[ng / 2];
		int64_t typical = g > INT64_MAX / 2 ? INT64_MAX :
		    g < 0 ? 0 : 2 * g;
		if (typical > o->window_ns)
			typical = o->window_ns;
		if (typical > stop_after)
			stop_after = typical;
		why->median_gap = g;
	}
	why->ngaps = ng;
	why->stop_after = stop_after;
	int stuck = why->idle_ns > stop_after && age_ns > stop_after;
	/* 4. STOP: nobody reads (even if the last one was retrying). */
	if (stuck && !running)
		return ruled(why, 4, CH_ST_STOP);
	/* 5. RETRY: not stalled, but failing and trying again. */
	if (retry)
		return ruled(why, 5, CH_ST_RETRY);
	/* 6. STALL: running, not advancing. */
	if (stuck)
		return ruled(why, 6, CH_ST_STALL);
	/* 7. WARN: consuming, but the lag only grows, and it never caught
	 * up in the window (as Burrow: a consumer run from cron that catches
	 * up at every run lags only between runs). */
	if (np >= 3 && pts[np - 1].offset > pts[0].offset &&
	    pts[np - 1].lag > pts[0].lag) {
		int growing = 1;
		for (int i = 1; i < np; i++)
			if (pts[i].lag < pts[i - 1].lag)
				growing = 0;
		for (int i = 0; i + 1 < np; i++)
			if (pts[i].lag <= o->allowed_lag)
				growing = 0;
		if (growing)
			return ruled(why, 7, CH_ST_WARN);
	}
	/* 8. OK otherwise */
	return ruled(why, 8, CH_ST_OK);
}

/*
 * The age of the oldest unread record, number seq, published at ts (0:
 * unknown), in a segment last written at `written` (0: unknown).  Its
 * time stamp says how old it is, unless the clock was stepped back after
 * it was published (or after a record before it: writers never let time
 * stamps go back, so every record up to the clock's catching up carries
 * that future time): then it is ahead of the clock, and its age is not
 * negative but unknown.  Two lower bounds are known: the record is no
 * younger than the last write to its segment, and a commit whose channel
 * end was past seq saw it there already.  So the age is the largest of
 * the three, and never below zero: a backlog never looks younger than
 * the evidence, nor empty.
 */
static int64_t
oldest_age(const struct ch_offset *off, uint64_t seq, int64_t ts,
    int64_t written, int64_t now)
{
	int64_t age = ts > 0 ? ch_age(now, ts) : 0;

	if (written > 0 && ch_age(now, written) > age)
		age = ch_age(now, written);

	for (int i = 0; i < off->nhist; i++) {	/* oldest first */
		if (off->hist[i].end_seq > seq) {
			int64_t seen = ch_age(now, off->hist[i].time);
			return seen > age ? seen : age;
		}
	}
	return age;
}

/*
 * Does the offset file agree with the channel?  0 if so; else the row
 * becomes INVALID (or ERROR, when the data cannot be read) and 1 is
 * returned.  Start and end were read before the offset file: a
 * subscriber may have committed past that end since, or a chcompact
 * deleted the segment it is in.  Look at both again before calling it
 * damage (they are then the newer ones, for this row and the next).
 */
static int
distrust(struct ch_channel *ch, const struct ch_offset *off,
    struct ch_start *start, struct ch_end *end, struct ch_lagrow *r)
{
	struct ch_error e;

	if (ch_offset_check(ch, off, start, end, &e) == 0)
		return 0;
	if (ch_channel_start(ch, start, &e) == 0 &&
	    ch_channel_end(ch, end, &e) == 0 &&
	    ch_offset_check(ch, off, start, end, &e) == 0) {
		r->end = end->offset;
		r->end_seq = end->seq;
		return 0;
	}
	r->end = end->offset;
	r->end_seq = end->seq;
	r->status = e.code == CH_EXIT_DATAERR ? CH_ST_INVALID : CH_ST_ERROR;
	snprintf(r->error, sizeof r->error, "%.500s", e.msg);
	return 1;
}

int
ch_lag_collect(struct ch_channel *ch, const struct ch_lag_opts *o,
    int64_t now, struct ch_lagrow **rowsp, size_t *np, struct ch_error *err)
{
	struct ch_end end;
	struct ch_start start;
	struct ch_lagrow *rows;
	char **names;
	size_t n;

	*rowsp = NULL;
	*np = 0;
	if (ch_channel_end(ch, &end, err) < 0 ||
	    ch_channel_start(ch, &start, err) < 0)
		return -1;
	if (ch_sub_list(ch, &names, &n, err) < 0)
		return -1;
	rows = calloc(n ? n : 1, sizeof *rows);
	if (!rows) {
		ch_sub_list_free(names, n);
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct ch_offset off;
		struct ch_error e;
		int rc = ch_sub_read(ch, names[i], &off, &e);

		if (rc < 0 && e.code == CH_EXIT_NOINPUT)
			continue;	/* deleted since listed: no row */
		struct ch_lagrow *r = &rows[k++];
		r->channel = ch->arg;
		snprintf(r->subscriber, sizeof r->subscriber, "%s", names[i]);
		r->end = end.offset;
		r->end_seq = end.seq;
		r->pid = ch_sub_running(ch, names[i]);
		if (rc < 0) {
			/* damage is INVALID, as an offset that disagrees
			 * with the data: chsub cannot resume from it */
			r->status = e.code == CH_EXIT_DATAERR ? CH_ST_INVALID :
			    CH_ST_ERROR;
			r->unparsed = 1;
			snprintf(r->error, sizeof r->error, "%.500s", e.msg);
			continue;
		}
		r->offset = off.offset;
		r->seq = off.seq;
		r->last_commit = off.time;
		r->idle_ns = ch_age(now, off.time);
		if (distrust(ch, &off, &start, &end, r) != 0)
			continue;
		r->lag_bytes = end.offset > off.offset ? end.offset - off.offset : 0;
		r->lag_records = end.seq > off.seq ? end.seq - off.seq : 0;
		if (r->lag_records > 0) {
			/* Behind the earliest record: its oldest unread record
			 * is the earliest one. */
			int behind = off.offset < start.offset;
			uint64_t at = behind ? start.offset : off.offset;
			int64_t ts = 0, written = 0;
			if (ch_record_time(ch, at, &ts, &written, &e) < 0)
				ts = written = 0;
			r->age_ns = oldest_age(&off, behind ? start.seq : off.seq,
			    ts, written, now);
		}
		for (int h = 0; h < off.nhist; h++)
			r->hist_lag[r->nhist++] = off.hist[h].end_seq >
			    off.hist[h].seq ? off.hist[h].end_seq -
			    off.hist[h].seq : 0;
		r->hist_lag[r->nhist++] = r->lag_records;
		r->status = ch_lag_status(&off, end.offset, end.seq, r->age_ns,
		    r->pid > 0, now, o, &r->why);
		if (ch_offset_retry(&off))
			r->retry = off.retry;
	}
	ch_sub_list_free(names, n);
	*rowsp = rows;
	*np = k;
	return 0;
}
