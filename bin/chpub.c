/*
 * chpub - append records to a channel.
 *
 * Records come from the arguments, or from stdin one per line (-0: per
 * NUL, --whole: all of it), each with the key and headers given (-k, -H)
 * as its metadata.  What has been read is framed and appended as one
 * batch under one lock as soon as no more input is waiting (or BATCH_MAX
 * bytes are queued), so a line piped in becomes visible to followers as
 * soon as it is read, and bulk input moves in large batches.  With
 * --atomic, all of the input is one batch, written as one
 * frame at the end: readers see all of it or nothing.  With --tee, each
 * batch's records go on to stdout, in one write, once it is appended.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "meta.h"
#include "writer.h"

enum { OPT_SYNC = 1, OPT_MAX_BYTES, OPT_ON_FULL, OPT_MAX_RECORD, OPT_KEY,
    OPT_HEADER };

static int opt_null, opt_whole, opt_print, opt_no_create, opt_atomic, opt_tee;
static const char *opt_sync, *opt_max_bytes, *opt_on_full, *opt_max_record,
    *opt_key, *opt_header;

static struct poptOption pub_options[] = {
	{ "null", '0', POPT_ARG_NONE, &opt_null, 0,
	    "records on stdin end with NUL, not newline", NULL },
	{ "whole", '\0', POPT_ARG_NONE, &opt_whole, 0,
	    "all of stdin is one record", NULL },
	{ "key", 'k', POPT_ARG_STRING, &opt_key, OPT_KEY,
	    "give every record the key KEY", "KEY" },
	{ "header", 'H', POPT_ARG_STRING, &opt_header, OPT_HEADER,
	    "give every record header NAME (repeatable)", "NAME=VALUE" },
	{ "print-offset", 'p', POPT_ARG_NONE, &opt_print, 0,
	    "print the offset of each record on stdout", NULL },
	{ "tee", '\0', POPT_ARG_NONE, &opt_tee, 0,
	    "copy each record to stdout once appended", NULL },
	{ "no-create", '\0', POPT_ARG_NONE, &opt_no_create, 0,
	    "fail if the channel does not exist", NULL },
	{ "atomic", '\0', POPT_ARG_NONE, &opt_atomic, 0,
	    "publish all records at once or none (format 2 or 3)", NULL },
	{ "sync", '\0', POPT_ARG_STRING, &opt_sync, OPT_SYNC,
	    "durability: none, periodic or always", "POLICY" },
	{ "max-bytes", '\0', POPT_ARG_STRING, &opt_max_bytes, OPT_MAX_BYTES,
	    "the channel is full above SIZE", "SIZE" },
	{ "on-full", '\0', POPT_ARG_STRING, &opt_on_full, OPT_ON_FULL,
	    "when full: fail or block", "fail|block" },
	{ "max-record-bytes", '\0', POPT_ARG_STRING, &opt_max_record,
	    OPT_MAX_RECORD, "reject records larger than SIZE", "SIZE" },
	POPT_TABLEEND
};

static struct poptOption options[] = {
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, pub_options, 0, "Options:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, ch_common_options, 0,
	    "Common options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

/* Bytes taken from stdin per read: each read of a full pipe may wake its
 * writer.  With the input aligned (IN_ALIGN), larger reads and batches
 * gained little and hold more memory (bench/RESULTS.md). */
#define READ_MAX (256u << 10)
/* Bytes of input queued before they are appended even though more input
 * is waiting: few locks and writes, while the batch, the read after it
 * and the pipe's pages still fit the CPU's cache on the way to the page
 * cache. */
#define BATCH_MAX (512u << 10)
/* stdin's buffer: a batch and a read. */
#define IN_CAP (BATCH_MAX + READ_MAX)
/* Each byte of input lies in the buffer at an address congruent with its
 * position in the input modulo IN_ALIGN.  The kernel then copies from
 * pipe pages and the page cache (which hold the input at those positions
 * too) to equally aligned addresses: on some CPUs a copy between
 * addresses of different alignment takes ten times as long (AMD Zen 3,
 * bench/RESULTS.md). */
#define IN_ALIGN 64

static const char *chname;
static struct ch_writer *writer;
/* Every record's metadata: its key and headers. */
static struct ch_usermeta meta;
static int sync_always;

/* --tee: the records queued and not yet appended, each with its delimiter
 * (none for --whole), and where each one ends. */
