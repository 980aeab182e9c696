//! The health monitor: schedules probes, feeds results to the state core, tells the world.
//!
//! One task per (endpoint, check) sleeps, probes, and sends the raw result to one core task.
//! The first probe runs at start (after a random part of the check's jitter, so thousands of
//! checks do not fire at once), then every interval. The core task applies each result to the
//! endpoint's [`EndpointHealth`] and [`LatencyWindow`], logs every state change as one structured
//! line, and hands the change to the notifier (webhooks) through a bounded queue it never waits
//! on: a slow or failing webhook cannot delay probing or serving.
//!
//! Probes never run on DNS workers; each costs at most its timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Webhook};
use crate::health::latency::{LatencySummary, LatencyWindow};
use crate::health::overrides::{self as state_file, SavedOverride, unix_now};
use crate::health::probe::{self, Target};
use crate::health::state::{EndpointHealth, Health, OverrideKind, Serving, StartupPolicy};
use crate::snapshot::steering::{EndpointView, HealthView};

/// Queue of state changes waiting for webhook delivery; further changes are dropped (and logged).
const NOTIFY_QUEUE: usize = 1024;
/// Webhook deliveries in flight at once.
const NOTIFY_PARALLEL: usize = 8;

/// One state change, as logged and as POSTed to webhooks.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub endpoint: String,
    pub pool: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// The probe result that caused it.
    pub detail: String,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

/// Why an override could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// The monitor has no endpoint of that name.
    #[error("no endpoint {endpoint:?}")]
    UnknownEndpoint { endpoint: String },
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
}

struct Entry {
    pool: String,
    startup: StartupPolicy,
    health: EndpointHealth,
    latency: LatencyWindow,
    last_detail: String,
    /// What the endpoint's checks are; a reload that changes it restarts the health state.
    fingerprint: String,
    /// Changes with the fingerprint: reports from probers of an older generation are ignored.
    generation: u64,
    /// Stops this endpoint's probers.
    cancel: CancellationToken,
}

struct Shared {
    endpoints: Mutex<HashMap<String, Entry>>,
    /// Bumped whenever what DNS should answer may have changed.
    version: watch::Sender<u64>,
    state_file: Mutex<Option<std::path::PathBuf>>,
    webhooks: watch::Sender<Vec<Webhook>>,
    reports: mpsc::Sender<Report>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// The runtime probers run on, so a reload from any thread can start them.
    runtime: tokio::runtime::Handle,
    next_generation: std::sync::atomic::AtomicU64,
}

/// Handle to the running monitor.
#[derive(Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

/// Result of one probe, on its way to the core task.
struct Report {
    endpoint: String,
    generation: u64,
    check: usize,
    /// The check's configured name, for metrics.
    check_name: Arc<str>,
    result: probe::ProbeResult,
}

/// Everything that decides how an endpoint is probed, as comparable text.
fn fingerprint(e: &crate::config::Endpoint) -> String {
    format!("{:?}|{:?}", e.check_address, e.checks)
}

impl Monitor {
    /// Start probing every endpoint of `config`. Tasks stop when `cancel` fires. Must be called
    /// within a tokio runtime; probers run on it.
    pub fn start(config: &Config, cancel: CancellationToken, tracker: &TaskTracker) -> Monitor {
        let (version, _) = watch::channel(0);
        let (webhooks, hooks_rx) = watch::channel(config.webhooks.clone());
        let (tx, rx) = mpsc::channel::<Report>(4096);
        let (notify_tx, notify_rx) = mpsc::channel::<Event>(NOTIFY_QUEUE);
        let shared = Arc::new(Shared {
            endpoints: Mutex::new(HashMap::new()),
            version,
            state_file: Mutex::new(config.state_file.clone()),
            webhooks,
            reports: tx,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            runtime: tokio::runtime::Handle::current(),
            next_generation: std::sync::atomic::AtomicU64::new(1),
        });
        let monitor = Monitor { shared };
        monitor.reconcile(config);
        tracker.spawn(core(monitor.clone(), rx, notify_tx, cancel.clone()));
        tracker.spawn(notifier(hooks_rx, notify_rx, cancel));
        monitor
    }

