#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets into fuzz/regressions/<target>/seed-*.

Seeds are the starting corpus (fuzz/run.sh copies them into each target's working corpus) and,
being kept in the repository, regression inputs that tests/fuzz_corpus.rs runs through the
targets' bodies. Crash inputs are kept beside them as crash-<what>; this script never touches
those. Run it again after changing it: it rewrites every seed-* file and removes stale ones.

Usage: fuzz/seeds.py
"""

import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
OUT = FUZZ / "regressions"

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "DS": 43, "IXFR": 251, "AXFR": 252, "ANY": 255}


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def opt(payload=1232, version=0, do=False, options=b"", owner=b"\0"):
    flags = 0x8000 if do else 0
    ttl = (0 << 24) | (version << 16) | flags
    return owner + struct.pack(">HHIH", 41, payload, ttl, len(options)) + options


def ecs(family, prefix, addr, scope=0):
    need = (prefix + 7) // 8
    body = struct.pack(">HBB", family, prefix, scope) + addr[:need]
    return struct.pack(">HH", 8, len(body)) + body


NSID = struct.pack(">HH", 3, 0)


def query(qname, qtype="A", qid=0x1234, flags=0x0100, additional=(), qclass=1,
          qd=1, an=b"", an_count=0, opcode=0):
    t = TYPES[qtype] if isinstance(qtype, str) else qtype
    flags |= opcode << 11
    header = struct.pack(">HHHHHH", qid, flags, qd, an_count, 0, len(additional))
    return header + name(qname) + struct.pack(">HH", t, qclass) + an + b"".join(additional)


def queries():
    """Query shapes for the parser: plain, EDNS, ECS, NSID, and malformed ones."""
    v4 = bytes([192, 0, 2, 0])
    v6 = bytes.fromhex("20010db8010000000000000000000000")
    base = query("www.example.com")
    out = {
        "plain-a": base,
        "mixed-case": query("WwW.ExAmPlE.CoM", "AAAA"),
        "root-ns": query(".", "NS"),
        "edns": query("example.com", "SOA", additional=[opt()]),
        "edns-do": query("example.com", "MX", additional=[opt(4096, do=True)]),
        "edns-small": query("example.com", "TXT", additional=[opt(100)]),
        "edns-v1": query("example.com", "A", additional=[opt(version=1)]),
        "ecs-v4": query("geo.example.com", additional=[opt(options=ecs(1, 24, v4))]),
        "ecs-v6": query("geo.example.com", "AAAA", additional=[opt(options=ecs(2, 56, v6))]),
        "ecs-zero": query("geo.example.com", additional=[opt(options=ecs(1, 0, b""))]),
        "ecs-bad-bits": query("geo.example.com", additional=[opt(options=ecs(1, 20, bytes([10, 1, 255])))]),
        "ecs-scope": query("geo.example.com", additional=[opt(options=ecs(1, 24, v4, scope=8))]),
        "nsid": query("example.com", additional=[opt(options=NSID)]),
        "nsid-ecs": query("near.example.com", additional=[opt(options=NSID + ecs(1, 32, bytes([10, 9, 8, 7])))]),
        "two-opts": query("example.com", additional=[opt(), opt()]),
        "opt-owner": query("example.com", additional=[opt(owner=name("x"))]),
        "notify": query("sec.test", "SOA", opcode=4, flags=0x0400),
        "status-opcode": query("example.com", opcode=2),
        "no-question": struct.pack(">HHHHHH", 7, 0x0100, 0, 0, 0, 0),
        "two-questions": query("example.com", qd=2) + name("example.net") + struct.pack(">HH", 1, 1),
        "compressed-qname": struct.pack(">HHHHHH", 9, 0, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", 1, 1),
        "pointer-loop-in-answer": query("example.com", an=b"\xc0\x1d" + struct.pack(">HHIH", 1, 1, 0, 0), an_count=1),
        "answer-record": query("example.com", an=b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + v4, an_count=1),
        "truncated-header": base[:7],
        "truncated-question": base[:20],
        "response-bit": struct.pack(">H", 5) + b"\x81\x00" + base[4:],
        "axfr": query("example.com", "AXFR"),
        "chaos-class": query("version.bind", "TXT", qclass=3),
        "long-name": query(".".join(["a" * 63] * 3 + ["b" * 61]), "A"),
    }
    return out


def answers():
    """Control byte + message for the answer path: transport, signing, client, health."""
    names = [
        ("www.example.com", "A"), ("www.example.com", "AAAA"), ("example.com", "SOA"),
        ("example.com", "NS"), ("example.com", "MX"), ("example.com", "ANY"),
        ("web.example.com", "A"), ("c1.example.com", "A"), ("loop-a.example.com", "A"),
        ("dangling.example.com", "A"), ("host.sub.example.com", "A"), ("x.y.apps.example.com", "A"),
        ("nothere.example.com", "A"), ("_sip._tcp.example.com", "SRV"), ("a.b.c.example.com", "TXT"),
        ("b.c.example.com", "TXT"), ("failover.example.com", "A"), ("weighted.example.com", "A"),
        ("weighted.example.com", "AAAA"), ("geo.example.com", "A"), ("near.example.com", "A"),
        ("fast.example.com", "A"), ("fast.example.com", "AAAA"), ("cdn-gslb.example.com", "A"),
        ("x.apps.example.com", "A"), ("host3.example", "MX"), ("sub.*.example", "TXT"),
        ("foo.bar.example", "TXT"), ("subdel.example", "A"), ("sec.test", "SOA"),
        ("www.sec.test", "A"), ("anything.sec.test", "TXT"), ("signed.test", "SOA"),
        ("example.com", "AXFR"), ("example.com", "IXFR"), ("example.org", "A"),
    ]
    out = {}
    v4 = bytes([10, 1, 2, 0])
    for i, (qname, qtype) in enumerate(names):
        control = (i * 37) & 0xFF
        extra = []
        if i % 3 == 1:
            extra = [opt(1232, do=i % 2 == 0)]
        elif i % 3 == 2:
            extra = [opt(512 if i % 2 else 4096, options=ecs(1, 24, v4) + (NSID if i % 4 == 2 else b""))]
        out[f"{i:02}-{qname}-{qtype}"] = bytes([control]) + query(qname, qtype, qid=i + 1, additional=extra)
    out["notify-primary"] = bytes([0]) + query("sec.test", "SOA", opcode=4, flags=0x0400)
    out["notify-signed"] = bytes([2]) + query("signed.test", "SOA", opcode=4, flags=0x0400)
    out["signed-soa"] = bytes([2 | 1]) + query("example.com", "SOA", additional=[opt()])
    out["signed-axfr-tcp"] = bytes([3]) + query("example.com", "AXFR")
    out["garbage"] = bytes([0]) + bytes(range(40))
    out["formerr-edns"] = bytes([0]) + query("example.com", qd=0, additional=[opt(options=NSID)])
    return out


def zones():
    out = {}
    for f in sorted((ROOT / "tests/fixtures").glob("*.zone")):
        text = f.read_bytes()
        if b"$ORIGIN example.\n" in text[:40]:
            text = b"; origin example.\n" + text
        out[f.stem] = text
    for f in sorted((ROOT / "config/zones").glob("*.zone")):
        text = f.read_bytes()
        origin = f.name[: -len("zone")]
        out["config-" + f.stem] = b"; origin " + origin.encode() + b"\n" + text
    out["types"] = b"""$ORIGIN example.com.
$TTL 300
@ IN SOA ns1 hostmaster ( 1 7200 3600 1209600 300 )
@ NS ns1
ns1 A 192.0.2.1
@ CAA 0 issue "ca.example.net"
@ TXT "a" "b c" "\\"quoted\\""
@ TXT "caf\xc3\xa9"
_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
@ SSHFP 1 1 0123456789abcdef0123456789abcdef01234567
svc HTTPS 1 . alpn=h2,h3 port=8443
svc2 SVCB 0 svc.example.com.
ptr PTR www.example.com.
n NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com.
u TYPE65000 \\# 3 abcdef
"""
    out["include"] = b"$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n$INCLUDE missing.zone\n"
    out["errors"] = b"$ORIGIN example.com.\n@ SOA ns hm 1 2 3 4 5\nwww CNAME a\nwww A 192.0.2.1\nbad BOGUS x\n$TTL x\n"
    return out


def configs():
    out = {"example": (ROOT / "config/meridian.toml").read_bytes()}
    out["files"] = b"""[dns]
listen = ["127.0.0.1:5353"]

[node]
region = "eu"

[geo]
default_region = "eu"
demand = "demand.txt"

[[tsig_key]]
name = "xfr."
algorithm = "hmac-sha256"
secret_file = "xfr.key"

[[zone]]
origin = "example.com."
file = "example.com.zone"
[zone.transfer]
allow = ["127.0.0.0/8"]
keys = ["xfr."]

[[region]]
name = "eu"
location = [50.1, 8.7]
prefixes = ["127.0.0.0/8"]

[[region]]
name = "us"
location = [38.9, -77.0]
fallback = ["eu"]

[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "eu-1"
address = "192.0.2.1"
weight = 2
capacity = 3
[[pool.endpoint]]
name = "eu-2"
hostname = "eu.cdn.example."

[[pool]]
name = "us"
region = "us"
max_share = 0.4
[[pool.endpoint]]
name = "us-1"
address6 = "2001:db8::1"

[[service]]
name = "www.example.com."
policy = "latency"
pools = ["eu", "us"]
answers = 2
fallback = { cname = "fallback.example.net." }
"""
    out["errors"] = b"""[dns]
listen = ["nowhere"]
edns_udp_payload = 99

[[zone]]
origin = "bad..name"
file = "x.zone"

[[service]]
name = "www.example.com."
policy = "sideways"
pools = ["none"]
answers = 9
"""
    out["toml-error"] = b"[dns]\nlisten = [\"127.0.0.1:53\"\n"
    # The answer target's world, with its zone paths relative.
    import re
    world = (FUZZ / "bodies/answer.rs").read_text()
    text = world.split('r#"', 1)[1].split('"#', 1)[0].replace("{{", "{").replace("}}", "}")
    text = re.sub(r'"\{(\w+)\}"', lambda m: '"' + m.group(1) + '.zone"', text)
    text = text.replace("{KEY_NAME}", "xfr.").replace("{KEY_SECRET}",
                                                      "bWVyaWRpYW4gdHJhbnNmZXIga2V5LCAzMiBieXRlcw==")
    out["answer-world"] = text.encode()
    return out


def policies():
    """Byte strings read by bodies/policy.rs's World::read: a few shapes to start from."""
    out = {}
    seed = 0x5EED
    for n, length in enumerate([16, 64, 200, 400, 800]):
        data = bytearray()
        for _ in range(length):
            seed = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
            data.append(seed >> 56)
        out[f"random-{n}"] = bytes(data)
    out["empty"] = b""
    out["all-down"] = bytes([3, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 0]) + bytes(200)
    return out


def main():
    for target, seeds in [("query", queries()), ("answer", answers()), ("zone", zones()),
                          ("config", configs()), ("policy", policies())]:
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for key, data in seeds.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
            (d / f"seed-{safe}").write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
