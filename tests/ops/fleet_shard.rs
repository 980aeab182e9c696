//! Probe sharding (`[fleet] probes_per_endpoint = 1`) with three real instances on loopback:
//! each endpoint is probed by one instance at a time, the one rendezvous hashing chooses;
//! every instance still answers every endpoint by that one vantage's verdict (a dead one is
//! withdrawn by all three); when the instance probing an endpoint stops, another takes it over
//! within an interval of the stopped one going stale.
//!
//! Each instance probes each endpoint at a port of its own (its own HTTP target, counting
//! requests): that is how the test sees who probes what. Free ports, nodes and the admin GET come
//! from tests/ops/fleet_kit.rs; the configurations follow tests/ops/fleet_votes.rs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use meridian::fleet::shard;

use crate::fleet_kit::*;
use crate::support::steering::*;
use crate::support::target::{Target, Targets};
use crate::support::*;

/// Endpoints e0..e5, each alone in its pool, each with a service failing over to "bk".
const ENDPOINTS: usize = 6;
/// Fleet pulls every 100 ms, data stale after 600 ms; checks every 200 ms.
const INTERVAL: Duration = Duration::from_millis(100);
const MAX_AGE: Duration = Duration::from_millis(600);
const CHECK_EVERY: Duration = Duration::from_millis(200);
const LONDON: Ecs = Some(("81.2.69.142", 31));

fn name(i: usize) -> String {
    format!("e{i}")
}

fn address(i: usize) -> String {
    format!("192.0.2.{}", 10 + i)
}

