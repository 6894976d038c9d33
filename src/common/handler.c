/* handler.c - chsub's handler mode (see handler.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "handler.h"
#include "meta.h"
#include "parse.h"
#include "writer.h"

extern char **environ;

#define KILL_GRACE_NS 2000000000LL	/* SIGTERM, then SIGKILL after this */
#define COMMIT_GAP_NS 50000000LL	/* commit at most every 50 ms... */
#define IDLE_COMMIT_NS 10000000LL	/* ...and when idle for 10 ms */

struct hrec {
	uint64_t offset, seq;
	int64_t ts;
	uint64_t pos, len;		/* payload within the unit's memfd */
	unsigned char *meta;		/* its key and header lines (owned), */
	size_t meta_len;		/* for the environment, dead letters */
	int from_known;			/* a dead letter: the channel it */
	dev_t from_dev;			/* failed in, as found then */
	ino_t from_ino;
};

/* U_FILLING: the newest unit, still taking records (see fill_unit). */
enum { U_FILLING, U_READY, U_RUNNING, U_WAIT, U_DONE };

struct unit {
	struct hrec *recs;
	size_t nrec;
	uint64_t end_offset, end_seq;	/* just after the last record */
	uint64_t bytes;			/* on the handler's stdin */
	int64_t linger_until;		/* --linger: ready by then (mono) */
	int memfd;
	int state;
	pid_t pid;
	unsigned attempt;		/* attempts started */
	int64_t deadline, kill_at, retry_at;
	int64_t next_wall;		/* retry_at on the real-time clock */
	int killed, timed_out;
	int status;			/* wait status of the last attempt */
	uint64_t failures;		/* failed attempts, restarts included */
	int64_t last_fail;		/* when the last one failed */
	int how, code;			/* and how (CH_FAIL_*) */
	uint64_t max_recs;		/* resumed: the size it had, or 0 */
	int sep;			/* each record followed by --delim */
	int resumed;			/* retry state from the last run */
	int charged;			/* --rate: its records paid for */
	int gave_up;
};

struct hctx {
	struct ch_session *s;
	const struct ch_handler_opts *o;
	struct ch_handler_stats *stats;
	struct unit *u;
	size_t nu, cap;
	unsigned running;
	uint64_t dispatched;		/* records handed out (for -n) */
	int at_end;			/* the reader had nothing more */
	int failed;			/* a record failed for good */
	int warned_sep;			/* about a record holding --delim */
	char failure[512];
	int reader_error;
	struct ch_error rerr;
	int fatal;			/* an error with commands running */
	struct ch_error ferr;
	double tokens;
	int64_t token_time;
	int64_t last_commit, last_activity;
	/* retry state from the offset file, for the first unit; and the
	 * retry state last written */
	struct ch_retry resume;
	uint64_t pers_offset, pers_failures;
	int pers_gave_up;
	/* dead letters */
	struct ch_channel dlq;
	struct ch_writer *dlw;
	int dlq_open;
	dev_t dlq_dev;			/* the dead-letter channel's directory */
	ino_t dlq_ino;
	/* The system refused a new process (EAGAIN: a process limit)
	 * while handlers ran: start none until one of them ends. */
	int spawn_blocked;
	int warned_spawn;
};

static int chld_pipe[2] = { -1, -1 };

static void
on_chld(int sig)
{
	int saved = errno;

	(void)sig;
	(void)!write(chld_pipe[1], "", 1);
	errno = saved;
}

static void
unit_free(struct unit *u)
{
	if (u->memfd >= 0)
		close(u->memfd);
	for (size_t i = 0; u->recs && i < u->nrec; i++)
		free(u->recs[i].meta);
	free(u->recs);
	u->recs = NULL;
	u->memfd = -1;
}

static int
new_memfd(struct ch_error *err)
{
	/* Sealed before its first handler runs (handler_input). */
	int fd = memfd_create("chsub-unit", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "memfd_create");
	return fd;
}

static int resume_unit(struct hctx *h, size_t i, struct ch_error *err);
static int save_used_up(struct hctx *h, size_t i, struct ch_error *err);

/* Make room for one more unit at the end of h->u. */
static int
grow_units(struct hctx *h, struct ch_error *err)
{
	if (h->nu < h->cap)
		return 0;
	size_t cap = h->cap ? h->cap * 2 : 16;
	struct unit *nu = realloc(h->u, cap * sizeof *nu);
	if (!nu)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	h->u = nu;
	h->cap = cap;
	return 0;
}

/* The stdin bytes a record takes in unit u: its payload, and in a batch
 * its separator. */
static uint64_t
rec_bytes(const struct unit *u, uint64_t len)
{
	return len + (u->sep != 0);
}

/* The channel a dead letter failed in (its origin line "channel=PATH"),
 * found by its path now: 1 and r->from_*, or 0 when there is no such line
 * or no such directory any more. */
static int
find_origin(const unsigned char *meta, size_t len, struct hrec *r)
{
	const unsigned char *pos = meta, *end = meta + len;
	struct ch_meta_field f;
	char path[PATH_MAX + 1];
	struct stat st;

	while (ch_meta_next(&pos, end, &f)) {
		if (f.kind != CH_MF_OTHER || f.key_len != 7 ||
		    memcmp(f.key, "channel", 7) != 0)
			continue;
		if (f.val_len > PATH_MAX)
			return 0;
		memcpy(path, f.val, f.val_len);
		path[f.val_len] = '\0';
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
		r->from_dev = st.st_dev;
		r->from_ino = st.st_ino;
		return 1;
	}
	return 0;
}

/* A record of a batch holds the separator that ends each record there:
 * a handler that splits its input at each one reads a record too many
 * (and, numbering them from CH_SEQ, gives the next ones wrong numbers).
 * Said once a run: a channel of such records would say it for each. */
static void
warn_separator(struct hctx *h, uint64_t offset)
{
	const struct ch_handler_opts *o = h->o;
	char msg[400];

	h->warned_sep = 1;
	if (!o->warn)
		return;
	snprintf(msg, sizeof msg, "record at offset %llu contains a %s, the "
	    "separator of --batch: a handler that splits its input there "
	    "reads more records than CH_COUNT (use %s); not said again for "
	    "others in this run", (unsigned long long)offset,
	    o->delim ? "newline" : "NUL",
	    o->delim ? "-0, or --batch=1" : "--batch=1");
	o->warn(o->warn_ctx, msg);
}

/*
 * Unit i has just taken its first record.  Where records were lost before
 * it (a gap record, damage skipped by --skip-corrupt), the unit before it
 * ends where it starts, or, that one committed already, the committed
 * position moves there: a failing unit's retry state is kept only once
 * the committed offset is its own (save_retry).
 */
static void
close_gap(struct hctx *h, size_t i)
{
	const struct hrec *r = &h->u[i].recs[0];

	if (i > 0) {
		struct unit *p = &h->u[i - 1];
		if (p->end_offset < r->offset) {
			p->end_offset = r->offset;
			p->end_seq = r->seq;
		}
	} else if (h->s->done_offset < r->offset) {
		ch_session_delivered(h->s, r->offset, r->seq);
	}
}

