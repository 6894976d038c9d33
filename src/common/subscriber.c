/* subscriber.c - subscriber names, locks and offset files. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fsutil.h"
#include "lock.h"
#include "subscriber.h"

#define OFFSET_FILE "offset"
#define LOCK_FILE "lock"
#define OFFSET_MAGIC "chtools-offset 1\n"

int
ch_sub_check_name(const char *name, struct ch_error *err)
{
	size_t n = strlen(name);

	if (n == 0)
		return ch_err(err, CH_EXIT_USAGE, "empty subscriber name");
	if (n > CH_SUB_NAME_MAX)
		return ch_err(err, CH_EXIT_USAGE,
		    "subscriber name is longer than %d characters",
		    CH_SUB_NAME_MAX);
	if (name[0] == '.')
		return ch_err(err, CH_EXIT_USAGE,
		    "invalid subscriber name '%s' (must not start with '.')",
		    name);
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
			if ((unsigned char)c < 0x20 || c == 0x7f)
				return ch_err(err, CH_EXIT_USAGE,
				    "invalid subscriber name (control character "
				    "0x%02x; use letters, digits, '.', '_', '-')",
				    (unsigned char)c);
			return ch_err(err, CH_EXIT_USAGE,
			    "invalid subscriber name '%s' (use letters, digits, "
			    "'.', '_' and '-')", name);
		}
	}
	return 0;
}

static int
open_subsdir(struct ch_channel *ch, int create, struct ch_error *err)
{
	int fd = ch_open_dir(ch->dirfd, CH_SUBSCRIBERS_DIR);

	if (fd < 0 && errno == ENOENT && create) {
		/* Made durable at once: a registration inside it is
		 * acknowledged as soon as its offset is written. */
		if ((mkdirat(ch->dirfd, CH_SUBSCRIBERS_DIR, 0777) < 0 &&
		    errno != EEXIST) || ch_fsync_dir(ch->dirfd) < 0)
			return ch_err_sys(err, CH_EXIT_FAIL, "%s/",
			    CH_SUBSCRIBERS_DIR);
		fd = ch_open_dir(ch->dirfd, CH_SUBSCRIBERS_DIR);
	}
	if (fd < 0)
		return ch_err_sys(err, errno == ENOENT ? CH_EXIT_NOINPUT :
		    CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
	return fd;
}

/* Open subscribers/NAME as a directory, never through a symlink. */
static int
open_subdir(struct ch_channel *ch, const char *name)
{
	int subs = ch_open_dir(ch->dirfd, CH_SUBSCRIBERS_DIR), fd, saved;

	if (subs < 0)
		return -1;
	fd = ch_open_dir(subs, name);
	saved = errno;
	close(subs);
	errno = saved;
	return fd;
}

static int
same_file(int fd, int dirfd, const char *name)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0 ||
	    fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static pid_t
holder_pid(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid;
}

/*
 * The pid of a chsub holding the lock file's flock, 0 if the holder is no
 * chsub (choffset, chcompact take only the flock).  A chsub takes its
 * fcntl lock right after the flock: one seen between the two is given a
 * few milliseconds, so that "busy" names it.
 */
static pid_t
running_holder(int fd)
{
	const struct timespec ms = { 0, 1000000 };
	pid_t pid = holder_pid(fd);

	for (int i = 0; pid == 0 && i < 20; i++) {
		nanosleep(&ms, NULL);
		pid = holder_pid(fd);
	}
	return pid;
}

/*
 * A lock file just created by a process that is not the subscriber's
 * consumer (choffset, chcompact: administration): its creation time
 * would read as a run now, and keep the subscriber for another whole
 * expiry period.  Time 0 instead, which
 * ch_sub_seen reads as no stamp, as it read the missing file.  An
 * explicit time needs the file's owner: this process, which created it.
 */
