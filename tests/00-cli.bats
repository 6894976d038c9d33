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
