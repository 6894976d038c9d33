/*
 * progress.h - a one-line progress report on stderr, for long operations
 * run by hand: chsub --progress catching up, chcompact --check.
 *
 * It is drawn only when stderr is a terminal (never into a pipe, a file
 * or a cron mail) and not with -q.  The line is redrawn in place with a
 * carriage return at most every 100ms, cut to the terminal's width, and
 * erased when the operation ends and before any other message on stderr
 * (ch_msg and friends call ch_progress_hide_all), so that it never mixes
 * with warnings or ends up in a scrollback full of half lines.
 */
#ifndef CH_PROGRESS_H
#define CH_PROGRESS_H

#include <stdint.h>

struct ch_progress {
	int on;			/* wanted, and stderr is a terminal */
	int ranged;		/* ch_progress_range was called */
	int shown;		/* columns of the line on screen, 0: none */
	int stdout_tty;		/* stdout is a terminal too: hide to write */
	int64_t next_ns;	/* no redraw before this (monotonic) */
	char what[192];		/* "chsub: logs: shipper: catching up" */
	uint64_t from, to;	/* offsets: where it started, where it ends */
	uint64_t from_n, to_n;	/* record numbers, the same way */
	uint64_t at, at_n;	/* last reported position */
};

/* Set up: on only if `want`, stderr is a terminal and -q was not given.
 * Nothing is drawn before ch_progress_range. */
void ch_progress_init(struct ch_progress *p, int want, const char *what);

/* The work goes from offset `from` (record `from_n`) to `to` (`to_n`):
 * draws the line at once.  With nothing to do (to <= from), it ends. */
void ch_progress_range(struct ch_progress *p, uint64_t from, uint64_t to,
    uint64_t from_n, uint64_t to_n);

/* Now at offset `at`, record `at_n`.  Redraws if 100ms have passed;
 * reaching `to` ends the report (erases the line, draws no more). */
void ch_progress_update(struct ch_progress *p, uint64_t at, uint64_t at_n);

/* Erase the line if it is shown; the next update draws it again. */
void ch_progress_hide(struct ch_progress *p);

/* Erase the line and draw no more. */
void ch_progress_end(struct ch_progress *p);

/* Erase the line of whichever report is on screen (before a message). */
void ch_progress_hide_all(void);

#endif
