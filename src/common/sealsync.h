/*
 * sealsync.h - a segment sealed without fdatasync, and the flag that says
 * so in its successor's header.
 *
 * A rollover under sync none does not wait for the disk: it seals the
 * active segment and creates the next one with CH_SEGF_PRED_UNSYNCED in
 * its header (written and fdatasynced before anything else goes into the
 * new file).  The sealed segment's tail may then be lost to a power
 * failure, and the flag is what lets chcompact --repair tell that loss
 * from corruption.  The flag is cleared once the sealed segment is
 * fdatasynced and found whole, by whoever needs it durable: a writer
 * before it syncs under periodic or always (and before a rollover under
 * them), an offset commit, chcompact (channel(5), Rollover).  Rollovers
 * under sync none do not wait for each other: every segment sealed since
 * the last of those may be unsynced, each flagged in its successor.
 */
#ifndef CH_SEALSYNC_H
#define CH_SEALSYNC_H

#include <stdint.h>

#include "channel.h"
#include "error.h"

enum {
	CH_SEALSYNC_CLEAR = 0,	/* the flag is clear (or the segment gone) */
	CH_SEALSYNC_SYNCED = 1,	/* the segment before is durable and whole;
				 * the flag stays (append.lock busy, or the
				 * segment not writable by us) */
	CH_SEALSYNC_DAMAGED = 2,	/* the segment before does not end with
				 * its seal: a power failure took its tail;
				 * the flag stays for chcompact --repair */
};

/*
 * Segment `base` has, or had, the flag: fdatasync the segment before it,
 * check that it ends with the seal that names `base`, and clear the flag
 * in place (its 64-byte header rewritten at offset 0 with one pwrite,
 * fdatasynced) under append.lock: `locked` if the caller holds it, else
 * taken without waiting (a writer holding it clears the flag itself).  A
 * segment before it that compaction deleted needs nothing.  Returns
 * CH_SEALSYNC_*, or -1 if a sync or write failed.
 */
int ch_sealsync(struct ch_channel *ch, uint64_t base, int locked,
    struct ch_error *err);

/*
 * Everything before segment `base` durable: ch_sealsync() of `base` and of
 * every flagged segment before it, back to the first without the flag
 * (each rollover under sync none since the last sync adds one), oldest
 * first.  Returns CH_SEALSYNC_DAMAGED if any segment lost its tail (the
 * others are still made durable), CH_SEALSYNC_SYNCED if some flag had to
 * stay, else CH_SEALSYNC_CLEAR; -1 on an error.
 */
int ch_sealsync_chain(struct ch_channel *ch, uint64_t base, int locked,
    struct ch_error *err);

/* chcompact: ch_sealsync_chain() from the newest segment. */
int ch_sealsync_newest(struct ch_channel *ch, struct ch_error *err);

#endif
