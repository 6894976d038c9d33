/*
 * segment2.c - format 2 segments: frames of records (segfmt.h, frame.h).
 *
 * The cursor reads a whole frame, verifies its checksum and structure
 * once, then hands its records out one by one from the buffer.  A cursor
 * put at an offset inside a frame finds the frame's start through the
 * record's position field and the header length byte before the body,
 * verifies the frame, and proves the offset is one of its record
 * boundaries by walking the records from the first.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fsutil.h"
#include "segfmt.h"

/* Read the frame at c->pos into the buffer and verify it; *f its header
 * (f->len 0 unless the header decoded).  CH_CUR_END if it is not all
 * there (yet). */
static int
load(struct ch_segcur *c, struct ch_framehdr *f)
{
	int rc;

	f->len = 0;
	/* The header's bytes, as many as the file holds: a read that comes
	 * back short lowers c->size, and the file that shrank (a torn tail
	 * cut, then written over by a shorter frame) may well hold a whole
	 * frame in what is left: ask again for that, not for what the old
	 * size let us expect. */
	size_t want;
	for (;;) {
		if (c->pos >= c->size)
			return CH_CUR_END;
		uint64_t avail = c->size - c->pos, size = c->size;
		want = avail < CH_FRAME_HDR_MAX ? (size_t)avail :
		    CH_FRAME_HDR_MAX;
		if (ch_cur_buffered(c, want))
			break;
		if ((rc = ch_cur_fill(c, want)) > 0)
			break;
		if (rc < 0 || c->size == size)
			return rc;
	}
	rc = ch_frame_decode(ch_cur_at(c), want, &c->fb, f);
	if (rc != 0) {
		f->len = 0;
		return rc > 0 ? CH_CUR_END : CH_CUR_BAD;
	}
	/* A seal right after the header would name this very segment as the
	 * next one: writers never seal an empty segment, so it is damage. */
	if (f->type == CH_REC_SEAL && c->pos == CH_SEG_HDR)
		return CH_CUR_BAD;
	if (f->len > CH_CUR_CHUNK && c->pos + f->len <= c->size) {
		/* A damaged length field must cost 4 bytes of reading, not a
		 * buffer of up to 4 GiB. */
		unsigned char t[CH_FRAME_TRAILER];
		ssize_t got = ch_pread_full(c->fd, t, sizeof t,
		    (off_t)(c->pos + f->len - CH_FRAME_TRAILER));
		if (got != (ssize_t)sizeof t)	/* or the file shrank */
			return got < 0 ? CH_CUR_IOERR : CH_CUR_END;
		if (ch_get32(t) != f->len)
			return CH_CUR_BAD;
	}
	if (!ch_cur_buffered(c, f->len) && (rc = ch_cur_fill(c, f->len)) <= 0)
		return rc;
	if (ch_frame_verify(ch_cur_at(c), f, c->hw) < 0)
		return CH_CUR_BAD;
	return CH_CUR_OK;
}

/* The frame at c->pos is loaded: hand out its first record, or itself
 * (a seal, a gap). */
static int
start_frame(struct ch_segcur *c, const struct ch_framehdr *f,
    struct ch_rec *r)
{
	uint64_t at = c->pos;

	if (f->type != CH_REC_DATA) {
		const unsigned char *p = ch_cur_at(c);
		r->h.type = f->type;
		r->h.flags = 0;
		r->h.crc = f->crc;
		r->h.len = f->len - f->hlen - CH_FRAME_TRAILER;
		r->h.meta_len = 0;
		r->h.seq = f->seq;
		r->h.ts = f->ts;
		r->meta = p + f->hlen;
		r->payload = p + f->hlen;
		r->nseq = f->type == CH_REC_GAP ? f->count : 0;
		r->pos = at;
		r->total = f->len;
		c->pos += f->len;
		return CH_CUR_OK;
	}
	c->fend = at + f->len;
	c->fbody = at + f->hlen;
	c->ftab = c->fbody + f->plen;
	c->fpay = f->plen ? c->fbody : 0;
	c->fseq = f->seq;
	c->fseq0 = f->seq;
	c->fts = f->ts;
	c->left = f->count;
	c->pos = c->ftab;
	return ch_segcur_emit(c, r, at);
}

