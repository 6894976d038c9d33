/* journal.c - the offset journal (see journal.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "journal.h"
#include "parse.h"

/* A malloc'd copy of src with tabs and line ends made spaces (fields are
 * tab-separated, one line each); NULL when out of memory. */
static char *
clean(const char *src)
{
	char *dst = strdup(src);

	for (char *p = dst; p && *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
	return dst;
}

static void
offstr(char *buf, size_t len, uint64_t v)
{
	if (v == CH_NO_OFFSET)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Does the journal open on fd end in the middle of a line (a write cut
 * short by a full disk or a crash)?  1, 0, or -1 with errno. */
static int
torn_line(int fd)
{
	struct stat st;
	char last;

	if (fstat(fd, &st) < 0)
		return -1;
	if (st.st_size == 0)
		return 0;
	if (ch_pread_full(fd, &last, 1, st.st_size - 1) != 1)
		return -1;
	return last != '\n';
}

int
ch_journal_append(struct ch_channel *ch, const char *subscriber,
    const char *action, uint64_t old, uint64_t new, const char *reason,
    struct ch_error *err)
{
	char t[40], o[24], n[24], uid[24], *line = NULL, *r, *user;
	struct passwd *pw = getpwuid(geteuid());
	int fd, len = -1, rc = -1;

	/* Sized from its parts: a reason (an --import FILE, a --time) or a
	 * user name may be long, and a line cut short would lose its end
	 * of line and run into the next one. */
	ch_format_time(t, sizeof t, ch_now_ns(), 1);
	offstr(o, sizeof o, old);
	offstr(n, sizeof n, new);
	snprintf(uid, sizeof uid, "%ld", (long)geteuid());
	r = clean(reason && *reason ? reason : "-");
	user = clean(pw ? pw->pw_name : uid);
	if (r && user)
		len = asprintf(&line, "%s\t%s[%ld]:%s\t%s\t%s\t%s\t%s\t%s\n", t,
		    ch_prog, (long)getpid(), user, subscriber, action, o, n, r);
	free(r);
	free(user);
	if (!line || len < 0) {
		errno = ENOMEM;
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	}
	fd = ch_open_file(ch->dirfd, CH_JOURNAL_FILE,
	    O_RDWR | O_APPEND | O_CREAT, 0666);	/* reads its last byte */
	if (fd < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "journal");
		goto out;
	}
	/* A torn last line would run into this one and take it with it: end
	 * it first.  Two appenders racing here add an empty line, which
	 * readers skip. */
	int torn = torn_line(fd);
	if (torn < 0 || (torn && ch_write_full(fd, "\n", 1) < 0) ||
	    ch_write_full(fd, line, (size_t)len) < 0 || ch_fdatasync(fd) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "journal");
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "journal");
		goto out;
	}
	/* The journal is created by its first entry, and a new name lasts
	 * through a power loss only once the directory is fsynced; whoever
	 * created it may have died before.  Once per process. */
	if (!ch->journal_synced) {
		if (ch_fsync_dir(ch->dirfd) < 0) {
			ch_err_sys(err, CH_EXIT_FAIL, "journal: fsync channel "
			    "directory");
			goto out;
		}
		ch->journal_synced = 1;
	}
	rc = 0;
out:
	free(line);
	return rc;
}

/* Cut the field starting at *p at its tab (or the end of the line) and
 * move *p to the next; the last field takes the rest of the line. */
static const char *
field(char **p, int last)
{
	char *s = *p, *e;

	if (!s)
		return "";
	e = s + strcspn(s, last ? "\n" : "\t\n");
	*p = *e == '\t' && !last ? e + 1 : NULL;
	*e = '\0';
	return s;
}

int
ch_journal_read(struct ch_channel *ch, const char *subscriber,
    void (*fn)(void *ctx, const struct ch_journal_entry *e), void *ctx,
    struct ch_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int fd;

	fd = ch_open_file(ch->dirfd, CH_JOURNAL_FILE, O_RDONLY, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	}
	while (getline(&line, &cap, f) > 0) {
		struct ch_journal_entry e;
		char *p = line;
		e.time = field(&p, 0);
		e.who = field(&p, 0);
		e.subscriber = field(&p, 0);
		e.action = field(&p, 0);
		e.old = field(&p, 0);
		e.new = field(&p, 0);
		/* Every whole line has a reason ("-" for none): a line
		 * without one was cut short (a crash or a full disk) and its
		 * last field may be cut too. */
		if (!p)
			continue;
		e.reason = field(&p, 1);
		if (subscriber && strcmp(subscriber, e.subscriber) != 0)
			continue;
		fn(ctx, &e);
	}
	free(line);
	if (ferror(f)) {
		fclose(f);
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	}
	fclose(f);
	return 0;
}
