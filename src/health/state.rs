//! Health state: the anti-flap core that turns raw probe results into what DNS answers do.
//!
//! Probers report only pass or fail (STYLE habit 3). Every decision that keeps health stable lives
//! here, as plain code of `(state, result, now)` with no clock and no I/O (habit 1), so rise/fall and
//! damping are tested with exact virtual times.
//!
//! # Rules
//! - **One check** ([`CheckState`]) starts [`Health::Unknown`]. Its *first* result decides at once
//!   (pass → Up, fail → Down), as gdnsd does, so the server is ready after one probe round. After
//!   that, an Up check goes Down after `fall` consecutive failures and a Down check goes Up after
//!   `rise` consecutive successes; a result of the other kind restarts the run. A check never
//!   returns to Unknown.
//! - **Several checks** on one endpoint must all pass: the combined health is Down if any check is
//!   Down, Up if every check is Up, Unknown otherwise. An endpoint with no checks is Up.
//! - **Flap damping.** Changes of the combined health between Up and Down (not those from or to the
//!   start-up Unknown) are remembered in a fixed ring of [`MAX_FLAP_THRESHOLD`]` + 1` instants. The
//!   change that makes more than `flap_threshold` of them within the last `flap_window` (a change
//!   exactly `flap_window` old has left it) holds the endpoint Down for `hold_down`: a change to
//!   Down is reported with the damping in its reason; a change to Up is refused, and
//!   [`EndpointHealth::held_until`] tells. Then the ring is cleared. Results still update the checks
//!   during the hold but change nothing; the first result at or after its end resets every check to
//!   Down with no successes, so each must pass its own `rise` again. With several checks the
//!   strictest damping applies: the smallest non-zero threshold, the longest window and hold-down.
//! - **Overrides** (force up, force down, drain) decide serving over health and survive new results.
//!   One with an expiry is active while `now < expiry`; an expired one is ignored by
//!   [`EndpointHealth::serving`] and dropped by the next `&mut` call that takes `now`.
//! - **Serving** ([`EndpointHealth::serving`]): an active override first, else Down while held, else
//!   the combined health, with Unknown resolved by the pool's [`StartupPolicy`]. Serving changes
//!   with time alone only at an override's expiry or a hold-down's end:
//!   [`EndpointHealth::next_change`] says when.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The largest usable `flap_threshold`; larger values are treated as this one, and config
/// validation should reject them. The ring of remembered changes holds one more than this.
pub const MAX_FLAP_THRESHOLD: u32 = 15;
const RING: usize = MAX_FLAP_THRESHOLD as usize + 1;

/// Anti-flap parameters of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthParams {
    /// Consecutive successes that bring a Down check Up (0 counts as 1).
    pub rise: u32,
    /// Consecutive failures that bring an Up check Down (0 counts as 1).
    pub fall: u32,
    /// Combined changes tolerated within `flap_window`; one more starts a hold-down. 0 = no damping.
    pub flap_threshold: u32,
    /// How far back changes are counted for damping.
    pub flap_window: Duration,
    /// How long a flapping endpoint is held Down before it may rise again.
    pub hold_down: Duration,
}

impl Default for HealthParams {
    /// rise 2, fall 3 (HAProxy's defaults: up after ~2 intervals, down after ~3, so one lost probe
    /// moves nothing); damping: more than 6 changes within 5 minutes holds the endpoint Down for 10
    /// minutes (a hold longer than the window, so the history it forgets has aged out anyway).
    fn default() -> Self {
        HealthParams {
            rise: 2,
            fall: 3,
            flap_threshold: 6,
            flap_window: Duration::from_secs(5 * 60),
            hold_down: Duration::from_secs(10 * 60),
        }
    }
}

/// Health of one check, or the combined health of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No verdict yet.
    Unknown,
    /// Passing.
    Up,
    /// Failing (or held down by flap damping).
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// What Unknown health counts as for serving until the first verdict (set per pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartupPolicy {
    /// Answer with the endpoint until a probe says otherwise.
    AssumeUp,
    /// Leave the endpoint out until a probe says it is up.
    AssumeDown,
}

/// What DNS answers do with an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Serving {
    /// Include it.
    Up,
    /// Leave it out: failing, held down, forced down, or unknown under `AssumeDown`.
    Down,
    /// Leave it out on purpose (operator drain); it is still probed.
    Drained,
}

