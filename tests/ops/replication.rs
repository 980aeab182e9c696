//! Zone versions for secondaries against real peers on loopback: IXFR from the journal (the
//! records removed and added are the two files' difference, as hickory-proto's zone parser reads
//! them), NOTIFY that brings a real Knot secondary forward within a second, a reload that changes
//! content without raising the serial, and services' snapshot records that follow health into
//! transfers.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::fleet_kit::http_get;
use crate::support::knot::{Knot, KnotKey, knotd};
use crate::support::target::{Targets, http_check};
use crate::support::*;

fn free_port() -> u16 {
    crate::fleet_kit::free_port()
}

/// What a Knot secondary of ours needs besides its zones: the primary (Meridian at `primary`),
/// NOTIFY allowed from 127.0.0.1 (signed with `key` when given), and the default template.
fn knot_base(dir: &std::path::Path, primary: SocketAddr, key: Option<&KnotKey>) -> String {
    let d = dir.display();
    let mut c = String::new();
    let mut with_key = String::new();
    if let Some(k) = key {
        c += &format!(
            "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
            k.name, k.algorithm, k.secret
        );
        with_key = format!("    key: {}\n", k.name);
    }
    c + &format!(
        "remote:\n  - id: primary\n    address: {}@{}\n{with_key}\
         acl:\n  - id: notify_from_primary\n    address: 127.0.0.1\n    action: notify\n{with_key}\
         template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n",
        primary.ip(),
        primary.port(),
    )
}

/// A Knot secondary of `zone` on `port`, taking NOTIFY from 127.0.0.1.
fn knot_secondary(
    knotd: &std::path::Path,
    port: u16,
    zone: &str,
    primary: SocketAddr,
    key: Option<&KnotKey>,
) -> Knot {
    Knot::start_on(knotd, port, |dir| {
        knot_base(dir, primary, key)
            + &format!(
                "zone:\n  - domain: {zone}\n    master: primary\n    acl: notify_from_primary\n"
            )
    })
}

/// Every message of a transfer asked by `q` over TCP, until its last: the lone SOA of an
/// up-to-date IXFR, the second SOA of the newest serial in a whole transfer, the third in an
/// incremental one (opening, the last version's new SOA, closing).
fn transfer(addr: SocketAddr, q: &Message) -> Vec<Message> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write_framed(&mut s, &q.to_vec().unwrap());
    let mut out: Vec<Message> = Vec::new();
    while let Some(b) = read_framed(&mut s) {
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        out.push(m);
        let records: Vec<&Record> = out.iter().flat_map(|m| m.answers.iter()).collect();
        let serial = |r: &Record| match &r.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        };
        let newest = serial(records[0]);
        let seen = records.iter().filter(|r| serial(r) == newest).count();
        let done = match records.get(1) {
            None => q.queries[0].query_type() == RecordType::IXFR,
            Some(r) if serial(r).is_some() => seen >= 3,
            Some(_) => seen >= 2,
        };
        if done {
            break;
        }
    }
    out
}

fn ixfr(name: &str, serial: u32) -> Message {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::SOA;
    let mut q = query(name, RecordType::IXFR, None);
    let n = |s: &str| Name::from_str(s).unwrap();
    let soa = SOA::new(n(name), n(name), serial, 0, 0, 0, 0);
    q.authorities
        .push(Record::from_rdata(n(name), 0, RData::SOA(soa)));
    q
}

fn axfr(name: &str) -> Message {
    query(name, RecordType::AXFR, None)
}

/// One line per record: owner lowercased, TTL, class, type, RDATA.
fn line(r: &Record) -> String {
    format!(
        "{} {} {} {}",
        r.name.to_ascii().to_lowercase(),
        r.ttl,
        r.record_type(),
        r.data
    )
}

/// Every record of a zone file but its SOA, as hickory-proto's zone parser reads it.
fn oracle(origin: &str, text: &str) -> BTreeSet<String> {
    let (_, sets) = Parser::new(text, None, Some(Name::from_str(origin).unwrap()))
        .parse()
        .unwrap();
    sets.values()
        .flat_map(|s| s.records_without_rrsigs().map(line).collect::<Vec<_>>())
        .filter(|l| !l.contains(" SOA "))
        .collect()
}

