/* error.c - filling struct ch_error. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"

int
ch_err(struct ch_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * e->msg = "CONTEXT: CAUSE".  When that does not fit (CONTEXT may hold a
 * path of up to PATH_MAX), the middle of CONTEXT gives way to "...": the
 * cause, and both ends of a path, are what a reader needs.
 */
static void
compose(struct ch_error *e, const char *context, const char *cause)
{
	size_t cl = strlen(context), rl = strlen(cause), room = sizeof e->msg;
	size_t head = cl, tail = 0;
	char *p = e->msg;

	if (rl > room / 2)
		rl = room / 2;		/* a cause that long: keep its start */
	if (cl + 2 + rl >= room) {
		size_t keep = room - 1 - 2 - rl - 3;
		head = keep / 2;
		tail = keep - head;
	}
	memcpy(p, context, head);
	p += head;
	if (tail) {
		memcpy(p, "...", 3);
		memcpy(p + 3, context + cl - tail, tail);
		p += 3 + tail;
	}
	memcpy(p, ": ", 2);
	memcpy(p + 2, cause, rl);
	p[2 + rl] = '\0';
}

int
ch_err_sys(struct ch_error *e, int code, const char *fmt, ...)
{
	int saved = errno;
	char context[4096 + sizeof e->msg];
	va_list ap;

	e->code = code;
	e->sys_errno = saved;
	va_start(ap, fmt);
	vsnprintf(context, sizeof context, fmt, ap);
	va_end(ap);
	compose(e, context, saved == CH_ENOTREG ? "not a regular file" :
	    saved == ELOOP ? "is a symbolic link (refused)" : strerror(saved));
	errno = saved;
	return -1;
}

int
ch_err_prefix(struct ch_error *e, const char *fmt, ...)
{
	char old[sizeof e->msg], context[4096 + sizeof e->msg];
	va_list ap;

	memcpy(old, e->msg, sizeof old);
	va_start(ap, fmt);
	vsnprintf(context, sizeof context, fmt, ap);
	va_end(ap);
	compose(e, context, old);
	return -1;
}
