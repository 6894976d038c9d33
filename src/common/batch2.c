/*
 * batch2.c - a writer's queued records as format 2 frames (batch.h).
 *
 * The buffer holds the frames one after another, each as room for its
 * header (CH_FRAME_HDR_MAX bytes: its size depends on the sequence number
 * and time, known only under the lock), its body, and room for its
 * trailer.  A record is framed straight into the body of the last frame,
 * its bytes checksummed as they are copied; a frame that would grow past
 * CH_FRAME_BOUND is closed and a new one opened.  Under the lock the
 * header is written right before the body, so the frame is contiguous.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "frame.h"

#define SLACK CH_FRAME_HDR_MAX
#define BODY_BOUND (CH_FRAME_BOUND - CH_FRAME_HDR_MAX - CH_FRAME_TRAILER)
/* The most a record's sub-header takes in a bounded frame (position
 * below 2 MiB: 3 bytes; length up to 4 GiB: 5). */
#define SUB_MAX (1 + 3 + 5)
/* Bodies must leave a frame's length within 32 bits. */
#define BODY_MAX (CH_FRAME_MAX_LEN - CH_FRAME_HDR_MAX - CH_FRAME_TRAILER)
/* A record that does not fit a bounded frame is framed alone, unchecked:
 * its payload and metadata (at most CH_RECORD_MAX) must leave room for
 * its sub-header in a body. */
_Static_assert(CH_RECORD_MAX + SUB_MAX <= BODY_MAX,
    "a frame of one record of CH_RECORD_MAX bytes overflows its length");

/* The frame records are added to, if any. */
static inline struct ch_bframe *
open_frame(struct ch_batch *b)
{
	return b->nfr > b->fdone && !b->closed ?
	    &b->fr[b->nfr - 1] : NULL;
}

/* Start a new frame at the end of the buffer. */
static struct ch_bframe *
new_frame(struct ch_batch *b, struct ch_error *err)
{
	size_t at = b->len + (b->nfr ? CH_FRAME_TRAILER : 0) + SLACK;

	if (b->nfr == b->frcap) {
		size_t cap = b->frcap ? b->frcap * 2 : 8;
		struct ch_bframe *nf = realloc(b->fr, cap * sizeof *nf);
		if (!nf) {
			ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
			return NULL;
		}
		b->fr = nf;
		b->frcap = cap;
	}
	if (ch_batch_reserve(b, at - b->len + CH_FRAME_TRAILER, err) < 0)
		return NULL;
	struct ch_bframe *f = &b->fr[b->nfr++];
	f->body = at;
	f->len = 0;
	f->count = 0;
	f->crc = 0;
	f->crc_len = 0;
	b->len = at;
	return f;
}

/* Bring the CRC of every frame's body up to date: once per call that
 * adds records, over what it added, before the lock is taken. */
static void
checksum(struct ch_batch *b)
{
	for (size_t i = b->fdone; i < b->nfr; i++) {
		struct ch_bframe *f = &b->fr[i];
		if (f->crc_len < f->len) {
			f->crc = ch_crc32c(f->crc, b->buf + f->body + f->crc_len,
			    f->len - f->crc_len);
			f->crc_len = f->len;
		}
	}
}

/* Frame one record; the buffer may move. */
static inline int
put(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	struct ch_bframe *f = open_frame(b);
	size_t need = SUB_MAX + CH_VARINT_MAX + meta_len + len;

	if (b->atomic) {
		if (b->bytes + meta_len + len > b->max_record)
			return ch_err(err, CH_EXIT_FAIL, "an atomic batch holds "
			    "at most max_record_bytes (%llu) of records",
			    (unsigned long long)b->max_record);
		if (f && f->len + need > BODY_MAX)
			return ch_err(err, CH_EXIT_FAIL, "atomic batch too "
			    "large for one frame (4 GiB)");
	} else if (f && f->len + need > BODY_BOUND) {
		f = NULL;
	}
	if (!f && !(f = new_frame(b, err)))
		return -1;
	if (b->len + need + CH_FRAME_TRAILER > b->cap &&
	    ch_batch_reserve(b, need + CH_FRAME_TRAILER, err) < 0)
		return -1;
	size_t n = ch_frec_put(b->buf + f->body + f->len, f->len, meta,
	    meta_len, payload, len);
	f->len += n;
	f->count++;
	b->len += n;
	b->nrec++;
	b->bytes += meta_len + len;
	return 0;
}

