/*
 * choffset - list, inspect, set, reset, create and delete subscriber
 * offsets, and keep a journal of every change.
 *
 * A change takes the subscriber's lock without waiting (a running chsub
 * holds it: exit 75) and compact.lock shared (so chcompact cannot delete
 * the data an offset is being moved back to), validates the new offset
 * against the channel, writes it atomically and appends to the journal.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "channel.h"
#include "cli.h"
#include "fsutil.h"
#include "journal.h"
#include "lock.h"
#include "offcheck.h"
#include "parse.h"
#include "position.h"
#include "subscriber.h"

enum { OPT_SET = 1, OPT_EARLIEST, OPT_LATEST, OPT_TIME, OPT_SHIFT,
    OPT_IMPORT };

static int opt_create, opt_delete, opt_dry_run, opt_all, opt_history,
    opt_export;
static const char *opt_set, *opt_time, *opt_shift, *opt_import;
static int npos;
static struct ch_pos pos;
static const char *pos_text;
static char *pos_arg;		/* the option as given, for the journal */

static struct poptOption change_options[] = {
	{ "set", '\0', POPT_ARG_STRING, &opt_set, OPT_SET,
	    "move to OFFSET (a record boundary)", "OFFSET" },
	{ "earliest", '\0', POPT_ARG_NONE, NULL, OPT_EARLIEST,
	    "move to the earliest record", NULL },
	{ "latest", '\0', POPT_ARG_NONE, NULL, OPT_LATEST,
	    "move to the end (skip everything unread)", NULL },
	{ "time", '\0', POPT_ARG_STRING, &opt_time, OPT_TIME,
	    "move to the first record published at or after TIME", "TIME" },
	{ "shift", '\0', POPT_ARG_STRING, &opt_shift, OPT_SHIFT,
	    "move N records forward (+N) or back (-N)", "[+-]N" },
	{ "create", '\0', POPT_ARG_NONE, &opt_create, 0,
	    "register the subscriber (at --latest unless told otherwise)", NULL },
	{ "delete", '\0', POPT_ARG_NONE, &opt_delete, 0,
	    "deregister the subscriber", NULL },
	{ "all", '\0', POPT_ARG_NONE, &opt_all, 0,
	    "apply the change to every subscriber", NULL },
	{ "dry-run", '\0', POPT_ARG_NONE, &opt_dry_run, 0,
	    "print NAME OLD -> NEW and change nothing", NULL },
	POPT_TABLEEND
};

static struct poptOption other_options[] = {
	{ "history", '\0', POPT_ARG_NONE, &opt_history, 0,
	    "show the journal of offset changes", NULL },
	{ "export", '\0', POPT_ARG_NONE, &opt_export, 0,
	    "print every offset in a form --import reads", NULL },
	{ "import", '\0', POPT_ARG_STRING, &opt_import, OPT_IMPORT,
	    "set offsets from FILE (- for stdin), all or nothing", "FILE" },
	POPT_TABLEEND
};

static struct poptOption options[] = {
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, change_options, 0,
	    "Changing offsets:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, other_options, 0,
	    "Journal, export and import:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, ch_common_options, 0,
	    "Common options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

static const char *chname;

/* pos_arg = FMT with VAL (the option as given, whatever its length). */
static void
option_text(const char *fmt, const char *val)
{
	free(pos_arg);
	if (asprintf(&pos_arg, fmt, val) < 0)
		ch_die(CH_EXIT_FAIL, NULL, "out of memory");
}
static struct ch_channel ch;
static int compact_fd = -1;

static void
offstr(char *buf, size_t len, int have, uint64_t v)
{
	if (have)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "-");
}

/* Hold compact.lock shared while offsets move (see compact.h). */
static void
hold_compaction(void)
{
	struct ch_error err;

	if (compact_fd >= 0)
		return;
	if (ch_lock_open(ch.dirfd, CH_COMPACT_LOCK, &compact_fd, &err) < 0)
		ch_die_err(chname, &err);
	if (ch_flock(compact_fd, LOCK_SH, CH_LOCK_WAIT) < 0)
		ch_die(CH_EXIT_FAIL, chname, "lock %s: %s", CH_COMPACT_LOCK,
		    strerror(errno));
}

