/*
 * batch3.c - a writer's queued records as format 3 frames (batch.h,
 * frame.h).
 *
 * As in format 2 the buffer holds the frames one after another, each with
 * room for its header before its body and for its trailer after it.  A
 * frame's body is its payloads, each followed by 0x0A, then its record
 * table.  Payloads are copied in as they come (lines read with their
 * newlines in one piece, as they were read) and checksummed on the way.
 * The table's position fields count from the body's start, so it can be
 * written only once the payloads are all there: the open frame's entries
 * wait in b->tab without their positions and go in when the frame is
 * closed, when the next one opens or when taking out begins.  The room
 * the table will take is kept free in the buffer all along, so closing
 * never allocates.
 *
 * Lines added with ch_batch_add_split_kept are not copied: a frame of
 * them (f->ext) refers to its payload area in the caller's buffer, where
 * they lie with their newlines as the format wants them, and only its
 * table is in buf; it is written as three buffers, header, payloads,
 * table and trailer, with the others of its piece in one pwritev.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "frame.h"

#define SLACK CH_FRAME_HDR_MAX
#define BODY_BOUND (CH_FRAME3_BOUND - CH_FRAME_HDR_MAX - CH_FRAME_TRAILER)
#define BODY_MAX (CH_FRAME_MAX_LEN - CH_FRAME_HDR_MAX - CH_FRAME_TRAILER)
/* An entry without its position: attributes, length (5 bytes: at most
 * 4 GiB), metadata length (3: at most 65535); its metadata besides. */
#define ENTRY_MAX (1 + 5 + 3)
/* A position field: 3 bytes in a bounded frame (below 2 MiB), 5 in an
 * atomic one (below 4 GiB). */
#define POS_BOUNDED 3
#define POS_MAX 5
_Static_assert(CH_RECORD_MAX + 1 + ENTRY_MAX + POS_MAX <= BODY_MAX,
    "a frame of one record of CH_RECORD_MAX bytes overflows its length");
_Static_assert(CH_FRAME3_BOUND < (1u << 21), "positions take 3 bytes");

static inline size_t
pos_width(const struct ch_batch *b)
{
	return b->atomic ? POS_MAX : POS_BOUNDED;
}

/* The frame records are added to, if any. */
static inline struct ch_bframe *
open_frame(struct ch_batch *b)
{
	return b->nfr > b->fdone && !b->closed && !b->fr[b->nfr - 1].tabled ?
	    &b->fr[b->nfr - 1] : NULL;
}

/* Where the table of closed frame f is. */
static inline unsigned char *
table_at(const struct ch_batch *b, const struct ch_bframe *f)
{
	return b->buf + f->body + (f->ext ? 0 : f->plen);
}

/* Bytes the buffer must hold past b->len for the open frame f to be
 * closed: its table (entries, and their positions at their widest) and
 * its trailer. */
static inline size_t
close_room(const struct ch_batch *b, const struct ch_bframe *f)
{
	return b->tablen + (size_t)f->count * pos_width(b) + CH_FRAME_TRAILER;
}

/*
 * Write the table of `count` records for a payload area of plen bytes at
 * dst (NULL: only measure it), reading their entries, table entries of a
 * closed frame, from *srcp (up to lim); the first of them is record abs0
 * of that frame (record 0 has no position field).  *srcp moves past them;
 * *pay (if not NULL) adds their payloads' bytes with their 0x0A.  Returns
 * the table's length.  The source is well formed: the writer made it.
 */
static size_t
put_table(unsigned char *dst, const unsigned char **srcp,
    const unsigned char *lim, uint64_t count, uint64_t abs0, uint64_t plen,
    uint64_t *pay)
{
	const unsigned char *s = *srcp;
	uint64_t at = plen;

	for (uint64_t k = 0; k < count; k++) {
		struct ch_frec r;
		if (ch_frec3_decode(s, lim, abs0 + k == 0, &r) < 0)
			break;	/* cannot happen */
		uint64_t pos = k ? at : 0;
		size_t n;
		if (dst)
			n = ch_frec3_put(dst + (at - plen), pos, r.age, r.meta,
			    r.meta_len, (size_t)r.len);
		else
			n = 1 + (pos ? ch_uvarint_len(pos) : 0) +
			    ch_uvarint_len(r.len) +
			    (r.age ? ch_uvarint_len(r.age) : 0) +
			    (r.meta_len ? ch_uvarint_len(r.meta_len) +
			    r.meta_len : 0);
		if (pay)
			*pay += r.len + 1;
		at += n;
		s = r.end;
	}
	*srcp = s;
	return (size_t)(at - plen);
}

