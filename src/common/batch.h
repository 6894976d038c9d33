/*
 * batch.h - the records a writer has queued, framed outside the lock in
 * the format of the segments it writes: format 1 records back to back, or
 * format 2 frames of at most CH_FRAME_BOUND bytes, or format 3 frames of
 * at most CH_FRAME3_BOUND (one frame, unbounded, for an atomic batch).
 * Framing copies each payload and checksums it in the same pass; format 3
 * lines added with ch_batch_add_split_kept are checksummed where they are,
 * in the caller's buffer, and written from there.
 *
 * Under the append lock the writer takes the batch out in pieces that fit
 * the active segment (ch_batch_take): the records that fit, or for format
 * 2 the frame, or the first records of a frame cut at the segment's end
 * (the rest become a frame of their own), or for format 3 up to
 * CH_PIECE_IOV buffers of frames that fit.  A piece is completed with its
 * sequence numbers and time and is ready for one pwritev(2); once
 * written, ch_batch_consume moves on.
 */
#ifndef CH_BATCH_H
#define CH_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "error.h"
#include "format.h"

struct ch_bframe {
	size_t body;		/* where its body starts in buf */
	size_t len;		/* body bytes */
	uint64_t count;		/* records */
	uint32_t crc;		/* of the body's first crc_len bytes */
	size_t crc_len;
	size_t plen;		/* format 3: its payload area's bytes */
	int tabled;		/* format 3: its table follows them (it is
				 * closed); else it waits in the batch's tab */
	const unsigned char *ext;	/* format 3: its payload area, left in
				 * the caller's buffer (ch_batch_add_split_kept),
				 * or NULL; then only its table is in buf */
};

struct ch_batch {
	uint32_t format;
	int atomic;		/* format 2: one frame, never cut */
	uint64_t max_record;
	int hw;
	unsigned char *buf;
	size_t len, cap;
	size_t nrec;		/* records not yet taken out */
	uint64_t bytes;		/* their metadata and payload bytes */
	size_t done;		/* format 1: buf[done..len) is pending */
	struct ch_bframe *fr;	/* format 2: fr[fdone..nfr) are pending */
	size_t nfr, frcap, fdone;
	int closed;		/* format 2: taking out began; no more
				 * records go into these frames */
	/* The piece taken out and not yet consumed. */
	size_t cut;		/* format 1: where it ends */
	uint64_t part;		/* format 2: records of a cut frame, or 0 */
	unsigned char saved[4];	/* bytes its trailer covers */
	uint64_t taken;		/* its records */
	size_t pfr;		/* format 3: its whole frames */
	/* Format 3: the open frame's table entries, without their position
	 * fields (known once its payloads are all there); and the body of a
	 * frame cut at a segment's end, kept to make the rest of it. */
	unsigned char *tab;
	size_t tablen, tabcap;
	unsigned char *scratch;
	size_t scratch_cap;
	size_t kept;		/* format 3: payload bytes left in the caller's
				 * buffers */
};

/* Most buffers in a piece, written with one pwritev(2): a frame is one, or
 * three (header, payloads, table) when its payloads were left in the
 * caller's buffer (format 3: chpub's batches of bulk input are 256-384
 * KiB, 5-7 frames). */
#define CH_PIECE_IOV 64

/* A piece ready to write: iov[0..niov), one after another in the file. */
struct ch_piece {
	struct iovec iov[CH_PIECE_IOV];
	int niov;
	size_t len;		/* their bytes */
	uint64_t nrec;
};

/* Make pc the piece of len bytes at p, nrec records. */
static inline void
ch_piece_one(struct ch_piece *pc, const unsigned char *p, size_t len,
    uint64_t nrec)
{
	pc->iov[0].iov_base = (void *)(uintptr_t)p;
	pc->iov[0].iov_len = len;
	pc->niov = 1;
	pc->len = len;
	pc->nrec = nrec;
}

void ch_batch_init(struct ch_batch *b, uint32_t format, uint64_t max_record,
    int atomic);
void ch_batch_free(struct ch_batch *b);

/* Queue one record (copied).  Fails if its payload exceeds max_record,
 * or payload and metadata CH_RECORD_MAX (or, for an atomic batch, if the
 * batch would exceed max_record). */
int ch_batch_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err);

/* Queue every record of buf[0..len) that ends with `delim` (see
 * ch_writer_add_split). */
int ch_batch_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err);
/* The same, but format 3 lines (newline, no metadata, not atomic) may be
 * left where they are: the caller keeps buf unchanged until the batch is
 * cleared or consumed. */
int ch_batch_add_split_kept(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err);

/* Bytes queued and not yet taken out (0: nothing to write). */
size_t ch_batch_pending(const struct ch_batch *b);
/* Records queued and not yet taken out. */
size_t ch_batch_records(const struct ch_batch *b);

/* Bytes of the smallest piece that can be taken next into a segment with
 * header seg, numbered from seq, at time ts: one record, framed (for an
 * atomic batch, all of it). */
uint64_t ch_batch_first(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts);

/*
 * Complete the largest next piece of at most `room` bytes, and at least
 * the smallest one, for file position `at` of segment seg: sequence
 * numbers from seq, time ts (not before the segment's birth).  With offs,
 * the file position of each of its records goes there.
 */
void ch_batch_take(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc);
/* The piece taken out was written: go on with the rest. */
void ch_batch_consume(struct ch_batch *b);
/* Drop everything queued. */
void ch_batch_clear(struct ch_batch *b);

/* Frame the records queued and not yet taken out again, in `format`: for
 * a writer that learns under the lock that the channel is written in
 * another format now.  An atomic batch only between formats 2 and 3 (it
 * stays one frame).  On failure (out of memory) b is unchanged. */
int ch_batch_reformat(struct ch_batch *b, uint32_t format,
    struct ch_error *err);

/* Format 2 (batch2.c). */
int ch_batch2_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err);
int ch_batch2_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err);
uint64_t ch_batch2_first(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts);
void ch_batch2_take(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc);
void ch_batch2_consume(struct ch_batch *b);

/* Format 3 (batch3.c). */
int ch_batch3_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err);
int ch_batch3_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, int kept, size_t *used,
    size_t *nrec, struct ch_error *err);
uint64_t ch_batch3_first(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts);
void ch_batch3_take(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc);
void ch_batch3_consume(struct ch_batch *b);
/* The records queued in b and not yet taken out, added to nb. */
int ch_batch3_reframe(const struct ch_batch *b, struct ch_batch *nb,
    struct ch_error *err);

/* Shared by all three. */
int ch_batch_reserve(struct ch_batch *b, uint64_t more, struct ch_error *err);
int ch_batch_too_large(const struct ch_batch *b, size_t meta_len, size_t len,
    struct ch_error *err);

/* The largest payload of a record with meta_len bytes of metadata:
 * max_record, and what the lengths of either format can hold. */
static inline uint64_t
ch_batch_payload_max(const struct ch_batch *b, size_t meta_len)
{
	uint64_t fits = meta_len < CH_RECORD_MAX ? CH_RECORD_MAX - meta_len : 0;

	return b->max_record < fits ? b->max_record : fits;
}

#endif
