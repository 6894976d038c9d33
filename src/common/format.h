/*
 * format.h - the bytes on disk (channel(5) is the normative description).
 *
 * All integers are little-endian.  Offsets are global byte positions in the
 * channel's record stream: the record stored at file position P of the
 * segment whose base offset is B has offset B + P - CH_SEG_HDR.  Segment
 * headers and seal records take file space but no offset space, so the
 * seal of a segment sits at the offset that is the next segment's base.
 *
 * Segment file "%020llu.seg" (its base offset):
 *   0  8  magic "CHANSEG\n"
 *   8  4  format version (1)
 *  12  4  header size (64)
 *  16  8  base offset
 *  24  8  sequence number of its first record
 *  32  8  creation time, ns since the epoch
 *  40 20  zero
 *  60  4  CRC-32C of bytes 0..59
 *  64     records, back to back, the last one a seal once sealed
 *
 * Record (CH_REC_OVERHEAD + meta_len + payload_len bytes):
 *   0  4  magic C7 52 45 43
 *   4  4  CRC-32C of bytes 32..end, then of bytes 8..31
 *   8  4  payload length
 *  12  2  meta length
 *  14  1  type: 1 data, 2 seal, 3 gap
 *  15  1  flags (0)
 *  16  8  sequence number (records are numbered 0, 1, 2... per channel)
 *  24  8  publish time, ns since the epoch (non-decreasing)
 *  32     meta (KEY=VALUE\n lines; dead-letter origin), then payload
 * end-4 4 total length of this record (so the tail can be read backwards)
 *
 * Seal payload (24 bytes): data records in the segment, time of its first
 * and of its last data record.
 *
 * Gap (written only by chcompact --repair, over damaged bytes between two
 * valid records, at exactly their length): sequence number of the first
 * record lost, time of the record before it; payload: the number of
 * records lost, little-endian in its first min(len, 8) bytes, the rest
 * zero; a gap of 36 bytes has no payload and stands for one record.
 *
 * Index file "index": a 64-byte header ("CHANIDX\n", version, entry size,
 * CRC at 60) and one 32-byte entry per segment, oldest first: base offset,
 * first sequence number, creation time, 4 zero bytes, CRC-32C of 0..27.
 */
#ifndef CH_FORMAT_H
#define CH_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

/* The newest format version this chtools reads and writes (channel(5)):
 * 1, records one by one; 2, records in frames (frame.h); 3, frames whose
 * payloads lie together, each followed by a newline (frame.h). */
#define CH_FORMAT_MAX 3

#define CH_SEG_MAGIC "CHANSEG\n"
#define CH_SEG_HDR 64
#define CH_SEG_NAME_LEN 24		/* 20 digits + ".seg" */

#define CH_REC_MAGIC 0x434552C7u
#define CH_REC_HDR 32
#define CH_REC_TRAILER 4
#define CH_REC_OVERHEAD (CH_REC_HDR + CH_REC_TRAILER)
#define CH_REC_DATA 1
#define CH_REC_SEAL 2
#define CH_REC_GAP 3		/* damaged bytes written over by a repair */
#define CH_SEAL_PAYLOAD 24
#define CH_SEAL_SIZE (CH_REC_OVERHEAD + CH_SEAL_PAYLOAD)
#define CH_MAX_META 65535u
/* The most payload and metadata one record holds together, in either
 * format: a format 1 record's total length and a format 2 frame's length
 * are 32-bit fields, and the framing around one record takes less than
 * 256 bytes (batch.c checks both).  max_record_bytes, which limits the
 * payload alone, goes no higher. */
#define CH_RECORD_MAX 0xFFFFFF00ULL	/* 4294967040 */

#define CH_IDX_MAGIC "CHANIDX\n"
#define CH_IDX_FILE "index"
#define CH_IDX_HDR 64
#define CH_IDX_ENTRY 32

/* Stores and loads through memcpy compile to single moves (and a byte swap
 * on big-endian hosts): framing stays cheap at millions of records. */
