//! Reload without losing a query: UDP queries run without pause while the configuration is
//! reloaded 20 times (weights changed, an endpoint added and removed), and every query gets a
//! correct answer. A broken configuration changes nothing.

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

fn steering(weights: (u32, u32), with_third: bool) -> String {
    let mut t = format!(
        r#"
[[region]]
name = "eu"
location = [50.0, 8.0]

[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "a"
address = "192.0.2.1"
weight = {}
[[pool.endpoint]]
name = "b"
address = "192.0.2.2"
weight = {}
"#,
        weights.0, weights.1
    );
    if with_third {
        t.push_str("[[pool.endpoint]]\nname = \"c\"\naddress = \"192.0.2.3\"\n");
    }
    t.push_str(
        "\n[[service]]\nname = \"svc.example.com.\"\npolicy = \"weighted\"\npools = [\"eu\"]\n",
    );
    t
}

#[test]
fn twenty_reloads_under_continuous_queries_lose_nothing() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &steering((1, 1), false));
    let base = std::fs::read_to_string(&srv.config_path).unwrap();
    // The file is: [dns] ..., then the steering part, then the [[zone]] tables.
    let head = base.split("\n[[region]]").next().unwrap().to_string();
    let zones = base[base.find("\n[[zone]]").unwrap()..].to_string();
    let control = srv.server.as_ref().unwrap().control().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, good) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let querier = {
        let (stop, sent, good, addr) = (
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&good),
            srv.udp,
        );
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = vec![0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut failures = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && i < 200_000 {
                i += 1;
                let (name, rtype) = if i.is_multiple_of(2) {
                    ("svc.example.com.", RecordType::A)
                } else {
                    ("www.example.com.", RecordType::A)
                };
                let q = query(name, rtype, None);
                sock.send_to(&q.to_vec().unwrap(), addr).unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    failures.push(format!("query {i}: no answer"));
                    continue;
                };
                let r = Message::from_vec(&buf[..n]).unwrap();
                let addrs: Vec<Ipv4Addr> = r
                    .answers
                    .iter()
                    .filter_map(|a| match &a.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect();
                let ok = r.metadata.id == q.metadata.id
                    && r.metadata.response_code == ResponseCode::NoError
                    && match name {
                        "svc.example.com." => {
                            addrs.len() == 1 && [1, 2, 3].contains(&addrs[0].octets()[3])
                        }
                        _ => addrs == [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)],
                    };
                if ok {
                    good.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(format!("query {i} {name}: {r:?}"));
                }
            }
            failures
        })
    };

    let mut generations = vec![control.generation()];
    for round in 0..20u32 {
        let with_third = round % 2 == 0;
        let text = head.clone() + &zones + &steering((1 + round % 5, 5 - round % 5), with_third);
        std::fs::write(&srv.config_path, text).unwrap();
        control
            .reload()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        generations.push(control.generation());
        std::thread::sleep(Duration::from_millis(50));
        // The new shape is served: the third endpoint is present exactly when configured.
        let names: Vec<String> = control.snapshot().steering.as_ref().unwrap().model.pools[0]
            .endpoints
            .iter()
            .map(|e| e.name.clone())
            .collect();
        assert_eq!(names.len(), if with_third { 3 } else { 2 });
    }
    // A broken configuration changes nothing.
    let before = control.generation();
    std::fs::write(&srv.config_path, head.clone() + &zones + "[[service]]\nname = \"svc.example.com.\"\npolicy = \"nope\"\npools = [\"missing\"]\n").unwrap();
    let err = control.reload().unwrap_err().to_string();
    assert!(err.contains("policy") && err.contains("missing"), "{err}");
    assert_eq!(control.generation(), before);
    std::thread::sleep(Duration::from_millis(100));

    stop.store(true, Ordering::Relaxed);
    let failures = querier.join().unwrap();
    let (sent, good) = (sent.load(Ordering::Relaxed), good.load(Ordering::Relaxed));
    assert!(
        failures.is_empty(),
        "{} of {sent} queries failed, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert_eq!(sent, good);
    assert!(
        sent > 1000,
        "only {sent} queries were sent during the reloads"
    );
    assert_eq!(
        generations.windows(2).filter(|w| w[1] == w[0] + 1).count(),
        20
    );
    // The weights of the last reload are in force: round 19 → a:5, b:1, no c.
    let mut counts = [0u32; 4];
    for _ in 0..600 {
        let r = srv.udp(&query("svc.example.com.", RecordType::A, None));
        if let RData::A(a) = &r.answers[0].data {
            counts[a.0.octets()[3] as usize] += 1;
        }
    }
    assert_eq!(counts[3], 0, "removed endpoint still answered");
    assert!(
        counts[1] > 4 * counts[2] / 2 && counts[1] > 350,
        "weights 5:1 not in force: {counts:?}"
    );
}

