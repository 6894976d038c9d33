/*
 * chlag - lag report per subscriber: a table for people, JSON, YAML and
 * Prometheus for programs, and a Nagios plugin's exit status.
 *
 * Exit status (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage
 * errors included).  With --warn/--crit the thresholds decide; without
 * them the status does (WARN, RETRY -> 1; STALL, STOP, REWIND, FAILED -> 2).  A channel
 * or an offset file that cannot be read is UNKNOWN; an offset file that
 * disagrees with the channel (INVALID) is CRITICAL either way.  Over several rows the worst wins, in the
 * order CRITICAL, UNKNOWN, WARNING, OK.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "cli.h"
#include "fsutil.h"
#include "lag.h"
#include "lagreport.h"
#include "output.h"
#include "parse.h"

enum { N_OK = 0, N_WARNING = 1, N_CRITICAL = 2, N_UNKNOWN = 3 };
enum { OPT_WARN = 1, OPT_CRIT, OPT_WATCH, OPT_OUTPUT, OPT_WINDOW,
    OPT_ALLOWED, OPT_STALL };

static int opt_json, opt_yaml, opt_prom, opt_nagios, opt_explain;
static const char *opt_warn, *opt_crit, *opt_watch, *opt_output,
    *opt_window, *opt_allowed, *opt_stall;

static struct poptOption lag_options[] = {
	{ "json", '\0', POPT_ARG_NONE, &opt_json, 0, "print JSON", NULL },
	{ "yaml", '\0', POPT_ARG_NONE, &opt_yaml, 0, "print YAML", NULL },
	{ "prometheus", '\0', POPT_ARG_NONE, &opt_prom, 0,
	    "print the Prometheus text exposition format", NULL },
	{ "nagios", '\0', POPT_ARG_NONE, &opt_nagios, 0,
	    "print one Nagios status line with performance data", NULL },
	{ "explain", '\0', POPT_ARG_NONE, &opt_explain, 0,
	    "say under each row which status rule matched and why, with its "
	    "samples", NULL },
	{ "output", 'o', POPT_ARG_STRING, &opt_output, OPT_OUTPUT,
	    "write to FILE atomically (for textfile collectors)", "FILE" },
	{ "warn", 'w', POPT_ARG_STRING, &opt_warn, OPT_WARN,
	    "WARNING above these (records:N,bytes:SIZE,age:DUR)", "KIND:VALUE,..." },
	{ "crit", 'c', POPT_ARG_STRING, &opt_crit, OPT_CRIT,
	    "CRITICAL above these", "KIND:VALUE,..." },
	{ "watch", '\0', POPT_ARG_STRING, &opt_watch, OPT_WATCH,
	    "refresh every SECONDS until interrupted", "SECONDS" },
	{ "window", '\0', POPT_ARG_STRING, &opt_window, OPT_WINDOW,
	    "commit history considered for status (default 10m)", "DUR" },
	{ "allowed-lag", '\0', POPT_ARG_STRING, &opt_allowed, OPT_ALLOWED,
	    "lag in records that still counts as caught up (default 0)", "N" },
	{ "stall", '\0', POPT_ARG_STRING, &opt_stall, OPT_STALL,
	    "no progress for this long is STALL/STOP (default 1m)", "DUR" },
	POPT_TABLEEND
};

static struct poptOption options[] = {
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, lag_options, 0, "Options:", NULL },
	{ NULL, '\0', POPT_ARG_INCLUDE_TABLE, ch_common_options, 0,
	    "Common options:", NULL },
	POPT_AUTOHELP
	POPT_TABLEEND
};

struct thresholds {
	int have;
	int have_records, have_bytes, have_age;
	uint64_t records, bytes;
	int64_t age_ns;
};

static struct thresholds warn_t, crit_t;
static struct ch_lag_opts lag_opts;
static volatile sig_atomic_t stop;

/* KIND:VALUE[,KIND:VALUE]... or nothing: no empty item (a trailing
 * comma is a typo) and no kind twice in one value (which of the two
 * would hold?). */
