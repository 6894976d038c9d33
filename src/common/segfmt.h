/*
 * segfmt.h - the two halves of segment.c that know a format: format 1's
 * records (segment1.c) and format 2's frames (segment2.c).  Only the
 * segment*.c files include this; everything else goes through segment.h.
 */
#ifndef CH_SEGFMT_H
#define CH_SEGFMT_H

#include "segment.h"

#define CH_CUR_CHUNK (256u << 10)	/* read at a time */
#define CH_CUR_BUF (1u << 20)		/* the buffer, at least */

/* Make [pos, pos+need) available in the cursor's buffer, reading as much
 * as the file allows beyond it.  Returns 1 if available, 0 if the file (as
 * far as c->size) does not hold it, or CH_CUR_IOERR. */
int ch_cur_fill(struct ch_segcur *c, uint64_t need);

/* The common case of ch_cur_fill(), checked inline. */
static inline int
ch_cur_buffered(const struct ch_segcur *c, uint64_t need)
{
	return c->pos >= c->buf_pos && c->pos + need <= c->size &&
	    c->pos + need <= c->buf_pos + c->buf_len;
}

/* Do the 4 bytes before file position p hold len, as the trailer of a
 * record or frame of len bytes ending there does?  1, 0, or CH_CUR_IOERR. */
int ch_cur_trailer_is(const struct ch_segcur *c, uint64_t p, uint64_t len);

/* The CRC-32C of the file's bytes [from, to), continuing crc, read in
 * chunks: a frame of hundreds of megabytes needs no buffer its size.
 * 0, 1 if the file ends first, or -1 on an I/O error. */
int ch_seg_crc_stream(int fd, uint64_t from, uint64_t to, uint32_t *crc);

/* Bytes from pos on, in the buffer (after a successful fill). */
static inline const unsigned char *
ch_cur_at(const struct ch_segcur *c)
{
	return c->buf + (c->pos - c->buf_pos);
}

struct ch_segfmt {
	int (*next)(struct ch_segcur *c, struct ch_rec *r);
	int (*resync)(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
	    uint64_t *next, uint64_t *next_seq);
	/* The last record or frame of a segment of `size` bytes: 1 if it is
	 * valid and follows its predecessor (t filled in, except torn), 0
	 * if not, -1 on an I/O error. */
	int (*tail)(int fd, const struct ch_seghdr *hdr, uint64_t size,
	    struct ch_tail *t);
	/* The record or frame at the cursor, if it is longer than
	 * CH_CUR_BUF and the file holds it: checked with its CRC streamed,
	 * its payload never held whole.  CH_CUR_OK (r filled in but for
	 * meta and payload, which are NULL; the cursor has not moved),
	 * CH_CUR_BAD, CH_CUR_IOERR, or CH_CUR_END when there is no such big
	 * one: the cursor is to look (a seal, a short one, one the file does
	 * not hold, a header that does not decode). */
	int (*big)(struct ch_segcur *c, struct ch_rec *r);
	int (*seq_before)(int fd, const struct ch_seghdr *hdr, uint64_t pos,
	    uint64_t *seq);
	int (*peek)(int fd, const struct ch_seghdr *hdr, uint64_t pos,
	    int *type, int64_t *ts);
	unsigned char *(*seal)(unsigned char *buf, const struct ch_seghdr *hdr,
	    uint64_t seq, int64_t ts, const struct ch_seal *s, uint32_t *lenp);
	/* See ch_gap_make (segment.h). */
	int (*gap)(unsigned char *dst, const struct ch_seghdr *hdr, uint64_t len,
	    uint64_t seq, int64_t ts, uint64_t count);
};

extern const struct ch_segfmt ch_segfmt1, ch_segfmt2;

#endif
