/*
 * frame.h - format 2's batch frames (channel(5), FRAME FORMAT, is the
 * normative description).
 *
 * A frame holds the records of one append under one CRC-32C:
 *
 *   0   4  signature C9 46 52 4D ("\xC9" "FRM")
 *   4   4  CRC-32C of bytes H..N-1 (body and trailer), then of bytes 8..H-1
 *   8   4  frame length N
 *  12   1  type: 1 data, 2 seal, 3 gap
 *  13   1  flags (0)
 *  14   v  count: data records (data), 0 (seal), sequence numbers (gap)
 *       v  sequence number of the first record minus the segment's first
 *       v  frame time minus the segment's creation time; the frame time is
 *          that of its newest record
 * H-1   1  H, the header length (15 + the three varints)
 *   H      body: records (data), the 24-byte seal payload (seal), filler
 * N-4   4  N again, so the end of a segment is found from its last 4 bytes
 *
 * A data record in the body (record k of the frame):
 *      1  attributes: bit 0 an age follows, bit 1 metadata follows
 *      v  (k > 0 only) where this record starts, counted from H
 *      v  payload length
 *      v  (bit 0) age: frame time minus the record's time
 *      v  (bit 1) metadata length, then the metadata
 *         payload
 * Record 0's offset is the frame's; record k's (k > 0) is that of its
 * attribute byte, so a reader starting there finds the frame through the
 * second field and the byte before the body.
 *
 * Varints are unsigned LEB128 (7 bits a byte, low first, high bit set on
 * all but the last byte), at most 10 bytes.
 *
 * Format 3 (b->packed) differs in data frames only: the header holds a
 * fourth varint before H, P, the length of the payload area; the body is
 * the payload area (each record's payload followed by one 0x0A byte, so
 * that plain lines lie in the file as they were written) and then the
 * record table: per record the sub-header above (attributes, position,
 * length, age, metadata) without the payload.  Record k's offset (k > 0)
 * is that of its table entry, whose position field leads to the frame as
 * in format 2.
 *
 * The CRC's order lets a writer checksum the body while it copies the
 * records in, outside the lock, and add the header, whose sequence number
 * and time it learns under the lock, at the end.
 */
#ifndef CH_FRAME_H
#define CH_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"
#include "format.h"

#define CH_FRAME_SIG 0x4D5246C9u	/* bytes C9 46 52 4D */
#define CH_FRAME_SIG0 0xC9
#define CH_FRAME_FIXED 14		/* signature .. flags */
#define CH_VARINT_MAX 10
/* Format 3's data frames add a fourth varint, the payload area's length. */
#define CH_FRAME2_HDR_MAX (CH_FRAME_FIXED + 3 * CH_VARINT_MAX + 1)
#define CH_FRAME_HDR_MAX (CH_FRAME_FIXED + 4 * CH_VARINT_MAX + 1)
#define CH_FRAME_TRAILER 4
/* The shortest header: three one-byte varints and H; the smallest frame
 * adds no body and the trailer. */
#define CH_FRAME_HDR_MIN (CH_FRAME_FIXED + 4)
#define CH_FRAME_MIN (CH_FRAME_HDR_MIN + CH_FRAME_TRAILER)
/* A writer splits the records of one append into frames of at most this
 * many bytes; a record that does not fit alone gets a frame of its own. */
#define CH_FRAME_BOUND (1u << 20)
/* Format 3's bound: a frame's payloads are written out in one piece by a
 * reader, and 64 KiB of them stay in the CPU's caches between the read
 * and the write (bench/RESULTS.md). */
#define CH_FRAME3_BOUND (64u << 10)
#define CH_FRAME_MAX_LEN UINT32_MAX

#define CH_FREC_AGE 1
#define CH_FREC_META 2
/* The longest record sub-header: attributes, position, length (5: at most
 * 4 GiB), age, metadata length (3: at most 65535). */
#define CH_FREC_HDR_MAX (1 + CH_VARINT_MAX + 5 + CH_VARINT_MAX + 3)

