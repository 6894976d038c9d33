/*
 * writer.h - appending records to a channel.
 *
 * Records are framed and checksummed into a batch (batch.h), in the format
 * channel.yaml names, without any lock (ch_writer_add); ch_writer_flush
 * then takes the append lock once for the whole batch, brings its view of
 * the tail up to date (another writer may have appended, sealed, or died
 * mid-write: a torn tail is truncated back to the last valid record here),
 * gives each record its sequence number and time, writes the batch with
 * one pwrite(2) per segment boundary (format 1), per frame (format 2) or
 * for several frames (format 3: a pwritev(2) of up to CH_PIECE_IOV
 * buffers), and releases the lock.  So concurrent writers never
 * interleave inside a record and each writer's order is kept.
 *
 * A writer that finds the active segment in another format than its own
 * reads channel.yaml again (a long-running one also does when the file
 * changed, looking at most once a second) and writes the format named
 * there from then on, its queued records framed anew.  If the active
 * segment is in another format still (channel.yaml was edited to upgrade
 * the channel, or to downgrade it), it seals that segment if it holds
 * records and writes the next one in the channel's format; an empty one
 * just gets a new header.
 *
 * Rollover (sealing the active segment) under the lock: append a seal
 * record, fdatasync the segment (under sync none, instead flag the next
 * one: sealsync.h), create the next segment (temp file + rename), append
 * its index entry.  A crash between any two steps is finished by the next
 * writer: a sealed last segment means "create the next one", a segment
 * missing from the index means "append it".
 */
#ifndef CH_WRITER_H
#define CH_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "error.h"

struct ch_pubopts {
	int sync;			/* enum ch_sync */
	int64_t sync_interval_ns;
	uint64_t max_bytes;		/* 0: unlimited */
	int on_full;			/* enum ch_on_full */
	uint64_t max_record_bytes;
	uint64_t segment_bytes;
	int64_t segment_age_ns;
	int want_offsets;		/* keep offsets of flushed records */
	uint32_t format;		/* of new segments (channel.yaml) */
	int atomic;			/* one frame per flush: all or nothing */
};

/* Options from the channel's config (callers then apply overrides). */
void ch_pubopts_from_config(struct ch_pubopts *o, const struct ch_config *c);

struct ch_writer;

int ch_writer_open(struct ch_channel *ch, const struct ch_pubopts *o,
    struct ch_writer **wp, struct ch_error *err);

/* Queue one record (copied).  Fails if it exceeds max_record_bytes; with
 * `atomic`, also if everything queued would (see ch_writer_flush). */
int ch_writer_add(struct ch_writer *w, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err);

/*
 * Queue every record in buf[0..len), each ended by the byte `delim`
 * (bytes after the last delimiter are left), each with the metadata
 * meta[0..meta_len).  Frames them straight from buf, in one pass.
 * *used and *nrec are set to the bytes and records taken; on failure (a
 * record too large, out of memory) *used is the start of the record that
 * failed, and the records before it stay queued.
 */
int ch_writer_add_split(struct ch_writer *w, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, size_t *used, size_t *nrec,
    struct ch_error *err);
/*
 * The same, where the caller keeps buf[0..*used) as it is until the next
 * ch_writer_flush returns: format 3 lines (newline-delimited, without
 * metadata, not atomic) are then written from there, not copied.
 */
int ch_writer_add_split_kept(struct ch_writer *w, const void *buf,
    size_t len, int delim, const void *meta, size_t meta_len, size_t *used,
    size_t *nrec, struct ch_error *err);

/* Bytes queued and not yet flushed. */
size_t ch_writer_pending(const struct ch_writer *w);

/*
 * Append everything queued.  On failure the records that were written stay
 * (ch_writer_offsets lists them) and the rest are dropped from the queue.
 * With `atomic` (format 2 or 3), everything queued is one frame, written
 * with one pwrite(2) into one segment: readers see all of it or, after a
 * crash tore it, none.
 */
int ch_writer_flush(struct ch_writer *w, struct ch_error *err);

/* Offsets of the records written by the last flush (want_offsets). */
const uint64_t *ch_writer_offsets(const struct ch_writer *w, size_t *n);

/* For sync=periodic: ns until data written so far is due for fdatasync
 * (-1: nothing pending), and the sync itself. */
int64_t ch_writer_sync_due(const struct ch_writer *w);
int ch_writer_sync(struct ch_writer *w, struct ch_error *err);

/*
 * Seal the active segment if it holds records and its first record is at
 * least min_age_ns old (chcompact: lets retention reach an idle channel's
 * data).  Sets *sealed.  Also repairs a torn tail, like any writer.
 */
int ch_writer_seal_aged(struct ch_writer *w, int64_t min_age_ns, int *sealed,
    struct ch_error *err);

/* Bytes of torn tail this writer truncated away (for -v reports). */
uint64_t ch_writer_repaired(const struct ch_writer *w);

/* Records this writer has put in the channel, in all its batches (those
 * of a batch that failed part way included); *at_least set when that is
 * a lower bound (reading back what a failed write left did not work). */
uint64_t ch_writer_total(const struct ch_writer *w, int *at_least);

/* Final sync per policy, then free.  Safe with w == NULL. */
int ch_writer_close(struct ch_writer *w, struct ch_error *err);

#endif
