#!/usr/bin/env python3
"""Build a gzip body whose event_id wrk can replace per request WITHOUT recompressing (bench/lib/envelope.lua,
mode "gzip-template"): unbounded unique ids, gzip as the SDK sends it, a few table look-ups per request.

    gzip_template.py TEMPLATE EVENT_ID OUT_SPEC [--level 9]   # spec for envelope.lua (+ self-check)
    gzip_template.py TEMPLATE EVENT_ID --one OUT_BODY         # one body with a fresh uuid4 id (the probe request)

How: the envelope is split at every occurrence of EVENT_ID (32 lowercase hex). Each plain part is deflated
(sentry-sdk's level 9) by its own compressor primed (zdict) with everything before it, the ids replaced by NUL bytes
(absent from JSON, so no back-reference can touch an id's bytes), and ended with a sync flush (byte-aligned); every id
goes in as a raw "stored" deflate block (5-byte header + the 32 bytes). The gzip
trailer's CRC-32 is affine in the message bytes, so for a message of fixed length
    crc(new) = crc(template) XOR  XOR_i T[i][new_id[i]]
with T[i][c] = L(diff of c vs the template id's char i at every occurrence), precomputed here (32 x 16 values).
ISIZE does not change (same length). The bodies are a little larger than one-shot gzip (the id blocks, a Huffman table
per part); the spec's meta record and stderr say by how much.

Spec file: records of an 8-digit decimal length + bytes (like make_pool.py), in this order:
  1. meta (text): "<k occurrences> <crc of template, 8 hex> <body bytes> <one-shot gzip bytes>"
  2. k+1 segments: gzip header + deflate of part 0 + stored-block header, ..., deflate of part k (final block)
  3. 4 bytes: ISIZE (little endian)
  4. table (text): 32 lines, each 16 hex CRC terms for the characters 0123456789abcdef
Lua builds: seg[1] .. id .. seg[2] .. id .. ... .. seg[k+1] .. le32(crc) .. isize
"""
import argparse
import gzip
import struct
import sys
import uuid
import zlib

HEX = b"0123456789abcdef"


def build(tpl, eid, level=9):
    parts = tpl.split(eid)
    assert len(parts) > 1, "event_id not found in template"
    header = gzip.compress(b"", compresslevel=level, mtime=0)[:10]
    assert b"\x00" not in tpl, "template contains NUL bytes"
    poison = b"\x00" * len(eid)
    stored = b"\x00" + struct.pack("<HH", len(eid), 0xFFFF ^ len(eid))  # BFINAL=0, BTYPE=00, LEN, NLEN
    segs, seen = [], b""
    for i, p in enumerate(parts):
        # each part gets its own compressor, primed with everything before it (ids replaced by NULs, which never
        # occur in the JSON, so no back-reference can touch an id's bytes; references across the ids still work)
        extra = {"zdict": seen} if seen else {}
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0, **extra)
        if i < len(parts) - 1:
            segs.append(c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) + stored)
        else:
            segs.append(c.compress(p) + c.flush(zlib.Z_FINISH))
        seen += p + poison
    segs[0] = header + segs[0]
    n = len(tpl)
    offsets, pos = [], 0
    for p in parts[:-1]:
        pos += len(p)
        offsets.append(pos)
        pos += len(eid)
    zero_crc = zlib.crc32(bytes(n))
    table = []
    for i in range(len(eid)):
        row = []
        for h in HEX:
            d = bytearray(n)
            for o in offsets:
                d[o + i] = eid[i] ^ h
            row.append(zlib.crc32(bytes(d)) ^ zero_crc)
        table.append(row)
    return segs, zlib.crc32(tpl), struct.pack("<I", n & 0xFFFFFFFF), table


def body_for(segs, crc0, isize, table, new_id):
    crc = crc0
    for i, ch in enumerate(new_id):
        crc ^= table[i][HEX.index(ch)]
    return new_id.join(segs) + struct.pack("<I", crc) + isize


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("template")
    ap.add_argument("event_id")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--one", metavar="OUT_BODY")
    ap.add_argument("--level", type=int, default=9)
    a = ap.parse_args()
    tpl = open(a.template, "rb").read()
    eid = a.event_id.encode()
    assert len(eid) == 32 and all(ch in HEX for ch in eid), "event_id must be 32 lowercase hex"
    segs, crc0, isize, table = build(tpl, eid, a.level)
    # self-check: a few fresh ids must decompress to the template with that id
    for _ in range(3):
        nid = uuid.uuid4().hex.encode()
        body = body_for(segs, crc0, isize, table, nid)
        assert gzip.decompress(body) == tpl.replace(eid, nid), "gzip template self-check failed"
    if a.one:
        with open(a.one, "wb") as f:
            f.write(body_for(segs, crc0, isize, table, uuid.uuid4().hex.encode()))
        return
    if not a.out:
        ap.error("OUT_SPEC or --one needed")
    one_shot = len(gzip.compress(tpl, compresslevel=a.level, mtime=0))
    size = sum(len(s) for s in segs) + len(eid) * (len(segs) - 1) + 8
    recs = [("%d %08x %d %d" % (len(segs) - 1, crc0, size, one_shot)).encode()] + segs + [isize] + \
        ["\n".join(" ".join("%08x" % v for v in row) for row in table).encode()]
    with open(a.out, "wb") as f:
        for r in recs:
            f.write(b"%08d" % len(r))
            f.write(r)
    print("gzip template: %d B per body (one-shot gzip %d B, decompressed %d B)" % (size, one_shot, len(tpl)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
