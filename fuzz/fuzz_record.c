/*
 * fuzz_record.c - one record as bytes: header decoding, checksum and
 * trailer verification, the seal and gap payloads, and the renderings
 * chsub gives a record (plain, --json, --format with %k and %{KEY}
 * metadata), and the metadata's own parsers (meta.h): its lines, lookups,
 * header names and the environment names they give, and a publisher's
 * key and headers built from the input's lines, which must read back.
 * Also the other fixed-size decoders of format.h (segment header, index
 * header and entry, segment file names) and encode/decode round trips of
 * a record and of a gap record.
 *
 * Formats 2 and 3: the input as a frame of either (header decoding,
 * verification, its records: in format 3 the table entries and the
 * payloads they lead to in the payload area), and a round trip through a
 * writer's batch: the input's lines are queued (with metadata, or not),
 * taken out in pieces cut to a room the input chooses (frames cut at a
 * segment's end, the rest re-framed in place), and each piece must verify
 * and give back the same records and metadata, numbered in order, at the
 * offsets the batch gave; also after the batch was framed again in
 * another format.
 *
 * Input: a record (as found at a boundary in a segment), optionally
 * followed by a --format string used when it passes ch_format_check.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "format.h"
#include "frame.h"
#include "meta.h"
#include "output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *formats[] = {
	"%o %n %t %T %S %{channel} %{subscriber} %{error}\\n",
	"%s\\0",
	"%{channel}%s",
	"%{offset}%{status}%{attempts}%{time}%%\\t\\r\\\\",
	"%k|%{key}|%{Content-Type}|%{h.channel}|%{h.}|%{}}|%s\\n",
};

/* Each rendering into a fresh buffer, as chsub's first record meets it. */
static void
render_one(const struct ch_outfmt *f, const struct ch_recview *v)
{
	struct ch_buf b = { 0 };

	ch_output_record(&b, f, v);
	ch_buf_free(&b);
}

static void
render(const struct ch_recview *v, const char *extra_fmt)
{
	struct ch_outfmt f = { CH_OUT_FORMAT, '\n', NULL, 0 };
	struct ch_error err;

	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		f.fmt = formats[i];
		render_one(&f, v);
	}
	if (extra_fmt && ch_format_check(extra_fmt, &err) == 0) {
		f.fmt = extra_fmt;
		render_one(&f, v);
	}
	f.mode = CH_OUT_PLAIN;
	render_one(&f, v);
	f.delim = '\0';
	render_one(&f, v);
	f.mode = CH_OUT_JSON;
	render_one(&f, v);
}

static void
decode_record(const uint8_t *data, size_t size)
{
	struct ch_rechdr h;
	struct ch_recview v;
	char *fmt = NULL;

	if (size < CH_REC_HDR || ch_rec_decode(data, &h) < 0)
		return;
	uint64_t total = ch_rec_size(h.meta_len, h.len);
	if (total > size)
		return;
	int ok = ch_rec_verify(data, total) == 0;
	if (h.type == CH_REC_SEAL) {
		struct ch_seal s;
		ch_seal_decode(data + CH_REC_HDR, &s);
		return;
	}
	if (h.type == CH_REC_GAP) {
		uint64_t n;
		if (ok && ch_gap_count(data, total, &n) == 0 &&
		    (n == 0 || n > total / CH_REC_OVERHEAD))
			abort();
		return;
	}
	/* Render even an unverified record: chsub --skip-corrupt never does,
	 * but the renderer must not depend on the checksum for safety. */
	(void)ok;
	if (size > total) {
		fmt = malloc(size - total + 1);
		if (!fmt)
			return;
		memcpy(fmt, data + total, size - total);
		fmt[size - total] = '\0';
	}
	v.offset = h.seq * 3;
	v.seq = h.seq;
	v.ts = h.ts;
	v.meta = h.meta_len ? data + CH_REC_HDR : NULL;
	v.meta_len = h.meta_len;
	v.payload = data + CH_REC_HDR + h.meta_len;
	v.len = h.len;
	render(&v, fmt);
	free(fmt);
}