/// A manual override set by an operator; persisted as "force-up", "force-down", "drain".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideKind {
    /// Serve the endpoint whatever the probes say.
    ForceUp,
    /// Never serve the endpoint.
    ForceDown,
    /// Withdraw the endpoint from answers, keep probing it.
    Drain,
}

/// A change of an endpoint's combined health, for logs and notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Health before the change.
    pub from: Health,
    /// Health after the change.
    pub to: Health,
    /// Which check decided it and on what counts, e.g. "check 1: 3 consecutive failures (fall 3)",
    /// plus "; flap damping: ..." when the change started a hold-down.
    pub reason: String,
}

/// Rise/fall state of one check: its verdict and the current run of equal results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    rise: u32,
    fall: u32,
    verdict: Health,
    successes: u32,
    failures: u32,
}

impl CheckState {
    /// A check with no result yet (Unknown).
    pub fn new(params: &HealthParams) -> Self {
        CheckState {
            rise: params.rise.max(1),
            fall: params.fall.max(1),
            verdict: Health::Unknown,
            successes: 0,
            failures: 0,
        }
    }

    /// The check's verdict.
    pub fn verdict(&self) -> Health {
        self.verdict
    }

    /// Consecutive successes up to now (0 after a failure).
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// Consecutive failures up to now (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts one result; returns the new verdict when it changed.
    pub fn record(&mut self, ok: bool) -> Option<Health> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let next = match (self.verdict, ok) {
            (Health::Unknown, true) => Health::Up,
            (Health::Unknown, false) => Health::Down,
            (Health::Down, true) if self.successes >= self.rise => Health::Up,
            (Health::Up, false) if self.failures >= self.fall => Health::Down,
            (same, _) => same,
        };
        (next != self.verdict).then(|| {
            self.verdict = next;
            next
        })
    }

    /// Why the verdict is what it is, after a change; `first` = it came from Unknown.
    fn reason(&self, index: usize, first: bool) -> String {
        match (first, self.verdict) {
            (true, Health::Up) => format!("check {index}: first result passed"),
            (true, _) => format!("check {index}: first result failed"),
            (false, Health::Up) => format!(
                "check {index}: {} consecutive successes (rise {})",
                self.successes, self.rise
            ),
            (false, _) => format!(
                "check {index}: {} consecutive failures (fall {})",
                self.failures, self.fall
            ),
        }
    }

    /// After a hold-down: Down, and `rise` successes from here on are needed.
    fn reset_down(&mut self) {
        (self.verdict, self.successes, self.failures) = (Health::Down, 0, 0);
    }
}

/// Flap damping memory: the instants of the last `RING` combined changes.
#[derive(Debug, Clone)]
struct Damping {
    threshold: u32,
    window: Duration,
    hold_down: Duration,
    changes: [Option<Instant>; RING],
    next: usize,
}

impl Damping {
    /// The strictest damping among the checks that have it on; off when none has.
    fn strictest(params: &[HealthParams]) -> Self {
        let on = params.iter().filter(|p| p.flap_threshold > 0);
        Damping {
            threshold: on
                .clone()
                .map(|p| p.flap_threshold.min(MAX_FLAP_THRESHOLD))
                .min()
                .unwrap_or(0),
            window: on.clone().map(|p| p.flap_window).max().unwrap_or_default(),
            hold_down: on.map(|p| p.hold_down).max().unwrap_or_default(),
            changes: [None; RING],
            next: 0,
        }
    }

    /// Remembers a change at `now`; returns the count within the window when it exceeds the threshold.
    fn exceeded(&mut self, now: Instant) -> Option<usize> {
        if self.threshold == 0 {
            return None;
        }
        self.changes[self.next] = Some(now);
        self.next = (self.next + 1) % RING;
        let n = self
            .changes
            .iter()
            .flatten()
            .filter(|&&t| now.saturating_duration_since(t) < self.window)
            .count();
        (n > self.threshold as usize).then_some(n)
    }
}

/// Health of one endpoint: its checks, their combined health, flap damping and any override.
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    checks: Vec<CheckState>,
    health: Health,
    since: Instant,
    damping: Damping,
    held_until: Option<Instant>,
    manual: Option<(OverrideKind, Option<Instant>)>,
}

impl EndpointHealth {
    /// An endpoint with one check per entry of `checks`, none with a result yet.
    pub fn new(params: &[HealthParams], now: Instant) -> Self {
        let checks: Vec<_> = params.iter().map(CheckState::new).collect();
        EndpointHealth {
            health: combine(&checks),
            checks,
            since: now,
            damping: Damping::strictest(params),
            held_until: None,
            manual: None,
        }
    }

