/* frame.c - encoding, decoding and checking format 2's frames (frame.h). */
#include <config.h>

#include "frame.h"

/* created + d, if that is a time (int64); -1 otherwise. */
static int
add_time(int64_t created, uint64_t d, int64_t *out)
{
	/* INT64_MAX - created, exact in 64 unsigned bits for any created. */
	if (d > (uint64_t)INT64_MAX - (uint64_t)created)
		return -1;
	*out = (int64_t)((uint64_t)created + d);
	return 0;
}

int
ch_frame_decode(const unsigned char *p, size_t avail,
    const struct ch_framebase *b, struct ch_framehdr *f)
{
	uint64_t dseq, dts;
	size_t n;

	if (avail < 4) {
		unsigned char sig[4];
		ch_put32(sig, CH_FRAME_SIG);
		return memcmp(p, sig, avail) == 0 ? 1 : -1;
	}
	if (ch_get32(p) != CH_FRAME_SIG)
		return -1;
	if (avail < CH_FRAME_FIXED)
		return 1;
	f->crc = ch_get32(p + 4);
	f->len = ch_get32(p + 8);
	f->type = p[12];
	f->flags = p[13];
	if (f->type < CH_REC_DATA || f->type > CH_REC_GAP || f->flags)
		return -1;
	/* The varints end within the longest header, or it is no header;
	 * short of that, and of avail, ask for more. */
	int packed = b->packed && f->type == CH_REC_DATA;
	size_t hmax = packed ? CH_FRAME_HDR_MAX : CH_FRAME2_HDR_MAX;
	size_t lim = avail < hmax ? avail : hmax;
	const unsigned char *q = p + CH_FRAME_FIXED, *end = p + lim;
	if (!(n = ch_uvarint_get(q, end, &f->count)))
		goto short_or_bad;
	q += n;
	if (!(n = ch_uvarint_get(q, end, &dseq)))
		goto short_or_bad;
	q += n;
	if (!(n = ch_uvarint_get(q, end, &dts)))
		goto short_or_bad;
	q += n;
	f->plen = 0;
	if (packed) {
		if (!(n = ch_uvarint_get(q, end, &f->plen)))
			goto short_or_bad;
		q += n;
	}
	if (q >= end)
		goto short_or_bad;
	f->hlen = (uint32_t)(q - p) + 1;
	if (*q != f->hlen)
		return -1;
	if (dseq > UINT64_MAX - b->first_seq)
		return -1;
	f->seq = b->first_seq + dseq;
	if (add_time(b->created, dts, &f->ts) < 0)
		return -1;
	if ((uint64_t)f->len < (uint64_t)f->hlen + CH_FRAME_TRAILER)
		return -1;
	uint64_t body = f->len - f->hlen - CH_FRAME_TRAILER;
	switch (f->type) {
	case CH_REC_DATA:
		/* Each record takes at least two bytes; in format 3 its
		 * payload's 0x0A is one of the payload area's P bytes and its
		 * table entry two of the rest. */
		if (f->count == 0 || f->count > UINT64_MAX - f->seq)
			return -1;
		if (packed ? f->plen > body || f->count > f->plen ||
		    f->count > (body - f->plen) / 2 : f->count > body / 2)
			return -1;
		break;
	case CH_REC_SEAL:
		if (f->count != 0 || body != CH_SEAL_PAYLOAD)
			return -1;
		break;
	default:
		/* A gap stands for at least one record, each of which took at
		 * least two bytes of what it replaced. */
		if (f->count == 0 || f->count > f->len / 2 ||
		    f->count > UINT64_MAX - f->seq)
			return -1;
		break;
	}
	return 0;
short_or_bad:
	return avail < hmax ? 1 : -1;
}

/* The records of a data frame's body fill it exactly, each well formed,
 * each position field right, each time representable. */
static int
check_body(const unsigned char *frame, const struct ch_framehdr *f)
{
	const unsigned char *body = frame + f->hlen;
	const unsigned char *lim = frame + f->len - CH_FRAME_TRAILER;
	const unsigned char *p = body;
	struct ch_frec r;
	int64_t t;

	for (uint64_t k = 0; k < f->count; k++) {
		if (ch_frec_decode(p, lim, k == 0, &r) < 0)
			return -1;
		if (k > 0 && r.at != (uint64_t)(p - body))
			return -1;
		if (r.age && ch_frec_time(f->ts, r.age, &t) < 0)
			return -1;
		p = r.end;
	}
	return p == lim ? 0 : -1;
}

