//! Proof of the hot-path budget: no heap allocation per UDP query in the steady state.
//!
//! A counting global allocator wraps the system one. A real UDP worker (the same loop the server
//! runs) serves a real socket on loopback; after a warm-up, thousands of queries of every kind
//! (positive, CNAME chase, wildcard, NXDOMAIN, referral, EDNS with ECS, truncation, FORMERR,
//! REFUSED, DNS Cookies new and valid) are answered while the allocation counter must stand
//! still, every response through the rate limiter (loopback not exempt, a rate nothing
//! reaches: each response takes a token from its bucket). It runs twice: on a
//! socket bound to 127.0.0.1, and on one bound to 0.0.0.0 asked at 127.0.0.2 (which answers
//! from the queried address through control messages; the client's socket is connected, so a
//! reply from another address would not count). This binary holds one test only, so no other
//! test allocates while it counts.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::config::Config;
use meridian::serve::shield::{Defence, Shield};
use meridian::serve::udp;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 host 1 2 3 4 60\n NS ns1\n MX 10 mail\n\
ns1 A 192.0.2.1\nmail A 192.0.2.2\nwww A 192.0.2.10\n A 192.0.2.11\n AAAA 2001:db8::1\nweb CNAME www\n\
*.apps A 192.0.2.80\nsub NS ns.sub\nns.sub A 192.0.2.9\n\
big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n";

/// A query for www.example.com. A with a COOKIE option carrying `cookie`.
fn with_cookie(cookie: &[u8]) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("www.example.com.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut()
        .insert(EdnsOption::Unknown(10, cookie.to_vec()));
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// The COOKIE option's data in a response.
fn cookie_of(response: &[u8]) -> Vec<u8> {
    let m = Message::from_vec(response).unwrap();
    match m
        .edns
        .as_ref()
        .and_then(|e| e.option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie))
    {
        Some(EdnsOption::Unknown(10, data)) => data.clone(),
        other => panic!("no cookie in the response: {other:?}"),
    }
}

fn msg(name: &str, rtype: RecordType, ecs: bool) -> Vec<u8> {
    msg_from(name, rtype, ecs.then_some(("192.0.2.0", 24)))
}

fn msg_from(name: &str, rtype: RecordType, ecs: Option<(&str, u8)>) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some((net, len)) = ecs {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            net.parse().unwrap(),
            len,
            0,
        )));
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[test]
fn udp_worker_does_not_allocate_per_query() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z"), ZONE).unwrap();
    let cfg_path = dir.path().join("m.toml");
    // A geo-steered service too: client location (ECS, GeoIP), table lookup and draw.
    let geo_db = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/geo-data/test/GeoIP2-City-Test.mmdb"
    );
    let config_text = format!(
        r#"[dns]
listen = ["127.0.0.1:0"]
[rrl]
exempt = []
rate = 100000
burst = 1000000
[[zone]]
origin = "example.com."
file = "z"
[geo]
database = "{geo_db}"
[[region]]
name = "eu"
location = [51.5, -0.1]
continents = ["EU"]
[[region]]
name = "us"
location = [47.6, -122.3]
continents = ["NA"]
[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "eu1"
address = "192.0.2.1"
[[pool.endpoint]]
name = "eu2"
address = "192.0.2.2"
address6 = "2001:db8::2"
[[pool]]
name = "us"
region = "us"
[[pool.endpoint]]
name = "us1"
address = "198.51.100.1"
[[service]]
name = "gslb.example.com."
policy = "geo"
pools = ["eu", "us"]
answers = 2
"#
    );
    std::fs::write(&cfg_path, config_text).unwrap();
    let config = Config::load(&cfg_path).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(
        meridian::snapshot::assemble(&config).unwrap(),
    ));
    let shield = Shield::new(config.rrl.as_ref(), config.cookies.as_ref());
    assert!(shield.load().rrl.is_some() && shield.load().cookies.is_some());
    for (bind, ask) in [("127.0.0.1:0", "127.0.0.1"), ("0.0.0.0:0", "127.0.0.2")] {
        let allocations = count_allocations(&snapshot, &shield.published(), bind, ask);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations during 20000 queries (bound to {bind}, asked at {ask})"
        );
    }
}

/// Serve 20,000 queries (after a warm-up) on a worker bound to `bind`, sent to `ask` at its
/// port; the allocations made meanwhile.
fn count_allocations(
    snapshot: &Arc<ArcSwap<meridian::snapshot::Snapshot>>,
    defence: &Arc<ArcSwap<Defence>>,
    bind: &str,
    ask: &str,
) -> u64 {
    let socket = udp::bind(bind.parse().unwrap()).unwrap();
    let addr = SocketAddr::new(ask.parse().unwrap(), socket.local_addr().unwrap().port());
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (snapshot, defence, stop) =
            (Arc::clone(snapshot), Arc::clone(defence), Arc::clone(&stop));
        std::thread::spawn(move || udp::serve(&socket, &snapshot, &defence, &stop))
    };

    let mut queries = vec![
        msg("www.example.com.", RecordType::A, false),
        msg("WWW.Example.COM.", RecordType::AAAA, true),
        msg("web.example.com.", RecordType::A, true),
        msg("x.apps.example.com.", RecordType::A, false),
        msg("nope.example.com.", RecordType::A, true),
        msg("deep.sub.example.com.", RecordType::A, false),
        msg("example.com.", RecordType::MX, false),
        msg("big.example.com.", RecordType::TXT, false), // truncated at 512
        msg("example.org.", RecordType::A, false),       // REFUSED
        msg_from(
            "gslb.example.com.",
            RecordType::A,
            Some(("81.2.69.142", 32)),
        ), // GB → eu
        msg_from(
            "gslb.example.com.",
            RecordType::A,
            Some(("216.160.83.56", 32)),
        ), // US → us
        msg_from(
            "gslb.example.com.",
            RecordType::AAAA,
            Some(("2001:218::1", 32)),
        ), // JP → default
        msg_from("GSLB.example.com.", RecordType::A, None), // by source address
    ];
    let mut formerr = msg("www.example.com.", RecordType::A, false);
    formerr[5] = 2; // QDCOUNT 2
    queries.push(formerr);

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    // The steered queries are really answered by the service (two eu endpoints for GB).
    client.send(&queries[queries.len() - 5]).unwrap();
    let (len, _) = client.recv_from(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.answers.len(), 2, "{reply:?}");
    // A client cookie alone, then the server cookie it got back: both answered with a cookie.
    let client_cookie = [0x5a; 8];
    client.send(&with_cookie(&client_cookie)).unwrap();
    let (len, _) = client.recv_from(&mut buf).unwrap();
    let full = cookie_of(&buf[..len]);
    assert_eq!((full.len(), &full[..8]), (24, &client_cookie[..]));
    queries.push(with_cookie(&client_cookie));
    queries.push(with_cookie(&full));
    let mut round = |n: usize| {
        let mut answered = 0;
        for i in 0..n {
            let q = &queries[i % queries.len()];
            client.send(q).unwrap();
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert!(len >= 12 && buf[2] & 0x80 != 0);
            answered += 1;
        }
        answered
    };
    round(1000); // warm-up: snapshot cache, lazily initialised runtime pieces
    let before = counting_alloc::allocations();
    let answered = round(20_000);
    let after = counting_alloc::allocations();
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    assert_eq!(answered, 20_000);
    after - before
}
