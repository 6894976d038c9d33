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

int
ch_err_sys(struct ch_error *e, int code, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	e->code = code;
	e->sys_errno = saved;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof e->msg - n, ": %s",
	    saved == CH_ENOTREG ? "not a regular file" :
	    saved == ELOOP ? "is a symbolic link (refused)" : strerror(saved));
	errno = saved;
	return -1;
}

int
ch_err_prefix(struct ch_error *e, const char *fmt, ...)
{
	char old[sizeof e->msg];
	size_t n;
	va_list ap;

	memcpy(old, e->msg, sizeof old);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof e->msg - n, ": %s", old);
	return -1;
}