/* Format 3: the table fills the body after the payload area exactly, each
 * entry well formed with its position right, and the payloads, each
 * followed by 0x0A, fill the payload area exactly. */
static int
check_body3(const unsigned char *frame, const struct ch_framehdr *f)
{
	const unsigned char *body = frame + f->hlen;
	const unsigned char *pay = body, *pend = body + f->plen;
	const unsigned char *lim = frame + f->len - CH_FRAME_TRAILER;
	const unsigned char *p = pend;
	struct ch_frec r;
	int64_t t;

	for (uint64_t k = 0; k < f->count; k++) {
		uint64_t at, len;
		if (k > 0 && ch_frec3_common(p, lim, &at, &len)) {
			if (at != (uint64_t)(p - body) ||
			    len >= (uint64_t)(pend - pay) || pay[len] != 0x0A)
				return -1;
			pay += len + 1;
			p += 5;
			continue;
		}
		if (ch_frec3_decode(p, lim, k == 0, &r) < 0)
			return -1;
		if (k > 0 && r.at != (uint64_t)(p - body))
			return -1;
		if (r.age && ch_frec_time(f->ts, r.age, &t) < 0)
			return -1;
		if (r.len >= (uint64_t)(pend - pay) || pay[r.len] != 0x0A)
			return -1;
		pay += r.len + 1;
		p = r.end;
	}
	return p == lim && pay == pend ? 0 : -1;
}

int
ch_frame_verify(const unsigned char *frame, const struct ch_framehdr *f,
    int hw)
{
	uint32_t crc;

	if (ch_get32(frame + f->len - CH_FRAME_TRAILER) != f->len)
		return -1;
	crc = ch_crc32c(0, frame + f->hlen, f->len - f->hlen);
	crc = ch_crc32c_fast(crc, frame + 8, f->hlen - 8, hw);
	if (crc != f->crc)
		return -1;
	if (f->type != CH_REC_DATA)
		return 0;
	/* A format 3 data frame has a payload area of at least one byte. */
	return f->plen ? check_body3(frame, f) : check_body(frame, f);
}

size_t
ch_frame_hlen(const struct ch_framebase *b, uint64_t count, uint64_t seq,
    int64_t ts)
{
	return CH_FRAME_FIXED + ch_uvarint_len(count) +
	    ch_uvarint_len(seq - b->first_seq) +
	    ch_uvarint_len((uint64_t)ts - (uint64_t)b->created) + 1;
}

size_t
ch_frame3_hlen(const struct ch_framebase *b, uint64_t count, uint64_t seq,
    int64_t ts, uint64_t plen)
{
	return ch_frame_hlen(b, count, seq, ts) + ch_uvarint_len(plen);
}

/* Header and trailer around the body (or the part of it here, after
 * `apart` bytes kept elsewhere); the header's length is h, and plen is
 * written only if packed. */
static unsigned char *
close_frame(unsigned char *body, size_t body_len, size_t apart, size_t h,
    int packed, uint64_t plen, uint32_t crc, int type, uint64_t count,
    uint64_t seq, int64_t ts, const struct ch_framebase *b, int hw,
    uint32_t *lenp)
{
	unsigned char *f = body - h, *q = f + CH_FRAME_FIXED;
	uint32_t n = (uint32_t)(h + apart + body_len + CH_FRAME_TRAILER);

	ch_put32(f, CH_FRAME_SIG);
	ch_put32(f + 8, n);
	f[12] = (unsigned char)type;
	f[13] = 0;
	q += ch_uvarint_put(q, count);
	q += ch_uvarint_put(q, seq - b->first_seq);
	q += ch_uvarint_put(q, (uint64_t)ts - (uint64_t)b->created);
	if (packed)
		q += ch_uvarint_put(q, plen);
	*q = (unsigned char)h;
	ch_put32(body + body_len, n);
	crc = ch_crc32c_fast(crc, body + body_len, CH_FRAME_TRAILER, hw);
	crc = ch_crc32c_fast(crc, f + 8, h - 8, hw);
	ch_put32(f + 4, crc);
	*lenp = n;
	return f;
}

unsigned char *
ch_frame_close(unsigned char *body, size_t body_len, uint32_t crc, int type,
    uint64_t count, uint64_t seq, int64_t ts, const struct ch_framebase *b,
    int hw, uint32_t *lenp)
{
	return close_frame(body, body_len, 0, ch_frame_hlen(b, count, seq, ts),
	    0, 0, crc, type, count, seq, ts, b, hw, lenp);
}