static struct {
	char *p;
	size_t len, cap;
	size_t *ends;
	size_t n, ncap;
} teebuf;

static void
tee_grow(size_t more)
{
	if (teebuf.len + more <= teebuf.cap)
		return;
	size_t cap = teebuf.cap ? teebuf.cap : 64 << 10;
	while (cap < teebuf.len + more)
		cap *= 2;
	char *np = realloc(teebuf.p, cap);
	if (!np)
		ch_die(CH_EXIT_FAIL, chname, "out of memory");
	teebuf.p = np;
	teebuf.cap = cap;
}

static void
tee_end(void)
{
	if (teebuf.n == teebuf.ncap) {
		size_t cap = teebuf.ncap ? teebuf.ncap * 2 : 4096;
		size_t *ne = realloc(teebuf.ends, cap * sizeof *ne);
		if (!ne)
			ch_die(CH_EXIT_FAIL, chname, "out of memory");
		teebuf.ends = ne;
		teebuf.ncap = cap;
	}
	teebuf.ends[teebuf.n++] = teebuf.len;
}

/* One record queued: keep it for stdout, with its delimiter. */
static void
tee_record(const void *p, size_t len)
{
	if (!opt_tee)
		return;
	tee_grow(len + 1);
	if (len)
		memcpy(teebuf.p + teebuf.len, p, len);
	teebuf.len += len;
	if (!opt_whole)
		teebuf.p[teebuf.len++] = opt_null ? '\0' : '\n';
	tee_end();
}

/* Records queued from buf[0..len), each ended by delim: kept as they are. */
static void
tee_records(const char *buf, size_t len, char delim)
{
	if (!opt_tee || !len)
		return;
	tee_grow(len);
	memcpy(teebuf.p + teebuf.len, buf, len);
	for (const char *p = buf, *end = buf + len, *d; p < end; p = d + 1) {
		d = memchr(p, delim, (size_t)(end - p));
		teebuf.len += (size_t)(d - p) + 1;
		tee_end();
	}
}

/* The first n records kept are appended: out with them, in one write.
 * Stdout gone is an error, after the fact: those records stay. */
static void
tee_out(size_t n)
{
	size_t len = n ? teebuf.ends[n - 1] : 0;

	if (len && ch_write_full(1, teebuf.p, len) < 0)
		ch_die(CH_EXIT_FAIL, chname, "--tee: write to stdout: %s (the "
		    "records were published)", strerror(errno));
	teebuf.len = teebuf.n = 0;
}

/* Append to err how many of the input's first records are in the
 * channel: n, "at least" n, and `but` after it. */
static void
tell_total(struct ch_error *err, uint64_t n, int at_least, const char *but)
{
	size_t len = strlen(err->msg);

	snprintf(err->msg + len, sizeof err->msg - len, "; in all, %sthe "
	    "first %llu record%s of the input %s published%s",
	    at_least ? "at least " : "", (unsigned long long)n, ch_plural(n),
	    n == 1 ? "is" : "are", but);
}

/* Append the queue; print offsets with -p, copy the records with --tee. */
static int
flush(struct ch_error *err)
{
	int at_least;
	uint64_t before = ch_writer_total(writer, &at_least);
	int rc = ch_writer_flush(writer, err);
	size_t n;
	const uint64_t *offs = ch_writer_offsets(writer, &n);

	/* The writer counts the failed batch's records; input read in
	 * several batches had others published before it (unless the
	 * channel is gone).  Under sync=always only those are known to
	 * be on stable storage, as -p and --tee say. */
	if (rc < 0 && before && err->code != CH_EXIT_NOINPUT) {
		uint64_t all = ch_writer_total(writer, &at_least);
		if (sync_always)
			tell_total(err, before, 0, "");
		else
			tell_total(err, all, at_least, "");
	}

	/* After a failure, the records written before it: but with
	 * sync=always they are not known to be on stable storage. */
	size_t shown = rc == 0 || !sync_always ? n : 0;
	if (opt_print && shown) {
		for (size_t i = 0; i < shown; i++)
			printf("%llu\n", (unsigned long long)offs[i]);
		if (fflush(stdout) != 0) {
			ch_stdout_handled();
			ch_die(CH_EXIT_FAIL, chname, "write offsets: %s",
			    strerror(errno));
		}
	}
	if (opt_tee)
		tee_out(rc == 0 ? teebuf.n : shown);
	return rc;
}

