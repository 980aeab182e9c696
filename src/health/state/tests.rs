//! Tests of the health state core, driven by virtual time (`t0 + Duration::from_secs(n)`).

use super::*;
use Health::{Down, Unknown, Up};
use StartupPolicy::{AssumeDown, AssumeUp};

fn params(rise: u32, fall: u32, flap_threshold: u32, window: u64, hold: u64) -> HealthParams {
    let (flap_window, hold_down) = (Duration::from_secs(window), Duration::from_secs(hold));
    HealthParams {
        rise,
        fall,
        flap_threshold,
        flap_window,
        hold_down,
    }
}

/// Feeds `results` ('+' pass, '-' fail) to check 0 at seconds start, start+1, ...; health after each.
fn feed(e: &mut EndpointHealth, t0: Instant, start: u64, results: &str) -> Vec<Health> {
    let at = |i: u64| t0 + Duration::from_secs(start + i);
    results
        .chars()
        .zip(0..)
        .map(|(c, i)| (e.record(0, c == '+', at(i)), e.health()).1)
        .collect()
}

fn change(t: Option<Transition>) -> (Health, Health, String) {
    t.map(|t| (t.from, t.to, t.reason)).expect("a transition")
}

#[test]
fn rise_and_fall_count_consecutive_results() {
    assert_eq!(HealthParams::default(), params(2, 3, 6, 300, 600));
    let mut c = CheckState::new(&params(2, 3, 0, 0, 0));
    // The first result decides; then fall 3 and rise 2, a result of the other kind restarting the run.
    let got: Vec<_> = "+--+---+-++"
        .chars()
        .map(|r| (c.record(r == '+'), c.verdict()).1)
        .collect();
    assert_eq!(got, [Up, Up, Up, Up, Up, Up, Down, Down, Down, Down, Up]);
    assert_eq!((c.record(false), c.successes(), c.failures()), (None, 0, 1));
    let mut c = CheckState::new(&params(0, 0, 0, 0, 0)); // zero counts as one
    assert_eq!(
        [c.record(true), c.record(false), c.record(true)],
        [Some(Up), Some(Down), Some(Up)]
    );
}

#[test]
fn first_result_decides_then_thresholds_apply() {
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut e = EndpointHealth::new(&[params(2, 3, 0, 0, 0)], t0);
    assert_eq!(
        (e.health(), e.has_verdict(), e.since()),
        (Unknown, false, t0)
    );
    assert_eq!(
        change(e.record(0, false, s(1))),
        (Unknown, Down, "check 0: first result failed".into())
    );
    assert_eq!((e.has_verdict(), e.since()), (true, s(1)));
    assert_eq!(
        feed(&mut e, t0, 2, "+-++--"),
        [Down, Down, Down, Up, Up, Up]
    );
    assert_eq!(e.since(), s(5));
    assert_eq!(
        change(e.record(0, false, s(8))),
        (Up, Down, "check 0: 3 consecutive failures (fall 3)".into())
    );
}

#[test]
fn all_checks_must_pass() {
    let (t0, p) = (Instant::now(), params(1, 1, 0, 0, 0));
    let mut e = EndpointHealth::new(&[p, p], t0);
    assert_eq!(
        (e.record(0, true, t0), e.health(), e.has_verdict()),
        (None, Unknown, false)
    );
    assert_eq!(
        change(e.record(1, true, t0)),
        (Unknown, Up, "check 1: first result passed".into())
    );
    assert!(e.has_verdict());
    assert_eq!(
        change(e.record(1, false, t0)),
        (Up, Down, "check 1: 1 consecutive failures (fall 1)".into())
    );
    assert_eq!(e.record(0, true, t0), None); // check 0 passing does not lift check 1
    assert_eq!(change(e.record(1, true, t0)).1, Up);
    let none = EndpointHealth::new(&[], t0); // no checks: Up and ready
    assert_eq!((none.health(), none.has_verdict()), (Up, true));
}

#[test]
fn startup_policy_decides_unknown_only() {
    let t0 = Instant::now();
    let mut e = EndpointHealth::new(&[HealthParams::default()], t0);
    assert_eq!(
        (e.serving(AssumeUp, t0), e.serving(AssumeDown, t0)),
        (Serving::Up, Serving::Down)
    );
    e.record(0, false, t0);
    assert_eq!(e.serving(AssumeUp, t0), Serving::Down);
    let mut e = EndpointHealth::new(&[HealthParams::default()], t0);
    e.record(0, true, t0);
    assert_eq!(e.serving(AssumeDown, t0), Serving::Up);
}

