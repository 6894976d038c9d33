/* segment.c - segment files: cursor, tail detection, creation. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "fsutil.h"
#include "segment.h"

#define CUR_CHUNK (256u << 10)

void
ch_segcur_init(struct ch_segcur *c, int fd, uint64_t pos, uint64_t size)
{
	c->fd = fd;
	c->pos = pos;
	c->size = size;
	c->buf_pos = pos;
	c->buf_len = 0;
	c->hw = ch_crc32c_hw();
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
	 * has since truncated and written over: never trust them again. */
	if (c->pos >= c->buf_pos && c->pos < c->buf_pos + c->buf_len)
		c->buf_len = (size_t)(c->pos - c->buf_pos);
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
	return 0;
}

/* Make [pos, pos+need) available in the buffer, reading as much as the
 * file allows beyond it.  Returns 1 if available, 0 if the file (as far as
 * c->size) does not hold it, or CH_CUR_IOERR. */
static int
fill(struct ch_segcur *c, uint64_t need)
{
	if (c->pos + need > c->size)
		return 0;
	if (c->pos >= c->buf_pos && c->pos + need <= c->buf_pos + c->buf_len)
		return 1;
	/* Keep the unread part, drop the rest. */
	size_t keep = 0;
	if (c->pos >= c->buf_pos && c->pos < c->buf_pos + c->buf_len) {
		keep = (size_t)(c->buf_pos + c->buf_len - c->pos);
		memmove(c->buf, c->buf + (c->pos - c->buf_pos), keep);
	}
	c->buf_pos = c->pos;
	c->buf_len = keep;
	size_t want = need > CUR_CHUNK ? (size_t)need : CUR_CHUNK;
	if (want > c->cap) {
		size_t cap = c->cap ? c->cap : CUR_CHUNK;
		while (cap < want)
			cap *= 2;
		unsigned char *nb = realloc(c->buf, cap);
		if (!nb)
			return CH_CUR_IOERR;
		c->buf = nb;
		c->cap = cap;
	}
	uint64_t avail = c->size - (c->buf_pos + c->buf_len);
	size_t room = c->cap - c->buf_len;
	/* Read what is needed and a chunk more, not the whole buffer: after
	 * one big record the buffer stays big, and a scan would otherwise
	 * read that much at every step. */
	size_t lim = (want > keep ? want - keep : 0) + CUR_CHUNK;
	if (room > lim)
		room = lim;
	if (avail < room)
		room = (size_t)avail;
	ssize_t n = ch_pread_full(c->fd, c->buf + c->buf_len, room,
	    (off_t)(c->buf_pos + c->buf_len));
	if (n < 0)
		return CH_CUR_IOERR;
	c->buf_len += (size_t)n;
	if ((size_t)n < room)	/* the file shrank under us */
		c->size = c->buf_pos + c->buf_len;
	return c->pos + need <= c->buf_pos + c->buf_len;
}

/* The common case of fill(), checked inline: [pos, pos+need) is already
 * in the buffer (and so within the file size). */
static inline int
buffered(const struct ch_segcur *c, uint64_t need)
{
	return c->pos >= c->buf_pos && c->pos + need <= c->size &&
	    c->pos + need <= c->buf_pos + c->buf_len;
}

int
ch_segcur_next(struct ch_segcur *c, struct ch_rec *r)
{
	int rc;

	if (!buffered(c, CH_REC_HDR) && (rc = fill(c, CH_REC_HDR)) <= 0)
		return rc;
	const unsigned char *p = c->buf + (c->pos - c->buf_pos);
	if (ch_rec_decode(p, &r->h) < 0)
		return CH_CUR_BAD;
	/* A seal right after the header would name this very segment as the
	 * next one (a seal's offset is the next base): readers and writers
	 * following it would go round forever.  Writers never seal an empty
	 * segment (channel(5)), so it is damage. */
	if (r->h.type == CH_REC_SEAL && c->pos == CH_SEG_HDR)
		return CH_CUR_BAD;
	uint64_t total = ch_rec_size(r->h.meta_len, r->h.len);
	if (total > CUR_CHUNK && c->pos + total <= c->size) {
		/* Check the trailer before allocating for a big record: a
		 * damaged length field (up to 4 GiB) must cost 4 bytes of
		 * reading, not a 4 GiB buffer. */
		unsigned char t[CH_REC_TRAILER];
		if (ch_pread_full(c->fd, t, sizeof t,
		    (off_t)(c->pos + total - CH_REC_TRAILER)) != sizeof t)
			return CH_CUR_IOERR;
		if (ch_get32(t) != (uint32_t)total || total > UINT32_MAX)
			return CH_CUR_BAD;
	}
	if (!buffered(c, total) && (rc = fill(c, total)) <= 0)
		return rc;
	p = c->buf + (c->pos - c->buf_pos);
	if (ch_rec_verify_fast(p, total, c->hw) < 0)
		return CH_CUR_BAD;
	uint64_t gap = 0;
	if (r->h.type == CH_REC_GAP && ch_gap_count(p, total, &gap) < 0)
		return CH_CUR_BAD;
	r->seqs = ch_rec_seqs(&r->h, gap);
	r->pos = c->pos;
	r->total = total;
	r->meta = p + CH_REC_HDR;
	r->payload = p + CH_REC_HDR + r->h.meta_len;
	c->pos += total;
	return CH_CUR_OK;
}