/// Node `node`'s configuration: its checks of e`i` probe `ports[i]`, of the backup `backup`.
fn write_config(dir: &Path, node: usize, admins: &[u16; 3], ports: &[u16], backup: u16) -> PathBuf {
    std::fs::write(dir.join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let (node_name, region) = NODES[node];
    let peers: Vec<String> = (0..3)
        .filter(|&i| i != node)
        .map(|i| format!("\"http://127.0.0.1:{}\"", admins[i]))
        .collect();
    let pool = |pool: &str, ep: &str, addr: &str, port: u16| {
        format!(
            "[checks.{pool}]\nkind = \"http\"\nport = {port}\ninterval = \"{}ms\"\n\
             timeout = \"150ms\"\nrise = 1\nfall = 1\njitter = \"10ms\"\n\
             [[pool]]\nname = \"{pool}\"\nregion = \"eu\"\nlocation = [51.5, -0.1]\n\
             checks = [\"{pool}\"]\n\
             [[pool.endpoint]]\nname = \"{ep}\"\naddress = \"{addr}\"\ncheck_address = \"127.0.0.1\"\n",
            CHECK_EVERY.as_millis()
        )
    };
    let mut pools = pool("backup", "bk", "192.0.2.99", backup);
    let mut services = String::new();
    for (i, &port) in ports.iter().enumerate() {
        pools += &pool(&format!("p{i}"), &name(i), &address(i), port);
        services += &format!(
            "[[service]]\nname = \"s{i}.example.com.\"\npolicy = \"failover\"\n\
             pools = [\"p{i}\", \"backup\"]\n"
        );
    }
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\
         [node]\nname = \"{node_name}\"\nregion = \"{region}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [fleet]\npeers = [{peers}]\ninterval = \"{interval}ms\"\nmax_age = \"{max_age}ms\"\n\
         probes_per_endpoint = 1\n\
         [geo]\ndatabase = \"{db}\"\ndefault_region = \"eu\"\n\
         [[region]]\nname = \"eu\"\nlocation = [51.5, -0.1]\ncontinents = [\"EU\", \"AF\"]\n\
         [[region]]\nname = \"us\"\nlocation = [47.6, -122.3]\ncontinents = [\"NA\", \"SA\"]\n\
         [[region]]\nname = \"ap\"\nlocation = [35.7, 139.7]\ncontinents = [\"AS\", \"OC\"]\n\
         {pools}{services}",
        admin = admins[node],
        peers = peers.join(", "),
        interval = INTERVAL.as_millis(),
        max_age = MAX_AGE.as_millis(),
        db = city_db(),
    );
    let path = dir.join(format!("{node_name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn answer(srv: &TestServer, i: usize) -> String {
    one(&Client::new(srv).udp(&format!("s{i}.example.com."), RecordType::A, LONDON))
}

/// The instances (by index into `fleet`) whose monitor probes `endpoint` now.
fn probing(fleet: &[Option<TestServer>], endpoint: &str) -> Vec<usize> {
    fleet
        .iter()
        .enumerate()
        .filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
        .filter(|(_, s)| {
            s.server()
                .monitor()
                .status()
                .iter()
                .any(|e| e.name == endpoint && e.probing)
        })
        .map(|(n, _)| n)
        .collect()
}

/// Requests each node's target of endpoint `i` has had.
fn requests(targets: &[Vec<Target>], i: usize) -> Vec<u64> {
    targets.iter().map(|t| t[i].requests()).collect()
}

#[test]
fn each_endpoint_is_probed_by_one_instance_and_taken_over_when_it_stops() {
    let pool = Targets::new();
    // targets[node][i]: what node `node` probes for endpoint e`i`.
    let mut targets: Vec<Vec<Target>> = (0..3)
        .map(|_| (0..ENDPOINTS).map(|_| pool.start(0)).collect())
        .collect();
    let backup = pool.start(0);
    let admins = [free_port(), free_port(), free_port()];
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..3)
        .map(|node| {
            let ports: Vec<u16> = targets[node].iter().map(|t| t.port).collect();
            write_config(dir.path(), node, &admins, &ports, backup.port)
        })
        .collect();
    let mut fleet: Vec<Option<TestServer>> = paths.iter().map(|p| Some(start_file(p))).collect();
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "both peers fresh", || fresh_peers(s) == 2);
        wait_for(LIMIT, "first verdicts", || s.server().monitor().ready());
    }

    // Settled: each endpoint is probed by one instance, the one rendezvous hashing chooses.
    let names: Vec<String> = NODES.iter().map(|(n, _)| n.to_string()).collect();
    let chosen = |i: usize, live: &[String]| -> usize {
        let c = shard::chosen(&name(i), live, 1);
        NODES.iter().position(|(n, _)| *n == c[0]).unwrap()
    };
    for i in 0..ENDPOINTS {
        wait_for(LIMIT, "one prober per endpoint", || {
            probing(&fleet, &name(i)) == [chosen(i, &names)]
        });
    }
    // The assignment is not degenerate: more than one instance probes something.
    let holders: std::collections::BTreeSet<usize> =
        (0..ENDPOINTS).map(|i| chosen(i, &names)).collect();
    assert!(
        holders.len() > 1,
        "every endpoint went to one node: {holders:?}"
    );

    // Over a window of several check intervals, only that instance's probes reach each target.
    let before: Vec<Vec<u64>> = (0..ENDPOINTS).map(|i| requests(&targets, i)).collect();
    std::thread::sleep(CHECK_EVERY * 6);
    for i in 0..ENDPOINTS {
        let now = requests(&targets, i);
        let grew: Vec<usize> = (0..3).filter(|&n| now[n] > before[i][n]).collect();
        assert_eq!(grew, [chosen(i, &names)], "e{i}: {before:?} -> {now:?}");
        assert!(now[chosen(i, &names)] - before[i][chosen(i, &names)] >= 3);
    }

    // Every instance answers every endpoint; /status tells the sharding.
    for s in fleet.iter().flatten() {
        for i in 0..ENDPOINTS {
            assert_eq!(answer(s, i), address(i));
        }
    }
    let mut probed = 0;
    for s in fleet.iter().flatten() {
        let (code, body) = http_get(s, "/status");
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            status["fleet"]["probes_per_endpoint"], 1,
            "{}",
            status["fleet"]
        );
        assert_eq!(status["fleet"]["endpoints"], ENDPOINTS + 1);
        probed += status["fleet"]["probed_endpoints"].as_u64().unwrap();
    }
    assert_eq!(probed, ENDPOINTS as u64 + 1, "the backup too, once");

    // e0's targets die (at every node's port): its one vantage says down, one of one voters,
    // and all three instances withdraw it.
    for t in targets.iter_mut() {
        pool.kill(&mut t[0]);
    }
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "e0 withdrawn everywhere", || {
            answer(s, 0) == "192.0.2.99"
        });
        for i in 1..ENDPOINTS {
            assert_eq!(answer(s, i), address(i));
        }
    }

    // The instance probing e1 stops: once it is stale (max_age), another takes e1 over within
    // an interval (and its first probe within a check interval).
    let holder = chosen(1, &names);
    let live: Vec<String> = (0..3)
        .filter(|&n| n != holder)
        .map(|n| names[n].clone())
        .collect();
    let heir = chosen(1, &live);
    let heir_count = targets[heir][1].requests();
    fleet[holder].take().unwrap().stop();
    let stopped = Instant::now();
    wait_for(LIMIT, "e1 probed by its heir", || {
        targets[heir][1].requests() > heir_count
    });
    let took = stopped.elapsed();
    let bound = MAX_AGE + INTERVAL + CHECK_EVERY + Duration::from_millis(400);
    assert!(took < bound, "taken over in {took:?}, bound {bound:?}");
    // Settled again: one prober per endpoint among the two left, as hashing over them says.
    for i in 0..ENDPOINTS {
        wait_for(LIMIT, "one prober per endpoint of two", || {
            probing(&fleet, &name(i)) == [chosen(i, &live)]
        });
    }
    for s in fleet.iter().flatten() {
        wait_for(LIMIT, "answers by the new probers", || {
            (1..ENDPOINTS).all(|i| answer(s, i) == address(i)) && answer(s, 0) == "192.0.2.99"
        });
    }
}
