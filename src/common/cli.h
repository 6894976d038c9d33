/*
 * cli.h - what every tool shares on the command line and on stderr.
 *
 * Messages are "TOOL: CHANNEL: what went wrong" (CHANNEL as the user typed
 * it, or omitted when there is none).  -q silences warnings, never errors;
 * -v adds progress lines.  Usage errors exit 2 (3 for chlag, a Nagios
 * plugin) and point at --help.
 */
#ifndef CH_CLI_H
#define CH_CLI_H

#include <popt.h>
#include <stdint.h>

#include "error.h"

extern const char *ch_prog;
extern int ch_verbose;
extern int ch_quiet;
extern struct poptOption ch_common_options[];

/* Set the program name and the usage exit status, make the popt context. */
poptContext ch_cli_init(const char *prog, int usage_code, int argc,
    const char **argv, const struct poptOption *table, const char *args_help);

/* popt returned rc < -1: report it and exit with the usage status. */
void ch_cli_popt_error(poptContext pc, int rc) __attribute__((noreturn));

/* A usage error of our own ("--count: ..."): message, hint, exit. */
void ch_usage(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Print "TOOL: CHANNEL: msg" (channel may be NULL). */
void ch_msg(const char *channel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ch_warn(const char *channel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ch_info(const char *channel, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ch_die(int code, const char *channel, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
void ch_report(const char *channel, const struct ch_error *e);
void ch_die_err(const char *channel, const struct ch_error *e)
	__attribute__((noreturn));

/* Flush stdout; a failed write becomes an error (exit 1, chlag 3) unless
 * the status is already an error.  Returns the status to exit with.  An
 * exit handler set by ch_cli_init does the same for every other exit. */
int ch_finish(int status);

/* The tool has dealt with a failed write to stdout itself (said why, or
 * chose to stay silent): ch_finish and the exit handler stay silent too. */
void ch_stdout_handled(void);

/* Was stdout closed when the tool started (/dev/null stands in for it)?
 * A tool whose output is what it is asked for refuses then, as a write
 * to a closed fd fails for cat: chsub would commit records it gave to
 * nobody. */
int ch_stdout_closed(void);

/* Option values parsed with the option name in the message. */
uint64_t ch_opt_size(const char *opt, const char *val);
int64_t ch_opt_duration(const char *opt, const char *val);
uint64_t ch_opt_count(const char *opt, const char *val, uint64_t min,
    uint64_t max);
/* A file descriptor that must be open when the tool starts (usage error
 * if not): call it while parsing options, before anything is opened. */
int ch_opt_fd(const char *opt, const char *val);

#endif
