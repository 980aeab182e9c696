//! Health checking end to end, on the real clock: the real server probes real HTTP servers on
//! loopback that the tests start, break, kill and restart (the server runs on a multi-thread
//! runtime, its targets and the webhook sink on others: no paused time for these);
//! state changes reach a real webhook receiver; blackholed targets do not stall other checks,
//! measured in real time; reloads keep surviving endpoints; state file edits apply on reload.
//! The monitor's timing (rise and fall, damping, overrides' expiry, the state file across a
//! restart, latency ageing) is tested exactly on paused time in `monitor_time`.

use std::time::Duration;

use crate::support::target::Targets;
use crate::support::webhook::webhook_receiver;
use crate::support::*;
use meridian::health::state::{Health, OverrideKind, Serving};

fn health_of(srv: &TestServer, name: &str) -> Health {
    let m = srv.server.as_ref().unwrap().monitor();
    m.status()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
        .health
}

#[test]
fn endpoint_follows_its_server_down_and_up_and_webhooks_hear_it() {
    let targets = Targets::new();
    let mut web = targets.start(0);
    let (hook, events, _hook_rt) = webhook_receiver();
    let extra = format!(
        r#"
[checks.web]
kind = "http"
port = {port}
path = "/healthz"
interval = "100ms"
timeout = "80ms"
rise = 2
fall = 3
jitter = "10ms"

[[pool]]
name = "eu"
checks = ["web"]
[[pool.endpoint]]
name = "eu1"
address = "192.0.2.1"
check_address = "127.0.0.1"

[health]
webhooks = [{{ url = "http://{hook}/hook", timeout = "1s", retries = 2 }}]
"#,
        port = web.port
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let monitor = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "first verdict", || monitor.ready());
    assert_eq!(health_of(&srv, "eu1"), Health::Up);
    assert_eq!(monitor.serving("eu1"), Some(Serving::Up));

    // Wrong status: down (after `fall` failures: counted exactly in
    // monitor_time::rise_and_fall_count_probe_intervals, on paused time).
    web.set_status(503);
    wait_for(Duration::from_secs(3), "down on 503", || {
        health_of(&srv, "eu1") == Health::Down
    });
    let last = monitor
        .status()
        .into_iter()
        .find(|s| s.name == "eu1")
        .unwrap();
    assert!(last.last_detail.contains("503"), "{}", last.last_detail);

    // Back to 200: up after `rise` successes.
    web.set_status(200);
    wait_for(Duration::from_secs(3), "up again", || {
        health_of(&srv, "eu1") == Health::Up
    });

    // Killed: down again; restarted on the same port: up again.
    targets.kill(&mut web);
    wait_for(Duration::from_secs(3), "down when killed", || {
        health_of(&srv, "eu1") == Health::Down
    });
    targets.restart(&mut web);
    wait_for(Duration::from_secs(3), "up when restarted", || {
        health_of(&srv, "eu1") == Health::Up
    });

    // The webhook heard every change, in order, with its reason and detail.
    wait_for(Duration::from_secs(3), "webhooks", || {
        events.lock().unwrap().len() >= 5
    });
    let ev = events.lock().unwrap().clone();
    let path: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("unknown", "up"),
        ("up", "down"),
        ("down", "up"),
        ("up", "down"),
        ("down", "up"),
    ];
    assert_eq!(path, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(
        ev.iter()
            .all(|e| e["endpoint"] == "eu1" && e["pool"] == "eu")
    );
    assert!(
        ev[1]["detail"].as_str().unwrap().contains("503"),
        "{}",
        ev[1]
    );
}

#[test]
fn blackholed_targets_cost_only_their_timeout() {
    // A listener that accepts and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let hole_thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().take(5000) {
            held.push(s);
        }
    });
    let targets = Targets::new();
    let web = targets.start(0);
    let mut extra = format!(
        r#"
[checks.hole]
kind = "http"
port = {hole_port}
interval = "1s"
timeout = "500ms"

[checks.web]
kind = "http"
port = {port}
interval = "100ms"
timeout = "80ms"
fall = 2
jitter = "10ms"

[[pool]]
name = "good"
checks = ["web"]
[[pool.endpoint]]
name = "good1"
address = "192.0.2.1"
check_address = "127.0.0.1"

[[pool]]
name = "holes"
checks = ["hole"]
"#,
        port = web.port
    );
    for i in 0..300 {
        extra.push_str(&format!("[[pool.endpoint]]\nname = \"hole{i}\"\naddress = \"192.0.2.9\"\ncheck_address = \"127.0.0.1\"\n"));
    }
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let m = srv.server.as_ref().unwrap().monitor().clone();
    wait_for(Duration::from_secs(3), "good1 up", || {
        health_of(&srv, "good1") == Health::Up
    });
    web.set_status(500);
    let took = wait_for(Duration::from_secs(3), "good1 down", || {
        health_of(&srv, "good1") == Health::Down
    });
    assert!(
        took < Duration::from_millis(1500),
        "blackholes delayed a healthy check: {took:?}"
    );
    // The blackholed ones all time out and go down; the good one is unaffected.
    wait_for(Duration::from_secs(6), "holes down", || {
        m.status()
            .iter()
            .filter(|s| s.pool == "holes")
            .all(|s| s.health == Health::Down)
    });
    let hole0 = m.status().into_iter().find(|s| s.name == "hole0").unwrap();
    assert!(
        hole0.last_detail.contains("timed out"),
        "{}",
        hole0.last_detail
    );
    drop(srv);
    drop(hole_thread);
}

