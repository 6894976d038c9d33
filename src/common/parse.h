/*
 * parse.h - the value grammars shared by the command line and channel.yaml.
 *
 * SIZE  plain bytes, or a number with K M G T / KiB MiB GiB TiB (1024-based)
 *       or KB MB GB TB (1000-based), as dd(1).  "1.5M" is allowed.
 * DUR   one or more NUMBER UNIT pairs with UNIT ms s m h d ("90s", "1h30m",
 *       "1.5s"); a bare number means seconds.
 * TIME  ISO 8601 ("2026-11-22T10:00:00Z", "...+01:00", "2026-11-22 10:00",
 *       "2026-11-22", local time without a zone), "@EPOCH[.frac]", or a DUR
 *       meaning that long before now.
 * COUNT an unsigned decimal integer.
 *
 * On failure each returns -1 and fills err with CH_EXIT_USAGE and a message
 * naming the bad value; callers prefix the option or config key.
 */
#ifndef CH_PARSE_H
#define CH_PARSE_H

#include <stdint.h>

#include "error.h"

int ch_parse_size(const char *s, uint64_t *out, struct ch_error *err);
int ch_parse_duration(const char *s, int64_t *out_ns, struct ch_error *err);
/* -1 if s is not a TIME, -2 if it is one but beyond int64_t nanoseconds. */
int ch_parse_time(const char *s, int64_t now_ns, int64_t *out_ns,
    struct ch_error *err);
int ch_parse_u64(const char *s, uint64_t *out, struct ch_error *err);
/* A COUNT that must fit in [min, max]. */
int ch_parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    struct ch_error *err);

/* Human renderings for reports: "1.5 MiB", "3m12s", "2026-11-22T10:00:00Z". */
void ch_format_size(char *buf, int len, uint64_t bytes);
void ch_format_duration(char *buf, int len, int64_t ns);

/* How long before `now` the time `then` (from a record or an offset file)
 * was: never negative, since a time ahead of the clock (stamped before
 * the clock was stepped back) is not in the future of anything; and
 * saturated, since a file may hold any 64-bit time. */
int64_t ch_age(int64_t now, int64_t then);
/* RFC 3339 UTC; with nanos != 0, nine fractional digits. */
void ch_format_time(char *buf, int len, int64_t ns, int nanos);

#endif
