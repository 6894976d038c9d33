#!/bin/sh
# mkseeds3.sh BINDIR CORPUSDIR: make the format 3 seeds of the record and
# segment harnesses with the built tools (fuzz/README.md).  A segment seed
# is a whole segment file (its header tells fuzz_segment the format), the
# next segments of a chain follow as record areas after "CHSPLIT\n"; a
# record seed is the record area of a one-frame segment, that is one frame.
set -eu
bin=$1
out=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkseeds3.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CH_FORMAT=3

# new NAME [FORMAT]: a format 3 (or FORMAT) channel with the smallest
# segments.
new() {
	CH_FORMAT=${2:-3} "$bin/chpub" "$tmp/$1" first >/dev/null
	sed 's/^segment_bytes:.*/segment_bytes: 4096/' "$tmp/$1/channel.yaml" \
	    >"$tmp/yaml" && mv "$tmp/yaml" "$tmp/$1/channel.yaml"
}
# seg NAME N: the Nth segment file of channel NAME (from 1).
seg() {
	ls "$tmp/$1"/*.seg | sed -n "$2p"
}
area() {
	tail -c +65 "$1"
}
# flip FILE POS: the byte at POS xor 0x20.
flip() {
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 32)))" |
	    dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

mkdir -p "$out/record" "$out/segment"

# Frames: lines, an empty one among them; then records with metadata.
new frames
printf 'alpha\n\nbeta\ngamma\n' | "$bin/chpub" "$tmp/frames"
"$bin/chpub" -k user-7 -H Content-Type=text/plain -H x-id=42 "$tmp/frames" \
    one two
cp "$(seg frames 1)" "$out/segment/v3-frames"

# One frame alone, for the record harness: plain, and with metadata.
rm -rf "$tmp/one"
printf 'hello\nworld\n\n' | "$bin/chpub" "$tmp/one"
area "$(seg one 1)" >"$out/record/frame3-data"
rm -rf "$tmp/meta"
"$bin/chpub" -k k1 -H A-b=c "$tmp/meta" red green
area "$(seg meta 1)" >"$out/record/frame3-meta"

# An atomic frame.
new atomic
seq 1 40 | "$bin/chpub" --atomic "$tmp/atomic"
cp "$(seg atomic 1)" "$out/segment/v3-atomic"

# A chain of three segments: frames cut at each segment's end.
new chain
seq 1 1500 | "$bin/chpub" "$tmp/chain"
{
	cat "$(seg chain 1)"
	printf 'CHSPLIT\n'
	area "$(seg chain 2)"
	printf 'CHSPLIT\n'
	area "$(seg chain 3)"
} >"$out/segment/v3-chain"
# Its second segment alone starts with the rest of a cut frame, for the
# record harness.
area "$(seg chain 2)" >"$tmp/area"
n=$(od -An -tu4 -j 8 -N4 "$tmp/area" | tr -d ' ')
head -c "$n" "$tmp/area" >"$out/record/frame3-cut"

# Torn: the frames segment cut in its last frame's table.
f="$out/segment/v3-frames"
head -c $(($(wc -c <"$f") - 9)) "$f" >"$out/segment/v3-torn"
# Flipped: a byte of the first frame's payload area, and one of the last
# frame's table (its metadata).
cp "$f" "$out/segment/v3-flipped-payload"
flip "$out/segment/v3-flipped-payload" 85
cp "$f" "$out/segment/v3-flipped-table"
flip "$out/segment/v3-flipped-table" $(($(wc -c <"$f") - 12))

# A gap: chcompact --check --repair replaces a damaged frame of a sealed
# segment by a gap frame (sealed: the chain's first segment).
cp -r "$tmp/chain" "$tmp/gap"
s=$(seg gap 1)
flip "$s" 300
"$bin/chcompact" --check --repair "$tmp/gap" >/dev/null 2>&1 || true
{
	cat "$s"
	printf 'CHSPLIT\n'
	area "$(seg gap 2)"
} >"$out/segment/v3-gap"

# An upgrade: a format 2 channel raised to 3 (channel.yaml) goes on in
# format 3 from its next segment.  Every segment whole, with its header.
new upgrade 2
seq 1 600 | CH_FORMAT=2 "$bin/chpub" "$tmp/upgrade"
sed 's/^format:.*/format: 3/' "$tmp/upgrade/channel.yaml" >"$tmp/yaml" &&
    mv "$tmp/yaml" "$tmp/upgrade/channel.yaml"
seq 601 900 | "$bin/chpub" "$tmp/upgrade"
sep=
for s in "$tmp/upgrade"/*.seg; do
	printf "$sep"
	cat "$s"
	sep='CHSPLIT\n'
done >"$out/segment/v3-upgrade"
