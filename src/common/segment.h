/*
 * segment.h - one segment file: its header, its records, its tail.
 *
 * A segment holds format 1 records or format 2 frames, as its header says
 * (channel(5)); everything here takes the segment's header and hides which.
 * A cursor reads front to back through a large buffer (one pread per
 * quarter megabyte or per frame, not per record) and hands out records,
 * with pointers into that buffer.  It never returns a partial record, nor
 * a record of a frame whose checksum it has not verified: a record or
 * frame that runs past the known file size is "not there yet" (a writer is
 * mid-write, or a crash tore it).
 *
 * Finding the end of a segment is O(1) in the common case: the last four
 * bytes of the file are the length of the last record or frame, so it can
 * be checked without reading anything before it.  Only when that check
 * fails (a torn tail after a crash) is the segment scanned from a known
 * boundary.
 */
#ifndef CH_SEGMENT_H
#define CH_SEGMENT_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "format.h"
#include "frame.h"

struct ch_segcur {
	int fd;
	uint64_t pos;		/* file position of the next record */
	uint64_t size;		/* file size as last seen (the read limit) */
	unsigned char *buf;
	size_t cap;
	uint64_t buf_pos;	/* file position of buf[0] */
	size_t buf_len;
	int hw;			/* ch_crc32c_hw(), asked once at init */
	uint32_t format;	/* the segment's */
	struct ch_framebase fb;	/* its first sequence number and birth */
	/* Format 2: the verified frame whose records are being handed out
	 * (left of them, from pos on). */
	int entry;		/* pos was set from outside: maybe mid-frame */
	int in_damage;		/* CH_CUR_BAD there: pos is inside a frame
				 * whose header is intact but which is not
				 * valid (its records cannot be checked) */
	uint64_t dmg_seq;	/* ... that frame's first sequence number */
	uint64_t dmg_count;	/* ... and count, as its header says */
	uint64_t left;
	uint64_t fseq;		/* sequence number of the next one */
	int64_t fts;		/* the frame's time */
	uint64_t fend;		/* file position of the frame's end */
	uint64_t fbody;		/* ... and of its body */
	uint64_t ftab;		/* ... of its record table (format 3: after
				 * the payload area; else fbody) */
	uint64_t fpay;		/* format 3: of the next record's payload */
	uint64_t fseq0;		/* sequence number of the frame's record 0 */
};

enum {
	CH_CUR_IOERR = -2,	/* errno set */
	CH_CUR_BAD = -1,	/* an invalid record or frame starts at pos */
	CH_CUR_END = 0,		/* nothing (complete) at pos within size */
	CH_CUR_OK = 1,
};

/* A record's payload handed out by a cursor can be read this many bytes
 * past its end (the cursor's buffer has that slack): copies may then move
 * whole 16-byte words. */
#define CH_CUR_SLACK 16

/* A record handed out by a cursor; pointers valid until the next call.
 * A seal or a gap (type CH_REC_SEAL, CH_REC_GAP) is handed out too. */
struct ch_rec {
	struct ch_rechdr h;	/* len, meta_len, type, seq, ts (and for
				 * format 1 the crc) */
	uint64_t offset;	/* its offset (set by ch_reader_next) */
	uint64_t pos;		/* file position: its offset */
	uint64_t total;		/* offset space up to the next record */
	uint64_t nseq;		/* sequence numbers it stands for: 1 for a
				 * data record, 0 for a seal, a gap's count */
	const unsigned char *meta;
	const unsigned char *payload;
};

/*
 * Hand out the next record of the verified frame being handed out (c->left
 * > 0), whose sub-header (format 3: table entry, its payload at c->fpay,
 * which is 0 in the other formats) is at c->pos; its offset is `at` (the
 * frame's for record 0).  Inline: a reader hands out millions of records a second.
 */