static int
unstamp(struct ch_sub *s, struct ch_error *err)
{
	const struct timespec t[2] = { { 0, UTIME_OMIT }, { 0, 0 } };

	if (futimens(s->lockfd, t) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': clear "
		    "the stamp of %s/%s/" LOCK_FILE, s->name,
		    CH_SUBSCRIBERS_DIR, s->name);
	return 0;
}

int
ch_sub_acquire(struct ch_channel *ch, const char *name, int64_t wait_ns,
    int flags, struct ch_sub *s, struct ch_error *err)
{
	int subs, dfd = -1, lfd = -1, made = 0;

	memset(s, 0, sizeof *s);
	s->dirfd = s->lockfd = -1;
	if (ch_sub_check_name(name, err) < 0)
		return -1;
	subs = open_subsdir(ch, !(flags & CH_SUB_EXISTING), err);
	if (subs < 0) {
		if (err->code == CH_EXIT_NOINPUT)
			ch_err(err, CH_EXIT_NOINPUT, "subscriber '%s' is not "
			    "registered", name);
		return -1;
	}
	for (int tries = 0; tries < 100; tries++) {
		int created = 0;
		if (!(flags & CH_SUB_EXISTING)) {
			if (mkdirat(subs, name, 0777) == 0)
				made = 1;
			else if (errno != EEXIST) {
				ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s'",
				    name);
				goto fail;
			}
		}
		dfd = ch_open_dir(subs, name);
		if (dfd < 0) {
			if (errno == ENOENT && (flags & CH_SUB_EXISTING)) {
				/* Deleted: taking its lock must not bring
				 * it back as a bare directory. */
				ch_err(err, CH_EXIT_NOINPUT, "subscriber '%s' is "
				    "not registered", name);
				goto fail;
			}
			if (errno == ENOENT)
				continue;	/* deleted under us: again */
			ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': %s/%s",
			    name, CH_SUBSCRIBERS_DIR, name);
			goto fail;
		}
		/* Who creates the lock file stamps it too (below): through
		 * futimens, a clock moved for the process (libfaketime, in
		 * the tests) moves the stamp as it moves the commit time
		 * of a registration, which creating the file does not. */
		lfd = ch_open_file(dfd, LOCK_FILE, O_RDWR | O_CREAT | O_EXCL,
		    0666);
		if (lfd >= 0)
			created = 1;
		else if (errno == EEXIST)
			lfd = ch_open_file(dfd, LOCK_FILE, O_RDWR, 0);
		if (lfd < 0) {
			if (errno == ENOENT) {
				close(dfd);
				dfd = -1;
				continue;
			}
			ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s' lock",
			    name);
			goto fail;
		}
		if (ch_flock(lfd, LOCK_EX, wait_ns) < 0) {
			if (errno == EWOULDBLOCK) {
				pid_t pid = running_holder(lfd);
				if (pid > 0)
					ch_err(err, CH_EXIT_TEMPFAIL,
					    "subscriber '%s' is held by another "
					    "chsub (pid %ld); use --wait to queue",
					    name, (long)pid);
				else
					ch_err(err, CH_EXIT_TEMPFAIL,
					    "subscriber '%s' is busy (locked by "
					    "another process)", name);
			} else {
				ch_err_sys(err, CH_EXIT_FAIL,
				    "lock subscriber '%s'", name);
			}
			goto fail;
		}
		/* Deregistered while we waited?  Then start over. */
		if (!same_file(dfd, subs, name) ||
		    !same_file(lfd, dfd, LOCK_FILE)) {
			close(lfd);
			close(dfd);
			lfd = dfd = -1;
			continue;
		}
		if (flags & CH_SUB_LIVE) {
			struct flock fl = { .l_type = F_WRLCK,
			    .l_whence = SEEK_SET };
			if (fcntl(lfd, F_SETLK, &fl) < 0) {
				ch_err_sys(err, CH_EXIT_FAIL,
				    "lock subscriber '%s'", name);
				goto fail;
			}
		}
		close(subs);
		s->ch = ch;
		snprintf(s->name, sizeof s->name, "%s", name);
		s->dirfd = dfd;
		s->lockfd = lfd;
		if ((flags & CH_SUB_LIVE) || (created &&
		    !(flags & CH_SUB_UNSEEN))) {
			if (ch_sub_stamp(s, err) < 0) {
				ch_sub_release(s);
				return -1;
			}
		} else if (created && unstamp(s, err) < 0) {
			ch_sub_release(s);
			return -1;
		}
		return 0;
	}
	ch_err(err, CH_EXIT_TEMPFAIL, "subscriber '%s' keeps being deleted",
	    name);
