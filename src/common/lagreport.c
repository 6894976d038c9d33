/* lagreport.c - chlag's output formats (see lagreport.h). */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lagexplain.h"
#include "lagreport.h"
#include "output.h"
#include "parse.h"

#define NCOLS 10

static const char *heads[NCOLS] = { "CHANNEL", "SUBSCRIBER", "OFFSET", "END",
    "LAG", "RECORDS", "AGE", "COMMITTED", "STATUS", "TREND" };

static void
spark(char *buf, size_t len, const struct ch_lagrow *r, int utf8)
{
	static const char *blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
	    "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = "_.-~=+*#";
	uint64_t max = 0;
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < r->nhist; i++)
		if (r->hist_lag[i] > max)
			max = r->hist_lag[i];
	for (int i = 0; i < r->nhist && o + 4 < len; i++) {
		int lvl = max ? (int)(r->hist_lag[i] * 7 / max) : 0;
		if (utf8) {
			size_t l = strlen(blocks[lvl]);
			memcpy(buf + o, blocks[lvl], l);
			o += l;
		} else {
			buf[o++] = ascii[lvl];
		}
	}
	buf[o] = '\0';
}

/* Display width of a cell (sparklines are 3 bytes per column). */
static size_t
width(const char *s, int col, int utf8)
{
	return col == 9 && utf8 ? strlen(s) / 3 : strlen(s);
}

/* The text of a cell: names as they are (a channel path runs to PATH_MAX,
 * a subscriber name to 128 bytes), the rest formatted into cells. */
static const char *
cell(const struct ch_lagrow *r, char (*cells)[96], int c)
{
	return c == 0 ? r->channel : c == 1 ? r->subscriber : cells[c];
}

/* --explain under a table row: each line indented by 2 spaces. */
static void
explain_lines(FILE *f, const struct ch_lagrow *r, int64_t now)
{
	char *text = ch_lag_explain(r, now);

	if (!text) {
		fputs("  (no explanation: out of memory)\n", f);
		return;
	}
	for (char *l = text, *nl; l; l = nl) {
		nl = strchr(l, '\n');
		if (nl)
			*nl++ = '\0';
		fprintf(f, "  %s\n", l);
	}
	free(text);
}

