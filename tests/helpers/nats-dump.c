/*
 * nats-dump - what a JetStream stream holds, for the forwarding tests.
 *
 *   nats-dump URL STREAM        one line per message, in stream order:
 *                               Nats-Msg-Id, a tab, the payload
 *   nats-dump URL STREAM SEQ    the payload of message SEQ, byte for byte
 *   nats-dump -c URL STREAM     the number of messages (one request: cheap
 *                               enough to poll)
 *
 * Exit status: 0, 1 on any error (no server, no stream, no message).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

static int
print_msg(natsMsg *m, int raw)
{
	const char *id = NULL;
	int len = natsMsg_GetDataLength(m);

	if (!raw) {
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
			id = "-";
		printf("%s\t", id);
	}
	if (len > 0 && fwrite(natsMsg_GetData(m), 1, (size_t)len, stdout) !=
	    (size_t)len)
		return -1;
	if (!raw)
		putchar('\n');
	return 0;
}

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc = 1, count = 0;

	if (argc > 1 && strcmp(argv[1], "-c") == 0) {
		count = 1;
		argv++;
		argc--;
	}
	if (argc != 3 && (argc != 4 || count)) {
		fprintf(stderr, "usage: nats-dump [-c] URL STREAM [SEQ]\n");
		return 2;
	}
	s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK && argc == 4) {
		natsMsg *m = NULL;
		s = js_GetMsg(&m, js, argv[2], strtoull(argv[3], NULL, 10),
		    NULL, &jerr);
		if (s == NATS_OK && print_msg(m, 1) == 0)
			rc = 0;
		natsMsg_Destroy(m);
	} else if (s == NATS_OK) {
		s = js_GetStreamInfo(&si, js, argv[2], NULL, &jerr);
		if (s == NATS_OK && count) {
			printf("%" PRIu64 "\n", si->State.Msgs);
			rc = 0;
		} else if (s == NATS_OK) {
			rc = 0;
			for (uint64_t q = si->State.FirstSeq; q &&
			    q <= si->State.LastSeq; q++) {
				natsMsg *m = NULL;
				s = js_GetMsg(&m, js, argv[2], q, NULL, &jerr);
				if (s != NATS_OK || print_msg(m, 0) < 0)
					rc = 1;
				natsMsg_Destroy(m);
				if (rc)
					break;
			}
		}
	}
	if (s != NATS_OK)
		fprintf(stderr, "nats-dump: %s\n", nats_GetLastError(NULL) ?
		    nats_GetLastError(NULL) : natsStatus_GetText(s));
	if (fflush(stdout) != 0)
		rc = 1;
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(1000);
	return rc;
}