/*
 * The table of the open frame at dst, for a payload area of plen bytes,
 * from its entries in b->tab (no positions).  As put_table, with a short
 * way for the entry of nearly every line of a full frame: a length below
 * 128 at a position of exactly 3 bytes (16 KiB to 2 MiB into the body).
 */
static size_t
put_open_table(unsigned char *dst, const struct ch_batch *b, uint64_t count,
    uint64_t plen)
{
	const unsigned char *s = b->tab, *lim = b->tab + b->tablen;
	unsigned char *d = dst;

	for (uint64_t k = 0; k < count; k++) {
		uint64_t at = plen + (uint64_t)(d - dst);
		/* The short way, for as long as it lasts: attributes 0, a
		 * position of 3 bytes (up to the last entry below 2 MiB), a
		 * length below 128. */
		if (k && at >= (1u << 14) && at < (1u << 21)) {
			uint64_t fit = ((1u << 21) - at + 4) / 5;
			uint64_t stop = count - k < fit ? count : k + fit;
			for (; k < stop && !(s[0] | (s[1] & 0x80)); k++) {
				d[0] = 0;
				d[1] = (unsigned char)(at | 0x80);
				d[2] = (unsigned char)(at >> 7 | 0x80);
				d[3] = (unsigned char)(at >> 14);
				d[4] = s[1];
				d += 5;
				s += 2;
				at += 5;
			}
			if (k == count)
				break;
		}
		struct ch_frec r;
		if (ch_frec3_decode(s, lim, 1, &r) < 0)
			break;	/* cannot happen: the writer made it */
		d += ch_frec3_put(d, k ? at : 0, r.age, r.meta, r.meta_len,
		    (size_t)r.len);
		s = r.end;
	}
	return (size_t)(d - dst);
}

/* Close the open frame: its table after its payloads (or, for payloads
 * kept elsewhere, where the body would start). */
static void
close_frame(struct ch_batch *b, struct ch_bframe *f)
{
	unsigned char *tab = b->buf + f->body + (f->ext ? 0 : f->plen);
	size_t n = put_open_table(tab, b, f->count, f->plen);

	if (f->ext) {
		f->crc = ch_crc32c(f->crc, f->ext + f->crc_len,
		    f->plen - f->crc_len);
		f->crc = ch_crc32c(f->crc, tab, n);
	} else {
		f->crc = ch_crc32c(f->crc, b->buf + f->body + f->crc_len,
		    f->plen + n - f->crc_len);
	}
	f->len = f->plen + n;
	b->len += n;
	b->tablen = 0;
	f->tabled = 1;
	f->crc_len = f->len;
}

static void
close_open(struct ch_batch *b)
{
	struct ch_bframe *f = open_frame(b);

	if (f)
		close_frame(b, f);
	b->closed = 1;
}

/* Close the open frame, if any, and start a new one after it. */
static struct ch_bframe *
new_frame(struct ch_batch *b, struct ch_error *err)
{
	struct ch_bframe *f = open_frame(b);

	if (f)
		close_frame(b, f);
	size_t at = b->len + (b->nfr ? CH_FRAME_TRAILER : 0) + SLACK;
	if (b->nfr == b->frcap) {
		size_t cap = b->frcap ? b->frcap * 2 : 8;
		struct ch_bframe *nf = realloc(b->fr, cap * sizeof *nf);
		if (!nf) {
			ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
			return NULL;
		}
		b->fr = nf;
		b->frcap = cap;
	}
	if (ch_batch_reserve(b, at - b->len + CH_FRAME_TRAILER, err) < 0)
		return NULL;
	if (!b->atomic && b->scratch_cap < BODY_BOUND) {
		unsigned char *ns = realloc(b->scratch, BODY_BOUND);
		if (!ns) {
			ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
			return NULL;
		}
		b->scratch = ns;
		b->scratch_cap = BODY_BOUND;
	}
	f = &b->fr[b->nfr++];
	memset(f, 0, sizeof *f);
	f->body = at;
	b->len = at;
	return f;
}

