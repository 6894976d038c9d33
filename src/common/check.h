/*
 * check.h - verifying a channel byte by byte, and repairing what can be
 * repaired without losing a valid record.
 *
 * Checked: the index (header, entry checksums, order, agreement with the
 * segment headers); every record of every segment (magic, checksum,
 * sequence numbers without gaps, times never decreasing); seals (last in
 * their file, counts right, the next segment starting where they say);
 * stray and leftover files; every offset file (parsable, within the data,
 * on a record boundary, agreeing on the sequence number).
 *
 * A record valid on its own but out of sequence (a copy of an earlier
 * one) is damage where it stands, as readers see it: the number due stays
 * the one due.
 *
 * Repaired (with `repair`): a torn tail (cut where the check found it, as
 * the next writer would), a leftover temp file (removed when no one holds
 * the lock that guards it), a half-registered subscriber directory,
 * offsets that point below the earliest record, past the end or between
 * records (moved to the earliest record, the end, or the start of the
 * record they point into), and corrupt bytes between two valid records of
 * a segment, such as a power loss leaves (overwritten by a gap record of
 * their length that counts the records lost: format.h), the tail of a
 * segment sealed without fdatasync that a power loss took (a gap record up
 * to where the seal goes, and the seal: only when the next segment's
 * header flag says it was so sealed), and the header-only segment such a
 * loss can leave outside the index (removed).  The check reads
 * without a lock; a segment is changed only under append.lock, once what
 * the check saw is seen again (repair.h).  Nothing valid is ever removed.
 */
#ifndef CH_CHECK_H
#define CH_CHECK_H

#include "channel.h"
#include "compact.h"
#include "error.h"
#include "progress.h"

struct ch_check_result {
	unsigned problems;	/* found */
	unsigned repaired;	/* of which repaired (a torn tail a writer
				 * cut meanwhile counts) */
	unsigned left;		/* of which still there: the others */
	uint64_t records;	/* verified */
	uint64_t segments;
};

/* report gets CH_REPORT_WARN for each problem, CH_REPORT_FIXED for each
 * repair (of a problem, or of something that was none, such as an
 * interrupted rollover), CH_REPORT_UNFIXED for each problem a repair had
 * to leave (and why), CH_REPORT_INFO for progress.  `progress` (may be NULL) is given
 * the range of the data and kept up to date as records are verified; it
 * is ended before ch_check returns. */
int ch_check(struct ch_channel *ch, int repair, ch_report_fn report,
    void *ctx, struct ch_progress *progress, struct ch_check_result *res,
    struct ch_error *err);

#endif