/* The input as a frame of a segment born at `created`: format 2's
 * (records in the body), or format 3's (packed: the payload area, then
 * the record table). */
static void
decode_frame(const uint8_t *data, size_t size, int packed)
{
	struct ch_framebase fb = { 1000, 1700000000000000000LL, packed };
	struct ch_framehdr f;
	struct ch_recview v;

	if (ch_frame_decode(data, size, &fb, &f) != 0 || f.len > size)
		return;
	int ok = ch_frame_verify(data, &f, ch_crc32c_hw()) == 0;
	if (f.type != CH_REC_DATA)
		return;
	if (!packed && f.plen)
		abort();
	/* Walk the body even unverified: the decoder checks its bounds.  In
	 * format 3 the decoder says nothing about the payload area: the
	 * walk keeps its own cursor there, as a reader does. */
	const unsigned char *body = data + f.hlen;
	const unsigned char *lim = data + f.len - CH_FRAME_TRAILER;
	const unsigned char *pay = body, *pend = body + f.plen;
	const unsigned char *p = packed ? pend : body;
	struct ch_frec r;
	uint64_t k;
	if (pend > lim)
		abort();	/* ch_frame_decode checks P <= the body */
	for (k = 0; k < f.count && p < lim; k++) {
		if ((packed ? ch_frec3_decode(p, lim, k == 0, &r) :
		    ch_frec_decode(p, lim, k == 0, &r)) < 0) {
			if (ok)
				abort();	/* verified means well formed */
			break;
		}
		if (ok && k > 0 && r.at != (uint64_t)(p - body))
			abort();
		if (packed) {
			if (r.len >= (uint64_t)(pend - pay) ||
			    pay[r.len] != 0x0A) {
				if (ok)
					abort();
				break;
			}
			r.payload = pay;
			pay += r.len + 1;
		}
		v.offset = k ? (uint64_t)(p - data) : 0;
		v.seq = f.seq + k;
		v.ts = f.ts;
		v.meta = r.meta_len ? r.meta : NULL;
		v.meta_len = r.meta_len;
		v.payload = r.payload;
		v.len = (size_t)r.len;
		if (ok && k < 2)
			render(&v, NULL);
		p = r.end;
	}
	/* A verified frame is exactly its records: table and payload area
	 * both used up. */
	if (ok && (k != f.count || p != lim || (packed && pay != pend)))
		abort();
}

/* The longest of the input's complete lines split at delim. */
static uint64_t
longest_line(const uint8_t *data, size_t size, int delim)
{
	const uint8_t *p = data, *end = data + size, *d;
	uint64_t longest = 0;

	for (; (d = memchr(p, delim, (size_t)(end - p))); p = d + 1)
		if ((uint64_t)(d - p) > longest)
			longest = (uint64_t)(d - p);
	return longest;
}

/* Queue the input's lines (split at delim, at most max_record bytes; the
 * part after the last delimiter a record of its own with other metadata
 * if tail) in a batch of `format`, take it out in pieces of at most
 * `room` bytes (at least one record each) and read every piece back: the
 * same records, in order, numbered from 7.  With `to` another
 * format, the batch is framed again in it (as a writer does that finds
 * the channel's format changed) before the first piece is taken, or
 * after it if `late`. */