static void
parse_thresholds(const char *opt, const char *val, struct thresholds *t)
{
	static const char *const kinds[] = { "records", "bytes", "age" };
	/* static: still reachable when ch_usage() exits half way, whatever
	 * registers held it (LeakSanitizer) */
	static char *copy;
	const char *seen[3] = { NULL, NULL, NULL };	/* items in val */
	char *tok, *next;
	struct ch_error err;
	int k;

	/* Nothing: no limit, as a Nagios command line's empty $ARG1$ gives
	 * (--warn=$ARG1$ --crit=$ARG2$); both empty, the statuses decide. */
	if (!*val)
		return;
	t->have = 1;
	if (!(copy = strdup(val)))
		ch_die(N_UNKNOWN, NULL, "out of memory");
	for (tok = copy; tok; tok = next) {
		const char *item = val + (tok - copy);
		if ((next = strchr(tok, ',')))
			*next++ = '\0';
		if (!*tok)
			ch_usage("%s: empty KIND:VALUE in '%s' (a comma too many?)",
			    opt, val);
		char *colon = strchr(tok, ':');
		if (!colon)
			ch_usage("%s: '%s' is not KIND:VALUE (records:1000, "
			    "bytes:10M, age:5m)", opt, tok);
		*colon = '\0';
		const char *v = colon + 1;
		for (k = 0; k < 3 && strcmp(tok, kinds[k]) != 0; k++)
			;
		if (k == 3)
			ch_usage("%s: unknown kind '%s' (records, bytes or age)",
			    opt, tok);
		if (seen[k])
			ch_usage("%s: %s given twice, '%.*s' and '%.*s'", opt, tok,
			    (int)strcspn(seen[k], ","), seen[k],
			    (int)strcspn(item, ","), item);
		seen[k] = item;
		/* In an earlier -w (-c): which of the two would hold? */
		if ((k == 0 && t->have_records) || (k == 1 && t->have_bytes) ||
		    (k == 2 && t->have_age))
			ch_usage("%s: %s given in two %s options", opt, tok,
			    opt);
		if (k == 0) {
			if (ch_parse_u64(v, &t->records, &err) < 0)
				ch_usage("%s: records: %s", opt, err.msg);
			t->have_records = 1;
		} else if (k == 1) {
			if (ch_parse_size(v, &t->bytes, &err) < 0)
				ch_usage("%s: bytes: %s", opt, err.msg);
			t->have_bytes = 1;
		} else {
			if (ch_parse_duration(v, &t->age_ns, &err) < 0)
				ch_usage("%s: age: %s", opt, err.msg);
			t->have_age = 1;
		}
	}
	free(copy);
}

static int
over(const struct thresholds *t, const struct ch_lagrow *r)
{
	return (t->have_records && r->lag_records > t->records) ||
	    (t->have_bytes && r->lag_bytes > t->bytes) ||
	    (t->have_age && r->age_ns > t->age_ns);
}

/* "; over --warn records:10 and age:5m": the limits the row crosses, for
 * a Nagios line whose worst row is over its thresholds whatever its
 * STATUS says. */
static void
say_over(FILE *f, const char *opt, const struct thresholds *t,
    const struct ch_lagrow *r)
{
	const char *sep = "";

	fprintf(f, "; over %s ", opt);
	if (t->have_records && r->lag_records > t->records) {
		fprintf(f, "records:%llu", (unsigned long long)t->records);
		sep = " and ";
	}
	if (t->have_bytes && r->lag_bytes > t->bytes) {
		fprintf(f, "%sbytes:%llu", sep, (unsigned long long)t->bytes);
		sep = " and ";
	}
	if (t->have_age && r->age_ns > t->age_ns) {
		char d[32];
		ch_format_duration(d, sizeof d, t->age_ns);
		fprintf(f, "%sage:%s", sep, d);
	}
}

static int
row_code(const struct ch_lagrow *r)
{
	if (r->status == CH_ST_ERROR)
		return N_UNKNOWN;
	if (r->status == CH_ST_INVALID)
		return N_CRITICAL;
	if (warn_t.have || crit_t.have)
		return over(&crit_t, r) ? N_CRITICAL :
		    over(&warn_t, r) ? N_WARNING : N_OK;
	switch (r->status) {
	case CH_ST_OK:
		return N_OK;
	case CH_ST_WARN:
	case CH_ST_RETRY:
		return N_WARNING;
	default:
		return N_CRITICAL;
	}
}