    /// Apply a (re)loaded configuration. Endpoints whose checks did not change keep their health
    /// state, latency history and override, and their probers keep running; changed endpoints
    /// restart their probers and health state (keeping history and override); removed ones stop;
    /// new ones start probing at once.
    pub fn reconcile(&self, config: &Config) {
        let now = Instant::now();
        let sh = &self.shared;
        *sh.state_file.lock().expect("health lock") = config.state_file.clone();
        sh.webhooks.send_replace(config.webhooks.clone());
        let mut map = sh.endpoints.lock().expect("health lock");
        let mut seen = std::collections::HashSet::new();
        for pool in &config.pools {
            for e in &pool.endpoints {
                seen.insert(e.name.clone());
                let fp = fingerprint(e);
                if let Some(old) = map.get_mut(&e.name) {
                    old.pool.clone_from(&pool.name);
                    old.startup = pool.startup;
                    if old.fingerprint == fp {
                        continue;
                    }
                    old.cancel.cancel();
                }
                let params: Vec<_> = e.checks.iter().map(|c| c.params).collect();
                let generation = sh
                    .next_generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let cancel = sh.cancel.child_token();
                let mut health = EndpointHealth::new(&params, now);
                let (latency, last_detail) = match map.remove(&e.name) {
                    Some(old) => {
                        if let Some((kind, until)) = old.health.override_state() {
                            health.set_override(kind, until, now);
                        }
                        (old.latency, old.last_detail)
                    }
                    None => (LatencyWindow::new(now), String::new()),
                };
                // The config guarantees an address to probe wherever there are checks.
                for (i, check) in e
                    .checks
                    .iter()
                    .enumerate()
                    .filter(|_| e.check_address.is_some())
                {
                    let target = Target {
                        address: e.check_address.expect("filtered"),
                        port: check.port,
                        endpoint: e.name.clone(),
                    };
                    sh.tracker.spawn_on(
                        prober(
                            e.name.clone(),
                            generation,
                            i,
                            Arc::clone(check),
                            target,
                            sh.reports.clone(),
                            cancel.clone(),
                        ),
                        &sh.runtime,
                    );
                }
                let entry = Entry {
                    pool: pool.name.clone(),
                    startup: pool.startup,
                    health,
                    latency,
                    last_detail,
                    fingerprint: fp,
                    generation,
                    cancel,
                };
                map.insert(e.name.clone(), entry);
            }
        }
        map.retain(|name, e| {
            let keep = seen.contains(name);
            if !keep {
                e.cancel.cancel();
            }
            keep
        });
        drop(map);
        self.load_overrides();
        sh.version.send_modify(|v| *v += 1);
    }

    /// A receiver that sees a new value whenever serving state may have changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// Every endpoint has a verdict from every one of its checks.
    pub fn ready(&self) -> bool {
        self.shared
            .endpoints
            .lock()
            .expect("health lock")
            .values()
            .all(|e| e.health.has_verdict())
    }

    /// What DNS answers should do with `endpoint` now.
    pub fn serving(&self, endpoint: &str) -> Option<Serving> {
        let now = Instant::now();
        let map = self.shared.endpoints.lock().expect("health lock");
        map.get(endpoint).map(|e| e.health.serving(e.startup, now))
    }

    /// Health and latency of every endpoint of `model`, by [`EndpointId`]: what decision tables
    /// are built from. An endpoint the monitor does not know (yet) counts as up.
    ///
    /// [`EndpointId`]: crate::config::model::EndpointId
    pub fn view(&self, model: &crate::config::policy::Model) -> HealthView {
        let now = Instant::now();
        let map = self.shared.endpoints.lock().expect("health lock");
        let mut views = Vec::new();
        for e in model.pools.iter().flat_map(|p| &p.endpoints) {
            let v = match map.get(&e.name) {
                Some(m) => {
                    let latency = m.latency.summary(now);
                    EndpointView {
                        serving: m.health.serving(m.startup, now),
                        p50: latency.p50,
                        p90: latency.p90,
                    }
                }
                None => EndpointView::default(),
            };
            debug_assert_eq!(e.id.index(), views.len(), "endpoint ids are positions");
            views.push(v);
        }
        HealthView::new(model.layout, views.len(), |id| views[id.index()])
    }

