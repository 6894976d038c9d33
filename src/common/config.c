/*
 * config.c - channel.yaml through libyaml's event API.
 *
 * The schema is flat (plus one nested mapping, `retention`), so a loop with
 * an explicit state beats a recursive walker, and it cannot be driven into
 * deep recursion by hostile input.  libyaml itself is not so safe: its
 * scanner spends time in the nesting depth at every token, so 100k nested
 * '[' take it minutes; nothing valid nests deeper than 2 levels, so
 * parsing stops at MAX_DEPTH.  A key table drives both validation and
 * the "did you mean" hint.  Every parsed event is deleted on every path.
 */
#include <config.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "format.h"
#include "fsutil.h"
#include "parse.h"

enum ktype { K_FORMAT, K_SIZE, K_DUR, K_SYNC, K_ONFULL, K_STRING, K_MAP };

struct key {
	const char *parent;	/* NULL for top level */
	const char *name;
	enum ktype type;
	size_t off;
};

#define F(m) offsetof(struct ch_config, m)
static const struct key keys[] = {
	{ NULL, "format", K_FORMAT, F(format) },
	{ NULL, "segment_bytes", K_SIZE, F(segment_bytes) },
	{ NULL, "segment_age", K_DUR, F(segment_age_ns) },
	{ NULL, "sync", K_SYNC, F(sync) },
	{ NULL, "sync_interval", K_DUR, F(sync_interval_ns) },
	{ NULL, "max_bytes", K_SIZE, F(max_bytes) },
	{ NULL, "on_full", K_ONFULL, F(on_full) },
	{ NULL, "max_record_bytes", K_SIZE, F(max_record_bytes) },
	{ NULL, "retention", K_MAP, 0 },
	{ "retention", "max_age", K_DUR, F(retention_max_age_ns) },
	{ "retention", "max_bytes", K_SIZE, F(retention_max_bytes) },
	{ NULL, "expire", K_DUR, F(expire_ns) },
	{ NULL, "dead_letter", K_STRING, F(dead_letter) },
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])

/* Deepest nesting looked at, even to skip it (the schema needs 2). */
#define MAX_DEPTH 16

void
ch_config_defaults(struct ch_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->format = CH_FORMAT_UNSET;
	cfg->segment_bytes = 64ULL << 20;
	cfg->segment_age_ns = 0;
	cfg->sync = CH_SYNC_NONE;
	cfg->sync_interval_ns = 1000000000;
	cfg->max_bytes = 0;
	cfg->on_full = CH_FULL_FAIL;
	cfg->max_record_bytes = 16ULL << 20;
}

static const char template_head[] =
"# channel.yaml: settings of this chtools channel (see channel.yaml(5)).\n"
"# Every key is optional; an empty value means the default shown.\n"
"# Command-line options override these for one run.\n"
"\n"
"# On-disk format of new segments (channel(5)): 3, or 2 or 1 for older\n"
"# chtools.  Raising it upgrades the channel from the next segment on.\n"
"format: ";

static const char template_tail[] =
"\n"
"\n"
"# A segment is sealed when it reaches this size (minimum 4096).\n"
"segment_bytes: 64MiB\n"
"\n"
"# ...or when its first record is older than this (0: size only).\n"
"segment_age: 0\n"
"\n"
"# chpub durability: none (the kernel writes back), periodic (fdatasync\n"
"# every sync_interval and at exit), always (fdatasync before success).\n"
"sync: none\n"
"sync_interval: 1s\n"
"\n"
"# The channel is full when its segments hold more than this (0: no\n"
"# limit); chpub then fails (on_full: fail) or waits (on_full: block).\n"
"max_bytes: 0\n"
"on_full: fail\n"
"\n"
"# Largest record chpub accepts.\n"
"max_record_bytes: 16MiB\n"
"\n"
"# chcompact deletes sealed segments beyond these limits even if some\n"
"# subscriber has not read them (0: keep).\n"
"retention:\n"
"  max_age: 0\n"
"  max_bytes: 0\n"
"\n"
"# chcompact deregisters subscribers idle for longer than this (0: never).\n"
"expire: 0\n"
"\n"
"# Default dead-letter channel for chsub --exec (empty: none).\n"
"dead_letter:\n";