static int
tab_reserve(struct ch_batch *b, size_t more, struct ch_error *err)
{
	if (b->tablen + more <= b->tabcap)
		return 0;
	size_t cap = b->tabcap ? b->tabcap : 4096;
	while (cap < b->tablen + more)
		cap *= 2;
	unsigned char *nt = realloc(b->tab, cap);
	if (!nt)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	b->tab = nt;
	b->tabcap = cap;
	return 0;
}

/* Bring the CRC of every frame's body up to date (see batch2.c). */
static void
checksum(struct ch_batch *b)
{
	for (size_t i = b->fdone; i < b->nfr; i++) {
		struct ch_bframe *f = &b->fr[i];
		if (f->ext) {
			/* Its payloads; the table is taken at the close. */
			if (!f->tabled && f->crc_len < f->plen) {
				f->crc = ch_crc32c(f->crc, f->ext + f->crc_len,
				    f->plen - f->crc_len);
				f->crc_len = f->plen;
			}
			continue;
		}
		size_t len = f->tabled ? f->len : f->plen;
		if (f->crc_len < len) {
			f->crc = ch_crc32c(f->crc, b->buf + f->body + f->crc_len,
			    len - f->crc_len);
			f->crc_len = len;
		}
	}
}

/* Queue one record; the buffer may move. */
static int
put(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	struct ch_bframe *f = open_frame(b);
	size_t ent = 1 + ch_uvarint_len(len) +
	    (meta_len ? ch_uvarint_len(meta_len) + meta_len : 0);
	size_t pw = pos_width(b);

	if (f && f->ext)
		f = NULL;	/* its payloads are elsewhere: a new frame */
	if (b->atomic) {
		if (b->bytes + meta_len + len > b->max_record)
			return ch_err(err, CH_EXIT_FAIL, "an atomic batch holds "
			    "at most max_record_bytes (%llu) of records",
			    (unsigned long long)b->max_record);
		if (f && (uint64_t)f->plen + len + 1 + b->tablen + ent +
		    (f->count + 1) * pw > BODY_MAX)
			return ch_err(err, CH_EXIT_FAIL, "atomic batch too "
			    "large for one frame (4 GiB)");
	} else if (f && f->plen + len + 1 + b->tablen + ent +
	    (f->count + 1) * pw > BODY_BOUND) {
		f = NULL;
	}
	if (!f && !(f = new_frame(b, err)))
		return -1;
	if (tab_reserve(b, ent, err) < 0 ||
	    ch_batch_reserve(b, len + 1 + close_room(b, f) + ent + pw, err) < 0)
		return -1;
	unsigned char *d = b->buf + f->body + f->plen;
	if (len)	/* an empty payload may come as NULL */
		memcpy(d, payload, len);
	d[len] = 0x0A;
	b->tablen += ch_frec3_put(b->tab + b->tablen, 0, 0, meta, meta_len,
	    len);
	f->plen += len + 1;
	f->count++;
	b->len += len + 1;
	b->nrec++;
	b->bytes += meta_len + len;
	return 0;
}

