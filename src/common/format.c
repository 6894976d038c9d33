/* format.c - encoding and decoding the structures of format.h. */
#include <config.h>

#include <stdio.h>

#include "crc32c.h"
#include "format.h"

int
ch_rec_verify(const unsigned char *rec, uint64_t total)
{
	return ch_rec_verify_fast(rec, total, ch_crc32c_hw());
}

uint32_t
ch_rec_encode(unsigned char *dst, int type, const void *meta, size_t meta_len,
    const void *payload, size_t len)
{
	return ch_rec_frame(dst, type, meta, meta_len, payload, len,
	    ch_crc32c_hw());
}

void
ch_rec_finish(unsigned char *rec, uint32_t partial, uint64_t seq, int64_t ts)
{
	ch_rec_finish_fast(rec, partial, seq, ts, ch_crc32c_hw());
}

void
ch_seal_encode(unsigned char *p, const struct ch_seal *s)
{
	ch_put64(p, s->records);
	ch_put64(p + 8, (uint64_t)s->first_ts);
	ch_put64(p + 16, (uint64_t)s->last_ts);
}

void
ch_seal_decode(const unsigned char *p, struct ch_seal *s)
{
	s->records = ch_get64(p);
	s->first_ts = (int64_t)ch_get64(p + 8);
	s->last_ts = (int64_t)ch_get64(p + 16);
}

void
ch_gap_encode(unsigned char *dst, uint64_t total, uint64_t seq, int64_t ts,
    uint64_t count)
{
	uint64_t len = total - CH_REC_OVERHEAD;
	unsigned char n[CH_GAP_COUNT_BYTES];

	ch_put32(dst, CH_REC_MAGIC);
	ch_put32(dst + 8, (uint32_t)len);
	ch_put16(dst + 12, 0);
	dst[14] = CH_REC_GAP;
	dst[15] = 0;
	ch_put64(dst + 16, seq);
	ch_put64(dst + 24, (uint64_t)ts);
	memset(dst + CH_REC_HDR, 0, (size_t)len);
	ch_put64(n, count);
	memcpy(dst + CH_REC_HDR, n, len < sizeof n ? (size_t)len : sizeof n);
	ch_put32(dst + total - CH_REC_TRAILER, (uint32_t)total);
	/* The CRC as for every record: bytes 32..end, then 8..31. */
	uint32_t crc = ch_crc32c(0, dst + CH_REC_HDR, total - CH_REC_HDR);
	ch_put32(dst + 4, ch_crc32c(crc, dst + 8, CH_REC_HDR - 8));
}

int
ch_gap_count(const unsigned char *rec, uint64_t total, uint64_t *count)
{
	uint64_t len = total - CH_REC_OVERHEAD, n = 0;
	unsigned char b[CH_GAP_COUNT_BYTES] = { 0 };

	if (len == 0) {
		n = 1;
	} else {
		memcpy(b, rec + CH_REC_HDR, len < sizeof b ? (size_t)len :
		    sizeof b);
		n = ch_get64(b);
	}
	/* Every record lost took at least CH_REC_OVERHEAD bytes. */
	if (n == 0 || n > total / CH_REC_OVERHEAD)
		return -1;
	*count = n;
	return 0;
}

void
ch_seghdr_encode(unsigned char *p, const struct ch_seghdr *h)
{
	memset(p, 0, CH_SEG_HDR);
	memcpy(p, CH_SEG_MAGIC, 8);
	ch_put32(p + 8, h->format);
	ch_put32(p + 12, CH_SEG_HDR);
	ch_put64(p + 16, h->base);
	ch_put64(p + 24, h->first_seq);
	ch_put64(p + 32, (uint64_t)h->created);
	p[40] = (unsigned char)h->flags;
	ch_put32(p + 60, ch_crc32c(0, p, 60));
}

int
ch_seghdr_decode(const unsigned char *p, struct ch_seghdr *h)
{
	if (memcmp(p, CH_SEG_MAGIC, 8) != 0 ||
	    ch_get32(p + 60) != ch_crc32c(0, p, 60) ||
	    ch_get32(p + 12) != CH_SEG_HDR)
		return -1;
	h->format = ch_get32(p + 8);
	h->base = ch_get64(p + 16);
	h->first_seq = ch_get64(p + 24);
	h->created = (int64_t)ch_get64(p + 32);
	h->flags = p[40];
	return 0;
}

void
ch_seg_name(char *buf, uint64_t base)
{
	snprintf(buf, CH_SEG_NAME_LEN + 1, "%020llu.seg",
	    (unsigned long long)base);
}

int
ch_seg_parse_name(const char *name, uint64_t *base)
{
	uint64_t v = 0;

	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (strcmp(name + 20, ".seg") != 0)
		return -1;
	*base = v;
	return 0;
}

void
ch_idxhdr_encode(unsigned char *p)
{
	memset(p, 0, CH_IDX_HDR);
	memcpy(p, CH_IDX_MAGIC, 8);
	ch_put32(p + 8, 1);
	ch_put32(p + 12, CH_IDX_ENTRY);
	ch_put32(p + 60, ch_crc32c(0, p, 60));
}

int
ch_idxhdr_decode(const unsigned char *p)
{
	if (memcmp(p, CH_IDX_MAGIC, 8) != 0 ||
	    ch_get32(p + 60) != ch_crc32c(0, p, 60) ||
	    ch_get32(p + 12) != CH_IDX_ENTRY || ch_get32(p + 8) != 1)
		return -1;
	return 0;
}

void
ch_idxent_encode(unsigned char *p, const struct ch_idxent *e)
{
	ch_put64(p, e->base);
	ch_put64(p + 8, e->first_seq);
	ch_put64(p + 16, (uint64_t)e->created);
	ch_put32(p + 24, 0);
	ch_put32(p + 28, ch_crc32c(0, p, 28));
}

int
ch_idxent_decode(const unsigned char *p, struct ch_idxent *e)
{
	if (ch_get32(p + 28) != ch_crc32c(0, p, 28))
		return -1;
	e->base = ch_get64(p);
	e->first_seq = ch_get64(p + 8);
	e->created = (int64_t)ch_get64(p + 16);
	return 0;
}
