/* segment.c - segment files: the cursor's buffer, tail detection, creation;
 * what depends on the format is in segment1.c and segment2.c. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "fsutil.h"
#include "segfmt.h"

static const struct ch_segfmt *
fmt_of(uint32_t format)
{
	return format >= 2 ? &ch_segfmt2 : &ch_segfmt1;
}

void
ch_segcur_init(struct ch_segcur *c, int fd, const struct ch_seghdr *h,
    uint64_t pos, uint64_t size)
{
	c->fd = fd;
	c->pos = pos;
	c->size = size;
	c->buf_pos = pos;
	c->buf_len = 0;
	c->hw = ch_crc32c_hw();
	c->format = h->format;
	c->fb.first_seq = h->first_seq;
	c->fb.created = h->created;
	c->fb.packed = h->format >= 3;
	c->entry = 1;
	c->left = 0;
	c->in_damage = 0;
}

void
ch_segcur_seek(struct ch_segcur *c, uint64_t pos)
{
	c->pos = pos;
	c->entry = 1;
	c->left = 0;
	c->in_damage = 0;
}

void
ch_segcur_free(struct ch_segcur *c)
{
	free(c->buf);
	c->buf = NULL;
	c->cap = 0;
	c->buf_len = 0;
}

int
ch_segcur_refresh(struct ch_segcur *c)
{
	struct stat st;

	if (fstat(c->fd, &st) < 0)
		return CH_CUR_IOERR;
	/* Bytes buffered past the cursor may be a torn tail that a writer
	 * has since truncated and written over: never trust them again.
	 * Those of a verified frame being handed out stay: a writer never
	 * cuts a valid frame. */
	uint64_t keep = c->left ? c->fend : c->pos;
	int dropped = 0;
	if (keep >= c->buf_pos && keep < c->buf_pos + c->buf_len) {
		c->buf_len = (size_t)(keep - c->buf_pos);
		dropped = 1;
	}
	if ((uint64_t)st.st_size > c->size) {
		c->size = (uint64_t)st.st_size;
		return 1;
	}
	/* A shrink means a repair truncated a torn tail we never returned. */
	if ((uint64_t)st.st_size < c->size) {
		c->size = (uint64_t)st.st_size;
		if (c->buf_pos + c->buf_len > c->size)
			c->buf_len = c->size > c->buf_pos ?
			    (size_t)(c->size - c->buf_pos) : 0;
	}
	/* What was judged from the dropped bytes (a record running past
	 * the end, say) may no longer hold: a writer can cut a torn tail
	 * and write as much or less over it between two looks. */
	return dropped && c->size > keep ? 2 : 0;
}

int
ch_cur_fill(struct ch_segcur *c, uint64_t need)
{
	if (c->pos + need > c->size)
		return 0;
	if (c->pos >= c->buf_pos && c->pos + need <= c->buf_pos + c->buf_len)
		return 1;
	size_t want = need > CH_CUR_CHUNK ? (size_t)need : CH_CUR_CHUNK;
	int inside = c->pos >= c->buf_pos &&
	    c->pos <= c->buf_pos + c->buf_len;
	/* Read on at the end of the buffer while [pos, pos+want) fits in
	 * it; only when it does not, move the unread part to the front.  A
	 * cursor that streams (the first time it would move a frame) gets a
	 * buffer of CH_CUR_BUF, so that a frame straddling a read is moved
	 * once per megabyte, not once per read; one that reads a little
	 * keeps a small one. */
	size_t cap = c->cap;
	if (inside && c->buf_pos + c->buf_len > c->pos &&
	    c->pos - c->buf_pos + want > cap && cap < CH_CUR_BUF &&
	    c->pos - c->buf_pos + want <= CH_CUR_BUF)
		cap = CH_CUR_BUF;
	else if (!inside || c->pos - c->buf_pos + want > cap) {
		size_t keep = inside ?
		    (size_t)(c->buf_pos + c->buf_len - c->pos) : 0;
		if (keep)	/* an empty buffer may be NULL */
			memmove(c->buf, c->buf + (c->pos - c->buf_pos), keep);
		c->buf_pos = c->pos;
		c->buf_len = keep;
	}
	if (want > cap - (c->pos - c->buf_pos)) {
		if (!cap)
			cap = CH_CUR_CHUNK;
		while (cap < want)
			cap *= 2;
	}
	if (cap != c->cap) {
		unsigned char *nb = realloc(c->buf, cap + CH_CUR_SLACK);
		if (!nb)
			return CH_CUR_IOERR;
		memset(nb + cap, 0, CH_CUR_SLACK);
		c->buf = nb;
		c->cap = cap;
	}
	uint64_t have = c->buf_pos + c->buf_len;
	uint64_t avail = c->size - have;
	size_t room = c->cap - c->buf_len;
	/* Read what is needed and a chunk more, not the whole buffer: after
	 * one big record the buffer stays big, and a scan would otherwise
	 * read that much at every step. */
	uint64_t lim = c->pos + want + CH_CUR_CHUNK - have;
	if (room > lim)
		room = (size_t)lim;
	if (avail < room)
		room = (size_t)avail;
	ssize_t n = ch_pread_full(c->fd, c->buf + c->buf_len, room, (off_t)have);
	if (n < 0)
		return CH_CUR_IOERR;
	c->buf_len += (size_t)n;
	if ((size_t)n < room)	/* the file shrank under us */
		c->size = c->buf_pos + c->buf_len;
	return c->pos + need <= c->buf_pos + c->buf_len;
}