/* Append the record the reader just returned to unit u. */
static int
add_rec(struct hctx *h, struct unit *u, const struct ch_rec *rec,
    struct ch_error *err)
{
	const struct ch_handler_opts *o = h->o;

	if (u->memfd < 0 && (u->memfd = new_memfd(err)) < 0)
		return -1;
	struct hrec *nr = realloc(u->recs, (u->nrec + 1) * sizeof *nr);
	if (!nr)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	u->recs = nr;
	off_t pos = lseek(u->memfd, 0, SEEK_CUR);
	if (pos < 0 || ch_write_full(u->memfd, rec->payload, rec->h.len) < 0 ||
	    (u->sep && ch_write_full(u->memfd, &o->delim, 1) < 0))
		return ch_err_sys(err, CH_EXIT_FAIL, "buffer record");
	unsigned char *meta = NULL;
	size_t ml = 0;
	if (rec->h.meta_len) {
		if (!(meta = malloc((size_t)rec->h.meta_len + 1)))
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		ml = ch_meta_copy_user(rec->meta, rec->h.meta_len, meta);
	}
	struct hrec *r = &u->recs[u->nrec++];
	*r = (struct hrec){
		ch_reader_offset(h->s->r) - rec->total, rec->h.seq, rec->h.ts,
		(uint64_t)pos, rec->h.len, meta, ml, 0, 0, 0,
	};
	/* Only where there is somewhere to send it back to. */
	if (o->dead_letter && rec->h.meta_len)
		r->from_known = find_origin(rec->meta, rec->h.meta_len, r);
	if (u->sep && !h->warned_sep && rec->h.len &&
	    memchr(rec->payload, o->delim, rec->h.len))
		warn_separator(h, r->offset);
	u->bytes += rec_bytes(u, rec->h.len);
	u->end_offset = ch_reader_offset(h->s->r);
	u->end_seq = ch_reader_seq(h->s->r);
	if (u->nrec == 1)
		close_gap(h, (size_t)(u - h->u));
	if (u->nrec == 1 && o->linger_ns > 0) {
		/* Handed over once the record has waited --linger since it
		 * was published (a backlog goes at once), and at the latest
		 * --linger from now (a time stamp ahead of the clock). */
		int64_t waited = ch_age(ch_now_ns(), rec->h.ts);
		int64_t left = o->linger_ns - waited;
		u->linger_until = ch_ns_add(ch_mono_ns(), left > 0 ? left : 0);
	}
	h->dispatched++;
	return 0;
}

/* A filling unit holds all it may: --batch records, --batch-bytes bytes,
 * or what -n has left.  A resumed unit takes the records it had, whatever
 * --batch and --batch-bytes say now: its count is theirs. */
static int
unit_full(const struct hctx *h, const struct unit *u)
{
	const struct ch_handler_opts *o = h->o;

	if (o->count && h->dispatched >= o->count)
		return 1;
	if (u->max_recs)
		return u->nrec >= u->max_recs;
	return u->nrec >= o->batch ||
	    (o->batch_bytes && u->bytes >= o->batch_bytes);
}

/*
 * Whether unit u ends before rec: when rec does not fit in --batch-bytes
 * (it then goes alone if it is larger than the limit), or when records
 * were lost between them (a gap record, damage skipped by
 * --skip-corrupt), so that a unit's records are always numbered CH_SEQ,
 * CH_SEQ + 1, ... and a handler that names them so names each rightly.
 */
static int
ends_before(const struct hctx *h, const struct unit *u,
    const struct ch_rec *rec)
{
	const struct ch_handler_opts *o = h->o;

	if (!u->nrec)
		return 0;
	if (rec->h.seq != u->recs[u->nrec - 1].seq + 1)
		return 1;
	return o->batch_bytes && !u->max_recs &&
	    u->bytes + rec_bytes(u, rec->h.len) > o->batch_bytes;
}

static int64_t token_wait(struct hctx *h);

/*
 * Fill the unit at the end (U_FILLING) with the records that are there,
 * up to --batch, --batch-bytes and -n.  It becomes U_READY once full, when
 * the next record would take it past --batch-bytes or comes after lost
 * records (that record starts the next unit), or at the end of the
 * channel unless it lingers: while
 * following with --linger, a partial batch waits for more until its
 * oldest record has waited that long, and while following with --rate,
 * until a token is there to start it.  Returns 1 if a unit became ready
 * (*ready: its index), 0 if not, -1 on error.
 */
static int
fill_unit(struct hctx *h, int stopping, size_t *ready, struct ch_error *err)
{
	const struct ch_handler_opts *o = h->o;
	struct unit *u;

	if (h->nu && h->u[h->nu - 1].state == U_FILLING) {
		u = &h->u[h->nu - 1];
	} else {
		if (o->count && h->dispatched >= o->count)
			return 0;
		if (grow_units(h, err) < 0)
			return -1;
		u = &h->u[h->nu];
		memset(u, 0, sizeof *u);
		u->memfd = -1;
		u->state = U_FILLING;
		u->sep = o->batch > 1;
		if (h->resume.records && h->nu == 0 &&
		    h->resume.offset == ch_reader_offset(h->s->r)) {
			/* The records a failing unit had before a restart, with
			 * its count and backoff. */
			u->resumed = 1;
			u->max_recs = h->resume.records;
			u->failures = u->attempt = (unsigned)h->resume.attempts;
			u->last_fail = h->resume.last;
			u->how = h->resume.how;
			u->code = h->resume.code;
			u->next_wall = h->resume.gave_up ? 0 : h->resume.next;
			u->gave_up = h->resume.gave_up;
			/* A batch comes back as one, separators and all. */
			u->sep = o->batch > 1 || u->max_recs > 1;
		}
		h->resume.records = 0;
	}
	while (!unit_full(h, u)) {
		struct ch_rec rec;
		int rc = ch_reader_next(h->s->r, &rec, &h->rerr);
		if (rc < 0) {
			h->reader_error = 1;
			break;
		}
		if (rc == 0) {
			h->at_end = 1;
			break;
		}
		if (ends_before(h, u, &rec)) {
			/* This unit goes, the record starts the next one. */
			size_t i = (size_t)(u - h->u);
			u->state = U_READY;
			if (grow_units(h, err) < 0)
				return -1;
			u = &h->u[h->nu++];
			memset(u, 0, sizeof *u);
			u->memfd = -1;
			u->state = U_FILLING;
			u->sep = o->batch > 1;
			if (add_rec(h, u, &rec, err) < 0)
				return -1;
			*ready = i;
			if (h->u[i].resumed && resume_unit(h, i, err) < 0)
				return -1;
			return 1;
		}
		if (add_rec(h, u, &rec, err) < 0) {
			if (u == &h->u[h->nu])
				unit_free(u);
			return -1;
		}
		if (u == &h->u[h->nu])
			h->nu++;	/* the new unit holds a record now */
	}
	if (!u->nrec)
		return 0;
	if (!unit_full(h, u) && !h->reader_error && !stopping && o->follow &&
	    !u->resumed && ((o->linger_ns > 0 &&
	    ch_mono_ns() < u->linger_until) || token_wait(h) > 0))
		return 0;	/* lingers for more */
	u->state = U_READY;
	*ready = (size_t)(u - h->u);
	if (u->resumed && resume_unit(h, *ready, err) < 0)
		return -1;
	return 1;
}

