//! Services steered by health and latency measured from real HTTP targets on loopback that the
//! tests start, kill, restart and slow down: failover and failback, graded spill over a few
//! thousand queries, latency ranking that follows the targets' delays, weighted draws with a
//! standby, and the all-down fallbacks. Answers are asked over real UDP (and TCP).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::steering::*;
use crate::support::target::*;
use crate::support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use meridian::health::state::Serving;

/// Two regions 1,260 km apart (London, Madrid), no database: every client is in r1.
/// A `[[pool.endpoint]]` probed on 127.0.0.1 by `check` (none if empty), with `more` fields.
fn endpoint(name: &str, address: &str, check: &str, more: &str) -> String {
    let checks = if check.is_empty() {
        String::new()
    } else {
        format!("check_address = \"127.0.0.1\"\nchecks = [\"{check}\"]\n")
    };
    format!("[[pool.endpoint]]\nname = \"{name}\"\naddress = \"{address}\"\n{checks}{more}\n")
}

fn serving(srv: &TestServer, name: &str) -> Option<Serving> {
    srv.server.as_ref().unwrap().monitor().serving(name)
}

/// Share of `n` answers that were exactly `addr`.
fn share(counts: &HashMap<String, usize>, addr: &str) -> f64 {
    let n: usize = counts.values().sum();
    *counts.get(addr).unwrap_or(&0) as f64 / n as f64
}

#[test]
fn failover_moves_to_backup_with_failover_ttl_and_fails_back() {
    let targets = Targets::new();
    let mut p = targets.start(0);
    let b = targets.start(0);
    let extra = format!(
        "{}{}{REGIONS}\
         [[pool]]\nname = \"primary\"\nregion = \"r1\"\n{}\
         [[pool]]\nname = \"backup\"\nregion = \"r2\"\n{}\
         [[service]]\nname = \"fo.example.com.\"\npolicy = \"failover\"\npools = [\"primary\", \"backup\"]\n\
         ttl = 60\nfailover_ttl = 5\n",
        http_check("p", p.port, 2, 1),
        http_check("b", b.port, 1, 1),
        endpoint("p1", "192.0.2.1", "p", ""),
        endpoint("b1", "198.51.100.1", "b", ""),
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    let mut c = Client::new(&srv);
    let fo = "fo.example.com.";
    let clients: [Ecs; 3] = [Some(("81.2.69.142", 32)), Some(("2001:218::1", 56)), None];
    // The answer does not depend on the client: the same for all, ECS scope 0.
    let expect = |c: &mut Client, addr: &str, t: u32| {
        for ecs in clients {
            for m in [c.udp(fo, RecordType::A, ecs), c.tcp(fo, RecordType::A, ecs)] {
                assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m}");
                assert_eq!((one(&m), ttl(&m)), (addr.to_string(), t), "{ecs:?}");
                if ecs.is_some() {
                    assert_eq!(scope(&m), 0, "{ecs:?}");
                }
            }
        }
    };
    expect(&mut c, "192.0.2.1", 60);

    targets.kill(&mut p);
    let took = wait_for(Duration::from_secs(3), "failover to backup", || {
        one(&c.udp(fo, RecordType::A, None)) == "198.51.100.1"
    });
    eprintln!("failover after {took:?}");
    assert_eq!(serving(&srv, "p1"), Some(Serving::Down));
    expect(&mut c, "198.51.100.1", 5);

    targets.restart(&mut p);
    let took = wait_for(Duration::from_secs(3), "failback to primary", || {
        one(&c.udp(fo, RecordType::A, None)) == "192.0.2.1"
    });
    eprintln!("failback after {took:?}");
    expect(&mut c, "192.0.2.1", 60);
}