fail:
	if (lfd >= 0)
		close(lfd);
	if (dfd >= 0)
		close(dfd);
	/* A directory this call made, left empty (its lock file could not
	 * be opened: EMFILE, say), is no subscriber: not left behind.  One
	 * that holds a file is someone's, and rmdir leaves it. */
	if (made)
		(void)unlinkat(subs, name, AT_REMOVEDIR);
	close(subs);
	return -1;
}

int
ch_sub_stamp(struct ch_sub *s, struct ch_error *err)
{
	/* "Now" (NULL), which write access allows: an explicit time needs
	 * the file's owner, and in a channel shared by a group the lock
	 * file is often another member's. */
	if (futimens(s->lockfd, NULL) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': stamp "
		    "%s/%s/" LOCK_FILE, s->name, CH_SUBSCRIBERS_DIR, s->name);
	return 0;
}

int
ch_sub_seen(struct ch_channel *ch, const char *name, int64_t *when,
    struct ch_error *err)
{
	struct stat st;
	int dfd = open_subdir(ch, name);

	*when = 0;
	if (dfd < 0 && errno == ENOENT)
		return 0;
	if (dfd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': %s/%s",
		    name, CH_SUBSCRIBERS_DIR, name);
	int rc = fstatat(dfd, LOCK_FILE, &st, AT_SYMLINK_NOFOLLOW);
	int saved = errno;
	close(dfd);
	if (rc < 0 && saved == ENOENT)
		return 0;
	if (rc < 0) {
		errno = saved;
		return ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': %s/%s/"
		    LOCK_FILE, name, CH_SUBSCRIBERS_DIR, name);
	}
	*when = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

void
ch_sub_release(struct ch_sub *s)
{
	if (s->lockfd >= 0)
		close(s->lockfd);	/* drops the flock and the POSIX lock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->lockfd = s->dirfd = -1;
}

pid_t
ch_sub_running(struct ch_channel *ch, const char *name)
{
	pid_t pid;
	int dfd, fd;

	dfd = open_subdir(ch, name);
	if (dfd < 0)
		return 0;
	fd = ch_open_file(dfd, LOCK_FILE, O_RDONLY, 0);
	close(dfd);
	if (fd < 0)
		return 0;
	pid = holder_pid(fd);
	close(fd);
	return pid;
}

size_t
ch_offset_format(const struct ch_offset *o, char *buf, size_t len)
{
	size_t n;
	int w;

	/* snprintf returns what it would have written: summing those past a
	 * full buffer would return a length beyond it, which the caller then
	 * writes out.  Report "does not fit" as 0 instead. */
	w = snprintf(buf, len,
	    OFFSET_MAGIC "offset %" PRIu64 "\nseq %" PRIu64 "\ntime %" PRId64 "\n",
	    o->offset, o->seq, o->time);
	if (w < 0 || (size_t)w >= len)
		return 0;
	n = (size_t)w;
	for (int i = 0; i < o->nhist; i++) {
		const struct ch_commit *c = &o->hist[i];
		w = snprintf(buf + n, len - n,
		    "history %" PRId64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		    " %" PRIu64 "\n", c->time, c->offset, c->seq,
		    c->end_offset, c->end_seq);
		if (w < 0 || (size_t)w >= len - n)
			return 0;
		n += (size_t)w;
	}
	const struct ch_retry *r = ch_offset_retry(o);
	if (r) {
		char next[24] = "-";
		if (!r->gave_up)
			snprintf(next, sizeof next, "%" PRId64, r->next);
		w = snprintf(buf + n, len - n, "retry %" PRIu64 " %" PRIu64 " %"
		    PRIu64 " %" PRId64 " %s %s\n", r->offset, r->records,
		    r->attempts, r->last, next,
		    r->how == CH_FAIL_TIMEOUT ? "timeout" :
		    r->how == CH_FAIL_SIGNAL ? "signal" : "exit");
		if (w < 0 || (size_t)w >= len - n)
			return 0;
		n += (size_t)w;
		if (r->how != CH_FAIL_TIMEOUT) {
			/* "exit 1" / "signal 9": the code is the last value */
			n--;
			w = snprintf(buf + n, len - n, " %d\n", r->code);
			if (w < 0 || (size_t)w >= len - n)
				return 0;
			n += (size_t)w;
		}
	}
	w = snprintf(buf + n, len - n, "crc32c %08x\n", ch_crc32c(0, buf, n));
	if (w < 0 || (size_t)w >= len - n)
		return 0;
	return n + (size_t)w;
}

