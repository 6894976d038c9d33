#!/usr/bin/env bats
# Every tool: --help, --usage, --version, bad options and missing arguments.

setup() { load helpers/common; common_setup; }
teardown() { common_teardown; }

TOOLS="chpub chsub chcompact choffset chlag"

# The usage-error status: 2, but 3 (UNKNOWN) for chlag, a Nagios plugin.
usage_code() { [[ $1 == chlag ]] && echo 3 || echo 2; }

@test "every tool prints --help on stdout and exits 0" {
	for t in $TOOLS; do
		run -0 "$t" --help
		assert_output --partial "Usage: $t"
		assert_output --partial "--verbose"
	done
}

@test "every tool prints --usage and exits 0" {
	for t in $TOOLS; do
		run -0 "$t" --usage
		assert_output --partial "Usage: $t"
	done
}

@test "every tool prints its version" {
	for t in $TOOLS; do
		run -0 "$t" --version
		assert_output --regexp "^$t \(chtools\) [0-9]+\.[0-9]+\.[0-9]+$"
	done
}

# A failure without a code of its own: 1, but 3 (UNKNOWN) for chlag.
failure_code() { [[ $1 == chlag ]] && echo 3 || echo 1; }

@test "--help, --usage and --version that cannot be written (/dev/full) fail with 'write error' (exit 1; chlag 3)" {
	[[ -c /dev/full ]] || skip "no /dev/full"
	for t in $TOOLS; do
		for opt in --help --usage --version; do
			run --separate-stderr bash -c '"$1" "$2" >/dev/full' _ "$t" "$opt"
			[[ $status -eq $(failure_code "$t") ]] ||
				fail "$t $opt >/dev/full exited $status: $stderr"
			[[ $stderr == "$t: write error: No space left on device" ]] ||
				fail "$t $opt >/dev/full said: $stderr"
		done
	done
}

@test "an unknown option is a usage error (exit 2; chlag 3) that names the option" {
	for t in $TOOLS; do
		run "-$(usage_code "$t")" --separate-stderr "$t" --no-such-option
		[[ $stderr == *"$t: --no-such-option: unknown option"* ]]
		[[ $stderr == *"Try '$t --help'"* ]]
	done
}

@test "a missing CHANNEL is a usage error (exit 2; chlag 3)" {
	for t in $TOOLS; do
		run "-$(usage_code "$t")" --separate-stderr "$t"
		[[ $stderr == "$t: missing CHANNEL"* ]]
	done
}

@test "every long option in a tool's --help is in its man page" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local man="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../man" t opt
	for t in $TOOLS; do
		[[ -f $man/$t.1 ]] || continue
		MANWIDTH=300 mandoc -Tascii "$man/$t.1" | col -bx >"$T/$t.txt"
		for opt in $("$t" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
			grep -qE -- "$opt([^a-z-]|\$)" "$T/$t.txt" ||
				fail "$t: $opt is not in man/$t.1"
		done
	done
}

@test "the man pages are clean under mandoc -Tlint -W warning" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local man="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../man"
	run -0 mandoc -Tlint -W warning "$man"/*.[1-8]
	assert_output ""
}