static inline size_t
ch_uvarint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline size_t
ch_uvarint_put(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* Decode a varint at p, reading nothing at or past end: the bytes used,
 * or 0 if it is cut short, longer than 10 bytes or over 64 bits. */
static inline __attribute__((always_inline)) size_t
ch_uvarint_get(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;

	/* The common cases, unrolled: lengths and positions in a frame of
	 * a megabyte take one to three bytes. */
	if (end - p >= 3) {
		if (p[0] < 0x80) {
			*v = p[0];
			return 1;
		}
		if (p[1] < 0x80) {
			*v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
			return 2;
		}
		if (p[2] < 0x80) {
			*v = (uint64_t)(p[0] & 0x7f) | (uint64_t)(p[1] & 0x7f) << 7 |
			    (uint64_t)p[2] << 14;
			return 3;
		}
	} else if (p < end && p[0] < 0x80) {
		*v = p[0];
		return 1;
	}
	for (size_t n = 0; p + n < end && n < CH_VARINT_MAX; n++) {
		unsigned char b = p[n];
		if (shift == 63 && b > 1)
			return 0;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return n + 1;
		}
		shift += 7;
	}
	return 0;
}

/* A decoded frame header, its relative fields made absolute. */
struct ch_framehdr {
	uint32_t crc;
	uint32_t len;		/* N */
	uint8_t type;
	uint8_t flags;
	uint32_t hlen;		/* H */
	uint64_t count;
	uint64_t seq;		/* of its first record */
	int64_t ts;		/* of its newest record */
	uint64_t plen;		/* format 3 data frames: the payload area's
				 * length P (the table starts at H + P);
				 * else 0 */
};

/* What a frame is relative to: its segment's header fields. */
struct ch_framebase {
	uint64_t first_seq;
	int64_t created;
	int packed;		/* format 3: data bodies are payloads, then
				 * the record table */
};

/*
 * Decode the header at p, of which `avail` bytes are readable.  0 when it
 * is valid as far as the header alone can tell; -1 when it is not a frame
 * header; 1 when it runs past `avail` (give it more bytes, up to
 * CH_FRAME_HDR_MAX, or it is cut short).
 */
int ch_frame_decode(const unsigned char *p, size_t avail,
    const struct ch_framebase *b, struct ch_framehdr *f);

/* Check a whole frame in memory (f decoded from it): trailer, CRC, and
 * for data frames that the body is exactly `count` well-formed records. */
int ch_frame_verify(const unsigned char *frame, const struct ch_framehdr *f,
    int hw);

/* A record decoded from a body. */
struct ch_frec {
	uint64_t len;
	uint32_t meta_len;
	uint64_t age;
	const unsigned char *meta;
	const unsigned char *payload;
	const unsigned char *end;	/* just after the payload */
	uint64_t at;			/* its position field (k > 0), else 0 */
};

/*
 * Decode the record whose sub-header is at p, `lim` being the end of the
 * body; `first` for record 0, which has no position field.  0 or -1 (the
 * sub-header or the record runs past lim, or is malformed).
 */
static inline __attribute__((always_inline)) int
ch_frec_decode_any(const unsigned char *p, const unsigned char *lim,
    int first, int packed, struct ch_frec *r)
{
	uint64_t v;
	size_t n;

	if (p >= lim || (p[0] & ~(CH_FREC_AGE | CH_FREC_META)))
		return -1;
	unsigned attr = p[0];
	p++;
	r->at = 0;
	if (!first) {
		if (!(n = ch_uvarint_get(p, lim, &r->at)))
			return -1;
		p += n;
	}
	if (!(n = ch_uvarint_get(p, lim, &r->len)) || r->len > 0xFFFFFFFFu)
		return -1;
	p += n;
	r->age = 0;
	if (attr & CH_FREC_AGE) {
		if (!(n = ch_uvarint_get(p, lim, &r->age)))
			return -1;
		p += n;
	}
	r->meta_len = 0;
	if (attr & CH_FREC_META) {
		if (!(n = ch_uvarint_get(p, lim, &v)) || v > CH_MAX_META)
			return -1;
		p += n;
		r->meta_len = (uint32_t)v;
	}
	if ((uint64_t)(lim - p) < r->meta_len + (packed ? 0 : r->len))
		return -1;
	r->meta = p;
	if (packed) {
		/* The payload is in the payload area: the caller knows
		 * where. */
		r->payload = NULL;
		r->end = p + r->meta_len;
	} else {
		r->payload = p + r->meta_len;
		r->end = r->payload + r->len;
	}
	return 0;
}

