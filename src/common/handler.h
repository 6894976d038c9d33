/*
 * handler.h - chsub's handler mode: hand records to a command, at least
 * once.
 *
 * Records are grouped into units (one record, or a batch: up to --batch
 * records and --batch-bytes bytes of stdin that are already there, or,
 * following with --linger, that come before the oldest of them has waited
 * that long; never across lost records, so that record i of a unit is
 * number CH_SEQ + i; with --batch above 1, each record of every unit is
 * followed by the separator) and each unit runs `/bin/sh -c CMD` with the
 * payload on stdin and CH_* variables in its environment (for a unit of
 * one record, its key and headers too: CH_KEY, CH_HDR_NAME); the command
 * string is never built from record data.  A unit's stdin is a memfd, so
 * a handler reads at its own pace, never deadlocks against chsub, and a
 * retry re-reads the same bytes.  Each handler runs in its own process
 * group so that a timeout can kill it and everything it started.
 *
 * Up to `parallel` units run at once; a unit waiting for a retry keeps its
 * slot, so with one slot records go strictly in order and an outage does
 * not make chsub read ahead.  Units finish in any order, but the
 * committed offset only ever moves over the longest prefix of finished
 * units: a crash can re-run finished units, never skip an unfinished one.
 *
 * A failing unit is retried `retries` more times with exponential backoff
 * and jitter, each wait between backoff_min_ns and backoff_max_ns.  A
 * batch that still fails is split and its records are retried one by
 * one, so one poison record does not condemn its neighbours.  A record that still fails goes to the dead-letter channel
 * (payload byte-exact, origin in its metadata, then the record's key
 * and headers) and consumption goes on;
 * without one, nothing more is started, running units finish, the offset
 * is committed up to the failed record, and the run ends with
 * CH_EXIT_UNAVAILABLE.
 */
#ifndef CH_HANDLER_H
#define CH_HANDLER_H

#include <signal.h>
#include <stdint.h>

#include "notify.h"
#include "session.h"

struct ch_handler_opts {
	const char *cmd;
	uint64_t batch;			/* records per unit, >= 1 */
	uint64_t batch_bytes;		/* stdin bytes per unit, 0: no limit */
	int64_t linger_ns;		/* following: wait this long to fill */
	uint64_t retries;		/* attempts after the first */
	int64_t backoff_min_ns, backoff_max_ns;
	const char *dead_letter;	/* channel, or NULL */
	unsigned parallel;		/* >= 1 */
	double rate;			/* records per second, 0: unlimited */
	int64_t timeout_ns;		/* per attempt, 0: none */
	char delim;			/* between records of a batch */
	int follow;
	int64_t idle_ns;		/* -t: stop after this long idle, -1 */
	uint64_t count;			/* -n: stop after this many, 0 */
	const char *channel_path;	/* CH_CHANNEL */
	const char *subscriber;		/* CH_SUBSCRIBER */
	ch_warn_fn warn;
	void *warn_ctx;
};

struct ch_handler_stats {
	uint64_t done, dead_lettered, attempts_failed;
};

/*
 * Run until the channel ends (or forever with follow), count records are
 * done, *stop is set (running handlers are waited for; a second stop kills
 * them), or a record fails for good.  Returns an exit status: 0,
 * CH_EXIT_UNAVAILABLE, or another code with err filled.
 */
int ch_handler_run(struct ch_session *s, const struct ch_handler_opts *o,
    struct ch_notify *nt, volatile sig_atomic_t *stop,
    struct ch_handler_stats *stats, struct ch_error *err);

#endif