/* Through its position field, as enter() does first.  CH_CUR_BAD with
 * c->in_damage set if the field leads to a frame that is not valid. */
static int
enter_by_position(struct ch_segcur *c, struct ch_rec *r)
{
	uint64_t target = c->pos, at, body;
	unsigned char b[1 + CH_VARINT_MAX], h;
	struct ch_framehdr f;
	size_t n = sizeof b;
	int rc;

	c->in_damage = 0;
	if (c->size - target < n)
		n = (size_t)(c->size - target);
	if (n < 2 || target < CH_SEG_HDR + CH_FRAME_HDR_MIN + 2)
		return CH_CUR_BAD;
	if (ch_pread_full(c->fd, b, n, (off_t)target) != (ssize_t)n)
		return CH_CUR_IOERR;
	if ((b[0] & ~(CH_FREC_AGE | CH_FREC_META)) ||
	    !ch_uvarint_get(b + 1, b + n, &at) || at < 2 ||
	    at > target - CH_SEG_HDR - CH_FRAME_HDR_MIN)
		return CH_CUR_BAD;
	body = target - at;
	if (ch_pread_full(c->fd, &h, 1, (off_t)(body - 1)) != 1)
		return CH_CUR_IOERR;
	if (h < CH_FRAME_HDR_MIN || h > CH_FRAME_HDR_MAX ||
	    body - h < CH_SEG_HDR)
		return CH_CUR_BAD;
	c->pos = body - h;
	c->entry = 0;
	rc = load(c, &f);
	if (rc == CH_CUR_OK && f.type == CH_REC_DATA && f.hlen == h) {
		const unsigned char *fr = ch_cur_at(c), *p = fr + f.hlen + f.plen;
		const unsigned char *lim = fr + f.len - CH_FRAME_TRAILER;
		struct ch_frec rec;
		uint64_t k, pay = 0;
		for (k = 0; k < f.count; k++) {
			uint64_t here = c->pos + (uint64_t)(p - fr);
			if (k > 0 && here >= target)
				break;
			if (ch_frec_decode_any(p, lim, k == 0, f.plen != 0,
			    &rec) < 0)
				break;
			pay += rec.len + 1;
			p = rec.end;
		}
		if (k > 0 && k < f.count &&
		    c->pos + (uint64_t)(p - fr) == target) {
			c->fend = c->pos + f.len;
			c->fbody = c->pos + f.hlen;
			c->ftab = c->fbody + f.plen;
			c->fpay = f.plen ? c->fbody + pay : 0;
			c->fseq = f.seq + k;
			c->fseq0 = f.seq;
			c->fts = f.ts;
			c->left = f.count - k;
			c->pos = target;
			return ch_segcur_emit(c, r, target);
		}
	}
	/* A frame that says it holds target but is not valid: target may be
	 * one of its records, but that cannot be known. */
	c->in_damage = rc == CH_CUR_BAD && f.len && f.hlen == h &&
	    c->pos + f.len > target;
	c->dmg_seq = f.seq;
	c->dmg_count = f.count;
	c->pos = target;
	c->entry = 1;
	return rc == CH_CUR_IOERR ? rc : CH_CUR_BAD;
}

static int enter_from_after(struct ch_segcur *c, uint64_t target);

/* c->pos is a record offset inside a frame (it holds no signature): find
 * the frame, verify it, and prove pos is one of its record boundaries. */
static int
enter(struct ch_segcur *c, struct ch_rec *r)
{
	uint64_t target = c->pos;
	int rc = enter_by_position(c, r);

	if (rc != CH_CUR_BAD || c->in_damage)
		return rc;
	/* The position field may be the damaged byte. */
	rc = enter_from_after(c, target);
	c->pos = target;
	c->entry = 1;
	c->left = 0;
	return rc;
}