static inline void
ch_put16(unsigned char *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	memcpy(p, &v, 2);
}

static inline void
ch_put32(unsigned char *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	memcpy(p, &v, 4);
}

static inline void
ch_put64(unsigned char *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

static inline uint16_t
ch_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
ch_get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t
ch_get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* A decoded record header. */
struct ch_rechdr {
	uint32_t crc;
	uint32_t len;		/* payload */
	uint16_t meta_len;
	uint8_t type;
	uint8_t flags;
	uint64_t seq;
	int64_t ts;
};

/* Bytes a record occupies on disk. */
static inline uint64_t
ch_rec_size(uint64_t meta_len, uint64_t len)
{
	return CH_REC_OVERHEAD + meta_len + len;
}

/* Decode the 32-byte header; -1 if the magic, type or flags are wrong.
 * Inline: readers decode one header per record. */
static inline int
ch_rec_decode(const unsigned char *p, struct ch_rechdr *h)
{
	if (ch_get32(p) != CH_REC_MAGIC)
		return -1;
	h->crc = ch_get32(p + 4);
	h->len = ch_get32(p + 8);
	h->meta_len = ch_get16(p + 12);
	h->type = p[14];
	h->flags = p[15];
	h->seq = ch_get64(p + 16);
	h->ts = (int64_t)ch_get64(p + 24);
	if (h->type < CH_REC_DATA || h->type > CH_REC_GAP || h->flags)
		return -1;
	if (h->type == CH_REC_SEAL &&
	    (h->len != CH_SEAL_PAYLOAD || h->meta_len != 0))
		return -1;
	if (h->type == CH_REC_GAP && h->meta_len != 0)
		return -1;
	return 0;
}

/* Check a whole record in memory (`total` bytes): trailer and CRC. */
int ch_rec_verify(const unsigned char *rec, uint64_t total);

/*
 * Encode a record except its sequence number, time and CRC into dst (which
 * has room for ch_rec_size()), checksumming meta and payload while copying
 * them.  Returns the CRC of the part that does not depend on the sequence
 * number and time (bytes 32..end, then 8..15); ch_rec_finish() completes it
 * with bytes 16..31 once the writer holds the lock and knows them.
 */
uint32_t ch_rec_encode(unsigned char *dst, int type, const void *meta,
    size_t meta_len, const void *payload, size_t len);
void ch_rec_finish(unsigned char *rec, uint32_t partial, uint64_t seq,
    int64_t ts);

/*
 * The same three steps inline, for loops over a batch of records: hw is
 * ch_crc32c_hw(), asked once per batch.  Framing copies meta and payload
 * and checksums them in the same pass.
 */
static inline uint32_t
ch_rec_frame(unsigned char *dst, int type, const void *meta, size_t meta_len,
    const void *payload, size_t len, int hw)
{
	size_t total = CH_REC_OVERHEAD + meta_len + len;
	unsigned char tail[CH_REC_TRAILER + 8];
	uint32_t crc = 0;

	ch_put32(dst, CH_REC_MAGIC);
	ch_put32(dst + 4, 0);
	ch_put32(dst + 8, (uint32_t)len);
	ch_put16(dst + 12, (uint16_t)meta_len);
	dst[14] = (unsigned char)type;
	dst[15] = 0;
	if (meta_len)
		crc = ch_crc32c_copy(crc, dst + CH_REC_HDR, meta, meta_len, hw);
	crc = ch_crc32c_copy(crc, dst + CH_REC_HDR + meta_len, payload, len, hw);
	ch_put32(dst + total - CH_REC_TRAILER, (uint32_t)total);
	/* The CRC runs over bytes 32..end, then 8..31; 8..15 are known now,
	 * so they go in with the trailer. */
	memcpy(tail, dst + total - CH_REC_TRAILER, CH_REC_TRAILER);
	memcpy(tail + CH_REC_TRAILER, dst + 8, 8);
	return ch_crc32c_fast(crc, tail, sizeof tail, hw);
}

static inline void
ch_rec_finish_fast(unsigned char *rec, uint32_t partial, uint64_t seq,
    int64_t ts, int hw)
{
	ch_put64(rec + 16, seq);
	ch_put64(rec + 24, (uint64_t)ts);
	ch_put32(rec + 4, ch_crc32c_fast(partial, rec + 16, CH_REC_HDR - 16, hw));
}

static inline int
ch_rec_verify_fast(const unsigned char *rec, uint64_t total, int hw)
{
	uint32_t crc;

	if (total < CH_REC_OVERHEAD ||
	    ch_get32(rec + total - CH_REC_TRAILER) != total)
		return -1;
	crc = ch_crc32c_fast(0, rec + CH_REC_HDR, total - CH_REC_HDR, hw);
	crc = ch_crc32c_fast(crc, rec + 8, CH_REC_HDR - 8, hw);
	return crc == ch_get32(rec + 4) ? 0 : -1;
}

/* The seal payload. */
struct ch_seal {
	uint64_t records;
	int64_t first_ts, last_ts;
};
void ch_seal_encode(unsigned char *payload, const struct ch_seal *s);
void ch_seal_decode(const unsigned char *payload, struct ch_seal *s);

/*
 * Gap records (type 3).  A gap stands where records were lost, typically
 * to a power failure that kept later writes and lost earlier ones; it
 * has the exact length of the damaged bytes, so offsets keep their
 * meaning, and the count of records lost, so sequence numbers and lag do.
 * ch_gap_encode writes a whole gap of `total` bytes (at least
 * CH_REC_OVERHEAD, and at least CH_REC_OVERHEAD per record lost) into
 * dst.  ch_gap_count reads the count from a verified gap record of
 * `total` bytes: -1 if it is not a plausible one (no record lost, or more
 * than its bytes could have held).
 */
#define CH_GAP_COUNT_BYTES 8
void ch_gap_encode(unsigned char *dst, uint64_t total, uint64_t seq,
    int64_t ts, uint64_t count);
int ch_gap_count(const unsigned char *rec, uint64_t total, uint64_t *count);

/* Sequence numbers a valid record takes: a data record one, a seal none
 * (its number is the next record's), a gap as many as it lost. */
static inline uint64_t
ch_rec_seqs(const struct ch_rechdr *h, uint64_t gap_count)
{
	return h->type == CH_REC_DATA ? 1 : h->type == CH_REC_GAP ?
	    gap_count : 0;
}

struct ch_seghdr {
	uint32_t format;
	uint64_t base;
	uint64_t first_seq;
	int64_t created;
	uint32_t flags;		/* byte 40 (CH_SEGF_*); other bits ignored */
};

/* Header flag (byte 40, bit 0): the segment before this one was sealed
 * by a rollover under sync none and not fdatasynced; its tail may be
 * lost to a power failure (channel(5), Rollover).  Cleared, in place,
 * once that segment is fdatasynced and found whole (sealsync.h). */
#define CH_SEGF_PRED_UNSYNCED 0x01u
void ch_seghdr_encode(unsigned char *p, const struct ch_seghdr *h);
int ch_seghdr_decode(const unsigned char *p, struct ch_seghdr *h);

void ch_seg_name(char *buf, uint64_t base);	/* buf: CH_SEG_NAME_LEN+1 */
/* Parse a segment file name; -1 if it is not one. */
int ch_seg_parse_name(const char *name, uint64_t *base);

struct ch_idxent {
	uint64_t base;
	uint64_t first_seq;
	int64_t created;
};
void ch_idxhdr_encode(unsigned char *p);
int ch_idxhdr_decode(const unsigned char *p);
void ch_idxent_encode(unsigned char *p, const struct ch_idxent *e);
int ch_idxent_decode(const unsigned char *p, struct ch_idxent *e);

#endif
