//! Meridian as a secondary: zones taken from primaries by zone transfer.
//!
//! A `[[zone]]` with `primaries` is served from what its primaries give: one task per such zone
//! ([`task`]) asks their SOA on the zone's timers and whenever a NOTIFY from one of them comes
//! (acknowledged by the answer engine, `dns::notify`, which wakes the task through the handle
//! the snapshot holds), transfers the zone when the serial moved ([`client`]: IXFR from the
//! serial held, AXFR when nothing is held), reads and checks the answer ([`transfer`]), and
//! publishes the new version through the publisher (`Publisher::replace_zone`: that one zone
//! of the served catalog is replaced, nothing else reloaded). Each version is also written to
//! the zone's `file` as an RFC 1035 master file ([`records`]), atomically, so a restart or a
//! reload serves the kept copy at once, through the ordinary zone loader.
//!
//! Until a zone's first transfer (no kept copy), it is not in the served catalog: queries for
//! it are REFUSED (or answered by a parent zone that is served). When its SOA expire passes
//! with no successful check, it leaves the catalog the same way until a check succeeds. A
//! failure of any kind (primary down, a refused or broken transfer, a kept copy that cannot
//! be written) leaves the data held serving; it is logged, counted in
//! `meridian_secondary_refresh_total{result="failed"}` and shown in `GET /status`.
//!
//! [`Secondaries`] starts and stops the tasks as reloads add, change and remove secondary zones
//! (it follows the configuration generation, as the fleet does), and keeps each zone's status.
//!
//! Layer 8 of ARCHITECTURE.md: uses only modules of lower layers (it publishes through
//! `control::Publisher`).

pub mod client;
pub mod records;
pub mod task;
pub mod transfer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ZoneSource;
use crate::control::Control;

/// One secondary zone's state, as `GET /status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneStatus {
    pub origin: String,
    /// The serial held, if any.
    pub serial: Option<u32>,
    /// The primary last asked (`address:port`).
    pub primary: Option<String>,
    /// When the last check ended (Unix seconds).
    pub last_refresh: Option<u64>,
    /// Its result: "current", "ixfr", "axfr", "failed" ("none" before the first).
    pub last_result: &'static str,
    /// Why the last check failed.
    pub detail: Option<String>,
    /// When the zone stops being served without a successful check (Unix seconds).
    pub expires_at: Option<u64>,
    /// Whether the zone is in the served catalog.
    pub serving: bool,
}

/// The zones' statuses, shared by the tasks (writers) and the admin API (reader).
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<BTreeMap<String, ZoneStatus>>>);

impl Shared {
    fn update(&self, origin: &Name, f: impl FnOnce(&mut ZoneStatus)) {
        let mut all = self.0.lock().expect("secondary status lock");
        let s = all
            .entry(origin.to_string())
            .or_insert_with(|| task::initial_status(origin));
        f(s);
    }
}

/// How often the configuration generation is looked at for reloads.
const RELOAD_POLL: Duration = Duration::from_millis(500);

/// The secondary zones' tasks and status.
#[derive(Clone, Default)]
pub struct Secondaries {
    shared: Shared,
}

impl Secondaries {
    /// Start a task per secondary zone of the configuration in force, and follow reloads.
    pub fn start(
        control: Control,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Secondaries {
        let s = Secondaries::default();
        for z in control
            .config()
            .zones
            .iter()
            .filter(|z| z.secondary.is_some())
        {
            s.shared.update(&z.origin, |_| {});
        }
        tracker.spawn(follow(control, s.shared.clone(), cancel, tracker.clone()));
        s
    }

    /// Every secondary zone's status, by origin.
    pub fn status(&self) -> Vec<ZoneStatus> {
        self.shared
            .0
            .lock()
            .expect("secondary status lock")
            .values()
            .cloned()
            .collect()
    }
}

/// A running task: the settings it runs with and its stop.
struct Running {
    source: ZoneSource,
    stop: CancellationToken,
}

fn same_settings(a: &ZoneSource, b: &ZoneSource) -> bool {
    a.origin == b.origin
        && a.file == b.file
        && a.secondary == b.secondary
        && a.transfer == b.transfer
}

/// Start, restart (settings changed) and stop zone tasks as the configuration says, now and on
/// every reload.
async fn follow(control: Control, shared: Shared, cancel: CancellationToken, tracker: TaskTracker) {
    let mut running: BTreeMap<Vec<u8>, Running> = BTreeMap::new();
    let mut seen = 0;
    let mut tick = tokio::time::interval(RELOAD_POLL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let generation = control.generation();
        if generation == seen {
            continue;
        }
        seen = generation;
        let config = control.config();
        let wanted: BTreeMap<Vec<u8>, ZoneSource> = config
            .zones
            .iter()
            .filter(|z| z.secondary.is_some())
            .map(|z| {
                (
                    crate::zone::build::lower_wire(&z.origin).into_vec(),
                    z.clone(),
                )
            })
            .collect();
        running.retain(|apex, r| {
            let keep = wanted
                .get(apex)
                .is_some_and(|w| same_settings(w, &r.source));
            if !keep {
                r.stop.cancel();
            }
            keep
        });
        {
            let mut all = shared.0.lock().expect("secondary status lock");
            all.retain(|origin, _| wanted.values().any(|w| w.origin.to_string() == *origin));
        }
        for (apex, source) in wanted {
            if running.contains_key(&apex) {
                continue;
            }
            let stop = cancel.child_token();
            shared.update(&source.origin, |_| {});
            let t =
                task::ZoneTask::new(source.clone(), control.publisher().clone(), shared.clone());
            tracker.spawn(t.run(stop.clone()));
            running.insert(apex, Running { source, stop });
        }
    }
}