/* Set when a variable of the handler's environment could not be made
 * (out of memory): spawn() then runs nothing rather than a handler
 * without its CH_OFFSET or with a cut environment. */
static int env_failed;

/* Add K=V, V of vl bytes (cut at a NUL, which no variable can hold). */
static void
setenv_kvn(char **env, size_t *n, const char *k, const void *v, size_t vl)
{
	size_t kl = strlen(k);
	const char *nul = vl ? memchr(v, '\0', vl) : NULL;
	char *s;

	if (nul)
		vl = (size_t)(nul - (const char *)v);
	if (!(s = malloc(kl + vl + 2))) {
		env_failed = 1;
		return;
	}
	memcpy(s, k, kl);
	s[kl] = '=';
	if (vl)
		memcpy(s + kl + 1, v, vl);
	s[kl + 1 + vl] = '\0';
	env[(*n)++] = s;
}

static void
setenv_kv(char **env, size_t *n, const char *k, const char *v)
{
	setenv_kvn(env, n, k, v, strlen(v));
}

/* The key and headers of a unit of one record: CH_KEY, CH_HDR_NAME (the
 * first of a name counts).  A batch has none: its records each have
 * their own. */
static void
setenv_meta(char **env, size_t *n, const struct hrec *r)
{
	const unsigned char *p = r->meta, *end = r->meta ? p + r->meta_len : p;
	struct ch_meta_field f;
	size_t first = *n;
	int have_key = 0;
	char name[CH_HDR_ENV_MAX];

	while (ch_meta_next(&p, end, &f)) {
		if (f.kind == CH_MF_KEY && !have_key) {
			setenv_kvn(env, n, "CH_KEY", f.val, f.val_len);
			have_key = 1;
			continue;
		}
		if (f.kind != CH_MF_HEADER ||
		    ch_hdr_env_name(f.name, f.name_len, name) < 0)
			continue;
		size_t nl = strlen(name), i;
		for (i = first; i < *n; i++)
			if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
				break;
		if (i == *n)
			setenv_kvn(env, n, name, f.val, f.val_len);
	}
}

/* Lines of metadata: an upper bound on the variables it gives. */
static size_t
meta_lines(const struct hrec *r)
{
	const unsigned char *p = r->meta, *end = r->meta ? p + r->meta_len : p;
	struct ch_meta_field f;
	size_t k = 0;

	while (ch_meta_next(&p, end, &f))
		k++;
	return k;
}

/*
 * The handler's stdin: the unit's records, which must reach every attempt
 * and the dead letters byte for byte.  So the memfd is sealed (a handler
 * writing to, or truncating, its stdin gets EPERM), and each attempt gets
 * an open file of its own, read-only and at offset 0, that no child of an
 * earlier attempt still reading shares.  Without /proc, the memfd itself,
 * rewound.  Returns the fd to close after the spawn (-1: none), or -2.
 */
static int
handler_input(struct unit *u, int *in)
{
	char path[64];
	int seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	int have = fcntl(u->memfd, F_GET_SEALS);

	if (have < 0 || (!(have & F_SEAL_SEAL) &&
	    fcntl(u->memfd, F_ADD_SEALS, seals) < 0))
		return -2;
	snprintf(path, sizeof path, "/proc/self/fd/%d", u->memfd);
	*in = open(path, O_RDONLY | O_CLOEXEC);
	if (*in >= 0)
		return *in;
	if (lseek(u->memfd, 0, SEEK_SET) < 0)
		return -2;
	*in = u->memfd;
	return -1;
}

