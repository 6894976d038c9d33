# Helpers for tests that look at the bytes of a channel (channel(5)).
# Load after helpers/common (and helpers/ops for flip_byte).

# u32 FILE POS / u64 FILE POS: a little-endian integer at POS.
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }

# bytes FILE POS N: N bytes at POS as lowercase hex.
bytes() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

# size FILE: its size in bytes.
size() { stat -c %s "$1"; }

# seg0: the path of the oldest segment.
seg0() { echo "$CH/$(segments | head -n1)"; }

# put_u32 FILE POS VALUE: overwrite a little-endian u32 in place.
put_u32() {
	python3 - "$@" <<'PY'
import struct, sys
path, pos, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'r+b') as f:
    f.seek(pos)
    f.write(struct.pack('<I', val))
PY
}

# fix_seghdr_crc FILE: recompute a segment header's CRC-32C (bytes 60..63)
# after a deliberate edit of the header.
fix_seghdr_crc() {
	python3 - "$1" <<'PY'
import struct, sys
from crc32c import crc32c
with open(sys.argv[1], 'r+b') as f:
    h = f.read(60)
    f.seek(60)
    f.write(struct.pack('<I', crc32c(h)))
PY
}

# check_offset_crc FILE: the crc32c line matches the bytes before it.
check_offset_crc() {
	python3 - "$1" <<'PY'
import sys
from crc32c import crc32c
data = open(sys.argv[1], 'rb').read()
body, _, last = data.rstrip(b'\n').rpartition(b'\n')
body += b'\n'
sys.exit(0 if last == b'crc32c %08x' % crc32c(body) else 1)
PY
}

# peek_all: every record from the earliest, without registering.
peek_all() { chsub --peek --from=earliest "$CH"; }

# Format 2 and 3 frames (channel(5) FRAME FORMAT), through helpers/frames.py.
# frames SEG: one line per frame: POS LEN TYPE COUNT SEQ TIME H, and P (the
# payload area's length) for a format 3 data frame.
frames() { python3 -m frames list "$1"; }
# frame_records SEG: one line per data record: POS SEQ LEN.
frame_records() { python3 -m frames records "$1"; }
# fix_frame_crc SEG POS: recompute the CRC of the frame at POS.
fix_frame_crc() { python3 -m frames fixcrc "$1" "$2"; }
# gap_frame SEG POS: overwrite the frame at POS with a gap of its length.
gap_frame() { python3 -m frames gap "$1" "$2"; }

# numbered_channel N: a new $CH of N records r00, r01, ..., one chpub each
# (format 2: one frame each), born a day ago so that every frame's header
# takes as many bytes: every unit of the segment has the same length.
numbered_channel() {
	local i
	rm -rf "$CH"
	CH_BIRTH=-1d new_channel
	for ((i = 0; i < $1; i++)); do
		chpub "$CH" "$(printf 'r%02d' "$i")"
	done
}

# copy_unit SEG FROM TO: overwrite unit TO (0 is the first record, format
# 1, or frame, format 2) of a segment that ends on one with a copy of unit
# FROM, of the same length: valid on its own, out of sequence there.
# insert_copy SEG N [AT]: insert a copy of unit N right after it (before
# unit AT).  Both print "POS LEN" of the copy (file position, length).
copy_unit() { doctor_units "$1" copy "$2" "$3"; }
insert_copy() { doctor_units "$1" insert "$2" "${3:-$(($2 + 1))}"; }
doctor_units() {
	python3 - "$@" <<'PY'
import struct, sys
path, what, src, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = bytearray(open(path, 'rb').read())
units, end = [], len(d)
while end > 64:    # from the end, through the trailers
    n = struct.unpack('<I', d[end - 4:end])[0]
    if n < 4 or n > end - 64:
        sys.exit('%s: no record or frame ends at %d' % (path, end))
    units.insert(0, (end - n, n))
    end -= n
fp, fn = units[src]
if what == 'copy':
    tp, tn = units[dst]
    if fn != tn:
        sys.exit('units %d and %d differ in length' % (src, dst))
    d[tp:tp + tn] = d[fp:fp + fn]
else:
    tp = units[dst][0] if dst < len(units) else len(d)
    d[tp:tp] = d[fp:fp + fn]
open(path, 'wb').write(d)
print(tp, fn)
PY
}