#[test]
fn watched_files_reload_by_themselves() {
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        "[reload]\nwatch = true\ninterval = \"100ms\"\n",
    );
    let control = srv.server.as_ref().unwrap().control().clone();
    let zone_file = srv.dir.path().join("zone0.zone");
    let ask = |name: &str| {
        srv.udp(&query(name, RecordType::A, None))
            .metadata
            .response_code
    };
    assert_eq!(ask("new.example.com."), ResponseCode::NXDomain);

    std::fs::write(
        &zone_file,
        format!("{EXAMPLE_ZONE}new 60 IN A 192.0.2.77\n"),
    )
    .unwrap();
    wait_for(Duration::from_secs(5), "the zone edit picked up", || {
        ask("new.example.com.") == ResponseCode::NoError
    });
    let generation = control.generation();
    assert_eq!(generation, 2);

    // A broken edit is refused: the last good zone keeps serving.
    std::fs::write(
        &zone_file,
        format!("{EXAMPLE_ZONE}broken IN A not-an-address\n"),
    )
    .unwrap();
    wait_for(Duration::from_secs(5), "the broken edit noticed", || {
        control.reload_counts().1 != 0
    });
    assert_eq!(control.generation(), generation);
    assert_eq!(ask("new.example.com."), ResponseCode::NoError);
}

/// UDP workers keep the responses they wrote from prepared data and answer a repeated query
/// from them; a reload must retire every one. This zone has no wildcards or delegations, so its
/// NXDOMAIN is prepared, and kept, too. Every answer carries its own query's ID.
#[test]
fn kept_responses_follow_a_reload() {
    const PLAIN: &str = "$ORIGIN example.org.\n$TTL 300\n\
        @ IN SOA ns1 hostmaster 1 3600 900 604800 300\n@ IN NS ns1\n\
        ns1 IN A 192.0.2.1\nwww IN A 192.0.2.10\n";
    let srv = start(
        &[("example.org.", PLAIN)],
        "[reload]\nwatch = true\ninterval = \"100ms\"\n",
    );
    let ask = |name: &str, edns: Option<u16>| {
        let q = query(name, RecordType::A, edns);
        let r = srv.udp(&q);
        assert_eq!(r.metadata.id, q.metadata.id);
        let addrs: Vec<Ipv4Addr> = r
            .answers
            .iter()
            .filter_map(|rr| match &rr.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        (r.metadata.response_code, addrs)
    };
    let old = (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 10)]);
    let nx = (ResponseCode::NXDomain, vec![]);
    // Enough repeats that both workers answer each question more than once.
    for _ in 0..30 {
        for edns in [None, Some(1232)] {
            assert_eq!(ask("www.example.org.", edns), old);
            assert_eq!(ask("new.example.org.", edns), nx);
        }
    }
    std::fs::write(
        srv.dir.path().join("zone0.zone"),
        PLAIN.replace("192.0.2.10", "192.0.2.11") + "new IN A 192.0.2.77\n",
    )
    .unwrap();
    wait_for(Duration::from_secs(5), "the zone edit picked up", || {
        ask("www.example.org.", None) != old
    });
    let new = (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 11)]);
    let added = (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 77)]);
    for _ in 0..30 {
        for edns in [None, Some(1232)] {
            assert_eq!(ask("www.example.org.", edns), new);
            assert_eq!(ask("new.example.org.", edns), added);
        }
    }
}

