/*
 * fuzz_segment.c - segment files as a reader, the tail finder, the checker
 * and the next writer see them.
 *
 * Input: the record area of up to four segments, separated by the 8 bytes
 * "CHSPLIT\n".  A segment that starts with a whole segment header (a
 * segment file as a writer left it) is of that header's format (1 to 3;
 * the rest of the header is not used); else the first is format 2 if it
 * starts with a frame signature (C9 46 52 4D), else format 1, and the
 * others are of the format before them.  So a channel upgraded from one
 * format to another is a chain of segment files; the channel's format is
 * the newest segment's.  The harness writes each after a valid header (segment
 * headers carry a CRC a fuzzer rarely forges; fuzz_record covers their
 * decoder), chaining them the way a writer does: the next segment's base
 * and first sequence number are where ch_segment_tail says the previous
 * one ends.  Then, through the real library: channel start and end, a
 * reader from the start (skipping corruption, and not), strict opens and
 * seeks, record times, chlag's collection, chcompact --check, and finally
 * a writer that must repair any torn tail and publish a readable record.
 */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"
#include "check.h"
#include "fsutil.h"
#include "index.h"
#include "lag.h"
#include "reader.h"
#include "scratch.h"
#include "segment.h"
#include "subscriber.h"
#include "writer.h"

