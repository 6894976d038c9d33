/*
 * fuzz_parse.c - the value grammars of parse.h (SIZE, DUR, TIME, COUNT),
 * the --format checker and subscriber names, on one NUL-terminated string,
 * then the human renderings of whatever parsed.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/config.h"	/* not the autoconf config.h */
#include "output.h"
#include "parse.h"
#include "subscriber.h"

/* 2026-11-22T10:00:00Z, so TIME durations ("1h") have a fixed meaning. */
#define NOW_NS 1795341600000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ch_error err;
	char buf[128];
	char *s;
	uint64_t u;
	int64_t ns;
	int iv;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (ch_parse_size(s, &u, &err) == 0)
		ch_format_size(buf, sizeof buf, u);
	if (ch_parse_duration(s, &ns, &err) == 0) {
		if (ns < 0)
			abort();	/* a duration is never negative */
		ch_format_duration(buf, sizeof buf, ns);
	}
	if (ch_parse_time(s, NOW_NS, &ns, &err) == 0) {
		ch_format_time(buf, sizeof buf, ns, 0);
		ch_format_time(buf, sizeof buf, ns, 1);
		int64_t ago;
		if (!__builtin_sub_overflow(NOW_NS, ns, &ago))
			ch_format_duration(buf, sizeof buf, ago);
	}
	if (ch_parse_u64(s, &u, &err) == 0) {
		/* Round trip: digits without leading zeros print back the same. */
		char back[32];
		ch_format_size(buf, sizeof buf, u);
		snprintf(back, sizeof back, "%llu", (unsigned long long)u);
		if (s[0] != '0' && strcmp(back, s) != 0)
			abort();
	}
	(void)ch_parse_count(s, 1, 1000000, &u, &err);
	(void)ch_parse_sync(s, &iv, &err);
	(void)ch_parse_on_full(s, &iv, &err);
	(void)ch_format_check(s, &err);
	(void)ch_sub_check_name(s, &err);
	free(s);
	return 0;
}
