"""Format 2 and 3 frames (channel(5), FRAME FORMAT), for tests that look at
or doctor the bytes of a segment by hand; the segment header's format field
says which.  An independent reading of the manual page and of the format 3
layout (a data frame's header has a fourth varint, P, the length of the
payload area; the payloads, each followed by 0x0A, come first, then the
record table): if this and the C code disagree, one of them is wrong.

    python3 frames.py list SEG         one line per frame:
                                       POS LEN TYPE COUNT SEQ TIME H
                                       and P too for a format 3 data frame
    python3 frames.py records SEG      one line per data record:
                                       POS SEQ LEN (POS: its file position:
                                       the frame's for record 0, in format 3
                                       its table entry's for the others)
    python3 frames.py areas SEG        the payload areas of the format 3
                                       data frames, concatenated, to stdout
    python3 frames.py fixcrc SEG POS   recompute the CRC of the frame at POS
    python3 frames.py gap SEG POS      overwrite the frame at POS with a gap
                                       frame of the same length standing for
                                       its records
common_setup puts this directory on PYTHONPATH."""

import struct
import sys

from crc32c import crc32c

SIG = b'\xc9FRM'
SEG_HDR = 64


def uvarint(b, i):
    """(value, next index) of the varint at b[i]."""
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def put_uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7f | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def seghdr(data):
    """(version, first_seq, created) of a segment's header."""
    version, = struct.unpack_from('<I', data, 8)
    first_seq, created = struct.unpack_from('<Qq', data, 24)
    return version, first_seq, created


def frame_at(data, pos):
    """The frame at file position pos, as a dict."""
    _, first_seq, created = seghdr(data)
    assert data[pos:pos + 4] == SIG, 'no frame signature at %d' % pos
    crc, n = struct.unpack_from('<II', data, pos + 4)
    ftype, flags = data[pos + 12], data[pos + 13]
    count, i = uvarint(data, pos + 14)
    dseq, i = uvarint(data, i)
    dts, i = uvarint(data, i)
    f = dict(pos=pos, len=n, type=ftype, flags=flags, count=count,
             seq=first_seq + dseq, ts=created + dts, crc=crc)
    if ftype == 1 and seghdr(data)[0] == 3:
        f['p'], i = uvarint(data, i)
    h = data[i]
    assert h == i + 1 - pos, 'header length byte %d at %d' % (h, i)
    f['h'] = h
    return f


def frames(data):
    pos = SEG_HDR
    while pos + 4 <= len(data) and data[pos:pos + 4] == SIG:
        f = frame_at(data, pos)
        yield f
        pos += f['len']


def records(data, f):
    """(file position, seq, payload) of each record of data frame f."""
    if 'p' in f:
        yield from records3(data, f)
        return
    body = f['pos'] + f['h']
    i = body
    for k in range(f['count']):
        start = i
        attr = data[i]
        i += 1
        if k:
            at, i = uvarint(data, i)
            assert at == start - body, 'position field of record %d' % k
        n, i = uvarint(data, i)
        if attr & 1:
            _, i = uvarint(data, i)
        if attr & 2:
            m, i = uvarint(data, i)
            i += m
        yield (f['pos'] if k == 0 else start), f['seq'] + k, data[i:i + n]
        i += n
    assert i == f['pos'] + f['len'] - 4, 'body of the frame at %d' % f['pos']


def records3(data, f):
    """records() of a format 3 data frame: the payloads lie in the payload
    area in record order, each followed by 0x0A; the table entries after
    it, each k > 0 holding its own position counted from the body."""
    body = f['pos'] + f['h']
    end = f['pos'] + f['len'] - 4
    p, count = f['p'], f['count']
    assert count >= 1 and p >= count, 'count/P of the frame at %d' % f['pos']
    assert end - body - p >= 2 * count, 'table of the frame at %d' % f['pos']
    i = body + p        # the table
    at = body           # the next payload
    for k in range(count):
        start = i
        attr = data[i]
        i += 1
        if k:
            q, i = uvarint(data, i)
            assert q == start - body, 'position field of record %d' % k
        n, i = uvarint(data, i)
        if attr & 1:
            _, i = uvarint(data, i)
        if attr & 2:
            m, i = uvarint(data, i)
            i += m
        assert at + n < body + p, 'payload %d overruns the area' % k
        assert data[at + n] == 0x0a, 'byte after payload %d' % k
        yield (f['pos'] if k == 0 else start), f['seq'] + k, data[at:at + n]
        at += n + 1
    assert at == body + p, 'payload area of the frame at %d' % f['pos']
    assert i == end, 'table of the frame at %d' % f['pos']


def frame_crc(data, f):
    p, n, h = f['pos'], f['len'], f['h']
    return crc32c(bytes(data[p + h:p + n]) + bytes(data[p + 8:p + h]))


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    with open(path, 'rb') as fh:
        data = bytearray(fh.read())
    if cmd == 'list':
        for f in frames(data):
            print(f['pos'], f['len'], f['type'], f['count'], f['seq'],
                  f['ts'], f['h'], *([f['p']] if 'p' in f else []))
    elif cmd == 'records':
        for f in frames(data):
            if f['type'] == 1:
                for pos, seq, payload in records(data, f):
                    print(pos, seq, len(payload))
    elif cmd == 'areas':
        for f in frames(data):
            if 'p' in f:
                list(records3(data, f))     # a valid frame's, only
                b = f['pos'] + f['h']
                sys.stdout.buffer.write(data[b:b + f['p']])
    elif cmd == 'fixcrc':
        f = frame_at(data, int(sys.argv[3]))
        struct.pack_into('<I', data, f['pos'] + 4, frame_crc(data, f))
    elif cmd == 'gap':
        f = frame_at(data, int(sys.argv[3]))
        _, first_seq, created = seghdr(data)
        varints = (put_uvarint(f['count']) + put_uvarint(f['seq'] - first_seq)
                   + put_uvarint(f['ts'] - created))
        h = 14 + len(varints) + 1
        n = f['len']
        frame = bytearray(SIG + b'\0' * 4 + struct.pack('<I', n) + b'\x03\x00'
                          + varints + bytes([h]) + b'\0' * (n - h - 4)
                          + struct.pack('<I', n))
        g = dict(pos=0, len=n, h=h)
        struct.pack_into('<I', frame, 4, frame_crc(frame, g))
        data[f['pos']:f['pos'] + n] = frame
    else:
        sys.exit('frames.py: unknown command ' + cmd)
    if cmd in ('fixcrc', 'gap'):
        with open(path, 'r+b') as fh:
            fh.write(data)


if __name__ == '__main__':
    main()
