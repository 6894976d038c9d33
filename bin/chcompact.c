/*
 * chcompact - delete consumed segments, apply retention, expire idle
 * subscribers, check and repair a channel.  Made for cron: silent unless
 * something was deleted (with -v) or something is wrong.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "check.h"
#include "cli.h"
#include "compact.h"
#include "lock.h"
#include "parse.h"
#include "progress.h"

enum { OPT_MAX_AGE = 1, OPT_MAX_BYTES, OPT_EXPIRE, OPT_WAIT };

static int opt_dry_run, opt_check, opt_repair;
static const char *opt_max_age, *opt_max_bytes, *opt_expire, *opt_wait;

static struct poptOption compact_options[] = {
	{ "dry-run", 'n', POPT_ARG_NONE, &opt_dry_run, 0,
	    "say what would be deleted and what holds the rest back", NULL },
	{ "max-age", '\0', POPT_ARG_STRING, &opt_max_age, OPT_MAX_AGE,
	    "retention: delete segments whose newest record is older", "DUR" },
	{ "max-bytes", '\0', POPT_ARG_STRING, &opt_max_bytes, OPT_MAX_BYTES,
	    "retention: delete the oldest segments beyond SIZE", "SIZE" },
	{ "expire", '\0', POPT_ARG_STRING, &opt_expire, OPT_EXPIRE,
	    "deregister subscribers that have neither committed nor run for "
	    "DUR", "DUR" },
	{ "check", '\0', POPT_ARG_NONE, &opt_check, 0,
	    "verify every record and offset file; exit 65 on problems", NULL },
	{ "repair", '\0', POPT_ARG_NONE, &opt_repair, 0,
	    "--check, and fix what can be fixed without losing a record",
	    NULL },
	{ "wait", '\0', POPT_ARG_STRING, &opt_wait, OPT_WAIT,
	    "wait up to DUR for another chcompact (default 10s)", "DUR" },
	POPT_TABLEEND
};

static struct poptOption options[] = {
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, compact_options, 0, "Options:",
	    NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, ch_common_options, 0,
	    "Common options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

static void
report(void *ctx, int level, const char *msg)
{
	const char *chname = ctx;

	if (level == CH_REPORT_WARN)
		ch_warn(chname, "%s", msg);
	else if (level == CH_REPORT_PLAN)
		printf("%s: %s\n", chname, msg);
	else
		ch_info(chname, "%s", msg);
}

/* A problem found by --check, and what --repair did or could not do, is
 * always reported, even with -q. */
static void
check_report(void *ctx, int level, const char *msg)
{
	if (level == CH_REPORT_WARN)
		ch_msg(ctx, "%s", msg);
	else if (level == CH_REPORT_FIXED)
		ch_msg(ctx, "repaired: %s", msg);
	else if (level == CH_REPORT_UNFIXED)
		ch_msg(ctx, "not repaired: %s", msg);
	else
		ch_info(ctx, "%s", msg);
}

static int
one(const char *chname, const struct ch_compact_opts *base, int have_age,
    int have_bytes, int have_expire)
{
	struct ch_channel ch;
	struct ch_error err;
	int status = 0;

	/* --check and --dry-run change nothing: root may run them on any
	 * channel. */
	int changes = !(opt_check && !opt_repair) && !opt_dry_run;
	if (ch_channel_open(chname, changes ? CH_OPEN_CHANGE : 0, &ch,
	    &err) < 0) {
		ch_report(chname, &err);
		return err.code;
	}
	if (opt_check) {
		struct ch_check_result res;
		struct ch_progress prog;
		char what[160];
		/* On a terminal, a progress line on stderr (not with -q). */
		snprintf(what, sizeof what, "%s: %s: checking", ch_prog, chname);
		ch_progress_init(&prog, 1, what);
		if (ch_check(&ch, opt_repair, check_report, (void *)chname, &prog,
		    &res, &err) < 0) {
			ch_report(chname, &err);
			status = err.code;
		} else {
			ch_info(chname, "checked %llu record%s in %llu segment%s: "
			    "%u problem%s, %u repaired",
			    (unsigned long long)res.records,
			    res.records == 1 ? "" : "s",
			    (unsigned long long)res.segments,
			    res.segments == 1 ? "" : "s", res.problems,
			    res.problems == 1 ? "" : "s", res.repaired);
			if (res.left)
				status = CH_EXIT_DATAERR;
		}
		ch_channel_close(&ch);
		return status;
	}
	struct ch_compact_opts o = *base;
	if (!have_age)
		o.max_age_ns = ch.cfg.retention_max_age_ns;
	if (!have_bytes)
		o.max_bytes = ch.cfg.retention_max_bytes;
	if (!have_expire)
		o.expire_ns = ch.cfg.expire_ns;
	o.ctx = (void *)chname;
	struct ch_compact_result res;
	if (ch_compact(&ch, &o, &res, &err) < 0) {
		ch_report(chname, &err);
		status = err.code;
		ch_channel_close(&ch);
		return status;
	}
	if (res.failed)		/* said; the rest of the pass went on */
		status = CH_EXIT_FAIL;
	if (!opt_dry_run) {	/* -v: also when nothing was due */
		char size[32];
		ch_format_size(size, sizeof size, res.bytes);
		ch_info(chname, "deleted %llu segment%s (%s), expired %llu "
		    "subscriber%s", (unsigned long long)res.segments,
		    res.segments == 1 ? "" : "s", size,
		    (unsigned long long)res.expired,
		    res.expired == 1 ? "" : "s");
	}
	ch_channel_close(&ch);
	return status;
}

int
main(int argc, const char **argv)
{
	poptContext pc;
	struct ch_compact_opts o = { 0 };
	int rc, have_age = 0, have_bytes = 0, have_expire = 0, status = 0;
	const char **args;

	o.lock_wait_ns = 10000000000LL;
	o.report = report;
	pc = ch_cli_init("chcompact", CH_EXIT_USAGE, argc, argv, options,
	    "[OPTION...] CHANNEL...");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_MAX_AGE:
			o.max_age_ns = ch_opt_duration("--max-age", opt_max_age);
			have_age = 1;
			break;
		case OPT_MAX_BYTES:
			o.max_bytes = ch_opt_size("--max-bytes", opt_max_bytes);
			have_bytes = 1;
			break;
		case OPT_EXPIRE:
			o.expire_ns = ch_opt_duration("--expire", opt_expire);
			have_expire = 1;
			break;
		case OPT_WAIT:
			o.lock_wait_ns = ch_opt_duration("--wait", opt_wait);
			if (o.lock_wait_ns == 0)
				o.lock_wait_ns = CH_LOCK_NOWAIT;
			break;
		default:
			ch_die(CH_EXIT_SOFTWARE, NULL,
			    "option table misconfigured (%d)", rc);
		}
	}
	if (rc < -1)
		ch_cli_popt_error(pc, rc);
	args = poptGetArgs(pc);
	if (!args || !args[0])
		ch_usage("missing CHANNEL");
	if ((opt_check || opt_repair) &&
	    (have_age || have_bytes || have_expire || opt_dry_run))
		ch_usage("%s does not combine with compaction options",
		    opt_check ? "--check" : "--repair");
	if (opt_repair)
		opt_check = 1;
	o.dry_run = opt_dry_run;

	/* Every channel is tried; the exit status is the worst seen. */
	for (int i = 0; args[i]; i++) {
		int st = one(args[i], &o, have_age, have_bytes, have_expire);
		if (st && (!status || st == CH_EXIT_DATAERR))
			status = st;
	}
	poptFreeContext(pc);
	return ch_finish(status);
}