int
ch_seg_crc_stream(int fd, uint64_t from, uint64_t to, uint32_t *crc)
{
	unsigned char small[65536], *chunk = small, *big = NULL;
	size_t cap = sizeof small;
	int rc = 0;

	/* A megabyte a read, as the cursor reads, when memory allows: a
	 * 200 MiB record in 64 KiB reads is 3200 of them. */
	if (to - from > cap && (big = malloc(CH_CUR_BUF))) {
		chunk = big;
		cap = CH_CUR_BUF;
	}
	while (from < to) {
		size_t n = to - from < cap ? (size_t)(to - from) : cap;
		ssize_t got = ch_pread_full(fd, chunk, n, (off_t)from);
		if (got < 0 || (size_t)got < n) {
			rc = got < 0 ? -1 : 1;
			break;
		}
		*crc = ch_crc32c(*crc, chunk, n);
		from += n;
	}
	free(big);
	return rc;
}

int
ch_cur_trailer_is(const struct ch_segcur *c, uint64_t p, uint64_t len)
{
	unsigned char t[4];

	if (p < CH_SEG_HDR + sizeof t || len > UINT32_MAX)
		return 0;
	ssize_t got = ch_pread_full(c->fd, t, sizeof t, (off_t)(p - sizeof t));
	if (got != (ssize_t)sizeof t)	/* or the file shrank: not there */
		return got < 0 ? CH_CUR_IOERR : 0;
	return ch_get32(t) == len;
}

int
ch_segcur_next_unit(struct ch_segcur *c, struct ch_rec *r)
{
	return fmt_of(c->format)->next(c, r);
}

int
ch_segcur_buffered(const struct ch_segcur *c)
{
	if (c->format >= 2)
		return c->left > 0;
	return c->pos >= c->buf_pos &&
	    c->pos + CH_REC_HDR <= c->buf_pos + c->buf_len;
}

int
ch_segcur_resync(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next, uint64_t *next_seq)
{
	uint64_t ignored;

	return fmt_of(c->format)->resync(c, expect_seq, min_ts, next,
	    next_seq ? next_seq : &ignored);
}

int
ch_segment_header(int fd, uint64_t base, struct ch_seghdr *hdr,
    struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	unsigned char buf[CH_SEG_HDR];
	int tries;

	ch_seg_name(name, base);
	/* A writer that changes the format of an empty segment rewrites its
	 * header in place: a read racing that write can see a mix.  Look
	 * again a few times before calling it corrupt. */
	for (tries = 0;; tries++) {
		ssize_t n = ch_pread_full(fd, buf, sizeof buf, 0);
		if (n < 0)
			return ch_err_sys(err, CH_EXIT_FAIL, "segment %s", name);
		if (n == CH_SEG_HDR && ch_seghdr_decode(buf, hdr) == 0)
			break;
		if (n < CH_SEG_HDR || tries == 3)
			return ch_err(err, CH_EXIT_DATAERR,
			    "segment %s: bad or truncated header", name);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (hdr->base != base)
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment %s: header says base offset %llu", name,
		    (unsigned long long)hdr->base);
	if (hdr->format > CH_FORMAT_MAX)
		return ch_err(err, CH_EXIT_FAIL,
		    "segment %s has format %u, newer than this chtools supports",
		    name, hdr->format);
	if (hdr->format < 1)
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment %s: header says format %u", name, hdr->format);
	return 0;
}

