//! The health monitor: schedules probes, feeds results to the state core, keeps the health view,
//! tells the world.
//!
//! One task per (endpoint, check) sleeps, probes, and sends the raw result to one core task
//! (`tasks`). The first probe runs at start (after a random part of the check's jitter, so
//! thousands of checks do not fire at once), then every interval. The core applies each result
//! to the endpoint's [`EndpointHealth`] and [`LatencyWindow`], logs every state change as one
//! structured line, and hands the change to the notifier (webhooks, `notify`) through a bounded
//! queue it never waits on: a slow or failing webhook cannot delay probing or serving.
//!
//! **The health view.** The monitor keeps what decision tables are built from, a [`HealthView`]
//! (serving state, p50 and p90 per endpoint, indexed by the [`EndpointId`]s of the configuration
//! it last reconciled and stamped with that configuration's [`Layout`]), and publishes it behind
//! an atomic pointer: [`Monitor::view`] is one load, with no lock, no name and no histogram. An
//! endpoint's slot is set when one of its probe results arrives, when its override is set or
//! cleared, on reconcile, and at the instants when time alone changes it (an override expires, a
//! hold-down ends, a latency slice leaves its window), which the core sleeps until (`kept`).
//! Whoever holds a model of another layout asks [`Monitor::view_of`] instead.
//!
//! Time is read through `clock` ([`now`]), tokio's clock, so tests run the monitor on paused time.
//! Probes never run on DNS workers; each costs at most its timeout.
//!
//! [`Layout`]: crate::config::model::Layout

mod kept;
mod notify;
mod probing;
mod tasks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::clock;
pub use crate::health::clock::{now, unix_now, unix_now_ms};
pub use notify::Event;
pub use probing::Probes;

use crate::config::health::Check;
use crate::config::model::EndpointId;
use crate::config::policy::Model;
use crate::config::{Config, Webhook};
use crate::health::latency::{LatencySummary, LatencyWindow};
use crate::health::overrides::{self as state_file, SavedOverride};
use crate::health::probe::Target;
use crate::health::state::{
    EndpointHealth, Health, HealthParams, OverrideKind, Serving, StartupPolicy,
};
use crate::snapshot::steering::{EndpointView, HealthView};
use kept::KeptView;
use notify::NOTIFY_QUEUE;

/// Why an override could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// The monitor has no endpoint of that name.
    #[error("no endpoint {endpoint:?}")]
    UnknownEndpoint { endpoint: String },
}

/// An endpoint as the periodic state gauges show it ([`Monitor::gauge_states`]).
#[derive(Debug, Clone)]
pub struct GaugeState {
    pub name: Arc<str>,
    pub pool: Arc<str>,
    pub serving: Serving,
    pub since: Instant,
    pub override_kind: Option<(OverrideKind, Option<Instant>)>,
}

/// What the monitor knows about one endpoint, for status output and tests.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    pub name: String,
    pub pool: String,
    pub health: Health,
    pub serving: Serving,
    pub since: Instant,
    pub last_detail: String,
    pub latency: LatencySummary,
    pub override_kind: Option<(OverrideKind, Option<Instant>)>,
    /// When the override was set, in Unix milliseconds ([`unix_now_ms`]): by an operator on this
    /// instance, else when this instance read it from the state file. Fleet peers compare it,
    /// so the newest override wins.
    pub override_set_unix_ms: Option<u64>,
    /// This instance probes it now (probe sharding may give it to other instances).
    pub probing: bool,
    /// It probes it and has a verdict from its probes: the verdict votes in the fleet.
    pub probed: bool,
}

