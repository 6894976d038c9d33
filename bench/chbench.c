/*
 * chbench.c - timing helper for bench/bench.sh (built by `make bench` only).
 *
 * Every mode prints one line of key=value pairs, so that the driver can
 * take medians over runs.  Latencies are CLOCK_MONOTONIC, in microseconds.
 *
 *   chbench gen N SIZE           N deterministic lines of SIZE bytes (with \n)
 *   chbench fsync FILE N SIZE    append SIZE bytes + fdatasync, N times:
 *                                p50_us p99_us ops_s MB_s
 *   chbench spawn N [-i IN] [-a OUT] PROG [ARG...]
 *                                posix_spawn + wait N times (stdin from IN,
 *                                stdout appended to OUT, else /dev/null):
 *                                p50_us p99_us per_s maxrss_kb
 *   chbench rss [-i IN] PROG [ARG...]
 *                                run once: secs maxrss_kb (of the child)
 *   chbench ping N 'CMD'         write a 100-byte line into CMD's stdin, wait
 *                                for one line on its stdout, N times
 *                                (chpub --sync=always -p answers after the
 *                                fdatasync): p50_us p99_us
 *   chbench e2e N 'WCMD' 'RCMD'  a timestamped line into WCMD's stdin until
 *                                it comes out of RCMD's stdout: p50_us p99_us
 *   chbench clonesub DIR NAME N  copy subscriber DIR/NAME to DIR/bN0..N-1
 *   chbench mksegs CHANNEL N     grow an empty channel (fresh from chpub)
 *                                to N segments of one record each, with
 *                                the project's own encoders and no fsync
 *                                (a rollover per record through chpub
 *                                would cost two fsyncs each)
 *
 * spawn and rss fail when the child does; -x before PROG accepts any exit
 * status (chlag exits non-zero for a lagging subscriber).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "fsutil.h"
#include "index.h"
#include "segment.h"

extern char **environ;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "chbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
print_pcts(uint64_t *lat, size_t n)
{
	if (n == 0) {
		printf(" n=0");
		return;
	}
	qsort(lat, n, sizeof *lat, cmp_u64);
	size_t i99 = n * 99 / 100;
	if (i99 >= n)
		i99 = n - 1;
	printf(" n=%zu p50_us=%.1f p99_us=%.1f", n, lat[n / 2] / 1e3,
	    lat[i99] / 1e3);
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
cmd_gen(int argc, char **argv)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	static char pad[8192];
	uint64_t x = 0x9e3779b97f4a7c15u;

	if (argc < 4)
		return 2;
	unsigned long long n = strtoull(argv[2], NULL, 10);
	size_t size = strtoul(argv[3], NULL, 10);
	if (size < 12 || size > 4000)
		return 2;
	for (size_t i = 0; i < sizeof pad; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		pad[i] = al[(x >> 33) % 36];
	}
	size_t cap = 1 << 20, used = 0;
	char *out = malloc(cap + 8192);
	if (!out)
		die("malloc");
	for (unsigned long long i = 0; i < n; i++) {
		char *p = out + used;
		snprintf(p, 12, "%010llu ", i % 10000000000ull);
		memcpy(p + 11, pad + (i * 7919) % 4096, size - 12);
		p[size - 1] = '\n';
		used += size;
		if (used >= cap) {
			if (write_all(1, out, used) < 0)
				die("write");
			used = 0;
		}
	}
	if (used && write_all(1, out, used) < 0)
		die("write");
	return 0;
}

static int
cmd_fsync(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	size_t n = strtoul(argv[3], NULL, 10), size = strtoul(argv[4], NULL, 10);
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	char *buf = malloc(size);
	uint64_t *lat = calloc(n, sizeof *lat);

	if (fd < 0 || !buf || !lat)
		die("fsync setup");
	memset(buf, 'x', size);
	buf[size - 1] = '\n';
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t a = now_ns();
		if (write_all(fd, buf, size) < 0 || fdatasync(fd) < 0)
			die("write+fdatasync");
		lat[i] = now_ns() - a;
	}
	double s = (now_ns() - t0) / 1e9;
	printf("ops_s=%.0f MB_s=%.2f", n / s, n * (double)size / s / 1e6);
	print_pcts(lat, n);
	printf("\n");
	close(fd);
	return 0;
}

static int any_status;

/* -i IN / -a OUT options, then PROG ARGS; returns the index of PROG. */
static int
spawn_opts(int argc, char **argv, int a, posix_spawn_file_actions_t *fa)
{
	int in = 0, out = 0;

	posix_spawn_file_actions_init(fa);
	for (; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "-x")) {
			any_status = 1;
			a--;
		} else if (!strcmp(argv[a], "-i")) {
			posix_spawn_file_actions_addopen(fa, 0, argv[a + 1],
			    O_RDONLY, 0);
			in = 1;
		} else if (!strcmp(argv[a], "-a")) {
			posix_spawn_file_actions_addopen(fa, 1, argv[a + 1],
			    O_WRONLY | O_CREAT | O_APPEND, 0644);
			out = 1;
		} else
			break;
	}
	if (!in)
		posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
	if (!out)
		posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
	return a;
}

