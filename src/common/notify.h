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
 *
 * A wait can also end when the reader of an output goes away (a follower
 * printing into a pipe must not sleep, holding its subscriber, until the
 * next record's write finds the pipe broken), and it is not started at all
 * once a stop flag is set: the stop signals are blocked from that last
 * look at the flag until the wait lets them in, so one that lands just
 * before the wait interrupts it instead of being slept through.
 */
#ifndef CH_NOTIFY_H
#define CH_NOTIFY_H

#include <signal.h>
#include <stdint.h>

#define CH_NOTIFY_POLL_NS 50000000	/* 50 ms */

/* ch_notify_wait(): the reader of the watched output went away. */
#define CH_NOTIFY_GONE 2

struct ch_notify {
	int fd;		/* inotify fd, or -1 when polling */
	int out_fd;	/* output whose reader is watched, or -1 */
	volatile sig_atomic_t *stop;	/* no wait once set (NULL: none) */
	sigset_t stopsigs;	/* the signals that set *stop */
};

/* Start watching; never fails (falls back to polling).  Returns 1 if
 * inotify is in use, 0 if polling. */
int ch_notify_open(struct ch_notify *n, int dirfd);
void ch_notify_close(struct ch_notify *n);

/* Also end waits when the reader of fd goes away, if fd is a pipe or a
 * stream socket (a regular file, a terminal, a device or a datagram
 * socket has no reader to lose).  Returns 1 if fd is watched. */
int ch_notify_watch_reader(struct ch_notify *n, int fd);

/* Waits do not start once *stop is set by one of sigs (SIGINT, SIGTERM,
 * SIGHUP...), which must not be blocked by the caller. */
void ch_notify_stop_on(struct ch_notify *n, volatile sig_atomic_t *stop,
    const sigset_t *sigs);

/*
 * Wait up to timeout_ns (-1: forever) for a change.  Returns 1 when
 * something may have changed, 0 on timeout or when a signal interrupted
 * the wait or *stop was already set (the caller checks its flags),
 * CH_NOTIFY_GONE when the watched output's reader went away, -1 on error.
 */
int ch_notify_wait(struct ch_notify *n, int64_t timeout_ns);

/* One-shot: wait up to timeout_ns for any change in the directory. */
void ch_notify_wait_dir(int dirfd, int64_t timeout_ns);

#endif
