/* meta.c - a record's metadata lines, its key and headers (see meta.h). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "meta.h"

#define KEY_LEN (sizeof CH_META_KEY - 1)
#define HDR_LEN (sizeof CH_META_HDR - 1)

int
ch_meta_next(const unsigned char **pos, const unsigned char *end,
    struct ch_meta_field *f)
{
	const unsigned char *p = *pos;

	/* A record without metadata may have NULL, and NULL + 0 is
	 * undefined: callers pass end == *pos then. */
	while (p && p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *eol = nl ? nl : end;
		const unsigned char *eq = memchr(p, '=', (size_t)(eol - p));
		const unsigned char *line = p;

		p = nl ? nl + 1 : end;
		if (!eq)
			continue;
		f->line = line;
		f->line_len = (size_t)(p - line);
		f->key = f->name = line;
		f->key_len = f->name_len = (size_t)(eq - line);
		f->val = eq + 1;
		f->val_len = (size_t)(eol - eq - 1);
		f->kind = CH_MF_OTHER;
		if (f->name_len == KEY_LEN && memcmp(line, CH_META_KEY,
		    KEY_LEN) == 0) {
			f->kind = CH_MF_KEY;
		} else if (f->name_len > HDR_LEN && memcmp(line, CH_META_HDR,
		    HDR_LEN) == 0) {
			f->kind = CH_MF_HEADER;
			f->name += HDR_LEN;
			f->name_len -= HDR_LEN;
		}
		*pos = p;
		return 1;
	}
	*pos = end;
	return 0;
}

int
ch_meta_lookup(const unsigned char *meta, size_t len, const char *name,
    size_t nl, const unsigned char **val)
{
	const unsigned char *p = meta, *end = meta ? meta + len : meta;
	struct ch_meta_field f;
	int hdr = -1;

	/* The line named as written first (a dead letter's origin, as
	 * %{KEY} always meant; "h.NAME" for a header), else the header
	 * NAME; the first line of each counts. */
	while (ch_meta_next(&p, end, &f)) {
		if (f.key_len == nl && memcmp(f.key, name, nl) == 0) {
			*val = f.val;
			return (int)f.val_len;
		}
		if (hdr < 0 && f.kind == CH_MF_HEADER && f.name_len == nl &&
		    memcmp(f.name, name, nl) == 0) {
			*val = f.val;
			hdr = (int)f.val_len;
		}
	}
	return hdr;
}

size_t
ch_meta_copy_user(const unsigned char *meta, size_t len, unsigned char *dst)
{
	const unsigned char *p = meta, *end = meta ? meta + len : meta;
	struct ch_meta_field f;
	size_t n = 0;

	while (ch_meta_next(&p, end, &f)) {
		if (f.kind == CH_MF_OTHER)
			continue;
		memcpy(dst + n, f.line, f.line_len);
		n += f.line_len;
		if (dst[n - 1] != '\n')	/* the last line, unended */
			dst[n++] = '\n';
	}
	return n;
}

static int
name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
ch_hdr_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > CH_HDR_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!name_char((unsigned char)name[i]))
			return 0;
	return 1;
}

int
ch_hdr_env_name(const unsigned char *name, size_t len, char *env)
{
	if (!ch_hdr_name_valid((const char *)name, len))
		return -1;
	memcpy(env, "CH_HDR_", 7);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];
		env[7 + i] = c == '-' ? '_' : c >= 'a' && c <= 'z' ?
		    (char)(c - 'a' + 'A') : (char)c;
	}
	env[7 + len] = '\0';
	return 0;
}

/* Insert a line "NAME=VALUE\n" at `at`. */
static int
put_line(struct ch_usermeta *m, size_t at, const char *name, size_t nl,
    const char *val, size_t vl, const char *opt, struct ch_error *err)
{
	size_t n = nl + 1 + vl + 1;

	if (m->len + n > CH_META_USER_MAX)
		return ch_err(err, CH_EXIT_USAGE, "%s: the key and headers of a "
		    "record take at most %u bytes (%zu with this one)", opt,
		    CH_META_USER_MAX, m->len + n);
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 256;
		while (cap < m->len + n)
			cap *= 2;
		char *np = realloc(m->p, cap);
		if (!np)
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		m->p = np;
		m->cap = cap;
	}
	memmove(m->p + at + n, m->p + at, m->len - at);
	memcpy(m->p + at, name, nl);
	m->p[at + nl] = '=';
	memcpy(m->p + at + nl + 1, val, vl);
	m->p[at + n - 1] = '\n';
	m->len += n;
	return 0;
}

int
ch_usermeta_key(struct ch_usermeta *m, const char *key, struct ch_error *err)
{
	if (m->have_key)
		return ch_err(err, CH_EXIT_USAGE, "--key: given more than once");
	if (strchr(key, '\n'))
		return ch_err(err, CH_EXIT_USAGE, "--key: a key cannot hold a "
		    "newline");
	if (put_line(m, 0, CH_META_KEY, KEY_LEN, key, strlen(key), "--key",
	    err) < 0)
		return -1;
	m->have_key = 1;
	return 0;
}

int
ch_usermeta_header(struct ch_usermeta *m, const char *arg,
    struct ch_error *err)
{
	const char *eq = strchr(arg, '=');
	size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
	char env[CH_HDR_ENV_MAX], other[CH_HDR_ENV_MAX], name[HDR_LEN +
	    CH_HDR_NAME_MAX];
	const unsigned char *p = (const unsigned char *)m->p;
	const unsigned char *end = m->len ? p + m->len : p;
	struct ch_meta_field f;

	if (!eq)
		return ch_err(err, CH_EXIT_USAGE, "--header '%s': not NAME=VALUE",
		    arg);
	if (ch_hdr_env_name((const unsigned char *)arg, nl, env) < 0)
		return ch_err(err, CH_EXIT_USAGE, "--header '%.*s': a header name "
		    "is 1 to %d letters, digits, '-' or '_'", (int)nl, arg,
		    CH_HDR_NAME_MAX);
	if (strchr(eq + 1, '\n'))
		return ch_err(err, CH_EXIT_USAGE, "--header '%.*s': a value cannot "
		    "hold a newline", (int)nl, arg);
	while (ch_meta_next(&p, end, &f))
		if (f.kind == CH_MF_HEADER &&
		    ch_hdr_env_name(f.name, f.name_len, other) == 0 &&
		    strcmp(env, other) == 0)
			return ch_err(err, CH_EXIT_USAGE, "--header '%.*s': given "
			    "twice (as '%.*s'; names are the same regardless of "
			    "case and of '-' or '_')", (int)nl, arg,
			    (int)f.name_len, (const char *)f.name);
	memcpy(name, CH_META_HDR, HDR_LEN);
	memcpy(name + HDR_LEN, arg, nl);
	return put_line(m, m->len, name, HDR_LEN + nl, eq + 1, strlen(eq + 1),
	    "--header", err);
}

void
ch_usermeta_free(struct ch_usermeta *m)
{
	free(m->p);
	memset(m, 0, sizeof *m);
}
