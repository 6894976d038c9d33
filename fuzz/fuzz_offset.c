/*
 * fuzz_offset.c - a subscriber's offset file: ch_offset_parse, then what
 * the tools do with its content (format it back, advance it, evaluate
 * chlag's status rules on its history).
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lag.h"
#include "lagexplain.h"
#include "lagreport.h"
#include "subscriber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ch_offset o, back;
	struct ch_lag_opts lo;
	struct ch_error err;
	char buf[4096];
	size_t n;
	int64_t now;

	/* ch_sub_read reads at most 64 KiB. */
	if (size > 65536)
		return 0;
	if (ch_offset_parse((const char *)data, size, &o, &err) < 0)
		return 0;
	if (o.nhist < 0 || o.nhist > CH_HISTORY_MAX)
		abort();

	/* Whatever parses formats back to the same content (ch_sub_write
	 * uses a 4096-byte buffer). */
	n = ch_offset_format(&o, buf, sizeof buf);
	if (n == 0 || n >= sizeof buf)
		abort();
	/* Into a buffer too small: "does not fit", never a longer length. */
	char small[200];
	size_t sn = ch_offset_format(&o, small, sizeof small);
	if (sn >= sizeof small || (sn && (sn != n || memcmp(small, buf, n))))
		abort();
	if (ch_offset_parse(buf, n, &back, &err) < 0 ||
	    memcmp(&o, &back, sizeof o) != 0)
		abort();

	/* chlag on it, now and at the extremes of time. */
	ch_lag_defaults(&lo);
	for (int i = 0; i < 3; i++) {
		now = i == 0 ? o.time : i == 1 ? INT64_MAX : INT64_MIN;
		struct ch_lagrow row = { .channel = "c", .pid = i };
		row.status = ch_lag_status(&o, o.offset, o.seq + 1,
		    now - (now > 0 ? 1 : 0), i, now, &lo, &row.why);
		if (row.status < CH_ST_OK || row.status > CH_ST_FAILED ||
		    row.why.rule < 1 || row.why.rule > 8)
			abort();
		/* --explain says it in words, whatever the numbers. */
		if (ch_offset_retry(&o))
			row.retry = o.retry;
		char *text = ch_lag_explain(&row, now), note[256];
		if (!text)
			abort();
		free(text);
		if (row.retry.records)
			ch_lag_retry_note(&row, now, note, sizeof note);
		lo.allowed_lag = UINT64_MAX;
		lo.window_ns = INT64_MAX;
		lo.stall_ns = 0;
	}

	/* A commit on top of it (chsub, choffset). */
	back = o;
	ch_offset_advance(&back, o.offset + 1, o.seq + 1, o.time, o.offset + 1,
	    o.seq + 1);
	ch_offset_advance(&back, o.offset, o.seq, INT64_MAX, UINT64_MAX,
	    UINT64_MAX);
	ch_offset_advance(&back, 0, 0, INT64_MIN, 0, 0);
	if (back.nhist < 1 || back.nhist > CH_HISTORY_MAX)
		abort();
	n = ch_offset_format(&back, buf, sizeof buf);
	if (n == 0 || ch_offset_parse(buf, n, &o, &err) < 0)
		abort();
	return 0;
}