static inline int
ch_segcur_emit(struct ch_segcur *c, struct ch_rec *r, uint64_t at)
{
	const unsigned char *p = c->buf + (c->pos - c->buf_pos);
	const unsigned char *lim = c->buf + (c->fend - CH_FRAME_TRAILER -
	    c->buf_pos);
	struct ch_frec fr;
	int packed = c->fpay != 0;

	if (ch_frec_decode_any(p, lim, c->pos == c->ftab, packed, &fr) < 0) {
		c->left = 0;	/* cannot happen in a verified frame */
		return CH_CUR_BAD;
	}
	if (packed) {
		fr.payload = c->buf + (c->fpay - c->buf_pos);
		c->fpay += fr.len + 1;
	}
	r->h.type = CH_REC_DATA;
	r->h.flags = 0;
	r->h.crc = 0;
	r->h.len = (uint32_t)fr.len;
	r->h.meta_len = (uint16_t)fr.meta_len;
	r->h.seq = c->fseq++;
	r->h.ts = c->fts;
	if (fr.age)
		(void)ch_frec_time(c->fts, fr.age, &r->h.ts);
	r->meta = fr.meta;
	r->payload = fr.payload;
	r->nseq = 1;
	r->pos = at;
	uint64_t next = --c->left ? c->pos + (uint64_t)(fr.end - p) : c->fend;
	r->total = next - at;
	c->pos = next;
	return CH_CUR_OK;
}

/* Point a cursor at fd/pos of the segment with header h; c must be zeroed
 * before its first use (its buffer is kept across re-inits).  pos may be
 * any record's offset, also one inside a frame. */
void ch_segcur_init(struct ch_segcur *c, int fd, const struct ch_seghdr *h,
    uint64_t pos, uint64_t size);
/* Move to another record boundary of the same segment. */
void ch_segcur_seek(struct ch_segcur *c, uint64_t pos);
void ch_segcur_free(struct ch_segcur *c);
/* Next record; on CH_CUR_OK the cursor has moved past it. */
int ch_segcur_next_unit(struct ch_segcur *c, struct ch_rec *r);
static inline int
ch_segcur_next(struct ch_segcur *c, struct ch_rec *r)
{
	if (c->left)	/* the rest of a verified frame */
		return ch_segcur_emit(c, r, c->pos);
	return ch_segcur_next_unit(c, r);
}
/* Re-read the file size and forget buffered bytes past the cursor;
 * returns 1 if the file grew, 2 if it did not but bytes past the cursor
 * were forgotten (they may have been rewritten: worth reading again),
 * else 0. */
int ch_segcur_refresh(struct ch_segcur *c);
/* 1 if the next record is already in memory, verified. */
int ch_segcur_buffered(const struct ch_segcur *c);
/*
 * After CH_CUR_BAD: look for the next valid record or frame after pos
 * (where the damaged one's header says it ends, else byte by byte, using
 * the signature as a hint).  expect_seq is the sequence number due at pos
 * and min_ts the time of the record before it: a candidate must fit them,
 * so a record or frame embedded in a damaged payload is not taken for the
 * next one (CH_SEQ_ANY: accept any valid one).  It may be the record due
 * itself, when the bytes before it stood for none (a duplicate).  Returns
 * 1 with its position in *next and its sequence number in *next_seq, 0 if
 * there is none before the end of the file.
 *
 * Also after CH_CUR_END before the end of the file: a unit whose header
 * is intact but which claims to run past the end is torn, or being
 * written, or its length field is damaged.  Only in the last case does a
 * unit follow it: exactly where its own trailer says it ends, numbered
 * exactly after its records.  Nothing else in its bytes is taken, since
 * a payload may hold whole records or frames (a segment file published
 * as a record): 0 means it is the last thing in the file.
 */
#define CH_SEQ_ANY UINT64_MAX
int ch_segcur_resync(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next, uint64_t *next_seq);

/* Read and check the header of segment `base`, open on fd. */
int ch_segment_header(int fd, uint64_t base, struct ch_seghdr *hdr,
    struct ch_error *err);

/* Open segment `base` read-only (or O_RDWR) and check its header. */
int ch_segment_open(int dirfd, uint64_t base, int rw, int *fdp,
    struct ch_seghdr *hdr, struct ch_error *err);

/*
 * Create segment `base` in format `format`, its header flags `flags`
 * (CH_SEGF_*), atomically (temp file, then rename without replacing).  If
 * it already exists with a valid header for `base` (a crash after the
 * rename), that file is kept.  With `durable`, the file and the directory
 * are fsynced.
 */
int ch_segment_create(int dirfd, uint64_t base, uint32_t format,
    uint64_t first_seq, int64_t created, uint32_t flags, int durable,
    mode_t mode, struct ch_error *err);

