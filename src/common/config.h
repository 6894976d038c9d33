/*
 * config.h - channel.yaml: the per-channel settings (see channel.yaml(5)).
 *
 * Parsed with libyaml's event API into struct ch_config.  Strict: unknown
 * and duplicate keys, anchors, aliases, tags and sequences are errors, each
 * reported as "channel.yaml:LINE:COLUMN: message" with CH_EXIT_CONFIG.  An
 * empty file, or a key whose value is empty or null, means the default.
 * A `format` newer than CH_FORMAT_MAX is refused before anything else.
 */
#ifndef CH_CONFIG_H
#define CH_CONFIG_H

#include <stdint.h>

#include "error.h"

/* A channel.yaml without `format`: ch_channel_open, for a caller that may
 * write, takes the format of the channel's newest segment (format 1 for
 * channels made before format 2 existed), so that such a file never
 * lowers a channel's format; a channel set up from such a file, and every
 * new channel, gets CH_FORMAT_NEW, or the format in the environment
 * variable CH_FORMAT. */
#define CH_FORMAT_UNSET 0
#define CH_FORMAT_NEW 3
#define CH_CONFIG_FILE "channel.yaml"
#define CH_MIN_SEGMENT_BYTES 4096

enum ch_sync { CH_SYNC_NONE, CH_SYNC_PERIODIC, CH_SYNC_ALWAYS };
enum ch_on_full { CH_FULL_FAIL, CH_FULL_BLOCK };

struct ch_config {
	int format;
	uint64_t segment_bytes;
	int64_t segment_age_ns;		/* 0: seal by size only */
	int sync;			/* enum ch_sync */
	int64_t sync_interval_ns;
	uint64_t max_bytes;		/* 0: unlimited */
	int on_full;			/* enum ch_on_full */
	uint64_t max_record_bytes;
	int64_t retention_max_age_ns;	/* 0: keep */
	uint64_t retention_max_bytes;	/* 0: keep */
	int64_t expire_ns;		/* 0: never expire subscribers */
	char dead_letter[4096];		/* "": none */
	unsigned dead_letter_line, dead_letter_col;	/* where it was set */
};

void ch_config_defaults(struct ch_config *cfg);

/* Parse `len` bytes of YAML text; `name` is used in messages. */
int ch_config_parse(const char *text, size_t len, const char *name,
    struct ch_config *cfg, struct ch_error *err);

/* Load dirfd/channel.yaml. */
int ch_config_load(int dirfd, struct ch_config *cfg, struct ch_error *err);

/* The commented default file written when a channel is created, for a
 * channel of this format. */
const char *ch_config_template(int format);

/* The format of a channel created now: CH_FORMAT from the environment if
 * set (1, 2 or 3), else CH_FORMAT_NEW. */
int ch_config_new_format(int *format, struct ch_error *err);

/* Value keywords shared with the command line. */
int ch_parse_sync(const char *s, int *out, struct ch_error *err);
int ch_parse_on_full(const char *s, int *out, struct ch_error *err);
const char *ch_sync_name(int sync);

#endif
