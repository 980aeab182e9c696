//! Support for tests/dns/answer_paths.rs: generated worlds (zones, pools, services), generated
//! queries, and the oracle every answer path is held to.
//!
//! A world is drawn from a seed: which zone features it has (wildcards, delegations, a served
//! child zone, an apex wildcard, CNAME chains of every kind, empty non-terminals, mixed-case
//! owners, RRsets too big for 512 bytes), which services (on fresh names, on an existing empty
//! non-terminal, below a non-existent one, under a wildcard, in the child zone, with CNAME
//! endpoints, with each kind of fallback) and with which policy, answer count and weights.
//! The oracle is `respond_general` over a catalog with nothing prepared
//! (`Config::compile_with(0)`), with the same steering, tables and random draw.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meridian::config::Config;
use meridian::dns::answer::{Peer, Transport, Work, respond, respond_general, respond_prepared};
use meridian::dns::cache::ResponseCache;
use meridian::policy::{PolicyInputs, Serving, Tables, build_tables};
use meridian::snapshot::Snapshot;
use meridian::wire::MAX_MESSAGE;
use meridian::wire::Query;

/// SplitMix64: a small seeded generator, so every world and case can be drawn again.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What a world's zones hold besides the records every world has.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub wildcard: bool,
    pub delegation: bool,
    pub child_zone: bool,
    pub apex_wildcard: bool,
}

impl Features {
    /// Features from the low bits of `n`: worlds 0..16 cover every combination.
    pub fn from_bits(n: u64) -> Features {
        Features {
            wildcard: n & 1 != 0,
            delegation: n & 2 != 0,
            child_zone: n & 4 != 0,
            apex_wildcard: n & 8 != 0,
        }
    }
}

/// One service as configured: its name relative to the zone origin and its TOML body.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub body: String,
}

/// A generated deployment: zone files and the services on them.
#[derive(Debug, Clone)]
pub struct World {
    pub origin: String,
    pub features: Features,
    /// (origin, master-file text).
    pub zones: Vec<(String, String)>,
    pub services: Vec<ServiceSpec>,
    /// `[node] nsid`.
    pub nsid: bool,
    /// `[dns] edns_udp_payload`.
    pub payload: u16,
}

const POLICIES: &[&str] = &["failover", "weighted", "geo", "nearest", "latency"];

impl World {
    pub fn generate(seed: u64, features: Features) -> World {
        let mut r = Rng(seed ^ 0x5EED);
        let origin = format!("w{seed}.test.");
        let mut zones = vec![(origin.clone(), zone_text(&mut r, &origin, features))];
        if features.child_zone {
            let kid = format!("kid.{origin}");
            let text = format!(
                "$ORIGIN {kid}\n$TTL 300\n@ SOA ns1 hostmaster 7 7200 3600 1209600 120\n\
                 @ NS ns1\nns1 A 192.0.2.7\nwww A 192.0.2.77\nKidMixed TXT \"child\"\n\
                 alias CNAME www.{origin}\n"
            );
            zones.push((kid, text));
        }
        let mut services = Vec::new();
        let mut svc = |r: &mut Rng, name: &str, pools: &[&str], extra: &str| {
            let policy = r.pick(POLICIES);
            let pools: Vec<String> = pools.iter().map(|p| format!("{p:?}")).collect();
            let mut body = format!(
                "policy = {policy:?}\npools = [{}]\nanswers = {}\nttl = {}\nfailover_ttl = {}\n",
                pools.join(", "),
                1 + r.below(3),
                30 + r.below(60),
                1 + r.below(10),
            );
            body.push_str(extra);
            services.push(ServiceSpec {
                name: name.into(),
                body,
            });
        };
        svc(&mut r, "svc-a", &["p-dual", "p-r2"], "");
        svc(&mut r, "svc-b.newent", &["p-v4"], "");
        svc(&mut r, "b.deep", &["p-cname"], "");
        svc(&mut r, "Svc-V6", &["p-v6", "p-dual"], "");
        svc(
            &mut r,
            "svc-fb-addr",
            &["p-v4"],
            "fallback = { addresses = [\"192.0.2.200\", \"2001:db8::200\"] }\n",
        );
        svc(
            &mut r,
            "svc-fb-cname",
            &["p-dual"],
            "fallback = { cname = \"backup.elsewhere.example.\" }\n",
        );
        svc(&mut r, "svc-r2", &["p-r2", "p-v4"], "ecs = true\n");
        if features.wildcard {
            svc(&mut r, "svc-w.wild", &["p-dual"], "");
        }
        if features.child_zone {
            svc(&mut r, "svc.kid", &["p-dual", "p-v6"], "");
        }
        World {
            origin,
            features,
            zones,
            services,
            nsid: r.chance(50),
            payload: *r.pick(&[512, 1232, 1232, 4096]),
        }
    }