static inline __attribute__((always_inline)) int
ch_frec_decode(const unsigned char *p, const unsigned char *lim, int first,
    struct ch_frec *r)
{
	return ch_frec_decode_any(p, lim, first, 0, r);
}

/* Format 3: decode the table entry at p (lim: the table's end).  r->end is
 * where the entry ends; r->payload is not set: payloads lie one after
 * another in the payload area, each followed by one 0x0A byte. */
static inline __attribute__((always_inline)) int
ch_frec3_decode(const unsigned char *p, const unsigned char *lim, int first,
    struct ch_frec *r)
{
	return ch_frec_decode_any(p, lim, first, 1, r);
}

/*
 * Format 3: the entry nearly every line of a full frame has, attributes 0,
 * a position of 3 bytes and a length below 128, read in one step: 1 and
 * its position and length, as ch_frec3_decode (not first) would give
 * them, or 0 if the entry at p is not one (decode it the long way).
 */
static inline __attribute__((always_inline)) int
ch_frec3_common(const unsigned char *p, const unsigned char *lim,
    uint64_t *at, uint64_t *len)
{
	if (lim - p < 5)
		return 0;
	/* One load (compilers see a little-endian one here) and a mask. */
	uint32_t w = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	if ((w & 0x808080ffu) != 0x00808000u || (p[4] & 0x80))
		return 0;
	*at = (w >> 8 & 0x7f) | (w >> 16 & 0x7f) << 7 | (uint64_t)(w >> 24) << 14;
	*len = p[4];
	return 1;
}

/* The time of a record of age `age` in a frame of time ts; -1 if it would
 * fall before the earliest representable time. */
static inline int
ch_frec_time(int64_t ts, uint64_t age, int64_t *out)
{
	if (age > (uint64_t)ts - (uint64_t)INT64_MIN)
		return -1;
	*out = (int64_t)((uint64_t)ts - age);
	return 0;
}

/* Bytes a data record takes in a body: record 0 (first) or one starting
 * at body position `at`. */
static inline size_t
ch_frec_size(int first, uint64_t at, size_t meta_len, size_t len)
{
	return 1 + (first ? 0 : ch_uvarint_len(at)) + ch_uvarint_len(len) +
	    (meta_len ? ch_uvarint_len(meta_len) : 0) + meta_len + len;
}

/*
 * Encode a record at dst, which is body position `at` (0 for record 0):
 * its sub-header, then meta and payload.  Returns the bytes written.  The
 * age is 0: a writer gives a frame's records one time.  The body's CRC is
 * taken afterwards over all of it in one call: for short records the
 * three-stream CRC of a whole body is several times faster than
 * checksumming each record as it is copied.
 */
static inline size_t
ch_frec_put(unsigned char *dst, uint64_t at, const void *meta,
    size_t meta_len, const void *payload, size_t len)
{
	unsigned char *p = dst;

	*p++ = meta_len ? CH_FREC_META : 0;
	if (at)
		p += ch_uvarint_put(p, at);
	p += ch_uvarint_put(p, len);
	if (meta_len) {
		p += ch_uvarint_put(p, meta_len);
		memcpy(p, meta, meta_len);
		p += meta_len;
	}
	if (len)	/* an empty payload may come as NULL */
		memcpy(p, payload, len);
	return (size_t)(p - dst) + len;
}

/*
 * Format 3: write the table entry of a record at dst, which is body
 * position `at` (0 for record 0, which has no position field): attributes,
 * position, length, age (if not 0), metadata.  Returns the bytes written.
 */
