#!/usr/bin/env python3
"""Check that a MaxMind DB (.mmdb) file opens and answers, with nothing but the Python standard library.

Usage: check-mmdb.py FILE [ADDRESS=COUNTRY ...]

Prints the metadata, then looks up each ADDRESS and compares the country it finds (GeoIP2
`country.iso_code` or ip-location-db `country_code`) with COUNTRY, where `-` means "no country".
Exits 1 on any mismatch or if
the file is not a MaxMind DB. Used by refresh.sh before a new database replaces the old one; the
server itself checks more (every record) when it loads a file (src/geo/db.rs).
"""

import ipaddress
import struct
import sys

MARKER = b"\xab\xcd\xefMaxMind.com"


class Decoder:
    def __init__(self, buf, base):
        self.buf, self.base = buf, base

    def decode(self, off):
        b = self.buf
        ctrl = b[off]
        off += 1
        kind = ctrl >> 5
        if kind == 1:  # pointer
            size = (ctrl >> 3) & 3
            v = ctrl & 7
            n = size + 1
            raw = int.from_bytes(b[off:off + n], "big")
            ptr = (v << (8 * n)) | raw if size < 3 else raw
            ptr += (0, 2048, 526336, 0)[size]
            value, _ = self.decode(self.base + ptr)
            return value, off + n
        if kind == 0:  # extended
            kind = 7 + b[off]
            off += 1
        size = ctrl & 0x1F
        if size >= 29:
            n = size - 28
            size = (0, 29, 285, 65821)[n] + int.from_bytes(b[off:off + n], "big")
            off += n
        if kind == 7:  # map
            out = {}
            for _ in range(size):
                k, off = self.decode(off)
                out[k], off = self.decode(off)
            return out, off
        if kind == 11:  # array
            out = []
            for _ in range(size):
                v, off = self.decode(off)
                out.append(v)
            return out, off
        if kind == 14:  # boolean: the value is the size
            return bool(size), off
        raw = b[off:off + size]
        off += size
        if kind == 2:
            return raw.decode("utf-8"), off
        if kind == 3:
            return struct.unpack(">d", raw)[0], off
        if kind == 15:
            return struct.unpack(">f", raw)[0], off
        if kind == 4:
            return bytes(raw), off
        if kind in (5, 6, 9, 10):
            return int.from_bytes(raw, "big"), off
        if kind == 8:
            return int.from_bytes(raw, "big", signed=True), off
        raise ValueError(f"unknown data type {kind} at offset {off}")


def open_db(path):
    with open(path, "rb") as f:
        buf = f.read()
    at = buf.rfind(MARKER, max(0, len(buf) - 128 * 1024))
    if at < 0:
        raise ValueError("no MaxMind DB metadata marker: not a MaxMind DB file (or truncated)")
    meta, _ = Decoder(buf, at + len(MARKER)).decode(at + len(MARKER))
    for key in ("node_count", "record_size", "ip_version", "database_type", "build_epoch"):
        if key not in meta:
            raise ValueError(f"metadata has no {key}")
    tree = meta["node_count"] * meta["record_size"] // 4
    if meta["record_size"] not in (24, 28, 32) or tree + 16 > at:
        raise ValueError("search tree does not fit in the file")
    return buf, meta, tree


def lookup(buf, meta, tree, address):
    ip = ipaddress.ip_address(address)
    nodes, size = meta["node_count"], meta["record_size"]
    bits = ip.max_prefixlen
    value = int(ip)
    node = 0
    if meta["ip_version"] == 6 and ip.version == 4:
        for _ in range(96):  # walk to the IPv4 subtree (::/96)
            if node >= nodes:
                break
            node = record(buf, node, 0, size)
    for i in range(bits):
        if node >= nodes:
            break
        node = record(buf, node, (value >> (bits - 1 - i)) & 1, size)
    if node <= nodes:
        return None  # no data (node == nodes) or ran out of bits
    data = Decoder(buf, tree + 16)
    rec, _ = data.decode(tree + 16 + node - nodes - 16)
    return rec


def record(buf, node, bit, size):
    n = size // 4
    off = node * n
    chunk = buf[off:off + n]
    if size == 24:
        return int.from_bytes(chunk[3 * bit:3 * bit + 3], "big")
    if size == 32:
        return int.from_bytes(chunk[4 * bit:4 * bit + 4], "big")
    middle = chunk[3]
    if bit == 0:
        return ((middle & 0xF0) << 20) | int.from_bytes(chunk[0:3], "big")
    return ((middle & 0x0F) << 24) | int.from_bytes(chunk[4:7], "big")


def country(rec):
    if not isinstance(rec, dict):
        return None
    return rec.get("country_code") or (rec.get("country") or {}).get("iso_code")


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        buf, meta, tree = open_db(argv[1])
    except (OSError, ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
        print(f"{argv[1]}: {e}", file=sys.stderr)
        return 1
    print(f"{argv[1]}: {meta['database_type']}, IPv{meta['ip_version']}, {meta['node_count']} nodes, "
          f"built {meta['build_epoch']}, {len(buf)} bytes")
    failed = 0
    for arg in argv[2:]:
        address, _, want = arg.partition("=")
        try:
            got = country(lookup(buf, meta, tree, address)) or "-"
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
            got = f"error: {e}"
        ok = got == want
        failed += not ok
        print(f"  {address} -> {got} {'ok' if ok else f'(expected {want})'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
