/*
 * spanout.c - passing verified segment bytes on to an output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spanout.h"

void
ch_spanout_init(struct ch_spanout *o, int fd)
{
	struct stat st;

	o->fd = fd;
	o->splice = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Smaller pieces are written: a spliced piece takes a pipe slot of its
 * own however small, where write(2)s fill one page after another, so
 * that a pipe of small spliced pieces would hold few records. */
#define SPLICE_MIN 4096

ssize_t
ch_spanout_write(struct ch_spanout *o, const struct ch_span *s, size_t from,
    size_t len)
{
	if (o->splice && s->fd >= 0 && len >= SPLICE_MIN) {
		loff_t at = (loff_t)(s->file_pos + from);
		ssize_t n = splice(s->fd, &at, o->fd, NULL, len, 0);
		if (n > 0)
			return n;
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
		    errno == EPIPE))
			return -1;	/* as write(2) would have it */
		/* Not possible here (EINVAL: a file system without splice,
		 * say), or the file reads short of what was verified (0, or
		 * an error reading it): the copy in hand is the one that was
		 * checked; and write from now on if splice cannot. */
		if (n < 0)
			o->splice = 0;
	}
	return write(o->fd, s->p + from, len);
}
