#!/usr/bin/env bats
# channel.yaml: parsed with libyaml; every error names file:line:column and
# exits 78 (EX_CONFIG); nothing is touched when the config is bad.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	new_channel
	chpub "$CH" a
}
teardown() { common_teardown; }

# yaml TEXT: replace channel.yaml with TEXT (printf %b escapes).
yaml() { printf '%b' "$1" >"$CH/channel.yaml"; }

# refused LINE:COL MESSAGE-PART: every tool that reads the channel fails
# with 78 and an error at that place; nothing is published.
refused() {
	local tool
	for tool in "chpub $CH x" "chsub --peek $CH" "choffset $CH"; do
		run -78 --separate-stderr $tool
		assert_output ""
		[[ $stderr == "${tool%% *}: $CH: channel.yaml:$1: "*"$2"* ]] || {
			echo "stderr: $stderr" >&2
			return 1
		}
	done
}

@test "the default channel.yaml parses and each default applies" {
	run -0 chpub -p "$CH" b
	assert_output "$(chsub --peek --from=earliest --format='%o\n' "$CH" | tail -1)"
	(($output > 0))
	run -0 chsub --peek --from=earliest "$CH"
	assert_output "a
b"
}

@test "malformed YAML is refused with file:line:column" {
	yaml 'sync: none\nsegment_bytes: [1\n'
	refused 3:1 "did not find expected"
}

@test "a tab used for indentation is refused with its position" {
	yaml 'sync: none\n\tmax_bytes: 1\n'
	refused 2:1 "tab character"
}

@test "a NUL byte in a quoted key or value is refused with its position, not read up to it" {
	# "4096\0 was 64MiB" was read as 4096, "format\0zz" as format
	yaml 'segment_bytes: "4096\\0 was 64MiB"\n'
	refused 1:16 "a NUL byte in '4096...'"
	yaml '"sync\\0": always\n'
	refused 1:1 "a NUL byte in 'sync...'"
	yaml 'dead_letter: "dl\\0x"\n'
	refused 1:14 "a NUL byte in 'dl...'"
	yaml '"format\\0zz": 9\n'
	refused 1:1 "a NUL byte in 'format...'"
}

@test "an unknown key is refused, with a suggestion" {
	yaml 'sync: none\nsegment_byte: 4096\n'
	refused 2:1 "unknown key 'segment_byte' (did you mean 'segment_bytes'?)"
}

@test "an unknown key under retention is refused" {
	yaml 'retention:\n  max_size: 1\n'
	refused 2:3 "unknown key 'retention.max_size'"
}

@test "a duplicate key is refused at its second occurrence" {
	yaml 'sync: none\nmax_bytes: 0\nsync: always\n'
	refused 3:1 "duplicate key 'sync'"
}

@test "a duplicate key under retention is refused" {
	yaml 'retention:\n  max_age: 1d\n  max_age: 2d\n'
	refused 3:3 "duplicate key"
}

@test "a tag on a key is refused" {
	yaml '!!str sync: none\n'
	refused 1:1 "tags and anchors are not allowed"
}

@test "a tag or an anchor on a value is refused" {
	yaml 'sync: !!str none\n'
	refused 1:7 "tags and anchors are not allowed"
	yaml 'sync: &x none\n'
	refused 1:7 "tags and anchors are not allowed"
}

@test "an alias is refused" {
	yaml 'sync: none\nexpire: *x\n'
	run -78 --separate-stderr chsub --peek "$CH"
	[[ $stderr == "chsub: $CH: channel.yaml:"* ]]
}

@test "a list where a value belongs is refused" {
	yaml 'sync: [none]\n'
	refused 1:7 "lists are not allowed"
}

@test "a mapping where a scalar belongs is a wrong type" {
	yaml 'sync:\n  a: 1\n'
	run -78 --separate-stderr chpub "$CH" x
	[[ $stderr == "chpub: $CH: channel.yaml:"[0-9]*:[0-9]*": "* ]]
}

@test "retention must be a mapping" {
	yaml 'retention: 5\n'
	refused 1:12 "'retention' must be a mapping"
}

@test "a bad SIZE is refused with the key named" {
	yaml 'segment_bytes: lots\n'
	refused 1:16 "segment_bytes: invalid size 'lots'"
}

@test "a bad DUR is refused with the key named" {
	yaml 'retention:\n  max_age: 1y\n'
	refused 2:12 "max_age: invalid duration '1y'"
}

@test "an unknown sync or on_full value is refused" {
	yaml 'sync: sometimes\n'
	refused 1:7 "invalid sync policy 'sometimes'"
	yaml 'on_full: maybe\n'
	refused 1:10 "invalid on_full policy 'maybe'"
}

@test "segment_bytes below 4096 is out of range" {
	yaml 'segment_bytes: 4095\n'
	refused 1:16 "segment_bytes must be between 4096"
}

@test "max_record_bytes must be between 1 and 4294967040" {
	yaml 'max_record_bytes: 0\n'
	refused 1:19 "max_record_bytes must be between 1 and 4294967040"
	yaml 'max_record_bytes: 5GiB\n'
	refused 1:19 "max_record_bytes must be between 1 and 4294967040"
}

@test "sync_interval must be greater than 0" {
	yaml 'sync_interval: 0\n'
	refused 1:16 "sync_interval must be greater than 0"
}

@test "a non-numeric format is refused" {
	yaml 'format: one\n'
	refused 1:9 "format: 'one' is not a format version"
}