const char *
ch_config_template(int format)
{
	static char buf[sizeof template_head + sizeof template_tail + 16];

	snprintf(buf, sizeof buf, "%s%d%s", template_head, format,
	    template_tail);
	return buf;
}

int
ch_config_new_format(int *format, struct ch_error *err)
{
	const char *s = getenv("CH_FORMAT");

	*format = CH_FORMAT_NEW;
	if (!s || !*s)
		return 0;
	if (strcmp(s, "1") == 0 || strcmp(s, "2") == 0 || strcmp(s, "3") == 0) {
		*format = s[0] - '0';
		return 0;
	}
	return ch_err(err, CH_EXIT_USAGE, "CH_FORMAT=%s: a channel can be "
	    "created in format 1, 2 or 3", s);
}

int
ch_parse_sync(const char *s, int *out, struct ch_error *err)
{
	if (strcmp(s, "none") == 0)
		*out = CH_SYNC_NONE;
	else if (strcmp(s, "periodic") == 0)
		*out = CH_SYNC_PERIODIC;
	else if (strcmp(s, "always") == 0)
		*out = CH_SYNC_ALWAYS;
	else
		return ch_err(err, CH_EXIT_USAGE,
		    "invalid sync policy '%s' (expected none, periodic or always)",
		    s);
	return 0;
}

const char *
ch_sync_name(int sync)
{
	return sync == CH_SYNC_ALWAYS ? "always" :
	    sync == CH_SYNC_PERIODIC ? "periodic" : "none";
}

int
ch_parse_on_full(const char *s, int *out, struct ch_error *err)
{
	if (strcmp(s, "fail") == 0)
		*out = CH_FULL_FAIL;
	else if (strcmp(s, "block") == 0)
		*out = CH_FULL_BLOCK;
	else
		return ch_err(err, CH_EXIT_USAGE,
		    "invalid on_full policy '%s' (expected fail or block)", s);
	return 0;
}

/* Levenshtein distance, for "did you mean". */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], prev, tmp;

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			tmp = row[j];
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static const struct key *
find_key(const char *parent, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if ((parent == NULL) != (keys[i].parent == NULL))
			continue;
		if (parent && strcmp(parent, keys[i].parent) != 0)
			continue;
		if (strcmp(name, keys[i].name) == 0)
			return &keys[i];
	}
	return NULL;
}

static const char *
suggest(const char *parent, const char *name)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < NKEYS; i++) {
		if ((parent == NULL) != (keys[i].parent == NULL))
			continue;
		if (parent && strcmp(parent, keys[i].parent) != 0)
			continue;
		size_t d = distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	return best;
}

struct pstate {
	const char *name;		/* file name for messages */
	struct ch_config *cfg;
	struct ch_error *err;
	int failed;			/* first semantic error recorded */
	struct ch_error first;
	int seen[NKEYS];
	size_t line[NKEYS], col[NKEYS];	/* where each value was set */
	int format_seen;
	int format_line, format_col;
	const char *text;		/* the file, for reader errors */
	size_t len;
};

