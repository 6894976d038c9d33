/*
 * subscriber.h - named subscribers and their offset files.
 *
 * subscribers/NAME/offset holds the next offset NAME will read, its
 * sequence number, the time of the last commit and a short history of
 * recent commits (for chlag's status).  It is replaced atomically on every
 * commit (temp file, fdatasync, rename, fsync of the directory), so a crash
 * leaves the old or the new file, and it carries a CRC so that damage is
 * reported instead of believed.
 *
 * subscribers/NAME/lock is flock(2)ed exclusively by whoever moves the
 * offset (chsub for its whole run, choffset for a moment).  A running
 * chsub also holds a POSIX record lock on it: flock and POSIX locks are
 * independent on Linux, so chlag can ask F_GETLK "is a chsub running, and
 * which pid?" without ever taking, and so disturbing, the flock.  Only
 * deregistration removes the lock file, and it does so while holding the
 * lock, first renaming the whole directory away; a process that then gets
 * the lock re-checks that the directory and the file it locked are still
 * the ones at their names, and starts over if not.  The lock file's time
 * is the subscriber's last-seen stamp: a chsub sets it when it runs, moving
 * the offset or not, and chcompact --expire goes by it (channel(5)).
 */
#ifndef CH_SUBSCRIBER_H
#define CH_SUBSCRIBER_H

#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "error.h"

#define CH_SUB_NAME_MAX 128
#define CH_HISTORY_MAX 16
/* History entries are kept at least this far apart (see
 * ch_offset_advance), so 16 of them span minutes even for a busy
 * subscriber that commits every second. */
#define CH_HISTORY_MIN_GAP_NS 5000000000LL

struct ch_commit {
	int64_t time;
	uint64_t offset, seq;		/* where the subscriber was */
	uint64_t end_offset, end_seq;	/* where the channel ended */
};

/* How the last failed attempt ended. */
enum { CH_FAIL_EXIT = 1, CH_FAIL_SIGNAL, CH_FAIL_TIMEOUT };

/*
 * A handler (chsub -x) failing on the record at the offset: kept in the
 * offset file so that a restarted chsub goes on with the same count and
 * backoff.  It describes the record at `offset` only: a file is written
 * with it only while o->offset is still that offset.
 */
struct ch_retry {
	uint64_t records;		/* 0: no retry state; else the unit's size */
	uint64_t offset;		/* the record it is about */
	uint64_t attempts;		/* failed attempts so far, >= 1 */
	int64_t last;			/* time of the last failure */
	int64_t next;			/* time of the next attempt */
	int gave_up;			/* no next attempt: chsub exited 69 */
	int how, code;			/* CH_FAIL_*, exit status or signal */
};

struct ch_offset {
	uint64_t offset;
	uint64_t seq;
	int64_t time;			/* last commit */
	int nhist;
	struct ch_commit hist[CH_HISTORY_MAX];	/* oldest first */
	struct ch_retry retry;
};

/* Retry state for o's offset, or NULL. */
const struct ch_retry *ch_offset_retry(const struct ch_offset *o);

/* "exit 1", "signal 9", "timeout"; buf of at least 24 bytes. */
const char *ch_retry_status(const struct ch_retry *r, char *buf, size_t len);

struct ch_sub {
	struct ch_channel *ch;
	char name[CH_SUB_NAME_MAX + 1];
	int dirfd;			/* subscribers/NAME */
	int lockfd;
	int entry_synced;		/* subscribers/ fsynced since we wrote */
};

/* [A-Za-z0-9._-]{1,128}, not starting with '.'. */
int ch_sub_check_name(const char *name, struct ch_error *err);

enum {
	CH_SUB_LIVE = 1,	/* also hold the liveness lock, and stamp the
				 * lock file: its consumer runs (chsub) */
	CH_SUB_EXISTING = 2,	/* never create its directory: one deleted
				 * is CH_EXIT_NOINPUT (not brought back bare) */
	CH_SUB_UNSEEN = 4,	/* a lock file this call creates gets no
				 * stamp (time 0, read as none): taking the
				 * lock is no sign of the consumer
				 * (choffset, chcompact) */
};

