//! The one writer of the served snapshot.
//!
//! Every change to what the workers answer from goes through a [`Publisher`]: a reload's new
//! snapshot ([`Publisher::publish`]), new decision tables when health or latency changed
//! ([`Publisher::refresh_tables`]), and a replaced GeoIP database ([`Publisher::refresh_geo`]).
//! Writes are serialised by one lock (never taken on the query path), so a table rebuild can
//! never overwrite a reload that landed meanwhile, and no other code builds tables and swaps.
//! Readers (the workers) load the snapshot through the atomic pointer and never wait.
//!
//! Tables are built from the monitor's published [`HealthView`], one atomic load, when its
//! layout is the snapshot model's (the usual case). A view of another layout (the monitor has
//! reconciled a reload whose snapshot is not served yet, or the snapshot's configuration was
//! compiled apart from the one the monitor reconciled) has other ids, so then the monitor
//! computes a view for the snapshot's model by endpoint name ([`Monitor::view_of`]).
//!
//! Secondary zones: a new version transferred from a primary replaces that one zone of the
//! served catalog ([`Publisher::replace_zone`]: the catalog is rebuilt with the other zones
//! copied unchanged, everything else shared), and an expired zone leaves it. Table rebuilds and
//! GeoIP swaps copy the served snapshot, so they keep it. A reload's snapshot reads the kept
//! files; [`Publisher::publish`] then keeps the served version where it is newer than the file's
//! (a kept file that could not be written), keeps expired zones out, and hands every snapshot
//! the same wake handle per secondary zone (the one its task waits on).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::fleet::Fleet;
use crate::monitor::Monitor;
use crate::snapshot::Snapshot;
use crate::snapshot::secondary::{Secondaries, SecondaryZone};
use crate::snapshot::steering::{HealthView, Steering, build_tables, record_rebuild};

/// Handle to the served snapshot's only writer; clones share it.
#[derive(Clone)]
pub struct Publisher {
    snapshot: Arc<ArcSwap<Snapshot>>,
    monitor: Monitor,
    /// The fleet's peers, whose votes and measurements join the monitor's view.
    fleet: Option<Fleet>,
    /// Serialises every write; holds what secondary zones need kept across snapshots.
    writing: Arc<Mutex<Kept>>,
}

/// What the publisher keeps for secondary zones from one snapshot to the next, by apex
/// (lowercase wire form).
#[derive(Default)]
struct Kept {
    /// Each secondary zone's wake handle: the one its task waits on, in every snapshot.
    wakes: HashMap<Box<[u8]>, Arc<tokio::sync::Notify>>,
    /// Zones whose expire time passed: not served until a transfer succeeds again.
    expired: HashSet<Box<[u8]>>,
}