void
ch_lag_table(FILE *f, const struct ch_lagrow *rows, size_t n,
    const struct ch_lagview *v)
{
	char (*cells)[NCOLS][96] = calloc(n ? n : 1, sizeof *cells);
	size_t w[NCOLS];
	int ncols = v->spark ? NCOLS : NCOLS - 1;

	if (!cells)
		return;
	for (int c = 0; c < NCOLS; c++)
		w[c] = strlen(heads[c]);
	for (size_t i = 0; i < n; i++) {
		const struct ch_lagrow *r = &rows[i];
		char (*row)[96] = cells[i];
		if (ch_lagrow_blank(r)) {
			for (int c = 2; c < 8; c++)
				snprintf(row[c], 96, "-");
			snprintf(row[8], 96, "%s", ch_status_name(r->status));
			row[9][0] = '\0';
		} else if (r->status == CH_ST_INVALID) {
			/* What the file says, where the channel ends; no lag
			 * can be told from them. */
			snprintf(row[2], 96, "%" PRIu64, r->offset);
			snprintf(row[3], 96, "%" PRIu64, r->end);
			for (int c = 4; c < 7; c++)
				snprintf(row[c], 96, "-");
			ch_format_duration(row[7], 90, r->idle_ns);
			strcat(row[7], " ago");
			snprintf(row[8], 96, "INVALID");
			row[9][0] = '\0';
		} else {
			snprintf(row[2], 96, "%" PRIu64, r->offset);
			snprintf(row[3], 96, "%" PRIu64, r->end);
			ch_format_size(row[4], 96, r->lag_bytes);
			snprintf(row[5], 96, "%" PRIu64, r->lag_records);
			if (r->lag_records)
				ch_format_duration(row[6], 96, r->age_ns);
			else
				snprintf(row[6], 96, "-");
			ch_format_duration(row[7], 90, r->idle_ns);
			strcat(row[7], " ago");
			snprintf(row[8], 96, "%s", ch_status_name(r->status));
			spark(row[9], 96, r, v->utf8);
		}
		for (int c = 0; c < NCOLS; c++)
			if (width(cell(r, row, c), c, v->utf8) > w[c])
				w[c] = width(cell(r, row, c), c, v->utf8);
	}
	for (int c = 0; c < ncols; c++) {
		int right = c >= 2 && c <= 5;
		if (c + 1 == ncols)
			fprintf(f, "%s\n", heads[c]);
		else
			fprintf(f, right ? "%*s  " : "%-*s  ", (int)w[c], heads[c]);
	}
	for (size_t i = 0; i < n; i++) {
		for (int c = 0; c < ncols; c++) {
			const char *s = cell(&rows[i], cells[i], c);
			int right = c >= 2 && c <= 5;
			int pad = (int)(w[c] - width(s, c, v->utf8));
			if (right)
				fprintf(f, "%*s", pad, "");
			if (c == 8 && v->color) {
				int st = rows[i].status;
				fprintf(f, "\033[%sm%s\033[0m", st == CH_ST_OK ? "32" :
				    st == CH_ST_WARN || st == CH_ST_RETRY ? "33" :
				    "31", s);
			} else {
				fputs(s, f);
			}
			if (!right && c + 1 < ncols)
				fprintf(f, "%*s", pad, "");
			fputs(c + 1 < ncols ? "  " : "\n", f);
		}
		if (rows[i].status == CH_ST_ERROR ||
		    rows[i].status == CH_ST_INVALID)
			fprintf(f, "  (%s)\n", rows[i].error);
		else if (rows[i].retry.records) {
			char note[256];
			ch_lag_retry_note(&rows[i], v->now, note, sizeof note);
			fprintf(f, "  (%s)\n", note);
		}
		if (v->explain)
			explain_lines(f, &rows[i], v->now);
	}
	free(cells);
}

void
ch_lag_retry_note(const struct ch_lagrow *r, int64_t now, char *buf,
    size_t len)
{
	const struct ch_retry *rt = &r->retry;
	char st[32], ago[32], in[32], recs[48] = "";

	ch_retry_status(rt, st, sizeof st);
	ch_format_duration(ago, sizeof ago, ch_age(now, rt->last));
	if (rt->records > 1)
		snprintf(recs, sizeof recs, " (a batch of %llu records)",
		    (unsigned long long)rt->records);
	if (rt->gave_up) {
		snprintf(buf, len, "the handler failed %llu time%s on the "
		    "record at offset %llu%s, the last %s ago (%s), and chsub "
		    "gave up: it exits 69 until the record gets more attempts",
		    (unsigned long long)rt->attempts, ch_plural(rt->attempts),
		    (unsigned long long)rt->offset, recs, ago, st);
		return;
	}
	int64_t left = ch_age(rt->next, now);	/* 0 when due */
	ch_format_duration(in, sizeof in, left > 0 ? left : 0);
	snprintf(buf, len, "retrying: the handler failed %llu time%s on the "
	    "record at offset %llu%s, the last %s ago (%s); attempt %llu %s%s",
	    (unsigned long long)rt->attempts, ch_plural(rt->attempts),
	    (unsigned long long)rt->offset,
	    recs, ago, st, (unsigned long long)rt->attempts + 1,
	    left > 0 ? "in " : "due now", left > 0 ? in : "");
}

static void
json_str(FILE *f, const char *s)
{
	struct ch_buf b = { 0 };

	if (ch_json_string(&b, s, strlen(s)) == 0)
		fwrite(b.p, 1, b.len, f);
	ch_buf_free(&b);
}

