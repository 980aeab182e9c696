//! The whole answer path on arbitrary messages, against a snapshot assembled once from the
//! test fixtures' zones and a configuration with a service of every policy, fallbacks, a TSIG
//! key, a zone open to transfers and two secondary zones (NOTIFY).
//!
//! An input is one control byte and the message. The control byte picks the transport (UDP or
//! TCP), whether the message is signed with the configuration's TSIG key first (so the signed
//! paths see messages that verify), the client's address (each region's, one no region maps,
//! IPv4 and IPv6) and the health the decision tables were built from (all up, every other
//! endpoint down, all down).
//!
//! The message is answered as the UDP worker answers a datagram (its kept responses, then a
//! prepared response, then the general path: `dns::answer::respond`) or as the TCP task does
//! (`respond` into a whole-message buffer). Held to:
//! - no panic, whatever the bytes;
//! - a response has the query's ID, QR set, the query's opcode, and is never longer than the
//!   limit: the client's EDNS payload (512 without an OPT) capped by the server's over UDP, a
//!   whole message over TCP;
//! - it decodes with hickory-proto, and decoding, encoding and decoding again gives the same
//!   message (parse → encode → parse);
//! - its question, when it has one, is the query's, byte for byte;
//! - the general path over a catalog with nothing prepared (the oracle of ARCHITECTURE.md's
//!   "One truth") gives the same bytes;
//! - over UDP, the worker's kept response for the same bytes is the same response;
//! - a query signed with the key gets a response that verifies with it (or a TSIG error).

use std::cell::RefCell;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use meridian::config::Config;
use meridian::dns::answer::{Outcome, Peer, Transport, Work, respond, respond_general};
use meridian::dns::cache::ResponseCache;
use meridian::policy::{PolicyInputs, Serving, build_tables};
use meridian::snapshot::Snapshot;
use meridian::wire::tsig::{Algorithm, Key};
use meridian::wire::{MAX_MESSAGE, Query, Reject, parse_query};

/// The TSIG key of the configuration (name, base64 secret).
const KEY_NAME: &str = "xfr.";
const KEY_SECRET: &str = "bWVyaWRpYW4gdHJhbnNmZXIga2V5LCAzMiBieXRlcw==";
/// The time every message is answered at (TSIG times are checked against it).
const NOW: u64 = 1_767_225_600;
/// Clients: 127.0.0.1 and ::1 map to "eu", 10/8 to "us", 2001:db8:100::/40 to "ap"; the rest
/// to the default region.
const PEERS: [&str; 8] = [
    "127.0.0.1",
    "::1",
    "10.1.2.3",
    "2001:db8:100::7",
    "192.0.2.99",
    "2001:db8:ffff::1",
    "127.0.0.2",
    "203.0.113.200",
];

/// The snapshots answered from: the served one and the oracle (nothing prepared), for each
/// health state.
pub struct World {
    served: Vec<Snapshot>,
    oracle: Vec<Snapshot>,
    key: Key,
}

