/*
 * fuzz_config.c - channel.yaml through ch_config_parse (libyaml's event
 * API, the key table, the SIZE/DUR grammars and the range checks).
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/common/config.h"	/* not the autoconf config.h */
#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ch_config cfg;
	struct ch_error err;

	/* ch_config_load reads at most 1 MiB. */
	if (size > (1u << 20))
		return 0;
	if (ch_config_parse((const char *)data, size, "channel.yaml", &cfg,
	    &err) == 0) {
		/* What parses must pass the range checks it promises. */
		if (cfg.segment_bytes < CH_MIN_SEGMENT_BYTES ||
		    cfg.max_record_bytes == 0 || cfg.sync_interval_ns <= 0 ||
		    (cfg.format != CH_FORMAT_UNSET && cfg.format < 1) ||
		    cfg.format > CH_FORMAT_MAX ||
		    memchr(cfg.dead_letter, '\0', sizeof cfg.dead_letter) == NULL)
			abort();
	} else if (err.msg[0] == '\0' || !memchr(err.msg, '\0', sizeof err.msg)) {
		abort();	/* every failure says why */
	}
	return 0;
}