int
ch_batch3_add(struct ch_batch *b, const void *meta, size_t meta_len,
    const void *payload, size_t len, struct ch_error *err)
{
	int rc = put(b, meta, meta_len, payload, len, err);

	checksum(b);
	return rc;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Bit i set where q[i] is the delimiter, for the 64 bytes at q; with dst,
 * those bytes are copied there on the way. */
static inline uint64_t
delims64(const char *q, __m128i dv, unsigned char *dst)
{
	const __m128i *s = (const __m128i *)(const void *)q;
	__m128i v0 = _mm_loadu_si128(s), v1 = _mm_loadu_si128(s + 1);
	__m128i v2 = _mm_loadu_si128(s + 2), v3 = _mm_loadu_si128(s + 3);

	if (dst) {
		__m128i *d = (__m128i *)(void *)dst;
		_mm_storeu_si128(d, v0);
		_mm_storeu_si128(d + 1, v1);
		_mm_storeu_si128(d + 2, v2);
		_mm_storeu_si128(d + 3, v3);
	}
	return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, dv)) |
	    (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, dv)) << 16 |
	    (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v2, dv)) << 32 |
	    (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v3, dv)) << 48;
}

/* Newlines of n 64-byte blocks from q, a mask a block: ahead of the
 * lines' loop, in blocks of up to 4 KiB, so that CPUs with 512-bit byte
 * compares use them (one instruction a block, not twelve). */
#define SCAN_BLOCKS 64
typedef void scan_fn(const char *q, size_t n, uint64_t *masks);

static void
newlines_sse2(const char *q, size_t n, uint64_t *masks)
{
	const __m128i dv = _mm_set1_epi8('\n');

	for (size_t i = 0; i < n; i++)
		masks[i] = delims64(q + 64 * i, dv, NULL);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx512bw")))
static void
newlines_512(const char *q, size_t n, uint64_t *masks)
{
	const __m512i dv = _mm512_set1_epi8('\n');

	for (size_t i = 0; i < n; i++)
		masks[i] = _mm512_cmpeq_epi8_mask(_mm512_loadu_si512(q +
		    64 * i), dv);
}
#endif

static scan_fn *
newlines_scanner(void)
{
	static scan_fn *fn;

	if (!fn) {
		fn = newlines_sse2;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512bw"))
			fn = newlines_512;
#endif
	}
	return fn;
}
#endif

/* In frame_lines and frame_lines_kept: the line ending at d (a delimiter)
 * into the frame, or stop there.  room is what the frame's body has left
 * (BODY_BOUND less its payloads, entries and their positions); a line
 * shorter than 128 bytes (and within max_record) takes the short way,
 * two bytes of entry. */
#define TAKE_LINE(d) do {						\
		size_t n_ = (size_t)((d) - line), ent_ = 2;		\
		if (n_ > short_max) {					\
			ent_ = 1 + ch_uvarint_len(n_);			\
			if (n_ > max_record)				\
				goto done;				\
		}							\
		ptrdiff_t cost_ = (ptrdiff_t)(n_ + 1 + ent_ + POS_BOUNDED);	\
		if (cost_ > room || (ptrdiff_t)tablen > tab_lim)	\
			goto done;					\
		room -= cost_;						\
		tab[tablen] = 0;					\
		if (ent_ == 2)						\
			tab[tablen + 1] = (unsigned char)n_;		\
		else							\
			ch_uvarint_put(tab + tablen + 1, n_);		\
		tablen += ent_;						\
		count++;						\
		line = (d) + 1;						\
	} while (0)

/* The locals TAKE_LINE works with, for open frame f. */
#define TAKE_LINE_LOCALS(b, f)						\
	size_t tablen = (b)->tablen, count = (f)->count;		\
	uint64_t max_record = ch_batch_payload_max((b), 0);		\
	size_t short_max = max_record < 0x7f ? (size_t)max_record : 0x7f; \
	ptrdiff_t room = (ptrdiff_t)BODY_BOUND - (ptrdiff_t)((f)->plen +	\
	    tablen + count * POS_BOUNDED);				\
	ptrdiff_t tab_lim = (ptrdiff_t)(b)->tabcap - ENTRY_MAX

/*
 * The common case: lines without metadata into the open frame f, copied
 * as they are (their delimiters becoming 0x0A: they lie in the frame as
 * they were read) and scanned for their ends in the same pass, 64 bytes
 * at a time, each line given its table entry.  Stops where the frame is
 * full, a line is too long, or the table's buffer is; returns where, or
 * NULL when out of memory.
 */
