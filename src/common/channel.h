/*
 * channel.h - a channel: a directory holding segments, an index, locks,
 * subscribers and channel.yaml (channel(5) lists every file).
 *
 * A channel exists once channel.yaml exists: creation writes everything
 * else first and channel.yaml last (temp file and rename), under the
 * append lock, so a crash mid-creation leaves a directory the next chpub
 * finishes, never a half channel that other tools would use.
 *
 * A channel.yaml written by hand into an empty directory (to choose a new
 * channel's settings) makes a channel not set up yet: chpub sets it up,
 * keeping the file, with the index as its last step; the other tools take
 * it for a missing channel until then.
 */
#ifndef CH_CHANNEL_H
#define CH_CHANNEL_H

#include <stdint.h>

#include "config.h"
#include "error.h"
#include "format.h"
#include "index.h"

#define CH_SUBSCRIBERS_DIR "subscribers"

struct ch_channel {
	const char *arg;	/* CHANNEL as the user wrote it */
	char path[4096];	/* after CH_ROOT resolution */
	int dirfd;
	struct ch_config cfg;
	int journal_synced;	/* the journal's name fsynced by us */
};

enum {
	CH_OPEN_CREATE = 1,	/* create a missing channel (chpub) */
	CH_OPEN_CHANGE = 2,	/* the caller will change it: refused to root
				 * if another user owns the directory */
};

/* CHANNEL -> path: a name without '/' means $CH_ROOT/NAME when set. */
int ch_channel_resolve(const char *arg, char *out, size_t outlen,
    struct ch_error *err);

/* Does CHANNEL (a name under CH_ROOT, a path, through symlinks or "./"
 * and ".." forms) name the directory of ch?  1 if so, 0 if not (or if it
 * does not exist), -1 if it cannot be told. */
int ch_channel_names(struct ch_channel *ch, const char *arg,
    struct ch_error *err);

/* Open (or create) a channel.  A missing channel is CH_EXIT_NOINPUT; with
 * CH_OPEN_CHANGE, root on a channel of another user is CH_EXIT_FAIL. */
int ch_channel_open(const char *arg, int flags, struct ch_channel *ch,
    struct ch_error *err);
void ch_channel_close(struct ch_channel *ch);

/* Would ch_channel_open(arg, CH_OPEN_CHANGE) be refused for the owner?
 * -1 if so (err), 0 if not or if there is no such channel yet: a check
 * made before work whose failure would need that channel (chsub's
 * dead-letter channel). */
int ch_channel_check_owner(const char *arg, struct ch_error *err);

/* Has the channel's directory been removed under us (rm -rf)?  Its files
 * are then missing: 66 "channel removed" (index.c, segment.c). */
int ch_channel_removed(const struct ch_channel *ch);

/* Is the channel in directory dirfd removed, or being removed?  rm -rf
 * empties a directory before it removes it, so a file found missing
 * meanwhile is a removal, not damage.  Removed, or its channel.yaml gone
 * too: yes; else wait a little (half a second at most) for the directory
 * to go.  For the paths that would otherwise call a missing file damage
 * (65) or a failure (1), never for the usual ones (errno is kept). */
int ch_channel_removing(int dirfd);

/* A file of the channel is missing (e is ENOENT) because the channel is
 * being removed (ch_channel_removing): err says "channel removed" (66),
 * and 1; else 0, err untouched. */
int ch_channel_gone(int dirfd, int e, struct ch_error *err);

/* ch_segment_open failed (err) on a segment that must be there: if it is
 * missing (CH_EXIT_NOINPUT), that is "channel removed" when the channel
 * is going, else damage (CH_EXIT_DATAERR).  Returns -1. */
int ch_segment_must_exist(int dirfd, struct ch_error *err);

/* Where the channel ends now (no lock taken). */
struct ch_end {
	uint64_t offset;	/* offset the next record will get */
	uint64_t seq;		/* its sequence number */
	int64_t last_ts;	/* time of the last record (the active
				 * segment's birth when it has none) */
	uint64_t active_base;	/* base of the active segment */
	int64_t active_created;
};
int ch_channel_end(struct ch_channel *ch, struct ch_end *end,
    struct ch_error *err);

/* Put every record published so far on stable storage: fdatasync the
 * newest segment, and the ones sealed before it that rollovers under sync
 * none left unsynced (the chain of flags: sealsync.h).  Offsets are
 * written only after this, so that no offset outlives the records before
 * it. */
int ch_channel_sync(struct ch_channel *ch, struct ch_error *err);

/* The oldest segment still present. */
struct ch_start {
	uint64_t offset;	/* its base: the earliest offset */
	uint64_t seq;		/* its first sequence number */
	uint64_t index_pos;	/* its entry in the index */
};
int ch_channel_start(struct ch_channel *ch, struct ch_start *start,
    struct ch_error *err);

/* 1 if the file of segment `base` is there, 0 if deleted, -1 (err set)
 * if that cannot be told. */
int ch_segment_exists(struct ch_channel *ch, uint64_t base,
    struct ch_error *err);

/*
 * Open the segment holding `offset` read-only: *fdp, its header, and the
 * file position of offset.  CH_EXIT_NOINPUT when that data was deleted.
 */
int ch_channel_locate(struct ch_channel *ch, uint64_t offset, int *fdp,
    struct ch_seghdr *hdr, uint64_t *posp, struct ch_error *err);

#endif
