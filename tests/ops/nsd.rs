//! NSD as a secondary of Meridian, on loopback: a real `nsd` (Debian's package, started by the
//! test in the foreground, never as a service) takes two zones by zone transfer and answers from
//! them as Meridian does (a zone without wildcards or delegations, and the fixture zone with
//! both), follows an edit by NOTIFY and IXFR within two seconds, and never gets a zone whose
//! `[zone.transfer] allow` leaves its address out (its log shows the refusal).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::support::exposition::sample;
use crate::support::*;

/// `nsd` from PATH or /usr/sbin (a non-root PATH may lack it).
fn nsd() -> Option<PathBuf> {
    crate::support::knot_primary::sbin("nsd")
}

/// How long NSD may hold a transferred version before serving it. NSD serves a transfer by
/// reloading, and throttles its reloads with `xfrd-reload-timeout` (nsd.conf(5), 1 s by
/// default): a transfer within that period of the last reload waits for a timer that fires at the
/// period's end, reloads, and starts a new period from there. xfrd counts the period in whole
/// seconds (`xfrd_time()`), so after a bootstrap of two zones (the second one's reload deferred
/// by the timer) a transfer can wait until about 2 s after the first: what its log shows as
/// "received update to serial ..." a second before "serial ... is updated to ...". A secondary
/// whose last reload is older than that serves a transfer at once.
const RELOAD_THROTTLE: Duration = Duration::from_millis(2100);

/// An NSD secondary of some zones, started by the test on its own loopback port with every file
/// in a temporary folder, taking them from `primary` and NOTIFY from 127.0.0.1. Stopped when
/// dropped: SIGTERM to the process the test started (it stops its own xfrd and server
/// children), SIGKILL if it has not exited within 5 s.
struct NsdSecondary {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl NsdSecondary {
    fn start(nsd: &Path, port: u16, zones: &[&str], primary: SocketAddr) -> NsdSecondary {
        Self::start_keyed(nsd, port, zones, primary, None)
    }

    /// [`NsdSecondary::start`], transferring with TSIG key `(name, algorithm, base64 secret)`
    /// and taking NOTIFY only signed with it, when given.
    fn start_keyed(
        nsd: &Path,
        port: u16,
        zones: &[&str],
        primary: SocketAddr,
        key: Option<(&str, &str, &str)>,
    ) -> NsdSecondary {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // `username: ""` and `chroot: ""`: no privilege drop nor chroot when CI runs as root;
        // `database: ""`: zones in memory only; no remote control.
        let mut conf = format!(
            "server:\n    ip-address: 127.0.0.1@{port}\n    do-ip6: no\n    server-count: 1\n\
             \x20   username: \"\"\n    chroot: \"\"\n    zonesdir: \"{d}\"\n    database: \"\"\n\
             \x20   zonelistfile: \"{d}/zone.list\"\n    xfrdfile: \"{d}/xfrd.state\"\n    xfrdir: \"{d}\"\n\
             \x20   pidfile: \"{d}/nsd.pid\"\n    logfile: \"{d}/nsd.log\"\n    verbosity: 2\n\
             \x20   rrl-ratelimit: 0\n    minimal-responses: yes\n\
             remote-control:\n    control-enable: no\n\
             {}pattern:\n    name: \"meridian\"\n    request-xfr: {}@{} {key_name}\n    allow-notify: 127.0.0.1 {key_name}\n",
            key.map_or(String::new(), |(n, a, secret)| format!(
                "key:\n    name: \"{n}\"\n    algorithm: {a}\n    secret: \"{secret}\"\n"
            )),
            primary.ip(),
            primary.port(),
            key_name = key.map_or("NOKEY", |k| k.0),
        );
        for zone in zones {
            conf += &format!("zone:\n    name: \"{zone}\"\n    include-pattern: \"meridian\"\n");
        }
        let conf_path = dir.path().join("nsd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = std::fs::File::create(dir.path().join("nsd.out")).unwrap();
        let child = Command::new(nsd)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        NsdSecondary {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    /// NSD's log file, then whatever it printed before opening it.
    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        read("nsd.log") + &read("nsd.out")
    }

    fn ask(&self, name: &str, rtype: RecordType) -> Option<Message> {
        let q = query(name, rtype, None);
        udp_raw_timeout(self.addr, &q.to_vec().unwrap(), Duration::from_millis(200))
            .map(|b| Message::from_vec(&b).unwrap())
    }

    /// The serial NSD serves for `zone`, if it serves it.
    fn serial(&self, zone: &str) -> Option<u32> {
        let m = self.ask(zone, RecordType::SOA)?;
        if m.metadata.response_code != ResponseCode::NoError {
            return None;
        }
        m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }

    /// Wait for `condition` at most `limit`; on a timeout, panic with NSD's log.
    fn wait(&self, limit: Duration, what: &str, condition: impl FnMut() -> bool) -> Duration {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(limit, what, condition)
        }))
        .unwrap_or_else(|_| {
            panic!(
                "timed out after {limit:?} waiting for {what}; nsd log:\n{}",
                self.log()
            )
        })
    }
}