#[test]
fn flapping_holds_down_then_needs_rise_again() {
    // rise 2, fall 1; more than 3 changes within 60 s holds Down for 120 s.
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut e = EndpointHealth::new(&[params(2, 1, 3, 60, 120)], t0);
    // Up at 0 (first verdict, not counted); changes at 1, 3, 4; the rise at 6 would be the 4th.
    assert_eq!(
        feed(&mut e, t0, 0, "+-++-+"),
        [Up, Down, Down, Up, Down, Down]
    );
    assert_eq!(e.held_until(), None);
    assert_eq!(e.record(0, true, s(6)), None); // refused
    assert_eq!(
        (e.health(), e.held_until(), e.since()),
        (Down, Some(s(126)), s(4))
    );
    for n in (10..=120).step_by(10) {
        assert_eq!(e.record(0, true, s(n)), None); // successes during the hold change nothing
    }
    assert_eq!(
        (e.checks()[0].verdict(), e.serving(AssumeUp, s(125))),
        (Up, Serving::Down)
    );
    // The hold ends at 126; from there the check must pass rise (2) again.
    assert_eq!(
        (
            e.record(0, true, s(126)),
            e.held_until(),
            e.checks()[0].successes()
        ),
        (None, None, 1)
    );
    assert_eq!(
        change(e.record(0, true, s(127))),
        (Down, Up, "check 0: 2 consecutive successes (rise 2)".into())
    );
    assert_eq!(e.serving(AssumeUp, s(127)), Serving::Up);
    // The ring was cleared at 6; counting the rise at 127, the 4th change is the fall at 131.
    assert_eq!(feed(&mut e, t0, 128, "-++"), [Down, Down, Up]);
    let reason = change(e.record(0, false, s(131))).2;
    assert_eq!(
        reason,
        "check 0: 1 consecutive failures (fall 1); flap damping: 4 changes within 60s, held down for 120s"
    );
    assert_eq!(e.held_until(), Some(s(251)));
}

#[test]
fn old_changes_leave_the_window() {
    let t0 = Instant::now();
    // Changes at 1, 3, 4, then a rise at `at`: the change at 1 has left the 60 s window from 61 on.
    for (at, held) in [(60, true), (61, false)] {
        let mut e = EndpointHealth::new(&[params(2, 1, 3, 60, 120)], t0);
        feed(&mut e, t0, 0, "+-++-");
        feed(&mut e, t0, at - 1, "+");
        let refused = e.record(0, true, t0 + Duration::from_secs(at)).is_none();
        assert_eq!(
            (refused, e.held_until().is_some()),
            (held, held),
            "rise at {at}"
        );
    }
}

#[test]
fn threshold_zero_never_damps_and_strictest_wins() {
    let t0 = Instant::now();
    let mut e = EndpointHealth::new(&[params(1, 1, 0, 60, 120)], t0);
    assert_eq!(
        feed(&mut e, t0, 0, &"+-".repeat(50))
            .iter()
            .filter(|&&h| h == Up)
            .count(),
        50
    );
    assert_eq!(e.held_until(), None);
    let d = Damping::strictest(&[
        params(1, 1, 0, 999, 999),
        params(1, 1, 5, 60, 10),
        params(1, 1, 9, 30, 20),
    ]);
    assert_eq!(
        (d.threshold, d.window, d.hold_down),
        (5, Duration::from_secs(60), Duration::from_secs(20))
    );
    assert_eq!(
        Damping::strictest(&[params(1, 1, 99, 1, 1)]).threshold,
        MAX_FLAP_THRESHOLD
    );
}

#[test]
fn overrides_win_and_expire() {
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut e = EndpointHealth::new(&[params(1, 1, 0, 0, 0)], t0);
    e.record(0, false, s(0));
    e.set_override(OverrideKind::ForceUp, None, s(1));
    e.record(0, false, s(2)); // kept across results
    assert_eq!(
        (e.override_state(), e.serving(AssumeUp, s(999))),
        (Some((OverrideKind::ForceUp, None)), Serving::Up)
    );
    e.clear_override();
    assert_eq!(
        (e.override_state(), e.serving(AssumeUp, s(3))),
        (None, Serving::Down)
    );

    e.record(0, true, s(4));
    e.set_override(OverrideKind::Drain, Some(s(100)), s(4));
    assert_eq!(
        (e.serving(AssumeUp, s(99)), e.serving(AssumeUp, s(100))),
        (Serving::Drained, Serving::Up)
    );
    assert_eq!(
        e.override_state(),
        Some((OverrideKind::Drain, Some(s(100))))
    ); // expired, not yet dropped
    e.record(0, true, s(100));
    assert_eq!(e.override_state(), None); // dropped lazily

    e.set_override(OverrideKind::ForceDown, Some(s(200)), s(150));
    assert_eq!(e.serving(AssumeUp, s(150)), Serving::Down);
    e.set_override(OverrideKind::ForceUp, Some(s(150)), s(150)); // already expired: clears
    assert_eq!(
        (e.override_state(), e.serving(AssumeUp, s(150))),
        (None, Serving::Up)
    );

    let mut e = EndpointHealth::new(&[params(2, 1, 3, 60, 120)], t0);
    feed(&mut e, t0, 0, "+-++-++"); // held down (see above)
    e.set_override(OverrideKind::ForceUp, None, s(7));
    assert_eq!(
        (e.held_until(), e.serving(AssumeDown, s(7))),
        (Some(s(126)), Serving::Up)
    );
}