    /// Status of every endpoint, sorted by name.
    pub fn status(&self) -> Vec<EndpointStatus> {
        let now = Instant::now();
        let map = self.shared.endpoints.lock().expect("health lock");
        let mut out: Vec<_> = map
            .iter()
            .map(|(name, e)| EndpointStatus {
                name: name.clone(),
                pool: e.pool.clone(),
                health: e.health.health(),
                serving: e.health.serving(e.startup, now),
                since: e.health.since(),
                last_detail: e.last_detail.clone(),
                latency: e.latency.summary(now),
                override_kind: e.health.override_state(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Force an endpoint up or down, or drain it, optionally for a limited time; `None` clears.
    /// Persisted in the state file when one is configured.
    pub fn set_override(
        &self,
        endpoint: &str,
        kind: Option<OverrideKind>,
        ttl: Option<Duration>,
    ) -> Result<(), OverrideError> {
        let now = Instant::now();
        {
            let mut map = self.shared.endpoints.lock().expect("health lock");
            let e = map
                .get_mut(endpoint)
                .ok_or_else(|| OverrideError::UnknownEndpoint {
                    endpoint: endpoint.to_string(),
                })?;
            match kind {
                Some(k) => e.health.set_override(k, ttl.map(|t| now + t), now),
                None => e.health.clear_override(),
            }
            tracing::info!(endpoint, pool = %e.pool, override_kind = ?kind, ttl = ?ttl, "override set");
        }
        self.save_overrides();
        self.shared.version.send_modify(|v| *v += 1);
        if let (Some(_), Some(until)) = (kind, ttl.and_then(|t| now.checked_add(t))) {
            self.wake_at(until);
        }
        Ok(())
    }

    /// Tell subscribers (the table rebuilder) that serving state changes at `at`: an override
    /// expires lazily, when `serving` is next read, and no probe result marks the moment, so
    /// without this the tables would keep a drained endpoint out until the next periodic rebuild.
    /// A wake for an override replaced meanwhile costs one needless rebuild.
    fn wake_at(&self, at: Instant) {
        let shared = Arc::downgrade(&self.shared);
        let cancel = self.shared.cancel.clone();
        let at = tokio::time::Instant::from_std(at);
        self.shared.tracker.spawn_on(
            async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep_until(at) => {
                        if let Some(sh) = shared.upgrade() {
                            sh.version.send_modify(|v| *v += 1);
                        }
                    }
                }
            },
            &self.shared.runtime,
        );
    }

    /// Make the in-memory overrides what the state file says (at start and on every reload).
    /// Without a state file, overrides live in memory only and survive reloads, not restarts.
    fn load_overrides(&self) {
        let Some(path) = self.shared.state_file.lock().expect("health lock").clone() else {
            return;
        };
        let saved = match state_file::read(&path) {
            Ok(s) => s,
            Err(e) => return tracing::error!("overrides unchanged: {e}"),
        };
        let (now, unix) = (Instant::now(), unix_now());
        let mut expiries = Vec::new();
        let mut map = self.shared.endpoints.lock().expect("health lock");
        for (name, e) in map.iter_mut() {
            match saved.get(name) {
                Some(SavedOverride {
                    expires: Some(t), ..
                }) if *t <= unix => e.health.clear_override(),
                Some(SavedOverride {
                    kind,
                    expires: Some(t),
                }) => {
                    // An expiry too far to represent is no expiry.
                    let until = now.checked_add(Duration::from_secs(t - unix));
                    expiries.extend(until);
                    e.health.set_override(*kind, until, now)
                }
                Some(SavedOverride {
                    kind,
                    expires: None,
                }) => e.health.set_override(*kind, None, now),
                None => e.health.clear_override(),
            }
        }
        drop(map);
        for until in expiries {
            self.wake_at(until);
        }
    }

    fn save_overrides(&self) {
        let Some(path) = self.shared.state_file.lock().expect("health lock").clone() else {
            return;
        };
        let (now, unix) = (Instant::now(), unix_now());
        let saved: state_file::Overrides = {
            let map = self.shared.endpoints.lock().expect("health lock");
            map.iter()
                .filter_map(|(name, e)| {
                    let (kind, until) = e.health.override_state()?;
                    let expires = until.map(|u| unix + u.saturating_duration_since(now).as_secs());
                    Some((name.clone(), SavedOverride { kind, expires }))
                })
                .collect()
        };
        if let Err(e) = state_file::write(&path, &saved) {
            tracing::error!("{e}");
        }
    }
}

/// A random duration in [0, max): spreads first probes (splitmix of the clock; no crypto needed).
fn spread(max: Duration, salt: u64) -> Duration {
    if max.is_zero() {
        return max;
    }
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let z = crate::policy::Rng::new(nanos ^ salt).next_u64();
    Duration::from_nanos(z % max.as_nanos().max(1) as u64)
}

async fn prober(
    endpoint: String,
    generation: u64,
    check: usize,
    spec: Arc<crate::config::health::Check>,
    target: Target,
    tx: mpsc::Sender<Report>,
    cancel: CancellationToken,
) {
    // HTTP probers build their client once; the other kinds have nothing to keep.
    let http = match &spec.spec {
        probe::ProbeSpec::Http(h) => match probe::http::HttpProber::new(h, &target) {
            Ok(p) => Some(p),
            Err(e) => return tracing::error!(endpoint, "http check cannot run: {e}"),
        },
        _ => None,
    };
    let check_name: Arc<str> = Arc::from(spec.name.as_str());
    let salt = endpoint.bytes().fold(check as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    });
    let first = spread(spec.jitter.min(spec.interval), salt);
    let mut next = tokio::time::Instant::now() + first;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next += spec.interval;
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = async {
                match &http {
                    Some(p) => p.probe(spec.timeout).await,
                    None => probe::run(&spec.spec, &target, spec.timeout).await,
                }
            } => r,
        };
        if tx
            .send(Report {
                endpoint: endpoint.clone(),
                generation,
                check,
                check_name: Arc::clone(&check_name),
                result,
            })
            .await
            .is_err()
        {
            return;
        }
        // A probe that overran (it cannot by more than its timeout) does not cause a burst.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

async fn core(
    monitor: Monitor,
    mut rx: mpsc::Receiver<Report>,
    notify: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    loop {
        let report = tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.recv() => match r { Some(r) => r, None => return },
        };
        let now = Instant::now();
        let event = {
            let mut map = monitor.shared.endpoints.lock().expect("health lock");
            let Some(e) = map.get_mut(&report.endpoint) else {
                continue;
            };
            if e.generation != report.generation {
                continue; // from a prober a reload has replaced
            }
            let r = &report.result;
            let labels = [
                ("endpoint", report.endpoint.clone()),
                ("check", report.check_name.to_string()),
            ];
            let result = if r.ok { "ok" } else { "fail" };
            metrics::counter!(
                "meridian_health_probes_total",
                "endpoint" => report.endpoint.clone(), "check" => report.check_name.to_string(), "result" => result
            )
            .increment(1);
            if r.ok {
                metrics::histogram!("meridian_health_probe_rtt_seconds", &labels)
                    .record(r.rtt.as_secs_f64());
            }
            e.latency.record(if r.ok { Some(r.rtt) } else { None }, now);
            e.last_detail.clone_from(&r.detail);
            e.health.record(report.check, r.ok, now).map(|t| Event {
                endpoint: report.endpoint.clone(),
                pool: e.pool.clone(),
                from: t.from.to_string(),
                to: t.to.to_string(),
                reason: t.reason,
                detail: r.detail.clone(),
                time: unix_now(),
            })
        };
        if let Some(ev) = event {
            tracing::info!(
                endpoint = %ev.endpoint, pool = %ev.pool, from = %ev.from, to = %ev.to,
                reason = %ev.reason, detail = %ev.detail, "endpoint state changed"
            );
            metrics::counter!("meridian_health_transitions_total", "endpoint" => ev.endpoint.clone(), "to" => ev.to.clone())
                .increment(1);
            if notify.try_send(ev).is_err() {
                tracing::warn!("webhook queue full: a state change notification was dropped");
            }
            monitor.shared.version.send_modify(|v| *v += 1);
        }
    }
}

/// Deliver events to every webhook, with a timeout and bounded retries, never blocking the core.
async fn notifier(
    hooks: watch::Receiver<Vec<Webhook>>,
    mut rx: mpsc::Receiver<Event>,
    cancel: CancellationToken,
) {
    let client = match crate::health::probe::http::plain_client() {
        Ok(c) => c,
        Err(e) => return tracing::error!("webhooks disabled: {e}"),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(NOTIFY_PARALLEL));
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        let body = Arc::new(serde_json::to_vec(&ev).expect("event serializes"));
        let current = hooks.borrow().clone();
        for hook in &current {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (client, hook, body) = (client.clone(), hook.clone(), Arc::clone(&body));
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(200);
                for attempt in 0..=hook.retries {
                    let sent = client
                        .post(&hook.url)
                        .header("content-type", "application/json")
                        .timeout(hook.timeout)
                        .body((*body).clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) => {
                            tracing::warn!(url = %hook.url, attempt, status = %r.status(), "webhook refused")
                        }
                        Err(e) => tracing::warn!(url = %hook.url, attempt, "webhook failed: {e}"),
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                drop(permit);
            });
        }
    }
}