/* Take a subscriber's lock without waiting; busy: 75. */
static int
try_acquire(const char *name, struct ch_sub *s, struct ch_error *err)
{
	/* Administration is no sign of the consumer: a lock file made
	 * here (a registration, a lost one) gets no last-seen stamp. */
	if (ch_sub_acquire(&ch, name, CH_LOCK_NOWAIT, CH_SUB_UNSEEN, s,
	    err) == 0)
		return 0;
	if (err->code == CH_EXIT_TEMPFAIL) {
		pid_t pid = ch_sub_running(&ch, name);
		if (pid > 0)
			return ch_err(err, CH_EXIT_TEMPFAIL, "subscriber '%s' is "
			    "held by a running chsub (pid %ld); stop it first",
			    name, (long)pid);
		return ch_err(err, CH_EXIT_TEMPFAIL, "subscriber '%s' is busy "
		    "(another process is changing it); try again", name);
	}
	return -1;
}

static void
acquire(const char *name, struct ch_sub *s)
{
	struct ch_error err;

	if (try_acquire(name, s, &err) < 0)
		ch_die_err(chname, &err);
}

static void
list(void)
{
	struct ch_error err;
	char **names;
	size_t n;
	int status = 0;

	if (ch_sub_list(&ch, &names, &n, &err) < 0)
		ch_die_err(chname, &err);
	for (size_t i = 0; i < n; i++) {
		struct ch_offset o;
		if (ch_sub_read(&ch, names[i], &o, &err) < 0) {
			ch_report(chname, &err);
			status = err.code;
			continue;
		}
		printf("%s %llu\n", names[i], (unsigned long long)o.offset);
	}
	ch_sub_list_free(names, n);
	exit(ch_finish(status));
}

static void
export(void)
{
	char t[40];

	ch_format_time(t, sizeof t, ch_now_ns(), 0);
	/* One comment line, whatever the path holds: a line end in it
	 * would make a line --import cannot read. */
	fputs("# chtools offsets of ", stdout);
	for (const char *p = ch.path; *p; p++)
		putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
	printf(" at %s\n", t);
	list();
}

/*
 * Note a change that is made in the journal.  The journal is the record
 * of changes, not the change: if it cannot be written (a full disk, a
 * journal that is not a regular file), the change stands and this says
 * so, and choffset still exits 0, so that a script retrying on failure
 * never moves an offset twice.
 */
static void
journal(const char *name, const char *action, uint64_t old, uint64_t new,
    const char *why)
{
	struct ch_error err;
	char a[24], b[24];

	if (ch_journal_append(&ch, name, action, old, new, why, &err) == 0)
		return;
	offstr(a, sizeof a, old != CH_NO_OFFSET, old);
	offstr(b, sizeof b, new != CH_NO_OFFSET, new);
	ch_warn(chname, "subscriber '%s': changed (%s %s -> %s), but the "
	    "journal could not be written: %s", name, action, a, b, err.msg);
}

/* Resolve the requested position for one subscriber. */
static int
target(const char *name, int registered, const struct ch_offset *cur,
    uint64_t *off, uint64_t *seq, struct ch_error *err)
{
	struct ch_pos latest = { .kind = CH_POS_LATEST }, p = pos;
	int clamped;

	if (npos && pos.kind == CH_POS_SHIFT && !registered)
		return ch_err(err, CH_EXIT_NOINPUT, "subscriber '%s' is not "
		    "registered: nothing to shift from", name);
	if (p.kind == CH_POS_SHIFT)	/* the shift counts from there */
		p.offset = cur->offset;
	if (ch_pos_resolve(&ch, npos ? &p : &latest,
	    registered ? cur->seq : 0, off, seq, &clamped, err) < 0) {
		/* The reader's hint names an option of chsub's. */
		static const char hint[] = " (use --skip-corrupt to skip it)";
		size_t ml = strlen(err->msg), hl = sizeof hint - 1;
		if (ml >= hl && strcmp(err->msg + ml - hl, hint) == 0)
			snprintf(err->msg + ml - hl, sizeof err->msg - (ml - hl),
			    " (chsub --skip-corrupt reads past it)");
		return ch_err_prefix(err, "subscriber '%s': %s", name,
		    npos ? pos_text : "--latest");
	}
	if (clamped == -2)
		ch_warn(chname, "subscriber '%s': it is behind the earliest "
		    "record (removed by retention), and %s does not reach it; "
		    "moved to the earliest record, offset %llu", name, pos_text,
		    (unsigned long long)*off);
	else if (clamped)
		ch_warn(chname, "subscriber '%s': %s goes past the %s; clamped "
		    "to offset %llu", name, pos_text,
		    clamped < 0 ? "earliest record" : "end",
		    (unsigned long long)*off);
	return 0;
}