/*
 * One number at p, as the grammar's `number` (channel(5)): 'u' an offset
 * or count (0..2^64-1, into *u), 's' a time (-2^63..2^63-1, into *s).  A
 * value outside its type is damage: it is refused, never wrapped (a
 * negative offset must not become a huge one, nor a time of 2^63 a
 * negative one).  Returns the byte after it, or NULL.
 */
static const char *
number(const char *p, const char *end, char type, uint64_t *u, int64_t *s)
{
	int neg = 0;

	if (p < end && *p == '-' && type == 's') {
		neg = 1;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	uint64_t x = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		uint64_t d = (uint64_t)(*p++ - '0');
		if (x > (UINT64_MAX - d) / 10)
			return NULL;
		x = x * 10 + d;
	}
	if (type == 'u') {
		*u = x;
	} else if (neg) {
		if (x > (uint64_t)INT64_MAX + 1)
			return NULL;
		*s = x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x;
	} else {
		if (x > (uint64_t)INT64_MAX)
			return NULL;
		*s = (int64_t)x;
	}
	return p;
}

/* Does p start with the literal w (bytes, case-sensitive)? */
static int
word(const char *p, const char *end, const char *w)
{
	size_t l = strlen(w);
	return (size_t)(end - p) >= l && memcmp(p, w, l) == 0;
}

/*
 * Parse "KEY V1 V2 ..." at *pp (one line).  `types` has one letter per
 * value, as number() takes them, stored in u[i] or s[i].
 */
static int
line(const char **pp, const char *end, const char *key, const char *types,
    uint64_t *u, int64_t *s)
{
	const char *p = *pp;

	if (!word(p, end, key))
		return -1;
	p += strlen(key);
	for (int i = 0; types[i]; i++) {
		if (p >= end || *p != ' ')
			return -1;
		p = number(p + 1, end, types[i], &u[i], &s[i]);
		if (!p)
			return -1;
	}
	if (p >= end || *p != '\n')
		return -1;
	*pp = p + 1;
	return 0;
}

/*
 * "retry OFFSET RECORDS ATTEMPTS LAST NEXT FAILURE" (channel(5)): NEXT
 * is a time or "-" (chsub gave up), FAILURE "exit CODE" (0..255),
 * "signal CODE" (1..127) or "timeout", CODE without leading zeros.
 * OFFSET must be the file's offset; RECORDS and ATTEMPTS at least 1.
 */
