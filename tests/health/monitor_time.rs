//! The monitor's timing on tokio's paused time: rise and fall counted in probe intervals, flap
//! damping and the end of its hold-down, an override's expiry, overrides kept in the state file
//! across a restart while time passes, and latency that ages out of the window. Each test runs a
//! monitor on its own ([`TestMonitor`]) with real `tcp` probes of a [`Switch`] served by the
//! same runtime, and reads what the monitor publishes (its view) at exact virtual instants:
//! `t0 + 2.5 s` is two and a half seconds after the first probe, to the nanosecond.

use std::time::Duration;

use meridian::health::latency::{RELATIVE_ERROR, UNIT};
use meridian::health::state::{Health, OverrideKind, Serving};
use meridian::monitor::OverrideError;
use tokio::time::Instant;

use crate::support::monitor::{TestMonitor, at, config, pool};
use crate::support::target::{Switch, switch_check};

/// Health and what the published view serves, for `name`.
fn state(m: &TestMonitor, name: &str) -> (Health, Serving) {
    (m.health(name), m.serving(name))
}

#[tokio::test(start_paused = true)]
async fn rise_and_fall_count_probe_intervals() {
    let sw = Switch::start().await;
    let check = switch_check("c", sw.addr, "1s", "rise = 2\nfall = 3");
    let m = TestMonitor::start(&config(&pool(&check, &[("a", "c")])));
    let t0 = Instant::now();
    at(t0, 0.5).await;
    // The first probe (at 0) decides at once.
    assert_eq!(state(&m, "a"), (Health::Up, Serving::Up));
    sw.set_up(false);
    // Failures at 1 and 2 are not yet `fall` (3); the third, at 3, is.
    at(t0, 2.5).await;
    assert_eq!(state(&m, "a"), (Health::Up, Serving::Up));
    at(t0, 3.5).await;
    assert_eq!(state(&m, "a"), (Health::Down, Serving::Down));
    assert_eq!(
        m.status("a").last_detail,
        "reply does not start with \"up\" (got \"do\")"
    );
    sw.set_up(true);
    // One success (at 4) is not `rise` (2); the second, at 5, is.
    at(t0, 4.5).await;
    assert_eq!(state(&m, "a"), (Health::Down, Serving::Down));
    at(t0, 5.5).await;
    assert_eq!(state(&m, "a"), (Health::Up, Serving::Up));
    assert_eq!(
        m.status("a").since,
        (t0 + Duration::from_secs(5)).into_std()
    );
}

#[tokio::test(start_paused = true)]
async fn a_flapping_endpoint_is_held_down_until_the_hold_ends() {
    let sw = Switch::start().await;
    let damping =
        "rise = 1\nfall = 1\nflap_threshold = 3\nflap_window = \"60s\"\nhold_down = \"30s\"";
    let check = switch_check("c", sw.addr, "1s", damping);
    let m = TestMonitor::start(&config(&pool(&check, &[("a", "c")])));
    let t0 = Instant::now();
    // Up at 0 (the first verdict, not counted), then a change at every probe: down at 1, up at
    // 2, down at 3; the rise at 4 would be the fourth within 60 s: refused, held until 34.
    for (i, up) in [false, true, false, true].into_iter().enumerate() {
        at(t0, i as f64 + 0.5).await;
        sw.set_up(up);
    }
    at(t0, 4.5).await;
    assert_eq!(state(&m, "a"), (Health::Down, Serving::Down));
    // Every probe passes from 4 on, and still it is held.
    at(t0, 33.5).await;
    assert_eq!(state(&m, "a"), (Health::Down, Serving::Down));
    assert_eq!(m.status("a").last_detail, "reply starts with \"up\"");
    // The probe at 34, the first at or after the hold's end, brings it up (rise 1).
    at(t0, 34.5).await;
    assert_eq!(state(&m, "a"), (Health::Up, Serving::Up));
    assert_eq!(
        m.status("a").since,
        (t0 + Duration::from_secs(34)).into_std()
    );
}

