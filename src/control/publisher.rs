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
use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::monitor::Monitor;
use crate::snapshot::Snapshot;
use crate::snapshot::replica::{Occasion, Version, announces, versions};
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
    /// The NOTIFY task's state, for status.
    notifier: Option<crate::notify::Notifier>,
    /// Bumped after a snapshot with a zone of a new serial is served (the NOTIFY task follows it).
    versions: Arc<watch::Sender<u64>>,
    /// When each zone (by apex) last got a version made by its snapshot records alone.
    snapshot_versions: Arc<Mutex<HashMap<Box<[u8]>, Instant>>>,
}

/// What the publisher keeps for secondary zones from one snapshot to the next, by apex
/// (lowercase wire form).
#[derive(Default)]
struct Kept {
    /// Each secondary zone's wake handle: the one its task waits on, in every snapshot.
    wakes: HashMap<Box<[u8]>, Arc<tokio::sync::Notify>>,
    /// Zones whose expire time passed: not served until a transfer succeeds again.
    expired: HashSet<Box<[u8]>>,
    /// The view and steering the served tables were built from, when built from the monitor's
    /// view alone (no fleet data): a rebuild from the same two would give the same tables.
    tables_from: Option<(Arc<HealthView>, std::sync::Weak<Steering>)>,
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
            tables_from: None,
        };
        Publisher {
            snapshot,
            monitor,
            fleet: None,
            notifier: None,
            writing: Arc::new(Mutex::new(kept)),
            versions: Arc::new(watch::channel(0).0),
            snapshot_versions: Default::default(),
        }
    }

    /// The same, with the NOTIFY task's state readable through [`Publisher::notifier`].
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Publisher {
        self.notifier = Some(notifier);
        self
    }

    /// The NOTIFY task's state, when the publisher has one.
    pub fn notifier(&self) -> Option<&crate::notify::Notifier> {
        self.notifier.as_ref()
    }

    /// Follows the zones' versions: changes after a snapshot with a new serial of some zone is
    /// served.
    pub fn subscribe_versions(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// Give the snapshot served at start its zones' first versions (a serial that follows unix
    /// time, the snapshot records).
    pub fn version_at_start(&self) {
        let _one = self.writing.lock().expect("publisher lock");
        let mut next = (*self.snapshot.load_full()).clone();
        let announce = self.make_versions(None, &mut next, Occasion::Load);
        self.snapshot.store(Arc::new(next));
        if announce {
            self.versions.send_modify(|v| *v += 1);
        }
    }

    /// Make the versions `next` needs against `served` (see [`versions`]) and put them in its
    /// catalog; whether any has a new serial.
    fn make_versions(
        &self,
        served: Option<&crate::zone::Catalog>,
        next: &mut Snapshot,
        occasion: Occasion,
    ) -> bool {
        let now = Instant::now();
        let made = {
            let last = self.snapshot_versions.lock().expect("versions lock");
            let may = |z: &crate::zone::Zone| {
                let interval = z
                    .replica
                    .settings
                    .as_ref()
                    .map_or(Duration::ZERO, |s| s.interval);
                last.get(z.apex())
                    .is_none_or(|t| now.duration_since(*t) >= interval)
            };
            versions(
                served,
                next,
                occasion,
                crate::health::clock::unix_now() as u32,
                &may,
            )
        };
        if made.is_empty() {
            return false;
        }
        let mut announce = false;
        let mut zones = Vec::with_capacity(made.len());
        for v in made {
            record_version(&v);
            let fresh = next.catalog.zone_at_apex(v.zone.apex());
            let same = fresh.is_some_and(|f| {
                f.serial == v.zone.serial
                    && v.zone.replica.journal.is_empty()
                    && v.zone.replica.extra.is_empty()
                    && f.replica.journal.is_empty()
                    && f.replica.extra.is_empty()
            });
            if same {
                announce |= announces(&v);
                continue; // the zone as loaded is the version: no catalog rebuild for it
            }
            if announces(&v) {
                announce = true;
                if v.by_snapshot {
                    self.snapshot_versions
                        .lock()
                        .expect("versions lock")
                        .insert(v.zone.apex().into(), now);
                }
            }
            zones.push(v.zone);
        }
        if !zones.is_empty() {
            next.catalog = Arc::new(next.catalog.replacing(zones));
        }
        announce
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
        kept.tables_from = None;
        if let Some(st) = &next.steering {
            let started = Instant::now();
            let previous = self.snapshot.load().tables.clone();
            let view = self.view_for(st);
            next.tables = Some(Arc::new(build_tables(st, &view, previous.as_deref())));
            kept.tables_from = self.built_from(view, st);
            // Counted and its gauges set here: the rebuild the reload's view sets off finds these
            // tables built from it and leaves them.
            record_rebuild(st, next.tables.as_deref(), started.elapsed());
        }
        let served = self.snapshot.load_full();
        let announce = self.make_versions(Some(&served.catalog), &mut next, Occasion::Load);
        self.snapshot.store(Arc::new(next));
        if announce {
            self.versions.send_modify(|v| *v += 1);
        }
    }

    /// Rebuild the served snapshot's decision tables from the monitor's view now (health or
    /// latency changed) and swap them in; the time it took, or `None` without services.
    ///
    /// When the served tables were built from this very view (the same published `Arc`, no fleet
    /// data) for this very steering, nothing is rebuilt: the same inputs give the same tables
    /// (latency hysteresis against them keeps every published excess). So the rebuild a reload's
    /// reconcile sets off, and the periodic one while nothing moved, cost nothing.
    pub fn refresh_tables(&self) -> Option<Duration> {
        self.refresh(false)
    }

    /// [`Publisher::refresh_tables`], rebuilding even from the same view when `force` (what the
    /// tables read besides the view changed: the GeoIP database that places the demand).
    fn refresh(&self, force: bool) -> Option<Duration> {
        let mut kept = self.writing.lock().expect("publisher lock");
        let current = self.snapshot.load_full();
        let st = current.steering.clone()?;
        let started = Instant::now();
        let view = self.view_for(&st);
        let unchanged = kept.tables_from.as_ref().is_some_and(|(v, s)| {
            Arc::ptr_eq(v, &view) && std::ptr::eq(s.as_ptr(), Arc::as_ptr(&st))
        });
        let rebuild = force || !unchanged || current.tables.is_none();
        let tables = if rebuild {
            let tables = build_tables(&st, &view, current.tables.as_deref());
            kept.tables_from = self.built_from(view, &st);
            Some(Arc::new(tables))
        } else {
            current.tables.clone()
        };
        let mut next = Snapshot {
            tables,
            ..(*current).clone()
        };
        // Zone versions held back by their snapshot interval are made now, rebuilt or not.
        let announce = self.make_versions(Some(&current.catalog), &mut next, Occasion::Tables);
        if !rebuild && !announce && Arc::ptr_eq(&next.catalog, &current.catalog) {
            return Some(started.elapsed()); // nothing changed: the served snapshot stays
        }
        self.snapshot.store(Arc::new(next));
        if announce {
            self.versions.send_modify(|v| *v += 1);
        }
        let took = started.elapsed();
        if rebuild {
            record_rebuild(&st, self.snapshot.load().tables.as_deref(), took);
        }
        Some(took)
    }

    /// What tables built from `view` for `st` are recorded as built from: the view and the
    /// steering when the view is the monitor's published one (fleet data changes with time and
    /// is never taken as unchanged).
    fn built_from(
        &self,
        view: Arc<HealthView>,
        st: &Arc<Steering>,
    ) -> Option<(Arc<HealthView>, std::sync::Weak<Steering>)> {
        Arc::ptr_eq(&view, &self.monitor.view()).then(|| (view, Arc::downgrade(st)))
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
        let zone = zone.map(|mut z| {
            // A zone re-served by transfer keeps its transfer settings (journal, NOTIFY).
            z.replica.settings = current
                .secondaries
                .zone(apex)
                .and_then(|s| s.replica.clone());
            z
        });
        let mut next = crate::snapshot::assemble::replace_zone(&current, apex, zone);
        // Like a reload's zone: a new version for the secondaries of this zone, if it has any.
        let announce = self.make_versions(Some(&current.catalog), &mut next, Occasion::Load);
        self.snapshot.store(Arc::new(next));
        if announce {
            self.versions.send_modify(|v| *v += 1);
        }
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
            // The outcome is logged where it happens (`GeoSource::reload_if_changed`) and counted
            // here; on an error the old database serves on.
            let result = geo.map(|geo| geo.reload_if_changed());
            match &result {
                Some(Ok(true)) => {
                    metrics::counter!("meridian_geo_database_reloads_total", "result" => "ok")
                        .increment(1)
                }
                Some(Err(_)) => {
                    metrics::counter!("meridian_geo_database_reloads_total", "result" => "error")
                        .increment(1)
                }
                Some(Ok(false)) | None => {}
            }
            matches!(result, Some(Ok(true)))
        };
        if changed {
            self.refresh(true);
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
        let read = next.catalog.zone_at_apex(&z.apex).map(|n| n.serial);
        let replacement = if kept.expired.contains(&z.apex) {
            read.map(|_| None)
        } else {
            current
                .catalog
                .zone_at_apex(&z.apex)
                .filter(|_| current.secondaries.zone(&z.apex).is_some())
                .filter(|served| {
                    read.is_none_or(|r| crate::zone::transfer::serial_newer(served.serial, r))
                })
                .map(|served| {
                    let mut served = crate::zone::Zone::clone(served);
                    served.transfer = next
                        .catalog
                        .zone_at_apex(&z.apex)
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

/// Log and count a zone's new version.
fn record_version(v: &Version) {
    let zone = v.zone.origin.clone();
    metrics::gauge!("meridian_zone_serial", "zone" => zone.clone()).set(v.zone.serial as f64);
    metrics::gauge!("meridian_zone_journal_versions", "zone" => zone.clone())
        .set(v.zone.replica.journal.len() as f64);
    if !announces(v) {
        return;
    }
    let cause = if v.by_snapshot { "snapshot" } else { "file" };
    metrics::counter!("meridian_zone_versions_total", "zone" => zone.clone(), "cause" => cause)
        .increment(1);
    if v.serial_not_raised {
        metrics::counter!("meridian_zone_serial_not_raised_total", "zone" => zone.clone())
            .increment(1);
        tracing::warn!(
            zone = %zone,
            serial = v.zone.serial,
            "zone content changed but its file's serial was not raised: serving serial {} (raise the file's serial past it, or set serial = \"unixtime\")",
            v.zone.serial
        );
    }
    tracing::info!(
        zone = %zone,
        from = ?v.from,
        serial = v.zone.serial,
        removed = v.removed,
        added = v.added,
        cause,
        "new zone version"
    );
}

/// How many vantages decide health now: this instance plus its fresh peers (1: the local verdict
/// alone).
fn record_fleet(fleet: &crate::snapshot::steering::FleetView) {
    metrics::gauge!("meridian_fleet_vantages_deciding").set((fleet.peers.len() + 1) as f64);
}
