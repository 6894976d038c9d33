# Helpers for the operator tools' tests (choffset, chcompact, chlag).
# Load after helpers/common.

# fill N [PREFIX [WHEN]]: publish N records "PREFIX-1 ..".."PREFIX-N ..",
# about 40 bytes each; WHEN (e.g. -2h) publishes them that far from now.
fill() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf '%s-%d padding padding padding padding\n' "${2:-rec}" "$i"
	done | if [[ -n ${3:-} ]]; then
		faketime -f "$3" chpub "$CH"
	else
		chpub "$CH"
	fi
}

# base N: the base offset of segment N (0 = the oldest remaining).
base() {
	local s
	s=$(segments | sed -n "$(($1 + 1))p")
	[[ -n $s ]] && echo $((10#${s%.seg}))
}

# segment_of OFFSET: the segment file holding OFFSET.
segment_of() {
	local s last=
	for s in $(segments); do
		(($((10#${s%.seg})) > $1)) && break
		last=$s
	done
	echo "$last"
}

# record_offset PREFIX-N: the offset of that record (peeking from earliest).
record_offset() {
	chsub --peek --from=earliest --format='%o %s\n' "$CH" |
		awk -v r="$1" '$2 == r { print $1; exit }'
}

# end_offset [DIR]: the offset the next record will get.
end_offset() {
	choffset --dry-run --create --latest "${1:-$CH}" zz-probe |
		sed -n 's/^zz-probe - -> //p'
}

# offset_of SUBSCRIBER [DIR]: the subscriber's committed offset.
offset_of() {
	choffset "${2:-$CH}" "$1"
}

# set_retention KEY VALUE: set retention.KEY in $CH/channel.yaml.
set_retention() {
	sed -i "s|^  $1:.*|  $1: $2|" "$CH/channel.yaml"
	grep -q "^  $1: $2\$" "$CH/channel.yaml"
}

# doctor_offset SUBSCRIBER KEY VALUE: edit one line of an offset file and
# recompute its CRC-32C, as a careless or malicious hand would.
doctor_offset() {
	python3 - "$CH/subscribers/$1/offset" "$2" "$3" <<'EOF'
import sys
from crc32c import crc32c
path, key, val = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
lines = [l for l in open(path, 'rb').read().split(b'\n')
         if l and not l.startswith(b'crc32c ')]
lines = [key + b' ' + val if l.split(b' ')[0] == key else l for l in lines]
text = b'\n'.join(lines) + b'\n'
open(path, 'wb').write(text + b'crc32c %08x\n' % crc32c(text))
EOF
}

# hold SUBSCRIBER [DIR]: run `chsub -f` for SUBSCRIBER in the background
# (output discarded) and wait until it holds the subscriber; pid in $BG.
hold() {
	local ready="$T/ready.$1.$RANDOM"
	: >"$ready"
	start_bg chsub -f --ready-fd=4 "${2:-$CH}" "$1" >/dev/null 4>"$ready"
	wait_for 10 test -s "$ready"
}

# hold_caught_up SUBSCRIBER [DIR]: hold, then wait until the holder has
# delivered and committed everything there is.  A holder that is still
# catching up commits (writing .offset.tmp, then offset) at any moment:
# a test that plants or doctors one of those files must wait for this.
hold_caught_up() {
	hold "$@"
	# wait_until evaluates in wait_for: name what it reads by locals
	local held_name=$1 held_dir=${2:-$CH}
	wait_until 10 '[ "$(offset_of "$held_name" "$held_dir")" = "$(end_offset "$held_dir")" ]'
}

# ops_teardown: common_teardown (which continues stopped processes so
# that it can end them).
ops_teardown() { common_teardown; }

# timed_segments: $CH made (in CH_FORMAT, when set) of 40 records of 505
# bytes, published one a minute over the last 40 minutes, in segments of
# 4 KiB (at least 4); SEGS gets their file names, oldest first.
timed_segments() {
	local i
	CH_BIRTH=-2h new_channel segment_bytes=4096
	for ((i = 1; i <= 40; i++)); do
		printf 'r%02d-%0500d\n' "$i" 0 | faketime -f "-$((41 - i))m" chpub "$CH"
	done
	mapfile -t SEGS < <(segments)
	((${#SEGS[@]} >= 4)) || fail "${#SEGS[@]} segments"
}

# flip_byte FILE POS: invert one byte of FILE in place.
flip_byte() {
	python3 - "$1" "$2" <<'PY'
import sys
path, pos = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ 0xff]))
PY
}
