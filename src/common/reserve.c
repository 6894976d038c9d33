/*
 * reserve.c - disk blocks reserved ahead of the active segment's end
 * (reserve.h).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reserve.h"

void
ch_reserve_ahead(struct ch_reserve *r, int fd, uint64_t start, uint64_t end,
    uint64_t need, uint64_t limit)
{
	struct stat st;

	if (need <= r->to || r->unsupported)
		return;
	/* Ahead as much as the segment holds: a trickle of records takes
	 * little disk, bulk input few calls. */
	uint64_t ahead = end > start ? end - start : 0;
	if (ahead < CH_RESERVE_MIN)
		ahead = CH_RESERVE_MIN;
	if (ahead > CH_RESERVE_MAX)
		ahead = CH_RESERVE_MAX;
	uint64_t to = need + ahead;
	if (to > limit)
		to = need > limit ? need : limit;
	/* A writer before us (one chpub a record) may have reserved enough
	 * already: with half the way ahead still there, no call (each one
	 * changes the inode). */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_blocks * 512 >=
	    need + (to - need) / 2) {
		r->to = (uint64_t)st.st_blocks * 512;
		return;
	}
#ifdef FALLOC_FL_KEEP_SIZE
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)end,
	    (off_t)(to - end)) == 0) {
		r->to = to;
		return;
	}
	if (errno == EOPNOTSUPP || errno == ENOSYS)
		r->unsupported = 1;
#else
	r->unsupported = 1;
#endif
}

void
ch_reserve_forget(struct ch_reserve *r)
{
	r->to = 0;
}

void
ch_reserve_release(int fd, uint64_t size)
{
	struct stat st;

	/* ftruncate to the size the file has frees the blocks past it. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size &&
	    (uint64_t)st.st_blocks * 512 > size + 4096)
		(void)ftruncate(fd, (off_t)size);
}
