#!/usr/bin/env bats
# chpub --tee: each record goes on to stdout once it is appended, as it came
# in, so chpub can sit in the middle of a pipeline.

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
}
teardown() { common_teardown; }

# payloads: every record from the earliest, each as %S:%s on one line.
payloads() { chsub --peek --from=earliest --format='%S:%s\n' "$CH"; }

@test "--tee copies the lines of stdin to stdout, a last line without newline given one" {
	printf 'alpha\n\nbeta gamma\nlast' | chpub --tee "$CH" >"$T/out"
	printf 'alpha\n\nbeta gamma\nlast\n' | cmp - "$T/out"
	run -0 payloads
	assert_output "5:alpha
0:
10:beta gamma
4:last"
}

@test "--tee with -0 copies NUL-terminated records, newlines and all" {
	printf 'a\nb\0\0c' | chpub -0 --tee "$CH" >"$T/out"
	printf 'a\nb\0\0c\0' | cmp - "$T/out"
	run -0 payloads
	assert_output "3:a
b
0:
1:c"
}

@test "--tee with --whole copies all of stdin byte-exact, adding nothing" {
	head -c 300000 /dev/urandom >"$T/blob"
	printf '\n\0' >>"$T/blob"
	chpub --whole --tee "$CH" <"$T/blob" >"$T/out"
	cmp "$T/blob" "$T/out"
	chsub --peek --from=earliest --format='%s' "$CH" | cmp "$T/blob" -
}

@test "--tee copies MESSAGE arguments, one per line" {
	run -0 chpub --tee "$CH" one "" three
	assert_output "one

three"
	run -0 payloads
	assert_output "3:one
0:
5:three"
}

@test "--tee with --atomic copies the records once all of them are published" {
	CH_FORMAT=2 chpub "$CH" </dev/null
	printf 'a\nb\nc' | chpub --atomic --tee "$CH" >"$T/out"
	printf 'a\nb\nc\n' | cmp - "$T/out"
	run -0 payloads
	assert_output "1:a
1:b
1:c"
}

@test "--tee writes to stdout only after the records are written and, with --sync=always, synced" {
	need_strace
	chpub "$CH" </dev/null
	printf 'one\ntwo\n' >"$T/in"
	strace -f -s 256 -e trace=pwrite64,pwritev,write,fdatasync -o "$T/trace" \
		chpub --sync=always --tee "$CH" <"$T/in" >"$T/out"
	printf 'one\ntwo\n' | cmp - "$T/out"
	# the segment write (format 3: a pwritev), its sync, then the copy
	local w s o
	w=$(grep -nE 'pwrite(64|v)\(.*two' "$T/trace" | head -1 | cut -d: -f1)
	s=$(grep -n 'fdatasync(' "$T/trace" | tail -1 | cut -d: -f1)
	o=$(grep -n 'write(1, "one\\ntwo\\n"' "$T/trace" | head -1 | cut -d: -f1)
	[[ -n $w && -n $s && -n $o ]] || { cat "$T/trace" >&2; false; }
	((w < s && s < o)) || { cat "$T/trace" >&2; false; }
}

@test "--tee copies a batch of records with one write" {
	need_strace
	seq 1 5000 >"$T/in"
	strace -e trace=write -o "$T/trace" chpub --tee "$CH" <"$T/in" >"$T/out"
	cmp "$T/in" "$T/out"
	run -0 grep -c '^write(1,' "$T/trace"
	assert_output 1
}

@test "--tee passes each line on as soon as it is published, while stdin stays open" {
	mkfifo "$T/in"
	start_bg bash -c 'exec chpub --tee "$1" <"$2" >"$3"' _ "$CH" "$T/in" "$T/out"
	exec 4>"$T/in"
	echo one >&4
	wait_until 10 '[[ $(cat "$T/out") == one ]]'
	run -0 chsub --peek --from=earliest "$CH"
	assert_output one
	echo two >&4
	wait_until 10 '[[ $(cat "$T/out") == $'"'one\ntwo'"' ]]'
	exec 4>&-
	wait "$BG"
}

@test "--tee to a closed stdout: the records stay published, and the error says so" {
	run -1 --separate-stderr python3 -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stdin=subprocess.DEVNULL)
sys.exit(p.returncode)' chpub --tee "$CH" one two
	assert_equal "$stderr" "chpub: $CH: --tee: write to stdout: Broken pipe (the records were published)"
	run -0 payloads
	assert_output "3:one
3:two"
}

@test "--tee or --print-offset with stdout closed from the start refuse (1) before publishing (/dev/null would have stood in for it)" {
	local opt
	for opt in --tee --print-offset; do
		run -1 --separate-stderr bash -c '"$@" >&-' _ chpub "$opt" "$CH" one
		assert_equal "$stderr" "chpub: $CH: standard output is closed: $opt would write nowhere"
	done
	assert_not_exist "$CH"
}

@test "--tee copies the records published before a record that is too large" {
	run -1 --separate-stderr chpub --tee --max-record-bytes=5 "$CH" \
		< <(printf 'ok\nfine\ntoo long\nnever\n')
	assert_output "ok
fine"
	[[ $stderr == "chpub: $CH: line 3: record of 8 bytes exceeds max_record_bytes (5)" ]]
	run -0 payloads
	assert_output "2:ok
4:fine"
}

@test "--tee copies what a full channel took, and stops there" {
	chpub "$CH" </dev/null
	printf '%s\n' {1..20} | sed 's/$/ padding padding padding/' >"$T/in"
	run -75 --separate-stderr chpub --tee --max-bytes=200 "$CH" <"$T/in"
	[[ $stderr == *"full"* ]]
	[ -n "$output" ]
	# exactly what was published, in order
	assert_equal "$output" "$(chsub --peek --from=earliest "$CH")"
	[[ $(head -1 "$T/in") == "${lines[0]}" ]]
}

@test "--tee and --print-offset cannot be combined" {
	run -2 --separate-stderr chpub --tee -p "$CH" x
	[[ $stderr == "chpub: --tee and --print-offset both write to stdout; use one"* ]]
	assert_not_exists "$CH"
}
