/*
 * fuzz_record.c - one record as bytes: header decoding, checksum and
 * trailer verification, the seal and gap payloads, and the renderings
 * chsub gives a record (plain, --json, --format with %{KEY} metadata).
 * Also the other fixed-size decoders of format.h (segment header, index
 * header and entry, segment file names) and encode/decode round trips of
 * a record and of a gap record.
 *
 * Input: a record (as found at a boundary in a segment), optionally
 * followed by a --format string used when it passes ch_format_check.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *formats[] = {
	"%o %n %t %T %S %{channel} %{subscriber} %{error}\\n",
	"%s\\0",
	"%{channel}%s",
	"%{offset}%{status}%{attempts}%{time}%%\\t\\r\\\\",
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
	struct ch_outfmt f = { CH_OUT_FORMAT, '\n', NULL };
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *v;
	struct ch_buf b = { 0 };

	if (size > (1u << 20))
		return 0;
	decode_record(data, size);
	fixed_decoders(data, size);
	round_trip(data, size);
	gap_round_trip(size);
	/* The whole input as metadata and as a JSON string. */
	(void)ch_meta_get(data, size, "channel", &v);
	(void)ch_meta_get(NULL, 0, "error", &v);
	(void)ch_utf8_valid(data, size);
	ch_json_string(&b, data, size);
	ch_buf_free(&b);
	return 0;
}