/*
 * Could a record with header h stand `skipped` bytes after the place where
 * record expect_seq was due?  Each lost record took at least
 * CH_REC_OVERHEAD bytes and times never decrease, so this turns down
 * records that merely sit inside a damaged record's payload.
 */
static int
plausible(const struct ch_rechdr *h, uint64_t skipped, uint64_t expect_seq,
    int64_t min_ts)
{
	if (expect_seq == CH_SEQ_ANY)
		return 1;
	return h->ts >= min_ts && h->seq > expect_seq &&
	    h->seq - expect_seq <= skipped / CH_REC_OVERHEAD;
}

/* Is there a valid, plausible record at file position p? */
static int
valid_at(struct ch_segcur *c, uint64_t p, uint64_t from, uint64_t expect_seq,
    int64_t min_ts)
{
	struct ch_rec r;

	c->pos = p;
	return ch_segcur_next(c, &r) == CH_CUR_OK &&
	    plausible(&r.h, p - from, expect_seq, min_ts);
}

int
ch_segcur_resync(struct ch_segcur *c, uint64_t expect_seq, int64_t min_ts,
    uint64_t *next)
{
	uint64_t save = c->pos;
	unsigned char magic[4];
	struct ch_rechdr h;

	/* A damaged record whose header is intact says where the next one
	 * starts: prefer that to a byte scan through its payload. */
	if (fill(c, CH_REC_HDR) > 0 &&
	    ch_rec_decode(c->buf + (save - c->buf_pos), &h) == 0) {
		uint64_t q = save + ch_rec_size(h.meta_len, h.len);
		if (q + CH_REC_OVERHEAD <= c->size &&
		    valid_at(c, q, save, expect_seq, min_ts)) {
			*next = q;
			c->pos = save;
			return 1;
		}
	}
	ch_put32(magic, CH_REC_MAGIC);
	for (uint64_t p = save + 1; p + CH_REC_OVERHEAD <= c->size; ) {
		c->pos = p;
		int rc = fill(c, 4);
		if (rc < 0) {
			c->pos = save;
			return rc;
		}
		if (rc == 0)
			break;
		/* Find the next candidate magic within the buffer. */
		const unsigned char *b = c->buf + (p - c->buf_pos);
		size_t avail = (size_t)(c->buf_pos + c->buf_len - p);
		const unsigned char *m = memmem(b, avail, magic, 4);
		if (!m) {
			p += avail > 3 ? avail - 3 : 1;
			continue;
		}
		p += (uint64_t)(m - b);
		if (valid_at(c, p, save, expect_seq, min_ts)) {
			*next = p;
			c->pos = save;
			return 1;
		}
		p++;
	}
	c->pos = save;
	return 0;
}

