/* tailmark.c - the tail mark in append.lock (see tailmark.h). */
#include <config.h>

#include <string.h>

#include "crc32c.h"
#include "fsutil.h"
#include "tailmark.h"

/* Layout, little-endian (channel(5)): "CHTM", base, first_seq, created,
 * pos, next_seq (8 bytes each), format (4), 8 zero bytes, the CRC-32C of
 * the 56 bytes before it, 4 zero bytes. */
#define MARK_MAGIC "CHTM"

int
ch_tailmark_read(int fd, struct ch_tailmark *m)
{
	unsigned char b[CH_TAILMARK_BYTES];
	ssize_t n = ch_pread_full(fd, b, sizeof b, 0);

	if (n < 0)
		return -1;
	if (n != (ssize_t)sizeof b || memcmp(b, MARK_MAGIC, 4) != 0 ||
	    ch_get32(b + 56) != ch_crc32c(0, b, 56))
		return 0;
	m->base = ch_get64(b + 4);
	m->first_seq = ch_get64(b + 12);
	m->created = (int64_t)ch_get64(b + 20);
	m->pos = ch_get64(b + 28);
	m->next_seq = ch_get64(b + 36);
	m->format = ch_get32(b + 44);
	return 1;
}

int
ch_tailmark_write(int fd, const struct ch_tailmark *m)
{
	unsigned char b[CH_TAILMARK_BYTES];

	memset(b, 0, sizeof b);
	memcpy(b, MARK_MAGIC, 4);
	ch_put64(b + 4, m->base);
	ch_put64(b + 12, m->first_seq);
	ch_put64(b + 20, (uint64_t)m->created);
	ch_put64(b + 28, m->pos);
	ch_put64(b + 36, m->next_seq);
	ch_put32(b + 44, m->format);
	ch_put32(b + 56, ch_crc32c(0, b, 56));
	return ch_pwrite_full(fd, b, sizeof b, 0) < 0 ? -1 : 0;
}

int
ch_tailmark_clear(int fd)
{
	unsigned char b[CH_TAILMARK_BYTES];

	memset(b, 0, sizeof b);
	return ch_pwrite_full(fd, b, sizeof b, 0) < 0 ? -1 : 0;
}

int
ch_tailmark_tail(int markfd, int segfd, const struct ch_seghdr *h,
    uint64_t size, struct ch_tail *t)
{
	struct ch_tailmark m;

	if (ch_tailmark_read(markfd, &m) != 1 || m.base != h->base ||
	    m.first_seq != h->first_seq || m.created != h->created ||
	    m.format != h->format || m.pos > size)
		return 0;
	return ch_segment_ends_at(segfd, h, m.pos, t) == 1 &&
	    t->next_seq == m.next_seq;
}