static long
run_wait(pid_t pid)
{
	struct rusage ru;
	int st;

	if (wait4(pid, &st, 0, &ru) < 0)
		die("wait4");
	if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && !any_status)) {
		fprintf(stderr, "chbench: child failed (status %d)\n", st);
		exit(1);
	}
	return ru.ru_maxrss;
}

static int
cmd_spawn(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;

	if (argc < 4)
		return 2;
	size_t n = strtoul(argv[2], NULL, 10);
	int a = spawn_opts(argc, argv, 3, &fa);
	uint64_t *lat = calloc(n, sizeof *lat);
	long rss = 0;

	if (a >= argc || !lat)
		return 2;
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		pid_t pid;
		uint64_t s = now_ns();
		if ((errno = posix_spawnp(&pid, argv[a], &fa, NULL, argv + a,
		    environ)))
			die("posix_spawnp");
		long r = run_wait(pid);
		lat[i] = now_ns() - s;
		if (r > rss)
			rss = r;
	}
	double s = (now_ns() - t0) / 1e9;
	printf("per_s=%.0f maxrss_kb=%ld", n / s, rss);
	print_pcts(lat, n);
	printf("\n");
	return 0;
}

static int
cmd_rss(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	int a = spawn_opts(argc, argv, 2, &fa);
	if (a >= argc)
		return 2;
	uint64_t t0 = now_ns();
	if ((errno = posix_spawnp(&pid, argv[a], &fa, NULL, argv + a, environ)))
		die("posix_spawnp");
	long rss = run_wait(pid);
	printf("secs=%.4f maxrss_kb=%ld\n", (now_ns() - t0) / 1e9, rss);
	return 0;
}

/* Read until the data ends in '\n' (one line in flight); 0 on timeout. */
static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t used = 0;

	while (used + 1 < cap) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, timeout_ms) <= 0)
			return 0;
		ssize_t r = read(fd, buf + used, cap - 1 - used);
		if (r <= 0)
			return 0;
		used += (size_t)r;
		if (buf[used - 1] == '\n')
			break;
	}
	buf[used] = 0;
	return 1;
}

static pid_t
spawn_sh(const char *cmd, int in, int out, int c1, int c2)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *av[] = { "sh", "-c", (char *)cmd, NULL };
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_addclose(&fa, c1);
	posix_spawn_file_actions_addclose(&fa, c2);
	/* Its own process group: stopped as a whole with kill(-pid). */
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	if ((errno = posix_spawnp(&pid, "sh", &fa, &at, av, environ)))
		die("spawn sh");
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return pid;
}

/* e2e (reader given) or ping (one command answering each line). */
static int
cmd_lat(size_t n, const char *wcmd, const char *rcmd)
{
	int win[2], rout[2], devnull = open("/dev/null", O_RDWR);
	pid_t wp, rp = -1;
	char line[256];
	int seen = 0, rc = 0;
	size_t i = 0;
	uint64_t *lat = calloc(n, sizeof *lat);

	if (pipe(win) || pipe(rout) || devnull < 0 || !lat)
		die("setup");
	signal(SIGPIPE, SIG_IGN);
	if (rcmd) {
		wp = spawn_sh(wcmd, win[0], devnull, win[1], rout[0]);
		rp = spawn_sh(rcmd, devnull, rout[1], rout[0], win[1]);
	} else
		wp = spawn_sh(wcmd, win[0], rout[1], win[1], rout[0]);
	close(devnull);
	close(win[0]);
	close(rout[1]);
	/* Warm up until the pipeline answers (the reader may start late). */
	for (int t = 0; t < 200 && !seen; t++) {
		if (write_all(win[1], "warm\n", 5) < 0)
			die("write");
		seen = read_line(rout[0], line, sizeof line, 50);
	}
	if (!seen) {
		fprintf(stderr, "chbench: no answer from the pipeline\n");
		rc = 1;
		goto out;
	}
	while (read_line(rout[0], line, sizeof line, rcmd ? 200 : 50))
		;
	for (i = 0; i < n; i++) {
		char rec[128];
		uint64_t t = now_ns();
		int len = snprintf(rec, sizeof rec, "%020" PRIu64 " %077d\n",
		    t, 0);
		if (write_all(win[1], rec, (size_t)len) < 0)
			die("write");
		if (!read_line(rout[0], line, sizeof line, 5000)) {
			fprintf(stderr, "chbench: timeout\n");
			rc = 1;
			break;
		}
		lat[i] = now_ns() - t;
	}
	printf("mode=%s", rcmd ? "e2e" : "ping");
	print_pcts(lat, i);
	printf("\n");
out:
	close(win[1]);
	if (rp > 0)
		kill(-rp, SIGTERM);
	waitpid(wp, NULL, 0);
	if (rp > 0)
		waitpid(rp, NULL, 0);
	return rc;
}

