/* batch.c - a writer's queued records (batch.h): what the formats share,
 * and format 1's records; format 2's frames are in batch2.c, format 3's
 * in batch3.c. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "frame.h"

void
ch_batch_init(struct ch_batch *b, uint32_t format, uint64_t max_record,
    int atomic)
{
	memset(b, 0, sizeof *b);
	b->format = format;
	b->max_record = max_record;
	b->atomic = atomic;
	b->hw = ch_crc32c_hw();
}

void
ch_batch_free(struct ch_batch *b)
{
	free(b->buf);
	free(b->fr);
	free(b->tab);
	free(b->scratch);
	memset(b, 0, sizeof *b);
}

int
ch_batch_reserve(struct ch_batch *b, uint64_t more, struct ch_error *err)
{
	if (b->len + more <= b->cap)
		return 0;
	/* Small to start: a message from the command line needs a few bytes,
	 * not a mapping of its own to set up and tear down. */
	size_t cap = b->cap ? b->cap : 16 << 10;
	while (cap < b->len + more)
		cap *= 2;
	unsigned char *nb = realloc(b->buf, cap);
	if (!nb)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	b->buf = nb;
	b->cap = cap;
	return 0;
}

/* A format 1 record's total length, payload, metadata and its 36 bytes,
 * is a 32-bit field. */
_Static_assert(CH_RECORD_MAX + CH_REC_OVERHEAD <= UINT32_MAX,
    "a format 1 record of CH_RECORD_MAX bytes overflows its length");

int
ch_batch_too_large(const struct ch_batch *b, size_t meta_len, size_t len,
    struct ch_error *err)
{
	if (len > b->max_record)
		return ch_err(err, CH_EXIT_FAIL,
		    "record of %zu bytes exceeds max_record_bytes (%llu)", len,
		    (unsigned long long)b->max_record);
	return ch_err(err, CH_EXIT_FAIL, "record of %zu bytes with %zu bytes "
	    "of metadata is too large: a record holds at most %llu bytes of "
	    "payload and metadata", len, meta_len, CH_RECORD_MAX);
}

size_t
ch_batch_pending(const struct ch_batch *b)
{
	return b->nrec ? b->len + b->kept - (b->format >= 2 ? 0 : b->done) :
	    0;
}

size_t
ch_batch_records(const struct ch_batch *b)
{
	return b->nrec;
}

/* Buffers larger than this are let go once empty: one large record or
 * atomic batch must not leave a long-running writer (tail -F | chpub)
 * holding its size for the rest of its life. */
#define KEEP_MAX (4u << 20)

void
ch_batch_clear(struct ch_batch *b)
{
	if (b->cap > KEEP_MAX) {
		free(b->buf);
		b->buf = NULL;
		b->cap = 0;
	}
	if (b->tabcap > KEEP_MAX) {
		free(b->tab);
		b->tab = NULL;
		b->tabcap = 0;
	}
	b->len = b->done = 0;
	b->nrec = 0;
	b->bytes = 0;
	b->nfr = b->fdone = 0;
	b->part = 0;
	b->closed = 0;
	b->tablen = 0;
	b->kept = 0;
}

/* Format 1: frame one record at the end of the buffer (room reserved).
 * The CRC of everything but the sequence number and time is done here,
 * outside the lock; it waits in the CRC field. */
static inline void
queue1(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len)
{
	unsigned char *rec = b->buf + b->len;
	uint32_t partial = ch_rec_frame(rec, CH_REC_DATA, meta, meta_len,
	    payload, len, b->hw);

	ch_put32(rec + 4, partial);
	b->len += ch_rec_size(meta_len, len);
	b->nrec++;
}

int
ch_batch_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	if (meta_len > CH_MAX_META)
		return ch_err(err, CH_EXIT_FAIL, "record metadata too large");
	if (len > ch_batch_payload_max(b, meta_len))
		return ch_batch_too_large(b, meta_len, len, err);
	if (b->format >= 3)
		return ch_batch3_add(b, meta, meta_len, payload, len, err);
	if (b->format == 2)
		return ch_batch2_add(b, meta, meta_len, payload, len, err);
	if (ch_batch_reserve(b, ch_rec_size(meta_len, len), err) < 0)
		return -1;
	queue1(b, meta, meta_len, payload, len);
	return 0;
}

