/* output.c - rendering records (see output.h). */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "output.h"
#include "parse.h"

int
ch_buf_reserve(struct ch_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	char *np = realloc(b->p, cap);
	if (!np)
		return -1;
	b->p = np;
	b->cap = cap;
	return 0;
}

int
ch_buf_put(struct ch_buf *b, const void *data, size_t len)
{
	/* An empty payload (%s of a zero-length record) may come with a
	 * NULL pointer and meet a still-empty buffer: memcpy with NULL is
	 * undefined even for 0 bytes. */
	if (len == 0)
		return 0;
	if (ch_buf_reserve(b, len) < 0)
		return -1;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

void
ch_buf_free(struct ch_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int
ch_format_check(const char *fmt, struct ch_error *err)
{
	if (!*fmt)	/* every record would print as nothing */
		return ch_err(err, CH_EXIT_USAGE, "empty format (plain "
		    "output is --format='%%s\\n')");
	for (const char *p = fmt; *p; p++) {
		if (*p == '\\' && !p[1])
			return ch_err(err, CH_EXIT_USAGE, "a '\\' ends the "
			    "format (\\\\ prints one)");
		if (*p == '%' && !p[1])
			return ch_err(err, CH_EXIT_USAGE, "a '%%' ends the "
			    "format (%%%% prints one)");
		if (*p == '\\') {
			p++;
			if (!strchr("ntr0\\", *p))
				return ch_err(err, CH_EXIT_USAGE,
				    "unknown escape '\\%c' in format (use \\n \\t "
				    "\\r \\0 \\\\)", *p ? *p : ' ');
		} else if (*p == '%') {
			p++;
			if (*p == '{') {
				const char *end = strchr(p, '}');
				if (!end || end == p + 1)
					return ch_err(err, CH_EXIT_USAGE,
					    "unterminated %%{KEY} in format");
				p = end;
			} else if (!*p || !strchr("onsStTk%", *p)) {
				return ch_err(err, CH_EXIT_USAGE,
				    "unknown format directive '%%%c' (use %%o %%n "
				    "%%s %%S %%t %%T %%k %%{KEY} %%%%)", *p ? *p : ' ');
			}
		}
	}
	return 0;
}

static int
putu(struct ch_buf *b, uint64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof s, "%" PRIu64, v);
	return ch_buf_put(b, s, (size_t)n);
}

/* ,"NAME":"..." when the bytes are valid UTF-8, else ,"NAME_base64":"...". */
static int
json_bytes(struct ch_buf *b, const char *name, const unsigned char *s,
    size_t len)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int utf8 = ch_utf8_valid(s, len);

	if (ch_buf_put(b, ",\"", 2) < 0 || ch_buf_put(b, name, strlen(name)) < 0)
		return -1;
	if (utf8)
		return ch_buf_put(b, "\":", 2) < 0 ? -1 : ch_json_string(b, s, len);
	if (ch_buf_put(b, "_base64\":\"", 10) < 0 ||
	    ch_buf_reserve(b, (len + 2) / 3 * 4 + 2) < 0)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		b->p[b->len++] = tbl[v >> 18];
		b->p[b->len++] = tbl[(v >> 12) & 63];
		b->p[b->len++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		b->p[b->len++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	b->p[b->len++] = '"';
	return 0;
}

/* The metadata lines of one kind as an object ,"NAME":{...}: its names
 * and values as JSON strings; nothing if there are none. */
static int
json_fields(struct ch_buf *b, const struct ch_recview *r, int kind,
    const char *name)
{
	const unsigned char *p = r->meta, *end = r->meta + r->meta_len;
	struct ch_meta_field f;
	int first = 1;

	while (ch_meta_next(&p, end, &f)) {
		if (f.kind != kind)
			continue;
		if (ch_buf_put(b, first ? ",\"" : ",", first ? 2 : 1) < 0 ||
		    (first && (ch_buf_put(b, name, strlen(name)) < 0 ||
		    ch_buf_put(b, "\":{", 3) < 0)) ||
		    ch_json_string(b, f.name, f.name_len) < 0 ||
		    ch_buf_put(b, ":", 1) < 0 ||
		    ch_json_string(b, f.val, f.val_len) < 0)
			return -1;
		first = 0;
	}
	return first ? 0 : ch_buf_put(b, "}", 1);
}

/* A publisher's key and headers: "key" (or "key_base64") and "headers". */
static int
json_key_headers(struct ch_buf *b, const struct ch_recview *r)
{
	const unsigned char *v;
	int vl = ch_meta_lookup(r->meta, r->meta_len, CH_META_KEY,
	    sizeof CH_META_KEY - 1, &v);

	if (vl >= 0 && json_bytes(b, "key", v, (size_t)vl) < 0)
		return -1;
	return json_fields(b, r, CH_MF_HEADER, "headers");
}

/* The other lines: a dead letter's origin. */
static int
json_origin(struct ch_buf *b, const struct ch_recview *r)
{
	return json_fields(b, r, CH_MF_OTHER, "origin");
}

int
ch_output_formatted(struct ch_buf *b, const struct ch_outfmt *f,
    const struct ch_recview *r)
{
	char tbuf[64];

	if (f->mode == CH_OUT_JSON) {
		if (ch_buf_put(b, "{\"offset\":", 10) < 0 || putu(b, r->offset) < 0 ||
		    ch_buf_put(b, ",\"seq\":", 7) < 0 || putu(b, r->seq) < 0)
			return -1;
		ch_format_time(tbuf, sizeof tbuf, r->ts, 1);
		if (ch_buf_put(b, ",\"timestamp\":\"", 14) < 0 ||
		    ch_buf_put(b, tbuf, strlen(tbuf)) < 0 ||
		    ch_buf_put(b, "\",\"size\":", 9) < 0 ||
		    putu(b, r->len) < 0)
			return -1;
		if (r->meta_len && json_key_headers(b, r) < 0)
			return -1;
		if (json_bytes(b, "payload", r->payload, r->len) < 0)
			return -1;
		if (r->meta_len && json_origin(b, r) < 0)
			return -1;
		return ch_buf_put(b, "}\n", 2);
	}
	for (const char *p = f->fmt; *p; p++) {
		int rc = 0;
		if (*p == '\\' && p[1]) {
			char c = *++p;
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' :
			    c == '0' ? '\0' : c;
			rc = ch_buf_put(b, &c, 1);
		} else if (*p == '%' && p[1]) {
			switch (*++p) {
			case 'o':
				rc = putu(b, r->offset);
				break;
			case 'n':
				rc = putu(b, r->seq);
				break;
			case 's':
				rc = ch_buf_put(b, r->payload, r->len);
				break;
			case 'S':
				rc = putu(b, r->len);
				break;
			case 't':
				ch_format_time(tbuf, sizeof tbuf, r->ts, 1);
				rc = ch_buf_put(b, tbuf, strlen(tbuf));
				break;
			case 'T':
				rc = putu(b, (uint64_t)(r->ts / 1000000));
				break;
			case 'k': {
				const unsigned char *v;
				int vl = ch_meta_lookup(r->meta, r->meta_len,
				    CH_META_KEY, sizeof CH_META_KEY - 1, &v);
				if (vl > 0)
					rc = ch_buf_put(b, v, (size_t)vl);
				break;
			}
			case '{': {
				/* The name as written, however long: a prefix of
				 * it would name another field. */
				const char *end = strchr(p, '}');
				const unsigned char *v;
				int vl = ch_meta_lookup(r->meta, r->meta_len, p + 1,
				    (size_t)(end - p - 1), &v);
				if (vl > 0)
					rc = ch_buf_put(b, v, (size_t)vl);
				p = end;
				break;
			}
			default:
				rc = ch_buf_put(b, p, 1);
			}
		} else {
			rc = ch_buf_put(b, p, 1);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

size_t
ch_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 ||
	    cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int
ch_utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; ) {
		size_t l = ch_utf8_len(s + i, len - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

int
ch_json_string(struct ch_buf *b, const void *str, size_t len)
{
	const unsigned char *s = str;

	if (ch_buf_reserve(b, len + 2) < 0 || ch_buf_put(b, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; ) {
		unsigned char c = s[i];
		char esc[8];
		int rc;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			rc = ch_buf_put(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" :
			    c == '\r' ? "\\r" : NULL;
			if (named)
				rc = ch_buf_put(b, named, 2);
			else {
				snprintf(esc, sizeof esc, "\\u%04x", c);
				rc = ch_buf_put(b, esc, 6);
			}
			i++;
		} else {
			size_t l = ch_utf8_len(s + i, len - i);
			if (l)
				rc = ch_buf_put(b, s + i, l);
			else
				rc = ch_buf_put(b, "\xEF\xBF\xBD", 3);
			i += l ? l : 1;
		}
		if (rc < 0)
			return -1;
	}
	return ch_buf_put(b, "\"", 1);
}
