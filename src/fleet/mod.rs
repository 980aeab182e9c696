//! The fleet: several Meridian instances sharing what their probes see, by peer pull.
//!
//! Every instance serves its own observations (each endpoint's serving state, verdict, override
//! and latency window) at `GET /fleet/observations` on its admin listener (the document is
//! [`wire::Observations`]; the admin API builds it from the monitor) and pulls its peers' (the
//! `[fleet] peers`): one task per peer (`pull`), every `interval`, bounded in time and size.
//! A pull's body is untrusted until [`wire::check`] has read it; a refused pull is counted by
//! peer and reason (`meridian_fleet_pulls_total`) and never changes what is kept. What is kept
//! per peer is its newest accepted document, with the instant it was received: it counts while
//! `received + max_age > now`, which readers work out at their own `now` ([`PeerView::fresh`]);
//! nothing is rewritten when data ages.
//!
//! **Published for the engine**: [`Fleet::peers`], every peer's kept data as one immutable
//! [`PeerViews`] behind an atomic pointer (one load), and [`Fleet::subscribe`], a version bumped
//! when a peer's data changes what it says about an endpoint's serving state or override, when a
//! peer becomes fresh or goes stale (the fleet's timer task wakes at `received + max_age`), and
//! at most once per interval when only latency moved.
//!
//! **Probe sharding** (`[fleet] probes_per_endpoint`): [`Fleet::assignment`] says which
//! endpoints this instance probes now, by rendezvous hashing over the live nodes ([`shard`]);
//! the server hands it to the monitor.
//!
//! Deciding anything from peers' data (quorum health, per-vantage latency) is not done here.
//! Time is tokio's clock, the monitor's too (`health::clock`). Layer 6 of ARCHITECTURE.md, beside the
//! monitor: uses only modules of lower layers (`config`, `health`).

mod pull;
pub mod shard;
mod view;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::clock;

pub use pull::{BODY_LIMIT, PullResult};
pub use view::{Observation, PeerOverride, PeerView, PeerViews};

use crate::config::Config;
use crate::config::fleet::FleetSettings;
use view::Change;
use wire::Received;

/// The fleet's timer task refreshes the peers' gauges at least this often.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// One configured peer.
struct Peer {
    url: String,
    /// Its newest accepted document.
    view: Option<Arc<PeerView>>,
    /// Whether subscribers were last told its data is fresh.
    told_fresh: bool,
    /// The last pull's result, when, and its detail.
    last: Option<(PullResult, Instant, String)>,
    /// Pulls by result, in [`PullResult::ALL`] order.
    counts: [u64; PullResult::ALL.len()],
    /// The pulling task's id: reports from any other are ignored.
    task: u64,
    cancel: CancellationToken,
    /// The `node` and `vantage` labels of its `meridian_fleet_peer_fresh` series last set.
    gauge: Option<(String, String)>,
}

/// Everything behind the fleet's lock.
struct State {
    /// `None` without `[fleet]`.
    settings: Option<Arc<FleetSettings>>,
    /// In configured order.
    peers: Vec<Peer>,
    /// A latency-only change waits for its bump.
    latency_pending: bool,
    last_bump: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    views: ArcSwap<PeerViews>,
    version: watch::Sender<u64>,
    /// Wakes the timer task when a deadline may have moved.
    wake: Notify,
    /// `None` when the HTTP client could not be built (every pull is then `unreachable`).
    client: Option<reqwest::Client>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// The runtime peer tasks run on, so a reload from any thread can start them.
    runtime: tokio::runtime::Handle,
    next_task: AtomicU64,
}

/// Handle to the fleet's pulling.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

/// One peer, for `/status` and tests.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub url: String,
    /// From its newest accepted document.
    pub node: Option<String>,
    pub vantage: Option<String>,
    /// Its data counts now.
    pub fresh: bool,
    /// Since its newest accepted document was received.
    pub age: Option<Duration>,
    /// The last pull's result and its detail ("connection refused", "HTTP 500 ...").
    pub last_result: Option<PullResult>,
    pub last_detail: String,
    /// Pulls by result since it was configured (results never seen are left out).
    pub pulls: Vec<(PullResult, u64)>,
}