static const char *
frame_lines(struct ch_batch *b, struct ch_bframe *f, const char *p,
    const char *end, int delim, struct ch_error *err)
{
	const char *start = p, *line = p, *q = p;
	size_t avail = (size_t)(end - p);

	/* The frame takes at most BODY_BOUND bytes of lines (and the copy
	 * runs a block past the last one); each line of them, an empty one
	 * for each byte at most, adds its entry (2 bytes) and its position
	 * to the table the close puts in the buffer. */
	if (avail > BODY_BOUND + 64)
		avail = BODY_BOUND + 64;
	if (ch_batch_reserve(b, close_room(b, f) +
	    avail * (1 + 2 + POS_BOUNDED) + 64, err) < 0)
		return NULL;
	TAKE_LINE_LOCALS(b, f);
	unsigned char *tab = b->tab, *dst = b->buf + f->body + f->plen;

#if defined(__SSE2__)
	const __m128i dv = _mm_set1_epi8((char)delim);
	for (; end - q >= 64; q += 64) {
		uint64_t m = delims64(q, dv, dst + (q - start));
		if (!m) {	/* no line ends here: is one too long? */
			if ((size_t)(q + 64 - line) > BODY_BOUND)
				goto done;
			continue;
		}
		do {
			const char *d = q + __builtin_ctzll(m);
			TAKE_LINE(d);
			dst[d - start] = 0x0A;
			m &= m - 1;
		} while (m);
	}
#endif
	/* The rest, line by line. */
	for (;;) {
		const char *d = memchr(q, delim, (size_t)(end - q));
		if (!d)
			break;
		TAKE_LINE(d);
		memcpy(dst + (q - start), q, (size_t)(d - q));
		dst[d - start] = 0x0A;
		q = d + 1;
	}
done:;
	size_t len = (size_t)(line - start);
	if (!len)
		return line;
	b->nrec += count - f->count;
	b->bytes += len - (count - f->count);	/* less the delimiters */
	b->len += len;
	b->tablen = tablen;
	f->plen += len;
	f->count = count;
	return line;
}

/*
 * frame_lines for a frame whose payloads stay in the caller's buffer
 * (f->ext, p right after its payloads): lines are only scanned for their
 * ends, each given its table entry.  Stops where the frame is full, a
 * line is too long, or the table's buffer is; returns where.
 */
/* Not inlined: its loop keeps its locals in registers. */
__attribute__((noinline))
static const char *
frame_lines_kept(struct ch_batch *b, struct ch_bframe *f, const char *p,
    const char *end)
{
	const char *start = p, *line = p, *q = p;
	TAKE_LINE_LOCALS(b, f);
	unsigned char *tab = b->tab;

#if defined(__SSE2__)
	scan_fn *newlines = newlines_scanner();
	uint64_t masks[SCAN_BLOCKS];
	while (end - q >= 64) {
		size_t n = (size_t)(end - q) / 64;
		if (n > SCAN_BLOCKS)
			n = SCAN_BLOCKS;
		newlines(q, n, masks);
		for (size_t i = 0; i < n; i++, q += 64) {
			uint64_t m = masks[i];
			if (!m) {	/* no line ends here: one too long? */
				if ((size_t)(q + 64 - line) > BODY_BOUND)
					goto done;
				continue;
			}
			do {
				TAKE_LINE(q + __builtin_ctzll(m));
				m &= m - 1;
			} while (m);
		}
	}
#endif
	for (;;) {
		const char *d = memchr(q, '\n', (size_t)(end - q));
		if (!d)
			break;
		TAKE_LINE(d);
		q = d + 1;
	}
done:;
	size_t len = (size_t)(line - start);
	if (!len)
		return line;
	b->nrec += count - f->count;
	b->bytes += len - (count - f->count);	/* less the delimiters */
	b->kept += len;
	b->tablen = tablen;
	f->plen += len;
	f->count = count;
	return line;
}
#undef TAKE_LINE
#undef TAKE_LINE_LOCALS

/* A new frame for lines left at p in the caller's buffer; room for its
 * table (at most a frame's bytes) and trailer made first. */