/// One endpoint the monitor probes.
struct Entry {
    name: Arc<str>,
    /// Its id in the configuration last reconciled: the slot of the view it sets.
    id: EndpointId,
    /// Its pool's name (one allocation per pool, shared by its endpoints).
    pool: Arc<str>,
    startup: StartupPolicy,
    /// Its checks' anti-flap parameters, to start its health afresh.
    params: Vec<HealthParams>,
    health: EndpointHealth,
    latency: LatencyWindow,
    /// When the override in `health` was set (Unix ms); `None` without one.
    override_set: Option<u64>,
    /// What the state file held for it when this instance last read or wrote the file. A reload
    /// applies the file's entry only where it differs: an override in force keeps its deadline
    /// on the monotonic clock (re-reading an unchanged file would move it by any jump of the
    /// wall clock since), and one set while the file could not be written survives the reload.
    in_file: Option<SavedOverride>,
    last_detail: String,
    /// The address its probers probe; a reload that changes it or `checks` restarts the
    /// health state.
    check_address: Option<std::net::IpAddr>,
    /// The checks its probers run, as compiled by the configuration they were started for.
    checks: Vec<Arc<Check>>,
    /// Changes with the probers: reports from probers of an older generation are ignored.
    generation: u64,
    /// Stops this endpoint's probers.
    cancel: CancellationToken,
    /// Whether its probers probe (probe sharding, [`Monitor::set_probing`]): read by them before
    /// each probe.
    probing: Arc<AtomicBool>,
}

impl Entry {
    fn status(&self, now: Instant) -> EndpointStatus {
        EndpointStatus {
            name: self.name.to_string(),
            pool: self.pool.to_string(),
            health: self.health.health(),
            serving: self.health.serving(self.startup, now),
            since: self.health.since(),
            last_detail: self.last_detail.clone(),
            latency: self.latency.summary(now),
            override_kind: self.health.override_state(),
            override_set_unix_ms: self
                .override_set
                .filter(|_| self.health.override_state().is_some()),
            probing: self.probing(),
            probed: self.probed(),
        }
    }

    /// Its probers probe.
    fn probing(&self) -> bool {
        self.probing.load(Ordering::Relaxed)
    }

    /// Its probers probe and every check has a verdict since they began.
    fn probed(&self) -> bool {
        self.probing() && self.health.has_verdict()
    }

    /// Its slot of the view at `now`, and the next instant time alone changes it.
    fn view(&self, now: Instant) -> (EndpointView, Option<Instant>) {
        let (p50, p90) = self.latency.p50_p90(now);
        let overridden = self
            .health
            .override_state()
            .filter(|(_, expires)| expires.is_none_or(|e| now < e))
            .map(|(kind, _)| kind);
        let view = EndpointView {
            serving: self.health.serving(self.startup, now),
            p50,
            p90,
            overridden,
            probed: self.probed(),
        };
        let due = [self.health.next_change(now), self.latency.next_expiry(now)];
        (view, due.into_iter().flatten().min())
    }
}

/// Everything behind the monitor's lock. The core task, reconcile, overrides and status take it;
/// the publisher never does.
struct State {
    /// In the order of the configuration's endpoints (their ids).
    entries: Vec<Entry>,
    /// Endpoint name → position in `entries`.
    index: Index,
    /// The working view and its deadlines.
    kept: KeptView,
    state_file: Option<PathBuf>,
    /// Which endpoints to probe (probe sharding); `None`: all.
    probes: Option<Probes>,
}

impl State {
    /// Set the slot of entry `i` from its state at `now`.
    fn refresh(&mut self, i: usize, now: Instant) {
        let (view, due) = self.entries[i].view(now);
        self.kept.set(i, self.entries[i].id, view, due);
    }
}

struct Shared {
    state: Mutex<State>,
    /// The view last published: what the publisher loads.
    view: ArcSwap<HealthView>,
    /// Bumped whenever what DNS should answer may have changed, after the view that shows it is
    /// published.
    version: watch::Sender<u64>,
    /// Wakes the core task when a deadline was set outside it (override, reconcile).
    wake: Notify,
    webhooks: watch::Sender<Vec<Webhook>>,
    reports: mpsc::Sender<tasks::Report>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// The runtime probers run on, so a reload from any thread can start them.
    runtime: tokio::runtime::Handle,
    next_generation: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("health lock")
    }

    /// Publish the working view now and tell subscribers.
    fn publish(&self, mut st: MutexGuard<'_, State>, now: Instant) {
        let (view, _) = st.kept.publish(now);
        self.view.store(view);
        drop(st);
        self.version.send_modify(|v| *v += 1);
        self.wake.notify_one();
    }
}

/// Handle to the running monitor.
#[derive(Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

/// An endpoint of a configuration, with its pool and the pool's name.
type Placed<'a> = (
    Arc<str>,
    &'a crate::config::Pool,
    &'a crate::config::Endpoint,
);

/// Endpoint names → positions, by a fast hash (names come from the operator's configuration).
type Index = HashMap<Arc<str>, usize, foldhash::fast::RandomState>;