#[test]
fn next_change_is_the_nearest_deadline_ahead() {
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    let mut e = EndpointHealth::new(&[params(2, 1, 3, 60, 120)], t0);
    assert_eq!(e.next_change(t0), None, "nothing ahead");
    e.set_override(OverrideKind::Drain, None, s(0));
    assert_eq!(
        e.next_change(s(0)),
        None,
        "an override for good never expires"
    );
    e.set_override(OverrideKind::Drain, Some(s(50)), s(0));
    assert_eq!(
        (e.next_change(s(0)), e.next_change(s(49))),
        (Some(s(50)), Some(s(50)))
    );
    // At its expiry it is behind: serving has already changed.
    assert_eq!(e.next_change(s(50)), None);
    assert_eq!(e.serving(AssumeUp, s(50)), Serving::Up);

    // A hold-down from 6 to 126 (see flapping_holds_down_then_needs_rise_again).
    e.clear_override();
    feed(&mut e, t0, 0, "+-++-++");
    assert_eq!(e.held_until(), Some(s(126)));
    assert_eq!(e.next_change(s(7)), Some(s(126)));
    // An override that expires first comes first; one that expires later, after the hold.
    e.set_override(OverrideKind::ForceUp, Some(s(100)), s(7));
    assert_eq!(e.next_change(s(7)), Some(s(100)));
    assert_eq!(e.next_change(s(100)), Some(s(126)));
    e.set_override(OverrideKind::ForceUp, Some(s(200)), s(7));
    assert_eq!(
        (e.next_change(s(7)), e.next_change(s(126))),
        (Some(s(126)), Some(s(200)))
    );
    e.clear_override();
    assert_eq!(e.next_change(s(126)), None);
}

#[test]
fn serde_and_display_names() {
    let kinds = [
        OverrideKind::ForceUp,
        OverrideKind::ForceDown,
        OverrideKind::Drain,
    ];
    let json = serde_json::to_string(&kinds).unwrap();
    assert_eq!(json, r#"["force-up","force-down","drain"]"#);
    assert_eq!(
        serde_json::from_str::<Vec<OverrideKind>>(&json).unwrap(),
        kinds
    );
    assert_eq!(
        serde_json::to_string(&AssumeDown).unwrap(),
        r#""assume_down""#
    );
    assert_eq!(format!("{Up} {Down} {Unknown}"), "up down unknown");
}

/// Random checks, parameters, results and time steps (a plain LCG, fixed seed): the combined
/// health changes exactly when a transition says so, and the other rules hold at every step.
#[test]
fn health_changes_only_with_a_transition() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let (mut transitions, mut holds) = (0, 0);
    for _ in 0..300 {
        let (t0, n) = (Instant::now(), 1 + next(3) as usize);
        let p: Vec<_> = (0..n)
            .map(|_| {
                params(
                    1 + next(3) as u32,
                    1 + next(3) as u32,
                    next(5) as u32,
                    10 + next(60),
                    next(90),
                )
            })
            .collect();
        let pass_odds = 1 + next(4); // a result passes with probability odds / (odds + 1)
        let mut e = EndpointHealth::new(&p, t0);
        let (mut now, mut ready) = (t0, false);
        for _ in 0..200 {
            now += Duration::from_secs(next(8));
            let before = e.health();
            let tr = e.record(next(n as u64) as usize, next(pass_odds + 1) != 0, now);
            let after = e.health();
            match &tr {
                Some(t) => assert_eq!((t.from, t.to, e.since()), (before, after, now)),
                None => assert_eq!(before, after),
            }
            assert!(tr.is_none() || before != after);
            transitions += usize::from(tr.is_some());
            match e.held_until() {
                Some(until) => {
                    assert_eq!((after, e.serving(AssumeUp, now)), (Down, Serving::Down));
                    holds +=
                        usize::from(until > now && e.checks().iter().all(|c| c.verdict() == Up));
                }
                None => assert_eq!(after, combine(e.checks())),
            }
            assert!(!ready || e.has_verdict(), "readiness never goes back");
            ready = e.has_verdict();
        }
    }
    assert!(
        transitions > 1000 && holds > 0,
        "{transitions} transitions, {holds} held with all checks up"
    );
}