/// A zone of `n` A records `h0..h{n-1}` with serial `serial` (and `extra` lines).
fn numbered_zone(origin: &str, n: usize, serial: u32, extra: &str) -> String {
    let mut z = format!(
        "$ORIGIN {origin}\n$TTL 300\n@ SOA ns hostmaster {serial} 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n{extra}"
    );
    for i in 0..n {
        z += &format!(
            "h{i} A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
    }
    z
}

fn served_zone(srv: &TestServer, origin: &str) -> meridian::zone::Zone {
    let snap = srv.server().snapshot();
    snap.catalog
        .zones()
        .iter()
        .find(|z| z.origin == origin)
        .unwrap()
        .clone()
}

#[test]
fn a_reload_keeps_zones_whose_files_did_not_change_and_reads_those_that_did() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "a.zone",
        &numbered_zone("a.test.", 50, 1, "$INCLUDE inc.zone\n"),
    );
    write("inc.zone", "included TXT \"one\"\n");
    write("b.zone", &numbered_zone("b.test.", 50, 1, ""));
    write("c.zone", &numbered_zone("c.test.", 50, 1, ""));
    let head = "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"a.test.\"\nfile = \"a.zone\"\n\
                [[zone]]\norigin = \"b.test.\"\nfile = \"b.zone\"\n[[zone]]\norigin = \"c.test.\"\nfile = \"c.zone\"\n\
                [[region]]\nname = \"eu\"\nlocation = [50.0, 8.0]\n[[pool]]\nname = \"p\"\nregion = \"eu\"\n\
                [[pool.endpoint]]\nname = \"e\"\naddress = \"192.0.2.1\"\n";
    let service = |name: &str| {
        format!("[[service]]\nname = \"{name}\"\npolicy = \"weighted\"\npools = [\"p\"]\n")
    };
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, format!("{head}{}", service("svc.c.test."))).unwrap();
    let srv = start_file(&config);
    let before: Vec<_> = ["a.test.", "b.test.", "c.test."]
        .iter()
        .map(|o| served_zone(&srv, o))
        .collect();
    let txt = |name: &str| -> Vec<String> {
        srv.udp(&query(name, RecordType::TXT, None))
            .answers
            .iter()
            .map(|r| r.data.to_string())
            .collect()
    };
    // Nothing changed: every zone kept as it was, answers the same.
    srv.server().control().reload().unwrap();
    for (o, old) in ["a.test.", "b.test.", "c.test."].iter().zip(&before) {
        assert!(served_zone(&srv, o).shares_data_with(old), "{o} kept");
    }
    // An included file changes: its zone is read again (and answers the change), the others kept.
    std::thread::sleep(Duration::from_millis(20));
    write("inc.zone", "included TXT \"two, longer\"\n");
    // b.test.'s file rewritten with a new record.
    write(
        "b.zone",
        &numbered_zone("b.test.", 50, 2, "new A 192.0.2.99\n"),
    );
    srv.server().control().reload().unwrap();
    assert!(!served_zone(&srv, "a.test.").shares_data_with(&before[0]));
    assert!(!served_zone(&srv, "b.test.").shares_data_with(&before[1]));
    assert!(served_zone(&srv, "c.test.").shares_data_with(&before[2]));
    assert_eq!(txt("included.a.test."), ["two, longer"]);
    let m = srv.udp(&query("new.b.test.", RecordType::A, None));
    assert_eq!(m.answers.len(), 1, "{m:?}");
    // Another service in c.test.: the zone is read again for its new node, and both answer.
    std::fs::write(
        &config,
        format!(
            "{head}{}{}",
            service("svc.c.test."),
            service("other.c.test.")
        ),
    )
    .unwrap();
    srv.server().control().reload().unwrap();
    assert!(!served_zone(&srv, "c.test.").shares_data_with(&before[2]));
    for name in ["svc.c.test.", "other.c.test."] {
        let m = srv.udp(&query(name, RecordType::A, None));
        assert_eq!(m.answers.len(), 1, "{name}: {m:?}");
    }
    let m = srv.udp(&query("h49.c.test.", RecordType::A, None));
    assert_eq!(m.answers.len(), 1, "{m:?}");
}

#[test]
fn reloads_of_a_large_zone_lose_no_query_to_another_zone() {
    const BIG: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.zone");
    std::fs::write(&big, numbered_zone("big.test.", BIG, 1, "")).unwrap();
    std::fs::write(
        dir.path().join("small.zone"),
        numbered_zone("small.test.", 10, 1, ""),
    )
    .unwrap();
    let config = dir.path().join("meridian.toml");
    std::fs::write(
        &config,
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"big.test.\"\nfile = \"big.zone\"\n\
         [[zone]]\norigin = \"small.test.\"\nfile = \"small.zone\"\n",
    )
    .unwrap();
    let srv = start_file(&config);
    let addr = srv.udp;
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let client = {
        let (stop, sent, lost) = (stop.clone(), sent.clone(), lost.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let q = query("h7.small.test.", RecordType::A, None)
                .to_vec()
                .unwrap();
            let mut buf = [0u8; 512];
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                sock.send_to(&q, addr).unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                match sock.recv(&mut buf) {
                    Ok(n)
                        if Message::from_vec(&buf[..n]).is_ok_and(|m| {
                            m.metadata.response_code == ResponseCode::NoError
                                && m.answers.len() == 1
                        }) => {}
                    _ => {
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Three reloads that each change the big zone (so it is read again, beside the served one).
    for serial in 2..5u32 {
        std::fs::write(
            &big,
            numbered_zone(
                "big.test.",
                BIG,
                serial,
                &format!("v{serial} A 192.0.2.{serial}\n"),
            ),
        )
        .unwrap();
        srv.server().control().reload().unwrap();
        let m = srv.udp(&query(&format!("v{serial}.big.test."), RecordType::A, None));
        assert_eq!(m.answers.len(), 1, "{m:?}");
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let (sent, lost) = (sent.load(Ordering::SeqCst), lost.load(Ordering::SeqCst));
    eprintln!(
        "{sent} queries to small.test. during three reloads of a {BIG}-record zone, {lost} lost"
    );
    assert!(
        sent >= 100,
        "only {sent} queries were sent during the reloads"
    );
    assert_eq!(lost, 0);
    let m = srv.udp(&query(
        &format!("h{}.big.test.", BIG - 1),
        RecordType::A,
        None,
    ));
    match &m.answers[0].data {
        RData::A(a) => assert_eq!(a.0, Ipv4Addr::new(10, 1, 134, 159)),
        other => panic!("{other:?}"),
    }
}
