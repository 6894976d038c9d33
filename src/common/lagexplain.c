/* lagexplain.c - a row's status in words, for chlag --explain (see
 * lagexplain.h). */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "lagexplain.h"
#include "parse.h"

/* A duration as the table shows them: "1m30s". */
static const char *
dur(char *buf, int64_t ns)
{
	ch_format_duration(buf, 32, ns < 0 ? 0 : ns);
	return buf;
}

/* When a sample was taken: "4m2s ago", "now", or ahead of the clock. */
static void
when(FILE *f, int64_t t, int64_t now)
{
	char b[32];

	if (t == now)
		fputs("now", f);
	else if (t > now)
		fprintf(f, "%s ahead of the clock", dur(b, ch_age(t, now)));
	else
		fprintf(f, "%s ago", dur(b, ch_age(now, t)));
}

/* Rules 4 to 8: are the last commit and the oldest unread record older
 * than stop_after? */
static void
stuck_words(FILE *f, const struct ch_lag_why *w)
{
	char a[32], b[32], c[32];

	dur(c, w->stop_after);
	fprintf(f, "last commit %s ago (%s stop_after %s), oldest unread record "
	    "%s old (%s stop_after %s)", dur(a, w->idle_ns),
	    w->idle_ns > w->stop_after ? "over" : "within", c,
	    dur(b, w->age_ns), w->age_ns > w->stop_after ? "over" : "within",
	    c);
}

/* Rule 8: why the lag does not count as growing (rule 7). */
static void
not_growing(FILE *f, const struct ch_lag_why *w)
{
	const struct ch_lag_sample *s = w->samples, *last;
	int n = w->nsamples;

	last = &s[n - 1];
	if (n < 3) {
		fprintf(f, "fewer than 3 samples to tell a trend (%d)", n);
		return;
	}
	if (last->offset <= s[0].offset) {
		fprintf(f, "the offset did not advance over the samples "
		    "(%" PRIu64 " then, %" PRIu64 " now)", s[0].offset,
		    last->offset);
		return;
	}
	if (last->lag <= s[0].lag) {
		fprintf(f, "the lag did not grow over the samples (%" PRIu64
		    " records then, %" PRIu64 " now)", s[0].lag, last->lag);
		return;
	}
	for (int i = 1; i < n; i++)
		if (s[i].lag < s[i - 1].lag) {
			fprintf(f, "the lag shrank from %" PRIu64 " to %" PRIu64
			    " records between sample %d and %d", s[i - 1].lag,
			    s[i].lag, i, i + 1);
			return;
		}
	for (int i = 0; i + 1 < n; i++)
		if (s[i].lag <= w->opts.allowed_lag) {
			fprintf(f, "it was caught up within the window (lag %"
			    PRIu64 " at sample %d, within --allowed-lag %" PRIu64
			    ")", s[i].lag, i + 1, w->opts.allowed_lag);
			return;
		}
}