    /// The configuration file's text, with zone files named `zone{i}.zone` beside it. Cookies
    /// are off: the oracle answers with `Work::default()`, which has no secret, and a server
    /// cookie carries the second it was made in (tests/dns/cookies.rs tests them).
    pub fn config(&self, listen: &str) -> String {
        let mut t = format!(
            "[dns]\nlisten = [{listen}]\nworkers = 1\nedns_udp_payload = {}\n\n\
             [node]\nname = \"node-{}\"\nregion = \"r1\"\nnsid = {}\n\n\
             [geo]\ndefault_region = \"r1\"\n\n\
             [cookies]\nenabled = false\n\n",
            self.payload, self.origin, self.nsid
        );
        for (i, (origin, _)) in self.zones.iter().enumerate() {
            let _ = write!(
                t,
                "[[zone]]\norigin = \"{origin}\"\nfile = \"zone{i}.zone\"\n\n"
            );
        }
        t.push_str(
            "[[region]]\nname = \"r1\"\nlocation = [50.1, 8.7]\nprefixes = [\"127.0.0.0/8\", \"::1/128\"]\n\n\
             [[region]]\nname = \"r2\"\nlocation = [35.7, 139.7]\nprefixes = [\"10.0.0.0/8\", \"2001:db8:100::/40\"]\nfallback = [\"r1\"]\n\n",
        );
        let pools: [(&str, &str, &[&str]); 5] = [
            (
                "p-dual",
                "r1",
                &[
                    "address = \"192.0.2.10\"\naddress6 = \"2001:db8::10\"\nweight = 1",
                    "address = \"192.0.2.11\"\naddress6 = \"2001:db8::11\"\nweight = 2",
                    "address = \"192.0.2.12\"\naddress6 = \"2001:db8::12\"\nweight = 3",
                ],
            ),
            (
                "p-v4",
                "r1",
                &["address = \"198.51.100.1\"", "address = \"198.51.100.2\""],
            ),
            ("p-v6", "r1", &["address = \"2001:db8:6::1\""]),
            (
                "p-cname",
                "r1",
                &[
                    "hostname = \"origin-1.cdn.example.\"",
                    "hostname = \"origin-2.cdn.example.\"",
                ],
            ),
            (
                "p-r2",
                "r2",
                &[
                    "address = \"203.0.113.1\"\naddress6 = \"2001:db8:2::1\"",
                    "address = \"203.0.113.2\"",
                ],
            ),
        ];
        for (name, region, endpoints) in pools {
            let _ = write!(t, "[[pool]]\nname = \"{name}\"\nregion = \"{region}\"\n");
            for (i, e) in endpoints.iter().enumerate() {
                let _ = write!(t, "[[pool.endpoint]]\nname = \"{name}-{i}\"\n{e}\n");
            }
            t.push('\n');
        }
        for s in &self.services {
            let _ = write!(
                t,
                "[[service]]\nname = \"{}.{}\"\n{}\n",
                s.name, self.origin, s.body
            );
        }
        t
    }

    /// Write the zone files and the configuration into `dir`; the configuration's path.
    pub fn write(&self, dir: &Path, listen: &str) -> PathBuf {
        for (i, (_, text)) in self.zones.iter().enumerate() {
            std::fs::write(dir.join(format!("zone{i}.zone")), text).unwrap();
        }
        let path = dir.join("meridian.toml");
        std::fs::write(&path, self.config(listen)).unwrap();
        path
    }

    /// Endpoint names of every pool, in pool order (as the model holds them).
    pub fn endpoint_names() -> Vec<Vec<String>> {
        [
            ("p-dual", 3),
            ("p-v4", 2),
            ("p-v6", 1),
            ("p-cname", 2),
            ("p-r2", 2),
        ]
        .iter()
        .map(|(p, n)| (0..*n).map(|i| format!("{p}-{i}")).collect())
        .collect()
    }
}

