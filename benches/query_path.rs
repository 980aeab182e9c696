//! Per-query cost of the answer path (parse, look up, encode), without sockets.
//!
//! `cargo bench --bench query_path` prints nanoseconds and heap allocations per query for each
//! kind of query, measured over a fixed number of iterations after a warm-up. Runs on stable.

use std::hint::black_box;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::config::Config;
use meridian::dns::answer::Work;
use meridian::dns::answer::{Peer, Transport, respond};
use meridian::wire::MAX_MESSAGE;

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

fn msg_ecs(name: &str, rtype: RecordType, net: &str, len: u8) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        net.parse().unwrap(),
        len,
        0,
    )));
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn msg(name: &str, rtype: RecordType, edns: Option<bool>) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(ecs) = edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        if ecs {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                "192.0.2.0".parse().unwrap(),
                24,
                0,
            )));
        }
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` run a short smoke pass.
    let iters: u64 = if std::env::args().any(|a| a == "--bench") {
        2_000_000
    } else {
        1_000
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let config = Config::load(&std::path::Path::new(root).join("config/meridian.toml")).unwrap();
    let snap = meridian::snapshot::assemble(&config).unwrap();
    let cases = [
        (
            "A www (no EDNS)",
            msg("www.example.com.", RecordType::A, None),
        ),
        (
            "A www (EDNS)",
            msg("www.example.com.", RecordType::A, Some(false)),
        ),
        (
            "AAAA www (EDNS+ECS)",
            msg("www.example.com.", RecordType::AAAA, Some(true)),
        ),
        (
            "CNAME chase web",
            msg("web.example.com.", RecordType::A, Some(false)),
        ),
        (
            "wildcard x.apps",
            msg("x.apps.example.com.", RecordType::A, Some(false)),
        ),
        (
            "NXDOMAIN",
            msg("nope.example.com.", RecordType::A, Some(false)),
        ),
        (
            "referral sub",
            msg("host.sub.example.com.", RecordType::A, Some(false)),
        ),
        (
            "MX + additional",
            msg("example.com.", RecordType::MX, Some(false)),
        ),
        ("REFUSED", msg("example.org.", RecordType::A, None)),
        (
            "service geo (ECS, GeoIP)",
            msg_ecs("www-gslb.example.com.", RecordType::A, "8.8.8.0", 24),
        ),
        (
            "service nearest (ECS)",
            msg_ecs("www-near.example.com.", RecordType::A, "8.8.8.0", 24),
        ),
        (
            "service geo (source IP)",
            msg("www-gslb.example.com.", RecordType::A, Some(false)),
        ),
    ];
    let mut q = Work::default();
    let mut out = vec![0u8; MAX_MESSAGE];
    println!("{:<24} {:>10} {:>14}", "query", "ns/query", "allocs/query");
    for (label, packet) in &cases {
        for _ in 0..10_000 {
            black_box(respond(
                &snap,
                black_box(packet),
                Peer {
                    transport: Transport::Udp,
                    addr: [192, 0, 2, 1].into(),
                    random: 7,
                },
                &mut q,
                &mut out,
            ));
        }
        let a0 = counting_alloc::allocations();
        let t0 = Instant::now();
        for _ in 0..iters {
            black_box(respond(
                &snap,
                black_box(packet),
                Peer {
                    transport: Transport::Udp,
                    addr: [192, 0, 2, 1].into(),
                    random: 7,
                },
                &mut q,
                &mut out,
            ));
        }
        let ns = t0.elapsed().as_nanos() as f64 / iters as f64;
        let allocs = (counting_alloc::allocations() - a0) as f64 / iters as f64;
        println!("{label:<24} {ns:>10.1} {allocs:>14.3}");
    }
}
