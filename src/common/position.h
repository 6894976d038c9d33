/*
 * position.h - naming a place in a channel: earliest, latest, an offset, a
 * time, or a shift by N records from somewhere.  Shared by chsub --from and
 * choffset.
 */
#ifndef CH_POSITION_H
#define CH_POSITION_H

#include <stdint.h>

#include "channel.h"
#include "error.h"

enum { CH_POS_EARLIEST, CH_POS_LATEST, CH_POS_OFFSET, CH_POS_TIME,
    CH_POS_SHIFT };

struct ch_pos {
	int kind;
	uint64_t offset;	/* CH_POS_OFFSET; CH_POS_SHIFT: the boundary
				 * where `from_seq` is due */
	int64_t ts;		/* CH_POS_TIME */
	int64_t shift;		/* CH_POS_SHIFT: records, from `from_seq` */
};

/* earliest | latest | OFFSET (digits) | TIME (see parse.h) */
int ch_parse_from(const char *s, int64_t now, struct ch_pos *p,
    struct ch_error *err);
/* [+-]N */
int ch_parse_shift(const char *s, struct ch_pos *p, struct ch_error *err);

/*
 * Resolve to an offset and its sequence number on the channel as it is
 * now.  An OFFSET must be a record boundary between the start and the end
 * (proven by walking its segment); CH_EXIT_USAGE otherwise.  A SHIFT counts
 * records from `from_seq` (due at p->offset) and is clamped to [earliest,
 * end]; *clamped is then -1 or +1, or -2 when from_seq was below the
 * earliest record and the shift did not reach it (else 0).  A SHIFT or a
 * TIME fails with CH_EXIT_DATAERR when corrupt data may hide its answer
 * (ch_seek_seq, ch_seek_time).
 */
int ch_pos_resolve(struct ch_channel *ch, const struct ch_pos *p,
    uint64_t from_seq, uint64_t *offset, uint64_t *seq, int *clamped,
    struct ch_error *err);

#endif
