/* position.c - earliest, latest, OFFSET, TIME, shift (see position.h). */
#include <config.h>

#include <string.h>

#include "parse.h"
#include "position.h"
#include "reader.h"

int
ch_parse_from(const char *s, int64_t now, struct ch_pos *p,
    struct ch_error *err)
{
	struct ch_error e;

	memset(p, 0, sizeof *p);
	if (strcmp(s, "earliest") == 0) {
		p->kind = CH_POS_EARLIEST;
		return 0;
	}
	if (strcmp(s, "latest") == 0) {
		p->kind = CH_POS_LATEST;
		return 0;
	}
	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
		p->kind = CH_POS_OFFSET;
		return ch_parse_u64(s, &p->offset, err);
	}
	int rc = ch_parse_time(s, now, &p->ts, &e);
	if (rc == 0) {
		p->kind = CH_POS_TIME;
		return 0;
	}
	if (rc == -2) {		/* a time, but one we cannot represent */
		*err = e;
		return -1;
	}
	return ch_err(err, CH_EXIT_USAGE,
	    "invalid position '%s' (expected earliest, latest, an offset, an "
	    "ISO 8601 time, or a duration like 1h meaning that long ago)", s);
}

int
ch_parse_shift(const char *s, struct ch_pos *p, struct ch_error *err)
{
	uint64_t n;
	int neg = s[0] == '-';

	memset(p, 0, sizeof *p);
	p->kind = CH_POS_SHIFT;
	if (ch_parse_u64(s + (s[0] == '-' || s[0] == '+'), &n, err) < 0 ||
	    n > INT64_MAX)
		return ch_err(err, CH_EXIT_USAGE,
		    "invalid shift '%s' (expected [+-]N records)", s);
	p->shift = neg ? -(int64_t)n : (int64_t)n;
	return 0;
}

int
ch_pos_resolve(struct ch_channel *ch, const struct ch_pos *p,
    uint64_t from_seq, uint64_t *offset, uint64_t *seq, int *clamped,
    struct ch_error *err)
{
	struct ch_start st;
	struct ch_end end;
	struct ch_reader *r;

	if (clamped)
		*clamped = 0;
	switch (p->kind) {
	case CH_POS_EARLIEST:
		if (ch_channel_start(ch, &st, err) < 0)
			return -1;
		*offset = st.offset;
		*seq = st.seq;
		return 0;
	case CH_POS_LATEST:
		if (ch_channel_end(ch, &end, err) < 0)
			return -1;
		*offset = end.offset;
		*seq = end.seq;
		return 0;
	case CH_POS_TIME:
		return ch_seek_time(ch, p->ts, offset, seq, err);
	case CH_POS_OFFSET:
		if (ch_reader_open(ch, p->offset, 1, &r, err) < 0) {
			if (err->code == CH_EXIT_DATAERR ||
			    err->code == CH_EXIT_NOINPUT)
				err->code = CH_EXIT_USAGE;
			return -1;
		}
		*offset = p->offset;
		*seq = ch_reader_seq(r);
		ch_reader_close(r);
		return 0;
	case CH_POS_SHIFT: {
		uint64_t target;
		if (ch_channel_start(ch, &st, err) < 0 ||
		    ch_channel_end(ch, &end, err) < 0)
			return -1;
		/* Saturating, never wrapping: from_seq may be below the
		 * earliest record (retention removed what it had not read). */
		uint64_t mag = p->shift < 0 ? (uint64_t)0 - (uint64_t)p->shift :
		    (uint64_t)p->shift;
		int how = 0;
		if (from_seq < st.seq && (p->shift < 0 ||
		    mag < st.seq - from_seq)) {
			how = -2;
			target = st.seq;
		} else if (p->shift < 0 && mag > from_seq - st.seq) {
			how = -1;
			target = st.seq;
		} else if (p->shift < 0) {
			target = from_seq - mag;
		} else if (from_seq > end.seq || mag > end.seq - from_seq) {
			how = 1;
			target = end.seq;
		} else {
			target = from_seq + mag;
		}
		if (clamped)
			*clamped = how;
		*seq = target;
		if (target == end.seq) {
			*offset = end.offset;
			return 0;
		}
		if (target == st.seq) {
			*offset = st.offset;
			return 0;
		}
		return ch_seek_seq(ch, target, p->offset, from_seq, offset,
		    err);
	}
	}
	return ch_err(err, CH_EXIT_SOFTWARE, "bad position kind");
}