int
ch_batch2_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	int rc = put(b, meta, meta_len, payload, len, err);

	checksum(b);
	return rc;
}

#if defined(__SSE2__)
#include <emmintrin.h>
#define COPY_SLACK 32
/*
 * Copy src to dst up to the first `delim`, 32 bytes at a time (then 16),
 * and return the length before it: scanning and copying in one pass.
 * Reads nothing at or past end; writes up to 31 bytes past the record
 * (dst has room).  Returns SIZE_MAX if there is no delim before the last
 * 16 bytes: the caller takes that slow way.
 */
static inline size_t
copy_line(unsigned char *dst, const char *src, const char *end, int delim)
{
	const __m128i d = _mm_set1_epi8((char)delim);
	size_t i = 0;

	for (; end - src >= (ptrdiff_t)(i + 32); i += 32) {
		__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
		__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 16));
		_mm_storeu_si128((__m128i *)(void *)(dst + i), v0);
		_mm_storeu_si128((__m128i *)(void *)(dst + i + 16), v1);
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, d)) |
		    (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, d)) << 16;
		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
	for (; end - src >= (ptrdiff_t)(i + 16); i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
		_mm_storeu_si128((__m128i *)(void *)(dst + i), v);
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, d));
		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
	return SIZE_MAX;
}
#else
#define COPY_SLACK 0
static inline size_t
copy_line(unsigned char *dst, const char *src, const char *end, int delim)
{
	const char *d = memchr(src, delim, (size_t)(end - src));

	if (!d)
		return SIZE_MAX;
	memcpy(dst, src, (size_t)(d - src));
	return (size_t)(d - src);
}
#endif

/*
 * The common case, lines framed into the open frame f (which holds a
 * record already), each copied and scanned for its end in one pass, while
 * the buffer has room for all the rest of the input.  Its own loop, with
 * the state in locals: stores through the buffer would otherwise make the
 * compiler reload every field of b and f after each of them.  Returns
 * where it stopped; put() does the rest.
 */
static const char *
frame_lines(struct ch_batch *b, struct ch_bframe *f, const char *p,
    const char *end, int delim)
{
	unsigned char *buf = b->buf;
	size_t blen = b->len, flen = f->len;
	uint64_t count = 0, bytes = 0, max_record = ch_batch_payload_max(b, 0);

	if (b->cap < blen + SUB_MAX + COPY_SLACK + CH_FRAME_TRAILER)
		return p;
	size_t cap = b->cap - SUB_MAX - COPY_SLACK - CH_FRAME_TRAILER;

	while (p < end && blen + (size_t)(end - p) <= cap) {
		unsigned char *q = buf + blen;
		/* The position field: a body is below 2 MiB, so one to three
		 * bytes. */
		size_t ah = flen < (1u << 7) ? 2 : flen < (1u << 14) ? 3 : 4;
		/* Guess a length below 128: one byte; move the payload up if
		 * it is longer. */
		size_t n = copy_line(q + ah + 1, p, end, delim);
		if (n == SIZE_MAX) {
			const char *d = memchr(p, delim, (size_t)(end - p));
			if (!d)
				break;
			n = (size_t)(d - p);
			memcpy(q + ah + 1, p, n);
		}
		size_t lh = n < 0x80 ? 1 : ch_uvarint_len(n);
		if (flen + ah + lh + n > BODY_BOUND || n > max_record)
			break;
		if (lh > 1)
			memmove(q + ah + lh, q + ah + 1, n);
		q[0] = 0;
		if (ah == 2) {
			q[1] = (unsigned char)flen;
		} else if (ah == 3) {
			q[1] = (unsigned char)(flen | 0x80);
			q[2] = (unsigned char)(flen >> 7);
		} else {
			q[1] = (unsigned char)(flen | 0x80);
			q[2] = (unsigned char)((flen >> 7) | 0x80);
			q[3] = (unsigned char)(flen >> 14);
		}
		if (lh == 1)
			q[ah] = (unsigned char)n;
		else
			ch_uvarint_put(q + ah, n);
		flen += ah + lh + n;
		blen += ah + lh + n;
		count++;
		bytes += n;
		p += n + 1;
	}
	f->len = flen;
	f->count += count;
	b->len = blen;
	b->nrec += count;
	b->bytes += bytes;
	return p;
}