static void
batch_round_trip(const uint8_t *data, size_t size, uint32_t format,
    int atomic, uint64_t room, const char *meta, uint32_t to, int late,
    int kept, int delim, uint64_t max_record, int tail)
{
	size_t ml = meta ? strlen(meta) : 0;
	struct ch_seghdr sh = { format, 0, 7, 1700000000000000000LL, 0 };
	struct ch_framebase fb = { sh.first_seq, sh.created, format >= 3 };
	struct ch_batch b;
	struct ch_error err;
	size_t used, nrec, got = 0;
	uint64_t seq = sh.first_seq, *offs;
	const unsigned char *line = data;
	int hw = ch_crc32c_hw();

	ch_batch_init(&b, format, max_record, atomic);
	/* All at once; or (no tail) as chpub's reads cut the input: calls
	 * on pieces of it, each from where the last one's records ended. */
	size_t step = tail ? size : 1 + (size_t)data[0] * 61;
	int rc = 0;
	used = nrec = 0;
	do {
		size_t n = size - used < step ? size - used : step, u, k;
		rc = (kept ? ch_batch_add_split_kept : ch_batch_add_split)(&b,
		    data + used, n, delim, meta, ml, &u, &k, &err);
		used += u;
		nrec += k;
		if (u == 0 && n < size - used + u)
			step *= 2;	/* no delimiter in it: a longer piece */
		else if (u == 0)
			break;
	} while (rc == 0 && used < size && !tail);
	if (rc < 0 || !(offs = malloc((nrec + 1) * sizeof *offs))) {
		ch_batch_free(&b);
		return;
	}
	/* The last part, without its delimiter, as one record of its own
	 * with other metadata; or (tail 0) left out. */
	if (tail) {
		if (ch_batch_add(&b, "k=v\n", 4, data + used, size - used,
		    &err) < 0)
			abort();
		nrec++;
	}
	while (ch_batch_records(&b)) {
		struct ch_piece pc;
		if (to != format && (!late || got)) {
			if (ch_batch_reformat(&b, to, &err) < 0)
				abort();
			format = sh.format = to;
			fb.packed = format >= 3;
		}
		uint64_t first = ch_batch_first(&b, &sh, seq, sh.created + 5);
		if (first == 0)
			abort();
		ch_batch_take(&b, &sh, seq, sh.created + 5, room, 1000, offs,
		    &pc);
		if (pc.nrec == 0 || (pc.len > room && pc.len != first &&
		    !atomic))
			abort();
		/* Read the piece back, its buffers one after another. */
		if (pc.niov < 1 || pc.niov > CH_PIECE_IOV ||
		    (format < 3 && pc.niov != 1))
			abort();
		unsigned char *flat = malloc(pc.len ? pc.len : 1);
		size_t at = 0;
		if (!flat)
			abort();
		for (int v = 0; v < pc.niov; v++) {
			memcpy(flat + at, pc.iov[v].iov_base, pc.iov[v].iov_len);
			at += pc.iov[v].iov_len;
		}
		if (at != pc.len)
			abort();
		const unsigned char *p = flat, *end = flat, *fstart = flat;
		const unsigned char *pay = NULL, *pend = NULL;
		struct ch_rechdr h;
		struct ch_framehdr f;
		struct ch_frec r;
		uint64_t kf = 0;	/* the record's index in its frame */
		for (uint64_t k = 0; k < pc.nrec; k++, kf++, got++) {
			const unsigned char *payload;
			size_t len;
			if (format == 1) {
				if (ch_rec_decode(p, &h) < 0 ||
				    ch_rec_verify(p, ch_rec_size(h.meta_len,
				    h.len)) < 0 || h.seq != seq + k)
					abort();
				payload = p + CH_REC_HDR + h.meta_len;
				len = h.len;
				if ((got + 1 < nrec || !tail) &&
				    (h.meta_len != ml || (ml &&
				    memcmp(p + CH_REC_HDR, meta, ml))))
					abort();
				if (offs[k] != 1000 + (uint64_t)(p - flat))
					abort();
				p += ch_rec_size(h.meta_len, h.len);
			} else {
				if (k == 0 || p == end) {
					/* A frame: the first, or the next
					 * one after the last one's records. */
					if (k) {
						if (pay != pend)
							abort();
						p = end + CH_FRAME_TRAILER;
					}
					fstart = p;
					if (ch_frame_decode(p, (size_t)(flat +
					    pc.len - p), &fb, &f) ||
					    f.seq != seq + k ||
					    f.count > pc.nrec - k ||
					    ch_frame_verify(p, &f, hw) < 0 ||
					    (format >= 3) != (f.plen != 0))
						abort();
					/* Bounded frames: only a record alone
					 * may make a larger one. */
					if (!atomic && f.count > 1 &&
					    f.len > (format == 3 ?
					    CH_FRAME3_BOUND : CH_FRAME_BOUND))
						abort();
					p += f.hlen;
					end = fstart + f.len - CH_FRAME_TRAILER;
					kf = 0;
					/* Format 3: the payloads, then the
					 * table, where the records' offsets
					 * are. */
					pay = p;
					pend = p += f.plen;
				}
				if ((format >= 3 ? ch_frec3_decode(p, end, kf == 0,
				    &r) : ch_frec_decode(p, end, kf == 0, &r)) < 0 ||
				    offs[k] != 1000 + (uint64_t)((kf ? p : fstart) -
				    flat))
					abort();
				if (format >= 3) {
					/* In order, each followed by 0x0A. */
					if (r.len >= (uint64_t)(pend - pay) ||
					    pay[r.len] != 0x0A)
						abort();
					r.payload = pay;
					pay += r.len + 1;
				}
				payload = r.payload;
				len = (size_t)r.len;
				if ((got + 1 < nrec || !tail) &&
				    (r.meta_len != ml || (ml &&
				    memcmp(r.meta, meta, ml))))
					abort();
				p = r.end;
			}
			/* The original: the next line, or the last part. */
			const unsigned char *nl = got + 1 < nrec || !tail ?
			    memchr(line, delim, (size_t)(data + size - line)) :
			    NULL;
			if (!tail && !nl)
				abort();
			size_t want = nl ? (size_t)(nl - line) :
			    (size_t)(data + size - line);
			if (len != want || (len && memcmp(payload, line, len)))
				abort();
			line += want + (nl != NULL);
		}
		if (format == 1 ? p != flat + pc.len : (p != end || pay != pend ||
		    end + CH_FRAME_TRAILER != flat + pc.len))
			abort();
		free(flat);
		seq += pc.nrec;
		ch_batch_consume(&b);
	}
	if (got != nrec)
		abort();
	free(offs);
	ch_batch_free(&b);
}