#[test]
fn spill_keeps_healthy_fraction_times_overprovisioning_in_the_degraded_pool() {
    let targets = Targets::new();
    let mut ts: Vec<Target> = (0..10).map(|_| targets.start(0)).collect();
    let mut extra: String = ts
        .iter()
        .enumerate()
        .map(|(i, t)| http_check(&format!("a{i}"), t.port, 1, 1))
        .collect();
    extra.push_str(REGIONS);
    extra.push_str("[[pool]]\nname = \"a\"\nregion = \"r1\"\n");
    for i in 0..10 {
        extra.push_str(&endpoint(
            &format!("a{i}"),
            &format!("192.0.2.{}", 10 + i),
            &format!("a{i}"),
            "",
        ));
    }
    extra.push_str("[[pool]]\nname = \"b\"\nregion = \"r2\"\n");
    extra.push_str(&endpoint("b1", "198.51.100.1", "", ""));
    extra.push_str("[[service]]\nname = \"spill.example.com.\"\npolicy = \"failover\"\npools = [\"a\", \"b\"]\nfailover_ttl = 5\n");
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    let mut c = Client::new(&srv);
    let name = "spill.example.com.";

    // Healthy: pool a takes everything, spread over its ten endpoints.
    let counts = c.count(500, name, RecordType::A, None);
    assert_eq!(share(&counts, "198.51.100.1"), 0.0, "{counts:?}");
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert_eq!(ttl(&c.udp(name, RecordType::A, None)), 60);

    // Four of ten down: h = 0.6, a keeps min(1, 0.6 × 1.4) = 0.84, b takes 0.16.
    for t in &mut ts[..4] {
        targets.kill(t);
    }
    wait_for(Duration::from_secs(3), "four endpoints down", || {
        (0..4).all(|i| serving(&srv, &format!("a{i}")) == Some(Serving::Down))
    });
    assert!((4..10).all(|i| serving(&srv, &format!("a{i}")) == Some(Serving::Up)));
    std::thread::sleep(Duration::from_millis(300)); // the last change's debounced rebuild
    let n = 3000;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..n {
        let m = c.udp(name, RecordType::A, None);
        assert_eq!(ttl(&m), 5, "degraded: failover_ttl");
        *counts.entry(one(&m)).or_insert(0) += 1;
    }
    let b = share(&counts, "198.51.100.1");
    eprintln!("spill share of b: {b:.4} over {n} queries; {counts:?}");
    assert!((b - 0.16).abs() <= 0.03, "b got {b:.4}, want 0.16 ± 0.03");
    for i in 0..4 {
        assert!(
            !counts.contains_key(&format!("192.0.2.{}", 10 + i)),
            "withdrawn a{i} answered: {counts:?}"
        );
    }
    assert_eq!(counts.len(), 7, "six healthy a endpoints and b: {counts:?}");

    // Back up: everything returns to a, with the normal TTL.
    for t in &mut ts[..4] {
        targets.restart(t);
    }
    wait_for(Duration::from_secs(3), "back to normal TTL", || {
        ttl(&c.udp(name, RecordType::A, None)) == 60
    });
    let counts = c.count(300, name, RecordType::A, None);
    assert_eq!(share(&counts, "198.51.100.1"), 0.0, "{counts:?}");
}

