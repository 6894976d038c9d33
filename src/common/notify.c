/* notify.c - inotify with a polling fallback. */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

#define MASK (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | \
    IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB)

/* CH_NOTIFY_POLL=1 forces the polling fallback (tests exercise it). */
static int
getenv_poll_only(void)
{
	const char *v = getenv("CH_NOTIFY_POLL");

	return v && v[0] == '1';
}

int
ch_notify_open(struct ch_notify *n, int dirfd)
{
	char path[64];

	n->fd = -1;
	n->out_fd = -1;
	n->stop = NULL;
	sigemptyset(&n->stopsigs);
	if (getenv_poll_only())
		return 0;
	n->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->fd < 0)
		return 0;
	snprintf(path, sizeof path, "/proc/self/fd/%d", dirfd);
	if (inotify_add_watch(n->fd, path, MASK | IN_ONLYDIR) < 0) {
		close(n->fd);
		n->fd = -1;
		return 0;
	}
	return 1;
}

void
ch_notify_close(struct ch_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

int
ch_notify_watch_reader(struct ch_notify *n, int fd)
{
	struct stat st;
	int type;
	socklen_t len = sizeof type;

	if (fstat(fd, &st) < 0)
		return 0;
	/* A datagram socket has no reader to lose: its errors (an ICMP
	 * port unreachable) are for the next send to report. */
	if (S_ISSOCK(st.st_mode) &&
	    (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (type != SOCK_STREAM && type != SOCK_SEQPACKET)))
		return 0;
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return 0;
	n->out_fd = fd;
	return 1;
}

void
ch_notify_stop_on(struct ch_notify *n, volatile sig_atomic_t *stop,
    const sigset_t *sigs)
{
	n->stop = stop;
	n->stopsigs = *sigs;
}

int
ch_notify_wait(struct ch_notify *n, int64_t timeout_ns)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	/* events 0: a pipe whose reader has gone reports POLLERR, a socket
	 * shut down both ways POLLHUP, whatever is asked for. */
	struct pollfd p[2] = { { n->fd, POLLIN, 0 }, { n->out_fd, 0, 0 } };
	int64_t ns = timeout_ns;
	sigset_t old;
	int rc, saved;

	/* Polling: a sleep that covers the whole timeout is a timeout
	 * (callers commit when idle); a shorter one only means "look
	 * again". */
	if (n->fd < 0 && (ns < 0 || ns > CH_NOTIFY_POLL_NS))
		ns = CH_NOTIFY_POLL_NS;
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	if (n->stop) {
		if (sigprocmask(SIG_BLOCK, &n->stopsigs, &old) < 0)
			return -1;
		if (*n->stop) {
			(void)sigprocmask(SIG_SETMASK, &old, NULL);
			return 0;
		}
	}
	rc = ppoll(p, 2, ns < 0 ? NULL : &ts, n->stop ? &old : NULL);
	saved = errno;
	if (n->stop && sigprocmask(SIG_SETMASK, &old, NULL) < 0)
		return -1;
	errno = saved;
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if (p[1].revents & (POLLERR | POLLHUP))
		return CH_NOTIFY_GONE;
	if (p[1].revents & POLLNVAL) {
		errno = EBADF;
		return -1;
	}
	/* The inotify fd itself is broken (closed under us): no wait on it
	 * can ever end with an event, and taking this for a timeout would
	 * make every wait return at once, a busy loop. */
	if (p[0].revents & (POLLNVAL | POLLERR)) {
		errno = p[0].revents & POLLNVAL ? EBADF : EIO;
		return -1;
	}
	if (!(p[0].revents & POLLIN))	/* timed out */
		return ns == timeout_ns ? 0 : 1;
	/* Drain: any event (or IN_Q_OVERFLOW) just means "look again".  A
	 * read that leaves room for the largest event got them all, so the
	 * usual wake-up costs one read(2), not a second one for EAGAIN (an
	 * event left behind only means one more look). */
	ssize_t got;
	while ((got = read(n->fd, buf, sizeof buf)) >
	    (ssize_t)(sizeof buf - sizeof(struct inotify_event) - NAME_MAX - 1))
		;
	return 1;
}

void
ch_notify_wait_dir(int dirfd, int64_t timeout_ns)
{
	struct ch_notify n;

	ch_notify_open(&n, dirfd);
	ch_notify_wait(&n, timeout_ns);
	ch_notify_close(&n);
}
