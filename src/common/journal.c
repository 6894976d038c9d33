/* journal.c - the offset journal (see journal.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "journal.h"
#include "parse.h"

static void
clean(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < len; src++)
		dst[i++] = (*src == '\t' || *src == '\n' || *src == '\r') ?
		    ' ' : *src;
	dst[i] = '\0';
}

static void
offstr(char *buf, size_t len, uint64_t v)
{
	if (v == CH_NO_OFFSET)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

int
ch_journal_append(struct ch_channel *ch, const char *subscriber,
    const char *action, uint64_t old, uint64_t new, const char *reason,
    struct ch_error *err)
{
	char line[1024], t[40], o[24], n[24], r[512], user[64];
	struct passwd *pw = getpwuid(geteuid());
	int fd, len;

	ch_format_time(t, sizeof t, ch_now_ns(), 1);
	offstr(o, sizeof o, old);
	offstr(n, sizeof n, new);
	clean(r, sizeof r, reason && *reason ? reason : "-");
	if (pw)
		clean(user, sizeof user, pw->pw_name);
	else
		snprintf(user, sizeof user, "%ld", (long)geteuid());
	len = snprintf(line, sizeof line, "%s\t%s[%ld]:%s\t%s\t%s\t%s\t%s\t%s\n",
	    t, ch_prog, (long)getpid(), user, subscriber, action, o, n, r);
	if (len < 0 || (size_t)len >= sizeof line)
		len = (int)strlen(line);
	fd = ch_open_file(ch->dirfd, CH_JOURNAL_FILE,
	    O_WRONLY | O_APPEND | O_CREAT, 0666);
	if (fd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	if (ch_write_full(fd, line, (size_t)len) < 0 || ch_fdatasync(fd) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "journal");
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "journal");
	/* The journal is created by its first entry, and a new name lasts
	 * through a power loss only once the directory is fsynced; whoever
	 * created it may have died before.  Once per process. */
	if (!ch->journal_synced) {
		if (ch_fsync_dir(ch->dirfd) < 0)
			return ch_err_sys(err, CH_EXIT_FAIL, "journal: fsync "
			    "channel directory");
		ch->journal_synced = 1;
	}
	return 0;
}

/* Copy field i (tab separated) of line into dst. */
static void
field(const char *line, int i, char *dst, size_t len, int rest)
{
	const char *p = line;

	while (i-- > 0 && p) {
		p = strchr(p, '\t');
		if (p)
			p++;
	}
	if (!p) {
		dst[0] = '\0';
		return;
	}
	size_t n = rest ? strcspn(p, "\n") : strcspn(p, "\t\n");
	if (n >= len)
		n = len - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
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
		field(line, 0, e.time, sizeof e.time, 0);
		field(line, 1, e.who, sizeof e.who, 0);
		field(line, 2, e.subscriber, sizeof e.subscriber, 0);
		field(line, 3, e.action, sizeof e.action, 0);
		field(line, 4, e.old, sizeof e.old, 0);
		field(line, 5, e.new, sizeof e.new, 0);
		field(line, 6, e.reason, sizeof e.reason, 1);
		if (!e.action[0])
			continue;	/* a torn last line */
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