enum { DAMAGED = -1, UNREGISTERED = 0, REGISTERED = 1 };

/*
 * Read NAME's offset and check that the requested change applies to it.
 * A damaged offset file (exit 65 elsewhere) may be replaced by an explicit
 * position other than --shift, or deleted; *damage then says why it is
 * damaged.  When the change does not apply, die; if we hold the lock of a
 * subscriber that is not registered, first remove the directory that
 * taking the lock created, so a refused change leaves nothing behind.
 */
static int
state(const char *name, struct ch_offset *cur, struct ch_sub *held,
    struct ch_error *damage)
{
	struct ch_error err;
	int st;

	if (ch_sub_read(&ch, name, cur, &err) == 0)
		return REGISTERED;
	if (err.code == CH_EXIT_NOINPUT)
		st = UNREGISTERED;
	else if (err.code == CH_EXIT_DATAERR)
		st = DAMAGED;
	else
		ch_die_err(chname, &err);
	if (st == UNREGISTERED && !opt_create)
		ch_err(&err, CH_EXIT_NOINPUT, "subscriber '%s' is not "
		    "registered%s", name, opt_delete ? "" : " (use --create)");
	else if (st == DAMAGED && !opt_delete &&
	    !(npos && pos.kind != CH_POS_SHIFT)) {
		char msg[sizeof err.msg];
		memcpy(msg, err.msg, sizeof msg);
		ch_err(&err, CH_EXIT_DATAERR, "%.800s; reset it with --set, "
		    "--earliest, --latest or --time, or --delete it", msg);
	} else {
		if (st == DAMAGED)
			*damage = err;
		memset(cur, 0, sizeof *cur);
		return st;
	}
	if (held && st == UNREGISTERED) {
		struct ch_error ignored;
		ch_sub_delete(held, &ignored);
	}
	ch_die_err(chname, &err);
}

/*
 * An offset file that disagrees with the channel (restored from another
 * channel or an old backup) is replaced with a warning by an absolute
 * position; a shift, which counts from it, is refused.
 */
static void
distrust(const char *name, const struct ch_offset *cur)
{
	struct ch_start st;
	struct ch_end end;
	struct ch_error err, why;

	if (ch_channel_start(&ch, &st, &err) < 0 ||
	    ch_channel_end(&ch, &end, &err) < 0)
		ch_die_err(chname, &err);
	if (ch_offset_check(&ch, cur, &st, &end, &why) == 0)
		return;
	if (why.code != CH_EXIT_DATAERR)
		ch_die_err(chname, &why);
	if (npos && pos.kind == CH_POS_SHIFT)
		ch_die(CH_EXIT_DATAERR, chname, "subscriber '%s': %.800s; "
		    "--shift cannot count from it: set it with --set, "
		    "--earliest, --latest or --time", name, why.msg);
	ch_warn(chname, "subscriber '%s': %.800s; replacing it", name, why.msg);
}

/* One subscriber's change, worked out in full, its lock held, before
 * anything is written. */