#[test]
fn latency_policy_follows_measured_round_trips_and_switches_when_they_swap() {
    let targets = Targets::new();
    // `near` is in the node's own region but slow; `far` is 1,260 km away but fast.
    let near = targets.start(60);
    let far = targets.start(5);
    let check = |name: &str, port: u16| {
        format!(
            "[checks.{name}]\nkind = \"http\"\nport = {port}\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 3\njitter = \"10ms\"\n"
        )
    };
    let extra = format!(
        r#"{}{}
[node]
region = "r1"

[geo]
database = "{db}"
default_region = "r1"

[[region]]
name = "r1"
location = [51.5, -0.1]
continents = ["EU"]
[[region]]
name = "r2"
location = [40.4, -3.7]
[[region]]
name = "r3"
location = [47.6, -122.3]
continents = ["NA"]

[[pool]]
name = "near"
region = "r1"
{}
[[pool]]
name = "far"
region = "r2"
{}
[[service]]
name = "lat.example.com."
policy = "latency"
pools = ["near", "far"]
"#,
        check("near", near.port),
        check("far", far.port),
        endpoint("n1", "192.0.2.1", "near", ""),
        endpoint("f1", "198.51.100.1", "far", ""),
        db = city_db()
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let mut c = Client::new(&srv);
    let name = "lat.example.com.";
    // r1 (GB) is this node's region, a vantage: measured RTT decides. r3 (US) is not: distance
    // from r3 plus each pool's excess over its own distance model measured from r1.
    let (gb, us) = (Some(("81.2.69.142", 32)), Some(("216.160.83.56", 32)));
    let answer = |c: &mut Client, ecs: Ecs| one(&c.udp(name, RecordType::A, ecs));

    // Distance alone would pick `near` for both; once measured (60 ms vs 5 ms) `far` wins. Tables
    // are rebuilt on health changes and at least every 5 s.
    let took = wait_for(Duration::from_secs(8), "far wins once measured", || {
        answer(&mut c, gb) == "198.51.100.1" && answer(&mut c, us) == "198.51.100.1"
    });
    eprintln!("latency: far leads after {took:?}");
    // Stable, not flapping, with the normal TTL. Every region now ranks `far` first (a 55 ms
    // penalty outweighs any difference in distance to two pools 1,260 km apart), so the answer
    // no longer depends on the client: scope 0.
    for _ in 0..50 {
        for ecs in [gb, us] {
            let m = c.udp(name, RecordType::A, ecs);
            assert_eq!(
                (one(&m), ttl(&m), scope(&m)),
                ("198.51.100.1".to_string(), 60, 0)
            );
        }
    }

    // Swap the delays: `near` now answers in 5 ms and `far` in 60 ms. Once the window's median
    // moves and a rebuild runs, both clients switch (the 55 ms gap is beyond the 20 % / 10 ms
    // hysteresis).
    near.delay_ms.store(5, Ordering::SeqCst);
    far.delay_ms.store(60, Ordering::SeqCst);
    let took = wait_for(Duration::from_secs(25), "near wins after the swap", || {
        answer(&mut c, gb) == "192.0.2.1" && answer(&mut c, us) == "192.0.2.1"
    });
    eprintln!("latency: near leads {took:?} after the swap");
    for _ in 0..50 {
        assert_eq!(answer(&mut c, gb), "192.0.2.1");
        assert_eq!(answer(&mut c, us), "192.0.2.1");
    }
}

#[test]
fn weighted_draws_by_weight_and_standby_serves_only_when_the_rest_is_down() {
    let targets = Targets::new();
    let mut w1 = targets.start(0);
    let mut w2 = targets.start(0);
    let extra = format!(
        "{}{}{REGIONS}[[pool]]\nname = \"main\"\nregion = \"r1\"\n{}{}{}\
         [[service]]\nname = \"w.example.com.\"\npolicy = \"weighted\"\npools = [\"main\"]\nfailover_ttl = 5\n",
        http_check("w1", w1.port, 1, 1),
        http_check("w2", w2.port, 1, 1),
        endpoint("w1", "192.0.2.1", "w1", "weight = 3"),
        endpoint("w2", "192.0.2.2", "w2", "weight = 1"),
        endpoint("s1", "192.0.2.9", "", "weight = 0"),
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    let mut c = Client::new(&srv);
    let name = "w.example.com.";

    let counts = c.count(2000, name, RecordType::A, None);
    let s = share(&counts, "192.0.2.1");
    eprintln!("weighted: w1 share {s:.4}; {counts:?}");
    assert!((s - 0.75).abs() <= 0.04, "w1 got {s:.4}, want 0.75 ± 0.04");
    assert!(
        !counts.contains_key("192.0.2.9"),
        "standby answered while others serve: {counts:?}"
    );
    assert_eq!(ttl(&c.udp(name, RecordType::A, None)), 60);

    // Both weighted endpoints down: the standby alone, with the failover TTL.
    targets.kill(&mut w1);
    targets.kill(&mut w2);
    wait_for(Duration::from_secs(3), "standby serves", || {
        one(&c.udp(name, RecordType::A, None)) == "192.0.2.9"
    });
    for _ in 0..100 {
        let m = c.udp(name, RecordType::A, None);
        assert_eq!((one(&m), ttl(&m)), ("192.0.2.9".to_string(), 5));
    }
    // One back: it alone, the standby is idle again.
    targets.restart(&mut w2);
    wait_for(Duration::from_secs(3), "w2 back", || {
        one(&c.udp(name, RecordType::A, None)) == "192.0.2.2"
    });
    let counts = c.count(200, name, RecordType::A, None);
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        ["192.0.2.2"],
        "{counts:?}"
    );
}

#[test]
fn all_down_answers_the_configured_fallback_never_nothing() {
    let targets = Targets::new();
    let mut x = targets.start(0);
    let mut y = targets.start(0);
    let svc = |name: &str, more: &str| {
        format!(
            "[[service]]\nname = \"{name}\"\npolicy = \"failover\"\npools = [\"p\"]\nfailover_ttl = 5\n{more}\n"
        )
    };
    let extra = format!(
        "{}{}{REGIONS}[[pool]]\nname = \"p\"\nregion = \"r1\"\n{}{}{}{}{}",
        http_check("x", x.port, 1, 1),
        http_check("y", y.port, 1, 1),
        endpoint("e1", "192.0.2.1", "x", ""),
        endpoint("e2", "192.0.2.2", "y", ""),
        svc(
            "addrs.example.com.",
            "fallback = { addresses = [\"203.0.113.7\", \"2001:db8::7\"] }"
        ),
        svc("all.example.com.", "answers = 4"),
        svc(
            "cname.example.com.",
            "fallback = { cname = \"backup.example.net.\" }"
        ),
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    let mut c = Client::new(&srv);
    let endpoints = ["192.0.2.1", "192.0.2.2"];
    for name in ["addrs.example.com.", "cname.example.com."] {
        let m = c.udp(name, RecordType::A, None);
        assert!(
            endpoints.contains(&one(&m).as_str()) && ttl(&m) == 60,
            "{m}"
        );
    }
    assert_eq!(
        rdata(&c.udp("all.example.com.", RecordType::A, None)),
        endpoints
    );

    targets.kill(&mut x);
    targets.kill(&mut y);
    wait_for(Duration::from_secs(3), "both down", || {
        serving(&srv, "e1") == Some(Serving::Down) && serving(&srv, "e2") == Some(Serving::Down)
    });
    wait_for(Duration::from_secs(2), "fallback answers", || {
        one(&c.udp("addrs.example.com.", RecordType::A, None)) == "203.0.113.7"
    });
    for tcp in [false, true] {
        let mut ask = |name: &str, t: RecordType| {
            if tcp {
                c.tcp(name, t, None)
            } else {
                c.udp(name, t, None)
            }
        };
        let cases: [(&str, RecordType, Vec<&str>); 6] = [
            ("addrs.example.com.", RecordType::A, vec!["203.0.113.7"]),
            ("addrs.example.com.", RecordType::AAAA, vec!["2001:db8::7"]),
            ("all.example.com.", RecordType::A, endpoints.to_vec()), // fail open: every endpoint
            (
                "cname.example.com.",
                RecordType::A,
                vec!["backup.example.net."],
            ),
            (
                "cname.example.com.",
                RecordType::AAAA,
                vec!["backup.example.net."],
            ),
            ("all.example.com.", RecordType::A, endpoints.to_vec()),
        ];
        for (name, t, want) in cases {
            let m = ask(name, t);
            let ctx = format!("{name} {t} tcp={tcp}");
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{ctx}: {m}"
            );
            assert!(m.metadata.authoritative, "{ctx}");
            assert_eq!(rdata(&m), want, "{ctx}");
            assert_eq!(ttl(&m), 5, "{ctx}");
        }
        let m = ask("cname.example.com.", RecordType::A);
        assert!(matches!(m.answers[0].data, RData::CNAME(_)), "{m}");
    }

    // One endpoint back: answers come from it again.
    targets.restart(&mut x);
    wait_for(Duration::from_secs(3), "e1 serves", || {
        one(&c.udp("addrs.example.com.", RecordType::A, None)) == "192.0.2.1"
    });
    assert_eq!(
        one(&c.udp("cname.example.com.", RecordType::A, None)),
        "192.0.2.1"
    );
    assert_eq!(
        rdata(&c.udp("all.example.com.", RecordType::A, None)),
        ["192.0.2.1"]
    );
}

/// A what-if (`meridian simulate --down REGION`) says where each client network goes when a
/// region's pools fail; killing those pools' real targets makes the server answer exactly so.
#[test]
fn a_what_if_agrees_with_the_server_when_a_region_really_fails() {
    let targets = Targets::new();
    // (pool, region, location, answered address)
    let pools = [
        ("dublin", "eu", "[53.3, -6.3]", "192.0.2.1"),
        ("frankfurt", "eu", "[50.1, 8.7]", "192.0.2.2"),
        ("virginia", "na", "[39.0, -77.5]", "192.0.2.3"),
        ("oregon", "na", "[45.6, -121.2]", "192.0.2.4"),
        ("tokyo", "as", "[35.7, 139.7]", "192.0.2.5"),
    ];
    let mut live: Vec<Target> = pools.iter().map(|_| targets.start(0)).collect();
    let mut extra = format!(
        "[geo]\ndatabase = \"{}\"\ndefault_region = \"eu\"\n\
         [[region]]\nname = \"eu\"\nlocation = [50.0, 10.0]\ncontinents = [\"EU\", \"AF\"]\n\
         [[region]]\nname = \"na\"\nlocation = [39.8, -98.6]\ncontinents = [\"NA\", \"SA\"]\n\
         [[region]]\nname = \"as\"\nlocation = [30.0, 100.0]\ncontinents = [\"AS\", \"OC\"]\n",
        city_db()
    );
    for (i, (name, region, location, address)) in pools.iter().enumerate() {
        extra += &http_check(name, live[i].port, 1, 1);
        extra +=
            &format!("[[pool]]\nname = \"{name}\"\nregion = \"{region}\"\nlocation = {location}\n");
        extra += &endpoint(&format!("{name}-1"), address, name, "");
    }
    let names: Vec<String> = pools.iter().map(|p| format!("\"{}\"", p.0)).collect();
    extra += &format!(
        "[[service]]\nname = \"near.example.com.\"\npolicy = \"nearest\"\npools = [{}]\n",
        names.join(", ")
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());

    // London, Sweden, the US west coast (Milton, WA), Japan: networks of the City test database.
    let networks: [(&'static str, u8); 4] = [
        ("81.2.69.142", 31),
        ("89.160.20.112", 28),
        ("216.160.83.56", 29),
        ("2001:218::", 32),
    ];
    let csv: String = networks
        .iter()
        .map(|(a, p)| format!("{a}/{p},1\n"))
        .collect();
    let snapshot = srv.server().snapshot();
    let report = meridian::simulate::report(
        snapshot.steering.as_deref().unwrap(),
        &Default::default(),
        None,
        &meridian::simulate::Request {
            service: "near.example.com.".into(),
            down: vec!["eu".into()],
        },
        &meridian::simulate::parse_networks(&csv).unwrap(),
    )
    .unwrap();
    let what_if = report.what_if.as_ref().unwrap();
    // Europe's networks moved; Milton and Japan did not.
    assert_eq!(what_if.moved.len(), 2, "{:#?}", what_if.moved);
    let address_of = |pool: &str| pools.iter().find(|p| p.0 == pool).unwrap().3;

    for i in [0, 1] {
        targets.kill(&mut live[i]);
    }
    let mut c = Client::new(&srv);
    wait_for(Duration::from_secs(3), "Europe withdrawn", || {
        [serving(&srv, "dublin-1"), serving(&srv, "frankfurt-1")] == [Some(Serving::Down); 2]
            && !["192.0.2.1", "192.0.2.2"].contains(
                &one(&c.udp("near.example.com.", RecordType::A, Some(networks[0]))).as_str(),
            )
    });
    for (n, &ecs) in report.networks.iter().zip(&networks) {
        // 200 draws: a share's standard deviation is at most 0.035, so 0.15 is over 4 of them
        // (the shares are split by the capacity bound, and 40 draws failed about once in 50).
        let counts = c.count(200, "near.example.com.", RecordType::A, Some(ecs));
        for p in &n.pools {
            let got = share(&counts, address_of(&p.pool));
            assert!(
                (got - p.share).abs() <= 0.15,
                "{ecs:?}: {} simulated {:.2}, served {got:.2} ({counts:?})",
                p.pool,
                p.share
            );
        }
        let simulated: usize = n
            .pools
            .iter()
            .filter(|p| p.share > 0.0)
            .map(|p| counts.get(address_of(&p.pool)).copied().unwrap_or(0))
            .sum();
        assert_eq!(
            simulated, 200,
            "{ecs:?}: served a pool the what-if gives nothing: {counts:?}"
        );
    }
}

/// The capacity world: Dublin and Frankfurt (eu), Virginia and Oregon (na), Tokyo (as), all
/// probed; client demand from a CSV over networks of the City test database: London 20,
/// Sweden 20, Milton (WA) 40, Japan 20. Virginia is nobody's nearest pool and is sized at
/// `max_share = 0.25`.
struct CapacityWorld {
    dir: tempfile::TempDir,
    pools: [(&'static str, &'static str, &'static str, &'static str); 5],
    networks: [(&'static str, u8, f64); 4],
}

impl CapacityWorld {
    fn new() -> CapacityWorld {
        let w = CapacityWorld {
            dir: tempfile::tempdir().unwrap(),
            pools: [
                ("dublin", "eu", "[53.3, -6.3]", "192.0.2.1"),
                ("frankfurt", "eu", "[50.1, 8.7]", "192.0.2.2"),
                ("virginia", "na", "[39.0, -77.5]", "192.0.2.3"),
                ("oregon", "na", "[45.6, -121.2]", "192.0.2.4"),
                ("tokyo", "as", "[35.7, 139.7]", "192.0.2.5"),
            ],
            networks: [
                ("81.2.69.142", 31, 20.0),
                ("89.160.20.112", 28, 20.0),
                ("216.160.83.56", 29, 40.0),
                ("2001:218::", 32, 20.0),
            ],
        };
        std::fs::write(w.demand_path(), w.csv()).unwrap();
        w
    }

    fn demand_path(&self) -> std::path::PathBuf {
        self.dir.path().join("demand.csv")
    }

    fn csv(&self) -> String {
        self.networks
            .iter()
            .map(|(a, p, w)| format!("{a}/{p},{w}\n"))
            .collect()
    }

    /// The configuration, each pool probed at `ports` (none: not probed), with `spill`.
    fn config(&self, ports: Option<&[u16]>, spill: &str) -> String {
        let mut t = format!(
            "[geo]\ndatabase = \"{}\"\ndefault_region = \"eu\"\ndemand = \"{}\"\n\
             [[region]]\nname = \"eu\"\nlocation = [50.0, 10.0]\ncontinents = [\"EU\", \"AF\"]\n\
             [[region]]\nname = \"na\"\nlocation = [39.8, -98.6]\ncontinents = [\"NA\", \"SA\"]\n\
             [[region]]\nname = \"as\"\nlocation = [30.0, 100.0]\ncontinents = [\"AS\", \"OC\"]\n",
            city_db(),
            self.demand_path().display()
        );
        for (i, (name, region, location, address)) in self.pools.iter().enumerate() {
            let check = match ports {
                Some(ports) => {
                    t += &http_check(name, ports[i], 1, 1);
                    *name
                }
                None => "",
            };
            let sized = if *name == "virginia" {
                "max_share = 0.25\n"
            } else {
                ""
            };
            t += &format!(
                "[[pool]]\nname = \"{name}\"\nregion = \"{region}\"\nlocation = {location}\n{sized}"
            );
            t += &endpoint(&format!("{name}-1"), address, check, "");
        }
        let names: Vec<String> = self.pools.iter().map(|p| format!("\"{}\"", p.0)).collect();
        t + &format!(
            "[[service]]\nname = \"near.example.com.\"\npolicy = \"nearest\"\npools = [{}]\nspill = \"{spill}\"\n",
            names.join(", ")
        )
    }

    fn address_of(&self, pool: &str) -> &'static str {
        self.pools.iter().find(|p| p.0 == pool).unwrap().3
    }

    /// `simulate` with Europe down, on this world's configuration with `spill`.
    fn what_if(&self, spill: &str) -> meridian::simulate::Report {
        let path = self.dir.path().join(format!("{spill}.toml"));
        let zone = self.dir.path().join("example.com.zone");
        std::fs::write(&zone, EXAMPLE_ZONE).unwrap();
        let text = format!(
            "[[zone]]\norigin = \"example.com.\"\nfile = \"{}\"\n{}",
            zone.display(),
            self.config(None, spill)
        );
        std::fs::write(&path, text).unwrap();
        let (_, snap) = meridian::snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
        meridian::simulate::report(
            snap.steering.as_deref().unwrap(),
            &Default::default(),
            None,
            &meridian::simulate::Request {
                service: "near.example.com.".into(),
                down: vec!["eu".into()],
            },
            &meridian::simulate::parse_networks(&self.csv()).unwrap(),
        )
        .unwrap()
    }
}

#[test]
fn a_lost_region_spills_to_the_next_pools_only_as_far_as_they_have_room() {
    let world = CapacityWorld::new();

    // Unbounded, every European network goes to its next-nearest pool, Virginia: 40% of the
    // demand on a pool sized for 25%.
    let unbounded = world.what_if("unbounded");
    let w = unbounded.what_if.as_ref().unwrap();
    let virginia = w.pools.iter().find(|p| p.pool == "virginia").unwrap();
    assert!(
        (virginia.what_if_share - 0.4).abs() < 1e-9 && virginia.over_capacity,
        "{:#?}",
        w.pools
    );

    // Bounded: Virginia fills to its 25%, the rest of Europe's traffic goes on to the pools
    // after it, and no pool is pushed past its budget.
    let report = world.what_if("bounded");
    let w = report.what_if.as_ref().unwrap();
    for p in &w.pools {
        assert!(!p.over_capacity, "{}: {:#?}", p.pool, w.pools);
        let (load, share) = (p.load.unwrap(), p.what_if_share);
        // The simulated networks are the demand: the two views of load agree.
        assert!((load - share).abs() < 1e-9, "{}: {load} vs {share}", p.pool);
        if let Some(b) = p.budget {
            assert!(load <= b + 1e-9, "{}: {load} > {b}", p.pool);
        }
    }
    let virginia = w.pools.iter().find(|p| p.pool == "virginia").unwrap();
    assert!(
        (virginia.what_if_share - 0.25).abs() < 1e-9,
        "{:#?}",
        w.pools
    );
    assert_eq!(w.moved.len(), 2, "{:#?}", w.moved);
    for m in &w.moved {
        assert!(m.to.len() >= 2, "Europe's networks spread: {:#?}", m.to);
        assert!(
            m.to.iter()
                .all(|s| !["dublin", "frankfurt"].contains(&s.pool.as_str())),
            "{:#?}",
            m.to
        );
    }

    // The server, with the same pools really failing, answers as the what-if said.
    let targets = Targets::new();
    let mut live: Vec<Target> = world.pools.iter().map(|_| targets.start(0)).collect();
    let ports: Vec<u16> = live.iter().map(|t| t.port).collect();
    let srv = start(
        &[("example.com.", EXAMPLE_ZONE)],
        &world.config(Some(&ports), "bounded"),
    );
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdicts", || monitor.ready());
    for i in [0, 1] {
        targets.kill(&mut live[i]);
    }
    let mut c = Client::new(&srv);
    let london = Some((world.networks[0].0, world.networks[0].1));
    wait_for(Duration::from_secs(3), "Europe withdrawn", || {
        [serving(&srv, "dublin-1"), serving(&srv, "frankfurt-1")] == [Some(Serving::Down); 2]
            && !["192.0.2.1", "192.0.2.2"]
                .contains(&one(&c.udp("near.example.com.", RecordType::A, london)).as_str())
    });
    const ASKS: usize = 300;
    let mut served_load: HashMap<String, f64> = HashMap::new();
    for (n, &(addr, prefix, weight)) in report.networks.iter().zip(&world.networks) {
        let counts = c.count(
            ASKS,
            "near.example.com.",
            RecordType::A,
            Some((addr, prefix)),
        );
        for (pool, ..) in &world.pools {
            let got = share(&counts, world.address_of(pool));
            let want = n
                .pools
                .iter()
                .find(|p| p.pool == *pool)
                .map_or(0.0, |p| p.share);
            // Binomial: 300 draws, at most 0.029 standard deviation; 0.1 is over 3.
            assert!(
                (got - want).abs() <= 0.1,
                "{addr}/{prefix}: {pool} simulated {want:.2}, served {got:.2} ({counts:?})"
            );
            *served_load.entry(pool.to_string()).or_default() += weight / 100.0 * got;
        }
    }
    // Virginia's load as served stays near its 25% (sampling aside).
    assert!(
        served_load["virginia"] <= 0.25 + 0.05,
        "virginia served {:.3} of the demand",
        served_load["virginia"]
    );

    // `explain` for London says why: spill alone would send it all to Virginia, which is full.
    let report = meridian::explain::report(
        &srv.server().snapshot(),
        &meridian::explain::Request {
            name: "near.example.com.".into(),
            client: world.networks[0].0.parse().unwrap(),
            qtype: RecordType::A,
            ecs_prefix: Some(world.networks[0].1),
            random: 1,
        },
    )
    .unwrap();
    let service = report.service.unwrap();
    let virginia = service
        .candidates
        .iter()
        .find(|c| c.pool == "virginia")
        .unwrap();
    assert!(
        (virginia.asked - 1.0).abs() < 1e-9 && virginia.share < 0.9,
        "{virginia:?}"
    );
    let load = service
        .capacity
        .iter()
        .find(|c| c.pool == "virginia")
        .unwrap();
    assert!(
        (load.load - 0.25).abs() < 1e-9 && load.budget == Some(0.25),
        "{:?}",
        service.capacity
    );
    let text = report_text(
        &srv.server().snapshot(),
        world.networks[0].0,
        world.networks[0].1,
    );
    assert!(text.contains("bounded by capacity"), "{text}");
    assert!(text.contains("virginia 25.0%/25.0%"), "{text}");
}

fn report_text(snap: &meridian::snapshot::Snapshot, client: &str, prefix: u8) -> String {
    meridian::explain::explain(
        snap,
        &meridian::explain::Request {
            name: "near.example.com.".into(),
            client: client.parse().unwrap(),
            qtype: RecordType::A,
            ecs_prefix: Some(prefix),
            random: 1,
        },
    )
    .unwrap()
}
