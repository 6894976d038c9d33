/*
 * chnats-pub - publish standard input to a NATS JetStream subject and wait
 * for the stream's acknowledgement: a forwarding handler for `chsub -x`.
 *
 *   chsub -f -x 'chnats-pub -s nats://nats1:4222 app.logs' \
 *       --retries=100000 --backoff=1s,1m --handler-timeout=30s logs nats-fwd
 *
 * It exits 0 only when JetStream has acknowledged every record (a PubAck
 * says the stream stored it, or already had it), so chsub commits nothing
 * that is not stored.  Anything else (no server, no stream for the
 * subject, an error reply, a lost connection, no reply in time) exits 1,
 * and chsub sends the records again.
 *
 * Redeliveries are made harmless by JetStream's duplicate window: each
 * message carries a Nats-Msg-Id header "PREFIX:CHANNEL/SEQ", built from
 * --id-prefix (the host name by default: the same channel path on two
 * hosts is two channels), chsub's CH_CHANNEL and CH_SEQ (the record's
 * sequence number, plus its index in a batch).  chsub numbers the records
 * of a batch consecutively, so a record keeps its id whether it goes in a
 * batch or alone (chsub splits a batch that keeps failing and retries its
 * records one by one).
 *
 * That holds only if the records are read back as chsub handed them: a
 * record that contains the separator would pass for two, and every record
 * after it would take the next one's id (and be dropped as a duplicate of
 * it).  So with chsub's CH_COUNT in the environment, standard input must
 * hold exactly that many records, or nothing is sent and the exit status
 * is 3: records that may contain newlines need chsub -0 and -b -0, or
 * chsub --batch=1 and no -b.
 *
 * Build (Debian: apt-get install libnats-dev):
 *   cc -O2 -o chnats-pub chnats-pub.c $(pkg-config --cflags --libs libnats)
 *
 * Usage: chnats-pub [OPTION]... SUBJECT
 *   -s, --server=URL[,URL...]  NATS server(s) (default $NATS_URL, else
 *                              nats://127.0.0.1:4222)
 *   -b, --batch                standard input holds records, each ended by a
 *                              newline (chsub --batch=N)
 *   -0, --null                 with --batch, records end with NUL (chsub -0)
 *   -t, --timeout=MS           give up after MS milliseconds without all
 *                              acknowledgements (default 10000)
 *       --id-prefix=PREFIX     Nats-Msg-Id is PREFIX:CHANNEL/SEQ (default
 *                              the host name; empty: CHANNEL/SEQ)
 *       --no-msg-id            do not set Nats-Msg-Id
 *       --create-stream=NAME   create stream NAME, file-backed, storing
 *                              SUBJECT, unless it exists; publish nothing
 *   -v, --verbose              say how many records were acknowledged
 *
 * Exit status: 0 every record acknowledged (or the stream is there),
 * 1 not, 2 usage, 3 standard input does not hold CH_COUNT records
 * (nothing sent).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#define PROG "chnats-pub"
#define MAX_SERVERS 16
#define MAX_PREFIX 255		/* --id-prefix, in bytes */
#define EXIT_COUNT 3		/* stdin does not hold CH_COUNT records */
#define WAIT_SLICE_MS 50	/* how often to look at the connection */

static const char *subject;

