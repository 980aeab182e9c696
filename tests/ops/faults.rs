//! Dependency faults, one test each, against the `meridian` binary with real files, real probe
//! targets and real webhook sinks on loopback: a GeoIP database missing or corrupt at start and
//! at reload, a zone file deleted or corrupted before a reload, the state file unwritable and
//! unreadable, webhook targets down, probe targets that accept and never answer, and the clock
//! jumping (the monitor's clock, and the system's wall clock under libfaketime). Each test shows
//! that serving goes on (real DNS answers, correct ones, after the fault), that what must be
//! kept is kept, and that the fault is logged and counted in the server's own `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::served::{BIN, HEAD, Served};
use crate::support::monitor::{TestMonitor, at, config, pool};
use crate::support::steering::{city_db, query as ecs_query};
use crate::support::target::{
    Switch, Targets, closed_port, switch_check, tcp_accepting, tcp_listening,
};
use crate::support::webhook::webhook_receiver;
use crate::support::*;

const SECOND: Duration = Duration::from_secs(1);

/// Write `meridian.toml` (after [`HEAD`]) and the example zone into `dir`.
fn write_config(dir: &Path, tables: &str) -> PathBuf {
    std::fs::write(dir.join("example.com.zone"), EXAMPLE_ZONE).unwrap();
    let cfg = dir.join("meridian.toml");
    let text = format!(
        "{HEAD}{tables}\n[[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n"
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Write `bytes` beside `dest` and rename it into place, as geoipupdate and editors do.
fn replace(dest: &Path, bytes: &[u8]) {
    let tmp = dest.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

// ---------------------------------------------------------------------------------------------
// GeoIP database

/// A geo service over two regions placed by continent: eu (192.0.2.1), us (198.51.100.1).
fn geo_tables(db: &Path) -> String {
    format!(
        r#"
[geo]
database = "{}"
default_region = "eu"
[[region]]
name = "eu"
location = [50.0, 8.0]
continents = ["EU"]
[[region]]
name = "us"
location = [39.0, -77.5]
continents = ["NA"]
[[pool]]
name = "eu"
region = "eu"
[[pool.endpoint]]
name = "e1"
address = "192.0.2.1"
[[pool]]
name = "us"
region = "us"
[[pool.endpoint]]
name = "u1"
address = "198.51.100.1"
[[service]]
name = "svc.example.com."
policy = "geo"
pools = ["eu", "us"]
ecs = true
"#,
        db.display()
    )
}

/// The address answered for svc.example.com to a client at `client` (ECS /32), over UDP.
fn steered(s: &Served, client: &'static str) -> String {
    let q = ecs_query(
        0x4242,
        "svc.example.com.",
        RecordType::A,
        Some((client, 32)),
    );
    let m = Message::from_vec(&udp_raw(s.udp, &q.to_vec().unwrap()).expect("answer")).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let a: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(a.len(), 1, "{a:?}");
    a[0].clone()
}

/// A client in Great Britain (81.2.69.142) goes to eu, one in the United States
/// (216.160.83.56) to us: what MaxMind's City test database says of them.
fn assert_steered_by_the_database(s: &Served) {
    assert_eq!(steered(s, "81.2.69.142"), "192.0.2.1");
    assert_eq!(steered(s, "216.160.83.56"), "198.51.100.1");
}

#[test]
fn a_geoip_database_missing_or_corrupt_at_start_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let city = std::fs::read(city_db()).unwrap();
    let db = dir.path().join("GeoIP2-City.mmdb");
    let cfg = write_config(dir.path(), &geo_tables(&db));
    // Missing: the configuration check names it at its place; unreadable as a database: the
    // database's own error names it.
    let cases: [(&str, Option<&[u8]>, &str); 4] = [
        ("missing", None, "geo.database: "),
        (
            "garbage",
            Some(b"not a MaxMind DB\n"),
            "not a valid MaxMind DB file",
        ),
        (
            "truncated",
            Some(&city[..city.len() / 2]),
            "not a valid MaxMind DB file",
        ),
        ("empty", Some(b""), "not a valid MaxMind DB file"),
    ];
    for (what, bytes, reason) in cases {
        match bytes {
            Some(b) => std::fs::write(&db, b).unwrap(),
            None => {
                let _ = std::fs::remove_file(&db);
            }
        }
        for command in ["check", "serve"] {
            let out = Command::new(BIN)
                .args([command, "--config"])
                .arg(&cfg)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{what}, {command}: {err}");
            let named = match bytes {
                Some(_) => format!("geo database {}: ", db.display()),
                None => format!("{}:", cfg.display()),
            };
            assert!(err.contains(&named), "{what}, {command}: {err}");
            assert!(
                err.contains(&db.display().to_string()),
                "{what}, {command}: {err}"
            );
            assert!(err.contains(reason), "{what}, {command}: {err}");
            assert!(!err.contains("listening"), "{what}, {command}: {err}");
        }
    }
    // The same file whole starts and steers.
    std::fs::write(&db, &city).unwrap();
    let s = Served::start(&cfg, &[]);
    assert_steered_by_the_database(&s);
    s.stop();
}

#[test]
fn a_geoip_database_corrupt_or_removed_at_reload_leaves_the_old_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let city = std::fs::read(city_db()).unwrap();
    let db = dir.path().join("GeoIP2-City.mmdb");
    std::fs::write(&db, &city).unwrap();
    let cfg = write_config(dir.path(), &geo_tables(&db));
    let s = Served::start(&cfg, &[]);
    assert_steered_by_the_database(&s);
    let reload_errors = r#"meridian_config_reloads_total{result="error"}"#;
    let geo_errors = r#"meridian_geo_database_reloads_total{result="error"}"#;
    let geo_ok = r#"meridian_geo_database_reloads_total{result="ok"}"#;

    // A truncated file renamed into place: a configuration reload is refused, naming it...
    replace(&db, &city[..city.len() / 3]);
    let (status, body) = s.post("/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(&db.display().to_string()), "{body}");
    assert!(body.contains("not a valid MaxMind DB file"), "{body}");
    s.wait_metric(3 * SECOND, reload_errors, 1.0);
    assert_steered_by_the_database(&s);
    // ...and the database check (every 10 s) refuses it too, once, and logs it.
    s.wait_metric(15 * SECOND, geo_errors, 1.0);
    s.wait_logged(SECOND, &["geo database rejected; keeping the loaded one"]);
    assert_steered_by_the_database(&s);

    // Removed: refused again, the old database still answers.
    std::fs::remove_file(&db).unwrap();
    let (status, body) = s.post("/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("GeoIP2-City.mmdb does not exist"), "{body}");
    s.wait_metric(3 * SECOND, reload_errors, 2.0);
    assert_steered_by_the_database(&s);
    // The check finds it missing (and counts it at every check until it is back).
    s.wait_metric(15 * SECOND, geo_errors, 2.0);
    s.wait_logged(SECOND, &["geo database unreadable; keeping the loaded one"]);
    assert_steered_by_the_database(&s);

    // A good file again: the check swaps it in and counts it; a reload takes it too.
    replace(&db, &city);
    s.wait_metric(15 * SECOND, geo_ok, 1.0);
    s.wait_logged(SECOND, &["geo database reloaded"]);
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    assert_steered_by_the_database(&s);
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// Zone files

#[test]
fn a_zone_file_deleted_or_corrupted_before_a_reload_leaves_the_old_data_serving() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let zone = dir.path().join("example.com.zone");
    let s = Served::start(&cfg, &[]);
    let www = ["192.0.2.10", "192.0.2.11"];
    assert_eq!(s.addresses("www.example.com."), www);
    let errors = r#"meridian_config_reloads_total{result="error"}"#;
    let half = &EXAMPLE_ZONE[..EXAMPLE_ZONE.find("www").unwrap() + 10];
    let broken: [(&str, Option<&[u8]>, &str); 4] = [
        ("deleted", None, "example.com.zone does not exist"),
        ("cut mid-record", Some(half.as_bytes()), "example.com.zone:"),
        (
            "binary garbage",
            Some(&[0xff, 0xfe, 0, 1, 2, 3, b'\n']),
            "example.com.zone",
        ),
        (
            "no SOA",
            Some(b"$ORIGIN example.com.\nwww 300 IN A 192.0.2.99\n"),
            "no SOA",
        ),
    ];
    for (i, (what, bytes, reason)) in broken.into_iter().enumerate() {
        match bytes {
            Some(b) => replace(&zone, b),
            None => std::fs::remove_file(&zone).unwrap(),
        }
        // By the admin API (the error named in its answer) and by SIGHUP: both refused.
        let (status, body) = s.post("/reload");
        assert_eq!(status, 422, "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        s.signal(libc::SIGHUP);
        s.wait_metric(5 * SECOND, errors, 2.0 * (i + 1) as f64);
        assert_eq!(s.addresses("www.example.com."), www, "{what}");
        assert_eq!(
            s.ask("nope.example.com.", RecordType::A)
                .metadata
                .response_code,
            ResponseCode::NXDomain,
            "{what}"
        );
    }
    assert!(s.logged(&["reload refused, still serving the previous configuration"]));
    assert_eq!(s.metric(r#"meridian_config_generation"#), 1.0);
    // The file fixed: the next reload serves it.
    let edited = EXAMPLE_ZONE.replace("192.0.2.11", "192.0.2.12");
    replace(&zone, edited.as_bytes());
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.addresses("www.example.com."),
        ["192.0.2.10", "192.0.2.12"]
    );
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// The state file

/// A weighted service over e1 (192.0.2.1) and e2 (192.0.2.2), both answered together while
/// they serve; neither has checks (always up unless overridden).
fn two_endpoints(more: &str) -> String {
    format!(
        r#"
[[region]]
name = "r1"
location = [51.5, -0.1]
[[pool]]
name = "p"
region = "r1"
[[pool.endpoint]]
name = "e1"
address = "192.0.2.1"
[[pool.endpoint]]
name = "e2"
address = "192.0.2.2"
[[service]]
name = "svc.example.com."
policy = "weighted"
pools = ["p"]
answers = 2
{more}
"#
    )
}

#[test]
fn an_unwritable_state_file_is_logged_and_counted_and_the_override_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let cfg = write_config(
        dir.path(),
        &two_endpoints(&format!("[health]\nstate_file = \"{}\"\n", state.display())),
    );
    // The state file is written to state.tmp, then renamed: a directory there makes every write
    // fail (as a full or read-only disk would), whoever the test runs as.
    std::fs::create_dir(dir.path().join("state.tmp")).unwrap();
    let s = Served::start(&cfg, &[]);
    let both = ["192.0.2.1", "192.0.2.2"];
    assert_eq!(s.addresses("svc.example.com."), both);
    let write_errors = r#"meridian_health_state_file_errors_total{operation="write"}"#;
    let read_errors = r#"meridian_health_state_file_errors_total{operation="read"}"#;
    // Every fault counter is exported at zero from the start, so that an alert's increase()
    // sees the first fault.
    let text = s.exposition();
    for series in [
        r#"meridian_geo_database_reloads_total{result="ok"}"#,
        r#"meridian_geo_database_reloads_total{result="error"}"#,
        read_errors,
        write_errors,
        r#"meridian_health_webhook_deliveries_total{result="delivered"}"#,
        r#"meridian_health_webhook_deliveries_total{result="failed"}"#,
        r#"meridian_health_webhook_deliveries_total{result="dropped"}"#,
        r#"meridian_clock_jumps_total{direction="forward"}"#,
        r#"meridian_clock_jumps_total{direction="backward"}"#,
    ] {
        assert!(text.lines().any(|l| l == format!("{series} 0")), "{series}");
    }

    // A drain: the write fails, is logged and counted; the answers follow the drain at once.
    let (status, body) = s.post("/endpoints/e1/drain");
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.metric(write_errors), 1.0);
    s.wait_logged(
        SECOND,
        &[
            "state.json: cannot write",
            "the override holds until a restart",
        ],
    );
    wait_for(2 * SECOND, "e1 withdrawn", || {
        s.addresses("svc.example.com.") == ["192.0.2.2"]
    });
    assert!(!state.exists());
    // A reload keeps it: the file (still absent) says what it said when last read.
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    for _ in 0..20 {
        assert_eq!(
            s.addresses("svc.example.com."),
            ["192.0.2.2"],
            "after the reload"
        );
    }

    // Unreadable (not JSON): the reload goes on, the overrides stay, the read is counted.
    std::fs::write(&state, "{ not json").unwrap();
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.metric(read_errors), 1.0);
    s.wait_logged(SECOND, &["overrides unchanged", "not a valid state file"]);
    assert_eq!(s.addresses("svc.example.com."), ["192.0.2.2"]);

    // Writable again: the next change is written, and nothing more is counted.
    std::fs::remove_dir(dir.path().join("state.tmp")).unwrap();
    let (status, body) = s.post("/endpoints/e2/drain?expires=1h");
    assert_eq!(status, 200, "{body}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["e1"]["kind"], "drain");
    assert_eq!(saved["e2"]["kind"], "drain");
    // Both drained: every endpoint withdrawn, the fallback answers them all.
    let (status, _) = s.post("/endpoints/e1/undrain");
    assert_eq!(status, 200);
    let (status, _) = s.post("/endpoints/e2/undrain");
    assert_eq!(status, 200);
    wait_for(2 * SECOND, "both back", || {
        s.addresses("svc.example.com.") == both
    });
    assert_eq!(s.metric(write_errors), 1.0);
    assert_eq!(s.metric(read_errors), 1.0);
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// Webhooks

#[test]
fn webhook_targets_down_delay_nothing_and_each_failed_delivery_is_counted() {
    let targets = Targets::new();
    let web = targets.start(0);
    let (live, events, live_rt) = webhook_receiver();
    let never = closed_port("127.0.0.1");
    let (_hole, hole) = tcp_listening("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let hook = |port: u16| {
        format!("{{ url = \"http://127.0.0.1:{port}/hook\", timeout = \"300ms\", retries = 1 }}")
    };
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
[checks.web]
kind = "http"
port = {port}
interval = "200ms"
timeout = "150ms"
rise = 2
fall = 2
jitter = "0s"
[[region]]
name = "r1"
location = [51.5, -0.1]
[[pool]]
name = "p"
region = "r1"
[[pool.endpoint]]
name = "e1"
address = "192.0.2.1"
check_address = "127.0.0.1"
checks = ["web"]
[[pool.endpoint]]
name = "e2"
address = "192.0.2.2"
[[service]]
name = "svc.example.com."
policy = "weighted"
pools = ["p"]
answers = 2
[health]
webhooks = [{live}, {never}, {hole}]
"#,
            port = web.port,
            live = hook(live.port()),
            never = hook(never),
            hole = hook(hole),
        ),
    );
    let s = Served::start(&cfg, &[]);
    let delivered = r#"meridian_health_webhook_deliveries_total{result="delivered"}"#;
    let failed = r#"meridian_health_webhook_deliveries_total{result="failed"}"#;
    // e1's first verdict (unknown -> up): the live sink has it, the other two fail (the
    // blackhole after two 300 ms timeouts and a 200 ms pause).
    s.wait_metric(5 * SECOND, delivered, 1.0);
    s.wait_metric(5 * SECOND, failed, 2.0);
    assert_eq!(events.lock().unwrap().len(), 1);

    // e1's target fails: the answers follow within a probe or two, whatever the webhooks do.
    web.set_status(503);
    let took = wait_for(3 * SECOND, "e1 withdrawn", || {
        s.addresses("svc.example.com.") == ["192.0.2.2"]
    });
    assert!(took < Duration::from_millis(1500), "{took:?}");
    s.wait_metric(5 * SECOND, delivered, 2.0);
    s.wait_metric(5 * SECOND, failed, 4.0);

    // The live sink goes away too: every delivery of the next change fails.
    drop(live_rt);
    web.set_status(200);
    let took = wait_for(3 * SECOND, "e1 back", || {
        s.addresses("svc.example.com.") == ["192.0.2.1", "192.0.2.2"]
    });
    assert!(took < Duration::from_millis(1500), "{took:?}");
    s.wait_metric(5 * SECOND, failed, 7.0);
    assert_eq!(s.metric(delivered), 2.0);
    assert_eq!(events.lock().unwrap().len(), 2);
    let refused = format!("127.0.0.1:{never}/hook");
    s.wait_logged(SECOND, &["webhook not delivered", &refused]);
    s.wait_logged(
        SECOND,
        &["webhook failed", &format!("127.0.0.1:{hole}/hook")],
    );
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// Probe targets that accept and never answer

#[test]
fn probe_targets_that_accept_and_never_answer_withdraw_only_their_endpoints() {
    let targets = Targets::new();
    let web = targets.start(0);
    // Both complete the TCP handshake (the kernel does, into the backlog) and never answer.
    let (_tcp_hole, tcp_port) = tcp_listening("127.0.0.1");
    let (_http_hole, http_port) = tcp_listening("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
[checks.web]
kind = "http"
port = {web}
interval = "100ms"
timeout = "80ms"
fall = 2
jitter = "0s"
[checks.tcphole]
kind = "tcp"
port = {tcp_port}
send = "PING\r\n"
expect = "+PONG"
interval = "500ms"
timeout = "300ms"
jitter = "0s"
[checks.httphole]
kind = "http"
port = {http_port}
interval = "500ms"
timeout = "300ms"
jitter = "0s"
[[region]]
name = "r1"
location = [51.5, -0.1]
[[pool]]
name = "p"
region = "r1"
[[pool.endpoint]]
name = "good"
address = "192.0.2.1"
check_address = "127.0.0.1"
checks = ["web"]
[[pool.endpoint]]
name = "tcphole"
address = "192.0.2.2"
check_address = "127.0.0.1"
checks = ["tcphole"]
[[pool.endpoint]]
name = "httphole"
address = "192.0.2.3"
check_address = "127.0.0.1"
checks = ["httphole"]
[[service]]
name = "svc.example.com."
policy = "weighted"
pools = ["p"]
answers = 3
"#,
            web = web.port
        ),
    );
    let s = Served::start(&cfg, &[]);
    wait_for(3 * SECOND, "the blackholed endpoints withdrawn", || {
        s.addresses("svc.example.com.") == ["192.0.2.1"]
    });
    for (endpoint, check) in [("tcphole", "tcphole"), ("httphole", "httphole")] {
        let fails = format!(
            "meridian_health_probes_total{{endpoint=\"{endpoint}\",check=\"{check}\",result=\"fail\"}}"
        );
        assert!(s.metric(&fails) >= 1.0, "{fails}");
        let down =
            format!("meridian_health_transitions_total{{endpoint=\"{endpoint}\",to=\"down\"}}");
        assert_eq!(s.metric(&down), 1.0, "{down}");
        let line = s.lines_with(&format!("endpoint={endpoint} "));
        assert!(
            line.iter()
                .any(|l| l.contains("endpoint state changed") && l.contains("timed out")),
            "{line:#?}"
        );
    }
    // The healthy endpoint's checks are not held up: its failure shows within its own timing.
    web.set_status(500);
    let took = wait_for(3 * SECOND, "good withdrawn", || {
        s.ask("svc.example.com.", RecordType::A).answers.len() == 3
    });
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // (Nothing serves now: the service fails open, all three answered.)
    web.set_status(200);
    wait_for(3 * SECOND, "good back", || {
        s.addresses("svc.example.com.") == ["192.0.2.1"]
    });
    assert_eq!(
        s.addresses("www.example.com."),
        ["192.0.2.10", "192.0.2.11"]
    );
    s.stop();
}

// ---------------------------------------------------------------------------------------------
// The clock jumping

/// The monitor's clock (tokio's, the system's monotonic clock in a server) jumps an hour at once,
/// as after a paused VM: no endpoint flaps, probes do not run in a burst to catch up, latency
/// ages out by its window, and an override ends at its deadline, not before.
#[tokio::test(start_paused = true)]
async fn a_jump_of_the_monitors_clock_flaps_nothing_and_ages_latency_by_its_window() {
    let switch = Switch::start().await;
    let check = switch_check("s", switch.addr, "1s", "rise = 2\nfall = 2");
    let cfg = config(&pool(&check, &[("a", "s"), ("b", "")]));
    let m = TestMonitor::start(&cfg);
    let t0 = tokio::time::Instant::now();
    at(t0, 10.5).await;
    let before = m.status("a");
    assert_eq!(before.health, meridian::health::state::Health::Up);
    assert_eq!(
        before.latency.samples, 11,
        "one probe a second, the first at once"
    );
    m.monitor
        .set_override(
            "b",
            Some(meridian::health::state::OverrideKind::Drain),
            Some(Duration::from_secs(7200)),
        )
        .unwrap();

    // One hour in one step.
    tokio::time::advance(Duration::from_secs(3600)).await;
    at(t0, 3610.5 + 0.2).await;
    let after = m.status("a");
    assert_eq!(after.health, meridian::health::state::Health::Up, "no flap");
    assert_eq!(after.since, before.since, "no state change at all");
    // The window holds five one-minute slices: the hour-old samples are gone, and the probes
    // since the jump are one a second from it (no catching up on 3,600 missed ones).
    assert!(
        (1..=2).contains(&after.latency.samples),
        "{} samples after the jump",
        after.latency.samples
    );
    assert_eq!(m.serving("b"), meridian::health::state::Serving::Drained);
    at(t0, 10.5 + 7200.5).await;
    assert_eq!(
        m.serving("b"),
        meridian::health::state::Serving::Up,
        "expired at its deadline"
    );
    m.stop().await;
}

/// libfaketime, which moves the wall clock of the process it is preloaded into; `None` where it
/// is not installed (Debian's `faketime` package).
fn libfaketime() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
    ]
    .iter()
    .map(|d| Path::new(d).join("libfaketime.so.1"))
    .find(|p| p.exists())
}

/// `www.example.com. A` with an OPT carrying the COOKIE option `cookie`.
fn with_cookie(cookie: &[u8]) -> Vec<u8> {
    let mut q = vec![0x77, 0x77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
    q.extend_from_slice(&[0, 10]);
    q.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    q.extend_from_slice(cookie);
    q
}

/// Ask with `cookie`: the reply must be NOERROR with www's two addresses; the cookie it returns.
fn ask_with_cookie(s: &Served, cookie: &[u8]) -> Vec<u8> {
    let reply = udp_raw(s.udp, &with_cookie(cookie)).expect("an answer");
    let layout = crate::support::wire::walk(&reply, true).unwrap();
    assert_eq!((layout.rcode(), layout.counts[1]), (0, 2), "answered");
    let rdata = &layout.opt().rdata;
    assert_eq!(&rdata[..2], &[0, 10], "a COOKIE option back");
    rdata[4..].to_vec()
}

/// The system's wall clock steps two hours forward, then back, under a running server (libfaketime
/// moves what `clock_gettime(CLOCK_REALTIME)` says; the monotonic clock runs on): the step is
/// logged and counted each way, no endpoint flaps, a drain set before it keeps its deadline
/// across reloads, the state file's expiry is written again on each new clock (a restart would
/// find the same deadline), and the answers never change. Server
/// cookies, whose time stamps are wall-clock times by RFC 9018, are the one thing it moves: one
/// made before the step is invalid after it (answered all the same, with a fresh cookie, and
/// counted) and valid again once the clock is back.
#[test]
fn a_wall_clock_jump_is_counted_and_moves_no_deadline_and_no_answer() {
    let Some(lib) = libfaketime() else {
        eprintln!("skipped: libfaketime is not installed (Debian package faketime)");
        return;
    };
    let up = tcp_accepting();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let cfg = write_config(
        dir.path(),
        &two_endpoints(&format!(
            "[checks.up]\nkind = \"tcp\"\nport = {up}\ninterval = \"500ms\"\ntimeout = \"400ms\"\nfall = 3\njitter = \"0s\"\n\
             [health]\nstate_file = \"{}\"\n",
            state.display()
        ))
        .replace(
            "address = \"192.0.2.2\"\n",
            "address = \"192.0.2.2\"\ncheck_address = \"127.0.0.1\"\nchecks = [\"up\"]\n",
        ),
    );
    let lib = lib.display().to_string();
    let offset_file = offset.display().to_string();
    let s = Served::start(
        &cfg,
        &[
            ("LD_PRELOAD", &lib),
            ("FAKETIME_TIMESTAMP_FILE", &offset_file),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    wait_for(3 * SECOND, "e2 probed up", || {
        s.metric(r#"meridian_health_transitions_total{endpoint="e2",to="up"}"#) == 1.0
    });
    let (status, body) = s.post("/endpoints/e1/drain?expires=30m");
    assert_eq!(status, 200, "{body}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let expires = saved["e1"]["expires"].as_u64().unwrap();
    wait_for(2 * SECOND, "e1 drained", || {
        s.addresses("svc.example.com.") == ["192.0.2.2"]
    });
    // A server cookie made now, valid when it comes back.
    let cookie = ask_with_cookie(&s, &[7; 8]);
    assert_eq!(cookie.len(), 24);
    assert_eq!(ask_with_cookie(&s, &cookie), cookie);
    let cookies = |result: &str| {
        let series = format!("meridian_dns_cookies_total{{result=\"{result}\"}}");
        s.metric(&series)
    };
    wait_for(3 * SECOND, "cookies counted", || cookies("valid") == 1.0);

    // Two hours forward: the file's expiry is in the past on the new wall clock.
    std::fs::write(&offset, "+2h\n").unwrap();
    s.wait_metric(
        5 * SECOND,
        r#"meridian_clock_jumps_total{direction="forward"}"#,
        1.0,
    );
    s.wait_logged(SECOND, &["the wall clock jumped", "direction=\"forward\""]);
    // The state file's expiry is written again on the new clock: a restart would read the same
    // 30 minutes (less the seconds gone by).
    s.wait_logged(SECOND, &["state file written again"]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let moved = saved["e1"]["expires"].as_u64().unwrap();
    assert!(
        (expires + 7190..=expires + 7200).contains(&moved),
        "{moved} vs {expires}"
    );
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    for _ in 0..20 {
        assert_eq!(
            s.addresses("svc.example.com."),
            ["192.0.2.2"],
            "still drained"
        );
    }
    let status: serde_json::Value =
        serde_json::from_str(&super::served::http(s.admin, "GET", "/status", b"").1).unwrap();
    let e1 = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "e1")
        .unwrap()
        .clone();
    let left = e1["override"]["expires_in_seconds"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!((1700.0..=1800.0).contains(&left), "{e1}");
    // The server cookie is two hours old on the wall clock its time stamp is read against
    // (RFC 9018): not valid, so answered as a client cookie alone, with a fresh one.
    let fresh = ask_with_cookie(&s, &cookie);
    assert_ne!(fresh, cookie);
    wait_for(3 * SECOND, "an invalid cookie counted", || {
        cookies("invalid") == 1.0
    });

    // And back: counted the other way; the file is written again, with the expiry the drain
    // wrote (to the second).
    std::fs::write(&offset, "+0\n").unwrap();
    s.wait_metric(
        5 * SECOND,
        r#"meridian_clock_jumps_total{direction="backward"}"#,
        1.0,
    );
    wait_for(SECOND, "the state file written again", || {
        s.lines_with("state file written again").len() == 2
    });
    let (status, body) = s.post("/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.addresses("svc.example.com."), ["192.0.2.2"]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let back = saved["e1"]["expires"].as_u64().unwrap();
    assert!(
        (expires - 3..=expires).contains(&back),
        "{back} vs {expires}"
    );
    assert_eq!(
        s.metric(r#"meridian_health_transitions_total{endpoint="e2",to="down"}"#),
        0.0,
        "no flap"
    );
    assert_eq!(
        s.metric(r#"meridian_clock_jumps_total{direction="forward"}"#),
        1.0
    );
    assert_eq!(
        s.addresses("www.example.com."),
        ["192.0.2.10", "192.0.2.11"]
    );
    // Back on the clock it was made on, the first cookie is valid again.
    assert_eq!(ask_with_cookie(&s, &cookie), cookie);
    wait_for(3 * SECOND, "valid again", || cookies("valid") == 2.0);
    s.stop();
}