static int
copy_file(int sdir, int ddir, const char *name)
{
	char buf[65536];
	int in = openat(sdir, name, O_RDONLY), out;
	ssize_t r;

	if (in < 0)
		return errno == ENOENT ? 0 : -1;
	out = openat(ddir, name, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (out < 0)
		return -1;
	while ((r = read(in, buf, sizeof buf)) > 0)
		if (write_all(out, buf, (size_t)r) < 0)
			return -1;
	close(in);
	close(out);
	return 0;
}

static int
cmd_clonesub(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
	int src = dir >= 0 ? openat(dir, argv[3], O_RDONLY | O_DIRECTORY) : -1;
	size_t n = strtoul(argv[4], NULL, 10);

	if (src < 0)
		die("open subscriber");
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "b%zu", i);
		if (mkdirat(dir, name, 0777) < 0 && errno != EEXIST)
			die("mkdir");
		int d = openat(dir, name, O_RDONLY | O_DIRECTORY);
		if (d < 0 || copy_file(src, d, "offset") < 0 ||
		    copy_file(src, d, "lock") < 0)
			die("copy");
		close(d);
	}
	printf("cloned=%zu\n", n);
	return 0;
}

static int
cmd_mksegs(int argc, char **argv)
{
	struct ch_error err;
	unsigned char sealbuf[CH_SEAL_MAX];
	uint64_t base = 0, seq = 0;
	uint32_t format = 0;

	if (argc < 4)
		return 2;
	int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
	size_t n = strtoul(argv[3], NULL, 10);
	if (dir < 0)
		die("open channel");
	/* One record per segment, framed by the library in the format of
	 * the channel's first segment, and a seal. */
	for (size_t i = 0; i < n; i++) {
		struct ch_seghdr h;
		struct ch_batch b;
		struct ch_piece pc;
		int fd;
		int64_t ts = ch_now_ns();
		if (i > 0) {
			struct ch_idxent e = { base, seq, ts };
			if (ch_segment_create(dir, base, format, seq, ts, 0, 0, 0666,
			    &err) < 0 ||
			    ch_index_append(dir, &e, 0, &err) < 0)
				goto fail;
		}
		if (ch_segment_open(dir, base, 1, &fd, &h, &err) < 0)
			goto fail;
		format = h.format;
		char msg[100];
		int len = snprintf(msg, sizeof msg, "segment %zu", i);
		ch_batch_init(&b, h.format, 1 << 20, 0);
		if (ch_batch_add(&b, NULL, 0, msg, (size_t)len, &err) < 0)
			goto fail;
		ch_batch_take(&b, &h, seq, ts, UINT64_MAX, CH_SEG_HDR, NULL, &pc);
		if (ch_pwritev_full(fd, pc.iov, pc.niov, CH_SEG_HDR) < 0)
			die("write");
		uint64_t total = pc.len;
		ch_batch_free(&b);
		seq++;
		if (i + 1 < n) {
			struct ch_seal s = { 1, ts, ts };
			uint32_t sl;
			unsigned char *seal = ch_seal_make(sealbuf, &h, seq, ts,
			    &s, &sl);
			if (ch_pwrite_full(fd, seal, sl,
			    (off_t)(CH_SEG_HDR + total)) < 0)
				die("write");
		}
		close(fd);
		base += total;
	}
	printf("segments=%zu\n", n);
	return 0;
fail:
	fprintf(stderr, "chbench: %s\n", err.msg);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: chbench gen|fsync|spawn|rss|ping|e2e|"
		    "clonesub ...\n");
		return 2;
	}
	const char *m = argv[1];
	if (!strcmp(m, "gen"))
		return cmd_gen(argc, argv);
	if (!strcmp(m, "fsync"))
		return cmd_fsync(argc, argv);
	if (!strcmp(m, "spawn"))
		return cmd_spawn(argc, argv);
	if (!strcmp(m, "rss"))
		return cmd_rss(argc, argv);
	if (!strcmp(m, "ping") && argc >= 4)
		return cmd_lat(strtoul(argv[2], NULL, 10), argv[3], NULL);
	if (!strcmp(m, "e2e") && argc >= 5)
		return cmd_lat(strtoul(argv[2], NULL, 10), argv[3], argv[4]);
	if (!strcmp(m, "clonesub"))
		return cmd_clonesub(argc, argv);
	if (!strcmp(m, "mksegs"))
		return cmd_mksegs(argc, argv);
	fprintf(stderr, "chbench: unknown mode %s\n", m);
	return 2;
}