/* batch_round_trip of newline-split lines, max_record 1 MiB, the last
 * part a record of its own. */
static void
lines_round_trip(const uint8_t *data, size_t size, uint32_t format,
    int atomic, uint64_t room, const char *meta, uint32_t to, int late,
    int kept)
{
	batch_round_trip(data, size, format, atomic, room, meta, to, late,
	    kept, '\n', 1 << 20, 1);
}

/* Encode the input as a record and decode it back: must agree. */
static void
round_trip(const uint8_t *data, size_t size)
{
	size_t meta_len = size / 3 > CH_MAX_META ? CH_MAX_META : size / 3;
	size_t len = size - meta_len;
	uint64_t total = ch_rec_size(meta_len, len);
	unsigned char *rec = malloc(total);
	struct ch_rechdr h;

	if (!rec)
		return;
	uint32_t partial = ch_rec_encode(rec, CH_REC_DATA, data, meta_len,
	    data + meta_len, len);
	ch_rec_finish(rec, partial, size, (int64_t)size - 7);
	if (ch_rec_decode(rec, &h) < 0 || h.meta_len != meta_len ||
	    h.len != len || h.seq != size || h.ts != (int64_t)size - 7 ||
	    ch_rec_verify(rec, total) < 0)
		abort();
	free(rec);
}

/* A gap record made for the input's length decodes to what was put in. */
static void
gap_round_trip(size_t size)
{
	uint64_t total = CH_REC_OVERHEAD + size % 4096, n;
	uint64_t count = 1 + size % (total / CH_REC_OVERHEAD);
	unsigned char *rec = malloc(total);
	struct ch_rechdr h;

	if (!rec)
		return;
	ch_gap_encode(rec, total, size, (int64_t)size - 7, count);
	if (ch_rec_decode(rec, &h) < 0 || h.type != CH_REC_GAP ||
	    ch_rec_size(h.meta_len, h.len) != total || h.seq != size ||
	    ch_rec_verify(rec, total) < 0 ||
	    ch_gap_count(rec, total, &n) < 0 || n != count)
		abort();
	free(rec);
}

