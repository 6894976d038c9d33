/*
 * scratch.h - a private channel directory for the harnesses that need
 * files (segments, the index).  It lives under $FUZZ_TMPDIR, else /dev/shm
 * when present (fast, no disk writes), else $TMPDIR or /tmp, and is
 * removed at exit.
 */
#ifndef FUZZ_SCRATCH_H
#define FUZZ_SCRATCH_H

#include <stddef.h>

/* Path of an empty directory (emptied again on each call); NULL on
 * failure. */
const char *scratch_reset(void);

/* Write a whole file under the scratch directory; -1 on failure. */
int scratch_write(const char *name, const void *data, size_t len);

#endif
