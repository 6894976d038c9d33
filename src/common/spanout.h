/*
 * spanout.h - passing verified segment bytes on to an output.
 *
 * When the output is a pipe, pieces of a page or more go from the page
 * cache into the pipe by splice(2), without a copy through this process;
 * else, and wherever splice cannot, by write(2) from the copy in hand.  This relies
 * on segments being append-only (channel(5)): bytes a reader has verified
 * are never changed in place, so the file holds what the reader checked.
 */
#ifndef CH_SPANOUT_H
#define CH_SPANOUT_H

#include <sys/types.h>

#include "reader.h"

struct ch_spanout {
	int fd;
	int splice;	/* 1 while splice(2) into fd works */
};

/* Output to fd: by splice(2) if fd is a pipe. */
void ch_spanout_init(struct ch_spanout *o, int fd);

/*
 * Pass on bytes [from, from + len) of span s, as write(2) would: how many
 * went out (at least 1), or -1 with errno set (EINTR, EAGAIN and EPIPE as
 * write(2) gives them).
 */
ssize_t ch_spanout_write(struct ch_spanout *o, const struct ch_span *s,
    size_t from, size_t len);

#endif