static void
fixed_decoders(const uint8_t *data, size_t size)
{
	struct ch_seghdr sh, back;
	struct ch_idxent ie;
	unsigned char p[CH_SEG_HDR];
	char name[48];
	uint64_t base;

	/* The short way to a format 3 table entry agrees with the long
	 * one wherever it takes it. */
	for (size_t i = 0; i < size && i < 64; i++) {
		uint64_t at, len;
		struct ch_frec r;
		if (ch_frec3_common(data + i, data + size, &at, &len) &&
		    (ch_frec3_decode(data + i, data + size, 0, &r) < 0 ||
		    r.at != at || r.len != len || r.age || r.meta_len ||
		    r.end != data + i + 5))
			abort();
	}
	if (size >= CH_SEG_HDR && ch_seghdr_decode(data, &sh) == 0) {
		/* Re-encoding a valid header gives a valid header. */
		ch_seghdr_encode(p, &sh);
		if (ch_seghdr_decode(p, &back) < 0 || back.base != sh.base ||
		    back.first_seq != sh.first_seq || back.created != sh.created)
			abort();
	}
	if (size >= CH_IDX_HDR)
		(void)ch_idxhdr_decode(data);
	if (size >= CH_IDX_ENTRY)
		(void)ch_idxent_decode(data, &ie);
	size_t nl = size < sizeof name - 1 ? size : sizeof name - 1;
	memcpy(name, data, nl);
	name[nl] = '\0';
	if (ch_seg_parse_name(name, &base) == 0) {
		char again[CH_SEG_NAME_LEN + 1];
		ch_seg_name(again, base);
		if (strcmp(again, name) != 0)
			abort();
	}
}

/* Every line of the input as metadata: each found again by a lookup
 * (unless an earlier line has its name), headers given environment
 * names only when valid; the key and header lines copied out parse to
 * the same fields. */
static void
meta_fields(const uint8_t *data, size_t size)
{
	const unsigned char *p = data, *end = data + size, *v;
	struct ch_meta_field f;
	char env[CH_HDR_ENV_MAX];
	unsigned char *copy = malloc(size + 1);
	size_t n = 0;

	if (!copy)
		return;
	while (ch_meta_next(&p, end, &f)) {
		if (f.key + f.key_len >= end || f.key[f.key_len] != '=' ||
		    f.val + f.val_len > end || (f.kind == CH_MF_HEADER &&
		    f.name != f.key + 2))
			abort();
		int vl = ch_meta_lookup(data, size, (const char *)f.key,
		    f.key_len, &v);
		if (vl < 0)
			abort();
		if (f.kind == CH_MF_HEADER) {
			int ok = ch_hdr_env_name(f.name, f.name_len, env) == 0;
			if (ok != ch_hdr_name_valid((const char *)f.name,
			    f.name_len) || (ok && strlen(env) != 7 + f.name_len))
				abort();
		}
		if (f.kind != CH_MF_OTHER)
			n++;
	}
	size_t cl = ch_meta_copy_user(data, size, copy);
	if (cl > size + 1)
		abort();
	p = copy;
	while (ch_meta_next(&p, copy + cl, &f)) {
		if (f.kind == CH_MF_OTHER || n-- == 0)
			abort();
	}
	if (n)
		abort();
	free(copy);
}

/* A publisher's key and headers from the input's lines: the first line
 * is the key, the others -H arguments.  What is accepted reads back. */