#[tokio::test(start_paused = true)]
async fn an_override_expires_in_the_view_at_its_deadline() {
    // No checks: nothing but the deadline can change what the view says.
    let real = std::time::Instant::now();
    let m = TestMonitor::start(&config(&pool("", &[("a", "")])));
    let t0 = Instant::now();
    let mut changes = m.monitor.subscribe();
    m.monitor
        .set_override(
            "a",
            Some(OverrideKind::ForceDown),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(m.serving("a"), Serving::Down, "in the view at once");
    assert!(changes.has_changed().unwrap(), "and subscribers told");
    changes.borrow_and_update();
    at(t0, 29.9).await;
    assert_eq!(m.serving("a"), Serving::Down);
    assert!(!changes.has_changed().unwrap());
    at(t0, 30.1).await;
    assert_eq!(m.serving("a"), Serving::Up, "expired at 30 s");
    assert!(
        changes.has_changed().unwrap(),
        "the table rebuilder is told of the expiry"
    );
    // An override for good does not expire.
    m.monitor
        .set_override("a", Some(OverrideKind::Drain), None)
        .unwrap();
    at(t0, 86_400.0).await;
    assert_eq!(m.serving("a"), Serving::Drained);
    // A day of the monitor's time, not of the wall clock's: the expiry did not wait for the
    // real 30 s to pass.
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "{:?}",
        real.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn overrides_survive_a_restart_through_the_state_file() {
    let sw = Switch::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let text = format!(
        "{}[health]\nstate_file = \"{}\"\n",
        pool(
            &switch_check("c", sw.addr, "1s", ""),
            &[("us1", "c"), ("us2", "c"), ("us3", "c")]
        ),
        state_file.display()
    );
    let cfg = config(&text);
    let m = TestMonitor::start(&cfg);
    let t0 = Instant::now();
    at(t0, 0.5).await;
    assert!(m.monitor.ready());
    let set = |name, kind, ttl: Option<u64>| {
        m.monitor
            .set_override(name, Some(kind), ttl.map(Duration::from_millis))
    };
    set("us1", OverrideKind::Drain, None).unwrap();
    set("us2", OverrideKind::ForceDown, Some(3_600_000)).unwrap();
    set("us3", OverrideKind::ForceDown, Some(300)).unwrap();
    assert_eq!(
        set("nope", OverrideKind::Drain, None),
        Err(OverrideError::UnknownEndpoint {
            endpoint: "nope".into()
        })
    );
    let serving = |m: &TestMonitor| ["us1", "us2", "us3"].map(|n| m.serving(n));
    assert_eq!(
        serving(&m),
        [Serving::Drained, Serving::Down, Serving::Down]
    );
    // Drained endpoints are still probed: health stays Up underneath.
    at(t0, 2.5).await;
    assert_eq!(m.health("us1"), Health::Up);
    assert!(m.status("us1").latency.samples >= 3);
    m.stop().await;

    // us3's override expires while no monitor runs.
    at(t0, 3.6).await;
    let m = TestMonitor::start(&cfg);
    assert_eq!(serving(&m), [Serving::Drained, Serving::Down, Serving::Up]);
    // us2 keeps its expiry: still down just before the hour is over, up after.
    let expiry = m.status("us2").override_kind.unwrap().1.unwrap();
    let left = expiry - (t0 + Duration::from_secs_f64(3.6)).into_std();
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    // Clearing removes it from the file too.
    m.monitor.set_override("us1", None, None).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert!(
        saved.get("us1").is_none() && saved.get("us2").is_some() && saved.get("us3").is_none(),
        "{saved}"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_ages_out_of_the_view_when_its_slice_leaves_the_window() {
    let sw = Switch::start().await;
    sw.set_delay(Duration::from_millis(60));
    // One probe every 10 minutes: between two of them only time changes the window (five
    // slices of one minute, the first starting when the monitor started).
    let m = TestMonitor::start(&config(&pool(
        &switch_check("c", sw.addr, "10m", ""),
        &[("a", "c")],
    )));
    let t0 = Instant::now();
    let close = |got: Option<Duration>| {
        let (got, want) = (got.expect("a value"), Duration::from_millis(60));
        let tolerance = want.mul_f64(RELATIVE_ERROR) + UNIT;
        assert!(got.abs_diff(want) <= tolerance, "got {got:?}, want 60 ms");
    };
    at(t0, 0.5).await;
    let v = m.slot("a");
    close(v.p50);
    close(v.p90);
    at(t0, 299.9).await;
    close(m.slot("a").p50);
    // At 300 s the probe at 0 leaves the window: nothing measured, though no result came.
    at(t0, 300.1).await;
    let v = m.slot("a");
    assert_eq!((v.p50, v.p90, v.serving), (None, None, Serving::Up));
    assert_eq!(m.status("a").latency.samples, 0);
    // The next probe, at 600 s, measures again.
    at(t0, 600.5).await;
    close(m.slot("a").p50);
}