static int
add_split(struct ch_batch *b, const void *buf, size_t len, int delim,
    const void *meta, size_t meta_len, int kept, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	const char *p = buf, *end = p + len, *d;
	size_t nrec0 = b->nrec, over = CH_REC_OVERHEAD + meta_len;

	*used = 0;
	*nrec = 0;
	if (meta_len > CH_MAX_META)
		return ch_err(err, CH_EXIT_FAIL, "record metadata too large");
	if (b->format >= 3)
		return ch_batch3_add_split(b, buf, len, delim, meta, meta_len,
		    kept, used, nrec, err);
	if (b->format == 2)
		return ch_batch2_add_split(b, buf, len, delim, meta, meta_len,
		    used, nrec, err);
	/* Every record needs its bytes plus the overhead minus its
	 * delimiter: reserving for one per byte is too much for short
	 * records, so reserve for this buffer as if records were 64 bytes
	 * and top up when it falls short. */
	if (ch_batch_reserve(b, len + len / 64 * over + over, err) < 0)
		return -1;
	uint64_t limit = ch_batch_payload_max(b, meta_len);
	for (; p < end && (d = memchr(p, delim, (size_t)(end - p))); p = d + 1) {
		size_t n = (size_t)(d - p);
		if (n > limit ||
		    (b->len + n + over > b->cap &&
		    ch_batch_reserve(b, (size_t)(end - p) + over, err) < 0)) {
			*used = (size_t)(p - (const char *)buf);
			*nrec = b->nrec - nrec0;
			return n > limit ?
			    ch_batch_too_large(b, meta_len, n, err) : -1;
		}
		queue1(b, meta, meta_len, p, n);
	}
	*used = (size_t)(p - (const char *)buf);
	*nrec = b->nrec - nrec0;
	return 0;
}

int
ch_batch_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	return add_split(b, buf, len, delim, meta, meta_len, 0, used, nrec,
	    err);
}

int
ch_batch_add_split_kept(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err)
{
	return add_split(b, buf, len, delim, meta, meta_len, 1, used, nrec,
	    err);
}

static uint64_t
rec_total(const unsigned char *p)
{
	return ch_rec_size(ch_get16(p + 12), ch_get32(p + 8));
}

uint64_t
ch_batch_first(struct ch_batch *b, const struct ch_seghdr *seg, uint64_t seq,
    int64_t ts)
{
	if (!b->nrec)
		return 0;
	if (b->format >= 3)
		return ch_batch3_first(b, seg, seq, ts);
	if (b->format == 2)
		return ch_batch2_first(b, seg, seq, ts);
	return rec_total(b->buf + b->done);
}

void
ch_batch_take(struct ch_batch *b, const struct ch_seghdr *seg, uint64_t seq,
    int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc)
{
	if (b->format >= 3) {
		ch_batch3_take(b, seg, seq, ts, room, at, offs, pc);
		return;
	}
	if (b->format == 2) {
		ch_batch2_take(b, seg, seq, ts, room, at, offs, pc);
		return;
	}
	/* Format 1: the records that fit, each given its sequence number
	 * and the time on the way. */
	size_t cut = b->done;
	uint64_t n = 0;
	while (cut < b->len) {
		unsigned char *rec = b->buf + cut;
		uint64_t t = rec_total(rec);
		if (cut > b->done && cut - b->done + t > room)
			break;
		if (offs)
			offs[n] = at + (cut - b->done);
		ch_rec_finish_fast(rec, ch_get32(rec + 4), seq + n, ts, b->hw);
		n++;
		cut += t;
	}
	b->cut = cut;
	b->taken = n;
	ch_piece_one(pc, b->buf + b->done, cut - b->done, n);
}

void
ch_batch_consume(struct ch_batch *b)
{
	b->nrec -= b->taken;
	if (b->format >= 3) {
		ch_batch3_consume(b);
	} else if (b->format == 2) {
		ch_batch2_consume(b);
	} else {
		b->done = b->cut;
		if (b->done == b->len)
			b->done = b->len = 0;
	}
	if (!b->nrec)
		ch_batch_clear(b);
}

/* The pending records of format 2 frames, into nb. */
static int
reframe2(const struct ch_batch *b, struct ch_batch *nb, struct ch_error *err)
{
	for (size_t i = b->fdone; i < b->nfr; i++) {
		const struct ch_bframe *f = &b->fr[i];
		const unsigned char *p = b->buf + f->body, *lim = p + f->len;
		struct ch_frec r;
		for (uint64_t k = 0; k < f->count; k++) {
			if (ch_frec_decode(p, lim, k == 0, &r) < 0)
				return ch_err(err, CH_EXIT_SOFTWARE,
				    "queued frame malformed");
			if (ch_batch_add(nb, r.meta, r.meta_len, r.payload,
			    (size_t)r.len, err) < 0)
				return -1;
			p = r.end;
		}
	}
	return 0;
}

/* The pending format 1 records, into nb. */
static int
reframe1(const struct ch_batch *b, struct ch_batch *nb, struct ch_error *err)
{
	for (size_t at = b->done; at < b->len; at += rec_total(b->buf + at)) {
		const unsigned char *rec = b->buf + at;
		size_t meta_len = ch_get16(rec + 12);
		if (ch_batch_add(nb, rec + CH_REC_HDR, meta_len,
		    rec + CH_REC_HDR + meta_len, ch_get32(rec + 8), err) < 0)
			return -1;
	}
	return 0;
}

int
ch_batch_reformat(struct ch_batch *b, uint32_t format, struct ch_error *err)
{
	struct ch_batch nb;

	if (format == b->format)
		return 0;
	ch_batch_init(&nb, format, b->max_record, b->atomic);
	if (b->nrec && (b->format >= 3 ? ch_batch3_reframe(b, &nb, err) :
	    b->format == 2 ? reframe2(b, &nb, err) :
	    reframe1(b, &nb, err)) < 0) {
		ch_batch_free(&nb);
		return -1;
	}
	ch_batch_free(b);
	*b = nb;
	return 0;
}