struct plan {
	const char *name;
	struct ch_sub s;
	int st;
	struct ch_offset cur;
	uint64_t off, seq;
	int keep;		/* --create of a registered one: nothing to do */
	struct ch_offset next;	/* the offset file it gets */
	int prepared;		/* next is written beside the old one */
};

/* Take NAME's lock (not with --dry-run); a busy subscriber ends the run
 * with 75 before anything is changed. */
static void
hold(struct plan *p, const char *name)
{
	struct ch_error damage;

	memset(p, 0, sizeof *p);
	p->name = name;
	p->s.dirfd = p->s.lockfd = -1;
	/* Checked before taking the lock too: taking it creates the
	 * subscriber's directory. */
	(void)state(name, &p->cur, NULL, &damage);
	if (!opt_dry_run)
		acquire(name, &p->s);
}

/* Where it goes (compaction held): dies on a refused change. */
static void
plan(struct plan *p)
{
	struct ch_error err, damage;

	p->st = state(p->name, &p->cur, opt_dry_run ? NULL : &p->s, &damage);
	if (p->st == DAMAGED)
		ch_warn(chname, "%s; %s it", damage.msg,
		    opt_delete ? "deleting" : "replacing");
	else if (p->st == REGISTERED && !opt_delete && !opt_create)
		distrust(p->name, &p->cur);
	if (opt_delete)
		return;
	if (p->st == REGISTERED && opt_create) {
		p->keep = 1;
		return;
	}
	if (target(p->name, p->st == REGISTERED, &p->cur, &p->off, &p->seq,
	    &err) < 0) {
		if (!opt_dry_run && p->st == UNREGISTERED) {
			struct ch_error ignored;
			ch_sub_delete(&p->s, &ignored);
		}
		ch_die_err(chname, &err);
	}
}

/* Unless --dry-run or --delete, write the new offset beside the old one:
 * the half of the change that needs free space, so that a full disk stops
 * it before any offset moved. */
static int
prepare(struct plan *p, struct ch_error *err)
{
	struct ch_end end;

	if (p->keep || opt_dry_run || opt_delete)
		return 0;
	p->next = p->cur;
	if (ch_channel_end(&ch, &end, err) < 0)
		return -1;
	ch_offset_advance(&p->next, p->off, p->seq, ch_now_ns(), end.offset,
	    end.seq);
	if (ch_sub_prepare(&p->s, &p->next, err) < 0)
		return -1;
	p->prepared = 1;
	return 0;
}

/* A prepare failed: throw away what was written, remove the directories
 * that taking the locks of unregistered subscribers created, let go. */
static void
undo(struct plan *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ch_error ignored;
		if (p[i].prepared)
			ch_sub_abort(&p[i].s);
		if (p[i].st == UNREGISTERED)
			ch_sub_delete(&p[i].s, &ignored);
		ch_sub_release(&p[i].s);
	}
}

/* change()'s plans, and where its commits are: what a failed commit
 * must throw away. */
static struct plan *plans;
static size_t commit_next, commit_n;

/* The exit status once every change is made: 1 if one of them is in
 * place but a power loss may undo it. */
static int status_left;

/* After a commit: an offset in place whose directory could not be synced
 * stands (it is journaled, and the others go on, so that the command is
 * still all or nothing for what readers see); it is said, and the exit
 * status is 1. */
static void
not_durable(int rc, const struct ch_error *err)
{
	if (rc != CH_NOT_DURABLE)
		return;
	ch_report(chname, err);
	status_left = CH_EXIT_FAIL;
}

/* Say it (NAME OLD -> NEW), and unless --dry-run, do it: put the
 * prepared offset in place (or delete). */