#define SPLIT "CHSPLIT\n"
#define MAX_SEGS 4
#define MAX_STEPS 20000
#define CREATED 1700000000000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
quiet(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

static void
quiet_report(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
}

/* The format of a segment whose record area the input gives, starting
 * at *data: from a header there (skipped), else `format`; 0 if the header
 * names none. */
static uint32_t
seg_format(const uint8_t **data, size_t *size, uint32_t format)
{
	if (*size < CH_SEG_HDR || memcmp(*data, CH_SEG_MAGIC, 8) != 0)
		return format;
	format = ch_get32(*data + 8);
	*data += CH_SEG_HDR;
	*size -= CH_SEG_HDR;
	return format >= 1 && format <= CH_FORMAT_MAX ? format : 0;
}

/* Write the segments and the index; returns how many segments, *format
 * the last one's format. */
static int
build(const char *dir, const uint8_t *data, size_t size, uint32_t *format)
{
	uint64_t base = 0, first_seq = 0;
	int n = 0, dirfd;
	struct ch_error err;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	while (n < MAX_SEGS) {
		const uint8_t *sep = n + 1 < MAX_SEGS ?
		    memmem(data, size, SPLIT, strlen(SPLIT)) : NULL;
		size_t part = sep ? (size_t)(sep - data) : size;
		const uint8_t *start = data;
		uint32_t fmt = seg_format(&data, &part, *format);
		if (!fmt)
			break;
		*format = fmt;
		struct ch_seghdr h = { fmt, base, first_seq, CREATED + n, 0 };
		struct ch_idxent e = { base, first_seq, CREATED + n };
		unsigned char *buf = malloc(CH_SEG_HDR + part);
		char name[CH_SEG_NAME_LEN + 1];

		if (!buf)
			break;
		ch_seghdr_encode(buf, &h);
		memcpy(buf + CH_SEG_HDR, data, part);
		ch_seg_name(name, base);
		int rc = scratch_write(name, buf, CH_SEG_HDR + part);
		free(buf);
		if (rc < 0)
			break;
		if ((n == 0 ? ch_index_create(dirfd, &e, 0, 0600, &err) :
		    ch_index_append(dirfd, &e, 0, &err)) < 0)
			break;
		n++;
		if (!sep)
			break;
		size -= (size_t)(sep - start) + strlen(SPLIT);
		data = sep + strlen(SPLIT);

		/* Where does this segment end? */
		struct ch_tail t;
		int fd;
		if (ch_segment_open(dirfd, base, 0, &fd, &h, &err) < 0)
			break;
		rc = ch_segment_tail(fd, &h, CH_SEG_HDR + part, &t, &err);
		close(fd);
		if (rc < 0 || ch_seg_offset(base, t.end) <= base)
			break;
		base = ch_seg_offset(base, t.end);
		first_seq = t.next_seq;
	}
	close(dirfd);
	return n;
}

/* Read everything from the start; returns the offsets of up to 4
 * records seen (for later opens), the count in *nseen. */
static void
read_all(struct ch_channel *ch, uint64_t from, int skip, uint64_t *seen,
    int *nseen)
{
	struct ch_reader *r;
	struct ch_rec rec;
	struct ch_error err;
	uint64_t last = 0;
	int have_last = 0;

	if (ch_reader_open(ch, from, 0, &r, &err) < 0)
		return;
	ch_reader_set_skip_corrupt(r, skip, quiet, NULL);
	for (int steps = 0;; steps++) {
		if (steps == MAX_STEPS)
			abort();	/* the reader must make progress */
		int rc = ch_reader_next(r, &rec, &err);
		if (rc <= 0)
			break;
		if (rec.total == 0 || rec.h.type != CH_REC_DATA)
			abort();
		/* Where the record starts (after any skipped bytes). */
		uint64_t at = ch_reader_offset(r) - rec.total;
		if (have_last && at <= last)
			abort();	/* offsets only grow */
		last = at;
		have_last = 1;
		if (seen && *nseen < 4)
			seen[(*nseen)++] = at;
	}
	ch_reader_close(r);
}

/*
 * chsub's plain output read two ways, which must agree byte for byte and
 * end at the same offset: one record at a time (ch_reader_next and
 * ch_output_record), and in runs of a verified frame's records
 * (ch_reader_plain_run, small runs so that they start mid-frame), with
 * ch_reader_next where no run is ready.
 */
static void
plain_two_ways(struct ch_channel *ch, uint64_t from)
{
	static const struct ch_outfmt fmt = { CH_OUT_PLAIN, '\n', NULL, 1 };
	struct ch_buf out[2] = { { 0 }, { 0 } };
	struct ch_runmark marks[3];
	uint64_t end[2] = { 0, 0 };
	int complete[2] = { 0, 0 };
	struct ch_error err;

	for (int way = 0; way < 2; way++) {
		struct ch_reader *r;
		struct ch_rec rec;
		size_t n;
		if (ch_reader_open(ch, from, 0, &r, &err) < 0)
			goto done;
		for (int steps = 0; steps < MAX_STEPS; steps++) {
			if (way == 1) {
				size_t mark0 = out[1].len;
				if (ch_reader_plain_run(r, &out[1], '\n',
				    out[1].len + 300, 3, marks, &n) < 0)
					abort();
				if (n) {
					if (marks[0].end <= mark0 ||
					    marks[n - 1].end != out[1].len ||
					    marks[n - 1].offset !=
					    ch_reader_offset(r) ||
					    marks[n - 1].seq != ch_reader_seq(r))
						abort();
					continue;
				}
			}
			if (ch_reader_next(r, &rec, &err) <= 0) {
				complete[way] = 1;
				break;
			}
			struct ch_recview v = { rec.offset, rec.h.seq, rec.h.ts,
			    rec.payload, rec.h.len, rec.meta, rec.h.meta_len };
			if (ch_output_record(&out[way], &fmt, &v) < 0)
				abort();
		}
		end[way] = ch_reader_offset(r);
		ch_reader_close(r);
	}
	if (complete[0] && complete[1] && (end[0] != end[1] ||
	    out[0].len != out[1].len ||
	    (out[0].len && memcmp(out[0].p, out[1].p, out[0].len))))
		abort();
done:
	ch_buf_free(&out[0]);
	ch_buf_free(&out[1]);
}

static void
probe(struct ch_channel *ch, const char *dir)
{
	struct ch_end end;
	struct ch_start start;
	struct ch_error err;
	uint64_t seen[4], off, seq;
	int nseen = 0;
	int64_t ts;

	if (ch_channel_start(ch, &start, &err) < 0)
		return;
	if (ch_channel_end(ch, &end, &err) < 0)
		memset(&end, 0, sizeof end);
	read_all(ch, start.offset, 1, seen, &nseen);
	read_all(ch, start.offset, 0, NULL, NULL);
	plain_two_ways(ch, start.offset);
	for (int i = 0; i < nseen; i++) {
		struct ch_reader *r;
		if (ch_reader_open(ch, seen[i], 1, &r, &err) == 0)
			ch_reader_close(r);
		(void)ch_record_time(ch, seen[i], &ts, NULL, &err);
		(void)ch_record_time(ch, seen[i] + 1, &ts, NULL, &err);
	}
	(void)ch_record_time(ch, end.offset, &ts, NULL, &err);
	/* forward from the start; back from the end */
	(void)ch_seek_seq(ch, start.seq + 1, start.offset, start.seq, &off,
	    &err);
	(void)ch_seek_seq(ch, end.seq, start.offset, start.seq, &off, &err);
	(void)ch_seek_seq(ch, start.seq + 1, end.offset, end.seq, &off, &err);
	(void)ch_seek_time(ch, CREATED + 5, &off, &seq, &err);
	(void)ch_seek_time(ch, INT64_MAX, &off, &seq, &err);

	/* A subscriber registered at the first record seen: chlag and the
	 * checker then look at it too. */
	struct ch_sub s;
	if (ch_sub_acquire(ch, "s", 0, 0, &s, &err) == 0) {
		struct ch_offset o = { 0 };
		ch_offset_advance(&o, nseen ? seen[0] : start.offset,
		    start.seq, CREATED, end.offset, end.seq);
		(void)ch_sub_write(&s, &o, &err);
		ch_sub_release(&s);
	}
	struct ch_lag_opts lo;
	struct ch_lagrow *rows;
	size_t nrows;
	ch_lag_defaults(&lo);
	if (ch_lag_collect(ch, &lo, CREATED + 1000, &rows, &nrows, &err) == 0)
		free(rows);

	struct ch_check_result res;
	(void)ch_check(ch, 0, quiet_report, NULL, NULL, &res, &err);
	(void)dir;
}

/* The next writer repairs a torn tail; what it publishes is readable. */
static void
publish(struct ch_channel *ch)
{
	struct ch_pubopts po;
	struct ch_writer *w;
	struct ch_error err;
	struct ch_reader *r;
	struct ch_rec rec;
	const uint64_t *offs;
	size_t n;
	static const char msg[] = "fuzz says hello";

	ch_pubopts_from_config(&po, &ch->cfg);
	po.want_offsets = 1;
	if (ch_writer_open(ch, &po, &w, &err) < 0)
		return;
	if (ch_writer_add(w, NULL, 0, msg, sizeof msg - 1, &err) < 0 ||
	    ch_writer_flush(w, &err) < 0) {
		ch_writer_close(w, &err);
		return;
	}
	offs = ch_writer_offsets(w, &n);
	uint64_t at = n == 1 ? offs[0] : UINT64_MAX;
	ch_writer_close(w, &err);
	if (n != 1)
		abort();
	if (ch_reader_open(ch, at, 0, &r, &err) < 0)
		abort();
	if (ch_reader_next(r, &rec, &err) != 1 || rec.h.len != sizeof msg - 1 ||
	    memcmp(rec.payload, msg, sizeof msg - 1) != 0)
		abort();
	ch_reader_close(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ch_channel ch;
	struct ch_error err;
	const char *dir;
	uint32_t format = size >= 4 && ch_get32(data) == CH_FRAME_SIG ? 2 : 1;

	if (size > (1u << 20))
		return 0;
	dir = scratch_reset();
	if (!dir)
		abort();
	if (build(dir, data, size, &format) < 1)
		return 0;
	const char *tpl = ch_config_template((int)format);
	if (scratch_write(CH_CONFIG_FILE, tpl, strlen(tpl)) < 0)
		abort();
	if (ch_channel_open(dir, 0, &ch, &err) < 0)
		abort();
	probe(&ch, dir);
	publish(&ch);
	ch_channel_close(&ch);
	return 0;
}