unsigned char *
ch_frame3_close(unsigned char *body, size_t body_len, uint64_t plen,
    uint32_t crc, uint64_t count, uint64_t seq, int64_t ts,
    const struct ch_framebase *b, int hw, uint32_t *lenp)
{
	return close_frame(body, body_len, 0,
	    ch_frame3_hlen(b, count, seq, ts, plen), 1, plen, crc, CH_REC_DATA,
	    count, seq, ts, b, hw, lenp);
}

unsigned char *
ch_frame3_close_apart(unsigned char *tab, size_t tab_len, uint64_t plen,
    uint32_t crc, uint64_t count, uint64_t seq, int64_t ts,
    const struct ch_framebase *b, int hw, uint32_t *lenp)
{
	return close_frame(tab, tab_len, (size_t)plen,
	    ch_frame3_hlen(b, count, seq, ts, plen), 1, plen, crc, CH_REC_DATA,
	    count, seq, ts, b, hw, lenp);
}

unsigned char *
ch_frame_build(unsigned char *dst, int type, uint64_t count, uint64_t seq,
    int64_t ts, const struct ch_framebase *b, const void *body,
    size_t body_len, uint32_t *lenp)
{
	unsigned char *p = dst + CH_FRAME_HDR_MAX;
	int hw = ch_crc32c_hw();

	if (body_len)
		memcpy(p, body, body_len);
	return ch_frame_close(p, body_len, ch_crc32c(0, p, body_len), type,
	    count, seq, ts, b, hw, lenp);
}

uint64_t
ch_frame_record_at(const unsigned char *body, size_t body_len, uint64_t j)
{
	const unsigned char *p = body, *lim = body + body_len;
	struct ch_frec r;

	for (uint64_t k = 0; k < j && p < lim; k++) {
		if (ch_frec_decode(p, lim, k == 0, &r) < 0)
			break;
		p = r.end;
	}
	return (uint64_t)(p - body);
}

uint64_t
ch_frame_fit(const unsigned char *body, size_t body_len, uint64_t count,
    uint64_t room, const struct ch_framebase *b, uint64_t seq, int64_t ts,
    size_t *prefix)
{
	const unsigned char *p = body, *lim = body + body_len;
	struct ch_frec r;
	uint64_t k;

	*prefix = 0;
	for (k = 0; k < count; k++) {
		if (ch_frec_decode(p, lim, k == 0, &r) < 0)
			break;
		uint64_t len = (uint64_t)(r.end - body);
		if (ch_frame_hlen(b, k + 1, seq, ts) + len + CH_FRAME_TRAILER >
		    room)
			break;
		*prefix = (size_t)len;
		p = r.end;
	}
	return k;
}

void
ch_frame_drop(unsigned char *body, size_t *body_len, uint64_t *count,
    uint64_t j, uint32_t *crc, int hw)
{
	const unsigned char *lim = body + *body_len;
	const unsigned char *src = body + ch_frame_record_at(body, *body_len, j);
	unsigned char *dst = body;
	uint32_t c = 0;
	struct ch_frec r;

	/* A record never moves up: the new sub-header is no longer than the
	 * old one (record j loses its position field, the others' shrink
	 * with their positions), so it fits before the old meta, which moves
	 * down with memmove, and nothing not yet read is overwritten. */
	for (uint64_t k = j; k < *count; k++) {
		unsigned char hdr[CH_FREC_HDR_MAX], *h = hdr;
		if (ch_frec_decode(src, lim, k == 0, &r) < 0)
			break;
		*h++ = src[0];
		if (k > j)
			h += ch_uvarint_put(h, (uint64_t)(dst - body));
		h += ch_uvarint_put(h, r.len);
		if (r.age)
			h += ch_uvarint_put(h, r.age);
		if (r.meta_len)
			h += ch_uvarint_put(h, r.meta_len);
		size_t hl = (size_t)(h - hdr);
		size_t rest = r.meta_len + (size_t)r.len;
		memmove(dst + hl, r.meta, rest);
		memcpy(dst, hdr, hl);
		c = ch_crc32c_fast(c, dst, hl, hw);
		c = ch_crc32c(c, dst + hl, rest);
		dst += hl + rest;
		src = r.end;
	}
	*body_len = (size_t)(dst - body);
	*count -= j;
	*crc = c;
}