static void
user_meta(const uint8_t *data, size_t size)
{
	struct ch_usermeta m = { 0 };
	struct ch_error err;
	char *s = malloc(size + 1), *line, *next;
	const unsigned char *v;
	int first = 1;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	for (line = s; line; line = next, first = 0) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (first) {
			if (ch_usermeta_key(&m, line, &err) < 0)
				continue;
			int vl = ch_meta_lookup((unsigned char *)m.p, m.len,
			    "key", 3, &v);
			if (vl != (int)strlen(line) || memcmp(v, line,
			    (size_t)vl))
				abort();
			continue;
		}
		if (ch_usermeta_header(&m, line, &err) < 0)
			continue;
		char *eq = strchr(line, '=');
		/* Found as a header, or as the key line when it is "key". */
		int vl = ch_meta_lookup((unsigned char *)m.p, m.len, line,
		    (size_t)(eq - line), &v);
		if (vl < 0 || m.len > CH_META_USER_MAX)
			abort();
		if (strncmp(line, "key=", 4) != 0 && (vl != (int)strlen(eq + 1) ||
		    memcmp(v, eq + 1, (size_t)vl)))
			abort();
	}
	ch_usermeta_free(&m);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *v;
	struct ch_buf b = { 0 };

	if (size > (1u << 20))
		return 0;
	decode_record(data, size);
	decode_frame(data, size, 0);
	decode_frame(data, size, 1);
	fixed_decoders(data, size);
	round_trip(data, size);
	if (size <= 65536) {
		uint64_t room = size ? 24 + data[size / 2] * 3 : 64;
		const char *meta = size % 2 ? "key=k\nh.A-b=c\n" : NULL;
		/* Each format, atomic in 2 and 3; and lines left in the
		 * input (no copy, kept), unless they have metadata. */
		static const struct { uint32_t format; int atomic, kept; }
		    way[] = { { 1, 0, 0 }, { 2, 0, 0 }, { 2, 1, 0 },
		    { 3, 0, 0 }, { 3, 1, 0 }, { 3, 0, 1 } };
		for (size_t i = 0; i < sizeof way / sizeof *way; i++)
			lines_round_trip(data, size, way[i].format,
			    way[i].atomic, room, meta, way[i].format, 0,
			    way[i].kept);
		/* A change of format: from any to either other, before the
		 * first piece or after it; atomic between 2 and 3 only. */
		unsigned sel = size ? data[size - 1] : 0;
		uint32_t from = 1 + sel % 3;
		uint32_t to = 1 + (from + (sel / 3) % 2) % 3;
		int atomic = (sel / 12) % 2 && from >= 2 && to >= 2;
		lines_round_trip(data, size, from, atomic, room, meta, to,
		    (sel / 6) % 2, (sel / 24) % 2);
		/* Lines only (the last part left out), split at NUL or at
		 * newlines, under a max_record_bytes at most 2 above the
		 * longest line: the short way's bound met exactly; copied
		 * and kept. */
		int delim = (sel / 48) % 2 ? 0 : '\n';
		uint64_t maxr = longest_line(data, size, delim) + sel % 3;
		for (int kept = 0; kept < 2; kept++)
			batch_round_trip(data, size, 3, 0, room, NULL, 3, 0,
			    kept, delim, maxr ? maxr : 1, 0);
		batch_round_trip(data, size, 2, 0, room, NULL, 2, 0, 0, delim,
		    maxr ? maxr : 1, 0);
	}
	if (size && size <= 4096 && memchr(data, '\n', size)) {
		/* Bulk: the input again and again, 150 KB or more, in format
		 * 3 frames of 64 KiB, taken out several frames a piece (and
		 * cut where the room ends). */
		size_t reps = 150000 / size + 1;
		uint8_t *big = malloc(size * reps);
		if (!big)
			abort();
		for (size_t i = 0; i < reps; i++)
			memcpy(big + i * size, data, size);
		uint64_t room = 65536 + (uint64_t)data[0] * 4096;
		lines_round_trip(big, size * reps, 3, 0, room, NULL, 3, 0,
		    data[0] % 2);
		/* Again split at NUL, or at newlines with no last part: runs
		 * of empty records after long ones fill frames their own
		 * way (a frame's table outgrew the room once). */
		batch_round_trip(big, size * reps, 3, 0, room, NULL, 3, 0, 0,
		    data[0] & 2 ? 0 : '\n', 1 << 20, 0);
		free(big);
	}
	gap_round_trip(size);
	/* The whole input as metadata and as a JSON string. */
	(void)ch_meta_lookup(data, size, "channel", 7, &v);
	(void)ch_meta_lookup(NULL, 0, "error", 5, &v);
	meta_fields(data, size);
	user_meta(data, size);
	(void)ch_utf8_valid(data, size);
	ch_json_string(&b, data, size);
	ch_buf_free(&b);
	return 0;
}
