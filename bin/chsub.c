/*
 * chsub - read a channel as a named, durable subscriber.
 *
 * Prints the subscriber's unread records and commits its offset.  What
 * counts as delivered is what write(2) to stdout accepted: records handed
 * to a pipe whose reader then exits (chsub ch s | head -3) were delivered,
 * records in a write that failed were not, and the offset is committed to
 * exactly the end of the last record written.
 *
 * Commits are batched: at exit, when following and idle for a moment, and
 * at least every second while busy, so a fast reader does not pay an
 * fsync per record and a crash re-delivers at most about a second.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "cli.h"
#include "fsutil.h"
#include "handler.h"
#include "lock.h"
#include "notify.h"
#include "output.h"
#include "progress.h"
#include "reader.h"
#include "session.h"

enum { OPT_FROM = 1, OPT_TIMEOUT, OPT_COUNT, OPT_READY_FD, OPT_FORMAT,
    OPT_EXEC, OPT_BATCH, OPT_RETRIES, OPT_BACKOFF, OPT_DEAD_LETTER,
    OPT_PARALLEL, OPT_RATE, OPT_HANDLER_TIMEOUT, OPT_BATCH_BYTES,
    OPT_LINGER };

static int opt_follow, opt_peek, opt_wait, opt_null, opt_skip_corrupt,
    opt_json, opt_progress;
static const char *opt_from, *opt_timeout, *opt_count, *opt_ready_fd,
    *opt_format, *opt_exec, *opt_batch, *opt_retries, *opt_backoff,
    *opt_dead_letter, *opt_parallel, *opt_rate, *opt_handler_timeout,
    *opt_batch_bytes, *opt_linger;

static struct poptOption sub_options[] = {
	{ "follow", 'f', POPT_ARG_NONE, &opt_follow, 0,
	    "keep waiting for new records", NULL },
	{ "timeout", 't', POPT_ARG_STRING, &opt_timeout, OPT_TIMEOUT,
	    "wait for new records, exit after DUR without one", "DUR" },
	{ "count", 'n', POPT_ARG_STRING, &opt_count, OPT_COUNT,
	    "consume N records, then exit", "N" },
	{ "from", '\0', POPT_ARG_STRING, &opt_from, OPT_FROM,
	    "where a new subscriber (or a peek) starts: earliest, latest, "
	    "OFFSET or TIME", "WHERE" },
	{ "peek", '\0', POPT_ARG_NONE, &opt_peek, 0,
	    "read without registering or committing", NULL },
	{ "wait", '\0', POPT_ARG_NONE, &opt_wait, 0,
	    "wait while another chsub holds the subscriber", NULL },
	{ "null", '0', POPT_ARG_NONE, &opt_null, 0,
	    "end records with NUL, not newline", NULL },
	{ "format", '\0', POPT_ARG_STRING, &opt_format, OPT_FORMAT,
	    "print records as FMT (%o %n %s %S %t %T %k %{KEY})", "FMT" },
	{ "json", '\0', POPT_ARG_NONE, &opt_json, 0,
	    "print one JSON object per record", NULL },
	{ "skip-corrupt", '\0', POPT_ARG_NONE, &opt_skip_corrupt, 0,
	    "skip corrupt records with a warning instead of stopping", NULL },
	{ "ready-fd", '\0', POPT_ARG_STRING, &opt_ready_fd, OPT_READY_FD,
	    "write a newline to fd N once ready", "N" },
	{ "progress", '\0', POPT_ARG_NONE, &opt_progress, 0,
	    "show catch-up progress on a terminal's stderr", NULL },
	POPT_TABLEEND
};

static struct poptOption exec_options[] = {
	{ "exec", 'x', POPT_ARG_STRING, &opt_exec, OPT_EXEC,
	    "run CMD (with /bin/sh -c) for each record, payload on stdin",
	    "CMD" },
	{ "batch", '\0', POPT_ARG_STRING, &opt_batch, OPT_BATCH,
	    "hand up to N records to one run of CMD", "N" },
	{ "batch-bytes", '\0', POPT_ARG_STRING, &opt_batch_bytes,
	    OPT_BATCH_BYTES, "hand at most SIZE bytes to one run of CMD (a "
	    "larger record goes alone)", "SIZE" },
	{ "linger", '\0', POPT_ARG_STRING, &opt_linger, OPT_LINGER,
	    "following, wait up to DUR for a batch to fill", "DUR" },
	{ "retries", '\0', POPT_ARG_STRING, &opt_retries, OPT_RETRIES,
	    "retry a failing CMD N more times (default 0)", "N" },
	{ "backoff", '\0', POPT_ARG_STRING, &opt_backoff, OPT_BACKOFF,
	    "wait between retries, doubling from MIN up to MAX (default 1s,60s)",
	    "MIN[,MAX]" },
	{ "dead-letter", '\0', POPT_ARG_STRING, &opt_dead_letter,
	    OPT_DEAD_LETTER, "publish records that still fail to CHANNEL and go "
	    "on", "CHANNEL" },
	{ "parallel", 'P', POPT_ARG_STRING, &opt_parallel, OPT_PARALLEL,
	    "run up to N handlers at once", "N" },
	{ "rate", '\0', POPT_ARG_STRING, &opt_rate, OPT_RATE,
	    "hand out at most N records per second", "N" },
	{ "handler-timeout", '\0', POPT_ARG_STRING, &opt_handler_timeout,
	    OPT_HANDLER_TIMEOUT, "kill a handler running longer than DUR (a "
	    "failure)", "DUR" },
	POPT_TABLEEND
};

static struct poptOption options[] = {
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, sub_options, 0, "Options:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, exec_options, 0,
	    "Handler mode:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, ch_common_options, 0,
	    "Common options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

#define OUT_FLUSH (256 * 1024)
#define COMMIT_EVERY_NS 1000000000LL
#define IDLE_COMMIT_NS 10000000LL

static const char *chname;
static volatile sig_atomic_t stop;
static struct ch_session sess;
static struct ch_progress prog;	/* --progress: catching up */

