/* lock.c - flock(2) helpers. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "lock.h"

int
ch_lock_open(int dirfd, const char *name, int *fdp, struct ch_error *err)
{
	int fd = ch_open_file(dirfd, name, O_RDWR | O_CREAT, 0666);

	if (fd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "lock file %s", name);
	*fdp = fd;
	return 0;
}

int
ch_lock_open_existing(int dirfd, const char *name, int *fdp,
    struct ch_error *err)
{
	int fd = ch_open_file(dirfd, name, O_RDWR, 0);

	if (fd < 0 && errno != ENOENT)
		return ch_err_sys(err, CH_EXIT_FAIL, "lock file %s", name);
	*fdp = fd;
	return 0;
}

volatile sig_atomic_t *ch_lock_stop;

int
ch_flock(int fd, int op, int64_t wait_ns)
{
	if (wait_ns == CH_LOCK_WAIT) {
		while (flock(fd, op) < 0) {
			if (errno != EINTR || (ch_lock_stop && *ch_lock_stop))
				return -1;
		}
		return 0;
	}
	if (flock(fd, op | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK || wait_ns == CH_LOCK_NOWAIT)
		return -1;
	/* Bounded wait: poll with a growing sleep (flock has no timeout). */
	int64_t deadline = ch_ns_add(ch_mono_ns(), wait_ns);
	long sleep_ns = 1000000;
	for (;;) {
		struct timespec ts = { 0, sleep_ns };
		nanosleep(&ts, NULL);
		if (flock(fd, op | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -1;
		if (ch_mono_ns() >= deadline) {
			errno = EWOULDBLOCK;
			return -1;
		}
		if (sleep_ns < 50000000)
			sleep_ns *= 2;
	}
}