impl Drop for NsdSecondary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) on the PID of our own child, which is not reaped yet (try_wait above
        // found it running), so the PID is still ours; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if exit_within(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A zone without wildcards or delegations (the fixture zone has both), with a few more types.
fn lake_zone(serial: u32, www: &[&str]) -> String {
    let mut z = format!(
        "$ORIGIN lake.test.\n$TTL 900\n@ SOA ns1 hostmaster {serial} 3600 600 86400 120\n@ NS ns1\n@ NS ns2\n\
         ns1 A 192.0.2.61\nns2 AAAA 2001:db8::62\n@ MX 5 mx\nmx A 192.0.2.25\n@ TXT \"lake\" \"two strings\"\n\
         _sip._udp SRV 10 60 5060 sip\nsip A 192.0.2.70\n@ CAA 0 issue \"ca.example\"\nalias CNAME www\n"
    );
    for a in www {
        z += &format!("www 60 A {a}\n");
    }
    z
}

/// One line per record: owner lowercased, TTL, type, RDATA.
fn line(r: &Record) -> String {
    format!(
        "{} {} {} {}",
        r.name.to_ascii().to_lowercase(),
        r.ttl,
        r.record_type(),
        r.data
    )
}

/// What two servers must agree on in an answer: RCODE, AA, the answer and authority sections.
fn gist(m: &Message) -> (ResponseCode, bool, BTreeSet<String>, BTreeSet<String>) {
    (
        m.metadata.response_code,
        m.metadata.authoritative,
        m.answers.iter().map(line).collect(),
        m.authorities.iter().map(line).collect(),
    )
}

/// The serial Meridian serves for `zone`.
fn served_serial(srv: &TestServer, zone: &str) -> u32 {
    match &srv.udp(&query(zone, RecordType::SOA, None)).answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    }
}

/// A Meridian configuration of `zones` (origin, file, `allow`), each notifying `nsd_port`.
fn config(zones: &[(&str, &str, &str)], nsd_port: u16) -> String {
    let mut t = "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n".to_string();
    for (origin, file, allow) in zones {
        t += &format!(
            "\n[[zone]]\norigin = \"{origin}\"\nfile = \"{file}\"\n[zone.transfer]\nallow = [\"{allow}\"]\nnotify = [\"127.0.0.1:{nsd_port}\"]\n"
        );
    }
    t
}

