/*
 * lock.h - flock(2) helpers.
 *
 * Lock files are opened O_RDWR (flock emulation on some file systems needs
 * a writable fd for an exclusive lock) and created 0666 & ~umask.  The
 * channel's lock files are never unlinked or renamed, so every process that
 * opens one by name locks the same inode.  (Subscriber lock files are the
 * exception; see subscriber.h for how that stays safe.)
 */
#ifndef CH_LOCK_H
#define CH_LOCK_H

#include <signal.h>
#include <stdint.h>

#include "error.h"

#define CH_APPEND_LOCK "append.lock"
#define CH_COMPACT_LOCK "compact.lock"

enum {
	CH_LOCK_NOWAIT = 0,	/* fail at once with EWOULDBLOCK */
	CH_LOCK_WAIT = -1,	/* block until granted */
};

/* Open (creating) dirfd/name for locking. */
int ch_lock_open(int dirfd, const char *name, int *fdp, struct ch_error *err);

/* The same for a pass that changes nothing (chcompact --dry-run): the lock
 * file is not created, as one of root's would lock its owner out;
 * *fdp = -1 if there is none (no compaction or registration ever took
 * it, so there is nothing to wait for). */
int ch_lock_open_existing(int dirfd, const char *name, int *fdp,
    struct ch_error *err);

/*
 * flock(fd, op) where op is LOCK_EX or LOCK_SH; `wait_ns` is CH_LOCK_NOWAIT,
 * CH_LOCK_WAIT, or a timeout in ns.  Returns 0, or -1 with errno
 * EWOULDBLOCK (busy / timed out) or another error.
 */
int ch_flock(int fd, int op, int64_t wait_ns);

/* When set, a wait for a lock (CH_LOCK_WAIT) that a signal interrupts
 * with *ch_lock_stop non-zero ends: -1, errno EINTR (chsub --wait's stop
 * signals: a queued chsub told to stop exits 0, as when it runs). */
extern volatile sig_atomic_t *ch_lock_stop;

#endif
