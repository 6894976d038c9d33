/*
 * reserve.h - disk blocks reserved ahead of the active segment's end.
 *
 * A write that extends a file on ext4 (and most file systems with delayed
 * allocation) reserves its blocks page by page as it goes; a write into
 * blocks the file already owns does not, and bulk chpub spends about 7%
 * less CPU (bench/RESULTS.md).  So a writer reserves blocks past the end
 * of the active segment with fallocate(FALLOC_FL_KEEP_SIZE): the file's
 * size, all that readers and the format go by, does not change, and a
 * power loss leaves nothing but blocks past the end.  What is reserved
 * grows with what the segment holds (at most CH_RESERVE_MAX past its end,
 * so a channel holding a few records takes little disk), and a rollover
 * gives back what the sealed segment did not use.  A file system that
 * cannot reserve is written as before.  The writer does not reserve under
 * sync always: each fdatasync would convert the reserved blocks it wrote.
 */
#ifndef CH_RESERVE_H
#define CH_RESERVE_H

#include <stdint.h>

#define CH_RESERVE_MIN (64u << 10)
#define CH_RESERVE_MAX (8u << 20)

struct ch_reserve {
	uint64_t to;		/* reserved up to this file position, or 0 */
	int unsupported;	/* the file system cannot reserve */
};

/* Before writing file positions up to `need` of fd, whose records from
 * position `start` on are what it holds: make sure blocks are reserved
 * up to need, and some way past it, but not past `limit` (the segment's
 * size limit) unless need is.  Best effort: a reservation that fails
 * (a full disk) leaves the write to say what is wrong. */
void ch_reserve_ahead(struct ch_reserve *r, int fd, uint64_t start,
    uint64_t end, uint64_t need, uint64_t limit);

/* Forget what was reserved: fd is another file, or was cut short. */
void ch_reserve_forget(struct ch_reserve *r);

/* Give back the blocks fd holds past `size`, its size now (a sealed
 * segment never grows again).  Best effort; a file not `size` long is
 * left alone. */
void ch_reserve_release(int fd, uint64_t size);

#endif
