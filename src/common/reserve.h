/*
 * reserve.h - disk blocks reserved ahead of the active segment's end.
 *
 * A write that extends a file on ext4 (and most file systems with delayed
 * allocation) reserves its blocks page by page as it goes; a write into
 * blocks the file already owns does not, and bulk chpub spends a tenth
 * less CPU (bench/RESULTS.md).  So a writer reserves blocks past the end
 * of the active segment with fallocate(FALLOC_FL_KEEP_SIZE): the file's
 * size, all that readers and the format go by, does not change, and a
 * power loss leaves nothing but blocks past the end.  What is reserved
 * grows with what the segment holds (at most CH_RESERVE_MAX past its end,
 * so a channel holding a few records takes little disk), a rollover gives
 * back what the sealed segment did not use, and nothing is reserved where
 * it would take space that others may need: on a file system with little
 * free space left, and never after a reservation failed.  A file system
 * that cannot reserve is written as before.  The writer does not reserve
 * under sync always: each fdatasync would convert the reserved blocks it
 * wrote.
 */
#ifndef CH_RESERVE_H
#define CH_RESERVE_H

#include <stdint.h>

#define CH_RESERVE_MIN (16u << 10)
#define CH_RESERVE_MAX (8u << 20)
/* Reserve only while the file system keeps this many times as much free
 * space as the reservation takes. */
#define CH_RESERVE_FREE_FACTOR 32

struct ch_reserve {
	uint64_t to;		/* reserved up to this file position, or 0 */
	int off;		/* not here: unsupported, or a failure seen */
};

/* Before writing file positions up to `need` of fd, whose records from
 * position `start` to `end` (its size) are what it holds: make sure blocks
 * are reserved up to need, and some way past it, but not past `limit`
 * (the segment's size limit) unless need is.  Best effort, and silent:
 * a reservation that fails gives back what it got (ext4 keeps the blocks
 * of one that ran out of space) and is not tried again by this writer. */
void ch_reserve_ahead(struct ch_reserve *r, int fd, uint64_t start,
    uint64_t end, uint64_t need, uint64_t limit);

/* Forget what was reserved: fd is another file, or was cut short. */
void ch_reserve_forget(struct ch_reserve *r);

/* Give back the blocks fd holds past `size`, its size now (a sealed
 * segment never grows again).  Best effort; a file not `size` long is
 * left alone. */
void ch_reserve_release(int fd, uint64_t size);

#endif