/* What the acknowledgement callback learns; it runs in a library thread. */
struct acks {
	pthread_mutex_t mu;
	size_t acked, duplicates, failed;
	char first_error[256];
};

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": %s: ", subject ? subject : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The library's own text for the last error, or the status's. */
static const char *
nats_error(natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	return t && *t ? t : natsStatus_GetText(s);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read all of standard input; *len gets its size. */
static char *
slurp(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(0, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

/* Called once per asynchronous publish, with its PubAck or its error. */
static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct acks *a = closure;

	(void)js;
	pthread_mutex_lock(&a->mu);
	if (pa) {
		a->acked++;
		if (pa->Duplicate)
			a->duplicates++;
	} else {
		if (!a->failed++ && pae)
			snprintf(a->first_error, sizeof a->first_error, "%s",
			    pae->ErrText ? pae->ErrText :
			    natsStatus_GetText(pae->Err));
	}
	pthread_mutex_unlock(&a->mu);
	natsMsg_Destroy(msg);
}

/* The message for record i: its payload and, with ids, Nats-Msg-Id
 * "ID_PREFIX/SEQ" (ID_PREFIX is "PREFIX:CHANNEL", see id_from_env). */
static natsStatus
make_msg(natsMsg **m, const char *data, size_t len, const char *id_prefix,
    uint64_t seq)
{
	natsStatus s = natsMsg_Create(m, subject, NULL, data, (int)len);

	if (s == NATS_OK && id_prefix) {
		char id[MAX_PREFIX + 4200];
		snprintf(id, sizeof id, "%s/%" PRIu64, id_prefix, seq);
		s = natsMsgHeader_Set(*m, "Nats-Msg-Id", id);
		if (s != NATS_OK) {
			natsMsg_Destroy(*m);
			*m = NULL;
		}
	}
	return s;
}

/*
 * Publish the records.  The first one alone, waiting for its PubAck: that
 * proves the stream is there and answering before the others go out
 * without waiting (a stream that comes up in the middle of a batch would
 * otherwise store its end without its start).  The rest are pipelined and
 * their acknowledgements awaited together.  Returns 0 when every record
 * was acknowledged.
 */
static int
publish(natsConnection *nc, jsCtx *js, struct acks *a, char **rec,
    size_t *len, size_t n, const char *id_prefix, uint64_t seq0,
    int64_t deadline)
{
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = deadline - now_ms();
	if (po.MaxWait <= 0)
		po.MaxWait = 1;
	s = make_msg(&m, rec[0], len[0], id_prefix, seq0);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s == NATS_NO_RESPONDERS) {
		fail("no stream answered (no JetStream stream stores this "
		    "subject, or the server is still starting)");
		return -1;
	}
	if (s != NATS_OK) {
		fail("publish: %s", nats_error(s));
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	a->acked++;
	a->duplicates += pa->Duplicate;
	pthread_mutex_unlock(&a->mu);
	jsPubAck_Destroy(pa);

	for (size_t i = 1; i < n; i++) {
		m = NULL;
		s = make_msg(&m, rec[i], len[i], id_prefix, seq0 + i);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(js, &m, NULL);
		natsMsg_Destroy(m);	/* no-op once the library owns it */
		if (s != NATS_OK) {
			fail("publish: %s", nats_error(s));
			return -1;
		}
	}

	/* Wait for the acknowledgements in slices, to notice at once a
	 * connection that is gone (its replies will never come). */
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			fail("no acknowledgement in time");
			return -1;
		}
		po.MaxWait = left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
		s = js_PublishAsyncComplete(js, &po);
		if (s == NATS_OK)
			break;
		if (s != NATS_TIMEOUT) {
			fail("waiting for acknowledgements: %s", nats_error(s));
			return -1;
		}
		if (natsConnection_IsClosed(nc)) {
			fail("connection lost before every record was "
			    "acknowledged");
			return -1;
		}
	}
	pthread_mutex_lock(&a->mu);
	int ok = a->failed == 0 && a->acked == n;
	if (!ok)
		fail("%zu of %zu records not acknowledged (%s)", n - a->acked,
		    n, a->failed ? a->first_error : "no reply");
	pthread_mutex_unlock(&a->mu);
	return ok ? 0 : -1;
}

/* Create stream NAME for the subject unless a stream of that name exists. */
static int
create_stream(jsCtx *js, const char *name)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subjects[] = { subject };
	natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);

	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND) {
		fail("stream %s: %s", name, nats_error(s));
		return -1;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;	/* survives a restart of the server */
	s = js_AddStream(&si, js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		fail("create stream %s: %s", name, nats_error(s));
		return -1;
	}
	jsStreamInfo_Destroy(si);
	return 0;
}

/* Split "a,b,c" into at most MAX_SERVERS URLs, in place. */
static int
split_servers(char *list, const char **urls)
{
	int n = 0;

	for (char *save = NULL, *u = strtok_r(list, ",", &save); u;
	    u = strtok_r(NULL, ",", &save)) {
		if (n == MAX_SERVERS)
			return -1;
		urls[n++] = u;
	}
	return n;
}

/* A decimal number from the environment: 1 and *v, 0 when the variable
 * is not set, -1 when it is not a number. */
static int
env_number(const char *name, uint64_t *v)
{
	const char *s = getenv(name);
	char *end;

	if (!s)
		return 0;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -1 : 1;
}

/*
 * The id of the first record but for its number, "PREFIX:CHANNEL" (or
 * "CHANNEL" with an empty prefix), from chsub's CH_CHANNEL, and its
 * CH_SEQ in *seq0.  NULL without them (not run by chsub), or on an error
 * (*bad set).  A header value cannot hold a line break.
 */
