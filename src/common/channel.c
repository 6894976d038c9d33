/* channel.c - opening, creating and measuring a channel. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "format.h"
#include "fsutil.h"
#include "lock.h"
#include "sealsync.h"
#include "segment.h"
#include "tailmark.h"

int
ch_channel_resolve(const char *arg, char *out, size_t outlen,
    struct ch_error *err)
{
	const char *root = getenv("CH_ROOT");
	int n;

	if (!arg[0])
		return ch_err(err, CH_EXIT_USAGE, "empty channel name");
	if (!strchr(arg, '/') && root && root[0]) {
		/* A name under CH_ROOT is one directory in it, never CH_ROOT
		 * itself or its parent. */
		if (strcmp(arg, ".") == 0 || strcmp(arg, "..") == 0)
			return ch_err(err, CH_EXIT_USAGE,
			    "'%s' is not a channel name under CH_ROOT (a path "
			    "with a '/', such as ./%s, is taken as it is)", arg,
			    arg);
		n = snprintf(out, outlen, "%s/%s", root, arg);
	} else {
		n = snprintf(out, outlen, "%s", arg);
	}
	if (n < 0 || (size_t)n >= outlen)
		return ch_err(err, CH_EXIT_USAGE, "channel path too long");
	return 0;
}

int
ch_channel_names(struct ch_channel *ch, const char *arg, struct ch_error *err)
{
	char path[sizeof ch->path];
	struct stat a, b;

	if (ch_channel_resolve(arg, path, sizeof path, err) < 0)
		return -1;
	if (stat(path, &a) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return ch_err_sys(err, CH_EXIT_FAIL, "%s", path);
	}
	if (fstat(ch->dirfd, &b) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "channel");
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Names a crashed creation may have left; anything else means the
 * directory is somebody else's and we must not touch it. */
static int
creation_leftover(const char *name)
{
	static const char *ok[] = {
		".", "..", CH_APPEND_LOCK, CH_COMPACT_LOCK, CH_IDX_FILE,
		"." CH_IDX_FILE ".tmp", "00000000000000000000.seg",
		".00000000000000000000.seg.tmp", CH_SUBSCRIBERS_DIR,
		"." CH_CONFIG_FILE ".tmp",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(name, ok[i]) == 0)
			return 1;
	return 0;
}

/* Is the directory empty but for leftovers of a crashed creation (and,
 * with `config`, a channel.yaml)?  0 if so; -1 with a message if not. */
static int
check_empty(int dirfd, int config, struct ch_error *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return ch_err_sys(err, CH_EXIT_FAIL, "read directory");
	}
	while ((errno = 0, de = readdir(d))) {
		if (!creation_leftover(de->d_name) &&
		    !(config && strcmp(de->d_name, CH_CONFIG_FILE) == 0)) {
			/* de lives in d: report before closing it */
			ch_err(err, CH_EXIT_FAIL,
			    "not a channel, and not an empty directory "
			    "(found '%s'); refusing to create a channel here",
			    de->d_name);
			closedir(d);
			return -1;
		}
	}
	if (errno) {
		ch_err_sys(err, CH_EXIT_FAIL, "read directory");
		closedir(d);
		return -1;
	}
	closedir(d);
	return 0;
}

/* The first segment, subscribers/ and the index, in that order: the index
 * is what a reader needs first. */
static int
create_layout(int dirfd, int format, struct ch_error *err)
{
	int64_t now = ch_now_ns();
	struct ch_idxent e = { 0, 0, now };

	if (ch_segment_create(dirfd, 0, (uint32_t)format, 0, now, 0, 1, 0666,
	    err) < 0)
		return -1;
	if (mkdirat(dirfd, CH_SUBSCRIBERS_DIR, 0777) < 0 && errno != EEXIST)
		return ch_err_sys(err, CH_EXIT_FAIL, "create %s/",
		    CH_SUBSCRIBERS_DIR);
	return ch_index_create(dirfd, &e, 1, 0666, err);
}

/* A new channel: its files, and channel.yaml last. */
static int
create_files(int dirfd, int format, struct ch_error *err)
{
	const char *tpl = ch_config_template(format);

	if (create_layout(dirfd, format, err) < 0)
		return -1;
	if (ch_atomic_replace(dirfd, CH_CONFIG_FILE, tpl, strlen(tpl), 0666) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "write %s", CH_CONFIG_FILE);
	return 0;
}