/// The main zone: records every world has, plus `features`, with sizes and counts drawn.
fn zone_text(r: &mut Rng, origin: &str, f: Features) -> String {
    let mut z = format!(
        "$ORIGIN {origin}\n$TTL 3600\n@ SOA ns1 hostmaster {} 7200 3600 1209600 {}\n\
         @ NS ns1\n@ NS ns2.elsewhere.example.\n@ MX 10 mail\n@ MX 20 mx.elsewhere.example.\n\
         ns1 A 192.0.2.1\nns1 AAAA 2001:db8::1\nmail A 192.0.2.25\n",
        1 + r.below(1 << 30),
        60 + r.below(600),
    );
    for i in 0..1 + r.below(3) {
        let _ = writeln!(z, "www 300 A 192.0.2.{}", 100 + i);
    }
    if r.chance(60) {
        z.push_str("www 300 AAAA 2001:db8::100\n");
    }
    z.push_str(
        "MiXeD TXT \"case kept as written\"\n\
         a.b.deep TXT \"deep\"\n\
         c1 CNAME c2\nc2 CNAME www\n\
         cext CNAME target.elsewhere.example.\n\
         cdang CNAME nothere\n\
         csvc CNAME svc-a\n\
         cnewent CNAME svc-b.newent\n\
         cent CNAME deep\n\
         loop1 CNAME loop2\nloop2 CNAME loop1\n\
         _sip._tcp SRV 10 60 5060 mail\n\
         tomx MX 10 mail\n",
    );
    let big = 1 + r.below(8);
    for i in 0..big {
        let _ = writeln!(
            z,
            "big TXT \"{}\"",
            char::from(b'a' + i as u8).to_string().repeat(200)
        );
    }
    if f.wildcard {
        z.push_str("*.wild A 192.0.2.80\n*.wild AAAA 2001:db8::80\n*.wild MX 10 mail\n");
    }
    if f.apex_wildcard {
        z.push_str("* TXT \"apex wildcard\"\n");
    }
    if f.delegation {
        z.push_str(
            "sub NS ns.sub\nsub NS ns.elsewhere.example.\nns.sub A 192.0.2.53\n\
             ns.sub AAAA 2001:db8::53\ncsub CNAME www.sub\n",
        );
    }
    if f.child_zone {
        z.push_str("kid NS ns1.kid\nns1.kid A 192.0.2.7\n");
    }
    z
}

/// How a query is asked, besides its name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    NoEdns,
    Edns,
    EdnsDo,
    Cookie,
    /// Client Subnet 127.0.0.0/24 (region r1).
    EcsV4,
    /// Client Subnet 10.1.2.0/24 (region r2).
    EcsV4Far,
    /// Client Subnet 2001:db8:100::/56 (region r2).
    EcsV6,
    /// Client Subnet with source prefix 0: the resolver opts out.
    EcsZero,
    Nsid,
}

pub const SHAPES: &[Shape] = &[
    Shape::NoEdns,
    Shape::Edns,
    Shape::EdnsDo,
    Shape::Cookie,
    Shape::EcsV4,
    Shape::EcsV4Far,
    Shape::EcsV6,
    Shape::EcsZero,
    Shape::Nsid,
];

/// A, AAAA, CNAME, MX, TXT, NS, SOA, ANY, DS, SRV, TYPE666.
pub const QTYPES: &[u16] = &[1, 28, 5, 15, 16, 2, 6, 255, 43, 33, 666];

/// EDNS payload sizes asked for: odd ones, below 512 (counts as 512), and every limit.
pub const PAYLOADS: &[u16] = &[100, 512, 513, 600, 1232, 1400, 4096, 65535];

/// One generated query.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: Vec<u8>,
    pub qtype: u16,
    pub shape: Shape,
    pub payload: u16,
    pub rd: bool,
    pub id: u16,
}