int
ch_segment_open(int dirfd, uint64_t base, int rw, int *fdp,
    struct ch_seghdr *hdr, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];
	unsigned char buf[CH_SEG_HDR];
	ssize_t n;
	int fd;

	ch_seg_name(name, base);
	fd = ch_open_file(dirfd, name, rw ? O_RDWR : O_RDONLY, 0);
	if (fd < 0)
		return ch_err_sys(err, errno == ENOENT ? CH_EXIT_NOINPUT :
		    CH_EXIT_FAIL, "segment %s", name);
	n = ch_pread_full(fd, buf, sizeof buf, 0);
	if (n < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "segment %s", name);
		close(fd);
		return -1;
	}
	if (n < CH_SEG_HDR || ch_seghdr_decode(buf, hdr) < 0) {
		close(fd);
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment %s: bad or truncated header", name);
	}
	if (hdr->base != base) {
		close(fd);
		return ch_err(err, CH_EXIT_DATAERR,
		    "segment %s: header says base offset %llu", name,
		    (unsigned long long)hdr->base);
	}
	if (hdr->format > 1) {
		close(fd);
		return ch_err(err, CH_EXIT_FAIL,
		    "segment %s has format %u, newer than this chtools supports",
		    name, hdr->format);
	}
	*fdp = fd;
	return 0;
}

int
ch_segment_create(int dirfd, uint64_t base, uint64_t first_seq,
    int64_t created, int durable, mode_t mode, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1], tmp[CH_SEG_NAME_LEN + 8];
	unsigned char buf[CH_SEG_HDR];
	struct ch_seghdr h = { 1, base, first_seq, created };
	int fd;

	ch_seg_name(name, base);
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
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
				close(fd);
				return 0;
			}
			if (err->code != CH_EXIT_DATAERR ||
			    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) || st.st_size > CH_SEG_HDR)
				return -1;
			fd = ch_open_file(dirfd, name, O_WRONLY, 0);
			if (fd < 0 || ch_pwrite_full(fd, buf, sizeof buf, 0) < 0 ||
			    ch_fdatasync(fd) < 0) {
				ch_err_sys(err, CH_EXIT_FAIL, "rewrite segment %s",
				    name);
				if (fd >= 0)
					close(fd);
				return -1;
			}
			close(fd);
			return 0;
		}
		errno = saved;
		return ch_err_sys(err, CH_EXIT_FAIL, "create segment %s", name);
	}
	if (durable && !ch_broken_order("segment-no-dirsync") &&
	    ch_fsync_dir(dirfd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "fsync channel directory");
	return 0;
}

/* Check the record that ends exactly at `size` (the trailer gives its
 * length).  Returns 1 valid (filled h, and *seqs: the sequence numbers it
 * takes), 0 not valid, -1 I/O error. */
static int
tail_record(int fd, uint64_t size, struct ch_rechdr *h, uint64_t *seqs)
{
	unsigned char b[CH_REC_HDR];
	unsigned char chunk[65536];
	unsigned char count[CH_REC_HDR + CH_GAP_COUNT_BYTES];
	uint32_t total, crc;

	if (size < CH_SEG_HDR + CH_REC_OVERHEAD)
		return 0;
	if (ch_pread_full(fd, b, 4, (off_t)(size - 4)) != 4)
		return -1;
	total = ch_get32(b);
	if (total < CH_REC_OVERHEAD || total > size - CH_SEG_HDR)
		return 0;
	uint64_t start = size - total;
	if (ch_pread_full(fd, b, CH_REC_HDR, (off_t)start) != CH_REC_HDR)
		return -1;
	if (ch_rec_decode(b, h) < 0 || ch_rec_size(h->meta_len, h->len) != total)
		return 0;
	if (h->type == CH_REC_SEAL && start == CH_SEG_HDR)
		return 0;	/* an empty segment is never sealed: see above */
	/* Stream the CRC so a multi-megabyte record needs no big buffer. */
	crc = 0;
	for (uint64_t p = start + CH_REC_HDR; p < size; ) {
		size_t n = size - p < sizeof chunk ? (size_t)(size - p) : sizeof chunk;
		if (ch_pread_full(fd, chunk, n, (off_t)p) != (ssize_t)n)
			return -1;
		crc = ch_crc32c(crc, chunk, n);
		p += n;
	}
	crc = ch_crc32c(crc, b + 8, CH_REC_HDR - 8);
	if (crc != h->crc)
		return 0;
	uint64_t gap = 0;
	if (h->type == CH_REC_GAP) {
		/* The count is in the first bytes of the payload. */
		size_t n = total - CH_REC_OVERHEAD < CH_GAP_COUNT_BYTES ?
		    total - CH_REC_OVERHEAD : CH_GAP_COUNT_BYTES;
		memset(count, 0, sizeof count);
		if (ch_pread_full(fd, count + CH_REC_HDR, n,
		    (off_t)(start + CH_REC_HDR)) != (ssize_t)n)
			return -1;
		if (ch_gap_count(count, total, &gap) < 0)
			return 0;
	}
	*seqs = ch_rec_seqs(h, gap);
	return 1;
}