#[test]
fn reload_keeps_surviving_endpoints_and_starts_new_ones() {
    let targets = Targets::new();
    let web = targets.start(0);
    let config = |endpoints: &[&str], interval: &str| {
        let mut t = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\n[checks.web]\nkind = \"http\"\nport = {}\ninterval = \"{interval}\"\ntimeout = \"80ms\"\njitter = \"10ms\"\n[[pool]]\nname = \"p\"\nchecks = [\"web\"]\n",
            web.port
        );
        for e in endpoints {
            t.push_str(&format!("[[pool.endpoint]]\nname = \"{e}\"\naddress = \"192.0.2.1\"\ncheck_address = \"127.0.0.1\"\n"));
        }
        meridian::config::Config::parse(std::path::Path::new("test.toml"), &t).unwrap()
    };
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], "");
    let server = srv.server.as_ref().unwrap();
    let m = server.monitor().clone();
    let snap = || meridian::snapshot::assemble(&config(&[], "100ms")).unwrap();
    server.reload(&config(&["a", "b"], "100ms"), snap());
    wait_for(Duration::from_secs(3), "a and b up", || {
        m.ready() && m.status().len() == 2
    });
    m.set_override("a", Some(OverrideKind::Drain), None)
        .unwrap();
    let a_since = m.status()[0].since;

    // Same checks for a, b removed, c added.
    server.reload(&config(&["a", "c"], "100ms"), snap());
    let names: Vec<String> = m.status().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "c"]);
    wait_for(Duration::from_secs(3), "c up", || {
        health_of(&srv, "c") == Health::Up
    });
    let a = m.status().into_iter().find(|s| s.name == "a").unwrap();
    assert_eq!(
        a.since, a_since,
        "a's health state was restarted by a reload that did not touch it"
    );
    assert_eq!(a.serving, Serving::Drained, "override lost on reload");
    assert!(a.latency.samples > 0);

    // Changing the check restarts a's health (new verdict needed) but keeps its override.
    server.reload(&config(&["a", "c"], "150ms"), snap());
    wait_for(Duration::from_secs(3), "a re-verdicted", || m.ready());
    let a = m.status().into_iter().find(|s| s.name == "a").unwrap();
    assert!(a.since > a_since);
    assert_eq!(a.serving, Serving::Drained);
    // Removed endpoints stop probing: their probers' reports are ignored, and b is gone.
    assert!(m.serving("b").is_none());
}

#[test]
fn state_file_edits_apply_on_reload() {
    let targets = Targets::new();
    let web = targets.start(0);
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let extra = format!(
        "[checks.web]\nkind = \"http\"\nport = {}\ninterval = \"100ms\"\ntimeout = \"80ms\"\njitter = \"10ms\"\n\
         [[pool]]\nname = \"p\"\nchecks = [\"web\"]\n[[pool.endpoint]]\nname = \"a\"\naddress = \"192.0.2.1\"\ncheck_address = \"127.0.0.1\"\n\
         [health]\nstate_file = \"{}\"\n",
        web.port,
        state_file.display()
    );
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], &extra);
    let server = srv.server.as_ref().unwrap();
    let m = server.monitor().clone();
    wait_for(Duration::from_secs(3), "ready", || m.ready());
    assert_eq!(m.serving("a"), Some(Serving::Up));
    let reload = || {
        let cfg = meridian::config::Config::load(&srv.config_path).unwrap();
        server.reload(&cfg, meridian::snapshot::assemble(&cfg).unwrap());
    };
    meridian::health::overrides::edit(&state_file, "a", Some(OverrideKind::ForceDown), None)
        .unwrap();
    assert_eq!(
        m.serving("a"),
        Some(Serving::Up),
        "applied before the reload"
    );
    reload();
    assert_eq!(m.serving("a"), Some(Serving::Down));
    meridian::health::overrides::edit(&state_file, "a", None, None).unwrap();
    reload();
    assert_eq!(m.serving("a"), Some(Serving::Up));
    // A corrupt state file changes nothing.
    m.set_override("a", Some(OverrideKind::Drain), None)
        .unwrap();
    std::fs::write(&state_file, "{ not json").unwrap();
    reload();
    assert_eq!(m.serving("a"), Some(Serving::Drained));
}
