/*
 * reader.h - reading records from an offset on, across segments.
 *
 * A reader takes no lock and never blocks a writer.  It hands out only
 * whole records whose checksum is right; a record still being written is
 * "not there yet".  At a seal it moves to the next segment by name.
 *
 * Damage is told apart from a tail still being written: invalid bytes
 * followed by a valid record (or inside a sealed segment) are corruption,
 * reported as CH_EXIT_DATAERR, or skipped with a warning when skip_corrupt
 * is set; invalid bytes at the very end of the newest segment are a torn
 * tail, which reads as the end of the channel until the next writer cuts
 * it off.
 */
#ifndef CH_READER_H
#define CH_READER_H

#include <stdint.h>

#include "channel.h"
#include "error.h"
#include "output.h"
#include "segment.h"

struct ch_reader;

typedef void (*ch_warn_fn)(void *ctx, const char *msg);

/*
 * Open a reader at `offset`, which must be a record boundary between the
 * channel's start and end (CH_EXIT_NOINPUT if the data there was deleted,
 * CH_EXIT_DATAERR if it is not a boundary or past the end).  With
 * `strict`, the boundary is proven by walking the segment from its start
 * (for offsets typed by a user); otherwise the record at offset is checked.
 */
int ch_reader_open(struct ch_channel *ch, uint64_t offset, int strict,
    struct ch_reader **rp, struct ch_error *err);
void ch_reader_close(struct ch_reader *r);

void ch_reader_set_skip_corrupt(struct ch_reader *r, int on, ch_warn_fn warn,
    void *ctx);

/* Next data record: 1 and *rec (rec->offset its offset; the next record's
 * is rec->offset + rec->total), 0 when nothing more is there now, -1. */
int ch_reader_next(struct ch_reader *r, struct ch_rec *rec,
    struct ch_error *err);

/* Where one record rendered by ch_reader_plain_run ends in the output,
 * and the offset and sequence number that follow it. */
struct ch_runmark {
	size_t end;
	uint64_t offset, seq;
};

/*
 * Plain output in bulk (a catch-up reads millions of records): the next
 * records of the verified frame being read, each rendered as
 * ch_output_record renders it in plain mode (the payload and `delim`),
 * appended to out while out->len is below `limit`, at most `max` of them;
 * marks[i] gets where record i ends.  *n is how many (0 when none is
 * ready that way: ch_reader_next takes it from there).  -1 only when out
 * of memory.  Each record is decoded once, here, instead of again in a
 * ch_rec, a ch_recview and ch_output_record.
 */
int ch_reader_plain_run(struct ch_reader *r, struct ch_buf *out, char delim,
    size_t limit, size_t max, struct ch_runmark *marks, size_t *n);

/*
 * The same without a copy, for plain output with newlines, when the frame
 * being read is a format 3 one (its payloads lie in the file as that
 * output renders them): the next records' bytes, at most `max` records and
 * about `room` bytes (at least one record), are *span, valid until the
 * next call on r; marks[i].end counts from *span.  Returns their length;
 * 0 (and *n 0) when the next record is not ready that way.
 */
size_t ch_reader_plain_span(struct ch_reader *r, size_t room, size_t max,
    struct ch_runmark *marks, size_t *n, const unsigned char **span);

/*
 * The record ch_reader_next just handed out is record 0 of a format 3
 * frame with more records after it: step back before it, so that
 * ch_reader_plain_span hands the whole frame out in one piece; 1 if so.
 * (A new frame is verified, and its first record handed out, by
 * ch_reader_next.)
 */
int ch_reader_unread_first(struct ch_reader *r);

/* The offset is inside a frame that is damaged (non-strict opens only):
 * the sequence number due there cannot be known from the channel, and the
 * caller sets it from what it knows (an offset file). */
int ch_reader_seq_lost(const struct ch_reader *r);
void ch_reader_set_seq(struct ch_reader *r, uint64_t seq);

/* Offset and sequence number of the next record to be returned. */
uint64_t ch_reader_offset(const struct ch_reader *r);
uint64_t ch_reader_seq(const struct ch_reader *r);
/* 1 if what follows the last record returned is already in memory, so
 * the next call starts without reading the file; 0 if it will read (or
 * find the end): a follower writes out what it has before that. */
int ch_reader_buffered(const struct ch_reader *r);

/*
 * Offset of the first record published at or after `ts` (the end if none),
 * and its sequence number.  Corrupt data on the way is passed as
 * chsub --skip-corrupt passes it, unless the first valid record after it is
 * already that late (or none follows): then the answer may be in it, and
 * that fails (CH_EXIT_DATAERR).
 */
int ch_seek_time(struct ch_channel *ch, int64_t ts, uint64_t *offset,
    uint64_t *seq, struct ch_error *err);

/*
 * Offset of the record with sequence number `seq` (clamped by the caller to
 * [start seq, end seq]; the end seq gives the end offset), counted from the
 * boundary `from`, where record from_seq is due: CH_EXIT_DATAERR if
 * corrupt data lies between the two, or hides the record.  Corrupt data
 * before both (or after) does not matter.
 */
int ch_seek_seq(struct ch_channel *ch, uint64_t seq, uint64_t from,
    uint64_t from_seq, uint64_t *offset, struct ch_error *err);

/* Time of the record at offset (0 at the end): for time lag.  With
 * `written`, also when the segment holding it was last written (its
 * mtime, ns since the epoch): the record was written no later, whatever
 * its time stamp says; 0 if not known (at a seal: the record is the next
 * segment's). */
int ch_record_time(struct ch_channel *ch, uint64_t offset, int64_t *ts,
    int64_t *written, struct ch_error *err);

#endif