/// The configuration, with zone files from `fixtures` and kept copies in `dir`.
pub fn config_text(fixtures: &Path, dir: &Path) -> String {
    let f = |name: &str| fixtures.join(name).display().to_string();
    let d = |name: &str| dir.join(name).display().to_string();
    format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
workers = 1
edns_udp_payload = 1232

[node]
name = "fuzz-node"
region = "eu"
nsid = true

[geo]
default_region = "sa"

[[tsig_key]]
name = "{KEY_NAME}"
algorithm = "hmac-sha256"
secret = "{KEY_SECRET}"

[[zone]]
origin = "example.com."
file = "{full}"
[zone.transfer]
allow = ["127.0.0.0/8"]
keys = ["{KEY_NAME}"]

[[zone]]
origin = "example."
file = "{rfc4592}"

[[zone]]
origin = "sec.test."
primaries = ["127.0.0.1:5301"]
file = "{kept}"

[[zone]]
origin = "signed.test."
primaries = ["127.0.0.1:5302"]
key = "{KEY_NAME}"
file = "{missing}"

[[region]]
name = "eu"
location = [50.1, 8.7]
prefixes = ["127.0.0.0/8", "::1/128"]
fallback = ["us"]

[[region]]
name = "us"
location = [38.9, -77.0]
prefixes = ["10.0.0.0/8"]
fallback = ["eu"]

[[region]]
name = "ap"
location = [1.35, 103.8]
prefixes = ["2001:db8:100::/40"]
fallback = ["us", "eu"]

[[region]]
name = "sa"
location = [-23.5, -46.6]
fallback = ["us"]

[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "eu-1"
address = "192.0.2.10"
address6 = "2001:db8::10"
[[pool.endpoint]]
name = "eu-2"
address = "192.0.2.11"
weight = 3
[[pool.endpoint]]
name = "eu-standby"
address = "192.0.2.12"
weight = 0

[[pool]]
name = "us"
region = "us"
location = [40.7, -74.0]
[[pool.endpoint]]
name = "us-1"
address = "198.51.100.1"
address6 = "2001:db8:1::1"
[[pool.endpoint]]
name = "us-2"
address6 = "2001:db8:1::2"

[[pool]]
name = "ap"
region = "ap"
max_share = 0.5
[[pool.endpoint]]
name = "ap-1"
address = "203.0.113.1"
[[pool.endpoint]]
name = "ap-2"
address = "203.0.113.2"
[[pool.endpoint]]
name = "ap-3"
address = "203.0.113.3"

[[pool]]
name = "cdn"
region = "us"
[[pool.endpoint]]
name = "cdn-1"
hostname = "origin-1.cdn.example."
[[pool.endpoint]]
name = "cdn-2"
hostname = "origin-2.cdn.example."

[[service]]
name = "failover.example.com."
policy = "failover"
pools = ["eu", "us"]
answers = 2

[[service]]
name = "weighted.example.com."
policy = "weighted"
pools = ["eu", "us", "ap"]
answers = 8
fallback = {{ addresses = ["192.0.2.200", "2001:db8::200"] }}

[[service]]
name = "geo.example.com."
policy = "geo"
pools = ["eu", "us", "ap"]
answers = 3

[[service]]
name = "near.example.com."
policy = "nearest"
pools = ["eu", "us", "ap"]

[[service]]
name = "fast.example.com."
policy = "latency"
pools = ["eu", "us", "ap"]
fallback = {{ cname = "fallback.example.net." }}

[[service]]
name = "cdn-gslb.example.com."
policy = "failover"
pools = ["cdn"]

[[service]]
name = "x.apps.example.com."
policy = "geo"
pools = ["ap", "eu"]
answers = 2
"#,
        full = f("example.com.full.zone"),
        rfc4592 = f("rfc4592.zone"),
        kept = d("sec.test.zone"),
        missing = d("signed.test.zone"),
    )
}

/// The kept copy of the secondary zone sec.test.
const KEPT: &str = "$ORIGIN sec.test.\n$TTL 300\n\
    @ SOA ns1 hostmaster 9 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.9\n\
    www A 192.0.2.90\n* TXT \"wild\"\n";

impl World {
    /// Assemble the snapshots (files written into `dir`).
    pub fn build(dir: &Path) -> World {
        let fixtures = super::repo_root().join("tests/fixtures");
        std::fs::write(dir.join("sec.test.zone"), KEPT).expect("kept copy");
        let path = dir.join("meridian.toml");
        let text = config_text(&fixtures, dir);
        std::fs::write(&path, &text).expect("configuration");
        let config = Config::parse(&path, &text).unwrap_or_else(|e| panic!("config: {e}"));
        let snap = meridian::snapshot::assemble(&config).unwrap_or_else(|e| panic!("{e}"));
        let bare = meridian::snapshot::assemble_with(&config, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bare.catalog.prepared_bytes(), 0);
        assert!(snap.catalog.prepared_bytes() > 0, "nothing prepared");
        let mut served = Vec::new();
        let mut oracle = Vec::new();
        for down in [
            (|_, _| false) as fn(usize, usize) -> bool,
            |_, e| e % 2 == 1,
            |_, _| true,
        ] {
            let s = with_health(&snap, down);
            oracle.push(Snapshot {
                catalog: bare.catalog.clone(),
                ..s.clone()
            });
            served.push(s);
        }
        // KEY_SECRET, decoded.
        let key = Key::new(
            KEY_NAME,
            Algorithm::HmacSha256,
            b"meridian transfer key, 32 bytes",
        )
        .expect("key");
        World {
            served,
            oracle,
            key,
        }
    }

