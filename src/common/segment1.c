/* segment1.c - format 1 segments: one record after another (segfmt.h). */
#include <config.h>

#include <string.h>

#include "crc32c.h"
#include "fsutil.h"
#include "segfmt.h"

static int
next1(struct ch_segcur *c, struct ch_rec *r)
{
	int rc;

	if (!ch_cur_buffered(c, CH_REC_HDR) && (rc = ch_cur_fill(c, CH_REC_HDR)) <= 0)
		return rc;
	const unsigned char *p = ch_cur_at(c);
	if (ch_rec_decode(p, &r->h) < 0)
		return CH_CUR_BAD;
	/* A seal right after the header would name this very segment as the
	 * next one (a seal's offset is the next base): readers and writers
	 * following it would go round forever.  Writers never seal an empty
	 * segment (channel(5)), so it is damage. */
	if (r->h.type == CH_REC_SEAL && c->pos == CH_SEG_HDR)
		return CH_CUR_BAD;
	uint64_t total = ch_rec_size(r->h.meta_len, r->h.len);
	if (total > CH_CUR_CHUNK && c->pos + total <= c->size) {
		/* Check the trailer before allocating for a big record: a
		 * damaged length field (up to 4 GiB) must cost 4 bytes of
		 * reading, not a 4 GiB buffer. */
		unsigned char t[CH_REC_TRAILER];
		ssize_t got = ch_pread_full(c->fd, t, sizeof t,
		    (off_t)(c->pos + total - CH_REC_TRAILER));
		if (got != (ssize_t)sizeof t)	/* or the file shrank */
			return got < 0 ? CH_CUR_IOERR : CH_CUR_END;
		if (ch_get32(t) != (uint32_t)total || total > UINT32_MAX)
			return CH_CUR_BAD;
	}
	if (!ch_cur_buffered(c, total) && (rc = ch_cur_fill(c, total)) <= 0)
		return rc;
	p = ch_cur_at(c);
	if (ch_rec_verify_fast(p, total, c->hw) < 0)
		return CH_CUR_BAD;
	uint64_t gap = 0;
	if (r->h.type == CH_REC_GAP && ch_gap_count(p, total, &gap) < 0)
		return CH_CUR_BAD;
	r->pos = c->pos;
	r->total = total;
	r->nseq = ch_rec_seqs(&r->h, gap);
	r->meta = p + CH_REC_HDR;
	r->payload = p + CH_REC_HDR + r->h.meta_len;
	c->pos += total;
	c->entry = 0;
	return CH_CUR_OK;
}

/*
 * Could a record with header h stand `skipped` bytes after the place where
 * record expect_seq was due?  Each lost record took at least
 * CH_REC_OVERHEAD bytes and times never decrease, so this turns down
 * records that merely sit inside a damaged record's payload.  The record
 * due itself may follow bytes that stood for no record (a duplicate).
 */
static int
plausible(const struct ch_rechdr *h, uint64_t skipped, uint64_t expect_seq,
    int64_t min_ts)
{
	if (expect_seq == CH_SEQ_ANY)
		return 1;
	return h->ts >= min_ts && h->seq >= expect_seq &&
	    h->seq - expect_seq <= skipped / CH_REC_OVERHEAD;
}

/* The count of the verified gap record of `total` bytes at `start`:
 * 1 (filled *count), 0 not a plausible gap, -1 I/O error. */
static int
gap_at(int fd, uint64_t start, uint64_t total, uint64_t *count)
{
	unsigned char b[CH_REC_HDR + CH_GAP_COUNT_BYTES];

	/* The count is in the first bytes of the payload. */
	size_t n = total - CH_REC_OVERHEAD < CH_GAP_COUNT_BYTES ?
	    (size_t)(total - CH_REC_OVERHEAD) : CH_GAP_COUNT_BYTES;
	memset(b, 0, sizeof b);
	if (ch_pread_full(fd, b + CH_REC_HDR, n, (off_t)(start + CH_REC_HDR)) !=
	    (ssize_t)n)
		return -1;
	return ch_gap_count(b, total, count) == 0;
}

