/*
 * notify.h - waiting for a channel to change.
 *
 * One inotify watch on the channel directory reports appends to any
 * segment (IN_MODIFY on a child), new segments (IN_CREATE, IN_MOVED_TO) and
 * deletions.  The watch must be added before the caller's last look at the
 * data: an append that lands between that look and the wait is then
 * already queued on the inotify fd, so it cannot be missed.  When inotify
 * is unavailable (no instances left, a file system without it) waiting
 * degrades to polling every CH_NOTIFY_POLL_NS.
 */
#ifndef CH_NOTIFY_H
#define CH_NOTIFY_H

#include <stdint.h>

#define CH_NOTIFY_POLL_NS 50000000	/* 50 ms */

struct ch_notify {
	int fd;		/* inotify fd, or -1 when polling */
};

/* Start watching; never fails (falls back to polling).  Returns 1 if
 * inotify is in use, 0 if polling. */
int ch_notify_open(struct ch_notify *n, int dirfd);
void ch_notify_close(struct ch_notify *n);

/*
 * Wait up to timeout_ns (-1: forever) for a change.  Returns 1 when
 * something may have changed, 0 on timeout or when a signal interrupted
 * the wait (the caller checks its flags), -1 on error.
 */
int ch_notify_wait(struct ch_notify *n, int64_t timeout_ns);

/* One-shot: wait up to timeout_ns for any change in the directory. */
void ch_notify_wait_dir(int dirfd, int64_t timeout_ns);

#endif
