#!/usr/bin/env bats
# Keys and headers: chpub -k and -H store them in every record's metadata
# (channel(5)), in both formats; chsub prints them (%k, %{NAME}, --json),
# hands them to handlers (CH_KEY, CH_HDR_NAME) and keeps them in dead
# letters.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	DLQ="$T/dlq"
}
teardown() { common_teardown; }

# fmt FORMAT: every record from the earliest, through --format.
fmt() { chsub --peek --from=earliest --format="$1" "$CH"; }

@test "-k and -H go with every line of stdin, and %k and %{NAME} print them" {
	printf 'one\ntwo\nthree' | chpub -k order-17 -H Content-Type=application/json \
		-H trace-id=ab12 "$CH"
	run -0 fmt '%k|%{Content-Type}|%{trace-id}|%{missing}|%s\n'
	assert_output "order-17|application/json|ab12||one
order-17|application/json|ab12||two
order-17|application/json|ab12||three"
}

@test "-k and -H go with every MESSAGE, every -0 record, a --whole input and an --atomic batch" {
	chpub -k a -H n=1 "$CH" m1 m2
	printf 'z1\0z2\0' | chpub -0 -k b -H n=2 "$CH"
	printf 'w\nhole' | chpub --whole -k c -H n=3 "$CH"
	run -0 fmt '%k %{n} %s|'
	assert_output "a 1 m1|a 1 m2|b 2 z1|b 2 z2|c 3 w
hole|"
	rm -r "$CH"
	CH_FORMAT=2 chpub "$CH" </dev/null
	printf 'x\ny\n' | chpub --atomic -k d -H n=4 "$CH"
	run -0 fmt '%k %{n} %s|'
	assert_output "d 4 x|d 4 y|"
}

@test "the metadata is key=KEY and h.NAME=VALUE lines, byte for byte, in format 1 and format 2" {
	local meta f hex
	meta=$'key=order-17\nh.Content-Type=application/json\nh.trace-id=ab12\n'
	[ "${#meta}" -eq 61 ]
	for f in 1 2; do
		rm -rf "$CH"
		CH_FORMAT=$f chpub "$CH" </dev/null
		chpub -k order-17 -H Content-Type=application/json -H trace-id=ab12 \
			"$CH" PAYLOAD
		hex=$(od -An -tx1 -v "$CH/00000000000000000000.seg" | tr -d ' \n')
		if ((f == 1)); then
			# header: payload length 7, metadata length 61, type 1
			[[ $hex == *"070000003d0001"* ]]
		else
			# attributes 02 (metadata), length 7, metadata length 61
			[[ $hex == *"02073d"* ]]
		fi
		[[ $hex == *"$(printf '%s' "$meta" | od -An -tx1 -v | tr -d ' \n')$(printf PAYLOAD | od -An -tx1 | tr -d ' \n')"* ]]
		chcompact --check "$CH"
		run -0 fmt '%k|%{h.trace-id}|%s\n'
		assert_output "order-17|ab12|PAYLOAD"
	done
}

@test "records without -k or -H have no metadata" {
	chpub "$CH" plain
	run -0 chsub --peek --from=earliest --json "$CH"
	[[ $output != *key* && $output != *headers* ]]
	run -0 fmt '[%k]'
	assert_output "[]"
}

@test "--json has the key and a headers object; a key that is not UTF-8 as key_base64" {
	chpub -k 'k"1' -H A=x -H b-c='y z' "$CH" p1
	chpub -k $'\xff\xfe' "$CH" p2
	chpub -k '' "$CH" p3
	run -0 bash -c 'chsub --peek --from=earliest --json "$1" |
		jq -c "[.key, .key_base64, .headers, .payload, .origin]"' _ "$CH"
	assert_output '["k\"1",null,{"A":"x","b-c":"y z"},"p1",null]
[null,"//4=",null,"p2",null]
["",null,null,"p3",null]'
}

@test "a handler gets the key and headers as CH_KEY and CH_HDR_NAME, never values chsub was started with" {
	chpub -k K1 -H Content-Type=text/plain -H x_y=2 "$CH" a
	chpub "$CH" b
	CH_KEY=stale CH_HDR_STALE=1 run -0 chsub --from=earliest \
		-x 'printf "%s|%s|%s|%s|%s\n" "${CH_KEY-unset}" "${CH_HDR_CONTENT_TYPE-unset}" \
			"${CH_HDR_X_Y-unset}" "${CH_HDR_STALE-unset}" "$(cat)"' "$CH" s
	assert_output "K1|text/plain|2|unset|a
unset|unset|unset|unset|b"
}