static int big1(struct ch_segcur *c, struct ch_rec *r);

/*
 * Is there a valid, plausible record at file position p, after the damage
 * at `from`?  With `over` (not NULL), the record at `from` has that
 * header, which claims a length past the end of the file: torn, being
 * written, or its length field is damaged.  Only in the last case does a
 * record follow it, and only where its own trailer says it ends, numbered
 * right after it: records that merely sit in its payload (a segment file
 * published as a record) never are.
 */
static int
valid_at(struct ch_segcur *c, uint64_t p, uint64_t from, uint64_t expect_seq,
    int64_t min_ts, const struct ch_rechdr *over, uint64_t *seq)
{
	uint64_t gap = 0;
	struct ch_rec r;
	int rc;

	if (over) {
		if (p - from < CH_REC_OVERHEAD)
			return 0;
		if ((rc = ch_cur_trailer_is(c, p, p - from)) != 1)
			return rc < 0 ? -1 : 0;
		if (over->type == CH_REC_GAP &&
		    (rc = gap_at(c->fd, from, p - from, &gap)) != 1)
			return rc < 0 ? -1 : 0;
	}
	c->pos = p;
	/* A big one is checked as the walk checks it, never held whole. */
	if ((rc = big1(c, &r)) == CH_CUR_END)
		rc = next1(c, &r);
	if (rc == CH_CUR_IOERR)
		return -1;	/* not "not valid": a walk would cut there */
	if (rc != CH_CUR_OK)
		return 0;
	if (over ? expect_seq != CH_SEQ_ANY && (r.h.ts < min_ts ||
	    r.h.seq < expect_seq ||
	    r.h.seq - expect_seq != ch_rec_seqs(over, gap)) :
	    !plausible(&r.h, p - from, expect_seq, min_ts))
		return 0;
	*seq = r.h.seq;
	return 1;
}

static int
resync1(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next, uint64_t *next_seq)
{
	uint64_t save = c->pos;
	unsigned char magic[4];
	const struct ch_rechdr *over = NULL;
	struct ch_rechdr h;

	/* A damaged record whose header is intact says where the next one
	 * starts: prefer that to a byte scan through its payload.  If that
	 * is past the end of the file, see valid_at. */
	if (ch_cur_fill(c, CH_REC_HDR) > 0 &&
	    ch_rec_decode(c->buf + (save - c->buf_pos), &h) == 0) {
		uint64_t q = save + ch_rec_size(h.meta_len, h.len);
		if (q > c->size) {
			over = &h;
		} else if (q + CH_REC_OVERHEAD <= c->size) {
			int v = valid_at(c, q, save, expect_seq, min_ts, NULL,
			    next_seq);
			if (v != 0) {
				*next = q;
				c->pos = save;
				return v < 0 ? CH_CUR_IOERR : 1;
			}
		}
	}
	ch_put32(magic, CH_REC_MAGIC);
	for (uint64_t p = save + 1; p + CH_REC_OVERHEAD <= c->size; ) {
		c->pos = p;
		int rc = ch_cur_fill(c, 4);
		if (rc < 0) {
			c->pos = save;
			return rc;
		}
		if (rc == 0)
			break;
		/* Find the next candidate magic within the buffer. */
		const unsigned char *b = c->buf + (p - c->buf_pos);
		size_t avail = (size_t)(c->buf_pos + c->buf_len - p);
		const unsigned char *m = memmem(b, avail, magic, 4);
		if (!m) {
			p += avail > 3 ? avail - 3 : 1;
			continue;
		}
		p += (uint64_t)(m - b);
		int v = valid_at(c, p, save, expect_seq, min_ts, over,
		    next_seq);
		if (v != 0) {
			*next = p;
			c->pos = save;
			return v < 0 ? CH_CUR_IOERR : 1;
		}
		p++;
	}
	c->pos = save;
	return 0;
}