/* Worst first: CRITICAL, UNKNOWN, WARNING, OK. */
static int
worse(int a, int b)
{
	static const int rank[] = { 0, 1, 3, 2 };
	return rank[b] > rank[a] ? b : a;
}

/*
 * Every channel directly under CH_ROOT: directories with channel.yaml,
 * and directories that cannot be looked into (a channel of another user's
 * under umask 077, say): left out, they would vanish from the report and
 * its chlag_channel_up, and a check would say OK.
 */
static int
is_channel(const char *root, const char *name)
{
	char path[4096];
	struct stat st;

	if (name[0] == '.')
		return 0;
	snprintf(path, sizeof path, "%s/%s/%s", root, name, CH_CONFIG_FILE);
	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	snprintf(path, sizeof path, "%s/%s", root, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char **
root_channels(size_t *n)
{
	const char *root = getenv("CH_ROOT");
	struct dirent **list;
	char **out;
	int cnt, k = 0;

	if (!root || !root[0])
		ch_usage("missing CHANNEL (or set CH_ROOT to report every channel "
		    "under it)");
	cnt = scandir(root, &list, NULL, alphasort);
	if (cnt < 0)
		ch_die(N_UNKNOWN, NULL, "CH_ROOT %s: %s", root, strerror(errno));
	out = calloc((size_t)cnt + 1, sizeof *out);
	if (!out)
		ch_die(N_UNKNOWN, NULL, "out of memory");
	for (int i = 0; i < cnt; i++) {
		if (is_channel(root, list[i]->d_name) &&
		    !(out[k++] = strdup(list[i]->d_name))) {
			/* freed first: nothing left for LeakSanitizer */
			for (int j = i; j < cnt; j++)
				free(list[j]);
			free(list);
			while (k > 0)
				free(out[--k]);
			free(out);
			ch_die(N_UNKNOWN, NULL, "out of memory");
		}
		free(list[i]);
	}
	free(list);
	*n = (size_t)k;
	return out;
}

/*
 * Nagios output follows the plugin guidelines: the text before '|' holds
 * no '|' and no line break; a performance data label holds no '=', is
 * quoted, and a quote in it is written twice.  A channel path may hold
 * any of these: they are written as '_' (and a byte that is not UTF-8,
 * which Icinga and other readers do not take, as U+FFFD).
 */
static void
nagios_str(FILE *f, const char *str, char forbidden)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	for (size_t i = 0; i < n; ) {
		size_t l = ch_utf8_len(s + i, n - i);
		if (l == 0) {
			fputs("\xef\xbf\xbd", f);
			l = 1;
		} else if (s[i] == forbidden || s[i] < 0x20 || s[i] == 0x7f) {
			fputc('_', f);
		} else {
			if (s[i] == '\'' && forbidden == '=')
				fputc('\'', f);
			fwrite(s + i, 1, l, f);
		}
		i += l;
	}
}

static void
nagios_text(FILE *f, const char *s)
{
	nagios_str(f, s, '|');
}

/* A performance data label, 'CHANNEL/SUBSCRIBER_SUFFIX'=. */
static void
perf_label(FILE *f, const struct ch_lagrow *r, const char *suffix)
{
	fputc('\'', f);
	nagios_str(f, r->channel, '=');
	fprintf(f, "/%s_%s'=", r->subscriber, suffix);
}

/* An age limit in seconds: whole, or with the fraction it has (a limit
 * of 500ms written as 0 would read as "always over"). */
static void
perf_seconds(FILE *f, int have, int64_t ns)
{
	if (!have)
		return;
	char buf[48];
	int n = snprintf(buf, sizeof buf, "%lld.%09lld",
	    (long long)(ns / 1000000000), (long long)(ns % 1000000000));
	while (n > 0 && buf[n - 1] == '0')	/* 1.500000000 -> 1.5 */
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	fputs(buf, f);
}

/* "WARN;CRIT;0;" of a performance value: a limit not given is empty. */
static void
perf_limits(FILE *f, int have_warn, uint64_t warn, int have_crit,
    uint64_t crit)
{
	if (have_warn)
		fprintf(f, "%llu", (unsigned long long)warn);
	fputc(';', f);
	if (have_crit)
		fprintf(f, "%llu", (unsigned long long)crit);
	fputs(";0;", f);
}

static void
nagios_line(FILE *f, const struct ch_lagrow *rows, size_t n, int code,
    size_t failed, const char *first_failure)
{
	static const char *word[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
	const struct ch_lagrow *worst = NULL;
	size_t bad = 0;
	int perf = 0;

	for (size_t i = 0; i < n; i++) {
		if (row_code(&rows[i]) != N_OK)
			bad++;
		if (!worst || worse(row_code(worst), row_code(&rows[i])) !=
		    row_code(worst) || (row_code(&rows[i]) == row_code(worst) &&
		    rows[i].lag_records > worst->lag_records))
			worst = &rows[i];
	}
	fprintf(f, "CHLAG %s - ", word[code]);
	if (failed) {
		fprintf(f, "%zu %s cannot be read, ", failed,
		    failed == 1 ? "channel" : "channels");
		nagios_text(f, first_failure);
		if (n)
			fputs("; ", f);
	}
	if (!n && !failed)
		fprintf(f, "no subscribers");
	else if (!n)
		;
	else if (worst->status == CH_ST_ERROR) {
		nagios_text(f, worst->channel);
		fprintf(f, "/%s: ", worst->subscriber);
		nagios_text(f, worst->error);
	} else if (worst->status == CH_ST_INVALID) {
		fprintf(f, "%zu of %zu subscribers need attention; worst ", bad, n);
		nagios_text(f, worst->channel);
		fprintf(f, "/%s: INVALID: ", worst->subscriber);
		nagios_text(f, worst->error);
	} else {
		char age[32];
		ch_format_duration(age, sizeof age, worst->age_ns);
		fprintf(f, "%zu of %zu subscribers need attention; worst ", bad, n);
		nagios_text(f, worst->channel);
		fprintf(f, "/%s: %s, lag %llu record%s, age %s",
		    worst->subscriber, ch_status_name(worst->status),
		    (unsigned long long)worst->lag_records,
		    ch_plural(worst->lag_records),
		    worst->lag_records ? age : "0s");
		if (worst->retry.records) {
			char note[256];
			ch_lag_retry_note(worst, ch_now_ns(), note, sizeof note);
			fprintf(f, "; %s", note);
		}
		if (warn_t.have || crit_t.have) {
			if (over(&crit_t, worst))
				say_over(f, "--crit", &crit_t, worst);
			else if (over(&warn_t, worst))
				say_over(f, "--warn", &warn_t, worst);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct ch_lagrow *r = &rows[i];
		if (r->status == CH_ST_ERROR || r->status == CH_ST_INVALID)
			continue;
		fputs(perf++ ? " " : " | ", f);
		perf_label(f, r, "records");
		fprintf(f, "%llu;", (unsigned long long)r->lag_records);
		perf_limits(f, warn_t.have_records, warn_t.records,
		    crit_t.have_records, crit_t.records);
		fputc(' ', f);
		perf_label(f, r, "bytes");
		fprintf(f, "%lluB;", (unsigned long long)r->lag_bytes);
		perf_limits(f, warn_t.have_bytes, warn_t.bytes,
		    crit_t.have_bytes, crit_t.bytes);
		fputc(' ', f);
		/* Whole seconds, cut as in the text before '|'. */
		perf_label(f, r, "age");
		fprintf(f, "%llus;", (unsigned long long)(r->age_ns / 1000000000));
		perf_seconds(f, warn_t.have_age, warn_t.age_ns);
		fputc(';', f);
		perf_seconds(f, crit_t.have_age, crit_t.age_ns);
		fputs(";0; ", f);
		perf_label(f, r, "attempts");
		fprintf(f, "%llu;;;0;", (unsigned long long)r->retry.attempts);
	}
	fputc('\n', f);
}

/* A row for a channel that could not be read (ch_lagrow channel_error). */
static int
add_channel_error(struct ch_lagrow **all, size_t *nall, const char *chan,
    const struct ch_error *err)
{
	struct ch_lagrow *na = realloc(*all, (*nall + 1) * sizeof **all);

	if (!na) {
		free(*all);
		*all = NULL;
		return -1;
	}
	*all = na;
	memset(&na[*nall], 0, sizeof na[*nall]);
	na[*nall].channel = chan;
	na[*nall].status = CH_ST_ERROR;
	na[*nall].channel_error = 1;
	snprintf(na[*nall].error, sizeof na[*nall].error, "%.500s", err->msg);
	(*nall)++;
	return 0;
}

/* One report over all channels; returns the Nagios code, or -1 (said on
 * stderr) when it could not be made whole: the caller cleans up. */
static int
report(FILE *f, const char **chans, size_t nch, int tty)
{
	struct ch_lagrow *all = NULL;
	size_t nall = 0, failed = 0;
	int code = N_OK;
	int64_t now = ch_now_ns();
	char first_failure[4700] = "";
	/* which channels could be read (--prometheus says it of each) */
	unsigned char *up = calloc(nch ? nch : 1, 1);

	if (!up) {
		ch_msg(NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nch; i++) {
		struct ch_channel ch;
		struct ch_error err;
		struct ch_lagrow *rows;
		size_t n;
		if (ch_channel_open(chans[i], 0, &ch, &err) < 0 ||
		    ch_lag_collect(&ch, &lag_opts, now, &rows, &n, &err) < 0) {
			ch_report(chans[i], &err);
			code = worse(code, N_UNKNOWN);
			if (!failed++)
				snprintf(first_failure, sizeof first_failure,
				    "%s: %.500s", chans[i], err.msg);
			if (ch.dirfd >= 0)
				ch_channel_close(&ch);
			/* --json and --yaml have no chlag_channel_up: a row
			 * says so, or a script sees nothing wrong */
			if ((opt_json || opt_yaml) &&
			    add_channel_error(&all, &nall, chans[i], &err) < 0) {
				free(up);
				ch_msg(chans[i], "out of memory");
				return -1;
			}
			continue;
		}
		ch_channel_close(&ch);
		up[i] = 1;
		struct ch_lagrow *na = realloc(all, (nall + n + 1) * sizeof *all);
		if (!na) {
			free(rows);
			free(all);
			free(up);
			ch_msg(chans[i], "out of memory");
			return -1;
		}
		all = na;
		memcpy(all + nall, rows, n * sizeof *rows);
		nall += n;
		free(rows);
	}
	for (size_t i = 0; i < nall; i++)
		code = worse(code, row_code(&all[i]));
	if (opt_json)
		ch_lag_json(f, all, nall, opt_explain, now);
	else if (opt_yaml) {
		if (ch_lag_yaml(f, all, nall, opt_explain, now) < 0) {
			free(all);
			free(up);
			ch_msg(NULL, "YAML output failed");
			return -1;
		}
	} else if (opt_prom)
		ch_lag_prometheus(f, all, nall, chans, up, nch, now);
	else if (opt_nagios)
		nagios_line(f, all, nall, code, failed, first_failure);
	else {
		const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
		struct ch_lagview v = { tty && !(nc && nc[0]) &&
		    !(term && strcmp(term, "dumb") == 0), tty,
		    strcmp(nl_langinfo(CODESET), "UTF-8") == 0, opt_explain,
		    now };
		if (nall)
			ch_lag_table(f, all, nall, &v);
		else if (!failed)
			fprintf(f, "no subscribers\n");
	}
	free(all);
	free(up);
	return code;
}

/*
 * The new report keeps the mode and group of the one it replaces, as
 * sponge(1) does: a 0640 file of the node exporter's group stays readable
 * by it, whatever umask cron runs chlag under.  A group this process may
 * not give (not root, not a member) stays its own.
 */
static int
keep_mode(int dfd, const char *base, int fd)
{
	struct stat st;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (fchmod(fd, st.st_mode & 07777) < 0)
		return -1;
	if (st.st_gid != getegid() && fchown(fd, (uid_t)-1, st.st_gid) < 0 &&
	    errno != EPERM)
		return -1;
	return 0;
}

/*
 * --output: write to FILE.tmp.PID beside FILE, sync it, rename it over
 * FILE, sync the directory.  The temporary file is created exclusively
 * (ch_open_temp): a FIFO, a symlink or a hard link planted at its name
 * is removed, never opened, so it can neither block chlag nor be written
 * through.
 */
static int
report_to_file(const char *path, const char **chans, size_t nch)
{
	/* static: still reachable when ch_die() or exit() ends chlag half
	 * way, whatever registers held them (LeakSanitizer) */
	static char *dir, *tmp;
	char *slash;
	const char *base;
	FILE *f;
	int code, fd, dfd;

	if (!(dir = strdup(path)))
		ch_die(N_UNKNOWN, NULL, "out of memory");
	slash = strrchr(dir, '/');
	base = slash ? path + (slash - dir) + 1 : path;
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';	/* "/x" is in "/" */
	if (!base[0])
		ch_usage("--output: '%s' names a directory, not a file", path);
	dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		ch_die(N_UNKNOWN, NULL, "%s.tmp.%ld: %s", path, (long)getpid(),
		    strerror(errno));
	if (asprintf(&tmp, "%s.tmp.%ld", base, (long)getpid()) < 0)
		ch_die(N_UNKNOWN, NULL, "out of memory");
	fd = ch_open_temp(dfd, tmp, 0644);
	if (fd >= 0 && keep_mode(dfd, base, fd) < 0) {
		int saved = errno;
		close(fd);
		unlinkat(dfd, tmp, 0);
		errno = saved;
		fd = -1;
	}
	if (fd >= 0 && !(f = fdopen(fd, "w"))) {
		int saved = errno;
		close(fd);
		unlinkat(dfd, tmp, 0);	/* no temp file left behind */
		errno = saved;
		fd = -1;
	}
	if (fd < 0)
		ch_die(N_UNKNOWN, NULL, "%s.tmp.%ld: %s", path, (long)getpid(),
		    errno == CH_ENOTREG ? "not a regular file" : strerror(errno));
	code = report(f, chans, nch, 0);
	if (code < 0) {
		fclose(f);
		unlinkat(dfd, tmp, 0);	/* no half report left behind */
		exit(ch_finish(N_UNKNOWN));
	}
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		int saved = errno;
		unlinkat(dfd, tmp, 0);
		ch_die(N_UNKNOWN, NULL, "%s.tmp.%ld: %s", path, (long)getpid(),
		    strerror(saved));
	}
	if (fclose(f) != 0 || renameat(dfd, tmp, dfd, base) < 0 ||
	    ch_fsync_dir(dfd) < 0) {
		int saved = errno;
		unlinkat(dfd, tmp, 0);
		ch_die(N_UNKNOWN, NULL, "%s: %s", path, strerror(saved));
	}
	close(dfd);
	free(tmp);
	free(dir);
	return code;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, const char **argv)
{
	poptContext pc;
	const char **args;
	/* The channels' names, copied: static, so that they stay reachable
	 * when a report dies half way (LeakSanitizer cannot count on a
	 * register of a frame that called exit). */
	static char **owned;
	size_t nch = 0;
	int rc, code;
	int64_t watch_ns = 0;

	setlocale(LC_CTYPE, "");
	ch_lag_defaults(&lag_opts);
	pc = ch_cli_init("chlag", N_UNKNOWN, argc, argv, options,
	    "[OPTION...] [CHANNEL...]");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_WARN:
			parse_thresholds("--warn", opt_warn, &warn_t);
			break;
		case OPT_CRIT:
			parse_thresholds("--crit", opt_crit, &crit_t);
			break;
		case OPT_WATCH:
			watch_ns = ch_opt_duration("--watch", opt_watch);
			if (watch_ns <= 0)
				ch_usage("--watch: must be more than 0");
			break;
		case OPT_WINDOW:
			lag_opts.window_ns = ch_opt_duration("--window", opt_window);
			break;
		case OPT_ALLOWED:
			lag_opts.allowed_lag = ch_opt_count("--allowed-lag",
			    opt_allowed, 0, UINT64_MAX);
			break;
		case OPT_STALL:
			lag_opts.stall_ns = ch_opt_duration("--stall", opt_stall);
			break;
		case OPT_OUTPUT:
			break;
		default:
			ch_die(N_UNKNOWN, NULL, "option table misconfigured (%d)",
			    rc);
		}
	}
	if (rc < -1)
		ch_cli_popt_error(pc, rc);
	if (opt_json + opt_yaml + opt_prom + opt_nagios > 1)
		ch_usage("give only one of --json, --yaml, --prometheus, --nagios");
	if (opt_explain && (opt_prom || opt_nagios))
		ch_usage("--explain goes with the table, --json or --yaml, not "
		    "with --%s", opt_prom ? "prometheus" : "nagios");
	if (opt_output && watch_ns)
		ch_usage("--output and --watch cannot be combined");
	args = poptGetArgs(pc);
	int from_root = !args || !args[0];
	if (from_root) {
		owned = root_channels(&nch);
		args = (const char **)owned;
	} else {
		/* A channel named twice is reported once: twice would be
		 * duplicate series and labels to Prometheus and Nagios. */
		size_t n = 0;
		while (args[n])
			n++;
		owned = calloc(n + 1, sizeof *owned);
		if (!owned)
			ch_die(N_UNKNOWN, NULL, "out of memory");
		for (size_t i = 0; i < n; i++) {
			size_t j = 0;
			while (j < nch && strcmp(owned[j], args[i]) != 0)
				j++;
			if (j == nch && !(owned[nch++] = strdup(args[i])))
				ch_die(N_UNKNOWN, NULL, "out of memory");
		}
		args = (const char **)owned;
	}
	if (opt_output) {
		code = report_to_file(opt_output, args, nch);
	} else if (!watch_ns) {
		if ((code = report(stdout, args, nch, isatty(1))) < 0)
			exit(ch_finish(N_UNKNOWN));
	} else {
		/* A first signal ends the loop once the report being
		 * written is out whole (SA_RESTART: a write blocked on a full
		 * pipe goes on); a second one ends chlag at once. */
		struct sigaction sa = { 0 };
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART | SA_RESETHAND;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		int tty = isatty(1);
		do {
			char *buf = NULL;
			size_t len = 0;
			FILE *mem = open_memstream(&buf, &len);
			if (!mem)
				ch_die(N_UNKNOWN, NULL, "out of memory");
			code = report(mem, args, nch, tty);
			if (fclose(mem) != 0 || code < 0) {
				free(buf);
				if (code < 0)
					exit(ch_finish(N_UNKNOWN));
				ch_die(N_UNKNOWN, NULL, "out of memory");
			}
			if (tty)
				fputs("\033[H\033[2J", stdout);
			fwrite(buf, 1, len, stdout);
			if (!tty)
				fputc('\n', stdout);
			free(buf);
			/* Nobody sees a report that cannot be written: stop
			 * (as watch(1) would) instead of looping on. */
			if (fflush(stdout) != 0 || ferror(stdout)) {
				ch_stdout_handled();
				if (errno == EPIPE)	/* as ch_finish() */
					exit(code);
				fprintf(stderr, "%s: write error: %s\n",
				    ch_prog, strerror(errno));
				exit(N_UNKNOWN);
			}
			struct timespec ts = { (time_t)(watch_ns / 1000000000),
			    (long)(watch_ns % 1000000000) };
			nanosleep(&ts, NULL);
			if (from_root && !stop) {
				/* channels made or removed since count too */
				for (size_t i = 0; i < nch; i++)
					free(owned[i]);
				free(owned);
				owned = root_channels(&nch);
				args = (const char **)owned;
			}
		} while (!stop);
	}
	for (size_t i = 0; owned && i < nch; i++)
		free(owned[i]);
	free(owned);
	poptFreeContext(pc);
	/* A report nobody can read is UNKNOWN, whatever it said: ch_finish(0)
	 * is not 0 only when standard output could not be written. */
	return ch_finish(0) ? N_UNKNOWN : code;
}