@test "a list as the whole document is refused" {
	yaml '- a\n- b\n'
	refused 1:1 "lists are not allowed"
}

@test "two YAML documents are refused" {
	yaml 'sync: none\n---\nsync: always\n'
	refused 2:1 "only one YAML document"
}

@test "control characters are refused with line:column, not a byte offset" {
	yaml 'sync: none\nx: a\x01\n'
	refused 2:5 "control characters are not allowed"
}

@test "invalid UTF-8 is refused with line:column" {
	yaml 'sync: \xff\xfe\n'
	refused 1:7 "UTF-8"
}

@test "a channel.yaml over 1 MiB is refused with 78" {
	head -c 1100000 /dev/zero | tr '\0' '#' >"$CH/channel.yaml"
	run -78 --separate-stderr chsub --peek "$CH"
	[[ $stderr == "chsub: $CH: channel.yaml: "* ]]
}

# deep N UNIT [PREFIX]: channel.yaml of PREFIX (printf %b) and N times
# UNIT.
deep() {
	{
		printf '%b' "${3:-}"
		head -c "$1" /dev/zero | sed "s/\x0/$2/g"
		echo
	} >"$CH/channel.yaml"
}

@test "100k nested '[' or '{', up to 1 MiB of them, or deep block nesting: every tool answers 78 at once, with line:column" {
	local spec n unit prefix tools tool user sys ms
	# The CPU time the tool takes (user and system), not the time that
	# passes: on a loaded machine starting a process alone can take
	# seconds.
	local TIMEFORMAT='%3U %3S'
	for spec in '100000|[|' '100000|{|' '1048000|[|' '100000|{a: |' \
	    '300000|- |' '300000|? |'; do
		IFS='|' read -r n unit prefix <<<"$spec"
		deep "$n" "$unit" "$prefix"
		tools=("chsub --peek $CH")
		[[ $spec != '100000|[|' ]] ||
		    tools+=("chpub $CH x" "choffset $CH" "chcompact $CH" "chlag $CH")
		for tool in "${tools[@]}"; do
			{ time run --separate-stderr timeout 10 $tool; } 2>"$T/cpu"
			read -r user sys < <(tail -n 1 "$T/cpu")
			ms=$((10#${user/./} + 10#${sys/./}))
			((status == 78 || (status == 3 && ${tool%% *} == chlag))) ||
			    { echo "$spec: $tool: exit $status after ${ms}ms of CPU: $stderr"; false; }
			[[ $stderr == "${tool%% *}: $CH: channel.yaml:"[0-9]*:[0-9]*": "* ]] ||
			    { echo "$spec: $tool: $stderr"; false; }
			# milliseconds, not libyaml's minutes; a loose bound for
			# sanitized runs
			((ms < 3000)) || { echo "$spec: $tool took ${ms}ms of CPU"; false; }
		done
	done
	# the first problem is the one reported
	deep 100000 '['
	refused 1:1 "lists are not allowed here"
	deep 100000 '[' 'format: 1\nsync: '
	refused 2:7 "lists are not allowed here (key 'sync')"
}

@test "comments, quoted keys and an empty document are fine" {
	yaml '# only a comment\n'
	run -0 chsub --peek "$CH"
	yaml '"sync": "always"\n'
	run -0 chpub "$CH" b
	yaml ''
	run -0 chsub --peek "$CH"
	assert_output "a
b"
}

@test "config values apply: max_record_bytes from channel.yaml" {
	yaml 'max_record_bytes: 4\n'
	run -1 --separate-stderr chpub "$CH" abcde
	[[ $stderr == *"exceeds max_record_bytes (4)"* ]]
	run -0 chpub --max-record-bytes=5 "$CH" abcde
}

@test "a channel.yaml that is a symbolic link, a directory or a FIFO is a bad channel.yaml (78), whatever the tool" {
	cp "$CH/channel.yaml" "$T/elsewhere.yaml"
	rm "$CH/channel.yaml"
	ln -s "$T/elsewhere.yaml" "$CH/channel.yaml"
	run -78 --separate-stderr chsub --peek "$CH"
	assert_equal "$stderr" "chsub: $CH: channel.yaml: is a symbolic link (refused)"
	run -78 --separate-stderr chpub "$CH" x
	rm "$CH/channel.yaml"
	mkdir "$CH/channel.yaml"
	run -78 --separate-stderr chcompact "$CH"
	assert_equal "$stderr" "chcompact: $CH: channel.yaml: Is a directory"
	rmdir "$CH/channel.yaml"
	mkfifo "$CH/channel.yaml"
	run -78 --separate-stderr timeout 20 choffset "$CH"
	assert_equal "$stderr" "choffset: $CH: channel.yaml: not a regular file"
}

@test "'.' and '..' are not channel names under CH_ROOT (usage error), and nothing is created" {
	mkdir "$T/root"
	run -2 --separate-stderr env CH_ROOT="$T/root" chpub . x
	assert_equal "$stderr" "chpub: .: '.' is not a channel name under CH_ROOT (a path with a '/', such as ./., is taken as it is)"
	run -2 --separate-stderr env CH_ROOT="$T/root" chsub .. s
	run -0 ls -A "$T/root"
	assert_output ""
	# A path is taken as it is.
	mkdir "$T/here"
	run -0 bash -c 'cd "$1" && CH_ROOT="$2" chpub ./. x && chsub --peek .' _ "$T/here" "$T/root"
	assert_output "x"
}
