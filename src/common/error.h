/*
 * error.h - how the library reports failure.
 *
 * Library functions never print and never exit.  They return -1 (or NULL)
 * and fill a struct ch_error with an exit status class and a message that
 * reads well after the "TOOL: CHANNEL: " prefix the tools add.  Only the
 * tools and cli.c turn an error into output and an exit status.
 */
#ifndef CH_ERROR_H
#define CH_ERROR_H

#include <stdarg.h>

/* One exit status table for every tool; chtools(7) documents it. */
enum ch_exit {
	CH_EXIT_OK = 0,
	CH_EXIT_FAIL = 1,		/* runtime failure: I/O, permission, not a channel */
	CH_EXIT_USAGE = 2,		/* bad option or argument */
	CH_EXIT_DATAERR = 65,		/* corrupt data found */
	CH_EXIT_NOINPUT = 66,		/* channel or subscriber does not exist */
	CH_EXIT_UNAVAILABLE = 69,	/* chsub -x: handler failed, no dead-letter channel */
	CH_EXIT_SOFTWARE = 70,		/* internal error (a bug) */
	CH_EXIT_TEMPFAIL = 75,		/* busy, full, lock timeout: try again later */
	CH_EXIT_CONFIG = 78,		/* bad channel.yaml */
};

struct ch_error {
	int code;		/* an enum ch_exit value */
	int sys_errno;		/* errno of the failing call, or 0 */
	char msg[1024];
};

/* Set the error and return -1, so that `return ch_err(...)` reads well. */
int ch_err(struct ch_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errno)" (errno is read on entry). */
int ch_err_sys(struct ch_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "s" unless n is 1: "%llu time%s" in a message. */
static inline const char *
ch_plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

/* Prefix an existing message with more context: "CONTEXT: old message". */
int ch_err_prefix(struct ch_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