int
ch_segment_open(int dirfd, uint64_t base, int rw, int *fdp,
    struct ch_seghdr *hdr, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	int fd;

	ch_seg_name(name, base);
	fd = ch_open_file(dirfd, name, rw ? O_RDWR : O_RDONLY, 0);
	if (fd < 0 && errno == ENOENT && ch_dir_removed(dirfd))
		return ch_err(err, CH_EXIT_NOINPUT, "channel removed");
	if (fd < 0)
		return ch_err_sys(err, errno == ENOENT ? CH_EXIT_NOINPUT :
		    CH_EXIT_FAIL, "segment %s", name);
	if (ch_segment_header(fd, base, hdr, err) < 0) {
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

int
ch_segment_reformat(int dirfd, uint64_t base, uint32_t format,
    uint64_t first_seq, int64_t created, uint32_t flags, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	unsigned char buf[CH_SEG_HDR];
	struct ch_seghdr h = { format, base, first_seq, created, flags };
	int fd;

	ch_seg_name(name, base);
	ch_seghdr_encode(buf, &h);
	fd = ch_open_file(dirfd, name, O_WRONLY, 0);
	if (fd < 0 || ch_pwrite_full(fd, buf, sizeof buf, 0) < 0 ||
	    ch_fdatasync(fd) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "rewrite segment %s", name);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
ch_segment_create(int dirfd, uint64_t base, uint32_t format,
    uint64_t first_seq, int64_t created, uint32_t flags, int durable,
    mode_t mode, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1], tmp[CH_SEG_NAME_LEN + 8];
	unsigned char buf[CH_SEG_HDR];
	struct ch_seghdr h = { format, base, first_seq, created, flags };
	int fd;

	ch_seg_name(name, base);
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	/* The probe of the explorer's own test (tests/broken): a segment
	 * after one sealed without fdatasync that does not say so. */
	if (ch_broken_order("roll-no-flag"))
		h.flags &= ~CH_SEGF_PRED_UNSYNCED;
	ch_seghdr_encode(buf, &h);
	fd = ch_open_temp(dirfd, tmp, mode);
	if (fd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "create segment %s", name);
	if (ch_write_full(fd, buf, sizeof buf) < 0 ||
	    (durable && ch_fdatasync(fd) < 0)) {
		ch_err_sys(err, CH_EXIT_FAIL, "write segment %s", name);
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (close(fd) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "write segment %s", name);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		if (saved == EEXIST) {
			/* Left by a crash after the rename: keep it if sound;
			 * if its header was lost and it holds nothing else,
			 * no record can be in it: write the header again. */
			struct ch_seghdr old;
			struct stat st;
			if (ch_segment_open(dirfd, base, 0, &fd, &old, err) == 0) {
				int sized = fstat(fd, &st) == 0;
				close(fd);
				if (!sized)
					return ch_err_sys(err, CH_EXIT_FAIL,
					    "segment %s", name);
				/* Holding nothing but a header that is not the
				 * one we make: left by a rollover after a
				 * sealed segment whose tail a power failure
				 * took, and the channel went on other records
				 * since.  Ours replaces it; nothing is lost. */
				if (st.st_size == CH_SEG_HDR &&
				    (old.first_seq != first_seq ||
				    old.format != format || old.flags != h.flags)) {
					if (ch_segment_reformat(dirfd, base,
					    format, first_seq, created, h.flags,
					    err) < 0)
						return -1;
					/* Its name may not be durable yet
					 * either (see below). */
					if (durable && ch_fsync_dir(dirfd) < 0)
						return ch_err_sys(err,
						    CH_EXIT_FAIL, "fsync channel "
						    "directory");
					return 0;
				}
				if (old.first_seq != first_seq)
					return ch_err(err, CH_EXIT_DATAERR,
					    "segment %s exists, starting at "
					    "record %llu, not %llu", name,
					    (unsigned long long)old.first_seq,
					    (unsigned long long)first_seq);
				/* Its name may not be durable yet (the crash
				 * came before the directory's fsync). */
				if (durable && ch_fsync_dir(dirfd) < 0)
					return ch_err_sys(err, CH_EXIT_FAIL,
					    "fsync channel directory");
				return 0;
			}
			if (err->code != CH_EXIT_DATAERR ||
			    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) || st.st_size > CH_SEG_HDR)
				return -1;
			return ch_segment_reformat(dirfd, base, format,
			    first_seq, created, h.flags, err);
		}
		errno = saved;
		return ch_err_sys(err, CH_EXIT_FAIL, "create segment %s", name);
	}
	if (durable && !ch_broken_order("segment-no-dirsync") &&
	    ch_fsync_dir(dirfd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "fsync channel directory");
	return 0;
}

/* Is what starts at the cursor surely no longer than CH_CUR_BUF?  Both
 * formats keep a length at byte 8: a format 1 record its payload's (its
 * metadata and overhead come on top), a frame its own.  Checked inline:
 * a walk meets millions of small ones. */
static inline int
surely_small(const struct ch_segcur *c)
{
	return ch_cur_buffered(c, 12) && ch_get32(ch_cur_at(c) + 8) <=
	    CH_CUR_BUF - CH_MAX_META - CH_REC_OVERHEAD;
}

/* From `start`, a record boundary where t says what is due, on record
 * by record to the first that is not valid: the valid end.  Damage with
 * valid records after it is corruption, not a torn tail: the walk goes on
 * past it (resync never takes records inside a torn one for whole). */
static int
walk(int fd, const struct ch_seghdr *hdr, uint64_t size, uint64_t start,
    struct ch_tail *t, struct ch_error *err)
{
	struct ch_segcur c = { 0 };
	struct ch_rec r;
	int rc;

	ch_segcur_init(&c, fd, hdr, start, size);
	t->torn = 1;
	int resynced = 0;
	for (;;) {
		/* One too big to hold whole is checked by streaming, not read
		 * into the cursor's buffer: a writer after a 200 MiB record
		 * needs no 200 MiB. */
		rc = c.left || surely_small(&c) ? CH_CUR_END :
		    fmt_of(hdr->format)->big(&c, &r);
		if (rc == CH_CUR_OK)
			ch_segcur_seek(&c, r.pos + r.total);
		else if (rc == CH_CUR_END)
			rc = ch_segcur_next(&c, &r);
		if (rc == CH_CUR_IOERR) {
			ch_segcur_free(&c);
			return ch_err_sys(err, CH_EXIT_FAIL, "scan segment");
		}
		if (rc == CH_CUR_OK && r.h.seq != t->next_seq && !resynced) {
			/* Out of sequence (a duplicate): not written there by
			 * a writer, so damage where it stands, as readers and
			 * the check see it. */
			ch_segcur_seek(&c, r.pos);
			rc = CH_CUR_BAD;
		}
		if (rc == CH_CUR_BAD || (rc == CH_CUR_END && c.pos < size)) {
			/* Damage with valid records after it is corruption,
			 * not a torn tail: never cut those records off.  That
			 * includes a record whose length field is damaged to
			 * run past the end (resync tells it from a torn one). */
			uint64_t next;
			int found = ch_segcur_resync(&c, t->next_seq,
			    t->last_ts, &next, NULL);
			if (found < 0) {
				ch_segcur_free(&c);
				return ch_err_sys(err, CH_EXIT_FAIL,
				    "scan segment");
			}
			if (!found)
				break;
			ch_segcur_seek(&c, next);
			resynced = 1;	/* its sequence was judged plausible */
			continue;
		}
		if (rc != CH_CUR_OK)
			break;
		resynced = 0;
		if (r.h.type == CH_REC_SEAL) {
			t->sealed = 1;
			ch_seal_decode(r.payload, &t->seal);
			t->end = r.pos;
			t->file_end = r.pos + r.total;
			t->next_seq = r.h.seq;
			t->last_ts = t->seal.last_ts;
			break;
		}
		t->end = t->file_end = c.pos;
		t->next_seq = r.h.seq + r.nseq;
		t->last_ts = r.h.ts;
	}
	ch_segcur_free(&c);
	if (t->file_end == size)
		t->torn = 0;
	return 0;
}


/* What is due at the header: nothing valid yet. */
static void
tail_at_header(const struct ch_seghdr *hdr, struct ch_tail *t)
{
	memset(t, 0, sizeof *t);
	t->end = t->file_end = CH_SEG_HDR;
	t->next_seq = hdr->first_seq;
	t->last_ts = hdr->created;	/* times never go below a segment's birth */
}

int
ch_segment_tail(int fd, const struct ch_seghdr *hdr, uint64_t size,
    struct ch_tail *t, struct ch_error *err)
{
	int rc;

	tail_at_header(hdr, t);
	if (size <= CH_SEG_HDR) {
		t->torn = size < CH_SEG_HDR;
		return 0;
	}
	rc = fmt_of(hdr->format)->tail(fd, hdr, size, t);
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment tail");
	if (rc == 1)
		return 0;
	/* Torn: scan forward from the header. */
	tail_at_header(hdr, t);
	return walk(fd, hdr, size, CH_SEG_HDR, t, err);
}

int
ch_segment_ends_at(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    struct ch_tail *t)
{
	tail_at_header(hdr, t);
	if (pos <= CH_SEG_HDR)
		return pos == CH_SEG_HDR;
	int rc = fmt_of(hdr->format)->tail(fd, hdr, pos, t);
	return rc == 1 && t->file_end == pos ? 1 : rc < 0 ? -1 : 0;
}

int
ch_segment_walk(int fd, const struct ch_seghdr *hdr, uint64_t size,
    struct ch_tail *t, struct ch_error *err)
{
	if (t->file_end == 0)
		tail_at_header(hdr, t);
	if (t->sealed || t->file_end >= size) {
		t->torn = t->file_end < size;
		return 0;
	}
	return walk(fd, hdr, size, t->file_end, t, err);
}

int
ch_segment_seq_before(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    uint64_t *seq)
{
	return fmt_of(hdr->format)->seq_before(fd, hdr, pos, seq);
}

int
ch_segment_out_of_seq(int fd, const struct ch_seghdr *hdr, uint64_t pos,
    uint64_t seq, uint64_t *due)
{
	uint64_t d = hdr->first_seq;

	if (hdr->format >= 2 && pos > CH_SEG_HDR) {
		unsigned char b;
		if (ch_pread_full(fd, &b, 1, (off_t)pos) != 1)
			return -1;
		if (b != CH_FRAME_SIG0)
			return 0;	/* a record inside a frame */
	}
	if (pos > CH_SEG_HDR) {
		/* What ends there says what is due, read cheaply: the common
		 * case, a record in sequence, costs a header. */
		int rc = fmt_of(hdr->format)->seq_before(fd, hdr, pos, &d);
		if (rc != 0 || d == seq)
			return rc == -1 ? -1 : 0;
		/* A mismatch is believed only from a record that is valid
		 * itself and follows the one before it: after damage (a
		 * record whose number is what is damaged, say), none is. */
		struct ch_tail t;
		memset(&t, 0, sizeof t);
		rc = fmt_of(hdr->format)->tail(fd, hdr, pos, &t);
		if (rc != 1 || t.sealed)
			return rc < 0 ? -1 : 0;
		d = t.next_seq;
	}
	if (d == seq)
		return 0;
	*due = d;
	return 1;
}

int
ch_segment_peek(int fd, const struct ch_seghdr *hdr, uint64_t pos, int *type,
    int64_t *ts)
{
	*type = 0;
	*ts = 0;
	return fmt_of(hdr->format)->peek(fd, hdr, pos, type, ts);
}

int
ch_gap_make(unsigned char *dst, const struct ch_seghdr *hdr, uint64_t len,
    uint64_t seq, int64_t ts, uint64_t count)
{
	if (count == 0 || seq < hdr->first_seq || ts < hdr->created)
		return -1;
	return fmt_of(hdr->format)->gap(dst, hdr, len, seq, ts, count);
}

unsigned char *
ch_seal_make(unsigned char *buf, const struct ch_seghdr *hdr, uint64_t seq,
    int64_t ts, const struct ch_seal *s, uint32_t *lenp)
{
	return fmt_of(hdr->format)->seal(buf, hdr, seq, ts, s, lenp);
}
