/*
 * offcheck.h - does a subscriber's offset file agree with the channel?
 *
 * Offset files are only ever written by chtools, atomically, so one that
 * disagrees with the data (past the end, not on a record boundary, or
 * naming another record than the one at its offset) was restored from
 * elsewhere (another channel, an old backup), edited, or damaged.  Then
 * nothing in it can be believed, neither where the subscriber is nor what
 * it has consumed: chsub refuses to read from it, chcompact deletes
 * nothing the subscriber may still need but what retention deletes (and
 * says it may have lost that), chlag reports it as INVALID,
 * choffset refuses to shift from it.
 *
 * The check costs O(1): the record header at the offset (or the record
 * ending there), as chsub looks at it; chcompact --check walks the whole
 * segment instead.
 */
#ifndef CH_OFFCHECK_H
#define CH_OFFCHECK_H

#include "channel.h"
#include "error.h"
#include "subscriber.h"

/*
 * 0 if o agrees with the channel whose earliest record and end are st and
 * end; else CH_EXIT_DATAERR saying why (or CH_EXIT_FAIL on an I/O error).
 * An offset below the earliest record agrees if its record number is
 * below too: retention removed what it had not read (chsub skips it).
 * `end` must be read after the offset file: a subscriber may commit
 * meanwhile, and an end older than its offset would look like damage.
 */
int ch_offset_check(struct ch_channel *ch, const struct ch_offset *o,
    const struct ch_start *st, const struct ch_end *end,
    struct ch_error *err);

#endif