impl Case {
    /// A query for `name` (lowercase wire) and `qtype` in `shape`; case, RD, payload and ID
    /// drawn from `r`.
    pub fn draw(r: &mut Rng, name: &[u8], qtype: u16, shape: Shape) -> Case {
        let name = match r.below(3) {
            0 => name.to_vec(),
            1 => name.to_ascii_uppercase(),
            _ => name
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        b.to_ascii_uppercase()
                    } else {
                        *b
                    }
                })
                .collect(),
        };
        Case {
            name,
            qtype,
            shape,
            payload: *r.pick(PAYLOADS),
            rd: r.chance(50),
            id: r.next() as u16,
        }
    }

    /// The query's bytes.
    pub fn packet(&self) -> Vec<u8> {
        let mut p = self.id.to_be_bytes().to_vec();
        let edns = self.shape != Shape::NoEdns;
        p.extend_from_slice(&[
            if self.rd { 1 } else { 0 },
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            edns as u8,
        ]);
        p.extend_from_slice(&self.name);
        p.extend_from_slice(&self.qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        if !edns {
            return p;
        }
        let mut opts = Vec::new();
        let mut ecs = |family: u16, source: u8, addr: &[u8]| {
            opts.extend_from_slice(&8u16.to_be_bytes());
            opts.extend_from_slice(&(4 + addr.len() as u16).to_be_bytes());
            opts.extend_from_slice(&family.to_be_bytes());
            opts.extend_from_slice(&[source, 0]);
            opts.extend_from_slice(addr);
        };
        match self.shape {
            Shape::EcsV4 => ecs(1, 24, &[127, 0, 0]),
            Shape::EcsV4Far => ecs(1, 24, &[10, 1, 2]),
            Shape::EcsV6 => ecs(2, 56, &[0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00]),
            Shape::EcsZero => ecs(1, 0, &[]),
            Shape::Cookie => {
                opts.extend_from_slice(&[0, 10, 0, 8]);
                opts.extend_from_slice(&self.id.to_be_bytes().repeat(4));
            }
            Shape::Nsid => opts.extend_from_slice(&[0, 3, 0, 0]),
            _ => {}
        }
        let flags: u8 = if self.shape == Shape::EdnsDo { 0x80 } else { 0 };
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&self.payload.to_be_bytes());
        p.extend_from_slice(&[0, 0, flags, 0]);
        p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
        p.extend_from_slice(&opts);
        p
    }
}

/// Lowercase wire form of a textual name.
pub fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

/// Every name worth asking about in `snap`'s zones: each node (owner names, empty
/// non-terminals, services), a child and a sibling of each, names under cuts, a literal `*`,
/// and names outside every zone.
pub fn question_names(snap: &Snapshot, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut names = std::collections::BTreeSet::new();
    for z in snap.catalog.zones() {
        for (key, _) in z.names() {
            names.insert(key.to_vec());
            let mut child = b"\x02zz".to_vec();
            child.extend_from_slice(key);
            names.insert(child);
            let mut star = b"\x01*".to_vec();
            star.extend_from_slice(key);
            if key.len() < 200 {
                names.insert(star);
            }
        }
        let apex = z.apex().to_vec();
        for sibling in ["nothere", "nx-1", "svc-b", "newent"] {
            let mut n = vec![sibling.len() as u8];
            n.extend_from_slice(sibling.as_bytes());
            n.extend_from_slice(&apex);
            names.insert(n);
        }
    }
    for e in extra {
        names.insert(wire(e));
    }
    names.insert(wire("example.org."));
    names.insert(wire("."));
    names.into_iter().collect()
}

/// The response bytes of one path, or `None` when it sends nothing.
pub type Reply = Option<Vec<u8>>;

fn peer(transport: Transport, addr: IpAddr, random: u64) -> Peer {
    Peer {
        transport,
        addr,
        random,
    }
}

fn out_buf(transport: Transport) -> Vec<u8> {
    // As the servers size them: a UDP worker's response buffer, a whole message over TCP.
    vec![
        0u8;
        if transport == Transport::Udp {
            4096
        } else {
            MAX_MESSAGE
        }
    ]
}

/// The oracle: the general path over a catalog with nothing prepared.
pub fn oracle(snap: &Snapshot, pkt: &[u8], t: Transport, addr: IpAddr, random: u64) -> Reply {
    let mut out = out_buf(t);
    let mut q = Work::default();
    let o = respond_general(snap, pkt, peer(t, addr, random), &mut q, &mut out)?;
    Some(out[..o.len].to_vec())
}

/// What the server's engine answers: the prepared response if there is one, else the general
/// path (which itself copies prepared sections where it can).
pub fn served(snap: &Snapshot, pkt: &[u8], t: Transport, addr: IpAddr, random: u64) -> Reply {
    let mut out = out_buf(t);
    let mut q = Work::default();
    let o = respond(snap, pkt, peer(t, addr, random), &mut q, &mut out)?;
    Some(out[..o.len].to_vec())
}