static char *
id_from_env(const char *prefix, uint64_t *seq0, int *bad)
{
	const char *ch = getenv("CH_CHANNEL");
	char *id;

	*bad = 0;
	int have_seq = env_number("CH_SEQ", seq0);
	if (!ch || have_seq == 0)
		return NULL;
	if (have_seq < 0 || strpbrk(ch, "\r\n") || strlen(ch) > 4000) {
		*bad = 1;
		return NULL;
	}
	size_t len = strlen(prefix) + strlen(ch) + 2;
	if (!(id = malloc(len))) {
		*bad = 1;
		return NULL;
	}
	snprintf(id, len, "%s%s%s", prefix, *prefix ? ":" : "", ch);
	return id;
}

/* The default id prefix: this host's name, so that two hosts forwarding
 * channels of the same path to one stream never send the same ids. */
static int
host_prefix(char *buf, size_t len)
{
	if (gethostname(buf, len) < 0)
		return -1;
	buf[len - 1] = '\0';
	return 0;
}

/* Standard input as records: all of it, or (batch) one per separator;
 * count is chsub's CH_COUNT, or 0 when it is not set. */
struct input {
	char *buf;
	char **rec;
	size_t *len;
	size_t n;
	uint64_t count;
};

static int
read_records(struct input *in, int batch, char delim)
{
	size_t total = 0, cap = 1;

	if (!(in->buf = slurp(&total))) {
		fail("read standard input: %s", strerror(errno));
		return -1;
	}
	if (batch)
		for (size_t i = 0; i < total; i++)
			cap += in->buf[i] == delim;
	in->rec = malloc(cap * sizeof *in->rec);
	in->len = malloc(cap * sizeof *in->len);
	if (!in->rec || !in->len) {
		fail("out of memory");
		return -1;
	}
	in->n = 0;
	if (!batch) {
		in->rec[0] = in->buf;
		in->len[in->n++] = total;
	} else if (total == 0 && in->count == 1) {
		/* One record and no separator (chsub --batch=1): an empty
		 * record, not an empty batch. */
		in->rec[0] = in->buf;
		in->len[in->n++] = 0;
	} else {
		/* Each record ends with the separator; a last one without
		 * it counts too. */
		for (size_t i = 0, start = 0; i < total; i++) {
			if (in->buf[i] != delim && i + 1 < total)
				continue;
			size_t end = in->buf[i] == delim ? i : i + 1;
			in->rec[in->n] = in->buf + start;
			in->len[in->n++] = end - start;
			start = i + 1;
		}
	}
	for (size_t i = 0; i < in->n; i++)
		if (in->len[i] > INT32_MAX) {
			fail("record too large");
			return -1;
		}
	return 0;
}

/* With CH_COUNT, the records read must be those chsub handed over: a
 * record that holds the separator would pass for two and shift the ids
 * of all that follow it. */
static int
check_count(const struct input *in, int batch)
{
	if (!in->count || in->n == in->count)
		return 0;
	if (!batch)
		fail("chsub handed over %" PRIu64 " records (CH_COUNT) as one "
		    "message: with chsub --batch, use -b", in->count);
	else
		fail("standard input holds %zu records, chsub handed over %"
		    PRIu64 " (CH_COUNT)%s; nothing sent", in->n, in->count,
		    in->n > in->count ? ": a record contains the separator "
		    "(records with newlines need chsub -0 and -b -0, or "
		    "chsub --batch=1 without -b)" : "");
	return -1;
}

/* Connect to a server of the list that answers, and make the JetStream
 * context whose asynchronous acknowledgements go to *a. */