void
ch_lag_json(FILE *f, const struct ch_lagrow *rows, size_t n, int explain,
    int64_t now)
{
	char t[40];

	fputs("[", f);
	for (size_t i = 0; i < n; i++) {
		const struct ch_lagrow *r = &rows[i];
		fputs(i ? ",\n {" : "\n {", f);
		fputs("\"channel\":", f);
		json_str(f, r->channel);
		if (r->channel_error) {
			fputs(",\"status\":\"ERROR\",\"error\":", f);
			json_str(f, r->error);
			fputs("}", f);
			continue;
		}
		fputs(",\"subscriber\":", f);
		json_str(f, r->subscriber);
		fprintf(f, ",\"status\":\"%s\"", ch_status_name(r->status));
		if (ch_lagrow_blank(r)) {
			fputs(",\"error\":", f);
			json_str(f, r->error);
		} else if (r->status == CH_ST_INVALID) {
			fputs(",\"error\":", f);
			json_str(f, r->error);
			ch_format_time(t, sizeof t, r->last_commit, 0);
			fprintf(f, ",\"offset\":%" PRIu64 ",\"end\":%" PRIu64
			    ",\"last_commit\":\"%s\",\"idle_seconds\":%.3f",
			    r->offset, r->end, t, r->idle_ns / 1e9);
		} else {
			ch_format_time(t, sizeof t, r->last_commit, 0);
			fprintf(f, ",\"offset\":%" PRIu64 ",\"end\":%" PRIu64
			    ",\"lag_bytes\":%" PRIu64 ",\"lag_records\":%" PRIu64
			    ",\"age_seconds\":%.3f,\"last_commit\":\"%s\""
			    ",\"idle_seconds\":%.3f", r->offset, r->end,
			    r->lag_bytes, r->lag_records, r->age_ns / 1e9, t,
			    r->idle_ns / 1e9);
		}
		fprintf(f, ",\"running\":%s", r->pid ? "true" : "false");
		if (r->pid)
			fprintf(f, ",\"pid\":%ld", (long)r->pid);
		if (r->retry.records) {
			char st[32];
			ch_format_time(t, sizeof t, r->retry.last, 0);
			fprintf(f, ",\"retry\":{\"offset\":%" PRIu64 ",\"records\":%"
			    PRIu64 ",\"attempts\":%" PRIu64 ",\"last_failure\":\"%s\""
			    ",\"last_status\":\"%s\"", r->retry.offset,
			    r->retry.records, r->retry.attempts, t,
			    ch_retry_status(&r->retry, st, sizeof st));
			if (r->retry.gave_up) {
				fputs(",\"next_attempt\":null", f);
			} else {
				ch_format_time(t, sizeof t, r->retry.next, 0);
				fprintf(f, ",\"next_attempt\":\"%s\"", t);
			}
			fputs("}", f);
		}
		if (explain) {
			char *text = ch_lag_explain(r, now);
			fputs(",\"explain\":", f);
			if (text)
				json_str(f, text);
			else
				fputs("null", f);
			free(text);
		}
		fputs("}", f);
	}
	fputs(n ? "\n]\n" : "]\n", f);
}

static int
yaml_write(void *data, unsigned char *buf, size_t len)
{
	return fwrite(buf, 1, len, data) == len;
}

/* libyaml refuses invalid UTF-8 (the whole report would fail), and a
 * path, so a channel or an error naming it, may be any bytes: as the JSON
 * writer does, an invalid byte becomes U+FFFD. */
static int
emit_scalar(yaml_emitter_t *em, const char *v, int quoted,
    yaml_scalar_style_t style)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = strlen(v);
	struct ch_buf b = { 0 };
	yaml_event_t ev;
	int ok;

	if (!ch_utf8_valid(s, n)) {
		for (size_t i = 0; i < n; ) {
			size_t l = ch_utf8_len(s + i, n - i);
			if (ch_buf_put(&b, l ? v + i : "\xef\xbf\xbd",
			    l ? l : 3) < 0) {
				ch_buf_free(&b);
				return -1;
			}
			i += l ? l : 1;
		}
		v = b.p;
		n = b.len;
	}
	ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v,
	    (int)n, !quoted, quoted, style) && yaml_emitter_emit(em, &ev);
	ch_buf_free(&b);
	return ok ? 0 : -1;
}