/// An incremental transfer read per RFC 1995 §4: the newest serial, then per version (old
/// serial, records removed, new serial, records added).
struct Incremental {
    newest: u32,
    steps: Vec<(u32, BTreeSet<String>, u32, BTreeSet<String>)>,
}

/// The records of a transfer in order; `None` if it is not incremental (the second record is not
/// a SOA).
fn incremental(messages: &[Message]) -> Option<Incremental> {
    let records: Vec<&Record> = messages.iter().flat_map(|m| m.answers.iter()).collect();
    let serial = |r: &Record| match &r.data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    };
    let newest = serial(records[0])?;
    serial(records.get(1)?)?;
    let mut steps = Vec::new();
    let mut i = 1;
    while i < records.len() - 1 {
        let from = serial(records[i]).expect("a version starts with its old SOA");
        i += 1;
        let mut removed = BTreeSet::new();
        while serial(records[i]).is_none() {
            removed.insert(line(records[i]));
            i += 1;
        }
        let to = serial(records[i]).unwrap();
        i += 1;
        let mut added = BTreeSet::new();
        while i < records.len() - 1 && serial(records[i]).is_none() {
            added.insert(line(records[i]));
            i += 1;
        }
        steps.push((from, removed, to, added));
    }
    assert_eq!(serial(records[records.len() - 1]), Some(newest));
    Some(Incremental { newest, steps })
}

/// The serial Meridian serves for `zone`.
fn served_serial(srv: &TestServer, zone: &str) -> u32 {
    let m = srv.udp(&query(zone, RecordType::SOA, None));
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    }
}

/// A zone without wildcards or delegations (the fixture zone has both; this one varies it).
fn plain_zone(serial: u32, www: &[&str], extra: &str) -> String {
    let mut z = format!(
        "$ORIGIN plain.test.\n$TTL 600\n@ SOA ns1 hostmaster {serial} 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nmail A 192.0.2.25\n@ MX 10 mail\n"
    );
    for a in www {
        z += &format!("www 300 A {a}\n");
    }
    z + extra
}

