/*
 * output.h - rendering records for people and programs.
 *
 * Plain: the payload and a delimiter (newline, or NUL with -0).
 * --format=FMT, kcat style: %o offset, %n sequence number, %s payload,
 *   %S payload size, %t publish time (RFC 3339 UTC, nanoseconds), %T publish
 *   time in epoch milliseconds, %k the key, %{NAME} a metadata field (the
 *   origin of a dead letter: channel, subscriber, offset, status, attempts,
 *   time, error) or else header NAME (meta.h), %% a percent sign; \n \t
 *   \r \0 \\ escapes.  Nothing is added.
 * --json: one object per line; the payload as a JSON string when it is
 *   valid UTF-8, else as "payload_base64"; likewise "key"; the headers as
 *   "headers", other metadata as "origin".
 */
#ifndef CH_OUTPUT_H
#define CH_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

struct ch_buf {
	char *p;
	size_t len, cap;
};

int ch_buf_reserve(struct ch_buf *b, size_t more);
int ch_buf_put(struct ch_buf *b, const void *data, size_t len);
void ch_buf_free(struct ch_buf *b);

enum { CH_OUT_PLAIN, CH_OUT_FORMAT, CH_OUT_JSON };

struct ch_outfmt {
	int mode;
	char delim;		/* plain mode */
	const char *fmt;	/* format mode */
	int slack;		/* payloads can be read 16 bytes past their
				 * end (a cursor's, CH_CUR_SLACK) */
};

struct ch_recview {
	uint64_t offset, seq;
	int64_t ts;
	const unsigned char *payload;
	size_t len;
	const unsigned char *meta;
	size_t meta_len;
};

/* Reject unknown % directives and bad escapes in a --format string. */
int ch_format_check(const char *fmt, struct ch_error *err);

/* Append one record's rendering; -1 only when out of memory.  Plain mode
 * is inline (a bulk reader renders millions of records); the others call
 * ch_output_formatted. */
int ch_output_formatted(struct ch_buf *b, const struct ch_outfmt *f,
    const struct ch_recview *r);

static inline int
ch_output_record(struct ch_buf *b, const struct ch_outfmt *f,
    const struct ch_recview *r)
{
	if (f->mode != CH_OUT_PLAIN)
		return ch_output_formatted(b, f, r);
	if (b->len + r->len + 17 > b->cap && ch_buf_reserve(b, r->len + 17) < 0)
		return -1;
	if (f->slack && r->len <= 256) {
		/* Whole 16-byte words, past the end on both sides: the bytes
		 * after the payload are overwritten next. */
		for (size_t i = 0; i < r->len; i += 16)
			memcpy(b->p + b->len + i, r->payload + i, 16);
	} else if (r->len) {	/* an empty record's payload may be NULL */
		memcpy(b->p + b->len, r->payload, r->len);
	}
	b->p[b->len + r->len] = f->delim;
	b->len += r->len + 1;
	return 0;
}

/* JSON string escaping (with the quotes) of arbitrary bytes; invalid UTF-8
 * bytes become U+FFFD.  Returns -1 only when out of memory. */
int ch_json_string(struct ch_buf *b, const void *s, size_t len);
/* Length of the valid UTF-8 sequence at s (1..4; n > 0), or 0 if invalid. */
size_t ch_utf8_len(const unsigned char *s, size_t n);
/* 1 if s is valid UTF-8. */
int ch_utf8_valid(const unsigned char *s, size_t len);

#endif
