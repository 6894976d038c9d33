#!/usr/bin/env bats
# The fuzz corpus (fuzz/corpus/NAME/) replayed through each fuzz harness
# without libFuzzer: every seed and every crasher ever found must pass.
# Under --enable-sanitizers the replay runs with ASan and UBSan too.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	CORPUS="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../fuzz/corpus"
	REPLAY="${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..}/fuzz"
	# The file-based harnesses keep their scratch channel in the test's
	# own temp dir.
	export FUZZ_TMPDIR="$T"
}
teardown() { common_teardown; }

# replay NAME: every file of fuzz/corpus/NAME through fuzz/replay-NAME.
replay() {
	local files=("$CORPUS/$1"/*)
	[ -e "${files[0]}" ] || fail "no corpus in $CORPUS/$1"
	run -0 timeout 300 "$REPLAY/replay-$1" "${files[@]}"
	assert_output "replayed ${#files[@]} inputs"
}

@test "fuzz corpus: channel.yaml parser" { replay config; }
@test "fuzz corpus: index file" { replay index; }
@test "fuzz corpus: offset file parser" { replay offset; }
@test "fuzz corpus: SIZE, DUR and TIME parsers" { replay parse; }
@test "fuzz corpus: record decoding" { replay record; }
@test "fuzz corpus: segment scanning" { replay segment; }