#[test]
fn a_knot_secondary_follows_each_version_by_notify_and_ixfr() {
    let Some(knotd) = knotd() else {
        eprintln!("knotd is not installed: skipped");
        return;
    };
    let knot_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let zone_path = dir.path().join("plain.zone");
    let v1 = plain_zone(10, &["192.0.2.10", "192.0.2.11"], "old TXT \"going\"\n");
    std::fs::write(&zone_path, &v1).unwrap();
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[zone]]\norigin = \"plain.test.\"\nfile = \"plain.zone\"\n\
         [zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"127.0.0.1:{knot_port}\"]\n"
    );
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, config).unwrap();
    let srv = start_file(&config_path);
    let knot = knot_secondary(&knotd, knot_port, "plain.test.", srv.tcp, None);
    let took = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(20), "Knot to take serial 10", || {
            knot.serial("plain.test.") == Some(10)
        })
    }));
    assert!(took.is_ok(), "knotd log:\n{}", knot.log());
    // Knot refreshes a zone at most every `refresh-min-interval` (2 s by default), NOTIFY or
    // not: let the bootstrap's refresh be that old, as a secondary's usually is.
    std::thread::sleep(Duration::from_millis(2100));

    // An edit with a raised serial: Meridian serves it at once, tells Knot, Knot asks for the
    // changes and serves them, all within a second.
    let v2 = plain_zone(11, &["192.0.2.10", "192.0.2.12"], "new TXT \"here\"\n");
    std::fs::write(&zone_path, &v2).unwrap();
    let reloaded = Instant::now();
    srv.server().control().reload().unwrap();
    assert_eq!(served_serial(&srv, "plain.test."), 11);
    let followed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(5), "Knot to take serial 11", || {
            knot.serial("plain.test.") == Some(11)
        })
    }));
    let lag = reloaded.elapsed();
    assert!(followed.is_ok(), "knotd log:\n{}", knot.log());
    eprintln!("Knot served serial 11 {lag:?} after the reload");
    if lag > Duration::from_millis(300) {
        eprintln!("knotd log:\n{}", knot.log());
    }
    assert!(
        lag < Duration::from_secs(1),
        "NOTIFY-driven refresh took {lag:?}"
    );
    let log = knot.log();
    assert!(
        log.lines()
            .any(|l| l.contains("IXFR, incoming") && l.contains("finished")),
        "Knot took the change by IXFR:\n{log}"
    );
    let m = knot.ask("www.plain.test.", RecordType::A).unwrap();
    let got: BTreeSet<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(
        got,
        BTreeSet::from(["192.0.2.10".to_string(), "192.0.2.12".to_string()])
    );

    // The IXFR from 10 is the files' difference.
    let inc = incremental(&transfer(srv.tcp, &ixfr("plain.test.", 10))).expect("incremental");
    assert_eq!(inc.newest, 11);
    assert_eq!(inc.steps.len(), 1);
    let (o1, o2) = (oracle("plain.test.", &v1), oracle("plain.test.", &v2));
    let (from, removed, to, added) = &inc.steps[0];
    assert_eq!((*from, *to), (10, 11));
    assert_eq!(
        removed,
        &o1.difference(&o2).cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(added, &o2.difference(&o1).cloned().collect::<BTreeSet<_>>());
    assert_eq!(removed.len(), 2, "{removed:?}");

    // A content change without a raised serial: served as 12 (reported), and Knot follows.
    let v3 = plain_zone(
        11,
        &["192.0.2.10", "192.0.2.12", "192.0.2.13"],
        "new TXT \"here\"\n",
    );
    std::fs::write(&zone_path, &v3).unwrap();
    srv.server().control().reload().unwrap();
    assert_eq!(served_serial(&srv, "plain.test."), 12);
    wait_for(Duration::from_secs(5), "Knot to take serial 12", || {
        knot.serial("plain.test.") == Some(12)
    });
    // A reload with nothing changed keeps the version: no new serial.
    srv.server().control().reload().unwrap();
    assert_eq!(served_serial(&srv, "plain.test."), 12);

    // From 10, two versions in order; from a serial the journal never had, the whole zone; an
    // up-to-date client, the SOA alone.
    let inc = incremental(&transfer(srv.tcp, &ixfr("plain.test.", 10))).expect("incremental");
    let chain: Vec<(u32, u32)> = inc.steps.iter().map(|s| (s.0, s.2)).collect();
    assert_eq!(chain, vec![(10, 11), (11, 12)]);
    assert_eq!(
        inc.steps[1].3,
        BTreeSet::from(["www.plain.test. 300 A 192.0.2.13".to_string()])
    );
    assert!(inc.steps[1].1.is_empty());
    let full = transfer(srv.tcp, &ixfr("plain.test.", 3));
    assert!(
        incremental(&full).is_none(),
        "an unknown serial gets the whole zone"
    );
    let records: BTreeSet<String> = full
        .iter()
        .flat_map(|m| m.answers.iter())
        .map(line)
        .filter(|l| !l.contains(" SOA "))
        .collect();
    assert_eq!(records, oracle("plain.test.", &v3));
    let current = transfer(srv.tcp, &ixfr("plain.test.", 12));
    assert_eq!(current.iter().map(|m| m.answers.len()).sum::<usize>(), 1);
    // /status shows the versions kept and Knot's acknowledgement of the newest.
    let (code, body) = http_get(&srv, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let zone = &status["zones"][0];
    assert_eq!(zone["serial"], 12);
    let t = &zone["transfers"];
    assert_eq!(
        (
            t["journal_versions"].as_u64(),
            t["journal_oldest_serial"].as_u64()
        ),
        (Some(2), Some(10))
    );
    assert_eq!(t["serial_policy"], "file");
    wait_for(
        Duration::from_secs(3),
        "the NOTIFY of 12 acknowledged",
        || {
            let (_, body) = http_get(&srv, "/status");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let n = &v["zones"][0]["transfers"]["notify"][0];
            n["serial"] == 12
                && n["result"] == "acked"
                && n["target"] == format!("127.0.0.1:{knot_port}")
        },
    );
    // dig reads the incremental transfer too.
    if let Ok(out) = std::process::Command::new("dig")
        .args([
            "-p",
            &srv.tcp.port().to_string(),
            "@127.0.0.1",
            "plain.test.",
            "IXFR=10",
            "+nostats",
            "+nocmd",
        ])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("192.0.2.13") && text.contains("old.plain.test."),
            "{text}"
        );
    }
}