static void
rule_words(FILE *f, const struct ch_lagrow *r, int64_t now)
{
	const struct ch_lag_why *w = &r->why;
	const struct ch_retry *rt = &r->retry;
	char a[32], b[32], c[32], d[32];

	fprintf(f, "%s by rule %d: ", ch_status_name(r->status), w->rule);
	switch (w->rule) {
	case 1: {
		const struct ch_lag_sample *to = &w->samples[w->moved_back];
		fprintf(f, "the offset went back from %" PRIu64 " (sample %d) "
		    "to %" PRIu64 " (sample %d, ", to[-1].offset, w->moved_back,
		    to->offset, w->moved_back + 1);
		when(f, to->time, now);
		fprintf(f, "), within --window %s; REWIND lasts until that "
		    "sample is older than the window", dur(a, w->opts.window_ns));
		break;
	}
	case 2:
		fprintf(f, "the handler failed %" PRIu64 " time%s on the record "
		    "at offset %" PRIu64 " and chsub gave up on it (no attempt "
		    "left, no dead-letter channel)", rt->attempts,
		    ch_plural(rt->attempts), rt->offset);
		break;
	case 3:
		fprintf(f, "lag %" PRIu64 " record%s is within --allowed-lag %"
		    PRIu64 " and no handler is failing: caught up, however long "
		    "ago it last committed (%s)", w->lag, ch_plural(w->lag),
		    w->opts.allowed_lag, dur(a, w->idle_ns));
		break;
	case 4:
	case 6:
		fprintf(f, "lag %" PRIu64 " record%s, ", w->lag,
		    ch_plural(w->lag));
		stuck_words(f, w);
		if (w->rule == 4)
			fprintf(f, ", and no chsub is running: the reader is "
			    "gone%s", rt->records ? " (it was retrying)" : "");
		else
			fprintf(f, ", and chsub (pid %ld) is running but does not "
			    "advance", (long)r->pid);
		break;
	case 5:
		fprintf(f, "the handler failed %" PRIu64 " time%s on the record "
		    "at offset %" PRIu64 " and chsub tries again ", rt->attempts,
		    ch_plural(rt->attempts), rt->offset);
		if (rt->next > now)
			fprintf(f, "in %s", dur(a, ch_age(rt->next, now)));
		else
			fputs(r->pid ? "now" : "when started", f);
		fputs("; not STOP or STALL: ", f);
		stuck_words(f, w);
		break;
	case 7: {
		const struct ch_lag_sample *s = w->samples,
		    *last = &w->samples[w->nsamples - 1];
		fprintf(f, "over %d samples the offset advanced from %" PRIu64
		    " to %" PRIu64 " but the lag never shrank and grew from %"
		    PRIu64 " to %" PRIu64 " records: it consumes, but falls "
		    "behind; not STALL: ", w->nsamples, s[0].offset,
		    last->offset, s[0].lag, last->lag);
		stuck_words(f, w);
		break;
	}
	case 8:
		fprintf(f, "lag %" PRIu64 " record%s is over --allowed-lag %"
		    PRIu64 ", but not STOP or STALL: ", w->lag,
		    ch_plural(w->lag), w->opts.allowed_lag);
		stuck_words(f, w);
		fputs("; and not WARN: ", f);
		not_growing(f, w);
		break;
	}
	fputs(".\n", f);
	if (w->rule >= 4) {
		if (w->ngaps)
			fprintf(f, "stop_after %s = max(--stall %s, min(2 x median "
			    "gap %s of the %d gaps between the %d history entries, "
			    "--window %s)).\n", dur(a, w->stop_after),
			    dur(b, w->opts.stall_ns), dur(c, w->median_gap),
			    w->ngaps, w->nentries, dur(d, w->opts.window_ns));
		else
			fprintf(f, "stop_after %s = --stall (fewer than 2 history "
			    "entries to tell how often it commits).\n",
			    dur(a, w->stop_after));
	}
}

char *
ch_lag_explain(const struct ch_lagrow *r, int64_t now)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char a[32];

	if (!f)
		return NULL;
	if (r->status == CH_ST_ERROR) {
		fprintf(f, "ERROR: the offset file cannot be read, so no rule "
		    "applies: %s.", r->error);
	} else if (r->status == CH_ST_INVALID && r->unparsed) {
		fprintf(f, "INVALID: the offset file is damaged, so no rule "
		    "applies: %s.", r->error);
	} else if (r->status == CH_ST_INVALID) {
		fprintf(f, "INVALID: the offset file disagrees with the channel, "
		    "so no rule applies: %s.", r->error);
	} else {
		const struct ch_lag_why *w = &r->why;
		rule_words(f, r, now);
		fprintf(f, "Samples: the commit history within --window %s, "
		    "oldest first, then now", dur(a, w->opts.window_ns));
		if (w->outside)
			fprintf(f, " (%d older %s not used)", w->outside,
			    w->outside == 1 ? "entry" : "entries");
		fputc(':', f);
		for (int i = 0; i < w->nsamples; i++) {
			const struct ch_lag_sample *s = &w->samples[i];
			fprintf(f, "\n  %d. ", i + 1);
			when(f, s->time, now);
			fprintf(f, ": offset %" PRIu64 ", record %" PRIu64
			    ", lag %" PRIu64 " record%s", s->offset, s->seq,
			    s->lag, ch_plural(s->lag));
			if (w->rule == 1 && i == w->moved_back)
				fputs(" (moved back)", f);
		}
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