static int
connect_js(const char *server, long timeout_ms, struct acks *a,
    natsOptions **opts, natsConnection **nc, jsCtx **js)
{
	const char *urls[MAX_SERVERS];
	char *list = strdup(server);
	int nurls = list ? split_servers(list, urls) : -1;
	jsOptions jo;
	natsStatus s;

	if (nurls <= 0) {
		fail("bad server list: %s", server);
		free(list);
		return -1;
	}
	s = natsOptions_Create(opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(*opts, urls, nurls);
	/* One process per batch: a reconnection would only resend, after a
	 * gap, the messages that followed one that was lost. */
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(*opts, false);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(*opts, timeout_ms < 2000 ?
		    timeout_ms : 2000);
	free(list);		/* the options hold copies */
	if (s != NATS_OK) {
		fail("options: %s", nats_error(s));
		return -1;
	}
	s = natsConnection_Connect(nc, *opts);
	if (s != NATS_OK) {
		fail("connect to %s: %s", server, natsStatus_GetText(s));
		return -1;
	}
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = a;
	jo.PublishAsync.MaxPending = 4096;	/* in flight at once */
	jo.PublishAsync.StallWait = timeout_ms;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK) {
		fail("JetStream: %s", nats_error(s));
		return -1;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " [-s URL[,URL...]] [-b [-0]] [-t MS] "
	    "[--id-prefix=PREFIX | --no-msg-id] [-v] SUBJECT\n"
	    "       " PROG " [-s URL] --create-stream=NAME SUBJECT\n"
	    "Publish standard input (one record, or with -b one per line) to "
	    "a JetStream\nsubject; exit 0 only once the stream has "
	    "acknowledged every record.\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "batch", no_argument, NULL, 'b' },
		{ "null", no_argument, NULL, '0' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-msg-id", no_argument, NULL, 'I' },
		{ "id-prefix", required_argument, NULL, 'P' },
		{ "create-stream", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = getenv("NATS_URL"), *stream = NULL, *prefix = NULL;
	int batch = 0, no_id = 0, verbose = 0, c;
	char delim = '\n', *end;
	long timeout_ms = 10000;

	if (!server || !*server)
		server = "nats://127.0.0.1:4222";
	while ((c = getopt_long(argc, argv, "s:b0t:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'b': batch = 1; break;
		case '0': delim = '\0'; break;
		case 'I': no_id = 1; break;
		case 'P': prefix = optarg; break;
		case 'C': stream = optarg; break;
		case 'v': verbose = 1; break;
		case 't':
			errno = 0;
			timeout_ms = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || timeout_ms <= 0) {
				fprintf(stderr, PROG ": bad --timeout: %s\n",
				    optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !*argv[optind]) {
		usage(stderr);
		return 2;
	}
	subject = argv[optind];
	if (server[strspn(server, ",")] == '\0') {
		fail("no server in: %s", server);
		return 2;
	}

	char host[MAX_PREFIX + 1];
	if (prefix && (strlen(prefix) > MAX_PREFIX || strpbrk(prefix, "\r\n"))) {
		fail("bad --id-prefix: more than %d bytes, or a line break",
		    MAX_PREFIX);
		return 2;
	}
	if (!prefix && !no_id && !stream) {
		if (host_prefix(host, sizeof host) < 0) {
			fail("host name: %s (give --id-prefix)", strerror(errno));
			return 1;
		}
		prefix = host;
	}

	uint64_t seq0 = 0;
	int bad_env = 0;
	char *id_prefix = no_id || stream ? NULL :
	    id_from_env(prefix, &seq0, &bad_env);
	if (bad_env) {
		fail("CH_CHANNEL or CH_SEQ cannot make a Nats-Msg-Id "
		    "(use --no-msg-id)");
		return 2;
	}
	struct input in = { 0 };
	if (!stream && env_number("CH_COUNT", &in.count) < 0) {
		fail("CH_COUNT is not a number");
		free(id_prefix);
		return 2;
	}

	/* The records, before connecting: a bad input costs no connection. */
	int early = -1;
	if (!stream && read_records(&in, batch, delim) < 0)
		early = 1;
	else if (!stream && check_count(&in, batch) < 0)
		early = EXIT_COUNT;
	else if (!stream && in.n == 0)
		early = 0;		/* an empty batch: nothing to send */
	if (early >= 0) {
		free(in.rec);
		free(in.len);
		free(in.buf);
		free(id_prefix);
		return early;
	}

	int64_t deadline = now_ms() + timeout_ms;
	struct acks a = { .mu = PTHREAD_MUTEX_INITIALIZER };
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = 1;

	if (connect_js(server, timeout_ms, &a, &opts, &nc, &js) == 0) {
		if (stream)
			rc = create_stream(js, stream) < 0;
		else
			rc = publish(nc, js, &a, in.rec, in.len, in.n,
			    id_prefix, seq0, deadline) < 0;
	}
	if (rc == 0 && verbose && !stream)
		fprintf(stderr, PROG ": %s: %zu records acknowledged, %zu of "
		    "them duplicates the stream already had\n", subject,
		    a.acked, a.duplicates);

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	nats_CloseAndWait(1000);
	free(in.rec);
	free(in.len);
	free(in.buf);
	free(id_prefix);
	return rc;
}
