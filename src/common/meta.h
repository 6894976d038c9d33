/*
 * meta.h - a record's metadata: "NAME=VALUE\n" lines (channel(5), RECORD
 * FORMAT), and the key and headers a publisher gives a record in it.
 *
 * The key is the line "key=KEY"; header NAME is the line "h.NAME=VALUE".
 * A header name is 1 to 64 letters, digits, '-' and '_', never a dot, so
 * no header can be taken for the key, for a dead letter's origin lines
 * (channel, subscriber, offset, ...) or for another header.  Values are
 * any bytes but newline (and NUL, which no argument or environment
 * variable can hold).  The key and headers of one record take at most
 * CH_META_USER_MAX bytes of metadata, which leaves room for a dead
 * letter's origin within the 65535 bytes a record's metadata may take.
 */
#ifndef CH_META_H
#define CH_META_H

#include <stddef.h>

#include "error.h"

#define CH_META_KEY "key"
#define CH_META_HDR "h."
#define CH_HDR_NAME_MAX 64
#define CH_META_USER_MAX 57344u
/* "CH_HDR_" and the longest name, and its NUL. */
#define CH_HDR_ENV_MAX (7 + CH_HDR_NAME_MAX + 1)

enum { CH_MF_OTHER, CH_MF_KEY, CH_MF_HEADER };

/* One metadata line: key is what comes before its '=', name the same
 * but for a header, the header's name (without "h."). */
struct ch_meta_field {
	int kind;
	const unsigned char *key, *name, *val;
	size_t key_len, name_len, val_len;
	const unsigned char *line;	/* the whole line, newline included */
	size_t line_len;		/* (if there is one) */
};

/* The next line of metadata at *pos (lines without '=' are skipped):
 * 1 and f filled, or 0 at end. */
int ch_meta_next(const unsigned char **pos, const unsigned char *end,
    struct ch_meta_field *f);

/* The value of the line NAME (nl bytes, as written), or else of the
 * header NAME: its length, or -1 if there is neither. */
int ch_meta_lookup(const unsigned char *meta, size_t len, const char *name,
    size_t nl, const unsigned char **val);

/* Copy the key and header lines of meta[0..len) to dst (room for len + 1
 * bytes), each ending in a newline; returns the bytes copied. */
size_t ch_meta_copy_user(const unsigned char *meta, size_t len,
    unsigned char *dst);

/* 1 if name[0..len) is a valid header name. */
int ch_hdr_name_valid(const char *name, size_t len);

/* The environment variable a handler gets header NAME in: "CH_HDR_" and
 * the name, upper case, '-' as '_'.  env has CH_HDR_ENV_MAX bytes; 0, or
 * -1 if the name is not valid. */
int ch_hdr_env_name(const unsigned char *name, size_t len, char *env);

/* A record's key and headers as metadata, built from a publisher's
 * options. */
struct ch_usermeta {
	char *p;
	size_t len, cap;
	int have_key;
};

/* Set the key (at most once); add header "NAME=VALUE" (the key first,
 * then headers in the order added).  Refuse a newline in either, a bad
 * or repeated name (names that give the same environment variable are
 * the same), and more than CH_META_USER_MAX bytes in all, with a message
 * that names the option. */
int ch_usermeta_key(struct ch_usermeta *m, const char *key,
    struct ch_error *err);
int ch_usermeta_header(struct ch_usermeta *m, const char *arg,
    struct ch_error *err);
void ch_usermeta_free(struct ch_usermeta *m);

#endif
