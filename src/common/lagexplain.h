/*
 * lagexplain.h - chlag --explain: which rule of chlag(1) STATUS gave a
 * row its status, with the numbers it compared, and the commit-history
 * samples it looked at, in words.
 */
#ifndef CH_LAGEXPLAIN_H
#define CH_LAGEXPLAIN_H

#include "lag.h"

/* Lines separated by '\n' (no final one): the rule, how stop_after came
 * about (rules 4 to 8), "Samples: ...", one line per sample indented by 2
 * spaces.  malloc'd; NULL when out of memory. */
char *ch_lag_explain(const struct ch_lagrow *r, int64_t now);

#endif
