/* offcheck.c - an offset file against the channel (see offcheck.h). */
#include <config.h>

#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "offcheck.h"
#include "segment.h"

static int
disagree(struct ch_error *err, const struct ch_offset *o, uint64_t seq)
{
	return ch_err(err, CH_EXIT_DATAERR, "offset file says record %llu at "
	    "offset %llu, the channel has record %llu there",
	    (unsigned long long)o->seq, (unsigned long long)o->offset,
	    (unsigned long long)seq);
}

/* The sequence number due at file position pos of a segment: that of the
 * record starting there (the cursor proves an offset inside a format 2
 * frame is one of its boundaries) unless it is out of sequence there, or
 * the one after the record ending there.  1 and *seq, 0 if pos is no
 * boundary, -1 on error; or 2 when it is inside a damaged frame whose
 * header claims it: its records cannot be walked, and reading reports the
 * damage (or skips it), so the offset can only be one of a record after
 * the frame's first, *seq to *seq + *count (exclusive). */
static int
seq_at(int fd, const struct ch_seghdr *hdr, uint64_t pos, uint64_t size,
    uint64_t *seq, uint64_t *count)
{
	struct ch_segcur c = { 0 };
	struct ch_rec r;
	int rc;

	ch_segcur_init(&c, fd, hdr, pos, size);
	rc = ch_segcur_next(&c, &r);
	ch_segcur_free(&c);
	if (rc == CH_CUR_IOERR)
		return -1;
	if (rc == CH_CUR_OK) {
		/* One out of sequence is damage: the number due counts. */
		rc = ch_segment_out_of_seq(fd, hdr, pos, r.h.seq, seq);
		if (rc == 0)
			*seq = r.h.seq;
		return rc < 0 ? -1 : 1;
	}
	if (rc == CH_CUR_BAD && c.in_damage) {
		*seq = c.dmg_seq;
		*count = c.dmg_count;
		return 2;
	}
	if (pos == CH_SEG_HDR) {
		*seq = hdr->first_seq;
		return 1;
	}
	rc = ch_segment_seq_before(fd, hdr, pos, seq);
	return rc == 0 ? 1 : rc == -1 ? -1 : 0;
}

int
ch_offset_check(struct ch_channel *ch, const struct ch_offset *o,
    const struct ch_start *st, const struct ch_end *end,
    struct ch_error *err)
{
	struct ch_seghdr hdr;
	struct stat sb;
	uint64_t pos, seq, count = 0;
	int fd, rc;

	if (o->offset > end->offset)
		return ch_err(err, CH_EXIT_DATAERR, "offset %llu is past the "
		    "end of the channel (%llu)", (unsigned long long)o->offset,
		    (unsigned long long)end->offset);
	if (o->offset == end->offset)
		return o->seq == end->seq ? 0 : disagree(err, o, end->seq);
	if (o->offset < st->offset) {
		/* Behind the earliest record, so behind its number too. */
		if (o->seq < st->seq)
			return 0;
		return ch_err(err, CH_EXIT_DATAERR, "offset file says record "
		    "%llu at offset %llu, below the earliest record (record "
		    "%llu at offset %llu)", (unsigned long long)o->seq,
		    (unsigned long long)o->offset, (unsigned long long)st->seq,
		    (unsigned long long)st->offset);
	}
	if (ch_channel_locate(ch, o->offset, &fd, &hdr, &pos, err) < 0)
		return -1;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "segment");
	}
	rc = pos > (uint64_t)sb.st_size ? 0 :
	    seq_at(fd, &hdr, pos, (uint64_t)sb.st_size, &seq, &count);
	close(fd);
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (rc == 0)
		return ch_err(err, CH_EXIT_DATAERR, "offset %llu is not on a "
		    "record boundary", (unsigned long long)o->offset);
	if (rc == 2) {
		if (o->seq > seq && o->seq - seq < count)
			return 0;
		return ch_err(err, CH_EXIT_DATAERR, "offset file says record "
		    "%llu at offset %llu, inside a damaged frame of records "
		    "%llu to %llu", (unsigned long long)o->seq,
		    (unsigned long long)o->offset, (unsigned long long)seq,
		    (unsigned long long)(seq + count - 1));
	}
	return seq == o->seq ? 0 : disagree(err, o, seq);
}