@test "with --batch, handlers get no CH_KEY or CH_HDR_ variables" {
	chpub -k K1 -H h=1 "$CH" a b
	run -0 chsub --from=earliest --batch=2 \
		-x 'echo "${CH_KEY-unset} ${CH_HDR_H-unset} $CH_COUNT"' "$CH" s
	assert_output "unset unset 2"
}

@test "a dead letter keeps the record's key and headers beside its origin, and %{NAME} gives the origin first" {
	chpub -k K1 -H status=mine -H trace=t1 "$CH" poison
	run -0 chsub -q --from=earliest --dead-letter="$DLQ" -x 'cat >/dev/null; exit 3' "$CH" s
	run -0 chsub --peek "$DLQ" --format '%k|%{status}|%{h.status}|%{trace}|%{subscriber}|%s'
	assert_output "K1|3|mine|t1|s|poison"
	run -0 bash -c 'chsub --peek "$1" --json | jq -c "[.key, .headers, .origin.status, .origin.subscriber]"' _ "$DLQ"
	assert_output '["K1",{"status":"mine","trace":"t1"},"3","s"]'
	# Dead-lettered again: one origin (the new one), the key and headers.
	run -0 chsub -q --from=earliest --dead-letter="$T/dlq2" -x 'exit 4' "$DLQ" s2
	run -0 bash -c 'chsub --peek "$1" --json | jq -c "[.key, .headers, .origin.status, .origin.subscriber]"' _ "$T/dlq2"
	assert_output '["K1",{"status":"mine","trace":"t1"},"4","s2"]'
	run -0 bash -c 'chsub --peek --format "%{subscriber}\n%{h.status}\n" "$1" | wc -l' _ "$T/dlq2"
	assert_output 2
}

@test "bad header names and values are usage errors that name the channel, and publish nothing" {
	local bad
	for bad in 'a b=1' 'a.b=1' '=1' "$(printf 'x%.0s' {1..65})=1" 'é=1'; do
		run -2 --separate-stderr chpub -H "$bad" "$CH" x
		[[ $stderr == "chpub: $CH: --header '${bad%%=*}': a header name is 1 to 64 letters, digits, '-' or '_'" ]]
	done
	run -2 --separate-stderr chpub -H novalue "$CH" x
	assert_equal "$stderr" "chpub: $CH: --header 'novalue': not NAME=VALUE"
	run -2 --separate-stderr chpub -H $'n=a\nb' "$CH" x
	assert_equal "$stderr" "chpub: $CH: --header 'n': a value cannot hold a newline"
	run -2 --separate-stderr chpub -k $'a\nb' "$CH" x
	assert_equal "$stderr" "chpub: $CH: --key: a key cannot hold a newline"
	run -2 --separate-stderr chpub -H Trace-Id=1 -H trace_id=2 "$CH" x
	assert_equal "$stderr" "chpub: $CH: --header 'trace_id': given twice (as 'Trace-Id'; names are the same regardless of case and of '-' or '_')"
	assert_not_exists "$CH"
	# 64 characters, every allowed kind, and an empty value are fine
	chpub -H "$(printf 'a%.0s' {1..60})Z9-_=" "$CH" x
	run -0 fmt "%{$(printf 'a%.0s' {1..60})Z9-_}|%s"
	assert_output "|x"
}

@test "the key and headers take at most 57344 bytes, and a record at the limit reads back and dead-letters whole" {
	local big
	# key=...\n takes 5 bytes more than the key
	big=$(head -c 57339 /dev/zero | tr '\0' k)
	run -2 --separate-stderr chpub -k "${big}k" "$CH" x
	assert_equal "$stderr" "chpub: $CH: --key: the key and headers of a record take at most 57344 bytes (57345 with this one)"
	run -2 --separate-stderr chpub -k "$big" -H a=b "$CH" x
	[[ $stderr == "chpub: $CH: --header: the key and headers of a record take at most 57344 bytes"* ]]
	assert_not_exists "$CH"
	chpub -k "$big" "$CH" x
	run -0 fmt '%k'
	assert_equal "$output" "$big"
	run -0 chsub -q --from=earliest --dead-letter="$DLQ" -x 'exit 1' "$CH" s
	run -0 chsub --peek --format '%k|%{subscriber}|%s' "$DLQ"
	assert_equal "$output" "$big|s|x"
}

@test "--tee copies the payloads only, not the key or headers" {
	run -0 chpub --tee -k K -H a=b "$CH" p1 p2
	assert_output "p1
p2"
}