static void
add(const char *what, unsigned long long n, const void *p, size_t len)
{
	struct ch_error err;

	if (ch_writer_add(writer, meta.p, meta.len, p, len, &err) == 0) {
		tee_record(p, len);
		return;
	}
	if (opt_atomic)
		ch_die(err.code, chname, "%s %llu: %s; nothing was published",
		    what, n, err.msg);
	/* Too large: publish what came before it, then fail; if that
	 * fails, its status is the one to act on (75: channel full). */
	struct ch_error ferr;
	if (flush(&ferr) < 0) {
		ch_err_prefix(&err, "%s %llu", what, n);
		ch_report(chname, &err);
		ch_die_err(chname, &ferr);
	}
	ch_die(err.code, chname, "%s %llu: %s", what, n, err.msg);
}

/* Queue the records of buf[0..len), which ends with a delimiter; returns
 * how many. */
static size_t
add_split(const char *what, unsigned long long recno, const char *buf,
    size_t len, char delim)
{
	struct ch_error err;
	size_t used, n;
	/* Not --atomic: buf stays as it is until the next flush (format 3
	 * writes lines from there). */
	int rc = opt_atomic ? ch_writer_add_split(writer, buf, len, delim,
	    meta.p, meta.len, &used, &n, &err) :
	    ch_writer_add_split_kept(writer, buf, len, delim, meta.p, meta.len,
	    &used, &n, &err);

	tee_records(buf, used, delim);
	if (rc == 0)
		return n;
	/* From the record that failed on, one at a time: add() reports it
	 * as usual, after publishing what came before it. */
	for (const char *p = buf + used, *end = buf + len, *d; p < end;
	    p = d + 1) {
		d = memchr(p, delim, (size_t)(end - p));
		add(what, recno + ++n, p, (size_t)(d - p));
	}
	return n;
}

static void
publish_args(const char **args)
{
	for (unsigned long long i = 0; args[i]; i++)
		add("argument", i + 1, args[i], strlen(args[i]));
}

/* A sync failed: the records written stay published, but may not be on
 * stable storage. */
static void
die_unsynced(struct ch_error *err, uint64_t total, int at_least)
{
	if (total)
		tell_total(err, total, at_least, ", but a power loss may take "
		    "them");
	ch_die_err(chname, err);
}

/* Wait for stdin to be readable, doing periodic syncs while idle. */
static void
wait_input(void)
{
	struct ch_error err;
	int64_t due;

	while ((due = ch_writer_sync_due(writer)) >= 0) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		int ms = due / 1000000 >= INT_MAX ? INT_MAX :
		    (int)((due + 999999) / 1000000);
		int rc = poll(&p, 1, ms);
		if (rc > 0 || (rc < 0 && errno != EINTR))
			return;
		if (rc == 0 && ch_writer_sync(writer, &err) < 0) {
			int at_least;
			uint64_t total = ch_writer_total(writer, &at_least);
			die_unsynced(&err, total, at_least);
		}
	}
}

/* Is more input waiting to be read right now? */
static int
input_waiting(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* stdin's buffer: buf[base..added) is queued (and, until the next flush,
 * written from here: ch_writer_add_split_kept), buf[added..len) read and
 * not, of which buf[added..scanned) holds no delimiter; buf[0..base) is
 * slack, below IN_ALIGN bytes.  total counts the bytes read from stdin.
 * static: still reachable when a record too large or a failed append
 * exits half way, whatever registers held it (LeakSanitizer). */
static struct {
	char *buf;
	size_t cap, base, len, added, scanned;
	uint64_t total;
} in;

/* The slack before input position pos at buf, for IN_ALIGN. */
static size_t
slack(const char *buf, uint64_t pos)
{
	return (size_t)((pos - (uintptr_t)buf) & (IN_ALIGN - 1));
}

/* Append what is queued, and move the rest of the input to the front. */
static void
flush_input(void)
{
	struct ch_error err;
	size_t left = in.len - in.added, scanned = in.scanned - in.added;
	char *to = in.buf;

	if (!opt_atomic && flush(&err) < 0)
		ch_die_err(chname, &err);
	/* A buffer grown for one long record goes back to its usual size
	 * once what is left fits (nothing refers to it after the flush). */
	if (in.cap > IN_CAP && left <= IN_CAP / 2 &&
	    !(to = aligned_alloc(IN_ALIGN, IN_CAP)))
		to = in.buf;
	size_t cap = to == in.buf ? in.cap : IN_CAP;
	size_t base = slack(to, in.total - left);
	if (base + left > cap)
		base = 0;
	memmove(to + base, in.buf + in.added, left);
	if (to != in.buf) {
		free(in.buf);
		in.buf = to;
		in.cap = cap;
	}
	in.base = in.added = base;
	in.len = base + left;
	in.scanned = base + scanned;
}