static struct ch_bframe *
new_frame_kept(struct ch_batch *b, const char *p, struct ch_error *err)
{
	struct ch_bframe *f = open_frame(b);

	if (ch_batch_reserve(b, (f ? close_room(b, f) : 0) + CH_FRAME_TRAILER +
	    SLACK + BODY_BOUND + CH_FRAME_TRAILER, err) < 0 ||
	    !(f = new_frame(b, err)))
		return NULL;
	f->ext = (const unsigned char *)p;
	return f;
}

int
ch_batch3_add_split(struct ch_batch *b, const void *buf, size_t len,
    int delim, const void *meta, size_t meta_len, int kept, size_t *used,
    size_t *nrec, struct ch_error *err)
{
	const char *p = buf, *end = p + len, *d;
	size_t nrec0 = b->nrec;
	uint64_t limit = ch_batch_payload_max(b, meta_len);
	int rc = 0;

	/* As if records were 64 bytes; put() tops up when it falls short
	 * (and new_frame_kept makes room for what it needs). */
	kept = kept && !b->atomic && !meta_len && delim == '\n';
	if ((!kept && ch_batch_reserve(b, len + (len / 64 + 1) * POS_BOUNDED +
	    (len / BODY_BOUND + 2) * (SLACK + CH_FRAME_TRAILER), err) < 0) ||
	    tab_reserve(b, (len / 64 + 1) * 2, err) < 0)
		rc = -1;
	while (!rc && p < end) {
		struct ch_bframe *f = open_frame(b);
		if (kept) {
			if (f && f->ext && f->ext + f->plen ==
			    (const unsigned char *)p) {
				const char *was = p;
				p = frame_lines_kept(b, f, p, end);
				if (p == end)
					break;
				if (p != was)
					continue;
				if (b->tablen + ENTRY_MAX > b->tabcap) {
					rc = tab_reserve(b, b->tabcap, err);
					continue;
				}
				/* The frame is full: a new one. */
			}
			d = memchr(p, delim, (size_t)(end - p));
			if (!d)
				break;
			size_t n = (size_t)(d - p);
			if (n <= limit && n + 1 + ENTRY_MAX + POS_BOUNDED <=
			    BODY_BOUND) {
				if (!new_frame_kept(b, p, err))
					rc = -1;
				continue;
			}
			/* Too long for a frame of lines: the general way. */
		} else if (f && !b->atomic && !meta_len) {
			const char *was = p;
			if (!(p = frame_lines(b, f, p, end, delim, err))) {
				p = was;
				rc = -1;
				break;
			}
			if (p == end)
				break;
			if (p != was)
				continue;
		}
		/* One record the general way: the first of a frame, one
		 * that does not fit the frame or the table's buffer, one
		 * with metadata, one of an atomic batch, one too large. */
		d = memchr(p, delim, (size_t)(end - p));
		if (!d)
			break;
		size_t n = (size_t)(d - p);
		if (n > limit)
			rc = ch_batch_too_large(b, meta_len, n, err);
		else
			rc = put(b, meta, meta_len, p, n, err);
		if (!rc)
			p = d + 1;
	}
	checksum(b);
	*used = (size_t)(p - (const char *)buf);
	*nrec = b->nrec - nrec0;
	return rc;
}

/*
 * The size of a frame of the first j records of closed frame f (body at
 * body) with these fields; *plen gets its payload area's length.
 */
static uint64_t
cut_size(const unsigned char *tab, const struct ch_bframe *f, uint64_t j,
    const struct ch_framebase *fb, uint64_t seq, int64_t ts, uint64_t *plen)
{
	const unsigned char *s = tab, *lim = tab + (f->len - f->plen);
	uint64_t pay = 0;

	(void)put_table(NULL, &s, lim, j, 0, 0, &pay);
	s = tab;
	size_t t = put_table(NULL, &s, lim, j, 0, pay, NULL);
	*plen = pay;
	return ch_frame3_hlen(fb, j, seq, ts, pay) + pay + t + CH_FRAME_TRAILER;
}