int
ch_segment_tail(int fd, const struct ch_seghdr *hdr, uint64_t size,
    uint64_t hint, uint64_t hint_seq, struct ch_tail *t, struct ch_error *err)
{
	struct ch_rechdr h;
	struct ch_segcur c = { 0 };
	struct ch_rec r;
	int rc;

	memset(t, 0, sizeof *t);
	t->end = t->file_end = CH_SEG_HDR;
	t->next_seq = hdr->first_seq;
	t->last_ts = hdr->created;	/* times never go below a segment's birth */
	if (size <= CH_SEG_HDR) {
		t->torn = size < CH_SEG_HDR;
		return 0;
	}
	uint64_t seqs = 0, pseqs = 0;
	rc = tail_record(fd, size, &h, &seqs);
	if (rc == 1) {
		/* A valid record is trusted at the tail only if it follows
		 * its predecessor in sequence: a copy of the last record
		 * appended again (a duplicated block) is valid on its own,
		 * and appending after it would plant it mid-segment. */
		uint64_t start = size - ch_rec_size(h.meta_len, h.len);
		struct ch_rechdr ph;
		if (start == CH_SEG_HDR)
			rc = h.seq == hdr->first_seq;
		else if ((rc = tail_record(fd, start, &ph, &pseqs)) == 1)
			rc = ph.type != CH_REC_SEAL && ph.seq + pseqs == h.seq;
	}
	if (rc < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "read segment tail");
	if (rc == 1) {
		uint64_t total = ch_rec_size(h.meta_len, h.len);
		t->file_end = size;
		if (h.type == CH_REC_SEAL) {
			unsigned char p[CH_SEAL_PAYLOAD];
			if (ch_pread_full(fd, p, sizeof p,
			    (off_t)(size - total + CH_REC_HDR)) != sizeof p)
				return ch_err_sys(err, CH_EXIT_FAIL, "read seal");
			t->sealed = 1;
			ch_seal_decode(p, &t->seal);
			t->end = size - total;
			t->next_seq = h.seq;
			t->last_ts = t->seal.last_ts;
		} else {
			t->end = size;
			t->next_seq = h.seq + seqs;
			t->last_ts = h.ts;
		}
		return 0;
	}

	/* Torn: scan forward from a trusted boundary. */
	uint64_t start = CH_SEG_HDR;
	if (hint > CH_SEG_HDR && hint < size) {
		ch_segcur_init(&c, fd, hint, size);
		if (ch_segcur_next(&c, &r) == CH_CUR_OK && r.h.seq == hint_seq &&
		    r.h.type != CH_REC_SEAL) {
			start = hint;
		}
	}
	ch_segcur_init(&c, fd, start, size);
	t->torn = 1;
	int resynced = 0;
	for (;;) {
		rc = ch_segcur_next(&c, &r);
		if (rc == CH_CUR_IOERR) {
			ch_segcur_free(&c);
			return ch_err_sys(err, CH_EXIT_FAIL, "scan segment");
		}
		if (rc == CH_CUR_BAD) {
			/* Damage with valid records after it is corruption,
			 * not a torn tail: never cut those records off. */
			uint64_t next;
			int found = ch_segcur_resync(&c, t->next_seq,
			    t->last_ts, &next);
			if (found < 0) {
				ch_segcur_free(&c);
				return ch_err_sys(err, CH_EXIT_FAIL,
				    "scan segment");
			}
			if (!found)
				break;
			c.pos = next;
			resynced = 1;	/* its sequence was judged plausible */
			continue;
		}
		if (rc != CH_CUR_OK)
			break;
		if (r.h.seq != t->next_seq && !resynced)
			break;	/* out of sequence: not written there by a writer */
		resynced = 0;
		if (r.h.type == CH_REC_SEAL) {
			t->sealed = 1;
			ch_seal_decode(r.payload, &t->seal);
			t->end = r.pos;
			t->file_end = c.pos;
			t->next_seq = r.h.seq;
			t->last_ts = t->seal.last_ts;
			break;
		}
		t->end = t->file_end = c.pos;
		t->next_seq = r.h.seq + r.seqs;
		t->last_ts = r.h.ts;
	}
	ch_segcur_free(&c);
	if (t->file_end == size)
		t->torn = 0;
	return 0;
}