static int
spawn(struct hctx *h, struct unit *u, struct ch_error *err)
{
	const struct ch_handler_opts *o = h->o;
	static const char *ours[] = { "CH_CHANNEL=", "CH_SUBSCRIBER=",
	    "CH_OFFSET=", "CH_SEQ=", "CH_COUNT=", "CH_TIMESTAMP=",
	    "CH_ATTEMPT=", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	size_t ne = 0, n = 0;
	char buf[64];
	int rc;

	while (environ[ne])
		ne++;
	/* A batch's records each have their own key and headers. */
	int one = o->batch == 1 && u->nrec == 1;
	size_t nmeta = one ? meta_lines(&u->recs[0]) : 0;
	char **env = calloc(ne + 8 + nmeta, sizeof *env);
	if (!env)
		return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
	env_failed = 0;
	for (size_t i = 0; i < ne; i++) {
		/* Ours, and a key or header chsub was started with, which
		 * would pass for the record's. */
		int skip = strncmp(environ[i], "CH_KEY=", 7) == 0 ||
		    strncmp(environ[i], "CH_HDR_", 7) == 0;
		for (int k = 0; ours[k]; k++)
			if (strncmp(environ[i], ours[k], strlen(ours[k])) == 0)
				skip = 1;
		if (skip)
			continue;
		if (!(env[n] = strdup(environ[i])))
			env_failed = 1;
		else
			n++;
	}
	size_t first_own = n;
	setenv_kv(env, &n, "CH_CHANNEL", o->channel_path);
	setenv_kv(env, &n, "CH_SUBSCRIBER", o->subscriber ? o->subscriber : "");
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)u->recs[0].offset);
	setenv_kv(env, &n, "CH_OFFSET", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)u->recs[0].seq);
	setenv_kv(env, &n, "CH_SEQ", buf);
	snprintf(buf, sizeof buf, "%zu", u->nrec);
	setenv_kv(env, &n, "CH_COUNT", buf);
	ch_format_time(buf, sizeof buf, u->recs[0].ts, 1);
	setenv_kv(env, &n, "CH_TIMESTAMP", buf);
	snprintf(buf, sizeof buf, "%u", u->attempt + 1);
	setenv_kv(env, &n, "CH_ATTEMPT", buf);
	if (one)
		setenv_meta(env, &n, &u->recs[0]);
	(void)first_own;

	if (env_failed) {
		rc = ENOMEM;
		goto out_env;
	}
	int in, own = handler_input(u, &in);
	if (own == -2) {
		rc = errno;
		goto out_env;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto out_in;
	if ((rc = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out_in;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	/* Each can fail (out of memory): a handler that read chsub's own
	 * standard input instead of the record could exit 0 on nothing. */
	if (!(rc = posix_spawn_file_actions_adddup2(&fa, in, 0)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &dfl)) &&
	    !(rc = posix_spawnattr_setpgroup(&at, 0)) &&
	    !(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))) {
		char *argv[] = { "sh", "-c", (char *)o->cmd, NULL };
		rc = posix_spawn(&u->pid, "/bin/sh", &fa, &at, argv, env);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
out_in:
	if (own >= 0)
		close(own);
out_env:
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(env);
	/* Out of processes for now (RLIMIT_NPROC, pid_max): with handlers
	 * running, one of them ending frees one, as xargs -P waits for a
	 * child and tries again.  With none running, nothing would. */
	if (rc == EAGAIN && h->running > 0)
		return 1;
	if (rc) {
		errno = rc;
		return ch_err_sys(err, CH_EXIT_FAIL, "run handler");
	}
	u->attempt++;
	u->state = U_RUNNING;
	u->killed = u->timed_out = 0;
	u->deadline = o->timeout_ns > 0 ?
	    ch_ns_add(ch_mono_ns(), o->timeout_ns) : 0;
	h->running++;
	return 0;
}

/* How the last attempt failed, from its wait status. */
static void
note_failure(struct unit *u)
{
	u->last_fail = ch_now_ns();
	u->code = 0;
	if (u->timed_out) {
		u->how = CH_FAIL_TIMEOUT;
	} else if (WIFSIGNALED(u->status)) {
		u->how = CH_FAIL_SIGNAL;
		u->code = WTERMSIG(u->status);
	} else {
		u->how = CH_FAIL_EXIT;
		u->code = WIFEXITED(u->status) ? WEXITSTATUS(u->status) : 0;
	}
}

/* The last attempt's command could not be run at all: /bin/sh's 127 (not
 * found) or 126 (not executable).  That says nothing of the records. */
static int
could_not_run(const struct unit *u)
{
	return u->how == CH_FAIL_EXIT && (u->code == 126 || u->code == 127);
}

static void
describe(const struct unit *u, char *buf, size_t len)
{
	if (u->how == CH_FAIL_TIMEOUT)
		snprintf(buf, len, "timeout");
	else if (u->how == CH_FAIL_SIGNAL)
		snprintf(buf, len, "signal %d", u->code);
	else
		snprintf(buf, len, "%d", u->code);
}

static int64_t
backoff(const struct ch_handler_opts *o, unsigned attempt)
{
	int64_t d = o->backoff_min_ns;

	for (unsigned i = 1; i < attempt && d < o->backoff_max_ns; i++)
		d = ch_ns_add(d, d);
	if (d > o->backoff_max_ns)
		d = o->backoff_max_ns;
	/* Jitter: somewhere in [d, 1.5 d], so retries of many chsubs spread,
	 * but never below MIN nor above MAX. */
	d = ch_ns_add(d, (int64_t)((double)(d / 2) * drand48()));
	return d > o->backoff_max_ns ? o->backoff_max_ns : d;
}

/* When a retry waiting d is due: never INT64_MAX, which marks a unit
 * held for good (it gave up, or its command could not run), however
 * long the --backoff. */
static int64_t
retry_time(int64_t d)
{
	int64_t t = ch_ns_add(ch_mono_ns(), d);

	return t == INT64_MAX ? INT64_MAX - 1 : t;
}

/* printf into a buffer of the size it needs (paths run to PATH_MAX);
 * NULL when out of memory.  *lenp, if given, gets the length. */
static char *
format_alloc(size_t *lenp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
format_alloc(size_t *lenp, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (lenp)
		*lenp = (size_t)n;
	return s;
}

/* Open the dead-letter channel (once) and check it is not the channel
 * being read. */
static int
open_dead_letter(struct hctx *h, struct ch_error *err)
{
	const struct ch_handler_opts *o = h->o;
	struct ch_pubopts po;
	struct stat a, b;

	if (h->dlq_open)
		return 0;
	if (ch_channel_open(o->dead_letter, CH_OPEN_CREATE | CH_OPEN_CHANGE,
	    &h->dlq, err) < 0) {
		ch_err_prefix(err, "dead-letter channel %s", o->dead_letter);
		return -1;
	}
	/* chsub refuses this before it starts; should the name come to mean
	 * this channel since (a symlink put in its place), publishing there
	 * would feed failures back forever. */
	if (fstat(h->dlq.dirfd, &a) < 0 || fstat(h->s->ch->dirfd, &b) < 0 ||
	    (a.st_dev == b.st_dev && a.st_ino == b.st_ino)) {
		ch_channel_close(&h->dlq);
		return ch_err(err, CH_EXIT_USAGE, "dead-letter channel %s "
		    "is the channel being read", o->dead_letter);
	}
	ch_pubopts_from_config(&po, &h->dlq.cfg);
	po.sync = CH_SYNC_ALWAYS;	/* durable before we move on */
	/* Never wait for room: the loop waits with the stop signals blocked
	 * and commands running.  A full dead-letter channel is an error
	 * (75), the record stays uncommitted, the next run tries again. */
	po.on_full = CH_FULL_FAIL;
	/* Any record fits, but its origin comes on top of its payload and
	 * metadata: one too large for that fails to be dead-lettered (as on
	 * a full disk) and stays uncommitted. */
	po.max_record_bytes = CH_RECORD_MAX;
	if (ch_writer_open(&h->dlq, &po, &h->dlw, err) < 0) {
		ch_channel_close(&h->dlq);
		return -1;
	}
	h->dlq_dev = a.st_dev;
	h->dlq_ino = a.st_ino;
	h->dlq_open = 1;
	return 0;
}

/* 1 if record r is a dead letter that failed in the dead-letter channel:
 * sending it there again goes round a loop (A's failures to B, B's back
 * to A), each channel's consumer failing it over and over. */
static int
sends_back(const struct hctx *h, const struct hrec *r)
{
	return r->from_known && r->from_dev == h->dlq_dev &&
	    r->from_ino == h->dlq_ino;
}

static int
dead_letter(struct hctx *h, struct unit *u, struct ch_error *err)
{
	const struct ch_handler_opts *o = h->o;
	char status[32], t[40], rt[40];
	char *payload = NULL, *meta;
	size_t ml;

	if (open_dead_letter(h, err) < 0)
		return -1;
	describe(u, status, sizeof status);
	ch_format_time(t, sizeof t, ch_now_ns(), 1);
	for (size_t i = 0; i < u->nrec; i++) {
		struct hrec *r = &u->recs[i];
		payload = malloc(r->len ? r->len : 1);
		if (!payload)
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		if (ch_pread_full(u->memfd, payload, r->len, (off_t)r->pos) !=
		    (ssize_t)r->len) {
			free(payload);
			return ch_err_sys(err, CH_EXIT_FAIL, "read buffered record");
		}
		ch_format_time(rt, sizeof rt, r->ts, 1);
		meta = format_alloc(&ml, "channel=%s\nsubscriber=%s\n"
		    "offset=%llu\nseq=%llu\ntimestamp=%s\nstatus=%s\n"
		    "attempts=%u\ntime=%s\n", o->channel_path,
		    o->subscriber ? o->subscriber : "",
		    (unsigned long long)r->offset, (unsigned long long)r->seq,
		    rt, status, u->attempt, t);
		/* Its origin, then the record's own key and headers. */
		if (meta && r->meta_len) {
			char *more = realloc(meta, ml + r->meta_len);
			if (!more)
				free(meta);
			meta = more;
			if (meta) {
				memcpy(meta + ml, r->meta, r->meta_len);
				ml += r->meta_len;
			}
		}
		if (!meta) {
			free(payload);
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		}
		if (ch_writer_add(h->dlw, meta, ml, payload, r->len,
		    err) < 0 || ch_writer_flush(h->dlw, err) < 0) {
			free(meta);
			free(payload);
			ch_err_prefix(err, "dead-letter channel %s", o->dead_letter);
			return -1;
		}
		free(meta);
		free(payload);
		if (o->warn) {
			char *msg = format_alloc(NULL, "record at offset %llu "
			    "failed %u time%s (last status %s): sent to %s",
			    (unsigned long long)r->offset, u->attempt,
			    ch_plural(u->attempt), status,
			    o->dead_letter);
			o->warn(o->warn_ctx, msg ? msg : "record sent to the "
			    "dead-letter channel");
			free(msg);
		}
		h->stats->dead_lettered++;
	}
	return 0;
}

/* Replace batch unit i by one unit per record. */
static int
split(struct hctx *h, size_t i, struct ch_error *err)
{
	struct unit old = h->u[i];
	size_t n = old.nrec;

	if (h->nu + n - 1 > h->cap) {
		size_t cap = h->cap;
		while (cap < h->nu + n - 1)
			cap *= 2;
		struct unit *nu = realloc(h->u, cap * sizeof *nu);
		if (!nu)
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		h->u = nu;
		h->cap = cap;
	}
	memmove(&h->u[i + n], &h->u[i + 1], (h->nu - i - 1) * sizeof *h->u);
	h->nu += n - 1;
	/* Empty first: the slots between hold stale copies of the units
	 * just moved, which the cleanup after a failure below would free
	 * (and kill, and wait for) a second time.  Nothing is committed
	 * after a failure, so "done" lets no record go uncommitted. */
	for (size_t k = 0; k < n; k++) {
		memset(&h->u[i + k], 0, sizeof *h->u);
		h->u[i + k].memfd = -1;
		h->u[i + k].state = U_DONE;
	}
	for (size_t k = 0; k < n; k++) {
		struct unit *u = &h->u[i + k];
		struct hrec r = old.recs[k];
		char *p = malloc(r.len ? r.len : 1);
		old.recs[k].meta = NULL;	/* the record's unit has it now */
		/* Framed as every unit of this run is, a unit of one record
		 * included: a handler of --batch records reads an empty
		 * record as its separator alone, never as nothing at all. */
		u->sep = h->o->batch > 1;
		if (!p || (u->memfd = new_memfd(err)) < 0 ||
		    ch_pread_full(old.memfd, p, r.len, (off_t)r.pos) !=
		    (ssize_t)r.len || ch_write_full(u->memfd, p, r.len) < 0 ||
		    (u->sep && ch_write_full(u->memfd, &h->o->delim, 1) < 0)) {
			free(p);
			free(r.meta);
			unit_free(&old);
			return ch_err_sys(err, CH_EXIT_FAIL, "split batch");
		}
		free(p);
		u->recs = malloc(sizeof *u->recs);
		if (!u->recs) {
			free(r.meta);
			unit_free(&old);
			return ch_err_sys(err, CH_EXIT_FAIL, "out of memory");
		}
		r.pos = 0;
		u->recs[0] = r;
		u->nrec = 1;
		u->bytes = rec_bytes(u, r.len);
		u->end_offset = k + 1 < n ? old.recs[k + 1].offset : old.end_offset;
		u->end_seq = k + 1 < n ? old.recs[k + 1].seq : old.end_seq;
		u->state = U_READY;
		u->charged = old.charged;	/* --rate: paid as the batch */
	}
	unit_free(&old);
	return 0;
}

/* A record could not be dead-lettered (a full disk, a dead-letter channel
 * that cannot be made): the run ends with that error, but like a stop,
 * nothing more starts and the running commands finish first; the record
 * stays uncommitted, its attempts saved as used up. */
static int
dead_letter_failed(struct hctx *h, struct ch_error *err)
{
	h->fatal = 1;
	h->ferr = *err;
	return 0;
}

/* Unit i failed its last attempt: split a batch, dead-letter a record, or
 * give up (nothing more starts, and the run ends with 69). */
static int
exhausted(struct hctx *h, size_t i, const char *when, struct ch_error *err)
{
	struct unit *u = &h->u[i];
	const struct ch_handler_opts *o = h->o;
	char st[32];

	if (could_not_run(u) && !h->stats->done) {
		/* A typo in CMD, or another PATH under cron: every record
		 * would fail so, and with a dead-letter channel the whole
		 * backlog would go there.  Stop instead; a restart runs CMD
		 * again (resume_unit). */
		describe(u, st, sizeof st);
		u->state = U_WAIT;
		u->retry_at = INT64_MAX;
		h->failed = 1;
		snprintf(h->failure, sizeof h->failure, "the command could not "
		    "be run for the record at offset %llu (status %s: %s), "
		    "%llu time%s%s; no record goes to the dead letters for "
		    "that, and the offset stays uncommitted",
		    (unsigned long long)u->recs[0].offset, st, u->code == 127 ?
		    "not found" : "not executable",
		    (unsigned long long)u->failures, ch_plural(u->failures),
		    when);
		return 0;
	}
	if (u->nrec > 1)
		return split(h, i, err);
	if (o->dead_letter) {
		/* Nothing more to run: it waits for its dead-letter write. */
		u->state = U_WAIT;
		u->retry_at = INT64_MAX;
		if (save_used_up(h, i, err) < 0 || open_dead_letter(h, err) < 0)
			return dead_letter_failed(h, err);
		/* PRODUCT.md: with a dead-letter channel, it goes there and
		 * consumption goes on; a loop can only be pointed out. */
		if (sends_back(h, &u->recs[0]) && o->warn) {
			char msg[600];
			snprintf(msg, sizeof msg, "record at offset %llu is a dead "
			    "letter from %.400s and failed there too: it goes "
			    "back, and will go round while each channel is the "
			    "other's dead-letter channel",
			    (unsigned long long)u->recs[0].offset, o->dead_letter);
			o->warn(o->warn_ctx, msg);
		}
		if (dead_letter(h, u, err) < 0)
			return dead_letter_failed(h, err);
		u->state = U_DONE;
		return 0;
	}
	describe(u, st, sizeof st);
	u->state = U_WAIT;
	u->retry_at = INT64_MAX;
	u->gave_up = 1;
	h->failed = 1;
	snprintf(h->failure, sizeof h->failure, "record at offset %llu failed "
	    "%llu time%s%s (last status %s) and there is no dead-letter "
	    "channel; its offset stays uncommitted",
	    (unsigned long long)u->recs[0].offset,
	    (unsigned long long)u->failures, ch_plural(u->failures), when, st);
	return 0;
}

/*
 * The first unit, read again after a restart while it was being retried:
 * go on where the last run stopped.  Its next attempt comes when the last
 * run would have made it (at most --backoff MAX from now, should the
 * clock have been stepped back); with its attempts used up, it goes
 * straight to the dead-letter channel, or the run ends with 69 again.
 */
static int
resume_unit(struct hctx *h, size_t i, struct ch_error *err)
{
	struct unit *u = &h->u[i];
	const struct ch_handler_opts *o = h->o;
	char st[32], msg[300];

	describe(u, st, sizeof st);
	/* A command that could not be run may have been fixed since: its
	 * attempts begin again. */
	if (could_not_run(u) && u->failures > o->retries) {
		u->failures = u->attempt = 0;
		u->gave_up = 0;
		u->state = U_WAIT;
		u->retry_at = ch_mono_ns();
		u->next_wall = ch_now_ns();
		if (o->warn) {
			snprintf(msg, sizeof msg, "the command could not be run "
			    "for the record at offset %llu in the last run "
			    "(status %s); trying it again",
			    (unsigned long long)u->recs[0].offset, st);
			o->warn(o->warn_ctx, msg);
		}
		return 0;
	}
	if (u->failures > o->retries)
		return exhausted(h, i, " before this run", err);
	int64_t left = u->gave_up ? 0 : u->next_wall - ch_now_ns();
	if (left < 0)
		left = 0;
	if (left > o->backoff_max_ns)
		left = o->backoff_max_ns;
	u->gave_up = 0;
	u->state = U_WAIT;
	u->retry_at = retry_time(left);
	u->next_wall = ch_ns_add(ch_now_ns(), left);
	if (o->warn) {
		char when[40];
		ch_format_duration(when, sizeof when, left);
		snprintf(msg, sizeof msg, "record at offset %llu failed %llu "
		    "time%s before this run (last status %s); attempt %llu of "
		    "%llu in %s", (unsigned long long)u->recs[0].offset,
		    (unsigned long long)u->failures, ch_plural(u->failures), st,
		    (unsigned long long)u->failures + 1,
		    (unsigned long long)o->retries + 1, when);
		o->warn(o->warn_ctx, msg);
	}
	return 0;
}

/*
 * Keep the retry state of the first unfinished unit in the offset file,
 * once the units before it are committed (advance), so that a restart
 * goes on with its count and its backoff: written when it changes, that
 * is when that unit fails again, gives up, or becomes the first.
 */
static int
save_retry(struct hctx *h, const struct unit *u, struct ch_error *err)
{
	if (u->recs[0].offset != h->s->done_offset ||
	    (h->pers_offset == u->recs[0].offset &&
	    h->pers_failures == u->failures && h->pers_gave_up == u->gave_up))
		return 0;
	struct ch_retry r = {
		.records = u->nrec, .attempts = u->failures,
		.last = u->last_fail, .next = u->gave_up ? 0 : u->next_wall,
		.gave_up = u->gave_up, .how = u->how, .code = u->code,
	};
	if (ch_session_set_retry(h->s, &r, err) < 0)
		return -1;
	h->pers_offset = u->recs[0].offset;
	h->pers_failures = u->failures;
	h->pers_gave_up = u->gave_up;
	return 0;
}

/* The first unit's state, once it is the first unfinished one. */
static int
persist_head(struct hctx *h, struct ch_error *err)
{
	struct unit *u = h->nu ? &h->u[0] : NULL;

	if (!u || u->state != U_WAIT || !u->failures)
		return 0;
	return save_retry(h, u, err);
}

/*
 * Unit i used up its attempts and goes to the dead-letter channel: save
 * that first, when the units before it are finished (the offset file
 * holds the first unfinished unit's state only), so that a dead-letter
 * write that fails costs no attempt more on each run: the next one goes
 * straight to the dead-letter channel.
 */
static int
save_used_up(struct hctx *h, size_t i, struct ch_error *err)
{
	for (size_t k = 0; k < i; k++)
		if (h->u[k].state != U_DONE)
			return 0;
	if (i)
		ch_session_delivered(h->s, h->u[i - 1].end_offset,
		    h->u[i - 1].end_seq);
	h->u[i].gave_up = 1;
	return save_retry(h, &h->u[i], err);
}

/* A handler exited: decide what happens to its unit. */
static int
finished(struct hctx *h, size_t i, int status, int stopping,
    struct ch_error *err)
{
	struct unit *u = &h->u[i];
	const struct ch_handler_opts *o = h->o;
	char st[32];

	h->running--;
	h->spawn_blocked = 0;
	u->status = status;
	/* One we signalled (timeout, second stop) has failed even if it
	 * exits 0: kcat, for one, exits 0 on SIGTERM with its messages
	 * unconfirmed. */
	if (!u->killed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		u->state = U_DONE;
		h->stats->done += u->nrec;
		return 0;
	}
	h->stats->attempts_failed++;
	if (stopping) {		/* killed by our stop: it will run again */
		u->state = U_WAIT;
		u->retry_at = INT64_MAX;
		return 0;
	}
	u->failures++;
	note_failure(u);
	describe(u, st, sizeof st);
	if (u->failures <= o->retries) {
		int64_t d = backoff(o, (unsigned)u->failures);
		u->state = U_WAIT;
		u->retry_at = retry_time(d);
		u->next_wall = ch_ns_add(ch_now_ns(), d);
		if (o->warn) {
			char msg[256];
			snprintf(msg, sizeof msg, "handler failed (status %s) for "
			    "offset %llu, attempt %llu of %llu; retrying", st,
			    (unsigned long long)u->recs[0].offset,
			    (unsigned long long)u->failures,
			    (unsigned long long)o->retries + 1);
			o->warn(o->warn_ctx, msg);
		}
		return 0;
	}
	return exhausted(h, i, "", err);
}

#define STOP_WAIT_NS 1000000000LL	/* for our own stop after a handler's */

/*
 * A handler died of a stop signal that we did not send: most likely
 * everything is being stopped (a shutdown, pkill, kill of a process
 * group), and our own signal is on its way.  Wait a moment for it, so
 * that the record is handed over again by the next run, as after a stop,
 * not counted as failed or sent to the dead letters.  Stop signals are
 * blocked here: one that comes is let in at once, for *stop to count it.
 * Returns 1 if one came.
 */
static int
stop_signal(int sig)
{
	return sig == SIGINT || sig == SIGTERM || sig == SIGHUP;
}

static int
stop_on_its_way(const struct unit *u, int status, int64_t *until)
{
	sigset_t stops, one;
	int sig;

	/* Killed by one, or /bin/sh's 128+N for a command killed so (sh -c
	 * does not always exec its last command). */
	if (u->killed || !(WIFSIGNALED(status) ? stop_signal(WTERMSIG(status)) :
	    WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
	    stop_signal(WEXITSTATUS(status) - 128)))
		return 0;
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	/* One wait for all the handlers reaped at once, not one each. */
	if (!*until)
		*until = ch_mono_ns() + STOP_WAIT_NS;
	for (;;) {
		int64_t left = *until - ch_mono_ns();
		if (left < 0)
			left = 0;
		struct timespec ts = { left / 1000000000LL,
		    left % 1000000000LL };
		sig = sigtimedwait(&stops, NULL, &ts);
		if (sig > 0)
			break;
		if (errno != EINTR || left == 0)	/* (SIGCHLD) */
			return 0;
	}
	/* Taken off the pending set: put it back and let it in. */
	sigemptyset(&one);
	sigaddset(&one, sig);
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	sigprocmask(SIG_BLOCK, &one, NULL);
	return 1;
}

/* Reap the handlers that exited.  After a dead-letter write failed, the
 * failures of those still running count as stopped ones (see exhausted). */
static int
reap(struct hctx *h, volatile sig_atomic_t *stop, struct ch_error *err)
{
	char drain[64];
	int status;
	pid_t pid;
	int64_t stop_until = 0;

	while (read(chld_pipe[0], drain, sizeof drain) > 0)
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < h->nu; i++) {
			if (h->u[i].state == U_RUNNING && h->u[i].pid == pid) {
				/* We killed it (timeout, second stop): whatever
				 * is left of its process group goes too, even
				 * what ignores SIGTERM. */
				if (h->u[i].killed)
					kill(-pid, SIGKILL);
				int stopping = *stop > 0 || h->fatal ||
				    stop_on_its_way(&h->u[i], status,
				    &stop_until);
				if (finished(h, i, status, stopping, err) < 0)
					return -1;
				h->last_activity = ch_mono_ns();
				break;
			}
		}
	}
	return 0;
}

