/*
 * repair.h - the changes chcompact --repair makes to a segment in place:
 * a gap record over damaged bytes, and the cut of a torn tail.
 *
 * The check (check.c) reads the channel without a lock, beside writers
 * that append, cut torn tails and write over them, and beside compaction
 * that deletes segments.  So what it saw may no longer be there: each
 * change is made under append.lock, which every writer takes, and only
 * once the bytes are seen again as the check saw them, with the lock
 * held.  Otherwise nothing is written.
 */
#ifndef CH_REPAIR_H
#define CH_REPAIR_H

#include <stdint.h>

#include "channel.h"
#include "error.h"
#include "format.h"

/* Damaged bytes [pos, next) of segment `base`, as the check found them
 * (file positions). */
struct ch_damage {
	uint64_t base;
	uint64_t prev;		/* the valid record before them (its first
				 * byte), or 0 if they start the segment */
	uint64_t pos, next;
	uint64_t lost;		/* the sequence number due at pos */
	uint64_t next_seq;	/* that of the valid record at next */
	int64_t min_ts;		/* the time of the record before them */
};

enum {
	CH_REPAIR_CHANGED = 0,	/* no longer as the check saw it: left */
	CH_REPAIR_DONE = 1,
	CH_REPAIR_GONE = 2,	/* the segment was deleted meanwhile */
	CH_REPAIR_BY_WRITER = 3,	/* a writer cut the torn tail meanwhile */
};

/*
 * Write `gap` (next - pos bytes, made for segment header h) over the
 * damage d, fdatasynced, if with append.lock held the segment still has
 * header h, the record at prev still ends at pos with number lost - 1 (or
 * its last ones), no record numbered lost starts at pos, and the search
 * from pos still finds the record numbered next_seq at next.
 * CH_REPAIR_*, or -1 on an error.
 */
int ch_repair_gap(struct ch_channel *ch, const struct ch_seghdr *h,
    const struct ch_damage *d, const unsigned char *gap,
    struct ch_error *err);

/*
 * Cut the torn tail of segment `base` at file position pos, fdatasynced,
 * if with append.lock held the valid record at prev (0: none, pos is the
 * header's end) still ends at pos with `due` the number after it, and what
 * follows is not the record due; *cut gets the bytes cut.
 * CH_REPAIR_BY_WRITER if a writer cut it (the file ends at pos, or the
 * record due starts there).  CH_REPAIR_*, or -1 on an error.
 */
int ch_repair_tail(struct ch_channel *ch, uint64_t base, uint64_t prev,
    uint64_t pos, uint64_t due, uint64_t *cut, struct ch_error *err);

/*
 * A segment sealed without fdatasync (a rollover under sync none) whose
 * tail a power failure took: its valid records end at file position pos,
 * numbered up to lost - 1, and its successor `next` (header nh) still has
 * CH_SEGF_PRED_UNSYNCED and starts at record nh->first_seq.  With
 * append.lock held, and only if all that is still so: write from pos one
 * gap record standing for the records lost, up to where the seal goes
 * (the offset of nh->base), then the seal, cut the file after it (or
 * extend it, if it came back shorter), fdatasync it, and clear the flag.
 * *count gets the records lost.  -2 if no gap can stand there (*count
 * says how many it would be).  CH_REPAIR_*, or -1 on an error.
 */
int ch_repair_lost_tail(struct ch_channel *ch, uint64_t base, uint64_t pos,
    uint64_t lost, const struct ch_seghdr *nh, uint64_t *count,
    struct ch_error *err);

/*
 * Segment `base` is not in the index: if, with append.lock held, it still
 * is not, holds only its header, and that header has the flag that the
 * segment before it was sealed without fdatasync, remove it (and fsync
 * the directory).  Such a file is what a power failure leaves of a
 * rollover under sync none that had not yet indexed it, once the sealed
 * segment lost the seal that named it: no record was ever in it.
 * CH_REPAIR_*, or -1 on an error.
 */
int ch_repair_orphan(struct ch_channel *ch, uint64_t base,
    struct ch_error *err);

#endif