static inline size_t
ch_frec3_put(unsigned char *dst, uint64_t at, uint64_t age, const void *meta,
    size_t meta_len, size_t len)
{
	unsigned char *p = dst;

	*p++ = (unsigned char)((meta_len ? CH_FREC_META : 0) |
	    (age ? CH_FREC_AGE : 0));
	if (at)
		p += ch_uvarint_put(p, at);
	p += ch_uvarint_put(p, len);
	if (age)
		p += ch_uvarint_put(p, age);
	if (meta_len) {
		p += ch_uvarint_put(p, meta_len);
		memcpy(p, meta, meta_len);
		p += meta_len;
	}
	return (size_t)(p - dst);
}

/* Header length of a frame with these fields; plen counts only for a
 * format 3 data frame (b->packed), whose header holds it. */
size_t ch_frame_hlen(const struct ch_framebase *b, uint64_t count,
    uint64_t seq, int64_t ts);
size_t ch_frame3_hlen(const struct ch_framebase *b, uint64_t count,
    uint64_t seq, int64_t ts, uint64_t plen);

/*
 * Complete a frame whose body of body_len bytes is at `body`, with room
 * for the header (up to CH_FRAME_HDR_MAX bytes) before it and for the
 * trailer after it; crc is the CRC-32C of the body.  Writes header and
 * trailer and the CRC; returns the frame's start (*lenp: its length N).
 * The caller makes sure seq >= b->first_seq, ts >= b->created and that N
 * fits 32 bits.
 */
unsigned char *ch_frame_close(unsigned char *body, size_t body_len,
    uint32_t crc, int type, uint64_t count, uint64_t seq, int64_t ts,
    const struct ch_framebase *b, int hw, uint32_t *lenp);
/* The same for a format 3 data frame whose payload area is plen bytes. */
unsigned char *ch_frame3_close(unsigned char *body, size_t body_len,
    uint64_t plen, uint32_t crc, uint64_t count, uint64_t seq, int64_t ts,
    const struct ch_framebase *b, int hw, uint32_t *lenp);

/* The same for a format 3 data frame whose payload area, plen bytes, is
 * kept elsewhere: only its table is at tab (tab_len bytes, room for the
 * header before it and the trailer after it); crc is the CRC-32C of the
 * payload area and the table.  The frame is the header, the payload area,
 * then tab_len + CH_FRAME_TRAILER bytes at tab; *lenp gets its length. */
unsigned char *ch_frame3_close_apart(unsigned char *tab, size_t tab_len,
    uint64_t plen, uint32_t crc, uint64_t count, uint64_t seq, int64_t ts,
    const struct ch_framebase *b, int hw, uint32_t *lenp);

/* A whole frame with a given body (seals, gaps, tests): dst has room for
 * CH_FRAME_HDR_MAX + body_len + CH_FRAME_TRAILER bytes. */
unsigned char *ch_frame_build(unsigned char *dst, int type, uint64_t count,
    uint64_t seq, int64_t ts, const struct ch_framebase *b,
    const void *body, size_t body_len, uint32_t *lenp);

/*
 * Body position of record j (0 < j <= count: j == count gives the body's
 * length) in a well-formed body; or of the first record that does not fit
 * `room` bytes, see ch_frame_fit.
 */
uint64_t ch_frame_record_at(const unsigned char *body, size_t body_len,
    uint64_t j);

/*
 * How many of the body's first records, at least one, make a frame of at
 * most `room` bytes with these fields (its header length grows with the
 * count); 0 if not even record 0 fits.  *prefix gets their body length.
 */
uint64_t ch_frame_fit(const unsigned char *body, size_t body_len,
    uint64_t count, uint64_t room, const struct ch_framebase *b,
    uint64_t seq, int64_t ts, size_t *prefix);

/*
 * Drop the first j records of a body in place (0 < j < count): the rest
 * move to the front, with their position fields recomputed, and *crc
 * becomes the CRC of the new body.
 */
void ch_frame_drop(unsigned char *body, size_t *body_len, uint64_t *count,
    uint64_t j, uint32_t *crc, int hw);

#endif