static int
at(struct pstate *ps, const yaml_mark_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record a semantic error at a mark; keep parsing so `format` can still be
 * found (a newer format explains unknown keys better than they do). */
static int
at(struct pstate *ps, const yaml_mark_t *m, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (ps->failed)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ch_err(&ps->first, code, "%s:%zu:%zu: %s", ps->name, m->line + 1,
	    m->column + 1, msg);
	ps->failed = 1;
	return 0;
}

static int
is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void
set_value(struct pstate *ps, const struct key *k, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	char *base = (char *)ps->cfg;
	struct ch_error e;
	struct ch_config defaults;
	uint64_t size;
	int64_t dur;
	int iv;

	ps->line[k - keys] = ev->start_mark.line + 1;
	ps->col[k - keys] = ev->start_mark.column + 1;
	if (ev->data.scalar.tag || ev->data.scalar.anchor) {
		at(ps, &ev->start_mark, CH_EXIT_CONFIG,
		    "tags and anchors are not allowed (key '%s')", k->name);
		return;
	}
	if (is_null(ev)) {	/* empty value: keep the default */
		ch_config_defaults(&defaults);
		if (k->type == K_FORMAT || k->type == K_MAP)
			return;
		if (k->type == K_STRING)
			memset(base + k->off, 0, sizeof ps->cfg->dead_letter);
		else if (k->type == K_SIZE)
			memcpy(base + k->off, (char *)&defaults + k->off, sizeof size);
		else if (k->type == K_DUR)
			memcpy(base + k->off, (char *)&defaults + k->off, sizeof dur);
		else
			memcpy(base + k->off, (char *)&defaults + k->off, sizeof iv);
		return;
	}
	switch (k->type) {
	case K_FORMAT:
		if (ch_parse_count(v, 1, 1000000, &size, &e) < 0) {
			at(ps, &ev->start_mark, CH_EXIT_CONFIG,
			    "format: '%s' is not a format version", v);
			return;
		}
		ps->cfg->format = (int)size;
		ps->format_seen = 1;
		ps->format_line = (int)ev->start_mark.line + 1;
		ps->format_col = (int)ev->start_mark.column + 1;
		return;
	case K_SIZE:
		if (ch_parse_size(v, &size, &e) < 0) {
			at(ps, &ev->start_mark, CH_EXIT_CONFIG, "%s: %s", k->name,
			    e.msg);
			return;
		}
		memcpy(base + k->off, &size, sizeof size);
		return;
	case K_DUR:
		if (ch_parse_duration(v, &dur, &e) < 0) {
			at(ps, &ev->start_mark, CH_EXIT_CONFIG, "%s: %s", k->name,
			    e.msg);
			return;
		}
		memcpy(base + k->off, &dur, sizeof dur);
		return;
	case K_SYNC:
	case K_ONFULL:
		if ((k->type == K_SYNC ? ch_parse_sync(v, &iv, &e) :
		    ch_parse_on_full(v, &iv, &e)) < 0) {
			at(ps, &ev->start_mark, CH_EXIT_CONFIG, "%s: %s", k->name,
			    e.msg);
			return;
		}
		memcpy(base + k->off, &iv, sizeof iv);
		return;
	case K_STRING:
		if (strlen(v) >= sizeof ps->cfg->dead_letter) {
			at(ps, &ev->start_mark, CH_EXIT_CONFIG, "%s: value too long",
			    k->name);
			return;
		}
		strcpy(base + k->off, v);
		/* for chsub's "names this channel itself" */
		ps->cfg->dead_letter_line = (unsigned)ev->start_mark.line + 1;
		ps->cfg->dead_letter_col = (unsigned)ev->start_mark.column + 1;
		return;
	case K_MAP:
		at(ps, &ev->start_mark, CH_EXIT_CONFIG,
		    "'%s' must be a mapping (e.g. max_age: 7d on the next line, "
		    "indented)", k->name);
		return;
	}
}

/* "NAME:LINE:COL" of where key `name` was set, or just NAME if it was
 * not (a default cannot be out of range, but be safe). */
static void
where(struct pstate *ps, const char *name, char *buf, size_t len)
{
	const struct key *k = find_key(NULL, name);
	size_t i = k ? (size_t)(k - keys) : 0;

	if (k && ps->line[i])
		snprintf(buf, len, "%s:%zu:%zu", ps->name, ps->line[i], ps->col[i]);
	else
		snprintf(buf, len, "%s", ps->name);
}

/* Range checks (run after a clean parse). */
static int
validate(struct pstate *ps)
{
	struct ch_config *c = ps->cfg;
	struct ch_error *err = ps->err;
	char at[300];

	if (c->segment_bytes < CH_MIN_SEGMENT_BYTES ||
	    c->segment_bytes > (1ULL << 50)) {
		where(ps, "segment_bytes", at, sizeof at);
		return ch_err(err, CH_EXIT_CONFIG,
		    "%s: segment_bytes must be between %d and 1PiB", at,
		    CH_MIN_SEGMENT_BYTES);
	}
	if (c->max_record_bytes == 0 || c->max_record_bytes > CH_RECORD_MAX) {
		where(ps, "max_record_bytes", at, sizeof at);
		return ch_err(err, CH_EXIT_CONFIG,
		    "%s: max_record_bytes must be between 1 and %llu", at,
		    CH_RECORD_MAX);
	}
	if (c->sync_interval_ns <= 0) {
		where(ps, "sync_interval", at, sizeof at);
		return ch_err(err, CH_EXIT_CONFIG,
		    "%s: sync_interval must be greater than 0", at);
	}
	return 0;
}

static void
syntax_error(struct pstate *ps, yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR) {
		ch_err(ps->err, CH_EXIT_FAIL, "%s: out of memory", ps->name);
	} else if (p->error == YAML_READER_ERROR) {
		/* libyaml gives a byte offset here: turn it into the usual
		 * line:column (bytes, counted from 1). */
		size_t line = 1, col = 1;
		for (size_t i = 0; i < p->problem_offset && i < ps->len; i++) {
			if (ps->text[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		ch_err(ps->err, CH_EXIT_CONFIG, "%s:%zu:%zu: %s", ps->name,
		    line, col, p->problem ? p->problem : "unreadable");
	} else {
		ch_err(ps->err, CH_EXIT_CONFIG, "%s:%zu:%zu: %s%s%s", ps->name,
		    p->problem_mark.line + 1, p->problem_mark.column + 1,
		    p->problem ? p->problem : "syntax error",
		    p->context ? " " : "", p->context ? p->context : "");
	}
}

/*
 * The next event, keeping count of the nesting depth.  Past MAX_DEPTH the
 * parse ends with the first error found (a collection that deep is an
 * error well before): -1 with *ps->err filled, as for a syntax error.
 */
static int
next_event(struct pstate *ps, yaml_parser_t *p, yaml_event_t *ev, int *depth)
{
	if (!yaml_parser_parse(p, ev)) {
		syntax_error(ps, p);
		return -1;
	}
	switch (ev->type) {
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (++*depth <= MAX_DEPTH)
			break;
		at(ps, &ev->start_mark, CH_EXIT_CONFIG, "nested deeper than %d "
		    "levels", MAX_DEPTH);
		*ps->err = ps->first;
		yaml_event_delete(ev);
		return -1;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		--*depth;
		break;
	default:
		break;
	}
	return 0;
}

int
ch_config_parse(const char *text, size_t len, const char *name,
    struct ch_config *cfg, struct ch_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct pstate ps;
	/* where we are: 0 stream, 1 in top mapping expecting key, 2 expecting
	 * top value, 3 in retention mapping expecting key, 4 expecting its
	 * value, 5 after the document */
	int state = 0, done = 0, rc = -1, docs = 0, nesting = 0;
	const struct key *pending = NULL;
	const char *section = NULL;

	memset(&ps, 0, sizeof ps);
	ps.name = name;
	ps.text = text;
	ps.len = len;
	ps.cfg = cfg;
	ps.err = err;
	ch_config_defaults(cfg);
	if (!yaml_parser_initialize(&parser))
		return ch_err(err, CH_EXIT_FAIL, "%s: out of memory", name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		if (next_event(&ps, &parser, &ev, &nesting) < 0)
			goto out;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_NO_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
				    "only one YAML document is allowed");
			break;
		case YAML_DOCUMENT_END_EVENT:
			state = 5;
			break;
		case YAML_ALIAS_EVENT:
			at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
			    "aliases are not allowed");
			break;
		case YAML_SEQUENCE_START_EVENT:
			at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
			    "lists are not allowed here%s%s%s",
			    pending ? " (key '" : "", pending ? pending->name : "",
			    pending ? "')" : "");
			/* Skip the whole sequence. */
			{
				int depth = 1;
				yaml_event_delete(&ev);
				while (depth > 0) {
					if (next_event(&ps, &parser, &ev,
					    &nesting) < 0)
						goto out;
					if (ev.type == YAML_SEQUENCE_START_EVENT ||
					    ev.type == YAML_MAPPING_START_EVENT)
						depth++;
					else if (ev.type == YAML_SEQUENCE_END_EVENT ||
					    ev.type == YAML_MAPPING_END_EVENT)
						depth--;
					if (depth > 0)
						yaml_event_delete(&ev);
				}
			}
			if (state == 2)
				state = 1;
			else if (state == 4)
				state = 3;
			pending = NULL;
			break;
		case YAML_MAPPING_START_EVENT:
			if (ev.data.mapping_start.anchor || ev.data.mapping_start.tag)
				at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
				    "tags and anchors are not allowed");
			if (state == 0 || state == 5) {
				state = 1;
			} else if (state == 2 && pending && pending->type == K_MAP) {
				section = pending->name;
				state = 3;
			} else {
				at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
				    "a nested mapping is not allowed here%s%s%s",
				    pending ? " (key '" : "",
				    pending ? pending->name : "",
				    pending ? "' takes a single value)" : "");
				/* skip it */
				int depth = 1;
				yaml_event_delete(&ev);
				while (depth > 0) {
					if (next_event(&ps, &parser, &ev,
					    &nesting) < 0)
						goto out;
					if (ev.type == YAML_SEQUENCE_START_EVENT ||
					    ev.type == YAML_MAPPING_START_EVENT)
						depth++;
					else if (ev.type == YAML_SEQUENCE_END_EVENT ||
					    ev.type == YAML_MAPPING_END_EVENT)
						depth--;
					if (depth > 0)
						yaml_event_delete(&ev);
				}
				state = state == 4 ? 3 : 1;
			}
			pending = NULL;
			break;
		case YAML_MAPPING_END_EVENT:
			if (state == 3) {
				section = NULL;
				state = 1;
			} else {
				state = 5;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
			break;
		case YAML_SCALAR_EVENT: {
			/* "\0" in a quoted scalar: C strings would end there,
			 * reading "4096\0 was 64MiB" as 4096. */
			int nul = strlen((const char *)ev.data.scalar.value) !=
			    ev.data.scalar.length;
			if (nul)
				at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
				    "a NUL byte in '%s...'",
				    (const char *)ev.data.scalar.value);
			if (state == 1 || state == 3) {
				const char *k = (const char *)ev.data.scalar.value;
				const struct key *key = nul ? NULL :
				    find_key(section, k);
				if (nul)
					;	/* said above */
				else if (ev.data.scalar.tag || ev.data.scalar.anchor) {
					/* As for values: a tag could change what
					 * the key means to another YAML reader. */
					at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
					    "tags and anchors are not allowed "
					    "(key '%s')", k);
				} else if (!key) {
					const char *hint = suggest(section, k);
					at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
					    "unknown key '%s%s%s'%s%s%s",
					    section ? section : "", section ? "." : "",
					    k, hint ? " (did you mean '" : "",
					    hint ? hint : "", hint ? "'?)" : "");
				} else if (ps.seen[key - keys]++) {
					at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
					    "duplicate key '%s'", k);
				}
				pending = key;
				state++;
			} else if (state == 2 || state == 4) {
				if (pending && !nul)
					set_value(&ps, pending, &ev);
				pending = NULL;
				state--;
			} else if ((state == 0 || state == 5) && !nul) {
				if (!is_null(&ev))
					at(&ps, &ev.start_mark, CH_EXIT_CONFIG,
					    "expected 'key: value' lines, found '%s'",
					    (const char *)ev.data.scalar.value);
			}
			break;
		}
		}
		yaml_event_delete(&ev);
	}

	if (cfg->format > CH_FORMAT_MAX) {
		ch_err(err, CH_EXIT_FAIL,
		    "channel format %d is newer than this chtools supports "
		    "(format %d); upgrade chtools", cfg->format,
		    CH_FORMAT_MAX);
		goto out;
	}
	if (ps.failed) {
		*err = ps.first;
		goto out;
	}
	rc = validate(&ps);
out:
	yaml_parser_delete(&parser);
	return rc;
}

int
ch_config_load(int dirfd, struct ch_config *cfg, struct ch_error *err)
{
	char *text;
	size_t len;
	int rc;

	if (ch_slurp(dirfd, CH_CONFIG_FILE, 1 << 20, &text, &len) < 0) {
		if (errno == ENOENT)
			return ch_err(err, CH_EXIT_FAIL,
			    "not a channel (no %s)", CH_CONFIG_FILE);
		/* Too large, or not a file one can write YAML in: a bad
		 * channel.yaml (78), not an I/O failure. */
		int bad = errno == EFBIG || errno == EISDIR || errno == ELOOP ||
		    errno == CH_ENOTREG;
		return ch_err_sys(err, bad ? CH_EXIT_CONFIG : CH_EXIT_FAIL, "%s",
		    CH_CONFIG_FILE);
	}
	rc = ch_config_parse(text, len, CH_CONFIG_FILE, cfg, err);
	free(text);
	return rc;
}