/// What a UDP worker's kept responses would answer the second time this packet comes: the
/// prepared response is kept the first time (as the worker does), then answered from the cache.
/// `None` when nothing is kept for it.
pub fn kept(cache: &mut ResponseCache, snap: &Snapshot, pkt: &[u8]) -> Reply {
    cache.follow(snap);
    let mut out = out_buf(Transport::Udp);
    if let Err(Some(miss)) = cache.answer(pkt, &mut out) {
        let mut q = Query::default();
        let o = respond_prepared(snap, pkt, Transport::Udp, &mut q.qname, &mut out)?;
        if !cache.insert(miss, pkt, &out[..o.len], &o) {
            return None;
        }
    }
    let o = cache.answer(pkt, &mut out).ok()?;
    Some(out[..o.len].to_vec())
}

/// The oracle's snapshot for `snap`: the same steering, tables, payload and NSID, over a
/// catalog with nothing prepared, compiled from the same configuration file.
pub fn oracle_snapshot(config_path: &Path, snap: &Snapshot) -> Snapshot {
    let config = Config::load(config_path).unwrap_or_else(|e| panic!("config: {e}"));
    let bare =
        meridian::snapshot::assemble_with(&config, 0).unwrap_or_else(|e| panic!("compile: {e}"));
    assert!(!bare.catalog.prepares(), "the oracle prepared something");
    Snapshot {
        catalog: bare.catalog,
        ..snap.clone()
    }
}

/// `snap` with decision tables built for endpoints `down(pool, endpoint)` down, the rest up.
pub fn with_health(snap: &Snapshot, down: &dyn Fn(usize, usize) -> bool) -> Snapshot {
    let Some(st) = &snap.steering else {
        return snap.clone();
    };
    let m = &st.model;
    let serving = |p: usize, e: usize| {
        if down(p, e) {
            Serving::Down
        } else {
            Serving::Up
        }
    };
    let demand = st.demand();
    let inputs = PolicyInputs {
        regions: &m.regions,
        pools: &m.pools,
        services: &m.services,
        serving: &serving,
        rtt: &|_, _, _, _| None,
        node_region: m.node_region.unwrap_or(0),
        vantages: &[],
        demand: demand.as_deref(),
    };
    let tables: Tables = build_tables(&inputs, None);
    Snapshot {
        tables: Some(Arc::new(tables)),
        ..snap.clone()
    }
}

/// `msg` with its answer section's records in sorted order: two answers that drew the same
/// endpoints in another order compare equal. A message that does not parse is returned as is.
pub fn answers_sorted(msg: &[u8]) -> Vec<u8> {
    fn skip_name(m: &[u8], mut pos: usize) -> Option<usize> {
        loop {
            let l = *m.get(pos)? as usize;
            match l {
                0 => return Some(pos + 1),
                l if l & 0xC0 == 0xC0 => return Some(pos + 2),
                l => pos += 1 + l,
            }
        }
    }
    let sorted = || -> Option<Vec<u8>> {
        let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
        if msg.len() < 12 || count(4) != 1 {
            return None;
        }
        let start = skip_name(msg, 12)? + 4;
        let mut pos = start;
        let mut records = Vec::new();
        for _ in 0..count(6) {
            let at = skip_name(msg, pos)?;
            let rdlen = u16::from_be_bytes([*msg.get(at + 8)?, *msg.get(at + 9)?]) as usize;
            let end = at + 10 + rdlen;
            records.push(msg.get(pos..end)?);
            pos = end;
        }
        records.sort();
        let mut out = msg[..start].to_vec();
        records.iter().for_each(|r| out.extend_from_slice(r));
        out.extend_from_slice(msg.get(pos..)?);
        Some(out)
    };
    sorted().unwrap_or_else(|| msg.to_vec())
}

/// A readable dump of a message, for failures.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Presentation form of a wire name.
pub fn text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        let l = wire[pos] as usize;
        out.push_str(&String::from_utf8_lossy(&wire[pos + 1..pos + 1 + l]));
        out.push('.');
        pos += 1 + l;
    }
    if out.is_empty() { ".".into() } else { out }
}

/// Print a line past the test harness's capture, so that `cargo test` shows it.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