impl Fleet {
    /// Start pulling the peers of `config`'s `[fleet]` (none without one). Tasks stop when
    /// `cancel` fires. Must be called within a tokio runtime; the tasks run on it.
    pub fn start(config: &Config, cancel: CancellationToken, tracker: &TaskTracker) -> Fleet {
        let client = crate::health::probe::http::plain_client()
            .inspect_err(|e| tracing::error!("fleet: no HTTP client, peers cannot be pulled: {e}"))
            .ok();
        let (version, _) = watch::channel(0);
        let fleet = Fleet {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    settings: None,
                    peers: Vec::new(),
                    latency_pending: false,
                    last_bump: None,
                }),
                views: ArcSwap::from_pointee(PeerViews::default()),
                version,
                wake: Notify::new(),
                client,
                cancel: cancel.clone(),
                tracker: tracker.clone(),
                runtime: tokio::runtime::Handle::current(),
                next_task: AtomicU64::new(1),
            }),
        };
        fleet.reconcile(config);
        tracker.spawn(timer(fleet.clone(), cancel));
        fleet
    }

    /// Apply a (re)loaded configuration: peers still listed keep their data and their task
    /// (restarted when the interval changed), removed ones stop and are forgotten, new ones are
    /// pulled at once. Token, `max_age` and node name apply from the next pull.
    pub fn reconcile(&self, config: &Config) {
        let sh = &self.shared;
        let mut st = sh.state();
        let settings = config.fleet.clone().map(Arc::new);
        let restart =
            st.settings.as_ref().map(|s| s.interval) != settings.as_ref().map(|s| s.interval);
        let wanted: &[String] = settings.as_ref().map_or(&[], |s| &s.peers);
        let mut old: HashMap<String, Peer> =
            st.peers.drain(..).map(|p| (p.url.clone(), p)).collect();
        let mut peers = Vec::with_capacity(wanted.len());
        for url in wanted {
            let mut peer = old.remove(url).unwrap_or_else(|| Peer {
                url: url.clone(),
                view: None,
                told_fresh: false,
                last: None,
                counts: [0; PullResult::ALL.len()],
                task: 0,
                cancel: CancellationToken::new(),
                gauge: None,
            });
            if peer.task == 0 || restart {
                peer.cancel.cancel();
                peer.cancel = sh.cancel.child_token();
                peer.task = sh.next_task.fetch_add(1, Ordering::Relaxed);
                sh.tracker.spawn_on(
                    pull::peer(self.clone(), url.clone(), peer.task, peer.cancel.clone()),
                    &sh.runtime,
                );
            }
            peers.push(peer);
        }
        let mut changed = false;
        for gone in old.into_values() {
            gone.cancel.cancel();
            retire_gauges(&gone);
            if gone.view.is_some() {
                metrics::gauge!("meridian_fleet_peer_age_seconds", "peer" => gone.url.clone())
                    .set(f64::NAN);
            }
            changed |= gone.told_fresh;
        }
        st.settings = settings;
        st.peers = peers;
        self.publish(&st);
        if changed {
            self.bump(&mut st, clock::now());
        }
        drop(st);
        sh.wake.notify_one();
    }

    /// Every peer's kept data: one atomic load. Whether a peer's data counts is
    /// [`PeerView::fresh`] at the reader's `now` (`monitor::now()`).
    pub fn peers(&self) -> Arc<PeerViews> {
        self.shared.views.load_full()
    }

    /// A receiver that sees a new value whenever what the peers say about serving states or
    /// overrides changed, a peer became fresh or stale, or (at most once per interval) only their
    /// latency moved. [`Fleet::peers`] shows the change by then.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.version.subscribe()
    }

    /// What the fresh peers observe, for the engine and `model` ([`view::engine_view`]);
    /// `None` without `[fleet]`. With no fresh peer it holds none, and health is the local
    /// verdict alone.
    pub fn engine_view(
        &self,
        model: &crate::config::policy::Model,
    ) -> Option<crate::snapshot::steering::FleetView> {
        let settings = self.settings()?;
        Some(view::engine_view(
            model,
            &self.peers(),
            settings.quorum,
            clock::now(),
            clock::unix_now_ms(),
        ))
    }

    /// Which endpoints this instance probes now ([`shard::Assignment`]): `None` without
    /// `[fleet] probes_per_endpoint` (every endpoint). The live nodes are this one and the
    /// peers whose data is fresh now; an endpoint whose chosen peers do not report probing it
    /// is probed here too.
    pub fn assignment(&self) -> Option<shard::Assignment> {
        let settings = self.settings()?;
        let k = settings.probes_per_endpoint?;
        let views = self.peers();
        let peers = views.fresh(clock::now()).map(|p| {
            let probed = p
                .endpoints
                .iter()
                .filter(|(_, o)| o.probed)
                .map(|(name, _)| name.clone())
                .collect();
            (p.node.clone(), probed)
        });
        Some(shard::Assignment::new(k, &settings.node, peers))
    }

    /// The `[fleet]` settings in force (`None` without `[fleet]`).
    pub fn settings(&self) -> Option<Arc<FleetSettings>> {
        self.shared.state().settings.clone()
    }

    /// Every configured peer: who it is, whether its data counts, how its pulls went.
    pub fn status(&self) -> Vec<PeerStatus> {
        let now = clock::now();
        let st = self.shared.state();
        let max_age = st.settings.as_ref().map_or(Duration::ZERO, |s| s.max_age);
        st.peers
            .iter()
            .map(|p| PeerStatus {
                url: p.url.clone(),
                node: p.view.as_ref().map(|v| v.node.clone()),
                vantage: p.view.as_ref().map(|v| v.vantage.clone()),
                fresh: p.view.as_ref().is_some_and(|v| v.fresh(now, max_age)),
                age: p
                    .view
                    .as_ref()
                    .map(|v| now.saturating_duration_since(v.received)),
                last_result: p.last.as_ref().map(|l| l.0),
                last_detail: p.last.as_ref().map(|l| l.2.clone()).unwrap_or_default(),
                pulls: PullResult::ALL
                    .iter()
                    .zip(p.counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(r, n)| (*r, n))
                    .collect(),
            })
            .collect()
    }

    /// Pulls of the peer at `url` (as configured, without a trailing `/`) that ended in
    /// `result`, since it was configured.
    pub fn pulls(&self, url: &str, result: PullResult) -> u64 {
        let st = self.shared.state();
        st.peers
            .iter()
            .find(|p| p.url == url)
            .map_or(0, |p| p.counts[result.index()])
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.shared.client.as_ref()
    }

    /// A pull's outcome, from the task `task`.
    fn report(&self, task: u64, outcome: Result<Received, (PullResult, String)>) {
        let sh = &self.shared;
        let now = clock::now();
        let mut st = sh.state();
        let Some(settings) = st.settings.clone() else {
            return;
        };
        let Some(i) = st.peers.iter().position(|p| p.task == task) else {
            return; // a task of a peer removed or restarted since
        };
        let outcome = outcome.and_then(|r| match &st.peers[i].view {
            Some(kept) if r.sent_unix_ms <= kept.sent_unix_ms => Err((
                PullResult::Stale,
                format!(
                    "sent at {} ms, not after the document kept ({} ms)",
                    r.sent_unix_ms, kept.sent_unix_ms
                ),
            )),
            _ => Ok(r),
        });
        let p = &mut st.peers[i];
        let url = p.url.clone();
        let (result, detail, change) = match outcome {
            Err((result, detail)) => {
                tracing::debug!(peer = %url, result = result.as_str(), "fleet pull refused: {detail}");
                (result, detail, Change::None)
            }
            Ok(r) => {
                let view = PeerView {
                    url: url.clone(),
                    node: r.node,
                    vantage: r.vantage,
                    received: now,
                    sent_unix_ms: r.sent_unix_ms,
                    endpoints: r.endpoints,
                };
                let change = if p.told_fresh {
                    Change::between(p.view.as_deref(), &view)
                } else {
                    Change::Serving
                };
                p.view = Some(Arc::new(view));
                p.told_fresh = true;
                (PullResult::Ok, String::new(), change)
            }
        };
        p.counts[result.index()] += 1;
        p.last = Some((result, now, detail));
        metrics::counter!("meridian_fleet_pulls_total", "peer" => url, "result" => result.as_str())
            .increment(1);
        if result != PullResult::Ok {
            return;
        }
        self.publish(&st);
        match change {
            Change::Serving => self.bump(&mut st, now),
            Change::Latency
                if st
                    .last_bump
                    .is_none_or(|t| now.saturating_duration_since(t) >= settings.interval) =>
            {
                self.bump(&mut st, now)
            }
            Change::Latency => st.latency_pending = true,
            Change::None => {}
        }
        drop(st);
        // A new stale deadline, perhaps a pending latency bump: the timer re-reads them.
        sh.wake.notify_one();
    }

    /// Publish the kept data.
    fn publish(&self, st: &State) {
        self.shared.views.store(Arc::new(PeerViews {
            max_age: st.settings.as_ref().map_or(Duration::ZERO, |s| s.max_age),
            peers: st.peers.iter().filter_map(|p| p.view.clone()).collect(),
        }));
    }

    /// Tell subscribers (after [`Fleet::publish`]).
    fn bump(&self, st: &mut State, now: Instant) {
        st.latency_pending = false;
        st.last_bump = Some(now);
        self.shared.version.send_modify(|v| *v += 1);
    }

    /// At `now`: tell subscribers of peers gone stale and of a latency change whose time has
    /// come, set the gauges; the next instant this must run again.
    fn tick(&self, now: Instant) -> Option<Instant> {
        let mut st = self.shared.state();
        let settings = st.settings.clone()?;
        let mut stale = false;
        let mut next: Option<Instant> = None;
        for p in &mut st.peers {
            if let Some(v) = &p.view
                && p.told_fresh
            {
                if v.fresh(now, settings.max_age) {
                    let until = v.received.checked_add(settings.max_age);
                    next = [next, until].into_iter().flatten().min();
                } else {
                    p.told_fresh = false;
                    stale = true;
                    tracing::warn!(peer = %p.url, node = %v.node, "fleet peer's data is stale");
                }
            }
            set_gauges(p, now, settings.max_age);
        }
        if stale {
            self.bump(&mut st, now);
        } else if st.latency_pending {
            let due = st.last_bump.map_or(now, |t| t + settings.interval);
            if due <= now {
                self.bump(&mut st, now);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fleet lock")
    }
}

/// The fleet's timer: wakes when a peer's data goes stale, when a pending latency change may be
/// told, when told something changed, and every [`GAUGES_EVERY`] for the gauges.
async fn timer(fleet: Fleet, cancel: CancellationToken) {
    loop {
        let now = clock::now();
        let next = fleet.tick(now);
        let until = next.map_or(now + GAUGES_EVERY, |n| n.min(now + GAUGES_EVERY));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = fleet.shared.wake.notified() => {}
            _ = tokio::time::sleep_until(until.into()) => {}
        }
    }
}