/// A zone with one service of two endpoints, transferred with its snapshot (`snapshot_interval`
/// 1 s), its NOTIFY to `knot_port`.
fn snapshot_config(ports: [u16; 2], knot_port: u16, gslb: &str) -> String {
    let mut t = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\
         [zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"127.0.0.1:{knot_port}\"]\ngslb = \"{gslb}\"\nsnapshot_interval = \"1s\"\n\n"
    );
    t += &http_check("a", ports[0], 1, 1);
    t += &http_check("b", ports[1], 1, 1);
    t += REGIONS;
    t += "[[pool]]\nname = \"p\"\nregion = \"r1\"\n";
    for (name, addr, check) in [("e1", "192.0.2.101", "a"), ("e2", "192.0.2.102", "b")] {
        t += &format!(
            "[[pool.endpoint]]\nname = \"{name}\"\naddress = \"{addr}\"\ncheck_address = \"127.0.0.1\"\nchecks = [\"{check}\"]\n"
        );
    }
    t + "[[service]]\nname = \"svc.example.com.\"\npolicy = \"failover\"\npools = [\"p\"]\nanswers = 2\nttl = 60\nfailover_ttl = 7\n"
}

/// The service's records in a whole transfer.
fn service_records(messages: &[Message]) -> BTreeSet<String> {
    messages
        .iter()
        .flat_map(|m| m.answers.iter())
        .filter(|r| r.name.to_ascii().to_lowercase() == "svc.example.com.")
        .map(line)
        .collect()
}

