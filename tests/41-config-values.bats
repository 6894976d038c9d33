#!/usr/bin/env bats
# channel.yaml, key by key: every key refuses values of the wrong type and
# out of range, and SIZE and DUR values refuse junk; each refusal is exit
# 78 with file:line:column and the key named, and publishes nothing.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	new_channel
	chpub "$CH" before
	cp "$CH/channel.yaml" "$T/good.yaml"
}
teardown() { common_teardown; }

# refuse KEY VALUE [MESSAGE-PART]: `KEY: VALUE` (a top-level key, or
# retention.max_age style) is refused by chpub with 78, at line:column,
# naming the key; nothing is published.
refuse() {
	local key=$1 value=$2 want=${3:-} text
	if [[ $key == retention.* ]]; then
		text=$(printf 'retention:\n  %s: %s\n' "${key#retention.}" "$value")
	else
		text=$(printf '%s: %s\n' "$key" "$value")
	fi
	printf '%s\n' "$text" >"$CH/channel.yaml"
	run -78 --separate-stderr chpub "$CH" after
	[[ $stderr == "chpub: $CH: channel.yaml:"[0-9]*:[0-9]*": "*"${key#retention.}"* ]] &&
	[[ $stderr == *"$want"* ]] || {
		echo "$key: $value: unexpected stderr: $stderr" >&2
		return 1
	}
	# nothing was published
	cp "$T/good.yaml" "$CH/channel.yaml"
	[[ $(chsub --peek --from=earliest "$CH") == before ]]
}

KEYS="format segment_bytes segment_age sync sync_interval max_bytes on_full
	max_record_bytes retention.max_age retention.max_bytes expire dead_letter"
SIZE_KEYS="segment_bytes max_bytes max_record_bytes retention.max_bytes"
DUR_KEYS="segment_age sync_interval retention.max_age expire"

@test "every key refuses a list and a mapping" {
	local k
	for k in $KEYS; do
		refuse "$k" '[1, 2]'
		refuse "$k" '{a: 1}'
	done
}

@test "retention refuses a scalar and a list" {
	printf 'retention: 5\n' >"$CH/channel.yaml"
	run -78 --separate-stderr chpub "$CH" x
	[[ $stderr == "chpub: $CH: channel.yaml:1:"*retention* ]]
	printf 'retention: [1]\n' >"$CH/channel.yaml"
	run -78 --separate-stderr chpub "$CH" x
	[[ $stderr == "chpub: $CH: channel.yaml:1:"*retention* ]]
}

@test "every SIZE key refuses junk" {
	local k v
	for k in $SIZE_KEYS; do
		for v in lots -1 -5K 1X 1.2.3M 0x10 nan inf 1e3 1Ki 16EiB \
		    '"1 M M"' true; do
			refuse "$k" "$v" "invalid size"
		done
	done
}

@test "every SIZE key refuses sizes beyond 64 bits" {
	local k
	for k in $SIZE_KEYS; do
		refuse "$k" 18446744073709551616 "too large"
		refuse "$k" 99999999999999999999999 "too large"
	done
}

@test "every DUR key refuses junk" {
	local k v
	for k in $DUR_KEYS; do
		for v in soon -1s 1y 1.5.h '"5 minutes"' '"3 days"' 1w 0x10 \
		    h 5x true; do
			refuse "$k" "$v" "invalid duration"
		done
	done
}

@test "every DUR key refuses durations beyond 64-bit nanoseconds" {
	local k
	for k in $DUR_KEYS; do
		refuse "$k" 99999999999h "too long"
	done
}

@test "range limits: segment_bytes, max_record_bytes, sync_interval" {
	refuse segment_bytes 4095 "between 4096"
	refuse segment_bytes 1025TiB "between 4096"
	refuse max_record_bytes 0 "between 1 and 4294967040"
	refuse max_record_bytes 5GiB "between 1 and 4294967040"
	refuse sync_interval 0 "greater than 0"
}

@test "the enumerations refuse anything else, case included" {
	local v
	for v in sometimes true 1 NONE Always ''\''none '\'''; do
		refuse sync "$v" "invalid sync policy"
	done
	for v in wait 1 FAIL false; do
		refuse on_full "$v" "invalid on_full policy"
	done
	for v in one 0 -1 1.0 1x; do
		refuse format "$v" "is not a format version"
	done
}

@test "a format newer than this build is refused as such (exit 1), not parsed as junk" {
	printf 'format: 4\n' >"$CH/channel.yaml"
	run -1 --separate-stderr chpub "$CH" x
	[[ $stderr == "chpub: $CH: channel format 4 is newer than this chtools supports"* ]]
}

@test "values at the edges of their range are accepted" {
	local kv
	for kv in "segment_bytes: 4096" "segment_bytes: 1024TiB" \
	    "max_record_bytes: 1" "max_record_bytes: 4294967040" \
	    "sync_interval: 1ms" "segment_age: 1h30m" "max_bytes: 0" \
	    "expire: 7d" "sync: always" "on_full: block" "format: 1"; do
		printf '%s\n' "$kv" >"$CH/channel.yaml"
		run --separate-stderr chpub "$CH" k	# 1 byte: max_record_bytes 1
		[[ $status -eq 0 && -z $stderr ]] || {
			echo "$kv: exit $status: $stderr" >&2
			return 1
		}
	done
}

@test "a SIZE with a fraction is exact: 1.9GB, 0.05GB or 0.001MB is the whole number of bytes it names, 0.1B or 1.0000000000000000000001K is not" {
	local v
	for v in 0.1B 1.5 0.0001KB 1.0000000000000000000001K; do
		refuse max_bytes "$v" "not a whole number of bytes"
	done
	for v in 1.9GB 4.2GB 0.9KB 0.05GB 0.001MB 0.002MB 1.5M 0.5M; do
		printf 'max_bytes: %s\n' "$v" >"$CH/channel.yaml"
		run --separate-stderr chpub "$CH" x
		[[ $status -eq 0 && -z $stderr ]] ||
			fail "max_bytes: $v: exit $status: $stderr"
		run -0 --separate-stderr chcompact --dry-run --max-bytes="$v" "$CH"
	done
	# The value is the one named: 0.001MB is 1000 bytes, not 999.
	printf 'max_record_bytes: 0.001MB\n' >"$CH/channel.yaml"
	run -0 chpub --whole "$CH" < <(head -c 1000 /dev/zero)
	run -1 --separate-stderr chpub --whole "$CH" < <(head -c 1001 /dev/zero)
	[[ $stderr == *"max_record_bytes"* || $stderr == *"too large"* ]] ||
		fail "1001 bytes: $stderr"
	# 64 bits: the largest size is one below 2^64.
	run -0 chcompact --dry-run --max-bytes=18446744073709551614 "$CH"
	run -2 chcompact --dry-run --max-bytes=18446744073709551616 "$CH"
}