impl Publisher {
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, monitor: Monitor) -> Publisher {
        let kept = Kept {
            wakes: snapshot
                .load()
                .secondaries
                .zones
                .iter()
                .map(|z| (z.apex.clone(), z.wake.clone()))
                .collect(),
            expired: HashSet::new(),
        };
        Publisher {
            snapshot,
            monitor,
            fleet: None,
            writing: Arc::new(Mutex::new(kept)),
        }
    }

    /// The same, with the fleet's observations joining every view tables are built from.
    pub fn with_fleet(mut self, fleet: Fleet) -> Publisher {
        self.fleet = Some(fleet);
        self
    }

    /// The snapshot being served.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Serve `next` (a new configuration's snapshot, its monitor already reconciled): decision
    /// tables from the monitor's view, latency hysteresis carried over from the tables served
    /// now, then the swap.
    pub fn publish(&self, mut next: Snapshot) {
        let mut kept = self.writing.lock().expect("publisher lock");
        next = carry_secondaries(&mut kept, &self.snapshot.load(), next);
        if let Some(st) = &next.steering {
            let previous = self.snapshot.load().tables.clone();
            let view = self.view_for(st);
            next.tables = Some(Arc::new(build_tables(st, &view, previous.as_deref())));
        }
        self.snapshot.store(Arc::new(next));
    }

    /// Rebuild the served snapshot's decision tables from the monitor's view now (health or
    /// latency changed) and swap them in; the time it took, or `None` without services.
    pub fn refresh_tables(&self) -> Option<Duration> {
        let _one = self.writing.lock().expect("publisher lock");
        let current = self.snapshot.load_full();
        let st = current.steering.clone()?;
        let started = Instant::now();
        let view = self.view_for(&st);
        let tables = build_tables(&st, &view, current.tables.as_deref());
        self.snapshot.store(Arc::new(Snapshot {
            tables: Some(Arc::new(tables)),
            ..(*current).clone()
        }));
        let took = started.elapsed();
        record_rebuild(&st, self.snapshot.load().tables.as_deref(), took);
        Some(took)
    }

    /// The monitor's view for `st`'s model: the published one when its layout is the model's,
    /// else one the monitor computes for the model by endpoint name.
    ///
    /// With a fleet, the fresh peers' observations join it ([`Fleet::engine_view`]): health by
    /// quorum, latency per vantage.
    pub fn view_for(&self, st: &Steering) -> Arc<HealthView> {
        let mut view = self.monitor.view();
        if view.layout() != st.model.layout {
            tracing::debug!(
                view = view.layout().0,
                model = st.model.layout.0,
                "health view of another configuration: computed for this one by name"
            );
            view = Arc::new(self.monitor.view_of(&st.model));
        }
        match self.fleet.as_ref().and_then(|f| f.engine_view(&st.model)) {
            None => view,
            Some(fleet) => {
                record_fleet(&fleet);
                Arc::new((*view).clone().with_fleet(Some(Arc::new(fleet))))
            }
        }
    }

    /// Serve `zone` as the secondary zone at `apex` (lowercase wire form), or stop serving it
    /// (`None`: its expire time passed). Only the catalog is rebuilt, the other zones copied
    /// unchanged. False, and nothing changed, when the served configuration has no secondary
    /// zone there (a reload removed it meanwhile).
    pub fn replace_zone(&self, apex: &[u8], zone: Option<crate::zone::Zone>) -> bool {
        let mut kept = self.writing.lock().expect("publisher lock");
        let current = self.snapshot.load_full();
        if current.secondaries.zone(apex).is_none() {
            return false;
        }
        if zone.is_none() {
            kept.expired.insert(apex.into());
        } else {
            kept.expired.remove(apex);
        }
        let next = crate::snapshot::assemble::replace_zone(&current, apex, zone);
        self.snapshot.store(Arc::new(next));
        true
    }

    /// The wake handle of the secondary zone at `apex`, the same in every snapshot served.
    pub fn wake(&self, apex: &[u8]) -> Option<Arc<tokio::sync::Notify>> {
        let kept = self.writing.lock().expect("publisher lock");
        kept.wakes.get(apex).cloned()
    }

    /// The fleet, when the publisher has one.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    /// Pick up a replaced GeoIP database file, if the served snapshot uses one (blocking file
    /// I/O: call from a blocking context). A bad file is logged and the old database serves on.
    ///
    /// A new database places the demand that sizes spill anew ([`Steering::demand`]), so the
    /// tables are rebuilt after it.
    pub fn refresh_geo(&self) {
        let changed = {
            let _one = self.writing.lock().expect("publisher lock");
            let geo = self
                .snapshot
                .load()
                .steering
                .as_ref()
                .and_then(|st| st.geo.clone());
            // The outcome is logged and counted where it happens; the old database serves on.
            geo.is_some_and(|geo| matches!(geo.reload_if_changed(), Ok(true)))
        };
        if changed {
            self.refresh_tables();
        }
    }
}

/// `next` (a reload's snapshot, its secondary zones read from their kept files) with what the
/// served snapshot `current` knows of them: each zone's wake handle, its served version when
/// newer than the kept file's (RFC 1982 serials), expired zones left out. Zones no longer
/// configured are forgotten.
fn carry_secondaries(kept: &mut Kept, current: &Snapshot, mut next: Snapshot) -> Snapshot {
    if next.secondaries.zones.is_empty() && kept.wakes.is_empty() {
        return next;
    }
    let zones: Box<[SecondaryZone]> = next
        .secondaries
        .zones
        .iter()
        .map(|z| SecondaryZone {
            wake: kept
                .wakes
                .entry(z.apex.clone())
                .or_insert_with(|| z.wake.clone())
                .clone(),
            ..z.clone()
        })
        .collect();
    kept.wakes
        .retain(|apex, _| zones.iter().any(|z| z.apex == *apex));
    kept.expired
        .retain(|apex| zones.iter().any(|z| z.apex == *apex));
    next.secondaries = Arc::new(Secondaries { zones });
    let secondaries = next.secondaries.clone();
    for z in secondaries.zones.iter() {
        let read = next.catalog.zone_at(&z.apex).map(|n| n.serial);
        let replacement = if kept.expired.contains(&z.apex) {
            read.map(|_| None)
        } else {
            current
                .catalog
                .zone_at(&z.apex)
                .filter(|_| current.secondaries.zone(&z.apex).is_some())
                .filter(|served| read.is_none_or(|r| crate::zone::serial_newer(served.serial, r)))
                .map(|served| {
                    let mut served = served.clone();
                    served.transfer = next
                        .catalog
                        .zone_at(&z.apex)
                        .and_then(|n| n.transfer.clone());
                    Some(served)
                })
        };
        if let Some(zone) = replacement {
            next = crate::snapshot::assemble::replace_zone(&next, &z.apex, zone);
        }
    }
    next
}

/// How many vantages decide health now: this instance plus its fresh peers (1: the local verdict
/// alone).
fn record_fleet(fleet: &crate::snapshot::steering::FleetView) {
    metrics::gauge!("meridian_fleet_vantages_deciding").set((fleet.peers.len() + 1) as f64);
}