static int
ev_scalar(yaml_emitter_t *em, const char *v, int quoted)
{
	return emit_scalar(em, v, quoted,
	    quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
}

static int
kv(yaml_emitter_t *em, const char *k, const char *v, int quoted)
{
	return ev_scalar(em, k, 0) < 0 || ev_scalar(em, v, quoted) < 0 ? -1 : 0;
}

/* retry: {offset, records, attempts, last_failure, last_status,
 * next_attempt (null once chsub gave up)} */
static int
yaml_retry(yaml_emitter_t *em, const struct ch_retry *r)
{
	yaml_event_t ev;
	char b[64];

	if (ev_scalar(em, "retry", 0) < 0 ||
	    !yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_BLOCK_MAPPING_STYLE) || !yaml_emitter_emit(em, &ev))
		return -1;
	struct { const char *k; uint64_t v; } nums[] = {
		{ "offset", r->offset }, { "records", r->records },
		{ "attempts", r->attempts },
	};
	for (size_t k = 0; k < 3; k++) {
		snprintf(b, sizeof b, "%" PRIu64, nums[k].v);
		if (kv(em, nums[k].k, b, 0) < 0)
			return -1;
	}
	ch_format_time(b, sizeof b, r->last, 0);
	if (kv(em, "last_failure", b, 1) < 0 ||
	    kv(em, "last_status", ch_retry_status(r, b, sizeof b), 1) < 0)
		return -1;
	if (r->gave_up) {
		if (kv(em, "next_attempt", "null", 0) < 0)
			return -1;
	} else {
		ch_format_time(b, sizeof b, r->next, 0);
		if (kv(em, "next_attempt", b, 1) < 0)
			return -1;
	}
	if (!yaml_mapping_end_event_initialize(&ev) ||
	    !yaml_emitter_emit(em, &ev))
		return -1;
	return 0;
}

/* When the subscriber last committed and how long ago: the rows that
 * could read an offset file (not ERROR ones) have both. */
static int
kv_commit(yaml_emitter_t *em, const struct ch_lagrow *r)
{
	char b[64];

	ch_format_time(b, sizeof b, r->last_commit, 0);
	if (kv(em, "last_commit", b, 1) < 0)
		return -1;
	snprintf(b, sizeof b, "%.3f", r->idle_ns / 1e9);
	return kv(em, "idle_seconds", b, 0);
}

/* KEY: |- a literal block, so that the lines read as they are. */
static int
kv_literal(yaml_emitter_t *em, const char *k, const char *v)
{
	return ev_scalar(em, k, 0) < 0 ||
	    emit_scalar(em, v, 1, YAML_LITERAL_SCALAR_STYLE) < 0 ? -1 : 0;
}