static int
next2(struct ch_segcur *c, struct ch_rec *r)
{
	struct ch_framehdr f;
	int rc;

	if (c->left)
		return ch_segcur_emit(c, r, c->pos);
	if (c->entry && c->pos > CH_SEG_HDR && c->pos < c->size) {
		unsigned char b;
		if (ch_cur_buffered(c, 1))
			b = *ch_cur_at(c);
		else if (ch_pread_full(c->fd, &b, 1, (off_t)c->pos) != 1)
			return CH_CUR_IOERR;
		if (b != CH_FRAME_SIG0)
			return enter(c, r);
	}
	c->entry = 0;
	if ((rc = load(c, &f)) != CH_CUR_OK)
		return rc;
	return start_frame(c, &f, r);
}

/*
 * Could a frame with header f stand `skipped` bytes after the place where
 * record expect_seq was due?  Each lost record took at least two bytes and
 * times never decrease, so this turns down frames that merely sit inside a
 * damaged frame's payloads.  The frame due itself may follow bytes that
 * stood for no record (a duplicate).
 */
static int
plausible(uint64_t seq, int64_t ts, uint64_t skipped, uint64_t expect_seq,
    int64_t min_ts)
{
	if (expect_seq == CH_SEQ_ANY)
		return 1;
	return ts >= min_ts && seq >= expect_seq &&
	    seq - expect_seq <= skipped / 2;
}

static int big2(struct ch_segcur *c, struct ch_rec *r);

/*
 * Is there a valid frame at p that can follow the damage at `from`?  With
 * `overrun`, the frame at `from` has a header that decodes, holds `count`
 * records and claims to run past the end of the file: torn, being
 * written, or its length field is damaged.  Only in the last case does a
 * frame follow it, and only where its own trailer says it ends, numbered
 * right after its records: frames that merely sit in its payload (a
 * segment file published as a record) never are.
 */
static int
valid_at(struct ch_segcur *c, uint64_t p, uint64_t from, uint64_t expect_seq,
    int64_t min_ts, int overrun, uint64_t count, uint64_t *seq)
{
	struct ch_framehdr f;
	struct ch_rec r;
	int rc;

	if (overrun && (rc = ch_cur_trailer_is(c, p, p - from)) != 1)
		return rc < 0 ? -1 : 0;
	c->pos = p;
	/* A big one is checked as the walk checks it, never held whole. */
	if ((rc = big2(c, &r)) == CH_CUR_END) {
		rc = load(c, &f);
		r.h.seq = f.seq;
		r.h.ts = f.ts;
	}
	if (rc == CH_CUR_IOERR)
		return -1;	/* not "not valid": a walk would cut there */
	if (rc != CH_CUR_OK)
		return 0;
	if (overrun ? expect_seq != CH_SEQ_ANY && (r.h.ts < min_ts ||
	    r.h.seq < expect_seq || r.h.seq - expect_seq != count) :
	    !plausible(r.h.seq, r.h.ts, p - from, expect_seq, min_ts))
		return 0;
	*seq = r.h.seq;
	return 1;
}