static void
apply(struct plan *p)
{
	struct ch_error err;
	char a[24], b[24];

	if (p->keep) {
		/* Idempotent: registering again moves nothing. */
		ch_info(chname, "subscriber '%s' is already registered",
		    p->name);
		if (!opt_dry_run)
			ch_sub_release(&p->s);
		return;
	}
	if (p->st == REGISTERED)
		offstr(a, sizeof a, 1, p->cur.offset);
	else
		snprintf(a, sizeof a, p->st == DAMAGED ? "?" : "-");
	offstr(b, sizeof b, !opt_delete, p->off);
	printf("%s %s -> %s\n", p->name, a, b);
	if (opt_dry_run)
		return;
	if (opt_delete) {
		if (ch_sub_delete(&p->s, &err) < 0)
			ch_die_err(chname, &err);
		journal(p->name, "delete", p->st == REGISTERED ?
		    p->cur.offset : CH_NO_OFFSET, CH_NO_OFFSET,
		    p->st == DAMAGED ? "--delete (offset file was damaged)" :
		    "--delete");
		ch_sub_release(&p->s);
		return;
	}
	char *why;
	if (asprintf(&why, "%s%s", npos ? pos_arg : "--latest",
	    p->st == DAMAGED ? " (offset file was damaged)" : "") < 0)
		ch_die(CH_EXIT_FAIL, chname, "out of memory");
	int rc = ch_sub_commit(&p->s, &err);
	if (rc < 0 && rc != CH_NOT_DURABLE) {
		free(why);
		for (size_t i = commit_next; i < commit_n; i++)
			if (plans[i].prepared)
				ch_sub_abort(&plans[i].s);
		ch_die_err(chname, &err);
	}
	journal(p->name, p->st == UNREGISTERED ? "create" : "set",
	    p->st == REGISTERED ? p->cur.offset : CH_NO_OFFSET, p->off, why);
	free(why);
	ch_sub_release(&p->s);
	not_durable(rc, &err);
}

/*
 * Change the n subscribers in names, all or nothing: every lock is taken
 * and every new position worked out before the first offset is written,
 * and every new offset file is written beside the old one before the
 * first is put in place, so a busy subscriber (75), a damaged offset
 * file, a refused position or a full disk changes none of them, and a
 * script that retries the whole command on failure never moves one
 * twice.  (What can still fail half way needs no space: a rename or a
 * directory fsync, an I/O error.)
 */
