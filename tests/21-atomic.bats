#!/usr/bin/env bats
# chpub --atomic: all of the input or all the arguments become visible at
# once, as one format 2 frame, or not at all.  The kill -9 tests are in
# 80-crash.bats.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/ops"
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/format"
	common_setup
	export CH_FORMAT=2
}
teardown() { ops_teardown; }

@test "--atomic publishes all its arguments as one frame" {
	chpub "$CH" before
	run -0 chpub --atomic -p "$CH" a b c
	assert_equal "${#lines[@]}" 3
	run -0 frames "$(seg0)"
	assert_equal "${#lines[@]}" 2
	[[ ${lines[1]} =~ ^[0-9]+\ [0-9]+\ 1\ 3\ 1\  ]]
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "before
a
b
c"
}

@test "--atomic makes all of stdin one frame, even past the 1 MiB frame bound, published only at its end" {
	seq -f '%099g' 30000 | chpub --atomic "$CH"
	run -0 frames "$(seg0)"
	assert_equal "${#lines[@]}" 1
	[[ ${lines[0]} =~ ^64\ [0-9]+\ 1\ 30000\  ]]
	# Without it, the same input takes several frames.
	seq -f '%099g' 30000 | chpub "$CH"
	run -0 frames "$(seg0)"
	((${#lines[@]} > 3))
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 60000
}

@test "--atomic input larger than max_record_bytes publishes nothing (exit 1)" {
	chpub "$CH" before
	run -1 --separate-stderr chpub --atomic --max-record-bytes=1000 "$CH" < <(seq -f '%099g' 20)
	assert_equal "$stderr" "chpub: $CH: line 11: an atomic batch holds at most max_record_bytes (1000) of records; nothing was published"
	run -1 --separate-stderr chpub --atomic --max-record-bytes=10 "$CH" ok "much too long"
	assert_equal "$stderr" "chpub: $CH: argument 2: record of 13 bytes exceeds max_record_bytes (10); nothing was published"
	run -0 chsub --peek --from=earliest "$CH"
	assert_output before
}

@test "--atomic needs a format 2 or 3 channel" {
	CH_FORMAT=1 chpub "$CH" before
	run -1 --separate-stderr chpub --atomic "$CH" a b
	assert_equal "$stderr" "chpub: $CH: atomic publishing needs a format 2 or 3 channel (this one is format 1; set 'format: 3' in channel.yaml to upgrade it)"
	set_config format 2
	run -0 chpub --atomic "$CH" a b
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "before
a
b"
}

@test "--atomic larger than segment_bytes seals the active segment first and gets a segment of its own" {
	new_channel segment_bytes=4096
	chpub "$CH" before
	seq -f '%099g' 100 | chpub --atomic "$CH"
	chpub "$CH" after
	run -0 segments
	assert_equal "${#lines[@]}" 3
	run -0 frames "$CH/${lines[1]}"
	assert_equal "${#lines[@]}" 2
	[[ ${lines[0]} =~ ^64\ [0-9]+\ 1\ 100\  ]]
	run -0 chsub --peek --from=earliest "$CH"
	assert_equal "${#lines[@]}" 102
	run -0 chcompact --check "$CH"
}

@test "an atomic frame cut short is never partly delivered, and the next chpub cuts it" {
	chpub "$CH" before
	local good
	good=$(size "$(seg0)")
	seq 1000 | chpub --atomic "$CH"
	for cut in 1 7 $(($(size "$(seg0)") - good - 1)); do
		cp "$(seg0)" "$T/seg"
		truncate -s $((good + cut)) "$(seg0)"
		run -0 chsub --peek --from=earliest "$CH"
		assert_output before
		cp "$T/seg" "$(seg0)"
	done
	truncate -s -1 "$(seg0)"
	chpub "$CH" after
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "before
after"
}
