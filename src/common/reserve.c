/*
 * reserve.c - disk blocks reserved ahead of the active segment's end
 * (reserve.h).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "reserve.h"

/* Is there room enough on fd's file system to reserve `bytes` more? */
static int
plenty_free(int fd, uint64_t bytes)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return 0;
	return (uint64_t)sv.f_bavail / CH_RESERVE_FREE_FACTOR >=
	    bytes / (sv.f_frsize ? sv.f_frsize : 512) + 1;
}

void
ch_reserve_ahead(struct ch_reserve *r, int fd, uint64_t start, uint64_t end,
    uint64_t need, uint64_t limit)
{
	struct stat st;

	if (need <= r->to || r->off)
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
	if (fstat(fd, &st) < 0)
		return;
	uint64_t owned = (uint64_t)st.st_blocks * 512;
	if (owned >= need + (to - need) / 2) {
		r->to = owned;
		return;
	}
	if (!plenty_free(fd, to - end))
		return;		/* maybe later, once compaction made room */
#ifdef FALLOC_FL_KEEP_SIZE
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)end,
	    (off_t)(to - end)) == 0) {
		r->to = to;
		return;
	}
	/* ext4 keeps what a reservation that ran out of space got: give it
	 * back, for other files' writes. */
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		ch_reserve_release(fd, end);
#endif
	r->off = 1;
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

	/* ftruncate to the size the file has frees the blocks past it;
	 * only blocks past the last one it needs are worth the call. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size &&
	    (uint64_t)st.st_blocks * 512 > size + (uint64_t)st.st_blksize)
		(void)ftruncate(fd, (off_t)size);
}
