/* progress.c - a progress line on a terminal's stderr (see progress.h). */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "parse.h"
#include "progress.h"

#define REDRAW_NS 100000000LL

/* The report whose line is on screen, if any. */
static struct ch_progress *current;

static int
columns(void)
{
	struct winsize ws;

	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* write(2) it all to stderr; a progress line is worth no error message. */
static void
put(const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(2, s, len);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

void
ch_progress_init(struct ch_progress *p, int want, const char *what)
{
	memset(p, 0, sizeof *p);
	p->on = want && !ch_quiet && isatty(2);
	p->stdout_tty = p->on && isatty(1);
	snprintf(p->what, sizeof p->what, "%s", what);
}

static void
draw(struct ch_progress *p)
{
	char line[512], done[32], total[32];
	uint64_t span = p->to - p->from, d = p->at - p->from;
	int n, max = columns() - 1;

	ch_format_size(done, sizeof done, d);
	ch_format_size(total, sizeof total, span);
	n = snprintf(line, sizeof line, "\r%s: %s of %s (%d%%)", p->what, done,
	    total, (int)(span ? d * 100 / span : 100));
	if (n > 0 && (size_t)n < sizeof line && p->to_n > p->from_n)
		n += snprintf(line + n, sizeof line - (size_t)n,
		    ", %llu of %llu records",
		    (unsigned long long)(p->at_n - p->from_n),
		    (unsigned long long)(p->to_n - p->from_n));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = (int)sizeof line - 1;
	if (n - 1 > max)
		n = max + 1;		/* one line: cut, never wrap */
	/* Blank out what is left of a longer previous line. */
	while (n - 1 < p->shown && (size_t)n + 1 < sizeof line)
		line[n++] = ' ';
	put(line, (size_t)n);
	if (n - 1 > p->shown)
		p->shown = n - 1;
	current = p;
}

void
ch_progress_hide(struct ch_progress *p)
{
	char blank[512];
	int n;

	if (!p->shown)
		return;
	n = p->shown + 2 < (int)sizeof blank ? p->shown : (int)sizeof blank - 2;
	blank[0] = '\r';
	memset(blank + 1, ' ', (size_t)n);
	blank[n + 1] = '\r';
	put(blank, (size_t)n + 2);
	p->shown = 0;
	p->next_ns = 0;		/* draw again at the next update */
	if (current == p)
		current = NULL;
}

void
ch_progress_end(struct ch_progress *p)
{
	ch_progress_hide(p);
	p->on = 0;
}

void
ch_progress_hide_all(void)
{
	if (current)
		ch_progress_hide(current);
}

void
ch_progress_range(struct ch_progress *p, uint64_t from, uint64_t to,
    uint64_t from_n, uint64_t to_n)
{
	if (!p->on)
		return;
	if (to <= from) {
		ch_progress_end(p);
		return;
	}
	p->ranged = 1;
	p->from = p->at = from;
	p->to = to;
	p->from_n = p->at_n = from_n;
	p->to_n = to_n > from_n ? to_n : from_n;
	draw(p);
	p->next_ns = ch_mono_ns() + REDRAW_NS;
}

void
ch_progress_update(struct ch_progress *p, uint64_t at, uint64_t at_n)
{
	int64_t now;

	if (!p || !p->on || !p->ranged)
		return;
	if (at >= p->to) {
		ch_progress_end(p);
		return;
	}
	p->at = at < p->from ? p->from : at;
	p->at_n = at_n < p->from_n ? p->from_n :
	    at_n > p->to_n ? p->to_n : at_n;
	now = ch_mono_ns();
	if (now < p->next_ns)
		return;
	draw(p);
	p->next_ns = now + REDRAW_NS;
}