#[test]
fn an_nsd_secondary_answers_as_meridian_and_follows_an_edit_by_notify() {
    let Some(nsd) = nsd() else {
        eprintln!("nsd is not installed: skipped");
        return;
    };
    let nsd_port = crate::fleet_kit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake.zone");
    std::fs::write(&lake, lake_zone(7, &["192.0.2.10", "192.0.2.11"])).unwrap();
    std::fs::write(dir.path().join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let zones = [
        ("lake.test.", "lake.zone", "127.0.0.1/32"),
        ("example.com.", "example.com.zone", "127.0.0.0/8"),
    ];
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, config(&zones, nsd_port)).unwrap();
    let srv = start_file(&config_path);
    let example_serial = served_serial(&srv, "example.com.");

    let started = Instant::now();
    let nsd = NsdSecondary::start(&nsd, nsd_port, &["lake.test.", "example.com."], srv.tcp);
    nsd.wait(Duration::from_secs(20), "NSD to serve both zones", || {
        nsd.serial("lake.test.") == Some(7) && nsd.serial("example.com.") == Some(example_serial)
    });
    eprintln!(
        "NSD served both zones {:?} after it started",
        started.elapsed()
    );

    // NSD answers from what it took as Meridian answers from its files: plain data of several
    // types, a CNAME, NODATA and NXDOMAIN; in the fixture zone, a wildcard and a delegation
    // (a referral: AA clear, the cut's NS in authority).
    let questions = [
        ("lake.test.", RecordType::NS),
        ("lake.test.", RecordType::MX),
        ("lake.test.", RecordType::TXT),
        ("lake.test.", RecordType::CAA),
        ("_sip._udp.lake.test.", RecordType::SRV),
        ("ns2.lake.test.", RecordType::AAAA),
        ("www.lake.test.", RecordType::A),
        ("alias.lake.test.", RecordType::A),
        ("www.lake.test.", RecordType::AAAA),
        ("nowhere.lake.test.", RecordType::A),
        ("www.example.com.", RecordType::A),
        ("web.example.com.", RecordType::A),
        ("a.b.c.example.com.", RecordType::TXT),
        ("b.c.example.com.", RecordType::TXT),
        ("anything.apps.example.com.", RecordType::A),
        ("deep.down.apps.example.com.", RecordType::A),
        ("host.sub.example.com.", RecordType::A),
        ("missing.example.com.", RecordType::A),
    ];
    for (name, rtype) in questions {
        let ours = srv.udp(&query(name, rtype, None));
        let theirs = nsd
            .ask(name, rtype)
            .unwrap_or_else(|| panic!("NSD did not answer {name} {rtype}"));
        assert_eq!(
            gist(&theirs),
            gist(&ours),
            "{name} {rtype}: NSD, then Meridian"
        );
    }
    let referral = nsd.ask("host.sub.example.com.", RecordType::A).unwrap();
    assert!(!referral.metadata.authoritative && referral.answers.is_empty());
    assert_eq!(
        gist(&referral).3,
        BTreeSet::from(["sub.example.com. 3600 NS ns.sub.example.com.".to_string()])
    );

    // Let NSD's last reload be older than its reload throttle, as a secondary's usually is.
    std::thread::sleep(RELOAD_THROTTLE);
    let ixfr_before = sample(&meridian::metrics::render(), IXFR_SERVED);

    // An edit with a raised serial: Meridian serves it at once and tells NSD, which asks for
    // the change and serves it.
    std::fs::write(&lake, lake_zone(8, &["192.0.2.10", "192.0.2.12"])).unwrap();
    let reloaded = Instant::now();
    srv.server().control().reload().unwrap();
    assert_eq!(served_serial(&srv, "lake.test."), 8);
    nsd.wait(Duration::from_secs(5), "NSD to serve serial 8", || {
        nsd.serial("lake.test.") == Some(8)
    });
    let lag = reloaded.elapsed();
    eprintln!("NSD served serial 8 {lag:?} after the reload");
    assert!(
        lag < Duration::from_secs(2),
        "NOTIFY-driven refresh took {lag:?}; nsd log:\n{}",
        nsd.log()
    );
    let m = nsd.ask("www.lake.test.", RecordType::A).unwrap();
    let got: BTreeSet<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(
        got,
        BTreeSet::from(["192.0.2.10".to_string(), "192.0.2.12".to_string()])
    );
    // NSD logs the NOTIFY, and the size of each version it took: serial 8 came incrementally
    // (far smaller than the whole zone of serial 7, which had as many records of the same
    // sizes), by an IXFR that Meridian counted.
    let log = nsd.log();
    assert!(
        log.contains("notify for lake.test. from 127.0.0.1 serial 8"),
        "{log}"
    );
    let (whole, increment) = (
        update_bytes(&log, "lake.test.", 7),
        update_bytes(&log, "lake.test.", 8),
    );
    eprintln!("NSD took serial 7 in {whole} bytes, serial 8 in {increment}");
    assert!(
        increment < whole * 2 / 3,
        "serial 8 in {increment} bytes, the whole zone in {whole}:\n{log}"
    );
    let ixfrs = sample(&meridian::metrics::render(), IXFR_SERVED) - ixfr_before;
    assert!(ixfrs >= 1.0, "Meridian served {ixfrs} IXFR of lake.test.");
}

/// Meridian's count of incremental transfers of lake.test. served.
const IXFR_SERVED: &str =
    "meridian_xfr_requests_total{zone=\"lake.test.\",kind=\"ixfr\",result=\"served\"}";