/// `meridian_fleet_peer_fresh` and `meridian_fleet_peer_age_seconds` of `p` at `now`.
fn set_gauges(p: &mut Peer, now: Instant, max_age: Duration) {
    let labels = p.view.as_ref().map_or((String::new(), String::new()), |v| {
        (v.node.clone(), v.vantage.clone())
    });
    if p.gauge.as_ref().is_some_and(|g| *g != labels) {
        retire_gauges(p);
    }
    let fresh = p.view.as_ref().is_some_and(|v| v.fresh(now, max_age));
    metrics::gauge!("meridian_fleet_peer_fresh", "peer" => p.url.clone(), "node" => labels.0.clone(), "vantage" => labels.1.clone())
        .set(if fresh { 1.0 } else { 0.0 });
    if let Some(v) = &p.view {
        metrics::gauge!("meridian_fleet_peer_age_seconds", "peer" => p.url.clone())
            .set(now.saturating_duration_since(v.received).as_secs_f64());
    }
    p.gauge = Some(labels);
}

/// A series that no longer stands for a peer (removed, or answering as another node): NaN, so
/// it neither graphs nor alerts (the registry cannot drop a series).
fn retire_gauges(p: &Peer) {
    if let Some((node, vantage)) = &p.gauge {
        metrics::gauge!("meridian_fleet_peer_fresh", "peer" => p.url.clone(), "node" => node.clone(), "vantage" => vantage.clone())
            .set(f64::NAN);
    }
}