/// Whether `e` is probed as `entry`'s probers probe: the same address and the same checks, in
/// order. A check is the same when it is the same compiled check or, compiled again by a reload,
/// has the same settings (compared as text, each distinct check written once per reconcile in
/// `texts`).
fn same_probes(
    entry: &Entry,
    e: &crate::config::Endpoint,
    texts: &mut HashMap<*const Check, String>,
) -> bool {
    if entry.check_address != e.check_address || entry.checks.len() != e.checks.len() {
        return false;
    }
    entry.checks.iter().zip(&e.checks).all(|(a, b)| {
        Arc::ptr_eq(a, b) || {
            let mut text = |c: &Arc<Check>| -> String {
                texts
                    .entry(Arc::as_ptr(c))
                    .or_insert_with(|| format!("{c:?}"))
                    .clone()
            };
            text(a) == text(b)
        }
    })
}

impl Monitor {
    /// Start probing every endpoint of `config`. Tasks stop when `cancel` fires. Must be called
    /// within a tokio runtime; probers run on it.
    pub fn start(config: &Config, cancel: CancellationToken, tracker: &TaskTracker) -> Monitor {
        let (version, _) = watch::channel(0);
        let (webhooks, hooks_rx) = watch::channel(config.webhooks.clone());
        let (tx, rx) = mpsc::channel::<tasks::Report>(4096);
        let (notify_tx, notify_rx) = mpsc::channel::<Event>(NOTIFY_QUEUE);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                entries: Vec::new(),
                index: Index::default(),
                kept: KeptView::new(),
                state_file: None,
                probes: None,
            }),
            view: ArcSwap::from_pointee(HealthView::default()),
            version,
            wake: Notify::new(),
            webhooks,
            reports: tx,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            runtime: tokio::runtime::Handle::current(),
            next_generation: AtomicU64::new(1),
        });
        let monitor = Monitor { shared };
        monitor.reconcile(config);
        tracker.spawn(tasks::core(monitor.clone(), rx, notify_tx, cancel.clone()));
        tracker.spawn(notify::notifier(hooks_rx, notify_rx, cancel));
        monitor
    }

    /// Apply a (re)loaded configuration. Endpoints whose checks did not change keep their health
    /// state, latency history and override, and their probers keep running; changed endpoints
    /// restart their probers and health state (keeping history and override); removed ones stop;
    /// new ones start probing at once. Overrides are then what the state file says, when one is
    /// configured. The view is published for the new configuration's ids before this returns.
    ///
    /// Linear in the endpoints, with no allocation for an endpoint kept: when every endpoint is
    /// where it was (the same names in the same order), each entry is updated in place and the
    /// name index stays; otherwise entries are found by name and the index is built again.
    pub fn reconcile(&self, config: &Config) {
        let sh = &self.shared;
        sh.webhooks.send_replace(config.webhooks.clone());
        // Read before the lock: a file on a slow disk must not stall the core.
        let saved = config.state_file.as_ref().map(|p| state_file::read(p));
        let mut st = sh.state();
        let now = clock::now();
        st.state_file.clone_from(&config.state_file);
        let old = std::mem::take(&mut st.entries);
        let count: usize = config.pools.iter().map(|p| p.endpoints.len()).sum();
        // Every endpoint, with its pool and the pool's name (one allocation per pool).
        let mut endpoints = config.pools.iter().flat_map(|pool| {
            let name: Arc<str> = Arc::from(pool.name.as_str());
            pool.endpoints
                .iter()
                .map(move |e| (Arc::clone(&name), pool, e))
        });
        let mut texts = HashMap::new();
        let probes = st.probes.clone();
        // Take `previous` (the entry of the endpoint's name, if any) over for `e` of `pool`.
        let mut reuse = |previous: Option<Entry>, (pool_name, pool, e): Placed<'_>| {
            let probe = probes.as_ref().is_none_or(|p| p(&e.name));
            match previous {
                Some(mut kept) if same_probes(&kept, e, &mut texts) => {
                    if *kept.pool != *pool_name {
                        kept.pool = pool_name;
                    }
                    kept.startup = pool.startup;
                    kept.id = e.id;
                    probing::set(&mut kept, probe, now);
                    kept
                }
                previous => self.start_entry(e, &pool_name, pool, previous, probe, now),
            }
        };
        let in_place = old.len() == count
            && old
                .iter()
                .zip(config.pools.iter().flat_map(|p| p.endpoints.iter()))
                .all(|(o, e)| *o.name == *e.name);
        if in_place {
            // The same endpoints in the same order (a reload that changed none, or only their
            // settings): each entry is updated where it is, and the name index stays.
            st.entries = old
                .into_iter()
                .map(|kept| reuse(Some(kept), endpoints.next().expect("as many endpoints")))
                .collect();
        } else {
            let mut old: Vec<Option<Entry>> = old.into_iter().map(Some).collect();
            let old_index = std::mem::take(&mut st.index);
            let mut entries = Vec::with_capacity(count);
            for endpoint in endpoints {
                let name = endpoint.2.name.as_str();
                let previous = old_index
                    .get(name)
                    .and_then(|&i| old.get_mut(i))
                    .and_then(Option::take);
                entries.push(reuse(previous, endpoint));
            }
            for gone in old.into_iter().flatten() {
                gone.cancel.cancel();
            }
            let mut index = Index::with_capacity_and_hasher(entries.len(), Default::default());
            index.extend(
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Arc::clone(&e.name), i)),
            );
            st.index = index;
            st.entries = entries;
        }
        match saved {
            Some(Ok(saved)) => apply_saved(&mut st.entries, &saved, now),
            Some(Err(e)) => {
                tracing::error!("overrides unchanged: {e}");
                metrics::counter!("meridian_health_state_file_errors_total", "operation" => "read")
                    .increment(1);
            }
            None => {}
        }
        let slots = st
            .entries
            .iter()
            .map(|e| e.id.index() + 1)
            .max()
            .unwrap_or(0);
        let count = st.entries.len();
        st.kept.reset(config.model.layout, slots, count);
        for i in 0..count {
            st.refresh(i, now);
        }
        sh.publish(st, now);
    }

    /// A new entry for `e` of `pool`, its probers started (probing when `probe`); health
    /// starts afresh, latency history, last detail and override come from `previous` (a
    /// changed endpoint) when given.
    fn start_entry(
        &self,
        e: &crate::config::Endpoint,
        pool_name: &Arc<str>,
        pool: &crate::config::Pool,
        previous: Option<Entry>,
        probe: bool,
        now: Instant,
    ) -> Entry {
        let sh = &self.shared;
        let params: Vec<_> = e.checks.iter().map(|c| c.params).collect();
        let generation = sh.next_generation.fetch_add(1, Ordering::Relaxed);
        let cancel = sh.cancel.child_token();
        let probing = Arc::new(AtomicBool::new(probe));
        let name: Arc<str> = Arc::from(e.name.as_str());
        let mut health = EndpointHealth::new(&params, now);
        let (latency, last_detail, override_set, in_file) = match previous {
            Some(old) => {
                old.cancel.cancel();
                if let Some((kind, until)) = old.health.override_state() {
                    health.set_override(kind, until, now);
                }
                (old.latency, old.last_detail, old.override_set, old.in_file)
            }
            None => (LatencyWindow::new(now), String::new(), None, None),
        };
        // The config guarantees an address to probe wherever there are checks.
        if let Some(address) = e.check_address {
            for (i, check) in e.checks.iter().enumerate() {
                let target = Target {
                    address,
                    port: check.port,
                    endpoint: e.name.clone(),
                };
                sh.tracker.spawn_on(
                    tasks::prober(
                        Arc::clone(&name),
                        generation,
                        i,
                        Arc::clone(check),
                        target,
                        sh.reports.clone(),
                        tasks::Switches {
                            probing: Arc::clone(&probing),
                            cancel: cancel.clone(),
                        },
                    ),
                    &sh.runtime,
                );
            }
        }
        Entry {
            name,
            id: e.id,
            pool: Arc::clone(pool_name),
            startup: pool.startup,
            params,
            health,
            latency,
            override_set,
            in_file,
            last_detail,
            check_address: e.check_address,
            checks: e.checks.clone(),
            generation,
            cancel,
            probing,
        }
    }

    /// A receiver that sees a new value whenever serving state may have changed (an endpoint's
    /// health changed, an override, a reload, an override's expiry): the view that shows it is
    /// published by then.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// Every endpoint this instance probes has a verdict from every one of its checks.
    pub fn ready(&self) -> bool {
        self.shared
            .state()
            .entries
            .iter()
            .all(|e| !e.probing() || e.health.has_verdict())
    }

    /// What DNS answers should do with `endpoint` now.
    pub fn serving(&self, endpoint: &str) -> Option<Serving> {
        let now = clock::now();
        let st = self.shared.state();
        let e = &st.entries[*st.index.get(endpoint)?];
        Some(e.health.serving(e.startup, now))
    }

    /// The health view as last published: serving state and latency of every endpoint of the
    /// configuration last reconciled, by [`EndpointId`], stamped with its [`Layout`]. One atomic
    /// load: what decision tables are built from. Read it by id only against a model of the same
    /// layout; for another, see [`Monitor::view_of`].
    ///
    /// [`Layout`]: crate::config::model::Layout
    pub fn view(&self) -> Arc<HealthView> {
        self.shared.view.load_full()
    }

    /// A view for `model`, whatever configuration the monitor last reconciled: each endpoint of
    /// the model looked up by name and computed now (serving state, latency percentiles). An
    /// endpoint the monitor does not know counts as up with nothing measured. For a model whose
    /// layout is not the published view's (a reload between the two); takes the lock and merges
    /// histograms, so [`Monitor::view`] is the one to use whenever the layouts agree.
    pub fn view_of(&self, model: &Model) -> HealthView {
        let now = clock::now();
        let st = self.shared.state();
        let endpoints = || model.pools.iter().flat_map(|p| p.endpoints.iter());
        let mut slots = vec![EndpointView::default(); model.endpoint_slots()];
        for e in endpoints() {
            if let Some(&i) = st.index.get(e.name.as_str()) {
                slots[e.id.index()] = st.entries[i].view(now).0;
            }
        }
        HealthView::new(model.layout, slots.len(), |id| slots[id.index()])
    }

    /// Status of every endpoint, sorted by name.
    pub fn status(&self) -> Vec<EndpointStatus> {
        let now = clock::now();
        let st = self.shared.state();
        let mut out: Vec<_> = st.entries.iter().map(|e| e.status(now)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Each endpoint's name, pool, serving state, since when, and override, in configuration
    /// order: what the periodic state gauges show. Unlike [`Monitor::status`] it works out no
    /// latency summary and copies no detail text (a tick over 100,000 endpoints stays cheap).
    pub fn gauge_states(&self) -> Vec<GaugeState> {
        let now = clock::now();
        let st = self.shared.state();
        st.entries
            .iter()
            .map(|e| GaugeState {
                name: Arc::clone(&e.name),
                pool: Arc::clone(&e.pool),
                serving: e.health.serving(e.startup, now),
                since: e.health.since(),
                override_kind: e.health.override_state(),
            })
            .collect()
    }

    /// [`Monitor::status`] with each endpoint's latency window merged into one histogram
    /// ([`LatencyWindow::merged_histogram`]): what the fleet's observations carry. Merges every
    /// window under the lock, so for callers that need the histograms only.
    pub fn status_with_histograms(&self) -> Vec<(EndpointStatus, Histogram<u16>)> {
        let now = clock::now();
        let st = self.shared.state();
        let mut out: Vec<_> = st
            .entries
            .iter()
            .map(|e| (e.status(now), e.latency.merged_histogram(now)))
            .collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    /// Force an endpoint up or down, or drain it, optionally for a limited time; `None` clears.
    /// The view shows it before this returns. Persisted in the state file when one is
    /// configured.
    pub fn set_override(
        &self,
        endpoint: &str,
        kind: Option<OverrideKind>,
        ttl: Option<Duration>,
    ) -> Result<(), OverrideError> {
        let mut st = self.shared.state();
        let now = clock::now();
        let i = *st
            .index
            .get(endpoint)
            .ok_or_else(|| OverrideError::UnknownEndpoint {
                endpoint: endpoint.to_string(),
            })?;
        let e = &mut st.entries[i];
        match kind {
            // An expiry too far to represent is no expiry.
            Some(k) => e
                .health
                .set_override(k, ttl.and_then(|t| now.checked_add(t)), now),
            None => e.health.clear_override(),
        }
        e.override_set = kind.map(|_| clock::unix_now_ms());
        tracing::info!(endpoint, pool = %e.pool, override_kind = ?kind, ttl = ?ttl, "override set");
        st.refresh(i, now);
        let (path, saved) = (st.state_file.clone(), saved_overrides(&st.entries, now));
        self.shared.publish(st, now);
        if let Some(path) = path {
            match state_file::write(&path, &saved) {
                Ok(()) => {
                    let mut st = self.shared.state();
                    for e in &mut st.entries {
                        e.in_file = saved.get(&*e.name).cloned();
                    }
                }
                Err(e) => {
                    // Serving follows the override all the same, and a reload keeps it (the
                    // file's unchanged entries are not applied again): only a restart loses it.
                    tracing::error!("{e}; the override holds until a restart");
                    metrics::counter!("meridian_health_state_file_errors_total", "operation" => "write")
                        .increment(1);
                }
            }
        }
        Ok(())
    }

    /// Write the state file again with each override's expiry read off the wall clock as it is
    /// now: after a step of the wall clock the file's expiries, written before it, would put
    /// every override's end elsewhere at the next start. The file is left alone unless it holds
    /// exactly what this instance last read or wrote (an edit waiting for a reload is the
    /// operator's), or when nothing in it changes. Blocking file I/O. Returns whether it was
    /// written.
    pub fn restamp_state_file(&self) -> bool {
        let Some(path) = self.shared.state().state_file.clone() else {
            return false;
        };
        // Read before the lock, as reconcile does.
        let Ok(on_disk) = state_file::read(&path) else {
            return false;
        };
        let saved = {
            let st = self.shared.state();
            let known = st.entries.iter().filter(|e| e.in_file.is_some()).count();
            let ours = on_disk.len() == known
                && st
                    .entries
                    .iter()
                    .all(|e| on_disk.get(&*e.name) == e.in_file.as_ref());
            if !ours {
                return false;
            }
            saved_overrides(&st.entries, clock::now())
        };
        if saved == on_disk {
            return false;
        }
        match state_file::write(&path, &saved) {
            Ok(()) => {
                let mut st = self.shared.state();
                for e in &mut st.entries {
                    e.in_file = saved.get(&*e.name).cloned();
                }
                true
            }
            Err(e) => {
                tracing::error!("{e}; its expiries are those written before the clock stepped");
                metrics::counter!("meridian_health_state_file_errors_total", "operation" => "write")
                    .increment(1);
                false
            }
        }
    }
}

/// Make the overrides of `entries` what the state file says (`saved`, read at `now`): entries
/// it does not name have none. An entry the file says the same of as when this instance last
/// read or wrote it is left as it is ([`Entry::in_file`]).
fn apply_saved(entries: &mut [Entry], saved: &state_file::Overrides, now: Instant) {
    let unix = clock::unix_now();
    for e in entries {
        let in_file = saved.get(&*e.name);
        if in_file == e.in_file.as_ref() {
            continue;
        }
        e.in_file = in_file.cloned();
        let before = e.health.override_state();
        match in_file {
            Some(SavedOverride {
                expires: Some(t), ..
            }) if *t <= unix => e.health.clear_override(),
            Some(SavedOverride {
                kind,
                expires: Some(t),
            }) => {
                // An expiry too far to represent is no expiry.
                let until = now.checked_add(Duration::from_secs(t - unix));
                e.health.set_override(*kind, until, now)
            }
            Some(SavedOverride {
                kind,
                expires: None,
            }) => e.health.set_override(*kind, None, now),
            None => e.health.clear_override(),
        }
        // The file says what it said before: the override keeps when it was set; a new one was
        // set now, as far as this instance can tell (the file keeps no such time).
        let after = e.health.override_state();
        if after.is_none() {
            e.override_set = None;
        } else if after.map(|(k, _)| k) != before.map(|(k, _)| k) || e.override_set.is_none() {
            e.override_set = Some(clock::unix_now_ms());
        }
    }
}

/// The overrides of `entries` at `now`, as the state file keeps them.
fn saved_overrides(entries: &[Entry], now: Instant) -> state_file::Overrides {
    let unix = clock::unix_now();
    entries
        .iter()
        .filter_map(|e| {
            let (kind, until) = e.health.override_state()?;
            let expires = until.map(|u| unix + u.saturating_duration_since(now).as_secs());
            Some((e.name.to_string(), SavedOverride { kind, expires }))
        })
        .collect()
}