static int
resync2(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next, uint64_t *next_seq)
{
	uint64_t save = c->pos, count = 0;
	int entry = c->entry, found = 0, overrun = 0;
	unsigned char sig[4];
	struct ch_framehdr f;

	c->left = 0;
	c->entry = 0;
	/* A damaged frame whose header is intact says where the next one
	 * starts: prefer that to a byte scan through its records.  If that
	 * is past the end of the file, see valid_at. */
	if (save < c->size) {
		uint64_t avail = c->size - save;
		size_t want = avail < CH_FRAME_HDR_MAX ? (size_t)avail :
		    CH_FRAME_HDR_MAX;
		if (ch_cur_fill(c, want) > 0 &&
		    ch_frame_decode(ch_cur_at(c), want, &c->fb, &f) == 0) {
			uint64_t q = save + f.len;
			if (q > c->size) {
				overrun = 1;
				count = f.count;
			} else if (q + CH_FRAME_MIN <= c->size &&
			    (found = valid_at(c, q, save, expect_seq, min_ts,
			    0, 0, next_seq)) != 0) {
				*next = q;
				if (found < 0)
					found = CH_CUR_IOERR;
				goto out;
			}
		}
	}
	ch_put32(sig, CH_FRAME_SIG);
	for (uint64_t p = save + 1; p + CH_FRAME_MIN <= c->size; ) {
		c->pos = p;
		int rc = ch_cur_fill(c, 4);
		if (rc < 0) {
			found = rc;
			goto out;
		}
		if (rc == 0)
			break;
		const unsigned char *b = ch_cur_at(c);
		size_t avail = (size_t)(c->buf_pos + c->buf_len - p);
		const unsigned char *m = memmem(b, avail, sig, 4);
		if (!m) {
			p += avail > 3 ? avail - 3 : 1;
			continue;
		}
		p += (uint64_t)(m - b);
		if ((found = valid_at(c, p, save, expect_seq, min_ts, overrun,
		    count, next_seq)) != 0) {
			*next = p;
			if (found < 0)
				found = CH_CUR_IOERR;
			goto out;
		}
		p++;
	}
out:
	c->pos = save;
	c->entry = entry;
	c->left = 0;
	return found;
}

/* Read and decode the header of the frame at F, N bytes long. 1 if it is
 * one, 0 if not, -1 on an I/O error; hb gets its bytes. */
static int
read_header(int fd, const struct ch_seghdr *hdr, uint64_t F, uint32_t N,
    struct ch_framehdr *f, unsigned char *hb)
{
	struct ch_framebase fb = { hdr->first_seq, hdr->created,
	    hdr->format >= 3 };
	size_t n = N < CH_FRAME_HDR_MAX ? N : CH_FRAME_HDR_MAX;

	if (ch_pread_full(fd, hb, n, (off_t)F) != (ssize_t)n)
		return -1;
	return ch_frame_decode(hb, n, &fb, f) == 0 && f->len == N;
}

/* The frame that ends at pos: 1 (f filled, its start in *F), 0, -1. */
static int
frame_before(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    struct ch_framehdr *f, uint64_t *F, unsigned char *hb)
{
	unsigned char b[4];

	if (pos < CH_SEG_HDR + CH_FRAME_MIN)
		return 0;
	if (ch_pread_full(fd, b, 4, (off_t)(pos - 4)) != 4)
		return -1;
	uint32_t n = ch_get32(b);
	if (n < CH_FRAME_MIN || n > pos - CH_SEG_HDR)
		return 0;
	*F = pos - n;
	return read_header(fd, hdr, *F, n, f, hb);
}

/*
 * The position field at target led to no frame, and it may be the byte
 * that is damaged: find the frame that holds target from the other side,
 * as the one that ends (by its trailer) where the next valid frame starts,
 * or where the file ends.  If it is a data frame that is not valid and
 * target is in its body, target may be one of its records: CH_CUR_BAD
 * with c->in_damage, as when the field led to it.  A valid frame there
 * would have been found through the field, so target is none of its
 * records: CH_CUR_BAD.
 */
static int
enter_from_after(struct ch_segcur *c, uint64_t target)
{
	struct ch_seghdr hdr = { c->format, 0, c->fb.first_seq, c->fb.created, 0 };
	unsigned char hb[CH_FRAME_HDR_MAX];
	struct ch_framehdr f, v;
	uint64_t ends[2], F, seq;
	int n, rc;

	c->pos = target;
	if ((n = resync2(c, CH_SEQ_ANY, INT64_MIN, &ends[0], &seq)) < 0)
		return n;
	ends[n++] = c->size;
	for (int i = 0; i < n; i++) {
		if ((rc = frame_before(c->fd, &hdr, ends[i], &f, &F, hb)) < 0)
			return CH_CUR_IOERR;
		if (rc == 0 || f.type != CH_REC_DATA || f.count < 2 ||
		    target <= F + f.hlen + f.plen ||
		    target >= ends[i] - CH_FRAME_TRAILER)
			continue;
		c->pos = F;
		c->entry = 0;
		c->left = 0;
		if ((rc = load(c, &v)) == CH_CUR_BAD) {
			c->in_damage = 1;
			c->dmg_seq = f.seq;
			c->dmg_count = f.count;
		}
		return rc == CH_CUR_IOERR ? rc : CH_CUR_BAD;
	}
	return CH_CUR_BAD;
}

