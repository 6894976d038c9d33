/*
 * fuzz_index.c - the segment index file against real segments.
 *
 * A channel with a few small segments is written once by the library's
 * own writer; each input then replaces its "index" file.  Input: the
 * entries after the 64-byte header (the harness writes a valid header),
 * or, when it starts with "CHANIDX\n", the whole file.  Then the lookups
 * every tool makes: entries, find, channel start, end and locate, a short
 * read, a seek by sequence number, and the writer's append (which drops a
 * torn partial entry) and chcompact's prefix drop.
 */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "index.h"
#include "reader.h"
#include "scratch.h"
#include "writer.h"

#define RECORDS 200

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *dir;
static struct ch_channel ch;

static void
quiet(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

/* The channel: ~4 sealed segments of 4 KiB and an active one. */
static int
setup(void)
{
	struct ch_pubopts po;
	struct ch_writer *w;
	struct ch_error err;
	char payload[64];

	dir = scratch_reset();
	if (!dir || ch_channel_open(dir, CH_OPEN_CREATE, &ch, &err) < 0)
		return -1;
	ch_pubopts_from_config(&po, &ch.cfg);
	po.segment_bytes = 4096;
	if (ch_writer_open(&ch, &po, &w, &err) < 0)
		return -1;
	for (int i = 0; i < RECORDS; i++) {
		int n = snprintf(payload, sizeof payload, "record %d", i);
		if (ch_writer_add(w, NULL, 0, payload, (size_t)n, &err) < 0)
			return -1;
	}
	if (ch_writer_flush(w, &err) < 0 || ch_writer_close(w, &err) < 0)
		return -1;
	return 0;
}

static void
lookups(void)
{
	struct ch_index ix;
	struct ch_idxent e;
	struct ch_error err;
	struct ch_start start;
	struct ch_end end;
	struct ch_seghdr h;
	uint64_t i, pos, off;
	int fd;

	if (ch_index_open(ch.dirfd, &ix, &err) == 0) {
		for (i = 0; i < ix.count && i < 64; i++)
			(void)ch_index_get(&ix, i, &e, &err);
		(void)ch_index_get(&ix, ix.count, &e, &err);
		(void)ch_index_get(&ix, UINT64_MAX / CH_IDX_ENTRY, &e, &err);
		(void)ch_index_find(&ix, 0, &i, &err);
		(void)ch_index_find(&ix, 5000, &i, &err);
		(void)ch_index_find(&ix, UINT64_MAX, &i, &err);
		ch_index_close(&ix);
	}
	if (ch_channel_start(&ch, &start, &err) == 0) {
		if (ch_channel_locate(&ch, start.offset, &fd, &h, &pos,
		    &err) == 0)
			close(fd);
		struct ch_reader *r;
		struct ch_rec rec;
		if (ch_reader_open(&ch, start.offset, 0, &r, &err) == 0) {
			ch_reader_set_skip_corrupt(r, 1, quiet, NULL);
			for (int k = 0; k < RECORDS + 10; k++)
				if (ch_reader_next(r, &rec, &err) <= 0)
					break;
			ch_reader_close(r);
		}
		/* forward from the start, then back from there */
		if (ch_seek_seq(&ch, start.seq + 100, start.offset, start.seq,
		    &off, &err) == 0)
			(void)ch_seek_seq(&ch, start.seq + 10, off,
			    start.seq + 100, &off, &err);
	}
	if (ch_channel_end(&ch, &end, &err) == 0) {
		if (ch_channel_locate(&ch, end.offset, &fd, &h, &pos, &err) == 0)
			close(fd);
	}
	if (ch_channel_locate(&ch, 4000, &fd, &h, &pos, &err) == 0)
		close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready = -1;
	struct ch_idxent e = { 1u << 30, 1u << 20, 1 };
	struct ch_error err;
	unsigned char *buf;
	size_t len;

	if (size > (1u << 16))
		return 0;
	if (ready < 0)
		ready = setup();
	if (ready < 0)
		abort();
	if (size >= 8 && memcmp(data, CH_IDX_MAGIC, 8) == 0) {
		len = size;
		buf = malloc(len ? len : 1);
		if (!buf)
			return 0;
		memcpy(buf, data, size);
	} else {
		len = CH_IDX_HDR + size;
		buf = malloc(len);
		if (!buf)
			return 0;
		ch_idxhdr_encode(buf);
		memcpy(buf + CH_IDX_HDR, data, size);
	}
	if (scratch_write(CH_IDX_FILE, buf, len) < 0)
		abort();
	free(buf);
	lookups();
	/* The writer's append and chcompact's rewrite, then look again. */
	if (ch_index_append(ch.dirfd, &e, 0, &err) == 0)
		(void)ch_index_drop_prefix(ch.dirfd, 1, &err);
	lookups();
	return 0;
}