int
ch_lag_yaml(FILE *f, const struct ch_lagrow *rows, size_t n, int explain,
    int64_t now)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	char b[64];
	int rc = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, yaml_write, f);
	yaml_emitter_set_unicode(&em, 1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_BLOCK_SEQUENCE_STYLE) || !yaml_emitter_emit(&em, &ev))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct ch_lagrow *r = &rows[i];
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_MAPPING_STYLE) || !yaml_emitter_emit(&em, &ev))
			goto out;
		if (r->channel_error) {
			if (kv(&em, "channel", r->channel, 1) < 0 ||
			    kv(&em, "status", "ERROR", 1) < 0 ||
			    kv(&em, "error", r->error, 1) < 0 ||
			    !yaml_mapping_end_event_initialize(&ev) ||
			    !yaml_emitter_emit(&em, &ev))
				goto out;
			continue;
		}
		if (kv(&em, "channel", r->channel, 1) < 0 ||
		    kv(&em, "subscriber", r->subscriber, 1) < 0 ||
		    kv(&em, "status", ch_status_name(r->status), 1) < 0)
			goto out;
		if (ch_lagrow_blank(r)) {
			if (kv(&em, "error", r->error, 1) < 0)
				goto out;
		} else if (r->status == CH_ST_INVALID) {
			if (kv(&em, "error", r->error, 1) < 0)
				goto out;
			snprintf(b, sizeof b, "%" PRIu64, r->offset);
			if (kv(&em, "offset", b, 0) < 0)
				goto out;
			snprintf(b, sizeof b, "%" PRIu64, r->end);
			if (kv(&em, "end", b, 0) < 0)
				goto out;
			if (kv_commit(&em, r) < 0)
				goto out;
		} else {
			struct { const char *k; uint64_t v; } nums[] = {
				{ "offset", r->offset }, { "end", r->end },
				{ "lag_bytes", r->lag_bytes },
				{ "lag_records", r->lag_records },
			};
			for (size_t k = 0; k < 4; k++) {
				snprintf(b, sizeof b, "%" PRIu64, nums[k].v);
				if (kv(&em, nums[k].k, b, 0) < 0)
					goto out;
			}
			snprintf(b, sizeof b, "%.3f", r->age_ns / 1e9);
			if (kv(&em, "age_seconds", b, 0) < 0)
				goto out;
			if (kv_commit(&em, r) < 0)
				goto out;
		}
		if (kv(&em, "running", r->pid ? "true" : "false", 0) < 0)
			goto out;
		if (r->pid) {
			snprintf(b, sizeof b, "%ld", (long)r->pid);
			if (kv(&em, "pid", b, 0) < 0)
				goto out;
		}
		if (r->retry.records && yaml_retry(&em, &r->retry) < 0)
			goto out;
		if (explain) {
			char *text = ch_lag_explain(r, now);
			int bad = !text || kv_literal(&em, "explain", text) < 0;
			free(text);
			if (bad)
				goto out;
		}
		if (!yaml_mapping_end_event_initialize(&ev) ||
		    !yaml_emitter_emit(&em, &ev))
			goto out;
	}
	if (!yaml_sequence_end_event_initialize(&ev) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_document_end_event_initialize(&ev, 1) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_stream_end_event_initialize(&ev) ||
	    !yaml_emitter_emit(&em, &ev))
		goto out;
	rc = 0;
out:
	yaml_emitter_delete(&em);
	return rc;
}

/* A Prometheus label value.  The format wants UTF-8 (the node exporter
 * refuses a whole file over one bad byte), and a path may be any bytes:
 * an invalid byte becomes the text \xHH and a backslash \\, so that
 * distinct paths stay distinct labels (U+FFFD for both of two paths that
 * differ in an invalid byte made a duplicate series).  Then the format's
 * own escapes: backslash, quote and newline. */
static void
label(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	for (size_t i = 0; i < n; ) {
		size_t l = ch_utf8_len(s + i, n - i);
		if (l == 0) {
			fprintf(f, "\\\\x%02x", s[i]);	/* \xHH, escaped */
			i++;
			continue;
		}
		if (s[i] == '\\')
			fputs("\\\\\\\\", f);	/* \\, escaped */
		else if (s[i] == '"')
			fputs("\\\"", f);
		else if (s[i] == '\n')
			fputs("\\n", f);
		else
			fwrite(s + i, 1, l, f);
		i += l;
	}
}

static void
metric(FILE *f, const char *name, const struct ch_lagrow *r,
    const char *extra, double v)
{
	fprintf(f, "%s{channel=\"", name);
	label(f, r->channel);
	fputs("\",subscriber=\"", f);
	label(f, r->subscriber);
	fprintf(f, "\"%s} %.17g\n", extra ? extra : "", v);
}

