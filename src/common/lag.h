/*
 * lag.h - how far behind a subscriber is, and what that means.
 *
 * Everything is O(1) per subscriber: the end comes from the tail of the
 * active segment, the subscriber's position and sequence number from its
 * offset file, so lag in records is a subtraction; the age of the oldest
 * unconsumed record is one header read at the subscriber's offset.
 *
 * Status, from the commit history kept in the offset file (rules in the
 * spirit of Burrow's evaluator; chlag(1) states them precisely):
 *   points = history entries newer than now - window, then "now"
 *   stop_after = max(stall, min(2 x median gap between commits, window))
 *   1. REWIND  the offset went backwards between two points
 *   2. FAILED  the handler of chsub -x failed on the record at the offset
 *              until chsub gave up (exit 69; the retry state says so)
 *   3. OK      lag <= allowed_lag and no retry state (an idle, caught-up
 *              subscriber is fine)
 *   4. STOP    no commit for stop_after, the oldest unread record is older
 *              than stop_after, and no chsub is running for it
 *   5. RETRY   the handler failed on the record at the offset, and chsub
 *              tries it again (retry state in the offset file)
 *   6. STALL   as STOP, with a chsub running
 *   7. WARN    >= 3 points, the offset advanced, and the lag never
 *              shrank from one point to the next and grew overall
 *   8. OK      otherwise
 */
#ifndef CH_LAG_H
#define CH_LAG_H

#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "error.h"
#include "subscriber.h"

/* ERROR: the offset file cannot be read; INVALID: it can, but disagrees
 * with the channel (see offcheck.h), so no lag can be told from it. */
enum { CH_ST_OK, CH_ST_WARN, CH_ST_STALL, CH_ST_STOP, CH_ST_REWIND,
    CH_ST_RETRY, CH_ST_FAILED, CH_ST_ERROR, CH_ST_INVALID };
#define CH_ST_COUNT (CH_ST_INVALID + 1)

struct ch_lag_opts {
	int64_t window_ns;
	uint64_t allowed_lag;
	int64_t stall_ns;
};

void ch_lag_defaults(struct ch_lag_opts *o);

/* A point the rules look at: a history entry within the window, or the
 * current position (time = now). */
struct ch_lag_sample {
	int64_t time;
	uint64_t offset, seq, lag;
};

/* What ch_lag_status looked at and which rule matched, for --explain. */
struct ch_lag_why {
	int rule;		/* 1..8, as numbered above */
	struct ch_lag_opts opts;
	int nsamples;		/* the points, oldest first, the last is now */
	struct ch_lag_sample samples[CH_HISTORY_MAX + 1];
	int outside;		/* history entries older than the window */
	int moved_back;		/* REWIND: samples[i] is below samples[i - 1] */
	int nentries, ngaps;	/* whole history, and gaps between entries */
	int64_t median_gap, stop_after;
	int64_t idle_ns, age_ns;	/* now - committed, age */
	int running;
	uint64_t lag;
};

struct ch_lagrow {
	const char *channel;
	char subscriber[CH_SUB_NAME_MAX + 1];
	uint64_t offset, seq;
	uint64_t end, end_seq;
	uint64_t lag_bytes, lag_records;
	int64_t age_ns;		/* age of the oldest unconsumed record */
	int64_t last_commit;	/* ns since the epoch */
	int64_t idle_ns;
	pid_t pid;		/* running chsub, 0 if none */
	int status;
	struct ch_retry retry;	/* records == 0: none */
	struct ch_lag_why why;	/* rule == 0: none (ERROR, INVALID) */
	int nhist;		/* lag (records) at each history entry */
	uint64_t hist_lag[CH_HISTORY_MAX + 1];
	char error[512];	/* status ERROR or INVALID: why */
	int unparsed;		/* INVALID: the offset file could not be
				 * parsed (no offset, end or commit time) */
	int channel_error;	/* ERROR of the whole channel, which could
				 * not be read (--json, --yaml): no
				 * subscriber */
};

/* Does the row carry no numbers at all (ERROR, or an offset file that
 * could not be parsed)? */
static inline int
ch_lagrow_blank(const struct ch_lagrow *r)
{
	return r->status == CH_ST_ERROR ||
	    (r->status == CH_ST_INVALID && r->unparsed);
}

const char *ch_status_name(int status);

/* Evaluate the status rules for an offset file's content; why, if not
 * NULL, gets the rule and what it saw. */
int ch_lag_status(const struct ch_offset *off, uint64_t end_offset,
    uint64_t end_seq, int64_t age_ns, int running, int64_t now,
    const struct ch_lag_opts *o, struct ch_lag_why *why);

/* One row per registered subscriber (sorted); rows of subscribers whose
 * offset file is unreadable carry CH_ST_ERROR, those whose offset file
 * is damaged or disagrees with the channel CH_ST_INVALID (with offset,
 * end and commit time unless damaged, but no lag).  Free with free(). */
int ch_lag_collect(struct ch_channel *ch, const struct ch_lag_opts *o,
    int64_t now, struct ch_lagrow **rows, size_t *n, struct ch_error *err);

#endif
