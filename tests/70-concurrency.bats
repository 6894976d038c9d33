#!/usr/bin/env bats
# Concurrency: publishers at once never tear or interleave records and keep
# each one's order; a bounded stress of publishers, followers, a consumer,
# chcompact in a loop and choffset changes loses and duplicates nothing.
# The work is done by helpers/stress.sh (outside bats' per-command trap).
# CH_STRESS_SECONDS (default 8) lengthens the stress; `make check-long`.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	STRESS="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/stress.sh"
}
teardown() { common_teardown; }

stress() {
	run bash "$STRESS" "$T" "$@" 3>&-
	((status == 0)) || { echo "$output" | tail -40; false; }
}

@test "4 publishers at once, lines and multi-megabyte records: none torn or interleaved, each one's order kept" {
	stress publishers4
}

@test "stress: 8 publishers, followers, a consumer, chcompact in a loop and choffset changes" {
	stress stress
	printf "# %s\n" "${lines[@]}" >&3
}