/// The size NSD logged for the transfer that brought `zone` to `serial` ("zone Z received update
/// to serial S at T from A of N bytes in D seconds").
fn update_bytes(log: &str, zone: &str, serial: u32) -> usize {
    let head = format!("zone {zone} received update to serial {serial} at ");
    let line = log
        .lines()
        .find(|l| l.contains(&head))
        .unwrap_or_else(|| panic!("no {head:?} in the log:\n{log}"));
    let bytes = line.split(" of ").last().and_then(|t| t.split(' ').next());
    bytes
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn a_zone_whose_allow_leaves_the_nsd_out_is_never_transferred() {
    let Some(nsd) = nsd() else {
        eprintln!("nsd is not installed: skipped");
        return;
    };
    let nsd_port = crate::fleet_kit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let pond = lake_zone(3, &["192.0.2.10"]).replace("lake.test.", "pond.test.");
    std::fs::write(dir.path().join("pond.zone"), pond).unwrap();
    let closed = lake_zone(5, &["192.0.2.99"]).replace("lake.test.", "closed.test.");
    std::fs::write(dir.path().join("closed.zone"), closed).unwrap();
    // closed.test. notifies NSD too, so NSD asks for it on its own start and again on NOTIFY.
    let zones = [
        ("pond.test.", "pond.zone", "127.0.0.1/32"),
        ("closed.test.", "closed.zone", "192.0.2.0/24"),
    ];
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, config(&zones, nsd_port)).unwrap();
    let srv = start_file(&config_path);
    assert_eq!(served_serial(&srv, "closed.test."), 5);

    let nsd = NsdSecondary::start(&nsd, nsd_port, &["pond.test.", "closed.test."], srv.tcp);
    nsd.wait(Duration::from_secs(20), "NSD to serve pond.test.", || {
        nsd.serial("pond.test.") == Some(3)
    });
    let refusal = |l: &str| l.contains("closed.test") && l.contains("REFUSED");
    nsd.wait(Duration::from_secs(10), "NSD to log the refusal", || {
        nsd.log().lines().any(refusal)
    });
    eprintln!(
        "NSD's log of the refusal:\n{}",
        nsd.log()
            .lines()
            .filter(|l| refusal(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // NSD has no data for the zone: it answers SERVFAIL, never the zone's records.
    let m = nsd
        .ask("www.closed.test.", RecordType::A)
        .expect("NSD answers");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    assert!(m.answers.is_empty());
    assert_eq!(nsd.serial("closed.test."), None);
    let log = nsd.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("closed.test") && l.contains("received update")),
        "NSD took closed.test.:\n{log}"
    );
    // Meridian counted what it refused, and served nothing of the zone.
    let metrics = meridian::metrics::render();
    let count = |kind: &str, result: &str| {
        let series = format!(
            "meridian_xfr_requests_total{{zone=\"closed.test.\",kind=\"{kind}\",result=\"{result}\"}}"
        );
        sample(&metrics, &series)
    };
    assert!(
        count("axfr", "refused") + count("ixfr", "refused") >= 1.0,
        "{metrics}"
    );
    assert_eq!(count("axfr", "served") + count("ixfr", "served"), 0.0);
}

#[test]
fn an_nsd_secondary_with_a_key_takes_the_zone_and_signed_notify_and_a_wrong_key_gets_nothing() {
    let Some(nsd) = nsd() else {
        eprintln!("nsd is not installed: skipped");
        return;
    };
    let secret = "bnNkIGFuZCBtZXJpZGlhbiBzaGFyZSB0aGlzIGtleSwgMzI=";
    let (good_port, bad_port) = (crate::fleet_kit::free_port(), crate::fleet_kit::free_port());
    let dir = tempfile::tempdir().unwrap();
    let zone_path = dir.path().join("lake.zone");
    std::fs::write(&zone_path, lake_zone(40, &["192.0.2.40"])).unwrap();
    // Transfers by key only; NOTIFY to both NSDs, signed.
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [[tsig_key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n\n\
         [[zone]]\norigin = \"lake.test.\"\nfile = \"lake.zone\"\n[zone.transfer]\nkeys = [\"xfr.\"]\n\
         notify = [\"127.0.0.1:{good_port}\", \"127.0.0.1:{bad_port}\"]\n"
    );
    let config_path = dir.path().join("meridian.toml");
    std::fs::write(&config_path, config).unwrap();
    let srv = start_file(&config_path);
    let good = NsdSecondary::start_keyed(
        &nsd,
        good_port,
        &["lake.test."],
        srv.tcp,
        Some(("xfr.", "hmac-sha256", secret)),
    );
    let wrong = "d3Jvbmcgc2VjcmV0LCB3cm9uZyBzZWNyZXQsIHdyb25nIQ==";
    let bad = NsdSecondary::start_keyed(
        &nsd,
        bad_port,
        &["lake.test."],
        srv.tcp,
        Some(("xfr.", "hmac-sha256", wrong)),
    );
    good.wait(
        Duration::from_secs(20),
        "the keyed NSD to serve serial 40",
        || good.serial("lake.test.") == Some(40),
    );
    std::thread::sleep(RELOAD_THROTTLE);
    std::fs::write(&zone_path, lake_zone(41, &["192.0.2.41"])).unwrap();
    srv.server().control().reload().unwrap();
    let lag = good.wait(
        Duration::from_secs(5),
        "the keyed NSD to serve serial 41",
        || good.serial("lake.test.") == Some(41),
    );
    eprintln!("keyed NSD served serial 41 {lag:?} after the reload (signed NOTIFY)");
    assert!(lag < Duration::from_secs(2), "{lag:?}");
    // The NSD with the wrong secret never gets the zone: its transfers fail TSIG.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bad.serial("lake.test."), None);
    let log = bad.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("lake.test") && l.contains("received update")),
        "the wrong key took the zone:\n{log}"
    );
    let metrics = meridian::metrics::render();
    assert!(
        sample(&metrics, r#"meridian_tsig_errors_total{error="badsig"}"#) >= 1.0,
        "Meridian saw the wrong key's signature fail"
    );
}