/* Output not yet written, and where each record in it ends. */
static struct ch_buf out;
static struct ch_runmark *marks;
static size_t nmarks, marks_cap;

/* While write_out writes, stdout's flags; -1 otherwise. */
static volatile sig_atomic_t out_flags = -1;
/* stdout's flags, read once at the start (-1: unknown). */
static int stdout_flags = -1;

/*
 * A first stop signal lets the record being written finish (a blocked
 * write returns what it wrote, and write_out writes the rest of that
 * record, no more), so a reader never gets half a record; a second one
 * makes a write that is still blocked return at once, even mid-record.
 */
static void
on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	if (stop < 2)
		stop++;
	if (stop > 1 && out_flags >= 0)	/* write_out restores the flags */
		(void)fcntl(1, F_SETFL, out_flags | O_NONBLOCK);
	errno = saved;
}

static void
warn_cb(void *ctx, const char *msg)
{
	(void)ctx;
	ch_warn(chname, "%s", msg);
}

/* Where the record that output position `done` is in ends: done itself
 * when it is on a boundary (nothing is half written). */
static size_t
record_end(size_t done)
{
	size_t lo = 0, hi = nmarks;

	if (done == 0)
		return 0;
	while (lo < hi) {		/* first mark ending at or after done */
		size_t mid = lo + (hi - lo) / 2;
		if (marks[mid].end < done)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nmarks ? marks[lo].end : done;
}

/* Write len bytes at p, the records the marks describe; returns 0, or -1
 * when stdout is gone (EPIPE, or a stop signal: after a first one, the
 * record being written is finished, nothing more is started).  Marks
 * delivered what got out. */
static int
write_span(const char *p, size_t len)
{
	size_t done = 0, m = 0;
	int rc = 0, flags = stdout_flags;

	if (!len)
		return 0;
	out_flags = flags;
	if (prog.stdout_tty)
		ch_progress_hide(&prog);	/* records own the terminal */
	while (done < len) {
		size_t upto = len;
		if (stop) {
			upto = stop > 1 ? done : record_end(done);
			if (upto <= done) {
				rc = -1;
				break;
			}
		}
		ssize_t n = write(1, p + done, upto - done);
		if (n < 0) {
			if (errno == EINTR && stop < 2)
				continue;	/* a first stop: finish the record */
			if (stop && (errno == EINTR || errno == EAGAIN)) {
				rc = -1;
				break;
			}
			if (errno == EAGAIN) {
				/* a stdout handed over non-blocking (by
				 * Node.js, say): a full pipe is no error */
				struct pollfd pfd = { 1, POLLOUT, 0 };
				if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
					continue;
			}
			if (errno != EPIPE)
				ch_msg(chname, "write: %s", strerror(errno));
			rc = errno == EPIPE ? -1 : -2;
			break;
		}
		done += (size_t)n;
	}
	out_flags = -1;
	if (stop && flags >= 0 && fcntl(1, F_SETFL, flags) < 0)
		ch_msg(chname, "restore stdout flags: %s", strerror(errno));
	while (m < nmarks && marks[m].end <= done)
		m++;
	if (m > 0)
		ch_session_delivered(&sess, marks[m - 1].offset,
		    marks[m - 1].seq);
	nmarks = 0;
	return rc;
}

/* Write the output buffer (see write_span). */
static int
write_out(void)
{
	int rc = write_span(out.p, out.len);

	out.len = 0;
	return rc;
}

/*
 * A dead-letter channel that is the channel being read would hand every
 * failed record back to be read, fail and be dead-lettered again, forever
 * (and fill the disk): refuse it before anything is read or registered.
 */
static void
refuse_own_dead_letter(struct ch_channel *ch, const char *dl)
{
	struct ch_error err;
	int same = ch_channel_names(ch, dl, &err);

	if (same < 0)
		ch_die_err(chname, &err);
	if (!same)
		return;
	if (opt_dead_letter)
		ch_usage("--dead-letter: '%s' is the channel being read (failed "
		    "records would come back to it forever)", dl);
	ch_die(CH_EXIT_CONFIG, chname, "%s:%u:%u: dead_letter: '%s' is this "
	    "channel itself (failed records would come back to it forever)",
	    CH_CONFIG_FILE, ch->cfg.dead_letter_line, ch->cfg.dead_letter_col,
	    dl);
}

static void
commit(void)
{
	struct ch_error err;

	if (ch_session_commit(&sess, &err) < 0)
		ch_die_err(chname, &err);
}

static void
finish(int status)
{
	struct ch_error err;

	ch_progress_end(&prog);
	/* A channel removed under us (said already): nowhere to commit. */
	int removed = status == CH_EXIT_NOINPUT && sess.ch &&
	    ch_channel_removed(sess.ch);
	if (!removed && ch_session_commit(&sess, &err) < 0) {
		ch_report(chname, &err);
		if (!status)
			status = err.code;
	}
	ch_session_close(&sess);
	exit(status);
}

static void
grow_marks(void)
{
	marks_cap = marks_cap ? marks_cap * 2 : 4096;
	marks = realloc(marks, marks_cap * sizeof *marks);
	if (!marks)
		ch_die(CH_EXIT_FAIL, chname, "out of memory");
}

/* Records were added to the output: 1 when -n's count is reached.
 * Following, out with what we have before the reader goes back to the
 * file, so that a record reaches the reader before the end-of-channel
 * checks (same batches as below when catching up: the reader's buffer is
 * as large as OUT_FLUSH). */
static int
after_records(uint64_t count, uint64_t got, int64_t timeout,
    int64_t *deadline)
{
	if (timeout >= 0)
		*deadline = ch_ns_add(ch_mono_ns(), timeout);
	if (count && got == count)
		return 1;
	if (out.len >= OUT_FLUSH ||
	    (opt_follow && !ch_reader_buffered(sess.r))) {
		int rc = write_out();
		if (rc < 0)
			finish(rc == -2 ? CH_EXIT_FAIL : 0);
		if (ch_mono_ns() - sess.last_commit_mono >= COMMIT_EVERY_NS)
			commit();
	}
	return 0;
}

/* -v: where a new subscriber starts, and what it leaves unread (a work
 * queue registered at the end skips the jobs already queued). */
static void
say_registered(struct ch_channel *ch, const char *name)
{
	struct ch_start st;
	struct ch_error e;

	if (!ch_verbose)
		return;
	if (ch_channel_start(ch, &st, &e) == 0 && sess.off.seq > st.seq) {
		uint64_t n = sess.off.seq - st.seq;
		ch_info(chname, "registered subscriber '%s' at offset %llu; "
		    "the %llu record%s before it %s not read (--from=earliest "
		    "reads them)", name, (unsigned long long)sess.off.offset,
		    (unsigned long long)n, ch_plural(n),
		    n == 1 ? "is" : "are");
		return;
	}
	ch_info(chname, "registered subscriber '%s' at offset %llu", name,
	    (unsigned long long)sess.off.offset);
}

int
main(int argc, const char **argv)
{
	poptContext pc;
	struct ch_channel ch;
	struct ch_session_opts so = { 0 };
	struct ch_outfmt fmt = { CH_OUT_PLAIN, '\n', NULL, 1 };
	struct ch_notify nt = { .fd = -1, .out_fd = -1 };
	struct ch_handler_opts ho = { 0 };
	struct ch_error err;
	const char **args;
	int rc, ready_fd = -1;
	uint64_t count = 0, got = 0;
	int64_t timeout = -1;

	ho.batch = 1;
	ho.parallel = 1;
	ho.backoff_min_ns = 1000000000LL;
	ho.backoff_max_ns = 60000000000LL;
	pc = ch_cli_init("chsub", CH_EXIT_USAGE, argc, argv, options,
	    "[OPTION...] CHANNEL [SUBSCRIBER]");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_FROM:
			if (ch_parse_from(opt_from, ch_now_ns(), &so.from, &err) < 0)
				ch_usage("--from: %s", err.msg);
			so.have_from = 1;
			break;
		case OPT_TIMEOUT:
			timeout = ch_opt_duration("--timeout", opt_timeout);
			break;
		case OPT_COUNT:
			count = ch_opt_count("--count", opt_count, 1, UINT64_MAX);
			break;
		case OPT_READY_FD:
			ready_fd = ch_opt_fd("--ready-fd", opt_ready_fd);
			break;
		case OPT_FORMAT:
			if (ch_format_check(opt_format, &err) < 0)
				ch_usage("--format: %s", err.msg);
			fmt.mode = CH_OUT_FORMAT;
			fmt.fmt = opt_format;
			break;
		case OPT_EXEC:
			/* sh -c '' exits 0: an unset variable in -x "$CMD"
			 * would consume the channel doing nothing. */
			if (!opt_exec[strspn(opt_exec, " \t\n")])
				ch_usage("--exec: empty command");
			ho.cmd = opt_exec;
			break;
		case OPT_BATCH:
			ho.batch = ch_opt_count("--batch", opt_batch, 1, 1000000);
			break;
		case OPT_BATCH_BYTES:
			ho.batch_bytes = ch_opt_size("--batch-bytes",
			    opt_batch_bytes);
			if (!ho.batch_bytes)
				ch_usage("--batch-bytes: must be more than 0");
			break;
		case OPT_LINGER:
			ho.linger_ns = ch_opt_duration("--linger", opt_linger);
			break;
		case OPT_RETRIES:
			ho.retries = ch_opt_count("--retries", opt_retries, 0,
			    1000000);
			break;
		case OPT_BACKOFF: {
			char *copy = strdup(opt_backoff), *comma;
			if (!copy)
				ch_die(CH_EXIT_FAIL, NULL, "out of memory");
			comma = strchr(copy, ',');
			if (comma)
				*comma = '\0';
			ho.backoff_min_ns = ch_opt_duration("--backoff", copy);
			ho.backoff_max_ns = comma ?
			    ch_opt_duration("--backoff", comma + 1) :
			    (ho.backoff_min_ns > INT64_MAX / 64 ? INT64_MAX :
			    ho.backoff_min_ns * 64);
			/* Freed before the check: ch_usage() exits, and
			 * LeakSanitizer cannot count on a register to hold it. */
			free(copy);
			if (ho.backoff_max_ns < ho.backoff_min_ns)
				ch_usage("--backoff: MAX is smaller than MIN");
			break;
		}
		case OPT_DEAD_LETTER:
			if (!*opt_dead_letter)
				ch_usage("--dead-letter: empty channel name");
			ho.dead_letter = opt_dead_letter;
			break;
		case OPT_PARALLEL:
			ho.parallel = (unsigned)ch_opt_count("--parallel",
			    opt_parallel, 1, 1024);
			break;
		case OPT_RATE: {
			char *end;
			errno = 0;
			ho.rate = strtod(opt_rate, &end);
			if (errno || *end || end == opt_rate || !(ho.rate > 0))
				ch_usage("--rate: '%s' is not a positive number of "
				    "records per second", opt_rate);
			break;
		}
		case OPT_HANDLER_TIMEOUT:
			ho.timeout_ns = ch_opt_duration("--handler-timeout",
			    opt_handler_timeout);
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
	if (args[1] && args[2])
		ch_usage("too many arguments");
	if (!args[1] && !opt_peek)
		ch_usage("missing SUBSCRIBER (or use --peek)");
	if (opt_json && fmt.mode == CH_OUT_FORMAT)
		ch_usage("--json and --format cannot be combined");
	if (opt_json)
		fmt.mode = CH_OUT_JSON;
	if (!ho.cmd && (opt_batch || opt_retries || opt_backoff ||
	    opt_dead_letter || opt_parallel || opt_rate || opt_handler_timeout ||
	    opt_batch_bytes || opt_linger))
		ch_usage("--batch, --batch-bytes, --linger, --retries, --backoff, "
		    "--dead-letter, --parallel, --rate and --handler-timeout need "
		    "--exec");
	/* --batch-bytes alone: batches as large as the bytes allow. */
	if (opt_batch_bytes && !opt_batch)
		ho.batch = 1000000;
	if (ho.cmd && (opt_json || fmt.mode == CH_OUT_FORMAT))
		ch_usage("--exec does not print records: no --json or --format");
	if (ho.cmd && opt_peek)
		ch_usage("--exec commits what its handler processed; it cannot "
		    "--peek");
	if (opt_null && (opt_json || fmt.mode == CH_OUT_FORMAT))
		ch_usage("-0 ends plain records; --json ends each with a line "
		    "end, and --format with what FMT says (\\0 for a NUL)");
	if (opt_null)
		fmt.delim = '\0';
	if (timeout >= 0)
		opt_follow = 1;		/* -t implies waiting */
	chname = args[0];
	/* Records given to nobody would be committed as delivered. */
	if (!ho.cmd && ch_stdout_closed())
		ch_die(CH_EXIT_FAIL, chname, "standard output is closed: the "
		    "records would go nowhere");
	if (args[1]) {
		if (ch_sub_check_name(args[1], &err) < 0)
			ch_usage("%s", err.msg);
	}

	/* A peek commits nothing: root may peek into any channel. */
	if (ch_channel_open(chname, opt_peek ? 0 : CH_OPEN_CHANGE, &ch,
	    &err) < 0)
		ch_die_err(chname, &err);
	if (ho.cmd && !ho.dead_letter && ch.cfg.dead_letter[0])
		ho.dead_letter = ch.cfg.dead_letter;
	if (ho.dead_letter) {
		refuse_own_dead_letter(&ch, ho.dead_letter);
		/* before a handler runs, not at its first failure */
		if (ch_channel_check_owner(ho.dead_letter, &err) < 0) {
			ch_err_prefix(&err, "dead-letter channel %s",
			    ho.dead_letter);
			ch_die_err(chname, &err);
		}
	}
	so.name = args[1];
	so.peek = opt_peek;
	so.wait_ns = opt_wait ? CH_LOCK_WAIT : CH_LOCK_NOWAIT;
	so.skip_corrupt = opt_skip_corrupt;
	so.warn = warn_cb;
	if (opt_progress) {
		char what[256];
		snprintf(what, sizeof what, "%s: %s%s%s: catching up", ch_prog,
		    chname, args[1] ? ": " : "", args[1] ? args[1] : "");
		ch_progress_init(&prog, 1, what);
		so.progress = &prog;
	}
	/* Stop signals count from here: one that ends a --wait in the
	 * queue ends chsub as one that comes while it runs (0). */
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;	/* no SA_RESTART: waits return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ch_lock_stop = &stop;
	if (ch_session_open(&ch, &so, &sess, &err) < 0) {
		if (stop && err.sys_errno == EINTR)
			exit(ch_finish(0));	/* nothing read, nothing to say */
		ch_die_err(chname, &err);
	}
	ch_lock_stop = NULL;
	if (sess.created)
		say_registered(&ch, so.name);
	if (prog.on) {
		/* From the subscriber's offset to the end as it is now. */
		struct ch_end end;
		if (ch_channel_end(&ch, &end, &err) == 0)
			ch_progress_range(&prog, sess.done_offset, end.offset,
			    sess.done_seq, end.seq);
	}

	/* A pipe that holds a whole output batch: one write(2) per batch and
	 * fewer wake-ups of the reader on the other end (no-op on a file). */
	(void)fcntl(1, F_SETPIPE_SZ, OUT_FLUSH);
	stdout_flags = fcntl(1, F_GETFL);

	if (opt_follow) {
		ch_notify_open(&nt, ch.dirfd);
		if (!ho.cmd) {
			/* Printing: a reader of stdout that goes away while
			 * we wait ends us as a broken pipe would, and a stop
			 * signal just before a wait cuts it short. */
			sigset_t stopsigs;
			sigemptyset(&stopsigs);
			sigaddset(&stopsigs, SIGINT);
			sigaddset(&stopsigs, SIGTERM);
			sigaddset(&stopsigs, SIGHUP);
			ch_notify_watch_reader(&nt, 1);
			ch_notify_stop_on(&nt, &stop, &stopsigs);
		}
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "\n", 1) != 1)
			ch_warn(chname, "--ready-fd %d: %s", ready_fd,
			    strerror(errno));
		/* Standard input, output and error stay: closed, their
		 * numbers would go to the next files opened, and records
		 * or messages into channel files. */
		if (ready_fd > 2)
			close(ready_fd);
	}

	if (ho.cmd) {
		struct ch_handler_stats stats;
		ho.delim = opt_null ? '\0' : '\n';
		ho.follow = opt_follow;
		ho.idle_ns = timeout;
		ho.count = count;
		ho.channel_path = ch.path;
		ho.subscriber = args[1];
		ho.warn = warn_cb;
		rc = ch_handler_run(&sess, &ho, opt_follow ? &nt : NULL, &stop,
		    &stats, &err);
		ch_info(chname, "handled %llu records, %llu dead-lettered, %llu "
		    "failed attempts", (unsigned long long)stats.done,
		    (unsigned long long)stats.dead_lettered,
		    (unsigned long long)stats.attempts_failed);
		if (rc)
			ch_report(chname, &err);
		ch_notify_close(&nt);
		finish(rc);
	}

	int64_t deadline = timeout >= 0 ? ch_ns_add(ch_mono_ns(), timeout) :
	    -1;
	for (;;) {
		struct ch_rec rec;
		if (stop)
			break;
		if (fmt.mode == CH_OUT_PLAIN && fmt.delim == '\n' && !out.len) {
			/* Catching up in format 3: the rest of a frame at
			 * once, written from where the reader read it. */
			const unsigned char *span;
			size_t n, len;
			if (marks_cap - nmarks < 1024)
				grow_marks();
			len = ch_reader_plain_span(sess.r, OUT_FLUSH,
			    count && count - got < marks_cap - nmarks ?
			    (size_t)(count - got) : marks_cap - nmarks,
			    marks + nmarks, &n, &span);
			if (n) {
				nmarks += n;
				got += n;
				if ((rc = write_span((const char *)span, len)) < 0)
					finish(rc == -2 ? CH_EXIT_FAIL : 0);
				if (ch_mono_ns() - sess.last_commit_mono >=
				    COMMIT_EVERY_NS)
					commit();
				if (after_records(count, got, timeout, &deadline))
					break;
				continue;
			}
		}
		if (fmt.mode == CH_OUT_PLAIN) {
			/* Catching up: the rest of a frame at once. */
			size_t n;
			if (marks_cap - nmarks < 1024)
				grow_marks();
			if (ch_reader_plain_run(sess.r, &out, fmt.delim,
			    OUT_FLUSH, count && count - got < marks_cap - nmarks ?
			    (size_t)(count - got) : marks_cap - nmarks,
			    marks + nmarks, &n) < 0)
				ch_die(CH_EXIT_FAIL, chname, "out of memory");
			if (n) {
				nmarks += n;
				got += n;
				if (after_records(count, got, timeout, &deadline))
					break;
				continue;
			}
		}
		rc = ch_reader_next(sess.r, &rec, &err);
		if (rc < 0) {
			int st = err.code;
			if (write_out() == -2)
				finish(CH_EXIT_FAIL);
			ch_report(chname, &err);
			finish(st);
		}
		if (rc == 1 && fmt.mode == CH_OUT_PLAIN && fmt.delim == '\n' &&
		    !out.len && ch_reader_unread_first(sess.r))
			continue;	/* the whole frame, by the span above */
		if (rc == 1) {
			uint64_t end = rec.offset + rec.total;
			struct ch_recview v = {
				rec.offset, rec.h.seq,
				rec.h.ts, rec.payload, rec.h.len, rec.meta,
				rec.h.meta_len,
			};
			if (ch_output_record(&out, &fmt, &v) < 0)
				ch_die(CH_EXIT_FAIL, chname, "out of memory");
			if (nmarks == marks_cap)
				grow_marks();
			marks[nmarks++] = (struct ch_runmark){ out.len, end,
			    rec.h.seq + 1 };
			got++;
			if (after_records(count, got, timeout, &deadline))
				break;
			continue;
		}
		/* At the end of what is there now. */
		rc = write_out();
		if (rc < 0)
			finish(rc == -2 ? CH_EXIT_FAIL : 0);
		if (!opt_follow)
			break;
		int64_t left = -1;
		if (deadline >= 0) {
			left = deadline - ch_mono_ns();
			if (left <= 0)
				break;
		}
		if (ch_session_dirty(&sess) &&
		    ch_mono_ns() - sess.last_commit_mono >= COMMIT_EVERY_NS) {
			/* A steady trickle never leaves us idle: commit at
			 * least every second anyway. */
			commit();
			continue;
		}
		if (ch_session_dirty(&sess)) {
			/* Idle for a moment?  Then commit before sleeping. */
			int64_t w = left >= 0 && left < IDLE_COMMIT_NS ? left :
			    IDLE_COMMIT_NS;
			rc = ch_notify_wait(&nt, w);
			if (rc == 0 && !stop)
				commit();
		} else
			rc = ch_notify_wait(&nt, left);
		if (rc == CH_NOTIFY_GONE)
			break;		/* as a broken pipe: a clean stop */
		if (rc < 0)
			ch_die(CH_EXIT_FAIL, chname, "wait: %s", strerror(errno));
	}
	rc = write_out();
	ch_notify_close(&nt);
	finish(rc == -2 ? CH_EXIT_FAIL : 0);
}
