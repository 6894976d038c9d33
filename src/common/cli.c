/* cli.c - shared options, messages and exit handling. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"
#include "progress.h"

const char *ch_prog = "chtools";
int ch_verbose;
int ch_quiet;
static int usage_code = CH_EXIT_USAGE;
static int stdout_reported;	/* a write error on stdout was dealt with */

enum { OPT_VERSION = 1, OPT_QUIET, OPT_VERBOSE };

static void
common_cb(poptContext pc, enum poptCallbackReason reason,
    const struct poptOption *opt, const char *arg, const void *data)
{
	(void)pc;
	(void)reason;
	(void)arg;
	(void)data;
	switch (opt->val) {
	case OPT_VERSION:
		printf("%s (chtools) %s\n", ch_prog, PACKAGE_VERSION);
		exit(ch_finish(0));
	case OPT_QUIET:
		ch_quiet = 1;
		ch_verbose = 0;
		break;
	case OPT_VERBOSE:
		ch_verbose++;
		ch_quiet = 0;
		break;
	}
}

struct poptOption ch_common_options[] = {
	{ NULL, '\0', POPT_ARG_CALLBACK, (void *)common_cb, 0, NULL, NULL },
	{ "quiet", 'q', POPT_ARG_NONE, NULL, OPT_QUIET,
	    "print no warnings, only errors", NULL },
	{ "verbose", 'v', POPT_ARG_NONE, NULL, OPT_VERBOSE,
	    "report what is done on stderr", NULL },
	{ "version", '\0', POPT_ARG_NONE, NULL, OPT_VERSION,
	    "print the version and exit", NULL },
	POPT_TABLEEND
};

/*
 * Run with stdin, stdout or stderr closed, the channel's files would get
 * those numbers, and a message for stderr would be written into a
 * segment.  Put /dev/null there first, as daemons and coreutils do.
 */
static int stdout_closed;	/* fd 1 was closed at start */

static void
std_fds_open(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (fd == 1)
			stdout_closed = 1;
		int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (n != fd) {		/* the lowest free number: fd */
			if (n >= 0)
				close(n);
			_exit(CH_EXIT_FAIL);	/* nowhere to say why */
		}
	}
}

int
ch_stdout_closed(void)
{
	return stdout_closed;
}

/* The status of a failure that has no code of its own: 1, except for a
 * tool that exits with its usage code for every failure (chlag, a Nagios
 * plugin: UNKNOWN). */
static int
failure_code(void)
{
	return usage_code == CH_EXIT_USAGE ? CH_EXIT_FAIL : usage_code;
}

/*
 * Whatever path ends the tool (popt's --help and --usage call exit(0)
 * themselves), output that could not be written must not end in status 0,
 * as coreutils' close_stdout: flush and close stdout at exit.
 */
static void
close_stdout(void)
{
	if (stdout_reported)
		return;
	if (ch_finish(0) != 0)
		_exit(failure_code());
	if (fclose(stdout) != 0 && errno != EPIPE) {
		fprintf(stderr, "%s: write error: %s\n", ch_prog, strerror(errno));
		_exit(failure_code());
	}
}

poptContext
ch_cli_init(const char *prog, int code, int argc, const char **argv,
    const struct poptOption *table, const char *args_help)
{
	poptContext pc;

	std_fds_open();
	ch_prog = prog;
	usage_code = code;
	if (atexit(close_stdout) != 0)
		ch_die(CH_EXIT_FAIL, NULL, "out of memory");
	pc = poptGetContext(prog, argc, argv, table, 0);
	if (!pc)
		ch_die(CH_EXIT_FAIL, NULL, "out of memory");
	poptSetOtherOptionHelp(pc, args_help);
	return pc;
}

void
ch_cli_popt_error(poptContext pc, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", ch_prog,
	    poptBadOption(pc, POPT_BADOPTION_NOALIAS), poptStrerror(rc));
	fprintf(stderr, "Try '%s --help' for more information.\n", ch_prog);
	poptFreeContext(pc);
	exit(usage_code);
}

void
ch_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", ch_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", ch_prog);
	exit(usage_code);
}