static int
parse_retry(const char **pp, const char *end, struct ch_offset *o)
{
	static const struct { const char *word; int how, min, max; } hows[] = {
		{ " exit ", CH_FAIL_EXIT, 0, 255 },
		{ " signal ", CH_FAIL_SIGNAL, 1, 127 },
		{ " timeout\n", CH_FAIL_TIMEOUT, 0, 0 },
	};
	struct ch_retry r = { 0 };
	uint64_t u[4];
	int64_t t[4];
	const char *p = *pp;

	if (!word(p, end, "retry"))
		return -1;
	p += 5;
	for (int i = 0; i < 4; i++) {
		if (p >= end || *p != ' ')
			return -1;
		p = number(p + 1, end, i < 3 ? 'u' : 's', &u[i], &t[i]);
		if (!p)
			return -1;
	}
	r.offset = u[0];
	r.records = u[1];
	r.attempts = u[2];
	r.last = t[3];
	if (p >= end || *p != ' ')
		return -1;
	p++;
	/* NEXT: "-" alone, or a time (which may start with '-') */
	if (word(p, end, "- ")) {
		r.gave_up = 1;
		p++;
	} else if (!(p = number(p, end, 's', u, &r.next))) {
		return -1;
	}
	size_t k;
	for (k = 0; k < sizeof hows / sizeof hows[0]; k++)
		if (word(p, end, hows[k].word))
			break;
	if (k == sizeof hows / sizeof hows[0])
		return -1;
	r.how = hows[k].how;
	p += strlen(hows[k].word);
	if (r.how != CH_FAIL_TIMEOUT) {
		/* code = "0" / %x31-39 *2DIGIT */
		int c = 0, digits = 0;
		while (p < end && *p >= '0' && *p <= '9' && digits < 4) {
			c = c * 10 + (*p++ - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || (digits > 1 && p[-digits] == '0') ||
		    c < hows[k].min || c > hows[k].max || p >= end || *p != '\n')
			return -1;
		r.code = c;
		p++;
	}
	if (r.offset != o->offset || r.records == 0 || r.attempts == 0)
		return -1;
	o->retry = r;
	*pp = p;
	return 0;
}

const struct ch_retry *
ch_offset_retry(const struct ch_offset *o)
{
	return o->retry.records && o->retry.offset == o->offset ? &o->retry :
	    NULL;
}

const char *
ch_retry_status(const struct ch_retry *r, char *buf, size_t len)
{
	if (r->how == CH_FAIL_TIMEOUT)
		snprintf(buf, len, "timeout");
	else if (r->how == CH_FAIL_SIGNAL)
		snprintf(buf, len, "signal %d", r->code);
	else
		snprintf(buf, len, "exit %d", r->code);
	return buf;
}

int
ch_offset_parse(const char *text, size_t len, struct ch_offset *o,
    struct ch_error *err)
{
	const char *p = text, *end = text + len;
	uint64_t u[5];
	int64_t t[5];
	size_t ml = strlen(OFFSET_MAGIC);

	memset(o, 0, sizeof *o);
	if (len < ml || memcmp(p, OFFSET_MAGIC, ml) != 0)
		return ch_err(err, CH_EXIT_DATAERR,
		    "offset file is not a chtools offset file (format 1)");
	/* The last line is the checksum of everything before it. */
	const char *crcline = end;
	if (len > ml && end[-1] == '\n') {
		crcline = end - 1;
		while (crcline > text && crcline[-1] != '\n')
			crcline--;
	}
	unsigned int want;
	char tail[32];
	size_t tl = (size_t)(end - crcline);
	if (tl == 0 || tl >= sizeof tail)
		return ch_err(err, CH_EXIT_DATAERR, "offset file has no checksum");
	memcpy(tail, crcline, tl);
	tail[tl] = '\0';
	char extra;
	if (sscanf(tail, "crc32c %8x%c", &want, &extra) != 2 || extra != '\n' ||
	    tl != 16)
		return ch_err(err, CH_EXIT_DATAERR, "offset file has no checksum");
	if (ch_crc32c(0, text, (size_t)(crcline - text)) != want)
		return ch_err(err, CH_EXIT_DATAERR,
		    "offset file checksum mismatch (damaged or edited by hand; "
		    "use choffset to change offsets)");
	p += ml;
	end = crcline;
	if (line(&p, end, "offset", "u", u, t) < 0)
		goto bad;
	o->offset = u[0];
	if (line(&p, end, "seq", "u", u, t) < 0)
		goto bad;
	o->seq = u[0];
	if (line(&p, end, "time", "s", u, t) < 0)
		goto bad;
	o->time = t[0];
	while (p < end && (size_t)(end - p) > 8 && memcmp(p, "history ", 8) == 0) {
		if (o->nhist == CH_HISTORY_MAX ||
		    line(&p, end, "history", "suuuu", u, t) < 0)
			goto bad;
		struct ch_commit *c = &o->hist[o->nhist++];
		c->time = t[0];
		c->offset = u[1];
		c->seq = u[2];
		c->end_offset = u[3];
		c->end_seq = u[4];
	}
	if (p < end && parse_retry(&p, end, o) < 0)
		goto bad;
	if (p != end)
		goto bad;
	return 0;
bad:
	return ch_err(err, CH_EXIT_DATAERR, "offset file is malformed near "
	    "byte %zu", (size_t)(p - text));
}

int
ch_sub_read(struct ch_channel *ch, const char *name, struct ch_offset *o,
    struct ch_error *err)
{
	char *text;
	size_t len;
	int rc, dfd;

	if (ch_sub_check_name(name, err) < 0)
		return -1;
	dfd = open_subdir(ch, name);
	if (dfd < 0 || ch_slurp(dfd, OFFSET_FILE, 65536, &text, &len) < 0) {
		int saved = errno;
		if (dfd >= 0)
			close(dfd);
		errno = saved;
		if (errno == ENOENT || errno == ENOTDIR)
			return ch_err(err, CH_EXIT_NOINPUT,
			    "subscriber '%s' is not registered", name);
		if (errno == EFBIG)
			return ch_err(err, CH_EXIT_DATAERR,
			    "subscriber '%s': offset file is too large", name);
		if (dfd < 0)
			return ch_err_sys(err, CH_EXIT_FAIL,
			    "subscriber '%s': %s/%s", name, CH_SUBSCRIBERS_DIR,
			    name);
		return ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': %s",
		    name, OFFSET_FILE);
	}
	close(dfd);
	rc = ch_offset_parse(text, len, o, err);
	free(text);
	if (rc < 0)
		ch_err_prefix(err, "subscriber '%s'", name);
	return rc;
}