    /// Counts one result of check number `check`; returns the change of combined health, if any.
    ///
    /// # Panics
    /// If `check` is not below the number of checks given to [`EndpointHealth::new`].
    pub fn record(&mut self, check: usize, ok: bool, now: Instant) -> Option<Transition> {
        self.expire_override(now);
        if self.held_until.is_some_and(|until| now >= until) {
            self.held_until = None;
            self.checks.iter_mut().for_each(CheckState::reset_down);
        }
        let first = self.checks[check].verdict == Health::Unknown;
        self.checks[check].record(ok)?;
        let (from, to) = (self.health, combine(&self.checks));
        if self.held_until.is_some() || from == to {
            return None;
        }
        let mut reason = self.checks[check].reason(check, first);
        if from != Health::Unknown
            && to != Health::Unknown
            && let Some(n) = self.damping.exceeded(now)
        {
            let (window, hold) = (self.damping.window, self.damping.hold_down);
            self.held_until = Some(now + hold);
            self.damping.changes = [None; RING];
            if to == Health::Up {
                return None; // refused: stays Down, held
            }
            reason +=
                &format!("; flap damping: {n} changes within {window:?}, held down for {hold:?}");
        }
        (self.health, self.since) = (to, now);
        Some(Transition { from, to, reason })
    }

    /// Combined health of the checks (Down while held down).
    pub fn health(&self) -> Health {
        self.health
    }

    /// When the combined health last changed (or the endpoint was created).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Every check has a verdict: the endpoint counts towards readiness.
    pub fn has_verdict(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Health::Unknown)
    }

    /// The end of the current flap-damping hold-down, if one has started and not been released by
    /// a later result. After it, the endpoint stays Down until its checks pass `rise` again.
    pub fn held_until(&self) -> Option<Instant> {
        self.held_until
    }

    /// The checks, in the order given to [`EndpointHealth::new`].
    pub fn checks(&self) -> &[CheckState] {
        &self.checks
    }

    /// What DNS answers should do with the endpoint at `now`.
    pub fn serving(&self, policy: StartupPolicy, now: Instant) -> Serving {
        match self.manual {
            Some((kind, expires)) if expires.is_none_or(|e| now < e) => {
                return match kind {
                    OverrideKind::ForceUp => Serving::Up,
                    OverrideKind::ForceDown => Serving::Down,
                    OverrideKind::Drain => Serving::Drained,
                };
            }
            _ => {}
        }
        match self.health {
            Health::Up if self.held_until.is_none_or(|u| now >= u) => Serving::Up,
            Health::Unknown if policy == StartupPolicy::AssumeUp => Serving::Up,
            _ => Serving::Down,
        }
    }

    /// The first instant after `now` at which [`EndpointHealth::serving`] may change with no new
    /// result: the expiry of the active override or the end of the hold-down, whichever comes
    /// first; `None` when neither is ahead. Whoever keeps a view of `serving` refreshes it then.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let expiry = self.manual.and_then(|(_, expires)| expires);
        [expiry, self.held_until]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// Sets (replacing any other) an override, until `expires` or for good; one already expired at
    /// `now` just clears.
    pub fn set_override(&mut self, kind: OverrideKind, expires: Option<Instant>, now: Instant) {
        self.manual = Some((kind, expires));
        self.expire_override(now);
    }

    /// Removes any override.
    pub fn clear_override(&mut self) {
        self.manual = None;
    }

    /// The override and its expiry. It may have expired if no `&mut` call with a later `now` came
    /// since; compare the expiry with the time, or use [`EndpointHealth::serving`].
    pub fn override_state(&self) -> Option<(OverrideKind, Option<Instant>)> {
        self.manual
    }

    fn expire_override(&mut self, now: Instant) {
        if self
            .manual
            .is_some_and(|(_, expires)| expires.is_some_and(|e| now >= e))
        {
            self.manual = None;
        }
    }
}

/// All must pass: Down if any is Down, Up if all are Up (so no checks = Up), else Unknown.
fn combine(checks: &[CheckState]) -> Health {
    if checks.iter().any(|c| c.verdict == Health::Down) {
        Health::Down
    } else if checks.iter().all(|c| c.verdict == Health::Up) {
        Health::Up
    } else {
        Health::Unknown
    }
}

#[cfg(test)]
mod tests;