/* Check the record of `total` bytes at `start`, its CRC streamed so that
 * a multi-megabyte record needs no big buffer.  Returns 1 valid (filled
 * h, and *seqs: the sequence numbers it takes), 0 not valid, -1 I/O
 * error. */
static int
record_at(int fd, uint64_t start, uint64_t total, struct ch_rechdr *h,
    uint64_t *seqs)
{
	unsigned char b[CH_REC_HDR];
	uint32_t crc = 0;

	if (ch_pread_full(fd, b, CH_REC_HDR, (off_t)start) != CH_REC_HDR)
		return -1;
	if (ch_rec_decode(b, h) < 0 || ch_rec_size(h->meta_len, h->len) != total)
		return 0;
	if (h->type == CH_REC_SEAL && start == CH_SEG_HDR)
		return 0;	/* an empty segment is never sealed: see above */
	int rc = ch_seg_crc_stream(fd, start + CH_REC_HDR, start + total, &crc);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	crc = ch_crc32c(crc, b + 8, CH_REC_HDR - 8);
	if (crc != h->crc)
		return 0;
	uint64_t gap = 0;
	if (h->type == CH_REC_GAP) {
		rc = gap_at(fd, start, total, &gap);
		if (rc != 1)
			return rc;
	}
	*seqs = ch_rec_seqs(h, gap);
	return 1;
}

/* Check the record that ends exactly at `size` (the trailer gives its
 * length), as record_at(). */
static int
tail_record(int fd, uint64_t size, struct ch_rechdr *h, uint64_t *seqs)
{
	unsigned char b[4];

	if (size < CH_SEG_HDR + CH_REC_OVERHEAD)
		return 0;
	if (ch_pread_full(fd, b, 4, (off_t)(size - 4)) != 4)
		return -1;
	uint32_t total = ch_get32(b);
	if (total < CH_REC_OVERHEAD || total > size - CH_SEG_HDR)
		return 0;
	return record_at(fd, size - total, total, h, seqs);
}

static int
big1(struct ch_segcur *c, struct ch_rec *r)
{
	int rc;

	if (!ch_cur_buffered(c, CH_REC_HDR) &&
	    (rc = ch_cur_fill(c, CH_REC_HDR)) <= 0)
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_END;
	/* The lengths alone first: a walk meets millions of small ones. */
	const unsigned char *p = ch_cur_at(c);
	if ((uint64_t)ch_get32(p + 8) + ch_get16(p + 12) + CH_REC_OVERHEAD <=
	    CH_CUR_BUF || ch_rec_decode(p, &r->h) < 0)
		return CH_CUR_END;
	uint64_t total = ch_rec_size(r->h.meta_len, r->h.len);
	if (total > c->size - c->pos || total > UINT32_MAX ||
	    r->h.type == CH_REC_SEAL)
		return CH_CUR_END;
	/* The trailer first: a damaged length must not cost a read of
	 * gigabytes. */
	if ((rc = ch_cur_trailer_is(c, c->pos + total, total)) != 1)
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_BAD;
	if ((rc = record_at(c->fd, c->pos, total, &r->h, &r->nseq)) != 1)
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_BAD;
	r->pos = c->pos;
	r->total = total;
	r->meta = r->payload = NULL;
	return CH_CUR_OK;
}

static int
tail1(int fd, const struct ch_seghdr *hdr, uint64_t size, struct ch_tail *t)
{
	struct ch_rechdr h, ph;
	uint64_t seqs = 0, pseqs = 0;
	int rc = tail_record(fd, size, &h, &seqs);

	if (rc == 1) {
		/* A valid record is trusted at the tail only if it follows
		 * its predecessor in sequence: a copy of the last record
		 * appended again (a duplicated block) is valid on its own,
		 * and appending after it would plant it mid-segment. */
		uint64_t start = size - ch_rec_size(h.meta_len, h.len);
		if (start == CH_SEG_HDR)
			rc = h.seq == hdr->first_seq;
		else if ((rc = tail_record(fd, start, &ph, &pseqs)) == 1)
			rc = ph.type != CH_REC_SEAL && ph.seq + pseqs == h.seq;
	}
	if (rc != 1)
		return rc;
	uint64_t total = ch_rec_size(h.meta_len, h.len);
	t->file_end = size;
	if (h.type == CH_REC_SEAL) {
		unsigned char p[CH_SEAL_PAYLOAD];
		if (ch_pread_full(fd, p, sizeof p,
		    (off_t)(size - total + CH_REC_HDR)) != sizeof p)
			return -1;
		t->sealed = 1;
		ch_seal_decode(p, &t->seal);
		t->end = size - total;
		t->next_seq = h.seq;
		t->last_ts = t->seal.last_ts;
	} else {
		t->end = size;
		t->next_seq = h.seq + seqs;
		t->last_ts = h.ts;
	}
	return 1;
}