static void
vmsg(const char *channel, const char *fmt, va_list ap)
{
	/* One write per message so concurrent writers do not interleave,
	 * sized from the message: a channel path alone may take PATH_MAX,
	 * and the prefix and the end of the message must not be lost. */
	const char *sep = channel && channel[0] ? ": " : "";
	va_list aq;
	char *buf;
	int pre, n;

	if (!channel)
		channel = "";
	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	pre = snprintf(NULL, 0, "%s: %s%s", ch_prog, channel, sep);
	ch_progress_hide_all();		/* a message never shares its line */
	if (n < 0 || pre < 0 ||
	    !(buf = malloc((size_t)pre + (size_t)n + 2))) {
		fprintf(stderr, "%s: %s%s", ch_prog, channel, sep);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		return;
	}
	snprintf(buf, (size_t)pre + 1, "%s: %s%s", ch_prog, channel, sep);
	vsnprintf(buf + pre, (size_t)n + 1, fmt, ap);
	buf[pre + n] = '\n';
	fwrite(buf, 1, (size_t)pre + (size_t)n + 1, stderr);
	free(buf);
}

void
ch_msg(const char *channel, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(channel, fmt, ap);
	va_end(ap);
}

void
ch_warn(const char *channel, const char *fmt, ...)
{
	va_list ap;

	if (ch_quiet)
		return;
	va_start(ap, fmt);
	vmsg(channel, fmt, ap);
	va_end(ap);
}

void
ch_info(const char *channel, const char *fmt, ...)
{
	va_list ap;

	if (!ch_verbose)
		return;
	va_start(ap, fmt);
	vmsg(channel, fmt, ap);
	va_end(ap);
}

void
ch_die(int code, const char *channel, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(channel, fmt, ap);
	va_end(ap);
	exit(ch_finish(code));
}

void
ch_report(const char *channel, const struct ch_error *e)
{
	ch_msg(channel, "%s", e->msg);
}

void
ch_die_err(const char *channel, const struct ch_error *e)
{
	ch_report(channel, e);
	exit(ch_finish(e->code ? e->code : CH_EXIT_FAIL));
}

void
ch_stdout_handled(void)
{
	stdout_reported = 1;
}

int
ch_finish(int status)
{
	int earlier = ferror(stdout);

	if (stdout_reported)
		return status ? status : failure_code();
	/* After an earlier failed write, errno is still that write's reason
	 * unless a later call failed too: stdio keeps no copy of it. */
	if (fflush(stdout) == 0 && !earlier)
		return status;
	if (errno == EPIPE)	/* the reader went away: not our failure */
		return status;
	stdout_reported = 1;
	if (errno)
		fprintf(stderr, "%s: write error: %s\n", ch_prog, strerror(errno));
	else
		fprintf(stderr, "%s: write error\n", ch_prog);
	return status ? status : failure_code();
}

uint64_t
ch_opt_size(const char *opt, const char *val)
{
	struct ch_error e;
	uint64_t v;

	if (ch_parse_size(val, &v, &e) < 0)
		ch_usage("%s: %s", opt, e.msg);
	return v;
}

int64_t
ch_opt_duration(const char *opt, const char *val)
{
	struct ch_error e;
	int64_t v;

	if (ch_parse_duration(val, &v, &e) < 0)
		ch_usage("%s: %s", opt, e.msg);
	return v;
}

uint64_t
ch_opt_count(const char *opt, const char *val, uint64_t min, uint64_t max)
{
	struct ch_error e;
	uint64_t v;

	if (ch_parse_count(val, min, max, &v, &e) < 0)
		ch_usage("%s: %s", opt, e.msg);
	return v;
}

int
ch_opt_fd(const char *opt, const char *val)
{
	int fd = (int)ch_opt_count(opt, val, 0, INT_MAX);

	/* Checked before the tool opens anything: a number that is free at
	 * exec would be one of the tool's own files (a lock, the inotify
	 * fd) by the time it is written to and closed. */
	if (fcntl(fd, F_GETFD) < 0)
		ch_usage("%s: file descriptor %d is not open", opt, fd);
	return fd;
}