static void
change(char **names, size_t n)
{
	struct plan *p;
	struct ch_error err;

	/* in plans: still reachable when a refused change exits half way,
	 * whatever registers held it (LeakSanitizer) */
	if (!(plans = p = calloc(n ? n : 1, sizeof *p)))
		ch_die(CH_EXIT_FAIL, chname, "out of memory");
	commit_n = n;
	for (size_t i = 0; i < n; i++)
		hold(&p[i], names[i]);
	if (!opt_dry_run)
		hold_compaction();
	for (size_t i = 0; i < n; i++)
		plan(&p[i]);
	for (size_t i = 0; i < n; i++) {
		if (prepare(&p[i], &err) < 0) {
			undo(p, n);
			if (n > 1)
				ch_die(err.code, chname, "%.900s; none of the "
				    "%zu offsets was changed", err.msg, n);
			ch_die_err(chname, &err);
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* a commit that dies leaves no prepared file behind */
		commit_next = i + 1;
		apply(&p[i]);
	}
	free(p);
}

static void
print_entry(void *ctx, const struct ch_journal_entry *e)
{
	(void)ctx;
	printf("%s  %-8s %-16s %s -> %s  %s  (%s)\n", e->time, e->action,
	    e->subscriber, e->old, e->new, e->reason, e->who);
}

/* --import's lines, file-static so that an exit through ch_die() half way
 * leaves them reachable (LeakSanitizer cannot count on a pointer in a
 * register of the frame that called exit). */
static struct item {
	char name[CH_SUB_NAME_MAX + 1];
	uint64_t off, seq;
	struct ch_sub s;
	struct ch_offset cur;
	int registered, damaged;
	size_t lineno;
} *items;
static char *line;

/* Descriptors kept free for drop_held: an import that failed because
 * the process ran out of them (EMFILE) must still be able to look at
 * and remove what it created. */
static int spare_fds[4] = { -1, -1, -1, -1 };

static void
reserve_fds(void)
{
	for (int i = 0; i < 4; i++)
		if ((spare_fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			ch_die(CH_EXIT_FAIL, chname, "/dev/null: %s",
			    strerror(errno));
}

/* Let go of the first `held` subscribers of an import that changes
 * nothing after all, removing the directories that taking the locks of
 * unregistered ones created (no offset file: nothing else is there). */
static void
drop_held(size_t held)
{
	for (int i = 0; i < 4; i++)
		if (spare_fds[i] >= 0) {
			close(spare_fds[i]);
			spare_fds[i] = -1;
		}
	for (size_t i = 0; i < held; i++) {
		struct ch_offset o;
		struct ch_error e;
		if (ch_sub_read(&ch, items[i].name, &o, &e) < 0 &&
		    e.code == CH_EXIT_NOINPUT)
			ch_sub_delete(&items[i].s, &e);
		ch_sub_release(&items[i].s);
	}
}

/* How many words separated by blanks s holds. */
static size_t
fields(const char *s)
{
	size_t n = 0;

	for (s += strspn(s, " \t"); *s; s += strspn(s, " \t")) {
		n++;
		s += strcspn(s, " \t");
	}
	return n;
}

/* Parse and validate the whole import file before changing anything. */
static void
import(const char *file)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	struct ch_error err;
	size_t cap = 0, n = 0, lineno = 0;

	if (!f)
		ch_die(CH_EXIT_NOINPUT, chname, "%s: %s", file, strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		char *name = line, *num;
		uint64_t off;
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		/* NAME, one space, OFFSET in decimal digits, as --export
		 * writes it and --set takes it: no sign, no blank. */
		num = strchr(line, ' ');
		if (!num || num == line || !num[1] || fields(line) != 2)
			ch_die(CH_EXIT_USAGE, chname, "%s:%zu: expected 'NAME "
			    "OFFSET'", file, lineno);
		*num++ = '\0';
		if (strspn(num, "0123456789") != strlen(num)) {
			for (char *p = num; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
			ch_die(CH_EXIT_USAGE, chname, "%s:%zu: offset '%.40s' "
			    "is not decimal digits", file, lineno, num);
		}
		if (ch_parse_u64(num, &off, &err) < 0)
			ch_die(CH_EXIT_USAGE, chname, "%s:%zu: offset: %s", file,
			    lineno, err.msg);
		if (ch_sub_check_name(name, &err) < 0)
			ch_die(CH_EXIT_USAGE, chname, "%s:%zu: %s", file, lineno,
			    err.msg);
		for (size_t i = 0; i < n; i++)
			if (strcmp(items[i].name, name) == 0)
				ch_die(CH_EXIT_USAGE, chname, "%s:%zu: subscriber "
				    "'%s' is already set on line %zu", file, lineno,
				    name, items[i].lineno);
		items = realloc(items, (n + 1) * sizeof *items);
		if (!items)
			ch_die(CH_EXIT_FAIL, chname, "out of memory");
		memset(&items[n], 0, sizeof items[n]);
		memcpy(items[n].name, name, strlen(name) + 1);	/* checked: <= 128 */
		items[n].lineno = lineno;
		struct ch_pos p = { .kind = CH_POS_OFFSET, .offset = off };
		if (ch_pos_resolve(&ch, &p, 0, &items[n].off, &items[n].seq,
		    NULL, &err) < 0)
			ch_die(err.code, chname, "%s:%zu: %s", file, lineno,
			    err.msg);
		n++;
	}
	/* getline's -1 is not always the end (out of memory): a file
	 * read in part must not be applied as if it were whole. */
	if (ferror(f) || !feof(f))
		ch_die(CH_EXIT_FAIL, chname, "%s: %s", file, strerror(errno));
	if (f != stdin)
		fclose(f);
	free(line);
	/* All or nothing: hold every subscriber, then compaction, and only
	 * then check the offsets again, since chcompact may have deleted
	 * data after the first check.  A failure releases everything and
	 * removes the directories that taking the locks created. */
	if (!opt_dry_run) {
		size_t held;
		int failed = 0;
		reserve_fds();
		for (held = 0; held < n; held++) {
			if (try_acquire(items[held].name, &items[held].s,
			    &err) < 0) {
				failed = 1;
				break;
			}
		}
		if (!failed)
			hold_compaction();
		for (size_t i = 0; i < n && !failed; i++) {
			struct ch_pos p = { .kind = CH_POS_OFFSET,
			    .offset = items[i].off };
			if (ch_pos_resolve(&ch, &p, 0, &items[i].off,
			    &items[i].seq, NULL, &err) < 0) {
				ch_err_prefix(&err, "%s:%zu", file, items[i].lineno);
				failed = 1;
			}
		}
		if (failed) {
			drop_held(held);
			ch_die_err(chname, &err);
		}
	}
	/* A damaged offset file is replaced, as by --set; one that cannot
	 * be read at all (an I/O error) stops the import here. */
	for (size_t i = 0; i < n; i++) {
		char a[24];
		items[i].registered = ch_sub_read(&ch, items[i].name,
		    &items[i].cur, &err) == 0;
		if (!items[i].registered) {
			memset(&items[i].cur, 0, sizeof items[i].cur);
			if (err.code == CH_EXIT_DATAERR) {
				items[i].damaged = 1;
				ch_warn(chname, "%.800s; replacing it", err.msg);
			} else if (err.code != CH_EXIT_NOINPUT) {
				if (!opt_dry_run)
					drop_held(n);
				ch_die_err(chname, &err);
			}
		}
		if (items[i].damaged)
			snprintf(a, sizeof a, "?");
		else
			offstr(a, sizeof a, items[i].registered,
			    items[i].cur.offset);
		printf("%s %s -> %llu\n", items[i].name, a,
		    (unsigned long long)items[i].off);
	}
	if (opt_dry_run)
		exit(ch_finish(0));
	struct ch_end end;
	if (ch_channel_end(&ch, &end, &err) < 0)
		ch_die_err(chname, &err);
	/* Every new offset file beside the old one first (the step that
	 * needs space), then all put in place: a full disk changes none. */
	for (size_t i = 0; i < n; i++) {
		struct ch_offset next = items[i].registered ? items[i].cur :
		    (struct ch_offset){ 0 };
		ch_offset_advance(&next, items[i].off, items[i].seq, ch_now_ns(),
		    end.offset, end.seq);
		if (ch_sub_prepare(&items[i].s, &next, &err) == 0)
			continue;
		for (size_t j = 0; j < i; j++)
			ch_sub_abort(&items[j].s);
		drop_held(n);
		ch_die(err.code, chname, "%.900s; no offset in %s was changed",
		    err.msg, file);
	}
	for (size_t i = 0; i < n; i++) {
		int rc = ch_sub_commit(&items[i].s, &err);
		if (rc < 0 && rc != CH_NOT_DURABLE) {
			for (size_t j = i + 1; j < n; j++)
				ch_sub_abort(&items[j].s);
			ch_die_err(chname, &err);
		}
		char *why = NULL;
		if (items[i].damaged && asprintf(&why, "%s (offset file was "
		    "damaged)", file) < 0)
			why = NULL;
		journal(items[i].name, "import", items[i].registered ?
		    items[i].cur.offset : CH_NO_OFFSET, items[i].off,
		    why ? why : file);
		free(why);
		ch_sub_release(&items[i].s);
		not_durable(rc, &err);
	}
	free(items);
}

int
main(int argc, const char **argv)
{
	poptContext pc;
	struct ch_error err;
	const char **args;
	const char *sub;
	int rc;

	pc = ch_cli_init("choffset", CH_EXIT_USAGE, argc, argv, options,
	    "[OPTION...] CHANNEL [SUBSCRIBER]");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_SET:
			if (ch_parse_from(opt_set, 0, &pos, &err) < 0 ||
			    pos.kind != CH_POS_OFFSET)
				ch_usage("--set: '%s' is not an offset", opt_set);
			pos_text = "--set";
			option_text("--set=%s", opt_set);
			npos++;
			break;
		case OPT_EARLIEST:
			pos.kind = CH_POS_EARLIEST;
			pos_text = "--earliest";
			option_text("--earliest", NULL);
			npos++;
			break;
		case OPT_LATEST:
			pos.kind = CH_POS_LATEST;
			pos_text = "--latest";
			option_text("--latest", NULL);
			npos++;
			break;
		case OPT_TIME:
			pos.kind = CH_POS_TIME;
			if (ch_parse_time(opt_time, ch_now_ns(), &pos.ts, &err) < 0)
				ch_usage("--time: %s", err.msg);
			pos_text = "--time";
			option_text("--time=%s", opt_time);
			npos++;
			break;
		case OPT_SHIFT:
			if (ch_parse_shift(opt_shift, &pos, &err) < 0)
				ch_usage("--shift: %s", err.msg);
			pos_text = "--shift";
			option_text("--shift=%s", opt_shift);
			npos++;
			break;
		case OPT_IMPORT:
			if (!*opt_import)
				ch_usage("--import: empty file name (- reads "
				    "standard input)");
			break;
		default:
			ch_die(CH_EXIT_SOFTWARE, NULL,
			    "option table misconfigured (%d)", rc);
		}
	}
	if (rc < -1)
		ch_cli_popt_error(pc, rc);
	args = poptGetArgs(pc);
	if (!args || !args[0])
		ch_usage("missing CHANNEL");
	if (args[1] && args[2])
		ch_usage("too many arguments");
	chname = args[0];
	sub = args[1];
	if (npos > 1)
		ch_usage("give only one of --set, --earliest, --latest, --time, "
		    "--shift");
	int modes = (opt_history != 0) + (opt_export != 0) +
	    (opt_import != NULL) + (opt_delete != 0) +
	    (npos > 0 || opt_create);
	if (modes > 1)
		ch_usage("--history, --export, --import, --delete and offset "
		    "changes cannot be combined");
	if (opt_all && sub)
		ch_usage("--all and a SUBSCRIBER cannot be combined");
	if (opt_all && !npos && !opt_delete)
		ch_usage("--all needs a change (--set, --earliest, ...)");
	if (opt_create && opt_all)
		ch_usage("--create needs a SUBSCRIBER");
	if ((npos || opt_create || opt_delete) && !sub && !opt_all)
		ch_usage("missing SUBSCRIBER (or --all)");
	if ((opt_export || opt_import) && sub)
		ch_usage("--export and --import work on all subscribers");
	if (opt_dry_run && !npos && !opt_create && !opt_delete && !opt_import)
		ch_usage("--dry-run needs a change");
	if (sub && ch_sub_check_name(sub, &err) < 0)
		ch_usage("%s", err.msg);

	int changes = (npos || opt_create || opt_delete || opt_import) &&
	    !opt_dry_run;
	if (ch_channel_open(chname, changes ? CH_OPEN_CHANGE : 0, &ch,
	    &err) < 0)
		ch_die_err(chname, &err);

	/* Both hold every subscriber's lock until all are checked. */
	if ((opt_import || opt_all) && ch_raise_fd_limit() < 0)
		ch_warn(chname, "raise the limit of open files: %s",
		    strerror(errno));
	if (opt_history) {
		if (ch_journal_read(&ch, sub, print_entry, NULL, &err) < 0)
			ch_die_err(chname, &err);
	} else if (opt_export) {
		export();
	} else if (opt_import) {
		import(opt_import);
	} else if (opt_all) {
		char **names;
		size_t n;
		if (ch_sub_list(&ch, &names, &n, &err) < 0)
			ch_die_err(chname, &err);
		change(names, n);
		ch_sub_list_free(names, n);
	} else if (npos || opt_create || opt_delete) {
		change((char **)&sub, 1);
	} else if (sub) {
		struct ch_offset o;
		if (ch_sub_read(&ch, sub, &o, &err) < 0)
			ch_die_err(chname, &err);
		printf("%llu\n", (unsigned long long)o.offset);
	} else {
		list();
	}
	if (compact_fd >= 0)
		close(compact_fd);
	ch_channel_close(&ch);
	free(pos_arg);
	poptFreeContext(pc);
	return ch_finish(status_left);
}