/* Does the frame at F (header f, its bytes in hb) pass its CRC, read
 * in chunks so that a multi-megabyte frame needs no big buffer?  1, 0,
 * -1 on an I/O error. */
static int
crc_streamed(int fd, uint64_t F, const struct ch_framehdr *f,
    const unsigned char *hb)
{
	uint32_t crc = 0;
	int rc = ch_seg_crc_stream(fd, F + f->hlen, F + f->len, &crc);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	return ch_crc32c(crc, hb + 8, f->hlen - 8) == f->crc;
}

/*
 * The body of the data frame at F holds its one record exactly, as
 * ch_frame_verify() checks, read without its payload: the sub-header
 * (format 3: the table entry) and metadata, and format 3's 0x0A after the
 * payload.  1, 0, -1 on an I/O error.  (A writer gives a record too big
 * for a frame of many a frame of its own: the big frames hold one.)
 */
static int
one_record(int fd, uint64_t F, const struct ch_framehdr *f)
{
	uint64_t body = F + f->hlen, lim = F + f->len - CH_FRAME_TRAILER;
	uint64_t at = body + f->plen;	/* the sub-header or the table */
	/* Attributes, then length, age and metadata length, each a varint
	 * of up to CH_VARINT_MAX bytes (readers take padded ones too). */
	size_t most = 1 + 3 * CH_VARINT_MAX + CH_MAX_META;
	size_t n = lim - at < most ? (size_t)(lim - at) : most;
	unsigned char *b = malloc(n ? n : 1), nl = 0;
	struct ch_frec r;
	int64_t t;
	int ok;

	if (!b)
		return -1;
	if (ch_pread_full(fd, b, n, (off_t)at) != (ssize_t)n) {
		free(b);
		return -1;
	}
	/* Decoded as a table entry: its end is that of the metadata. */
	ok = ch_frec_decode_any(b, b + n, 1, 1, &r) == 0 &&
	    (!r.age || ch_frec_time(f->ts, r.age, &t) == 0);
	if (ok && f->plen)
		ok = r.end == b + n && at + n == lim && r.len + 1 == f->plen;
	else if (ok)
		ok = (uint64_t)(r.end - b) + r.len == lim - body;
	free(b);
	if (ok && f->plen) {
		if (ch_pread_full(fd, &nl, 1, (off_t)(body + r.len)) != 1)
			return -1;
		ok = nl == 0x0A;
	}
	return ok;
}

static int
big2(struct ch_segcur *c, struct ch_rec *r)
{
	struct ch_framehdr f;
	int rc;

	if (c->pos >= c->size)
		return CH_CUR_END;
	size_t n = c->size - c->pos < CH_FRAME_HDR_MAX ?
	    (size_t)(c->size - c->pos) : CH_FRAME_HDR_MAX;
	if (!ch_cur_buffered(c, n) && (rc = ch_cur_fill(c, n)) <= 0)
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_END;
	/* The length alone first: a walk meets millions of small ones. */
	const unsigned char *hb = ch_cur_at(c);
	if (n < 12 || ch_get32(hb + 8) <= CH_CUR_BUF ||
	    ch_frame_decode(hb, n, &c->fb, &f) != 0 ||
	    f.len > c->size - c->pos || f.type == CH_REC_SEAL ||
	    (f.type == CH_REC_DATA && f.count != 1))
		return CH_CUR_END;
	/* The trailer first: a damaged length must not cost a read of
	 * gigabytes. */
	if ((rc = ch_cur_trailer_is(c, c->pos + f.len, f.len)) != 1)
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_BAD;
	if ((rc = crc_streamed(c->fd, c->pos, &f, hb)) != 1 ||
	    (f.type == CH_REC_DATA && (rc = one_record(c->fd, c->pos, &f)) != 1))
		return rc < 0 ? CH_CUR_IOERR : CH_CUR_BAD;
	r->h.type = f.type;
	r->h.flags = 0;
	r->h.crc = f.crc;
	r->h.len = f.len - f.hlen - CH_FRAME_TRAILER;
	r->h.meta_len = 0;
	r->h.seq = f.seq;
	r->h.ts = f.ts;
	r->meta = r->payload = NULL;
	r->nseq = f.count;	/* data: its records; gap: the numbers lost */
	r->pos = c->pos;
	r->total = f.len;
	return CH_CUR_OK;
}