/* Move the committed position over the finished prefix. */
static int
advance(struct hctx *h, int force, struct ch_error *err)
{
	size_t k = 0;

	while (k < h->nu && h->u[k].state == U_DONE)
		k++;
	if (k) {
		ch_session_delivered(h->s, h->u[k - 1].end_offset,
		    h->u[k - 1].end_seq);
		for (size_t i = 0; i < k; i++)
			unit_free(&h->u[i]);
		memmove(h->u, h->u + k, (h->nu - k) * sizeof *h->u);
		h->nu -= k;
	}
	int64_t now = ch_mono_ns();
	if (ch_session_dirty(h->s) && (force || now - h->last_commit >=
	    COMMIT_GAP_NS)) {
		h->last_commit = now;
		return ch_session_commit(h->s, err);
	}
	return 0;
}

static void
kill_unit(struct unit *u, int sig)
{
	kill(-u->pid, sig);
	kill(u->pid, sig);
}

/*
 * Handler slots in use: running units, and units waiting for a retry.  A
 * unit keeps its slot through its backoff, so that -P 1 stays in order
 * and a failing handler does not make chsub read (and try once) the whole
 * backlog while it waits.
 */
static unsigned
busy(const struct hctx *h)
{
	unsigned n = 0;

	for (size_t i = 0; i < h->nu; i++)
		if (h->u[i].state == U_RUNNING || (h->u[i].state == U_WAIT &&
		    h->u[i].retry_at != INT64_MAX))
			n++;
	return n;
}