static int
seq_before1(int fd, const struct ch_seghdr *hdr, uint64_t pos, uint64_t *seq)
{
	unsigned char b[CH_REC_HDR];
	struct ch_rechdr h;

	(void)hdr;
	if (ch_pread_full(fd, b, 4, (off_t)(pos - 4)) != 4)
		return -1;
	uint32_t total = ch_get32(b);
	if (total < CH_REC_OVERHEAD || total > pos - CH_SEG_HDR)
		return -2;
	ssize_t n = ch_pread_full(fd, b, sizeof b, (off_t)(pos - total));
	if (n < 0)
		return -1;
	/* The header found must give the length the trailer gave: four
	 * payload bytes before pos could pass for a trailer. */
	if (n != sizeof b || ch_rec_decode(b, &h) < 0 ||
	    ch_rec_size(h.meta_len, h.len) != total)
		return -2;
	uint64_t gap = 0;
	if (h.type == CH_REC_GAP) {
		/* A gap says in its payload how many numbers it takes. */
		int rc = gap_at(fd, pos - total, total, &gap);
		if (rc != 1)
			return rc < 0 ? -1 : -2;
	}
	*seq = h.seq + ch_rec_seqs(&h, gap);
	return 0;
}

static int
peek1(int fd, const struct ch_seghdr *hdr, uint64_t pos, int *type,
    int64_t *ts)
{
	unsigned char b[CH_REC_HDR];
	struct ch_rechdr h;

	(void)hdr;
	ssize_t n = ch_pread_full(fd, b, sizeof b, (off_t)pos);
	if (n < 0)
		return -1;
	/* h is filled only when the record decodes: a failed decode (not a
	 * record boundary, damage) must not be asked for its type. */
	if (n == sizeof b && ch_rec_decode(b, &h) == 0) {
		*type = h.type;
		*ts = h.ts;
	}
	return 0;
}

static unsigned char *
seal1(unsigned char *buf, const struct ch_seghdr *hdr, uint64_t seq,
    int64_t ts, const struct ch_seal *s, uint32_t *lenp)
{
	unsigned char payload[CH_SEAL_PAYLOAD];

	(void)hdr;
	ch_seal_encode(payload, s);
	uint32_t partial = ch_rec_encode(buf, CH_REC_SEAL, NULL, 0, payload,
	    sizeof payload);
	ch_rec_finish(buf, partial, seq, ts);
	*lenp = CH_SEAL_SIZE;
	return buf;
}

static int
gap1(unsigned char *dst, const struct ch_seghdr *hdr, uint64_t len,
    uint64_t seq, int64_t ts, uint64_t count)
{
	(void)hdr;
	/* Every record lost took at least CH_REC_OVERHEAD bytes; the payload
	 * length is a 32-bit field. */
	if (len < CH_REC_OVERHEAD || count > len / CH_REC_OVERHEAD ||
	    len - CH_REC_OVERHEAD > UINT32_MAX - CH_REC_OVERHEAD)
		return -1;
	ch_gap_encode(dst, len, seq, ts, count);
	return 0;
}

const struct ch_segfmt ch_segfmt1 = {
	next1, resync1, tail1, big1, seq_before1, peek1, seal1, gap1,
};