/* Writing the offset file failed (errno). */
static int
commit_failed(struct ch_sub *s, struct ch_error *err)
{
	if (ch_channel_gone(s->ch->dirfd, errno, err))
		return -1;
	return ch_err_sys(err, CH_EXIT_FAIL, "commit offset of subscriber '%s'",
	    s->name);
}

int
ch_sub_prepare(struct ch_sub *s, const struct ch_offset *o,
    struct ch_error *err)
{
	char buf[4096];
	size_t n = ch_offset_format(o, buf, sizeof buf);

	if (n == 0)	/* cannot happen: 16 entries take under 2 KiB */
		return ch_err(err, CH_EXIT_SOFTWARE,
		    "offset of subscriber '%s' does not fit its buffer", s->name);
	/* The records before the offset first: under sync none or periodic
	 * they may still be in the page cache only, and an offset that
	 * survived a power loss they did not would point past the end, or
	 * later into records published again under the same offsets. */
	if (ch_channel_sync(s->ch, err) < 0)
		return ch_err_prefix(err, "commit offset of subscriber '%s'",
		    s->name);
	if (ch_atomic_prepare(s->dirfd, OFFSET_FILE, buf, n, 0666) < 0)
		return commit_failed(s, err);
	return 0;
}

/* The new offset file is in place, but what makes it durable failed
 * (errno): say so, and return CH_NOT_DURABLE. */
