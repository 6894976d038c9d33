/*
 * compact.h - deleting what no one needs: consumed segments, data beyond
 * retention, subscribers gone idle.
 *
 * Only whole sealed segments are deleted, oldest first, and never the
 * active one, so what remains is always a contiguous suffix of the channel.
 * The whole pass runs under an exclusive lock on compact.lock; anything
 * that moves an offset to a place it was not before (registration,
 * choffset, chcompact --repair) holds it shared, so the minimum offset computed here cannot be
 * undercut while segments go.  Subscribers' own forward commits need no
 * lock: moving forward never makes a deletion wrong.  Files are unlinked
 * before the index is trimmed (under the append lock), so a crash leaves
 * index entries for missing files only as a prefix, which readers skip.
 */
#ifndef CH_COMPACT_H
#define CH_COMPACT_H

#include <stdint.h>

#include "channel.h"
#include "error.h"

/* INFO: progress (-v); WARN: a problem; PLAN: --dry-run's plan (stdout);
 * FIXED, UNFIXED: what a repair did, or could not do, and why. */
enum { CH_REPORT_INFO, CH_REPORT_WARN, CH_REPORT_PLAN, CH_REPORT_FIXED,
    CH_REPORT_UNFIXED };

typedef void (*ch_report_fn)(void *ctx, int level, const char *msg);

struct ch_compact_opts {
	int dry_run;
	int64_t max_age_ns;	/* retention; 0: none */
	uint64_t max_bytes;	/* retention; 0: none */
	int64_t expire_ns;	/* deregister idle subscribers; 0: never */
	int64_t lock_wait_ns;
	ch_report_fn report;
	void *ctx;
};

struct ch_compact_result {
	uint64_t segments, bytes;	/* deleted (or would be) */
	uint64_t expired;
	unsigned failed;		/* subscribers whose offset file an
					 * error (not damage) kept from being
					 * read, or an error from expiring
					 * (each reported): exit 1 */
	int sealed;			/* an aged active segment was sealed */
};

int ch_compact(struct ch_channel *ch, const struct ch_compact_opts *o,
    struct ch_compact_result *res, struct ch_error *err);

#endif
