/*
 * journal.h - the channel's offset journal: every offset change made by an
 * operator tool (choffset, chcompact --expire / --repair), never by a
 * subscriber's own commits.
 *
 * "journal" is a text file, one change per line, appended with O_APPEND
 * and a single write(2) per line, so concurrent tools never interleave
 * inside a line:
 *
 *   TIME TAB WHO TAB SUBSCRIBER TAB ACTION TAB OLD TAB NEW TAB REASON
 *
 * TIME is RFC 3339 UTC with nanoseconds; WHO is "tool[pid]:user"; ACTION
 * one of create, set, delete, expire, repair, import; OLD and NEW are
 * offsets or "-"; REASON is free text without tabs or newlines.
 */
#ifndef CH_JOURNAL_H
#define CH_JOURNAL_H

#include <stdint.h>

#include "channel.h"
#include "error.h"

#define CH_JOURNAL_FILE "journal"
#define CH_NO_OFFSET UINT64_MAX		/* printed as "-" */

/* The fields of one line, valid during the callback only. */
struct ch_journal_entry {
	const char *time;
	const char *who;
	const char *subscriber;
	const char *action;
	const char *old, *new;
	const char *reason;
};

int ch_journal_append(struct ch_channel *ch, const char *subscriber,
    const char *action, uint64_t old, uint64_t new, const char *reason,
    struct ch_error *err);

/* Call fn for each entry (optionally of one subscriber), oldest first.
 * A missing journal has no entries. */
int ch_journal_read(struct ch_channel *ch, const char *subscriber,
    void (*fn)(void *ctx, const struct ch_journal_entry *e), void *ctx,
    struct ch_error *err);

#endif