uint64_t
ch_batch3_first(struct ch_batch *b, const struct ch_seghdr *seg,
    uint64_t seq, int64_t ts)
{
	struct ch_framebase fb = { seg->first_seq, seg->created, 1 };
	uint64_t plen;

	close_open(b);
	checksum(b);
	struct ch_bframe *f = &b->fr[b->fdone];
	if (ts < seg->created)
		ts = seg->created;
	if (b->atomic || f->count == 1)
		return ch_frame3_hlen(&fb, f->count, seq, ts, f->plen) + f->len +
		    CH_FRAME_TRAILER;
	return cut_size(table_at(b, f), f, 1, &fb, seq, ts, &plen);
}

/*
 * Close frame f for file position `at` with these fields, or only its
 * first records if it does not fit `room` (at least one; b->part says how
 * many, and the copy of its table in b->scratch keeps the rest), and add
 * it to piece pc: one buffer, or three if its payloads are kept elsewhere.
 * Its records' positions go to offs, if given.
 */
static void
take_frame(struct ch_batch *b, struct ch_bframe *f,
    const struct ch_framebase *fb, uint64_t seq, int64_t ts, uint64_t room,
    uint64_t at, uint64_t *offs, struct ch_piece *pc)
{
	unsigned char *tab = table_at(b, f);
	const unsigned char *pay = f->ext ? f->ext : b->buf + f->body;
	uint64_t j = f->count, plen = f->plen;
	size_t tab_len = f->len - f->plen;
	uint32_t crc = f->crc, n;

	if (!b->atomic && j > 1 && ch_frame3_hlen(fb, j, seq, ts, plen) +
	    f->len + CH_FRAME_TRAILER > room) {
		/* Cut it where the segment ends; at least one record.  The
		 * largest j that fits, by bisection: sizes grow with j. */
		uint64_t lo = 1, hi = f->count - 1;
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo + 1) / 2;
			if (cut_size(tab, f, mid, fb, seq, ts, &plen) <= room)
				lo = mid;
			else
				hi = mid - 1;
		}
		j = lo;
		(void)cut_size(tab, f, j, fb, seq, ts, &plen);
		/* The whole body (the table alone if the payloads are kept
		 * elsewhere) is copied for the rest (consume); the first j
		 * payloads stay where they are, their table after them.  A
		 * frame of two records or more is bounded, and new_frame
		 * made the copy's buffer that large. */
		const unsigned char *s = b->scratch;
		if (f->ext) {
			memcpy(b->scratch, tab, tab_len);
		} else {
			memcpy(b->scratch, pay, f->len);
			s += f->plen;
			tab = b->buf + f->body + plen;
		}
		tab_len = put_table(tab, &s, s + (f->len - f->plen), j, 0, plen,
		    NULL);
		crc = ch_crc32c(ch_crc32c(0, pay, (size_t)plen), tab, tab_len);
		b->part = j;
	}
	unsigned char *fr;
	size_t h;
	if (f->ext) {
		fr = ch_frame3_close_apart(tab, tab_len, plen, crc, j, seq, ts,
		    fb, b->hw, &n);
		h = (size_t)(tab - fr);
		pc->iov[pc->niov].iov_base = fr;
		pc->iov[pc->niov++].iov_len = h;
		pc->iov[pc->niov].iov_base = (void *)(uintptr_t)pay;
		pc->iov[pc->niov++].iov_len = (size_t)plen;
		pc->iov[pc->niov].iov_base = tab;
		pc->iov[pc->niov++].iov_len = tab_len + CH_FRAME_TRAILER;
	} else {
		fr = ch_frame3_close(b->buf + f->body, (size_t)plen + tab_len,
		    plen, crc, j, seq, ts, fb, b->hw, &n);
		h = (size_t)(b->buf + f->body - fr);
		pc->iov[pc->niov].iov_base = fr;
		pc->iov[pc->niov++].iov_len = n;
	}
	if (offs) {
		/* Record k > 0 is at its table entry. */
		const unsigned char *p = tab, *lim = tab + tab_len;
		struct ch_frec r;
		offs[0] = at;
		for (uint64_t k = 1; k < j; k++) {
			if (ch_frec3_decode(p, lim, k == 1, &r) < 0)
				break;
			p = r.end;
			offs[k] = at + h + plen + (uint64_t)(p - tab);
		}
	}
	pc->len += n;
	pc->nrec += j;
}

