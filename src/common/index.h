/*
 * index.h - the segment index: which segments exist, in offset order.
 *
 * "index" is an array of fixed-size entries (base offset, first sequence
 * number, creation time), appended by the writer that creates a segment,
 * under the append lock.  Readers binary-search it to find the segment that
 * holds an offset in O(log n) preads, and read its last entry to find the
 * active segment in O(1); nobody lists the directory.  chcompact deletes
 * segments oldest first, then rewrites the index without them (temp file
 * and rename, under the append lock), so entries whose file is gone can
 * only form a prefix, which lookups skip.
 */
#ifndef CH_INDEX_H
#define CH_INDEX_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "format.h"

struct ch_index {
	int fd;
	uint64_t count;		/* complete entries */
};

int ch_index_open(int dirfd, struct ch_index *ix, struct ch_error *err);
void ch_index_close(struct ch_index *ix);
int ch_index_get(struct ch_index *ix, uint64_t i, struct ch_idxent *e,
    struct ch_error *err);
/* Index of the last entry with base <= offset; -1 with CH_EXIT_NOINPUT if
 * offset is below the first entry. */
int ch_index_find(struct ch_index *ix, uint64_t offset, uint64_t *ip,
    struct ch_error *err);

/* Write a new index holding just this entry (channel creation). */
int ch_index_create(int dirfd, const struct ch_idxent *e, int durable,
    mode_t mode, struct ch_error *err);
/* Append an entry (writer, under the append lock).  Drops a torn trailing
 * partial entry first. */
int ch_index_append(int dirfd, const struct ch_idxent *e, int durable,
    struct ch_error *err);
/* Rewrite the index without its first `drop` entries (chcompact, under the
 * append lock). */
int ch_index_drop_prefix(int dirfd, uint64_t drop, struct ch_error *err);

#endif