static int
tail2(int fd, const struct ch_seghdr *hdr, uint64_t size, struct ch_tail *t)
{
	unsigned char hb[CH_FRAME_HDR_MAX];
	struct ch_framehdr f, pf;
	uint64_t F, PF;
	int rc = frame_before(fd, hdr, size, &f, &F, hb);

	if (rc != 1)
		return rc;
	if (f.type == CH_REC_SEAL && F == CH_SEG_HDR)
		return 0;	/* an empty segment is never sealed */
	if ((rc = crc_streamed(fd, F, &f, hb)) != 1)
		return rc;
	/* Trusted only if it follows its predecessor in sequence: a copy of
	 * the last frame appended again is valid on its own, and appending
	 * after it would plant it mid-segment. */
	if (F == CH_SEG_HDR) {
		if (f.seq != hdr->first_seq)
			return 0;
	} else {
		unsigned char pb[CH_FRAME_HDR_MAX];
		if ((rc = frame_before(fd, hdr, F, &pf, &PF, pb)) != 1)
			return rc;
		if (pf.type == CH_REC_SEAL || pf.seq + pf.count != f.seq)
			return 0;
	}
	t->file_end = size;
	if (f.type == CH_REC_SEAL) {
		unsigned char p[CH_SEAL_PAYLOAD];
		if (ch_pread_full(fd, p, sizeof p, (off_t)(F + f.hlen)) !=
		    sizeof p)
			return -1;
		t->sealed = 1;
		ch_seal_decode(p, &t->seal);
		t->end = F;
		t->next_seq = f.seq;
		t->last_ts = t->seal.last_ts;
	} else {
		t->end = size;
		t->next_seq = f.seq + f.count;
		t->last_ts = f.ts;
	}
	return 1;
}

static int
seq_before2(int fd, const struct ch_seghdr *hdr, uint64_t pos, uint64_t *seq)
{
	unsigned char hb[CH_FRAME_HDR_MAX];
	struct ch_framehdr f;
	uint64_t F;
	int rc = frame_before(fd, hdr, pos, &f, &F, hb);

	if (rc != 1)
		return rc < 0 ? -1 : -2;
	*seq = f.seq + f.count;
	return 0;
}

/* The age field of the record sub-header at p (record 0 if first), not
 * looking past end: 0, or -1 if it does not decode. */
static int
sub_age(const unsigned char *p, const unsigned char *end, int first,
    uint64_t *at, uint64_t *age)
{
	uint64_t len;
	size_t m;

	*at = 0;
	*age = 0;
	if (p >= end || (p[0] & ~(CH_FREC_AGE | CH_FREC_META)))
		return -1;
	unsigned attr = *p++;
	if (!first) {
		if (!(m = ch_uvarint_get(p, end, at)))
			return -1;
		p += m;
	}
	if (!(m = ch_uvarint_get(p, end, &len)))
		return -1;
	p += m;
	if ((attr & CH_FREC_AGE) && !ch_uvarint_get(p, end, age))
		return -1;
	return 0;
}

