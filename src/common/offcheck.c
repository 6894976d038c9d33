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

/* A record whose header reads as one at file position pos, its trailer
 * agreeing: 1 and its header, 0 if there is none, -1 on error. */
static int
record_at(int fd, uint64_t pos, uint64_t size, struct ch_rechdr *h)
{
	unsigned char b[CH_REC_HDR];
	ssize_t n;

	if (pos + CH_REC_HDR > size)
		return 0;
	n = ch_pread_full(fd, b, sizeof b, (off_t)pos);
	if (n < 0)
		return -1;
	if (n != sizeof b || ch_rec_decode(b, h) < 0)
		return 0;
	uint64_t total = ch_rec_size(h->meta_len, h->len);
	if (pos + total > size)
		return 0;
	n = ch_pread_full(fd, b, CH_REC_TRAILER, (off_t)(pos + total -
	    CH_REC_TRAILER));
	if (n < 0)
		return -1;
	return n == CH_REC_TRAILER && ch_get32(b) == total;
}

/* The sequence number due at file position pos of a segment: that of the
 * record starting there, or the one after the record ending there. */
static int
seq_at(int fd, const struct ch_seghdr *hdr, uint64_t pos, uint64_t size,
    uint64_t *seq)
{
	struct ch_rechdr h;
	unsigned char t[CH_REC_TRAILER];
	int rc;

	if ((rc = record_at(fd, pos, size, &h)) != 0) {
		*seq = h.seq;
		return rc < 0 ? -1 : 1;
	}
	if (pos == CH_SEG_HDR) {
		*seq = hdr->first_seq;
		return 1;
	}
	if (pos < CH_SEG_HDR + CH_REC_OVERHEAD)
		return 0;
	if (ch_pread_full(fd, t, sizeof t, (off_t)(pos - sizeof t)) !=
	    sizeof t)
		return -1;
	uint64_t total = ch_get32(t);
	if (total < CH_REC_OVERHEAD || total > pos - CH_SEG_HDR)
		return 0;
	if ((rc = record_at(fd, pos - total, size, &h)) <= 0)
		return rc;
	/* A seal is the last record of its segment: nothing follows it. */
	if (h.type == CH_REC_SEAL)
		return 0;
	*seq = h.seq + 1;
	return 1;
}

int
ch_offset_check(struct ch_channel *ch, const struct ch_offset *o,
    const struct ch_start *st, const struct ch_end *end,
    struct ch_error *err)
{
	struct ch_seghdr hdr;
	struct stat sb;
	uint64_t pos, seq;
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
	    seq_at(fd, &hdr, pos, (uint64_t)sb.st_size, &seq);
	close(fd);
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment");
	if (rc == 0)
		return ch_err(err, CH_EXIT_DATAERR, "offset %llu is not on a "
		    "record boundary", (unsigned long long)o->offset);
	return seq == o->seq ? 0 : disagree(err, o, seq);
}