/*
 * Give segment `base`, which holds no record (its file is just a header),
 * a header of format `format`, in place (the writer, under the append
 * lock, when the channel's format changed; also a header that a crash
 * tore).  fdatasynced.
 */
int ch_segment_reformat(int dirfd, uint64_t base, uint32_t format,
    uint64_t first_seq, int64_t created, uint32_t flags, struct ch_error *err);

/* What is at the end of a segment. */
struct ch_tail {
	uint64_t end;		/* file position after the last valid record
				 * (before the seal, if sealed) */
	uint64_t file_end;	/* end of valid bytes (after the seal) */
	uint64_t next_seq;	/* sequence number of the next record */
	int64_t last_ts;	/* time of the last record (0 if none) */
	int sealed;		/* the last record is a seal */
	struct ch_seal seal;	/* valid when sealed */
	int torn;		/* bytes after file_end are not valid records */
};

/*
 * Find the valid end of a segment of `size` bytes from its end: the last
 * record, checked; a scan from the header only when that is torn.  Quick,
 * but a torn record's payload can fool it (see ch_segment_walk, which
 * writers and the channel's end use).
 */
int ch_segment_tail(int fd, const struct ch_seghdr *hdr, uint64_t size,
    struct ch_tail *t, struct ch_error *err);

/*
 * Do valid records end at file position `pos` (at most the file's size),
 * the last of them checked as ch_segment_tail checks the last record of a
 * file of `pos` bytes?  1 (t filled as for such a file), 0 not, -1 on an
 * I/O error.  A check of what a caller believes is a record boundary; it
 * proves nothing about a position found only from the end of the file.
 */
int ch_segment_ends_at(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    struct ch_tail *t);

/*
 * The valid end of a segment of `size` bytes, walking record by record
 * from t->file_end, a record boundary the caller knows (one it wrote, or
 * one ch_segment_ends_at checked; a zeroed t: the header), where t says
 * what is due.  Unlike ch_segment_tail, never takes records inside a torn
 * record's payload for whole ones; costs a read of what it walks.
 */
int ch_segment_walk(int fd, const struct ch_seghdr *hdr, uint64_t size,
    struct ch_tail *t, struct ch_error *err);

/*
 * At file position pos, a record boundary past the header: the sequence
 * number due there, from the record or frame that ends there (its
 * checksum is not verified).  0, -1 on an I/O error, -2 if nothing valid
 * ends there.
 */
int ch_segment_seq_before(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    uint64_t *seq);

/*
 * A valid record numbered seq starts at pos: is it out of sequence there,
 * not the one due after the record that ends at pos (the header's first
 * number at the segment's start)?  Such a record (a copy of an earlier
 * one, say) is damage where it stands.  Only a valid record that follows
 * the one before it says what is due, so after damage none is out of
 * sequence; nor is a record inside a format 2 frame (its frame's first
 * one may be).  1 with the number due in *due, 0, or -1 on an I/O error.
 */
int ch_segment_out_of_seq(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    uint64_t seq, uint64_t *due);

/* The type and time of the record at boundary pos, without verifying it;
 * 0 with *type 0 if none decodes there, -1 on an I/O error. */
int ch_segment_peek(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    int *type, int64_t *ts);

/* The largest seal, in bytes, of any format. */
#define CH_SEAL_MAX (CH_FRAME_HDR_MAX + CH_SEAL_PAYLOAD + CH_FRAME_TRAILER)

/* Encode the seal of segment hdr into buf (CH_SEAL_MAX bytes): the seal's
 * bytes start at the returned pointer and take *lenp bytes. */
unsigned char *ch_seal_make(unsigned char *buf, const struct ch_seghdr *hdr,
    uint64_t seq, int64_t ts, const struct ch_seal *s, uint32_t *lenp);

/*
 * Encode into dst (len bytes) a gap of exactly len bytes in segment hdr's
 * format (channel(5), Gap records), numbered seq, of time ts, standing for
 * `count` records lost.  -1 if no such gap exists: the count is 0 or more
 * than len bytes could have held, or len is too short or too long for one.
 */
int ch_gap_make(unsigned char *dst, const struct ch_seghdr *hdr, uint64_t len,
    uint64_t seq, int64_t ts, uint64_t count);

/* Global offset of file position pos in the segment with this base. */
static inline uint64_t
ch_seg_offset(uint64_t base, uint64_t pos)
{
	return base + pos - CH_SEG_HDR;
}

#endif