#[test]
fn service_snapshots_follow_health_into_transfers_and_a_knot_secondary() {
    let targets = Targets::new();
    let mut a = targets.start(0);
    let b = targets.start(0);
    let knot_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(
        &config_path,
        snapshot_config([a.port, b.port], knot_port, "snapshot"),
    )
    .unwrap();
    let srv = start_file(&config_path);
    let monitor = srv.server().monitor().clone();
    wait_for(Duration::from_secs(5), "first verdicts", || monitor.ready());
    let both = BTreeSet::from([
        "svc.example.com. 7 A 192.0.2.101".to_string(),
        "svc.example.com. 7 A 192.0.2.102".to_string(),
    ]);
    wait_for(
        Duration::from_secs(5),
        "both endpoints in the snapshot",
        || service_records(&transfer(srv.tcp, &axfr("example.com."))) == both,
    );
    // The serial follows unix time (the default for a zone whose transfers carry snapshots),
    // but the fixture's date-style serial is newer than the time in serial arithmetic (RFC
    // 1982), so it stays the file's until a snapshot change raises it by one.
    let first = served_serial(&srv, "example.com.");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(
        2_026_112_701u32.wrapping_sub(now) < 1 << 31,
        "the fixture's serial is newer than {now}"
    );
    assert!(first.wrapping_sub(2_026_112_701) < 16, "serial {first}");
    // Everything else in the transfer is the file.
    let others: BTreeSet<String> = transfer(srv.tcp, &axfr("example.com."))
        .iter()
        .flat_map(|m| m.answers.iter())
        .filter(|r| r.name.to_ascii().to_lowercase() != "svc.example.com.")
        .map(line)
        .filter(|l| !l.contains(" SOA "))
        .collect();
    assert_eq!(others, oracle("example.com.", EXAMPLE_ZONE));

    let knot = knotd().map(|k| knot_secondary(&k, knot_port, "example.com.", srv.tcp, None));
    let knot_answer = |k: &Knot| -> BTreeSet<String> {
        k.ask("svc.example.com.", RecordType::A)
            .map(|m| m.answers.iter().map(|r| r.data.to_string()).collect())
            .unwrap_or_default()
    };
    if let Some(k) = &knot {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(
                Duration::from_secs(20),
                "Knot to serve both endpoints",
                || knot_answer(k).len() == 2,
            )
        }));
        assert!(ok.is_ok(), "knotd log:\n{}", k.log());
    } else {
        eprintln!("knotd is not installed: the Knot part is skipped");
    }

    // e1's target dies: the snapshot drops it, the serial moves, the IXFR says so, Knot follows.
    let before = served_serial(&srv, "example.com.");
    targets.kill(&mut a);
    let one = BTreeSet::from(["svc.example.com. 7 A 192.0.2.102".to_string()]);
    wait_for(Duration::from_secs(8), "e1 gone from the snapshot", || {
        service_records(&transfer(srv.tcp, &axfr("example.com."))) == one
    });
    let after = served_serial(&srv, "example.com.");
    assert!(
        after != before && after.wrapping_sub(before) < 1 << 31,
        "{before} -> {after}"
    );
    let inc = incremental(&transfer(srv.tcp, &ixfr("example.com.", before))).expect("incremental");
    let removed: BTreeSet<String> = inc.steps.iter().flat_map(|s| s.1.iter().cloned()).collect();
    let added: BTreeSet<String> = inc.steps.iter().flat_map(|s| s.3.iter().cloned()).collect();
    assert_eq!(
        removed,
        BTreeSet::from(["svc.example.com. 7 A 192.0.2.101".to_string()])
    );
    assert!(added.is_empty(), "{added:?}");
    if let Some(k) = &knot {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(Duration::from_secs(5), "Knot to drop e1", || {
                knot_answer(k) == BTreeSet::from(["192.0.2.102".to_string()])
            })
        }));
        assert!(ok.is_ok(), "knotd log:\n{}", k.log());
    }
    // Back up: back in, by a newer version.
    targets.restart(&mut a);
    wait_for(Duration::from_secs(8), "e1 back in the snapshot", || {
        service_records(&transfer(srv.tcp, &axfr("example.com."))) == both
    });
    let last = served_serial(&srv, "example.com.");
    assert!(
        last != after && last.wrapping_sub(after) < 1 << 31,
        "{after} -> {last}"
    );
    drop(b);

    // `gslb = "omit"`: no records at the service's name in transfers.
    std::fs::write(
        &config_path,
        snapshot_config([a.port, a.port], knot_port, "omit"),
    )
    .unwrap();
    srv.server().control().reload().unwrap();
    let messages = transfer(srv.tcp, &axfr("example.com."));
    assert!(service_records(&messages).is_empty());
    assert!(
        served_serial(&srv, "example.com.") != last,
        "dropping the snapshot is a new version"
    );
}

