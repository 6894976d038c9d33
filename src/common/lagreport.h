/*
 * lagreport.h - chlag's output formats: an aligned table (with colour and a
 * lag sparkline on a terminal), JSON, YAML (libyaml's emitter; names always
 * double-quoted, so "007" or "no" stay strings), the Prometheus text
 * exposition format, and a Nagios status line with performance data.
 */
#ifndef CH_LAGREPORT_H
#define CH_LAGREPORT_H

#include <stdio.h>

#include "lag.h"

struct ch_lagview {
	int color;		/* colour the status column */
	int spark;		/* add a TREND sparkline column */
	int utf8;		/* sparkline with block characters */
	int explain;		/* --explain lines under each row */
	int64_t now;
};

void ch_lag_table(FILE *f, const struct ch_lagrow *rows, size_t n,
    const struct ch_lagview *v);
/* A retrying row, in words: attempts, the last failure, the next attempt. */
void ch_lag_retry_note(const struct ch_lagrow *r, int64_t now, char *buf,
    size_t len);
/* explain: an "explain" field in each row (ch_lag_explain at now). */
void ch_lag_json(FILE *f, const struct ch_lagrow *rows, size_t n, int explain,
    int64_t now);
int ch_lag_yaml(FILE *f, const struct ch_lagrow *rows, size_t n, int explain,
    int64_t now);
/* channels: every channel of the report, read or not (no duplicates);
 * up[i]: whether channels[i] could be read. */
void ch_lag_prometheus(FILE *f, const struct ch_lagrow *rows, size_t n,
    const char *const *channels, const unsigned char *up, size_t nch,
    int64_t now);

#endif