static void
publish_stdin(uint64_t max_record)
{
	const char delim = opt_null ? '\0' : '\n';
	const char *what = opt_whole ? "input" : opt_null ? "record" : "line";
	unsigned long long recno = 0;
	struct ch_error err;

	in.cap = IN_CAP;
	if (!(in.buf = aligned_alloc(IN_ALIGN, in.cap)))
		ch_die(CH_EXIT_FAIL, chname, "out of memory");
	/* A bigger pipe means fewer, larger batches from a fast producer. */
	(void)fcntl(0, F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		if (in.len == in.cap && in.added > in.base)
			flush_input();
		if (in.len == in.cap && in.base) {
			/* One record fills the buffer from its slack on: to
			 * the front (a record longer than the buffer loses its
			 * alignment anyway), so that it is checked below at
			 * the length it always was, the buffer's.  Nothing is
			 * queued (added == base). */
			memmove(in.buf, in.buf + in.base, in.len - in.base);
			in.len -= in.base;
			in.scanned -= in.base;
			in.added = in.base = 0;
		}
		if (in.len == in.cap) {
			/* One record fills the buffer: grow, within limits. */
			if (in.len - in.added > max_record + 1 && !opt_whole) {
				if (!opt_atomic && flush(&err) < 0)
					ch_report(chname, &err);
				ch_die(CH_EXIT_FAIL, chname,
				    "%s %llu: record exceeds max_record_bytes "
				    "(%llu)%s", what, recno + 1,
				    (unsigned long long)max_record, opt_atomic ?
				    "; nothing was published" : "");
			}
			if (opt_whole && in.len - in.base > max_record)
				ch_die(CH_EXIT_FAIL, chname,
				    "input exceeds max_record_bytes (%llu)",
				    (unsigned long long)max_record);
			char *nb = realloc(in.buf, in.cap * 2);
			if (!nb)
				ch_die(CH_EXIT_FAIL, chname, "out of memory");
			in.buf = nb;
			in.cap *= 2;
		}
		wait_input();
		size_t room = in.cap - in.len;
		ssize_t n = read(0, in.buf + in.len, room > READ_MAX ? READ_MAX :
		    room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Publish the lines read before it, then fail. */
			int e = errno;
			if (!opt_atomic && in.added > in.base &&
			    flush(&err) < 0)
				ch_report(chname, &err);
			ch_die(CH_EXIT_FAIL, chname, "read stdin: %s",
			    strerror(e));
		}
		if (n == 0)
			break;
		in.len += (size_t)n;
		in.total += (uint64_t)n;
		if (opt_whole)
			continue;
		/* Frame every complete record now in the buffer; bytes
		 * already scanned hold no delimiter. */
		char *last = memrchr(in.buf + in.scanned, delim,
		    in.len - in.scanned);
		in.scanned = in.len;
		if (last) {
			size_t end = (size_t)(last - in.buf) + 1;
			recno += add_split(what, recno, in.buf + in.added,
			    end - in.added, delim);
			in.added = end;
		}
		/* Append once no more input is waiting (a line piped in
		 * alone goes out at once), or once a batch is large (the
		 * buffer's room for another read is gone): a fast producer's
		 * lines go in full frames, few writes and locks.  An atomic
		 * batch was copied: its lines leave the buffer now. */
		if (opt_atomic ? in.added > in.base : in.added > in.base &&
		    (in.added - in.base >= BATCH_MAX ||
		    in.len + READ_MAX > in.cap ||
		    !input_waiting()))
			flush_input();
	}
	/* The last line may lack its delimiter; --whole is one record,
	 * possibly empty.  The lines queued from the buffer go first. */
	if (in.added > in.base)
		flush_input();
	if (opt_whole || in.len > in.base)
		add(what, ++recno, in.buf + in.base, in.len - in.base);
	free(in.buf);
	in.buf = NULL;
}