#[test]
fn a_knot_catalog_consumer_adds_and_removes_member_zones() {
    let Some(knotd) = knotd() else {
        eprintln!("knotd is not installed: skipped");
        return;
    };
    let knot_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plain.zone"),
        plain_zone(7, &["192.0.2.7"], ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let zone = |origin: &str, file: &str| {
        format!(
            "[[zone]]\norigin = \"{origin}\"\nfile = \"{file}\"\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\n"
        )
    };
    let catalog = format!(
        "[[zone]]\norigin = \"catalog.invalid.\"\ncatalog = true\n[zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"127.0.0.1:{knot_port}\"]\n"
    );
    let head = "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n";
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(
        &config_path,
        format!("{head}{}{catalog}", zone("plain.test.", "plain.zone")),
    )
    .unwrap();
    let srv = start_file(&config_path);
    // The catalog lists the one member, as RFC 9432 says.
    let records: Vec<String> = transfer(srv.tcp, &axfr("catalog.invalid."))
        .iter()
        .flat_map(|m| m.answers.iter())
        .map(line)
        .collect();
    assert!(
        records
            .iter()
            .any(|l| l == "version.catalog.invalid. 0 TXT 2"),
        "{records:?}"
    );
    let ptrs: Vec<&String> = records.iter().filter(|l| l.contains(" PTR ")).collect();
    assert_eq!(ptrs.len(), 1, "{records:?}");
    assert!(
        ptrs[0].ends_with(".zones.catalog.invalid. 0 PTR plain.test."),
        "{records:?}"
    );

    let member = "  - id: member\n    storage: \"{d}/zones\"\n    master: primary\n    acl: notify_from_primary\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n";
    let zones = "zone:\n  - domain: catalog.invalid.\n    master: primary\n    acl: notify_from_primary\n    catalog-role: interpret\n    catalog-template: member\n";
    let knot = Knot::start_on(&knotd, knot_port, |dir| {
        knot_base(dir, srv.tcp, None) + &member.replace("{d}", &dir.display().to_string()) + zones
    });
    let took = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            Duration::from_secs(20),
            "Knot to serve the member from the catalog",
            || knot.serial("plain.test.") == Some(7),
        )
    }));
    assert!(took.is_ok(), "knotd log:\n{}", knot.log());
    std::thread::sleep(Duration::from_millis(2100)); // Knot's refresh-min-interval (see above)

    // A zone added to the configuration: the catalog's new version reaches Knot by NOTIFY, and
    // Knot adds the zone and takes it.
    std::fs::write(
        &config_path,
        format!(
            "{head}{}{}{catalog}",
            zone("plain.test.", "plain.zone"),
            zone("example.com.", "example.com.zone")
        ),
    )
    .unwrap();
    let reloaded = Instant::now();
    srv.server().control().reload().unwrap();
    let added = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(10), "Knot to add example.com.", || {
            knot.serial("example.com.") == Some(2_026_112_701)
        })
    }));
    assert!(added.is_ok(), "knotd log:\n{}", knot.log());
    eprintln!(
        "Knot served the added zone {:?} after the reload",
        reloaded.elapsed()
    );
    let m = knot.ask("www.example.com.", RecordType::A).unwrap();
    assert_eq!(m.answers.len(), 2, "{m:?}");

    // A zone removed: Knot drops it.
    std::thread::sleep(Duration::from_millis(2100));
    std::fs::write(
        &config_path,
        format!(
            "{head}{}{catalog}",
            zone("example.com.", "example.com.zone")
        ),
    )
    .unwrap();
    srv.server().control().reload().unwrap();
    let removed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(10), "Knot to drop plain.test.", || {
            knot.ask("plain.test.", RecordType::SOA)
                .is_some_and(|m| m.metadata.response_code == ResponseCode::Refused)
        })
    }));
    assert!(removed.is_ok(), "knotd log:\n{}", knot.log());
    assert_eq!(knot.serial("example.com."), Some(2_026_112_701));
}

#[test]
fn bad_replication_settings_are_reported_with_their_places() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("z.zone"), EXAMPLE_ZONE).unwrap();
    let path = dir.path().join("meridian.toml");
    let text = "[[zone]]\norigin = \"example.com.\"\nfile = \"z.zone\"\nserial = \"date\"\n\
                [zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"192.0.2.1:53\", \"nowhere\", \"192.0.2.1\"]\n\
                gslb = \"full\"\nsnapshot_interval = \"10ms\"\n\
                [[zone]]\norigin = \"cat.invalid.\"\ncatalog = true\nfile = \"z.zone\"\n\
                [[zone]]\norigin = \"nofile.test.\"\n";
    let e = meridian::config::Config::parse(&path, text)
        .unwrap_err()
        .to_string();
    let p = path.display();
    for expected in [
        format!("{p}:4:10: zone[0].serial: \"date\" is not \"file\" or \"unixtime\""),
        format!("{p}:7:27: zone[0].transfer.notify[1]: \"nowhere\" is not an address"),
        format!("{p}:7:38: zone[0].transfer.notify[2]: 192.0.2.1:53 is listed twice"),
        format!("{p}:8:8: zone[0].transfer.gslb: \"full\" is not \"snapshot\" or \"omit\""),
        format!("{p}:9:21: zone[0].transfer.snapshot_interval: \"10ms\" is shorter than 1s"),
        format!("{p}:13:8: zone[1].file: a catalog zone is generated and has no file"),
        format!("{p}:15:10: zone[2]: file is missing (a master file, or catalog = true)"),
    ] {
        assert!(e.contains(&expected), "missing {expected:?} in:\n{e}");
    }
    // The same settings, well written, compile.
    let good = "[[zone]]\norigin = \"example.com.\"\nfile = \"z.zone\"\nserial = \"unixtime\"\n\
                [zone.transfer]\nallow = [\"127.0.0.1/32\"]\nnotify = [\"192.0.2.1:5300\", \"[2001:db8::1]:53\", \"192.0.2.2\"]\n\
                gslb = \"omit\"\nsnapshot_interval = \"2m\"\n";
    let c = meridian::config::Config::parse(&path, good).unwrap();
    let r = &c.zones[0].replication;
    assert_eq!(r.notify.len(), 3);
    assert_eq!(r.notify[2].to_string(), "192.0.2.2:53");
    assert_eq!(r.snapshot_interval, Duration::from_secs(120));
    assert_eq!(r.gslb, meridian::config::replication::Gslb::Omit);
    assert_eq!(
        r.serial,
        meridian::config::replication::SerialPolicy::UnixTime
    );
}