/* Take append.lock, waiting: its descriptor, or -1. */
static int
lock_append(int dirfd, struct ch_error *err)
{
	int fd;

	if (ch_lock_open(dirfd, CH_APPEND_LOCK, &fd, err) < 0)
		return -1;
	if (ch_flock(fd, LOCK_EX, CH_LOCK_WAIT) < 0) {
		ch_err_sys(err, CH_EXIT_FAIL, "lock %s", CH_APPEND_LOCK);
		close(fd);
		return -1;
	}
	return fd;
}

/* Create the channel in the (existing) directory dirfd. */
static int
create_channel(int dirfd, struct ch_error *err)
{
	struct stat st;
	int lockfd, rc = -1, format;

	if (ch_config_new_format(&format, err) < 0)
		return -1;
	/* Refuse somebody else's directory before we put anything in it;
	 * but a channel.yaml found there may be another chpub's, which
	 * finished creating the channel since we looked. */
	if (check_empty(dirfd, 0, err) < 0)
		return fstatat(dirfd, CH_CONFIG_FILE, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -1;
	if ((lockfd = lock_append(dirfd, err)) < 0)
		return -1;
	/* Another chpub may have finished creating it while we waited. */
	if (fstatat(dirfd, CH_CONFIG_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = 0;
		goto out;
	}
	if (check_empty(dirfd, 0, err) < 0 ||
	    create_files(dirfd, format, err) < 0)
		goto out;
	rc = 0;
out:
	close(lockfd);
	return rc;
}

/* 1 if the channel has no index yet, 0 if it has one, -1 on error. */
static int
index_missing(int dirfd, struct ch_error *err)
{
	struct stat st;

	if (fstatat(dirfd, CH_IDX_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT)
		return 1;
	return ch_err_sys(err, CH_EXIT_FAIL, "segment index");
}

/*
 * Set up a channel whose channel.yaml somebody wrote before any chpub ran
 * (to choose its settings), keeping that file as it is: the first segment
 * in the file's format, subscribers/, and the index last, under the append
 * lock.  The index is what a reader needs, so a crash before it leaves a
 * directory the next chpub finishes, as with channel.yaml in a creation.
 */
static int
finish_setup(int dirfd, int format, struct ch_error *err)
{
	int lockfd, rc;

	if (check_empty(dirfd, 1, err) < 0 ||
	    (lockfd = lock_append(dirfd, err)) < 0)
		return -1;
	/* Another chpub may have set it up while we waited. */
	rc = index_missing(dirfd, err);
	if (rc > 0)
		rc = check_empty(dirfd, 1, err) < 0 ||
		    create_layout(dirfd, format, err) < 0 ? -1 : 0;
	close(lockfd);
	return rc;
}

/* The format of the newest segment, for a channel.yaml that names none:
 * writers go on in it.  A header that cannot be read (torn, being
 * written) gives the format of the segment before it, as the writer that
 * mends it would have; CH_FORMAT_NEW if none can be read.  Writers that
 * look at the segment then say what is wrong with it. */
static int
newest_format(int dirfd)
{
	struct ch_error ignored;
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_seghdr h;
	int fd, format = CH_FORMAT_NEW;

	if (ch_index_open(dirfd, &ix, &ignored) < 0)
		return format;
	for (uint64_t i = ix.count; i > 0 && ix.count - i < 3; i--) {
		if (ch_index_get(&ix, i - 1, &e, &ignored) == 0 &&
		    ch_segment_open(dirfd, e.base, 0, &fd, &h, &ignored) == 0) {
			format = (int)h.format;
			close(fd);
			break;
		}
	}
	ch_index_close(&ix);
	return format;
}

/* A channel.yaml without an index: chpub sets the channel up; to every
 * other tool it does not exist yet.  A directory holding more than setup
 * files is left to fail as the damaged channel it is. */
static int
check_setup(struct ch_channel *ch, int flags, struct ch_error *err)
{
	struct ch_error ignored;
	int missing = index_missing(ch->dirfd, err);

	if (missing <= 0)
		return missing;
	if (flags & CH_OPEN_CREATE) {
		int format = ch->cfg.format;
		if (format == CH_FORMAT_UNSET &&
		    ch_config_new_format(&format, err) < 0)
			return -1;
		return finish_setup(ch->dirfd, format, err);
	}
	if (check_empty(ch->dirfd, 1, &ignored) < 0)
		return 0;
	return ch_err(err, CH_EXIT_NOINPUT, "not set up yet: %s is there "
	    "but no index; the first chpub to the channel sets it up",
	    CH_CONFIG_FILE);
}

/*
 * Root changing a channel of another user would leave files of root's
 * there (a new segment, the rewritten index, lock files, offset files,
 * subscribers/NAME/) that the owner can no longer write: the owner's
 * next chpub or chsub fails with "Permission denied".  Refused before
 * anything changes, as logrotate and git refuse such a setup; 0 if the
 * change may go on.  The channel is another user's if its directory is,
 * or its index (a directory root made for a group, the channel in it
 * set up by a member).  In a directory shared by a group (set-group-ID,
 * group-writable) under a umask that leaves group write, what root makes
 * is the group's to write, as every member's is (channel(5)): no refusal.
 */
static int
refuse_foreign(int dirfd, struct ch_error *err)
{
	char owner[64], who[96], hint[192];
	struct passwd *pw;
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (fstat(dirfd, &st) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "open channel");
	int group = (st.st_mode & S_ISGID) && (st.st_mode & S_IWGRP);
	if (group) {
		mode_t mask = umask(0);
		umask(mask);
		if (!(mask & S_IWGRP))
			return 0;
	}
	if (st.st_uid == 0 && fstatat(dirfd, CH_IDX_FILE, &st,
	    AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;	/* not set up: root sets it up */
		return ch_err_sys(err, CH_EXIT_FAIL, "%s", CH_IDX_FILE);
	}
	if (st.st_uid == 0)
		return 0;
	unsigned long uid = (unsigned long)st.st_uid;
	/* runuser -u takes a name only; setpriv takes a number */
	if ((pw = getpwuid(st.st_uid))) {
		snprintf(owner, sizeof owner, "%.63s", pw->pw_name);
		snprintf(who, sizeof who, "%s (uid %lu)", owner, uid);
		snprintf(hint, sizeof hint, "runuser -u %s -- COMMAND, or from "
		    "%s's crontab", owner, owner);
	} else {
		snprintf(owner, sizeof owner, "uid %lu", uid);
		snprintf(who, sizeof who, "%s", owner);
		snprintf(hint, sizeof hint, "setpriv --reuid=%lu --regid=GID "
		    "--clear-groups COMMAND", uid);
	}
	return ch_err(err, CH_EXIT_FAIL, "owned by %s: refusing to change it "
	    "as root: the files root creates or rewrites there would be root's "
	    "and lock %s out (\"Permission denied\"); run this as %s: %s%s",
	    who, owner, owner, hint,
	    group ? "; or, as a member of the group that shares it, under "
	    "umask 002" : "");
}

int
ch_channel_open(const char *arg, int flags, struct ch_channel *ch,
    struct ch_error *err)
{
	struct stat st;

	memset(ch, 0, sizeof *ch);
	ch->arg = arg;
	ch->dirfd = -1;
	if (ch_channel_resolve(arg, ch->path, sizeof ch->path, err) < 0)
		return -1;
	ch->dirfd = open(ch->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ch->dirfd < 0 && errno == ENOENT && (flags & CH_OPEN_CREATE)) {
		int format;
		if (ch_config_new_format(&format, err) < 0)
			return -1;	/* before leaving a directory behind */
		if (ch_mkdir_parents(ch->path, 0777) < 0)
			return ch_err_sys(err, CH_EXIT_FAIL, "create directory");
		ch->dirfd = open(ch->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (ch->dirfd < 0) {
		if (errno == ENOENT)
			return ch_err(err, CH_EXIT_NOINPUT, "no such channel");
		if (errno == ENOTDIR)
			return ch_err(err, CH_EXIT_FAIL,
			    "not a channel (not a directory)");
		return ch_err_sys(err, CH_EXIT_FAIL, "open channel");
	}
	if ((flags & CH_OPEN_CHANGE) && refuse_foreign(ch->dirfd, err) < 0)
		goto fail;
	if ((flags & CH_OPEN_CREATE) &&
	    fstatat(ch->dirfd, CH_CONFIG_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) {
			ch_err_sys(err, CH_EXIT_FAIL, "%s", CH_CONFIG_FILE);
			goto fail;
		}
		if (create_channel(ch->dirfd, err) < 0)
			goto fail;
	}
	if (ch_config_load(ch->dirfd, &ch->cfg, err) < 0 ||
	    check_setup(ch, flags, err) < 0)
		goto fail;
	/* Only writers need it (readers read each segment in its own). */
	if (ch->cfg.format == CH_FORMAT_UNSET &&
	    (flags & (CH_OPEN_CREATE | CH_OPEN_CHANGE)))
		ch->cfg.format = newest_format(ch->dirfd);
	return 0;
fail:
	close(ch->dirfd);
	ch->dirfd = -1;
	return -1;
}

int
ch_channel_check_owner(const char *arg, struct ch_error *err)
{
	char path[4096];
	int fd, rc;

	if (geteuid() != 0)
		return 0;
	if (ch_channel_resolve(arg, path, sizeof path, err) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* opening it for real will say what is wrong */
	rc = refuse_foreign(fd, err);
	close(fd);
	return rc;
}

int
ch_channel_removing(int dirfd)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	int saved = errno, gone = 0;

	for (int i = 0; i < 50 && !gone; i++) {
		if (i)
			nanosleep(&tick, NULL);
		gone = ch_dir_removed(dirfd) || (faccessat(dirfd,
		    CH_CONFIG_FILE, F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno == ENOENT);
	}
	errno = saved;
	return gone;
}

int
ch_channel_gone(int dirfd, int e, struct ch_error *err)
{
	if (e != ENOENT || dirfd < 0 || !ch_channel_removing(dirfd))
		return 0;
	ch_err(err, CH_EXIT_NOINPUT, "channel removed");
	return 1;
}

int
ch_segment_must_exist(int dirfd, struct ch_error *err)
{
	if (err->code != CH_EXIT_NOINPUT)
		return -1;
	if (ch_channel_removing(dirfd))
		return ch_err(err, CH_EXIT_NOINPUT, "channel removed");
	err->code = CH_EXIT_DATAERR;
	return -1;
}

int
ch_channel_removed(const struct ch_channel *ch)
{
	return ch->dirfd >= 0 && ch_dir_removed(ch->dirfd);
}

void
ch_channel_close(struct ch_channel *ch)
{
	if (ch->dirfd >= 0)
		close(ch->dirfd);
	ch->dirfd = -1;
}

/* Where the channel ends; with `sync`, fdatasync each segment on the way
 * to the newest (normally just the newest), and the segments before it
 * that its header says were sealed without a sync (sealsync.h). */
/*
 * The valid end of segment fd, walked from the writers' tail mark when it
 * names this segment and checks out, else from the header: the last
 * record seen from the end of the file could lie inside a torn one
 * (tailmark.h), and an offset given out there would not be a record
 * boundary once the next writer cut it.
 */
static int
segment_end(struct ch_channel *ch, int fd, const struct ch_seghdr *h,
    uint64_t size, struct ch_tail *t, struct ch_error *err)
{
	int markfd = ch_open_file(ch->dirfd, CH_APPEND_LOCK, O_RDONLY, 0);
	int marked = markfd >= 0 && ch_tailmark_tail(markfd, fd, h, size, t);

	if (markfd >= 0)
		close(markfd);
	if (!marked)
		memset(t, 0, sizeof *t);
	return ch_segment_walk(fd, h, size, t, err);
}

static int
channel_end(struct ch_channel *ch, struct ch_end *end, int sync,
    struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_seghdr h;
	struct ch_tail t;
	struct stat st;
	uint64_t base;
	int fd;

	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_get(&ix, ix.count - 1, &e, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	base = e.base;
	for (int hops = 0;; hops++) {
		if (ch_segment_open(ch->dirfd, base, 0, &fd, &h, err) < 0)
			return ch_segment_must_exist(ch->dirfd, err);
		/* A torn tail may be a write in progress: look again briefly
		 * before believing it.  Again from the valid end found, a
		 * record boundary that stays one (writers and repairs only
		 * cut or write over bytes past it), not from the header: the
		 * segment is read once, not four times. */
		for (int tries = 0;; tries++) {
			if (fstat(fd, &st) < 0) {
				close(fd);
				return ch_err_sys(err, CH_EXIT_FAIL, "segment");
			}
			uint64_t size = (uint64_t)st.st_size;
			int rc;
			if (tries && t.file_end <= size) {
				t.torn = 0;
				rc = ch_segment_walk(fd, &h, size, &t, err);
			} else {
				rc = segment_end(ch, fd, &h, size, &t, err);
			}
			if (rc < 0) {
				close(fd);
				return -1;
			}
			if (!t.torn || tries == 3)
				break;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		if (sync && ch_fdatasync(fd) < 0) {
			close(fd);
			return ch_err_sys(err, CH_EXIT_FAIL, "fdatasync segment");
		}
		close(fd);
		end->offset = ch_seg_offset(base, t.end);
		end->seq = t.next_seq;
		end->last_ts = t.last_ts;
		end->active_base = base;
		end->active_created = h.created;
		/* The newest segment: with `sync`, the ones sealed before it
		 * too, if rollovers under sync none left them unsynced. */
		int chain = sync && (h.flags & CH_SEGF_PRED_UNSYNCED);
		if (!t.sealed)
			return chain && ch_sealsync_chain(ch, base, 0, err) < 0 ?
			    -1 : 0;
		/* Sealed: the next segment is the active one, unless a writer
		 * is between sealing and creating it (then this one is the
		 * newest, and so is its chain). */
		char name[CH_SEG_NAME_LEN + 1];
		ch_seg_name(name, end->offset);
		if (faccessat(ch->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			return chain && ch_sealsync_chain(ch, base, 0, err) < 0 ?
			    -1 : 0;
		base = end->offset;
		if (hops > 1000000)
			return ch_err(err, CH_EXIT_DATAERR, "segment chain loops");
	}
}

int
ch_channel_end(struct ch_channel *ch, struct ch_end *end, struct ch_error *err)
{
	return channel_end(ch, end, 0, err);
}

int
ch_channel_sync(struct ch_channel *ch, struct ch_error *err)
{
	struct ch_end end;

	return channel_end(ch, &end, 1, err);
}

/* (An error is not taken for deleted: the start would skip segments
 * that are there.) */
int
ch_segment_exists(struct ch_channel *ch, uint64_t base, struct ch_error *err)
{
	char name[CH_SEG_NAME_LEN + 1];

	ch_seg_name(name, base);
	if (faccessat(ch->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return ch_err_sys(err, CH_EXIT_FAIL, "%s", name);
}

int
ch_channel_start(struct ch_channel *ch, struct ch_start *start,
    struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	uint64_t lo, hi;

	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	/* Deleted segments form a prefix of the index: binary search for
	 * the first one that still exists (usually entry 0). */
	lo = 0;
	hi = ix.count - 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ch_index_get(&ix, mid, &e, err) < 0)
			goto fail;
		int there = ch_segment_exists(ch, e.base, err);
		if (there < 0)
			goto fail;
		if (there)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (ch_index_get(&ix, lo, &e, err) < 0)
		goto fail;
	ch_index_close(&ix);
	start->offset = e.base;
	start->seq = e.first_seq;
	start->index_pos = lo;
	return 0;
fail:
	ch_index_close(&ix);
	return -1;
}

int
ch_channel_locate(struct ch_channel *ch, uint64_t offset, int *fdp,
    struct ch_seghdr *hdr, uint64_t *posp, struct ch_error *err)
{
	struct ch_index ix;
	struct ch_idxent e;
	uint64_t i;

	if (ch_index_open(ch->dirfd, &ix, err) < 0)
		return -1;
	if (ch_index_find(&ix, offset, &i, err) < 0 ||
	    ch_index_get(&ix, i, &e, err) < 0) {
		ch_index_close(&ix);
		return -1;
	}
	ch_index_close(&ix);
	if (ch_segment_open(ch->dirfd, e.base, 0, fdp, hdr, err) < 0)
		return -1;
	*posp = offset - e.base + CH_SEG_HDR;
	return 0;
}