void
ch_lag_prometheus(FILE *f, const struct ch_lagrow *rows, size_t n,
    const char *const *channels, const unsigned char *up, size_t nch,
    int64_t now)
{
	static const struct {
		const char *name, *help;
	} m[] = {
		{ "chlag_lag_records", "Records published but not yet consumed." },
		{ "chlag_lag_bytes", "Bytes published but not yet consumed." },
		{ "chlag_lag_seconds", "Age of the oldest unconsumed record." },
		{ "chlag_offset_bytes",
		    "Committed offset of the subscriber (a byte position)." },
		{ "chlag_end_offset_bytes",
		    "Offset the next record will get (a byte position)." },
		{ "chlag_last_commit_timestamp_seconds",
		    "Time of the subscriber's last commit." },
		{ "chlag_running", "1 if a chsub is running for the subscriber." },
		{ "chlag_status", "1 for the subscriber's current status." },
		{ "chlag_retry_attempts", "Failed attempts of the handler on the "
		    "record at the subscriber's offset (0: none)." },
		{ "chlag_retry_next_attempt_timestamp_seconds",
		    "When the handler tries that record again." },
	};

	for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", m[k].name,
		    m[k].help, m[k].name);
		for (size_t i = 0; i < n; i++) {
			const struct ch_lagrow *r = &rows[i];
			/* No lag from an unreadable or untrusted offset
			 * file; nothing at all from an unreadable one. */
			if ((ch_lagrow_blank(r) && (k < 6 || k > 7)) ||
			    (r->status == CH_ST_INVALID && k < 3))
				continue;
			switch (k) {
			case 0: metric(f, m[k].name, r, NULL, (double)r->lag_records); break;
			case 1: metric(f, m[k].name, r, NULL, (double)r->lag_bytes); break;
			case 2: metric(f, m[k].name, r, NULL, r->age_ns / 1e9); break;
			case 3: metric(f, m[k].name, r, NULL, (double)r->offset); break;
			case 4: metric(f, m[k].name, r, NULL, (double)r->end); break;
			case 5: metric(f, m[k].name, r, NULL, r->last_commit / 1e9); break;
			case 6: metric(f, m[k].name, r, NULL, r->pid ? 1 : 0); break;
			case 7:
				for (int s = 0; s < CH_ST_COUNT; s++) {
					char extra[32];
					snprintf(extra, sizeof extra,
					    ",status=\"%s\"", ch_status_name(s));
					metric(f, m[k].name, r, extra,
					    r->status == s);
				}
				break;
			case 8:
				metric(f, m[k].name, r, NULL,
				    (double)r->retry.attempts);
				break;
			case 9:
				if (r->retry.records && !r->retry.gave_up)
					metric(f, m[k].name, r, NULL,
					    r->retry.next / 1e9);
				break;
			}
		}
	}
	/* Per channel, so that the reports of several chlag runs can sit side
	 * by side in one textfile directory without a duplicate series.  A
	 * channel that cannot be read has no rows: without chlag_channel_up
	 * 0 nothing would tell it from one that has no subscribers.  It
	 * keeps its scrape time, which says when that was found out. */
	fprintf(f, "# HELP chlag_channel_up 1 if chlag could read the channel, "
	    "0 if not.\n# TYPE chlag_channel_up gauge\n");
	for (size_t c = 0; c < nch; c++) {
		fputs("chlag_channel_up{channel=\"", f);
		label(f, channels[c]);
		fprintf(f, "\"} %d\n", up[c] ? 1 : 0);
	}
	fprintf(f, "# HELP chlag_scrape_timestamp_seconds When chlag read, or "
	    "tried to read, the channel.\n"
	    "# TYPE chlag_scrape_timestamp_seconds gauge\n");
	for (size_t c = 0; c < nch; c++) {
		fputs("chlag_scrape_timestamp_seconds{channel=\"", f);
		label(f, channels[c]);
		fprintf(f, "\"} %.3f\n", now / 1e9);
	}
}
