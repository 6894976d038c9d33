/*
 * segment.h - one segment file: its header, its records, its tail.
 *
 * A cursor reads records front to back through a large buffer (one pread
 * per megabyte, not per record) and hands out pointers into that buffer.
 * It never returns a partial record: a record that runs past the known file
 * size is "not there yet" (a writer is mid-write, or a crash tore it).
 *
 * Finding the end of a segment is O(1) in the common case: the last four
 * bytes of the file are the length of the last record, so the tail record
 * can be checked without reading anything else.  Only when that check fails
 * (a torn tail after a crash) is the segment scanned from a known boundary.
 */
#ifndef CH_SEGMENT_H
#define CH_SEGMENT_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "format.h"

struct ch_segcur {
	int fd;
	uint64_t pos;		/* file position of the next record */
	uint64_t size;		/* file size as last seen (the read limit) */
	unsigned char *buf;
	size_t cap;
	uint64_t buf_pos;	/* file position of buf[0] */
	size_t buf_len;
	int hw;			/* ch_crc32c_hw(), asked once at init */
};

enum {
	CH_CUR_IOERR = -2,	/* errno set */
	CH_CUR_BAD = -1,	/* an invalid record starts at pos */
	CH_CUR_END = 0,		/* nothing (complete) at pos within size */
	CH_CUR_OK = 1,
};

/* A record handed out by a cursor; pointers valid until the next call. */
struct ch_rec {
	struct ch_rechdr h;
	uint64_t pos;		/* file position */
	uint64_t total;		/* bytes on disk */
	uint64_t seqs;		/* sequence numbers it takes (ch_rec_seqs) */
	const unsigned char *meta;
	const unsigned char *payload;
};

/* Point a cursor at fd/pos; c must be zeroed before its first use (its
 * buffer is kept across re-inits). */
void ch_segcur_init(struct ch_segcur *c, int fd, uint64_t pos, uint64_t size);
void ch_segcur_free(struct ch_segcur *c);
/* Next record; on CH_CUR_OK the cursor has moved past it. */
int ch_segcur_next(struct ch_segcur *c, struct ch_rec *r);
/* Re-read the file size; returns 1 if it grew. */
int ch_segcur_refresh(struct ch_segcur *c);
/*
 * After CH_CUR_BAD: look for the next valid record after pos (where the
 * damaged record's header says, else byte by byte, using the magic number
 * as a hint).  expect_seq is the sequence number due at pos and min_ts the
 * time of the record before it: a candidate must fit them, so a record
 * embedded in a damaged payload is not taken for the next one
 * (CH_SEQ_ANY: accept any valid record).  Returns 1 and its position in
 * *next, 0 if there is none before the end of the file.
 */
#define CH_SEQ_ANY UINT64_MAX
int ch_segcur_resync(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next);

/* Open segment `base` read-only (or O_RDWR) and check its header. */
int ch_segment_open(int dirfd, uint64_t base, int rw, int *fdp,
    struct ch_seghdr *hdr, struct ch_error *err);

/*
 * Create segment `base` atomically (temp file, then rename without
 * replacing).  If it already exists with a valid header for `base` (a crash
 * after the rename), that file is kept.  With `durable`, the file and the
 * directory are fsynced.
 */
int ch_segment_create(int dirfd, uint64_t base, uint64_t first_seq,
    int64_t created, int durable, mode_t mode, struct ch_error *err);

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
 * Find the valid end of a segment of `size` bytes.  `hint`, if non-zero, is
 * a file position believed to be a record boundary whose record has
 * sequence number `hint_seq`; a scan (needed only when the tail record is
 * torn) starts there when it checks out, else at the header.
 */
int ch_segment_tail(int fd, const struct ch_seghdr *hdr, uint64_t size,
    uint64_t hint, uint64_t hint_seq, struct ch_tail *t, struct ch_error *err);

/* Global offset of file position pos in the segment with this base. */
static inline uint64_t
ch_seg_offset(uint64_t base, uint64_t pos)
{
	return base + pos - CH_SEG_HDR;
}

#endif