    /// The served snapshot for health state `i` (0: every endpoint up).
    pub fn snapshot(&self, i: usize) -> &Snapshot {
        &self.served[i]
    }

    /// The world of this process, built on first use in its scratch folder.
    pub fn shared() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(|| World::build(super::process_scratch()))
    }
}

/// `snap` with decision tables built for endpoints `down(pool, endpoint)` down, the rest up.
fn with_health(snap: &Snapshot, down: fn(usize, usize) -> bool) -> Snapshot {
    let st = snap.steering.as_ref().expect("services configured");
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
    Snapshot {
        tables: Some(Arc::new(build_tables(&inputs, None))),
        ..snap.clone()
    }
}

thread_local! {
    /// Response buffers as the servers size them: a UDP worker's, and a whole TCP message.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>, Vec<u8>)> =
        RefCell::new((vec![0; MAX_MESSAGE], vec![0; MAX_MESSAGE], vec![0; MAX_MESSAGE]));
}

pub fn run(data: &[u8]) {
    run_in(World::shared(), data)
}

pub fn run_in(world: &World, data: &[u8]) {
    let Some((&control, message)) = data.split_first() else {
        return;
    };
    let transport = if control & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    // Signing appends a record: only to a message with a header and room in ARCOUNT (a query
    // this server's own client signs always has both).
    let sign = control & 2 != 0
        && message.len() >= 12
        && u16::from_be_bytes([message[10], message[11]]) < u16::MAX;
    let addr: IpAddr = PEERS[(control >> 2) as usize % PEERS.len()]
        .parse()
        .expect("address");
    let health = (control >> 5) as usize % world.served.len();
    let (snap, oracle) = (&world.served[health], &world.oracle[health]);
    let mut packet = message.to_vec();
    let mac = sign.then(|| meridian::wire::tsig::sign_query(&world.key, &mut packet, NOW));
    let peer = Peer {
        transport,
        addr,
        random: 0x9E37_79B9_7F4A_7C15 ^ data.len() as u64,
    };
    BUFFERS.with(|b| {
        let (out, again, cached) = &mut *b.borrow_mut();
        let (out, again) = match transport {
            Transport::Udp => (&mut out[..4096], &mut again[..4096]),
            Transport::Tcp => (&mut out[..], &mut again[..]),
        };
        let mut work = Work {
            now: NOW,
            ..Work::default()
        };
        let answered = respond(snap, &packet, peer, &mut work, out);
        let mut oracle_work = Work {
            now: NOW,
            ..Work::default()
        };
        let expected = respond_general(oracle, &packet, peer, &mut oracle_work, again);
        assert_eq!(
            answered.map(|o| &out[..o.len]),
            expected.map(|o| &again[..o.len]),
            "served and oracle answers differ for {packet:02x?}"
        );
        let Some(o) = answered else {
            return;
        };
        let response = &out[..o.len];
        check_response(snap, &packet, transport, &o, response);
        if transport == Transport::Udp {
            kept_is_the_same(snap, &packet, response, cached);
        }
        if let Some(mac) = mac
            && work.tsig_error.is_none()
            && has_tsig(response)
        {
            let mut v = meridian::wire::tsig::Verifier::new(&world.key, mac);
            assert!(
                v.verify(response, NOW).is_ok(),
                "the answer to a signed query does not verify: {response:02x?}"
            );
        }
    });
}

