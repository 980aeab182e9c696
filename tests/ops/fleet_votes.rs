//! A fleet of three real instances on loopback (regions eu, us, ap), each pulling the other two:
//! health by quorum (an endpoint one vantage cannot reach stays in every instance's answers; one
//! that all lose is withdrawn by all; with no fresh peer the local verdict decides again), latency
//! by the client's vantage (a pool slow only from ap is avoided for ap's clients by every
//! instance), overrides that reach every instance, and the same answers everywhere (equal
//! decision-table fingerprints).
//!
//! Each instance's configuration differs only in `[node]` and where its checks probe: that is how
//! one vantage's trouble is made on one host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use meridian::health::state::OverrideKind;

use crate::fleet_kit::*;
use crate::support::steering::*;
use crate::support::target::{Target, Targets};
use crate::support::*;

/// An HTTP check on `port` (delay-tolerant: 250 ms timeout, every 300 ms).
fn check(name: &str, port: u16) -> String {
    format!(
        "[checks.{name}]\nkind = \"http\"\nport = {port}\ninterval = \"300ms\"\ntimeout = \"250ms\"\n\
         rise = 1\nfall = 1\njitter = \"10ms\"\n"
    )
}

/// Where one instance's checks probe.
struct Probes {
    /// web-1 (pool "shared"): its target, or a dead port for the instance that cannot reach it.
    shared: u16,
    /// web-2 (pool "lost"), web-3 (pool "backup").
    lost: u16,
    backup: u16,
    /// tyo-1 (pool "tokyo", latency service) and sin-1 (pool "singapore").
    tokyo: u16,
    singapore: u16,
}