int
ch_batch2_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	const char *p = buf, *end = p + len, *d;
	size_t nrec0 = b->nrec;
	uint64_t limit = ch_batch_payload_max(b, meta_len);
	int rc = 0;

	/* As if records were 64 bytes; put() tops up when it falls short. */
	if (ch_batch_reserve(b, len + (len / 64 + 1) * SUB_MAX +
	    (len / BODY_BOUND + 2) * (SLACK + CH_FRAME_TRAILER) + COPY_SLACK,
	    err) < 0)
		rc = -1;
	while (!rc && p < end) {
		struct ch_bframe *f = open_frame(b);
		if (f && !b->atomic && !meta_len) {
			const char *was = p;
			p = frame_lines(b, f, p, end, delim);
			if (p == end)
				break;
			if (p != was)
				continue;
		}
		/* One record the general way: the first of a frame, one
		 * that does not fit the frame or the buffer, one with
		 * metadata, one of an atomic batch, one too large. */
		d = memchr(p, delim, (size_t)(end - p));
		if (!d)
			break;
		size_t n = (size_t)(d - p);
		if (n > limit)
			rc = ch_batch_too_large(b, meta_len, n, err);
		else
			rc = put(b, meta, meta_len, p, n, err);
		if (!rc)
			p = d + 1;
	}
	checksum(b);
	*used = (size_t)(p - (const char *)buf);
	*nrec = b->nrec - nrec0;
	return rc;
}

uint64_t
ch_batch2_first(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts)
{
	struct ch_framebase fb = { seg->first_seq, seg->created, 0 };
	struct ch_bframe *f = &b->fr[b->fdone];

	if (ts < seg->created)
		ts = seg->created;
	if (b->atomic)
		return ch_frame_hlen(&fb, f->count, seq, ts) + f->len +
		    CH_FRAME_TRAILER;
	return ch_frame_hlen(&fb, 1, seq, ts) +
	    ch_frame_record_at(b->buf + f->body, f->len, 1) + CH_FRAME_TRAILER;
}

void
ch_batch2_take(struct ch_batch *b, const struct ch_seghdr *seg, uint64_t seq,
    int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc)
{
	struct ch_framebase fb = { seg->first_seq, seg->created, 0 };
	struct ch_bframe *f = &b->fr[b->fdone];
	unsigned char *body = b->buf + f->body;
	uint64_t j = f->count;
	size_t prefix = f->len;
	uint32_t crc = f->crc, n;

	if (ts < seg->created)
		ts = seg->created;
	b->closed = 1;
	if (!b->atomic && ch_frame_hlen(&fb, j, seq, ts) + f->len +
	    CH_FRAME_TRAILER > room) {
		/* Cut it where the segment ends; at least one record. */
		j = ch_frame_fit(body, f->len, f->count, room, &fb, seq, ts,
		    &prefix);
		if (j == 0) {
			j = 1;
			prefix = ch_frame_record_at(body, f->len, 1);
		}
	}
	b->part = 0;
	if (j < f->count) {
		/* The trailer goes where record j starts: keep those bytes. */
		memcpy(b->saved, body + prefix, CH_FRAME_TRAILER);
		b->part = j;
		crc = ch_crc32c(0, body, prefix);
	}
	unsigned char *fr = ch_frame_close(body, prefix, crc, CH_REC_DATA, j,
	    seq, ts, &fb, b->hw, &n);
	if (offs) {
		const unsigned char *p = body, *lim = body + prefix;
		struct ch_frec r;
		offs[0] = at;
		for (uint64_t k = 1; k < j; k++) {
			if (ch_frec_decode(p, lim, k == 1, &r) < 0)
				break;
			p = r.end;
			offs[k] = at + (uint64_t)(p - fr);
		}
	}
	b->taken = j;
	ch_piece_one(pc, fr, n, j);
}

void
ch_batch2_consume(struct ch_batch *b)
{
	struct ch_bframe *f = &b->fr[b->fdone];

	if (b->part) {
		unsigned char *body = b->buf + f->body;
		size_t prefix = ch_frame_record_at(body, f->len, b->part);
		memcpy(body + prefix, b->saved, CH_FRAME_TRAILER);
		ch_frame_drop(body, &f->len, &f->count, b->part, &f->crc, b->hw);
		f->crc_len = f->len;
		b->part = 0;
	} else {
		b->fdone++;
	}
}
