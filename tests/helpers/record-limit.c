/*
 * record-limit - records at the 32-bit limit of the formats, without
 * gigabytes: for tests/20-chpub.bats.
 *
 *   record-limit CHANNEL
 *
 * With max_record_bytes at its highest (CH_RECORD_MAX), a payload of that
 * size plus 300 bytes of metadata (a key and headers, or a dead letter's
 * origin) overflows a format 1 record's length and a format 2 frame's.
 * The library must refuse it as too large, before it reads the payload:
 * the payload is a mapping nobody may touch (PROT_NONE), so no memory is
 * spent and a record copied instead of refused is a crash at once.  Then,
 * through a writer on CHANNEL (created in the format CH_FORMAT names):
 * "before" queued, the big record refused, "after" queued, one flush; the
 * caller checks that the channel holds exactly those two.
 *
 * Prints each refusal's message on a line; exit status 0 if every call
 * did what it should, 1 (with a message) otherwise.
 */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "batch.h"
#include "channel.h"
#include "writer.h"

#define META_LEN 300

static const char *prog = "record-limit";

static void
fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", prog, what);
	exit(1);
}

static void
on_segv(int sig)
{
	static const char msg[] = "record-limit: the payload was read: the "
	    "record was not refused before it was copied\n";

	(void)sig;
	(void)!write(2, msg, sizeof msg - 1);
	_exit(1);
}

/* Adding this record must fail, with a message saying it is too large, and
 * queue nothing. */
static void
refused(struct ch_batch *b, const char *meta, size_t meta_len,
    const void *payload, size_t len)
{
	struct ch_error err;

	if (ch_batch_add(b, meta, meta_len, payload, len, &err) == 0)
		fail("a record too large for a 32-bit length was queued");
	if (!strstr(err.msg, "too large") || ch_batch_records(b) != 0)
		fail(err.msg);
	printf("format %u: %s\n", b->format, err.msg);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	char meta[META_LEN];
	struct ch_batch b;
	struct ch_error err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CHANNEL\n", prog);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	void *big = mmap(NULL, CH_RECORD_MAX, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED)
		fail("mmap of the payload failed");
	/* One header line, as chpub -H makes it. */
	memset(meta, 'v', sizeof meta);
	memcpy(meta, "h=", 2);
	meta[sizeof meta - 1] = '\n';

	for (uint32_t format = 1; format <= CH_FORMAT_MAX; format++) {
		ch_batch_init(&b, format, CH_RECORD_MAX, 0);
		/* Payload and metadata one byte over; everything over. */
		refused(&b, meta, META_LEN, big, CH_RECORD_MAX - META_LEN + 1);
		refused(&b, meta, META_LEN, big, CH_RECORD_MAX);
		ch_batch_free(&b);
	}

	struct ch_channel ch;
	struct ch_pubopts po;
	struct ch_writer *w;
	if (ch_channel_open(argv[1], CH_OPEN_CREATE, &ch, &err) < 0)
		fail(err.msg);
	ch_pubopts_from_config(&po, &ch.cfg);
	po.max_record_bytes = CH_RECORD_MAX;
	if (ch_writer_open(&ch, &po, &w, &err) < 0 ||
	    ch_writer_add(w, meta, META_LEN, "before", 6, &err) < 0)
		fail(err.msg);
	if (ch_writer_add(w, meta, META_LEN, big, CH_RECORD_MAX, &err) == 0)
		fail("the writer queued a record too large for a 32-bit length");
	printf("writer: %s\n", err.msg);
	if (ch_writer_add(w, meta, META_LEN, "after", 5, &err) < 0 ||
	    ch_writer_flush(w, &err) < 0 || ch_writer_close(w, &err) < 0)
		fail(err.msg);
	ch_channel_close(&ch);
	munmap(big, CH_RECORD_MAX);
	return fflush(stdout) == 0 ? 0 : 1;
}
