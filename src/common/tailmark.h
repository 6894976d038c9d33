/*
 * tailmark.h - where the last writer left the active segment.
 *
 * A writer that starts must know where the valid records of the active
 * segment end before it appends.  Checking the last record from the end
 * of the file is not proof: a record a crash tore may hold, in its
 * payload, bytes that are valid records themselves (a segment file
 * published with --whole), and the tear can fall right after them.  Only
 * a walk from a known record boundary tells the two apart.  So writers
 * keep, in append.lock (which only they write, under its lock), the
 * boundary they left the active segment at; the next writer walks from
 * there to the end of the file, and from the header only when the mark
 * does not check out.  The mark is a hint, never synced: channel(5),
 * "The tail mark".
 */
#ifndef CH_TAILMARK_H
#define CH_TAILMARK_H

#include <stdint.h>

#include "format.h"
#include "segment.h"

#define CH_TAILMARK_BYTES 64

struct ch_tailmark {
	uint64_t base;		/* the segment: its base offset, */
	uint64_t first_seq;	/* first sequence number, */
	int64_t created;	/* birth time */
	uint32_t format;	/* and format, as its header says */
	uint64_t pos;		/* a record boundary: the file position */
	uint64_t next_seq;	/* the number of the record due there */
};

/* Read the mark from the append.lock file `fd`: 1 (filled *m), 0 if there
 * is none or it does not check out, -1 on an I/O error. */
int ch_tailmark_read(int fd, struct ch_tailmark *m);

/* Write the mark (one write of CH_TAILMARK_BYTES at the start of the
 * file): 0, or -1 with errno. */
int ch_tailmark_write(int fd, const struct ch_tailmark *m);

/* Take the mark back (a repair changed the segment): 0, or -1 with errno. */
int ch_tailmark_clear(int fd);

/*
 * Where the mark in the append.lock file `markfd` says the valid records
 * of segment `segfd` (header h, `size` bytes) end, if it names that
 * segment and checks out (a power failure may have kept the mark and lost
 * the records it counts): 1 with *t filled as ch_segment_ends_at fills it,
 * to walk on from with ch_segment_walk; 0 otherwise.
 */
int ch_tailmark_tail(int markfd, int segfd, const struct ch_seghdr *h,
    uint64_t size, struct ch_tail *t);

#endif