void
ch_batch3_take(struct ch_batch *b, const struct ch_seghdr *seg, uint64_t seq,
    int64_t ts, uint64_t room, uint64_t at, uint64_t *offs,
    struct ch_piece *pc)
{
	struct ch_framebase fb = { seg->first_seq, seg->created, 1 };

	close_open(b);
	checksum(b);
	if (ts < seg->created)
		ts = seg->created;
	b->part = 0;
	b->pfr = 0;
	pc->niov = 0;
	pc->len = 0;
	pc->nrec = 0;
	/* The first frame, cut if it must be; then the whole frames after
	 * it that fit too, in the same piece. */
	for (size_t i = b->fdone; i < b->nfr && pc->niov + 3 <= CH_PIECE_IOV;
	    i++) {
		struct ch_bframe *f = &b->fr[i];
		uint64_t s = seq + pc->nrec;
		if (pc->niov && (pc->len >= room || ch_frame3_hlen(&fb,
		    f->count, s, ts, f->plen) + f->len + CH_FRAME_TRAILER >
		    room - pc->len))
			break;
		take_frame(b, f, &fb, s, ts, room - pc->len, at + pc->len,
		    offs ? offs + pc->nrec : NULL, pc);
		if (b->part)
			break;
		b->pfr++;
	}
	b->taken = pc->nrec;
}

void
ch_batch3_consume(struct ch_batch *b)
{
	b->fdone += b->pfr;
	b->pfr = 0;
	if (!b->part)
		return;
	struct ch_bframe *f = &b->fr[b->fdone];
	/* The rest of a cut frame: its payloads after the first j (moved
	 * to the front, unless they are kept elsewhere), then its table from
	 * the copy, positions counted anew. */
	const unsigned char *s = b->scratch + (f->ext ? 0 : f->plen);
	const unsigned char *lim = s + (f->len - f->plen);
	uint64_t j = b->part, pj = 0;
	(void)put_table(NULL, &s, lim, j, 0, 0, &pj);
	size_t rest = f->plen - (size_t)pj;
	unsigned char *body = b->buf + f->body, *tab = body;
	if (f->ext) {
		f->ext += pj;
		f->crc = ch_crc32c(0, f->ext, rest);
	} else {
		memcpy(body, b->scratch + pj, rest);
		tab = body + rest;
		f->crc = ch_crc32c(0, body, rest);
	}
	size_t t = put_table(tab, &s, lim, f->count - j, j, rest, NULL);
	f->crc = ch_crc32c(f->crc, tab, t);
	f->plen = rest;
	f->len = rest + t;
	f->count -= j;
	f->crc_len = f->len;
	b->part = 0;
}

int
ch_batch3_reframe(const struct ch_batch *b, struct ch_batch *nb,
    struct ch_error *err)
{
	for (size_t i = b->fdone; i < b->nfr; i++) {
		const struct ch_bframe *f = &b->fr[i];
		const unsigned char *pay = f->ext ? f->ext : b->buf + f->body;
		const unsigned char *p = f->tabled ? table_at(b, f) : b->tab;
		const unsigned char *lim = f->tabled ? p + (f->len - f->plen) :
		    b->tab + b->tablen;
		struct ch_frec r;
		for (uint64_t k = 0; k < f->count; k++) {
			if (ch_frec3_decode(p, lim, !f->tabled || k == 0,
			    &r) < 0)
				return ch_err(err, CH_EXIT_SOFTWARE,
				    "queued frame malformed");
			if (ch_batch_add(nb, r.meta, r.meta_len, pay,
			    (size_t)r.len, err) < 0)
				return -1;
			pay += r.len + 1;
			p = r.end;
		}
	}
	return 0;
}