/*
 * --rate: a bucket of tokens, one a record, refilled at --rate a second
 * up to max(--rate, 1).  A unit starts (the first time) only with a whole
 * token there and is charged its records as it starts, so a batch of N
 * takes the bucket below zero and the next waits for it to refill.
 * Returns 0 if a token is there, else how long until one is (ns).
 */
static int64_t
token_wait(struct hctx *h)
{
	double rate = h->o->rate;
	int64_t now = ch_mono_ns();

	if (rate <= 0)
		return 0;
	double cap = rate < 1 ? 1 : rate;
	h->tokens += (double)(now - h->token_time) / 1e9 * rate;
	if (h->tokens > cap)
		h->tokens = cap;
	h->token_time = now;
	if (h->tokens >= 1)
		return 0;
	return (int64_t)((1 - h->tokens) / rate * 1e9) + 1;
}

int
ch_handler_run(struct ch_session *s, const struct ch_handler_opts *o,
    struct ch_notify *nt, volatile sig_atomic_t *stop,
    struct ch_handler_stats *stats, struct ch_error *err)
{
	struct hctx h = { 0 };
	struct sigaction sa = { 0 };
	sigset_t stopsigs, oldmask;
	int rc = -1, status = 0;

	memset(stats, 0, sizeof *stats);
	h.s = s;
	h.o = o;
	h.stats = stats;
	h.token_time = ch_mono_ns();
	h.tokens = o->rate > 0 ? 1 : 0;
	h.last_commit = h.last_activity = ch_mono_ns();
	/* A unit that was being retried when the last run stopped. */
	const struct ch_retry *rs = ch_offset_retry(&s->off);
	if (rs && rs->offset == s->done_offset) {
		h.resume = *rs;
		h.pers_offset = rs->offset;
		h.pers_failures = rs->attempts;
		h.pers_gave_up = rs->gave_up;
	}
	srand48((long)ch_now_ns() ^ (long)getpid());
	if (pipe2(chld_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return ch_err_sys(err, CH_EXIT_FAIL, "pipe");
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	/* Stop signals are only let in while we sleep (ppoll), so one that
	 * comes between looking at *stop and sleeping is not slept through. */
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &stopsigs, &oldmask);

	/* A reader error (a corrupt record) only ends the reading: the units
	 * filled before it are handed over and finish as usual (retries,
	 * dead letters), so that the offset ends at the corrupt record. */
	for (;;) {
		int64_t now = ch_mono_ns(), wait_ns = -1;
		int stopping = *stop > 0 || h.failed || h.fatal;

		if (reap(&h, stop, err) < 0)
			goto out;
		if (advance(&h, 0, err) < 0 || persist_head(&h, err) < 0)
			goto out;
		now = ch_mono_ns();

		/* Deadlines of running handlers; a second stop kills them. */
		for (size_t i = 0; i < h.nu; i++) {
			struct unit *u = &h.u[i];
			if (u->state != U_RUNNING)
				continue;
			if (*stop > 1 && !u->killed) {
				kill_unit(u, SIGTERM);
				u->killed = 1;
				u->kill_at = now + KILL_GRACE_NS;
			}
			if (u->deadline && now >= u->deadline && !u->killed) {
				kill_unit(u, SIGTERM);
				u->killed = 1;
				u->timed_out = 1;
				u->kill_at = now + KILL_GRACE_NS;
			}
			if (u->killed == 1 && now >= u->kill_at) {
				kill_unit(u, SIGKILL);
				u->killed = 2;
			}
		}

		stopping = *stop > 0 || h.failed || h.fatal;
		if (stopping && h.running == 0)
			break;

		/* Start what can be started, oldest first: retries that are
		 * due (they hold a slot already), then new units while a slot
		 * is free. */
		while (!stopping && !h.spawn_blocked) {
			unsigned b = busy(&h);
			struct unit *u = NULL;
			int held = 0;	/* a ready unit waits for --rate */
			for (size_t i = 0; i < h.nu && !u; i++) {
				if (h.u[i].state == U_READY && b < o->parallel &&
				    !held) {
					int64_t tw = token_wait(&h);
					if (!tw) {
						u = &h.u[i];
						continue;
					}
					held = 1;
					if (wait_ns < 0 || tw < wait_ns)
						wait_ns = tw;
				} else if (h.u[i].state == U_WAIT &&
				    h.u[i].retry_at <= now)
					u = &h.u[i];
			}
			if (!u) {
				size_t ready;
				if (held || b >= o->parallel ||
				    (h.at_end && !nt) || h.reader_error)
					break;
				h.at_end = 0;
				int got = fill_unit(&h, stopping, &ready, err);
				if (got < 0)
					goto out;
				if (h.failed || h.fatal) {
					stopping = 1;
					break;
				}
				if (!got)
					break;
				h.last_activity = now;
				continue;	/* start it, oldest first */
			}
			if (u->state == U_READY && !u->charged) {
				h.tokens -= (double)u->nrec;	/* --rate */
				u->charged = 1;
			}
			int sp = spawn(&h, u, err);
			if (sp < 0)
				goto out;
			if (sp > 0) {
				h.spawn_blocked = 1;
				if (o->warn && !h.warned_spawn++) {
					char msg[200];
					snprintf(msg, sizeof msg, "run handler: "
					    "%s: waiting for a running one to "
					    "end, then trying again (not said "
					    "again in this run)",
					    strerror(EAGAIN));
					o->warn(o->warn_ctx, msg);
				}
			}
		}
		if (stopping && h.running == 0)
			continue;	/* a record gave up just now: finish */
		/* A unit finished without a handler (a resumed record sent
		 * straight to the dead-letter channel): no child will wake
		 * us to move the offset over it. */
		if (h.nu && h.u[0].state == U_DONE)
			wait_ns = 0;
		for (size_t i = 0; i < h.nu; i++) {
			struct unit *u = &h.u[i];
			int64_t next = u->state != U_RUNNING ? -1 :
			    u->killed == 1 ? u->kill_at :
			    u->deadline && !u->killed ? u->deadline : -1;
			if (next >= 0 && (wait_ns < 0 || next - now < wait_ns))
				wait_ns = next - now > 0 ? next - now : 0;
		}
		/* (Not while a spawn is blocked: nothing starts before a
		 * handler ends, which wakes us.) */
		if (h.nu && h.u[h.nu - 1].state == U_FILLING &&
		    busy(&h) < o->parallel && !h.spawn_blocked) {	/* lingering */
			int64_t d = h.u[h.nu - 1].linger_until - now;
			int64_t tw = token_wait(&h);
			if (tw > d)	/* and it cannot start before a token */
				d = tw;
			if (d < 0)
				d = 0;
			if (wait_ns < 0 || d < wait_ns)
				wait_ns = d;
		}
		for (size_t i = 0; i < h.nu && !h.spawn_blocked; i++)
			if (h.u[i].state == U_WAIT && h.u[i].retry_at != INT64_MAX) {
				int64_t d = h.u[i].retry_at - now;
				if (d < 0)
					d = 0;
				if (wait_ns < 0 || d < wait_ns)
					wait_ns = d;
			}

		int idle = h.running == 0 && h.nu == 0;
		if (idle && (stopping || h.reader_error ||
		    (o->count && h.dispatched >= o->count) ||
		    (h.at_end && !o->follow)))
			break;
		if (idle && h.at_end && o->idle_ns >= 0) {
			int64_t left = ch_ns_add(h.last_activity, o->idle_ns) -
			    now;
			if (left <= 0)
				break;
			if (wait_ns < 0 || left < wait_ns)
				wait_ns = left;
		}
		if (ch_session_dirty(s)) {
			int64_t d = idle ? IDLE_COMMIT_NS : COMMIT_GAP_NS;
			if (wait_ns < 0 || d < wait_ns)
				wait_ns = d;
		}

		/* Sleep until a handler exits, the channel grows, or a
		 * deadline comes. */
		struct pollfd p[2] = { { chld_pipe[0], POLLIN, 0 },
		    { nt && nt->fd >= 0 && h.at_end && busy(&h) < o->parallel ?
		    nt->fd : -1, POLLIN, 0 } };
		if (nt && nt->fd < 0 && h.at_end &&
		    (wait_ns < 0 || wait_ns > CH_NOTIFY_POLL_NS))
			wait_ns = CH_NOTIFY_POLL_NS;	/* polling fallback */
		struct timespec ts = { wait_ns / 1000000000LL,
		    wait_ns % 1000000000LL };
		int pr = ppoll(p, 2, wait_ns < 0 ? NULL : &ts, &oldmask);
		if (pr < 0 && errno != EINTR) {
			ch_err_sys(err, CH_EXIT_FAIL, "ppoll");
			goto out;
		}
		if (pr > 0 && (p[1].revents & (POLLNVAL | POLLERR))) {
			/* As in ch_notify_wait: not a wake-up, a broken fd. */
			errno = p[1].revents & POLLNVAL ? EBADF : EIO;
			ch_err_sys(err, CH_EXIT_FAIL, "wait");
			goto out;
		}
		if (pr > 0 && (p[1].revents & POLLIN)) {
			char buf[4096];
			while (read(nt->fd, buf, sizeof buf) > 0)
				;
		}
		if (ch_session_dirty(s) && idle && pr == 0 &&
		    advance(&h, 1, err) < 0)
			goto out;
	}
	if (advance(&h, 1, err) < 0 || persist_head(&h, err) < 0)
		goto out;
	if (h.fatal) {
		*err = h.ferr;
		goto out;
	}
	/* A record that failed for good comes before the corrupt one: the
	 * offset stays there, as 69 says. */
	if (h.failed) {
		ch_err(err, CH_EXIT_UNAVAILABLE, "%s", h.failure);
		status = CH_EXIT_UNAVAILABLE;
	} else if (h.reader_error) {
		*err = h.rerr;
		status = err->code;
	}
	rc = 0;
out:
	for (size_t i = 0; i < h.nu; i++) {
		if (h.u[i].state == U_RUNNING) {
			kill_unit(&h.u[i], SIGKILL);
			waitpid(h.u[i].pid, NULL, 0);
		}
		unit_free(&h.u[i]);
	}
	free(h.u);
	if (h.dlq_open) {
		struct ch_error e2;
		if (ch_writer_close(h.dlw, &e2) < 0 && rc == 0) {
			*err = e2;
			rc = -1;
		}
		ch_channel_close(&h.dlq);
	}
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	close(chld_pipe[0]);
	close(chld_pipe[1]);
	if (rc < 0)
		return err->code ? err->code : CH_EXIT_FAIL;
	return status;
}