#[test]
fn a_knot_secondary_with_a_key_follows_signed_notify() {
    let Some(knotd) = knotd() else {
        eprintln!("knotd is not installed: skipped");
        return;
    };
    let secret = "bWVyaWRpYW4gbm90aWZ5IGtleSwgdGhpcnR5LXR3byBieXRlcw==";
    let key = KnotKey {
        name: "xfr.",
        algorithm: "hmac-sha256",
        secret,
    };
    let knot_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let zone_path = dir.path().join("plain.zone");
    std::fs::write(&zone_path, plain_zone(20, &["192.0.2.20"], "")).unwrap();
    // Transfers by key only (no `allow`): NOTIFY signed with it, the acknowledgement checked.
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [[tsig_key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n\n\
         [[zone]]\norigin = \"plain.test.\"\nfile = \"plain.zone\"\n\
         [zone.transfer]\nkeys = [\"xfr.\"]\nnotify = [\"127.0.0.1:{knot_port}\"]\n"
    );
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, config).unwrap();
    let srv = start_file(&config_path);
    let knot = knot_secondary(&knotd, knot_port, "plain.test.", srv.tcp, Some(&key));
    let took = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(20), "Knot to take serial 20", || {
            knot.serial("plain.test.") == Some(20)
        })
    }));
    assert!(took.is_ok(), "knotd log:\n{}", knot.log());
    std::thread::sleep(Duration::from_millis(2100)); // Knot's refresh-min-interval (see above)
    std::fs::write(&zone_path, plain_zone(21, &["192.0.2.21"], "")).unwrap();
    let reloaded = Instant::now();
    srv.server().control().reload().unwrap();
    let followed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(5), "Knot to take serial 21", || {
            knot.serial("plain.test.") == Some(21)
        })
    }));
    assert!(followed.is_ok(), "knotd log:\n{}", knot.log());
    let lag = reloaded.elapsed();
    eprintln!("Knot (TSIG) served serial 21 {lag:?} after the reload");
    assert!(
        lag < Duration::from_secs(1),
        "signed NOTIFY-driven refresh took {lag:?}"
    );
    let log = knot.log();
    // Knot's NOTIFY ACL names the key: an unsigned or badly signed NOTIFY would be denied.
    assert!(
        log.lines()
            .any(|l| l.contains("notify, incoming") && l.contains("serial 21"))
            && !log.contains("denied"),
        "Knot took a signed NOTIFY:\n{log}"
    );
    // Meridian checked Knot's signed acknowledgement.
    wait_for(
        Duration::from_secs(3),
        "the signed NOTIFY of 21 acknowledged",
        || {
            let (_, body) = http_get(&srv, "/status");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let n = &v["zones"][0]["transfers"]["notify"][0];
            n["serial"] == 21 && n["result"] == "acked"
        },
    );
}