/// The response is well formed, answers this query and fits the limit.
pub fn check_response(snap: &Snapshot, query: &[u8], t: Transport, o: &Outcome, r: &[u8]) {
    assert!(r.len() >= 12, "a {}-byte response", r.len());
    assert_eq!(r[..2], query[..2], "response ID");
    assert_ne!(r[2] & 0x80, 0, "QR clear in a response");
    assert_eq!(r[2] & 0x78, query[2] & 0x78, "opcode not copied");
    let limit = match t {
        Transport::Tcp => MAX_MESSAGE,
        Transport::Udp => udp_limit(snap, query),
    };
    assert!(
        r.len() <= limit,
        "a {}-byte response over {t:?}, limit {limit}: query {query:02x?}",
        r.len()
    );
    assert_eq!(
        o.truncated,
        r[2] & 0x02 != 0,
        "TC bit and the outcome disagree"
    );
    let m = match Message::from_vec(r) {
        Ok(m) => m,
        Err(e) => panic!("the response does not decode ({e}): {r:02x?} for {query:02x?}"),
    };
    let bytes = m.to_vec().expect("a decoded response encodes");
    let again = Message::from_vec(&bytes).expect("an encoded response decodes");
    assert_eq!(m, again, "decode → encode → decode changed the response");
    let qd = u16::from_be_bytes([r[4], r[5]]);
    assert!(qd <= 1, "{qd} questions in a response");
    if qd == 1 {
        let end = 12 + question_len(r).expect("the response's question");
        assert_eq!(
            r[12..end],
            query[12..end],
            "the response's question is not the query's"
        );
    }
}

/// The most a UDP response to `query` may hold: the client's payload from its OPT (512
/// without one), never more than the server's.
fn udp_limit(snap: &Snapshot, query: &[u8]) -> usize {
    let mut q = Query::default();
    let edns = match parse_query(query, &mut q) {
        Ok(()) => q.edns,
        Err(Reject::Error { edns, .. }) => edns,
        Err(Reject::Drop) => None,
    };
    match edns {
        Some(e) => e.udp_payload.min(snap.edns_udp_payload.max(512)) as usize,
        None => 512,
    }
}

/// Length of the uncompressed question name at offset 12, plus type and class.
fn question_len(m: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let l = *m.get(at)? as usize;
        if l == 0 {
            return Some(at + 1 + 4 - 12).filter(|&n| 12 + n <= m.len());
        }
        if l > 63 {
            return None;
        }
        at += 1 + l;
    }
}

/// Whether the last additional record of `m` is a TSIG (the response was signed).
fn has_tsig(m: &[u8]) -> bool {
    Message::from_vec(m).is_ok_and(|msg| {
        msg.additionals
            .last()
            .is_some_and(|r| u16::from(r.record_type()) == 250)
            || msg.signature.is_some()
    })
}

/// What the UDP worker does with the same bytes twice: the second time the kept response (if
/// the first was kept) is the very response.
fn kept_is_the_same(snap: &Snapshot, packet: &[u8], response: &[u8], out: &mut [u8]) {
    let mut cache = ResponseCache::new();
    cache.follow(snap);
    let miss = match cache.answer(packet, out) {
        Ok(_) => panic!("an empty cache answered"),
        Err(None) => return, // not a shape the cache keeps
        Err(Some(miss)) => miss,
    };
    let mut q = Query::default();
    let Some(o) =
        meridian::dns::answer::respond_prepared(snap, packet, Transport::Udp, &mut q.qname, out)
    else {
        return;
    };
    assert_eq!(
        &out[..o.len],
        response,
        "prepared response differs from served"
    );
    if !cache.insert(miss, packet, response, &o) {
        return;
    }
    let kept = cache.answer(packet, out).expect("kept a moment ago");
    assert_eq!(&out[..kept.len], response, "the kept response differs");
}