/* Take NAME's lock (creating its directory); wait_ns as in ch_flock.
 * Busy: CH_EXIT_TEMPFAIL naming the holder's pid when known.  Whoever
 * creates the lock file (but with CH_SUB_UNSEEN), and a CH_SUB_LIVE
 * holder, stamps it. */
int ch_sub_acquire(struct ch_channel *ch, const char *name, int64_t wait_ns,
    int flags, struct ch_sub *s, struct ch_error *err);
void ch_sub_release(struct ch_sub *s);

/* Set the lock file's time to now (lock held): the subscriber's consumer
 * was there, whether or not it moved the offset (channel(5), OFFSET
 * FILES).  Not synced: a power loss may take a stamp back. */
int ch_sub_stamp(struct ch_sub *s, struct ch_error *err);

/* NAME's last stamp (the lock file's time, ns) into *when; 0 if it has
 * no lock file (or one made by a CH_SUB_UNSEEN acquire). */
int ch_sub_seen(struct ch_channel *ch, const char *name, int64_t *when,
    struct ch_error *err);

/* Pid of the chsub running for NAME, 0 if none. */
pid_t ch_sub_running(struct ch_channel *ch, const char *name);

/* Read NAME's offset file; CH_EXIT_NOINPUT if not registered. */
int ch_sub_read(struct ch_channel *ch, const char *name, struct ch_offset *o,
    struct ch_error *err);

/* Write the offset file (lock held), once the records published so far
 * are on stable storage (ch_channel_sync).  The first write of a process
 * also fsyncs subscribers/, so that the subscriber's directory, created
 * without a sync when its lock was first taken, survives a power loss
 * with its offset.  Fails with CH_NOT_DURABLE (fsutil.h) when the new
 * offset is in place but one of those fsyncs failed, -1 when the offset
 * is unchanged. */
int ch_sub_write(struct ch_sub *s, const struct ch_offset *o,
    struct ch_error *err);

/* ch_sub_write in two steps, so that several subscribers change all or
 * nothing: prepare syncs the channel and writes the new offset file beside
 * the old one (the step that needs free space), commit puts it in place
 * (CH_NOT_DURABLE as ch_sub_write), abort throws a prepared one away. */
int ch_sub_prepare(struct ch_sub *s, const struct ch_offset *o,
    struct ch_error *err);
int ch_sub_commit(struct ch_sub *s, struct ch_error *err);
void ch_sub_abort(struct ch_sub *s);

/* Move o to (offset, seq) at time now, adding a history entry with the
 * channel end at that moment; any retry state is dropped (it was about
 * the record at the old position, or the move is an operator's). */
void ch_offset_advance(struct ch_offset *o, uint64_t offset, uint64_t seq,
    int64_t now, uint64_t end_offset, uint64_t end_seq);

/* Deregister (lock held): rename subscribers/NAME to a hidden name
 * (CH_SUB_DELETED_PREFIX, then the pid and NAME) and sync subscribers/,
 * which deletes it, then remove what it held. */
int ch_sub_delete(struct ch_sub *s, struct ch_error *err);

/* A directory a deletion renamed a subscriber to: left behind if it
 * crashed before removing it, and ignored as a subscriber by every tool. */
#define CH_SUB_DELETED_PREFIX ".deleted."
int ch_sub_deleted_name(const char *name);
/* Remove subs/hidden, such a directory, and what it holds (ENOENT: done). */
int ch_sub_remove_deleted(int subs, const char *hidden);

/* Registered subscribers, sorted; free with ch_sub_list_free. */
int ch_sub_list(struct ch_channel *ch, char ***names, size_t *n,
    struct ch_error *err);
void ch_sub_list_free(char **names, size_t n);

/* Encode / parse the offset file text (exposed for the fuzzer).  Encoding
 * returns the length, or 0 if it does not fit in len bytes. */
size_t ch_offset_format(const struct ch_offset *o, char *buf, size_t len);
int ch_offset_parse(const char *text, size_t len, struct ch_offset *o,
    struct ch_error *err);

#endif