static int
not_durable(struct ch_sub *s, struct ch_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
not_durable(struct ch_sub *s, struct ch_error *err, const char *fmt, ...)
{
	char what[300];
	int saved = errno;
	va_list ap;

	/* The directory synced is gone: the channel is being removed
	 * (rm -rf), and the offset with it. */
	if (ch_channel_gone(s->ch->dirfd, saved, err))
		return -1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	errno = saved;
	ch_err_sys(err, CH_EXIT_FAIL, "offset of subscriber '%s' written, but "
	    "a power loss may undo it: %s", s->name, what);
	return CH_NOT_DURABLE;
}

int
ch_sub_commit(struct ch_sub *s, struct ch_error *err)
{
	int rc = ch_atomic_commit(s->dirfd, OFFSET_FILE);

	if (rc == CH_NOT_DURABLE)
		return not_durable(s, err, "fsync %s/%s/", CH_SUBSCRIBERS_DIR,
		    s->name);
	if (rc < 0)
		return commit_failed(s, err);
	/* subscribers/NAME was made by whoever first took its lock, with no
	 * sync (that may not even have been us, or it may have died before
	 * registering): until subscribers/ is fsynced, a power loss can take
	 * the directory and the offset with it.  Once per process. */
	if (!s->entry_synced) {
		int subs = open_subsdir(s->ch, 0, err);
		if (subs < 0) {
			if (ch_channel_gone(s->ch->dirfd, err->sys_errno,
			    err))
				return -1;
			ch_err_prefix(err, "offset of subscriber '%s' written, "
			    "but a power loss may undo it", s->name);
			return CH_NOT_DURABLE;
		}
		if (ch_fsync_dir(subs) < 0) {
			close(subs);
			return not_durable(s, err, "fsync %s/",
			    CH_SUBSCRIBERS_DIR);
		}
		close(subs);
		s->entry_synced = 1;
	}
	return 0;
}

void
ch_sub_abort(struct ch_sub *s)
{
	ch_atomic_abort(s->dirfd, OFFSET_FILE);
}

int
ch_sub_write(struct ch_sub *s, const struct ch_offset *o, struct ch_error *err)
{
	if (ch_sub_prepare(s, o, err) < 0)
		return -1;
	return ch_sub_commit(s, err);
}

void
ch_offset_advance(struct ch_offset *o, uint64_t offset, uint64_t seq,
    int64_t now, uint64_t end_offset, uint64_t end_seq)
{
	struct ch_commit c = { now, offset, seq, end_offset, end_seq };
	int n = o->nhist;

	o->offset = offset;
	o->seq = seq;
	o->time = now;
	memset(&o->retry, 0, sizeof o->retry);
	/* The newest entry is provisional while it is less than a gap after
	 * the one before it: later commits replace it, so entries stay a gap
	 * apart and the window spans time.  A move backwards always stays. */
	int64_t gap = 0;
	/* Times come from the file: their difference may not fit int64_t.
	 * Saturate (a huge gap is a gap; a huge step back is a step back). */
	if (n >= 2 && __builtin_sub_overflow(o->hist[n - 1].time,
	    o->hist[n - 2].time, &gap))
		gap = o->hist[n - 2].time < 0 ? INT64_MAX : INT64_MIN;
	if (n >= 2 && gap < CH_HISTORY_MIN_GAP_NS &&
	    offset >= o->hist[n - 1].offset &&
	    o->hist[n - 1].offset >= o->hist[n - 2].offset) {
		o->hist[n - 1] = c;
		return;
	}
	if (n == CH_HISTORY_MAX) {
		memmove(o->hist, o->hist + 1,
		    sizeof o->hist[0] * (CH_HISTORY_MAX - 1));
		o->nhist--;
	}
	o->hist[o->nhist++] = c;
}

/* Empty a deleted subscriber's directory (at dfd) and remove it (subs/
 * hidden).  A chsub that opened it before it was renamed may create a
 * lock file in it meanwhile, and then starts over: empty it again. */
static int
remove_deleted(int subs, const char *hidden, int dfd)
{
	static const char *const files[] = { OFFSET_FILE, "." OFFSET_FILE ".tmp",
	    LOCK_FILE };

	for (int tries = 0; tries < 10; tries++) {
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
			if (unlinkat(dfd, files[i], 0) < 0 && errno != ENOENT)
				return -1;
		if (unlinkat(subs, hidden, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY && errno != EEXIST)
			return -1;
	}
	return -1;
}

int
ch_sub_deleted_name(const char *name)
{
	return strncmp(name, CH_SUB_DELETED_PREFIX,
	    strlen(CH_SUB_DELETED_PREFIX)) == 0;
}

int
ch_sub_remove_deleted(int subs, const char *hidden)
{
	int dfd = ch_open_dir(subs, hidden), rc;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	rc = remove_deleted(subs, hidden, dfd);
	int saved = errno;
	close(dfd);
	errno = saved;
	return rc;
}

int
ch_sub_delete(struct ch_sub *s, struct ch_error *err)
{
	char hidden[sizeof CH_SUB_DELETED_PREFIX + 24 + CH_SUB_NAME_MAX];
	int subs, rc;

	/* One rename takes it away whole: subscribers/NAME is gone, or it
	 * is all there.  Removing its files in place instead left a moment
	 * when a starting chsub found the directory without an offset file,
	 * registered anew at the end and made the removal fail.  The hidden
	 * name is no subscriber's (it starts with '.'), and is this
	 * process's: no other deletion uses it. */
	snprintf(hidden, sizeof hidden, CH_SUB_DELETED_PREFIX "%ld.%s",
	    (long)getpid(), s->name);
	subs = open_subsdir(s->ch, 0, err);
	if (subs < 0)
		return ch_err_prefix(err, "delete subscriber '%s'", s->name);
	rc = renameat(subs, s->name, subs, hidden);
	if (rc < 0 && (errno == ENOTEMPTY || errno == EEXIST)) {
		/* left by a process that had our pid and crashed */
		if (ch_sub_remove_deleted(subs, hidden) == 0)
			rc = renameat(subs, s->name, subs, hidden);
	}
	if (rc < 0 || ch_fsync_dir(subs) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "delete subscriber '%s'", s->name);
		close(subs);
		return -1;
	}
	/* Deleted.  What is left under the hidden name is ignored by every
	 * tool, and chcompact --repair removes it if this does not: no
	 * failure from here on undoes the deletion, none is one.  The sync
	 * keeps a power loss from bringing the leftover back. */
	if (remove_deleted(subs, hidden, s->dirfd) == 0)
		(void)ch_fsync_dir(subs);
	close(subs);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
ch_sub_list(struct ch_channel *ch, char ***names, size_t *n,
    struct ch_error *err)
{
	struct ch_error ignored;
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int fd;
	DIR *d;

	*names = NULL;
	*n = 0;
	fd = open_subsdir(ch, 0, err);
	if (fd < 0)
		return err->code == CH_EXIT_NOINPUT ? 0 : -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		char path[sizeof de->d_name + 16];
		if (ch_sub_check_name(de->d_name, &ignored) < 0)
			continue;
		/* Registered = has an offset file (a crash between mkdir and
		 * the first commit leaves a bare directory). */
		snprintf(path, sizeof path, "%s/" OFFSET_FILE, de->d_name);
		if (fstatat(fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			/* Left out, it would not hold compaction back:
			 * chcompact would delete what it has not read. */
			ch_err_sys(err, CH_EXIT_FAIL, "subscriber '%s': %s",
			    de->d_name, OFFSET_FILE);
			closedir(d);
			ch_sub_list_free(v, cnt);
			return -1;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(v, cap * sizeof *nv);
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[cnt] = strdup(de->d_name)))
			goto oom;
		cnt++;
	}
	if (errno) {
		ch_err_sys(err, CH_EXIT_FAIL, "%s/", CH_SUBSCRIBERS_DIR);
		closedir(d);
		ch_sub_list_free(v, cnt);
		return -1;
	}
	closedir(d);
	if (cnt > 1)	/* qsort(NULL, 0, ...) is undefined */
		qsort(v, cnt, sizeof *v, cmp_names);
	*names = v;
	*n = cnt;
	return 0;
oom:
	ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	closedir(d);
	ch_sub_list_free(v, cnt);
	return -1;
}

void
ch_sub_list_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