static int
peek2(int fd, const struct ch_seghdr *hdr, uint64_t pos, int *type,
    int64_t *ts)
{
	struct ch_framebase fb = { hdr->first_seq, hdr->created,
	    hdr->format >= 3 };
	unsigned char b[CH_FRAME_HDR_MAX + CH_FREC_HDR_MAX];
	struct ch_framehdr f;
	uint64_t at, age;
	ssize_t n = ch_pread_full(fd, b, sizeof b, (off_t)pos);

	if (n < 0)
		return -1;
	if (n > 0 && b[0] != CH_FRAME_SIG0) {
		/* Inside a frame: the record's age, then the frame's time. */
		unsigned char h;
		if (pos < CH_SEG_HDR + CH_FRAME_HDR_MIN + 2 ||
		    sub_age(b, b + n, 0, &at, &age) < 0 || at < 2 ||
		    at > pos - CH_SEG_HDR - CH_FRAME_HDR_MIN)
			return 0;
		if (ch_pread_full(fd, &h, 1, (off_t)(pos - at - 1)) != 1)
			return -1;
		if (h < CH_FRAME_HDR_MIN || h > pos - at - CH_SEG_HDR)
			return 0;
		pos -= at + h;
		n = ch_pread_full(fd, b, sizeof b, (off_t)pos);
		if (n < 0)
			return -1;
		if (ch_frame_decode(b, (size_t)n, &fb, &f) != 0 ||
		    f.type != CH_REC_DATA || f.hlen != h)
			return 0;
	} else {
		if (ch_frame_decode(b, (size_t)n, &fb, &f) != 0)
			return 0;
		if (f.type == CH_REC_DATA && f.plen) {
			/* Format 3: record 0's entry starts the table. */
			n = ch_pread_full(fd, b, CH_FREC_HDR_MAX,
			    (off_t)(pos + f.hlen + f.plen));
			if (n < 0)
				return -1;
			if (sub_age(b, b + n, 1, &at, &age) < 0)
				return 0;
		} else if (f.type == CH_REC_DATA &&
		    sub_age(b + f.hlen, b + n, 1, &at, &age) < 0) {
			return 0;
		}
		if (f.type != CH_REC_DATA)
			age = 0;
	}
	*type = f.type;
	*ts = f.ts;
	if (age && ch_frec_time(f.ts, age, ts) < 0)
		*ts = f.ts;
	return 0;
}

static unsigned char *
seal2(unsigned char *buf, const struct ch_seghdr *hdr, uint64_t seq,
    int64_t ts, const struct ch_seal *s, uint32_t *lenp)
{
	struct ch_framebase fb = { hdr->first_seq, hdr->created,
	    hdr->format >= 3 };
	unsigned char payload[CH_SEAL_PAYLOAD];

	ch_seal_encode(payload, s);
	if (ts < hdr->created)
		ts = hdr->created;	/* frame times count from the birth */
	return ch_frame_build(buf, CH_REC_SEAL, 0, seq, ts, &fb, payload,
	    sizeof payload, lenp);
}

/* A gap frame: its header, then zeros up to exactly len bytes. */
static int
gap2(unsigned char *dst, const struct ch_seghdr *hdr, uint64_t len,
    uint64_t seq, int64_t ts, uint64_t count)
{
	struct ch_framebase b = { hdr->first_seq, hdr->created,
	    hdr->format >= 3 };
	size_t hlen = ch_frame_hlen(&b, count, seq, ts);
	uint32_t n;

	/* Every record lost took at least two bytes (frame.c). */
	if (len < hlen + CH_FRAME_TRAILER || len > CH_FRAME_MAX_LEN ||
	    count > len / 2)
		return -1;
	size_t body_len = (size_t)(len - hlen - CH_FRAME_TRAILER);
	memset(dst + hlen, 0, body_len);
	/* ch_frame_close writes the header just before the body and the
	 * trailer just after it: build in place, the body being in dst. */
	unsigned char *start = ch_frame_close(dst + hlen, body_len,
	    ch_crc32c(0, dst + hlen, body_len), CH_REC_GAP, count, seq, ts,
	    &b, ch_crc32c_hw(), &n);
	return start == dst && n == len ? 0 : -1;
}

const struct ch_segfmt ch_segfmt2 = {
	next2, resync2, tail2, big2, seq_before2, peek2, seal2, gap2,
};