fn write_config(dir: &Path, node: usize, admins: &[u16; 3], probes: &Probes) -> PathBuf {
    std::fs::write(dir.join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let (name, region) = NODES[node];
    let peers: Vec<String> = (0..3)
        .filter(|&i| i != node)
        .map(|i| format!("\"http://127.0.0.1:{}\"", admins[i]))
        .collect();
    let endpoint = |pool: &str, region: &str, location: &str, ep: &str, addr: &str| {
        format!(
            "[[pool]]\nname = \"{pool}\"\nregion = \"{region}\"\nlocation = {location}\nchecks = [\"{pool}\"]\n\
             [[pool.endpoint]]\nname = \"{ep}\"\naddress = \"{addr}\"\ncheck_address = \"127.0.0.1\"\n"
        )
    };
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\
         [node]\nname = \"{name}\"\nregion = \"{region}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [fleet]\npeers = [{peers}]\ninterval = \"100ms\"\nmax_age = \"600ms\"\n\
         [geo]\ndatabase = \"{db}\"\ndefault_region = \"eu\"\n\
         [[region]]\nname = \"eu\"\nlocation = [51.5, -0.1]\ncontinents = [\"EU\", \"AF\"]\n\
         [[region]]\nname = \"us\"\nlocation = [47.6, -122.3]\ncontinents = [\"NA\", \"SA\"]\n\
         [[region]]\nname = \"ap\"\nlocation = [35.7, 139.7]\ncontinents = [\"AS\", \"OC\"]\n\
         {}{}{}{}{}{}{}{}{}{}\
         [[service]]\nname = \"fo.example.com.\"\npolicy = \"failover\"\npools = [\"shared\", \"backup\"]\n\
         [[service]]\nname = \"lost.example.com.\"\npolicy = \"failover\"\npools = [\"lost\", \"backup\"]\n\
         [[service]]\nname = \"lat.example.com.\"\npolicy = \"latency\"\npools = [\"tokyo\", \"singapore\"]\n",
        check("shared", probes.shared),
        check("lost", probes.lost),
        check("backup", probes.backup),
        check("tokyo", probes.tokyo),
        check("singapore", probes.singapore),
        endpoint("shared", "eu", "[51.5, -0.1]", "web-1", "192.0.2.1"),
        endpoint("lost", "eu", "[51.5, -0.1]", "web-2", "192.0.2.2"),
        endpoint("backup", "us", "[47.6, -122.3]", "web-3", "192.0.2.3"),
        endpoint("tokyo", "ap", "[35.7, 139.7]", "tyo-1", "203.0.113.1"),
        endpoint("singapore", "ap", "[1.35, 103.8]", "sin-1", "203.0.113.2"),
        admin = admins[node],
        peers = peers.join(", "),
        db = city_db(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The one address of `name`'s answer from `srv`, for a client at `ecs`.
fn answer(srv: &TestServer, name: &str, ecs: Ecs) -> String {
    one(&Client::new(srv).udp(name, RecordType::A, ecs))
}

const LONDON: Ecs = Some(("81.2.69.142", 31));
const JAPAN: Ecs = Some(("2001:218::", 32));

#[test]
fn three_instances_vote_on_health_rank_latency_by_the_clients_vantage_and_agree() {
    let targets = Targets::new();
    let shared = targets.start(0);
    let mut lost = targets.start(0);
    let backup = targets.start(0);
    let fast = targets.start(0);
    // Tokyo's pool is 150 ms slower seen from ap (a congested path there), fine from eu and us.
    let slow: Target = targets.start(150);
    let dead = free_port();
    let admins = [free_port(), free_port(), free_port()];
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..3)
        .map(|node| {
            let probes = Probes {
                // eu-1 cannot reach web-1 (its probes go to a dead port); us-1 and ap-1 can.
                shared: if node == 0 { dead } else { shared.port },
                lost: lost.port,
                backup: backup.port,
                tokyo: if node == 2 { slow.port } else { fast.port },
                singapore: fast.port,
            };
            write_config(dir.path(), node, &admins, &probes)
        })
        .collect();
    let mut fleet: Vec<Option<TestServer>> = paths.iter().map(|p| Some(start_file(p))).collect();
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "both peers fresh", || fresh_peers(s) == 2);
        wait_for(LIMIT, "first verdicts", || s.server().monitor().ready());
    }
    let eu = fleet[0].as_ref().unwrap();
    assert_eq!(
        eu.server().monitor().serving("web-1"),
        Some(meridian::health::state::Serving::Down),
        "eu-1's own probes cannot reach web-1"
    );

    // web-1: one vantage of three says down: every instance keeps answering it.
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "web-1 answered by quorum", || {
            answer(s, "fo.example.com.", LONDON) == "192.0.2.1"
        });
        for _ in 0..20 {
            assert_eq!(answer(s, "fo.example.com.", LONDON), "192.0.2.1");
        }
    }
    let status = eu.server().fleet().status();
    assert_eq!(status.len(), 2, "{status:?}");

    // web-2's target dies: all three vantages say down, all three withdraw it, within the
    // detection time (one failed probe, 100 ms apart) plus a pull interval or two.
    targets.kill(&mut lost);
    let started = std::time::Instant::now();
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "web-2 withdrawn everywhere", || {
            answer(s, "lost.example.com.", LONDON) == "192.0.2.3"
        });
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "withdrawn by all in {took:?}"
    );

    // Latency: ap's clients are ranked with ap's measurements by every instance (Tokyo is slow
    // from there: Singapore), Europe's with eu's (Tokyo, the nearer, is fine from there).
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "ap's clients avoid Tokyo by ap's vantage", || {
            answer(s, "lat.example.com.", JAPAN) == "203.0.113.2"
        });
        assert_eq!(answer(s, "lat.example.com.", LONDON), "203.0.113.1");
    }
    let report = meridian::explain::report(
        &eu.server().snapshot(),
        &meridian::explain::Request {
            name: "lat.example.com.".into(),
            client: "2001:218::1".parse().unwrap(),
            qtype: RecordType::A,
            ecs_prefix: Some(32),
            random: 1,
        },
    )
    .unwrap();
    let service = report.service.unwrap();
    assert_eq!(service.vantage.as_deref(), Some("ap"));
    assert!(service.vantage_is_peer);

    // The same inputs give the same answers: the three tables' fingerprints agree.
    wait_for(LIMIT, "equal fingerprints", || {
        let prints: Vec<u64> = fleet
            .iter()
            .flatten()
            .map(|s| s.server().snapshot().tables.as_ref().unwrap().fingerprint())
            .collect();
        prints.iter().all(|&p| p == prints[0])
    });

    // An override set on one instance reaches the others: us-1 drains web-1, and eu-1 and
    // ap-1 (whose own probes and votes say up) withdraw it too; cleared, it is back everywhere.
    let us = fleet[1].as_ref().unwrap();
    us.server()
        .monitor()
        .set_override("web-1", Some(OverrideKind::Drain), None)
        .unwrap();
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "web-1 drained everywhere", || {
            answer(s, "fo.example.com.", LONDON) == "192.0.2.3"
        });
    }
    us.server()
        .monitor()
        .set_override("web-1", None, None)
        .unwrap();
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "web-1 back everywhere", || {
            answer(s, "fo.example.com.", LONDON) == "192.0.2.1"
        });
    }

    // us-1 and ap-1 stop: eu-1's peers age out and its own verdict decides again: web-1 is
    // withdrawn there. Restarted, they are fresh again and the quorum brings web-1 back.
    let us = fleet[1].take().unwrap();
    let ap = fleet[2].take().unwrap();
    us.stop();
    ap.stop();
    let eu = fleet[0].as_ref().unwrap();
    wait_for(LIMIT, "peers stale", || fresh_peers(eu) == 0);
    wait_for(LIMIT, "local verdict alone", || {
        answer(eu, "fo.example.com.", LONDON) == "192.0.2.3"
    });
    let (code, body) = http_get(eu, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["fleet"]["deciding"], "local only",
        "{}",
        status["fleet"]
    );
    fleet[1] = Some(start_file(&paths[1]));
    fleet[2] = Some(start_file(&paths[2]));
    let eu = fleet[0].as_ref().unwrap();
    wait_for(LIMIT, "peers fresh again", || fresh_peers(eu) == 2);
    wait_for(LIMIT, "web-1 back by quorum", || {
        answer(eu, "fo.example.com.", LONDON) == "192.0.2.1"
    });
    let (_, body) = http_get(eu, "/status");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["fleet"]["deciding"], "quorum");
    assert_eq!(status["fleet"]["vantages_deciding"], 3);
}
