/*
 * session.h - one subscriber reading: hold it, find where it is, read,
 * commit what was delivered.
 *
 * Opening a session takes the subscriber's lock (unless peeking), reads its
 * offset or registers it at --from, and checks that offset against the
 * channel: past the end or off a record boundary is an error (a corrupt
 * offset file is never silently reset); below the earliest record (data
 * removed by retention, also while the session opens) is moved up to the
 * earliest record, and the warning callback says how much was skipped.
 *
 * Registration happens under a shared lock on compact.lock, which
 * chcompact takes exclusively, so a subscriber registered at `earliest`
 * cannot have that data deleted between choosing the offset and writing it.
 */
#ifndef CH_SESSION_H
#define CH_SESSION_H

#include <stdint.h>

#include "channel.h"
#include "position.h"
#include "progress.h"
#include "reader.h"
#include "subscriber.h"

struct ch_session_opts {
	const char *name;	/* NULL: anonymous peek */
	int peek;		/* read only: no lock, no register, no commit */
	int64_t wait_ns;	/* for the subscriber lock, as ch_flock */
	int have_from;
	struct ch_pos from;	/* for a new subscriber, or a peek */
	int skip_corrupt;
	ch_warn_fn warn;
	void *warn_ctx;
	struct ch_progress *progress;	/* told what is delivered, or NULL */
};

struct ch_session {
	struct ch_channel *ch;
	struct ch_session_opts o;
	struct ch_sub sub;
	int held;
	struct ch_reader *r;
	struct ch_offset off;		/* as committed */
	int registered;			/* it has an offset file */
	int created;			/* registered by this session */
	uint64_t done_offset, done_seq;	/* delivered so far */
	int64_t last_commit_mono;
};

int ch_session_open(struct ch_channel *ch, const struct ch_session_opts *o,
    struct ch_session *s, struct ch_error *err);

/* Everything up to (offset, seq) has been delivered. */
void ch_session_delivered(struct ch_session *s, uint64_t offset, uint64_t seq);

/* Persist the delivered position if it moved, else stamp the subscriber
 * as seen (ch_sub_stamp); no-op for peeks. */
int ch_session_commit(struct ch_session *s, struct ch_error *err);
int ch_session_dirty(const struct ch_session *s);

/* Persist the retry state of the record at the delivered position (with
 * that position: everything before it was delivered); r->records == 0
 * clears it.  No-op for peeks. */
int ch_session_set_retry(struct ch_session *s, const struct ch_retry *r,
    struct ch_error *err);

void ch_session_close(struct ch_session *s);

#endif