int
main(int argc, const char **argv)
{
	poptContext pc;
	struct ch_channel ch;
	struct ch_pubopts po;
	struct ch_error err;
	int rc, sync = -1, on_full = -1;
	uint64_t max_bytes = 0, max_record = 0;
	const char **args;
	/* -H's values, popt's copies: static, so that a usage error or a
	 * bad header, which exit, leave them reachable (LeakSanitizer) */
	static const char **headers;
	size_t nheaders = 0;

	pc = ch_cli_init("chpub", CH_EXIT_USAGE, argc, argv, options,
	    "[OPTION...] CHANNEL [MESSAGE...]");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_SYNC:
			if (ch_parse_sync(opt_sync, &sync, &err) < 0)
				ch_usage("--sync: %s", err.msg);
			break;
		case OPT_MAX_BYTES:
			max_bytes = ch_opt_size("--max-bytes", opt_max_bytes);
			break;
		case OPT_ON_FULL:
			if (ch_parse_on_full(opt_on_full, &on_full, &err) < 0)
				ch_usage("--on-full: %s", err.msg);
			break;
		case OPT_MAX_RECORD:
			max_record = ch_opt_size("--max-record-bytes",
			    opt_max_record);
			if (max_record == 0 || max_record > CH_RECORD_MAX)
				ch_usage("--max-record-bytes: must be between 1 "
				    "and %llu", CH_RECORD_MAX);
			break;
		case OPT_KEY:
			break;	/* the last one counts, as with every option */
		case OPT_HEADER: {
			const char **nh = realloc(headers, (nheaders + 1) *
			    sizeof *nh);
			if (!nh)
				ch_die(CH_EXIT_FAIL, NULL, "out of memory");
			headers = nh;
			headers[nheaders++] = opt_header;
			break;
		}
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
	if (opt_whole && opt_null)
		ch_usage("--whole and --null cannot be combined");
	if ((opt_whole || opt_null) && args[1])
		ch_usage("--whole and --null read stdin; do not give MESSAGEs");
	if (opt_tee && opt_print)
		ch_usage("--tee and --print-offset both write to stdout; use one");
	chname = args[0];
	if ((opt_tee || opt_print) && ch_stdout_closed())
		ch_die(CH_EXIT_FAIL, chname, "standard output is closed: "
		    "--%s would write nowhere", opt_tee ? "tee" : "print-offset");
	/* Checked before the channel is touched: a bad header creates
	 * nothing. */
	if (opt_key && ch_usermeta_key(&meta, opt_key, &err) < 0)
		ch_die_err(chname, &err);
	for (size_t i = 0; i < nheaders; i++) {
		if (ch_usermeta_header(&meta, headers[i], &err) < 0)
			ch_die_err(chname, &err);
		free((void *)headers[i]);	/* popt's copy, ours to free */
	}
	free(headers);

	if (ch_channel_open(chname, (opt_no_create ? 0 : CH_OPEN_CREATE) |
	    CH_OPEN_CHANGE, &ch,
	    &err) < 0)
		ch_die_err(chname, &err);
	ch_pubopts_from_config(&po, &ch.cfg);
	if (sync >= 0)
		po.sync = sync;
	if (opt_max_bytes)
		po.max_bytes = max_bytes;
	if (on_full >= 0)
		po.on_full = on_full;
	if (max_record)
		po.max_record_bytes = max_record;
	/* --tee counts what a failed flush wrote by its offsets. */
	po.want_offsets = opt_print || opt_tee;
	sync_always = po.sync == CH_SYNC_ALWAYS;
	if (opt_tee || opt_print)
		signal(SIGPIPE, SIG_IGN);	/* a closed stdout is an error */
	po.atomic = opt_atomic;
	if (ch_writer_open(&ch, &po, &writer, &err) < 0)
		ch_die_err(chname, &err);

	if (args[1])
		publish_args(args + 1);
	else
		publish_stdin(po.max_record_bytes);
	if (flush(&err) < 0)
		ch_die_err(chname, &err);
	if (ch_writer_repaired(writer))
		ch_info(chname, "repaired a torn tail (%llu bytes cut)",
		    (unsigned long long)ch_writer_repaired(writer));
	/* (close frees the writer, even when its final sync fails) */
	int at_least;
	uint64_t total = ch_writer_total(writer, &at_least);
	if (ch_writer_close(writer, &err) < 0) {
		writer = NULL;
		die_unsynced(&err, total, at_least);
	}
	ch_channel_close(&ch);
	ch_usermeta_free(&meta);
	free(teebuf.p);
	free(teebuf.ends);
	poptFreeContext(pc);
	return ch_finish(0);
}
