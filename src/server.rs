//! A running server: sockets bound, workers started, one snapshot published.
//!
//! [`Server::start`] binds UDP and TCP on every listen address (port 0 picks one free port that
//! UDP and TCP then share), starts the UDP worker threads and the TCP accept tasks, and returns
//! a handle with the bound addresses. [`Server::reload`] swaps in a new snapshot; the table
//! rebuild and GeoIP tasks publish new tables and databases; the workers see each on their next
//! batch. The fleet (`[fleet]`) pulls its peers from start and follows every reload; with
//! `[fleet] probes_per_endpoint` it says which endpoints the monitor probes (`shard_probes`).
//! [`Server::shutdown`] is the one way down: stop accepting,
//! let open TCP connections finish within a grace period, join the UDP workers.
//!
//! Layer 10 of ARCHITECTURE.md: uses only modules of lower layers.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::control::{Control, Publisher};
use crate::fleet::Fleet;
use crate::monitor::Monitor;
use crate::secondary::Secondaries;
use crate::serve::shield::Shield;
use crate::serve::{tcp, udp};
use crate::snapshot::Snapshot;

/// How many times a port-0 listen address is retried when TCP cannot take the UDP port.
const PORT_ATTEMPTS: usize = 16;

/// Handle to a running server.
pub struct Server {
    snapshot: Arc<ArcSwap<Snapshot>>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    udp_workers: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    control: Control,
    /// Pulls the fleet's peers (`[fleet]`).
    fleet: Fleet,
    /// Admin API: the address bound, when `[admin] listen` is configured.
    admin_addr: Option<SocketAddr>,
    /// The secondary zones' tasks (zones with `primaries`).
    secondaries: Secondaries,
    /// Rate limiting and cookie secrets, shared by the sockets.
    shield: Shield,
}

/// Bind every UDP worker socket and the TCP listener for one address, on one port.
fn bind_address(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener)> {
    let mut last_err = None;
    for _ in 0..PORT_ATTEMPTS {
        let first = udp::bind(addr)?;
        let bound = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(udp::bind(bound)?);
        }
        match bind_tcp(bound) {
            Ok(l) => return Ok((sockets, l)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}

fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

impl Server {
    /// Bind and start serving `snapshot` as `config` says. Must run inside a tokio runtime.
    pub fn start(config: &Config, snapshot: Snapshot) -> io::Result<Server> {
        crate::metrics::install();
        let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        let stop = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limits = config.tcp;
        let shield = Shield::new(config.rrl.as_ref(), config.cookies.as_ref());
        tracker.spawn(rotate_cookie_secret(shield.clone(), cancel.clone()));
        let monitor = Monitor::start(config, cancel.clone(), &tracker);
        let fleet = Fleet::start(config, cancel.clone(), &tracker);
        let notifier = crate::notify::Notifier::default();
        let publisher = Publisher::new(Arc::clone(&snapshot), monitor.clone())
            .with_fleet(fleet.clone())
            .with_notifier(notifier.clone());
        publisher.version_at_start();
        notifier.start(
            Arc::clone(&snapshot),
            publisher.subscribe_versions(),
            cancel.clone(),
            &tracker,
        );
        tracker.spawn(rebuild_tables(
            publisher.clone(),
            monitor.clone(),
            fleet.clone(),
            cancel.clone(),
        ));
        tracker.spawn(watch_geo(publisher.clone(), cancel.clone()));
        tracker.spawn(shard_probes(monitor.clone(), fleet.clone(), cancel.clone()));
        let control = Control::new(publisher, monitor, config.clone());
        tracker.spawn(follow_reloads(
            control.clone(),
            fleet.clone(),
            shield.clone(),
            cancel.clone(),
        ));
        tracker.spawn(refresh_gauges(control.clone(), cancel.clone()));
        let secondaries = Secondaries::start(control.clone(), cancel.clone(), &tracker);
        // Stamps taken now, not when the task first runs: an edit made right after start must
        // count as a change.
        let stamps = watched_files(config).iter().map(|f| stamp(f)).collect();
        tracker.spawn(watch_files(control.clone(), stamps, cancel.clone()));
        let mut server = Server {
            control,
            fleet,
            snapshot,
            udp_addrs: Vec::new(),
            tcp_addrs: Vec::new(),
            stop,
            udp_workers: Vec::new(),
            cancel,
            tracker,
            admin_addr: None,
            secondaries,
            shield,
        };
        for &addr in &config.listen {
            let (sockets, listener) = match bind_address(addr, config.workers) {
                Ok(x) => x,
                Err(e) => {
                    server.stop_workers();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {addr}: {e}"),
                    ));
                }
            };
            server.udp_addrs.push(sockets[0].local_addr()?);
            server.tcp_addrs.push(listener.local_addr()?);
            for (i, socket) in sockets.into_iter().enumerate() {
                let name = format!("udp-{}-{i}", server.udp_addrs.len() - 1);
                let w = udp::spawn_worker(
                    name,
                    socket,
                    Arc::clone(&server.snapshot),
                    server.shield.published(),
                    Arc::clone(&server.stop),
                )?;
                server.udp_workers.push(w);
            }
            let listener = TcpListener::from_std(listener)?;
            server.tracker.spawn(tcp::serve(
                listener,
                Arc::clone(&server.snapshot),
                server.shield.published(),
                limits,
                server.cancel.clone(),
                server.tracker.clone(),
            ));
        }
        // --- Admin API (src/admin): bind and serve when `[admin] listen` is set. -------------
        if let Some(admin) = &config.admin {
            let listener = match crate::admin::bind(admin.listen) {
                Ok(l) => l,
                Err(e) => {
                    server.stop_workers();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {} (admin API): {e}", admin.listen),
                    ));
                }
            };
            let bound = listener.local_addr()?;
            server.admin_addr = Some(bound);
            tracing::info!(admin = %bound, token = admin.token.is_some(), "admin API listening");
            server.tracker.spawn(crate::admin::serve(
                listener,
                server.control.clone(),
                server.fleet.clone(),
                server.secondaries.clone(),
                admin.clone(),
                server.cancel.clone(),
                server.tracker.clone(),
            ));
        }
        // --- end admin API -------------------------------------------------------------------
        Ok(server)
    }

    /// The admin API's bound address, when `[admin] listen` is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// UDP addresses actually bound, in the order of the configured listen addresses.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// TCP addresses actually bound, in the order of the configured listen addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The health monitor probing this configuration's endpoints.
    pub fn monitor(&self) -> &Monitor {
        self.control.monitor()
    }

    /// The control handle: reload, status, readiness.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The secondary zones' tasks and their status.
    pub fn secondaries(&self) -> &Secondaries {
        &self.secondaries
    }

    /// The fleet's pulling: peers' observations ([`Fleet::peers`]) and their changes.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Rate limiting and the cookie secrets the sockets answer with.
    pub fn shield(&self) -> &Shield {
        &self.shield
    }

    /// Apply a validated configuration and its snapshot (see [`Control::apply`]), the fleet's
    /// peers, and its rate limiting and cookies.
    pub fn reload(&self, config: &Config, snapshot: Snapshot) {
        self.control.apply(config.clone(), snapshot);
        self.fleet.reconcile(config);
        self.shield
            .configure(config.rrl.as_ref(), config.cookies.as_ref());
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn stop_workers(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.udp_workers.drain(..) {
            let _ = w.join();
        }
    }

    /// Stop accepting, give open TCP connections up to `grace` to finish, stop UDP workers.
    pub async fn shutdown(mut self, grace: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
        tokio::task::block_in_place(|| self.stop_workers());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Health changes are gathered for this long before tables are rebuilt.
const REBUILD_DEBOUNCE: Duration = Duration::from_millis(20);
/// Latency moves without state changes: tables are rebuilt at least this often.
const REBUILD_EVERY: Duration = Duration::from_secs(5);
/// How often the GeoIP database file is checked for replacement.
const GEO_POLL: Duration = Duration::from_secs(10);

/// Rebuild decision tables whenever health changes (debounced) and periodically for latency,
/// through the publisher (which serialises them with reloads).
///
/// The fleet's peers count as changes too: what they say of serving states or overrides, a peer
/// becoming fresh or stale, their latency (see [`Fleet::subscribe`]).
async fn rebuild_tables(
    publisher: Publisher,
    monitor: Monitor,
    fleet: Fleet,
    cancel: CancellationToken,
) {
    let mut changes = monitor.subscribe();
    let mut peers = fleet.subscribe();
    let mut tick = tokio::time::interval(REBUILD_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(REBUILD_DEBOUNCE).await;
                changes.borrow_and_update();
            }
            r = peers.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(REBUILD_DEBOUNCE).await;
                peers.borrow_and_update();
            }
            _ = tick.tick() => {}
        }
        let p = publisher.clone();
        if let Ok(Some(took)) = tokio::task::spawn_blocking(move || p.refresh_tables()).await {
            tracing::debug!(?took, "decision tables rebuilt");
        }
    }
}

/// Pick up a replaced GeoIP database file (as geoipupdate writes it); a bad file is logged and
/// the old database keeps serving.
async fn watch_geo(publisher: Publisher, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(GEO_POLL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let p = publisher.clone();
        let _ = tokio::task::spawn_blocking(move || p.refresh_geo()).await;
    }
}

/// How often [`shard_probes`] looks again without `[fleet]`.
const SHARD_IDLE: Duration = Duration::from_secs(1);

/// Probe sharding: tell the monitor which endpoints to probe ([`Fleet::assignment`]) whenever
/// the fleet's peers change (a peer fresh or stale, what they report) and at least every
/// `[fleet] interval` (a reload that sets or changes `probes_per_endpoint` is followed within
/// it). Without `probes_per_endpoint`, every endpoint.
async fn shard_probes(monitor: Monitor, fleet: Fleet, cancel: CancellationToken) {
    let mut peers = fleet.subscribe();
    loop {
        let probes = fleet.assignment().map(|a| {
            let probes: crate::monitor::Probes = Arc::new(move |name: &str| a.probes(name));
            probes
        });
        let probing = monitor.set_probing(probes);
        let settings = fleet.settings();
        if settings.is_some() {
            metrics::gauge!("meridian_fleet_probed_endpoints").set(probing as f64);
        }
        let every = settings.map_or(SHARD_IDLE, |s| s.interval);
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = peers.changed() => {
                if r.is_err() {
                    return;
                }
                peers.borrow_and_update();
            }
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// How often [`follow_reloads`] looks for a new configuration generation.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Reconcile the fleet, rate limiting and cookies with the configuration of every reload,
/// however it came (SIGHUP, `POST /reload`, a watched file): the control surface tells reloads
/// by its generation only, so it is looked at every [`RELOAD_POLL`] (one atomic load). Peers
/// added or removed by a reload are pulled or dropped within that, and `[rrl]` and `[cookies]`
/// take effect within it.
async fn follow_reloads(control: Control, fleet: Fleet, shield: Shield, cancel: CancellationToken) {
    let mut seen = control.generation();
    let mut tick = tokio::time::interval(RELOAD_POLL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let generation = control.generation();
        if generation != seen {
            seen = generation;
            control.with_config(|c| {
                fleet.reconcile(c);
                shield.configure(c.rrl.as_ref(), c.cookies.as_ref());
            });
        }
    }
}

/// Draw a new cookie secret every `[cookies] secret_lifetime` (the previous one stays
/// accepted until the next draw); idle while cookies are off or the secret is fixed. The
/// lifetime is read again after every draw and every [`RELOAD_POLL`] while idle.
async fn rotate_cookie_secret(shield: Shield, cancel: CancellationToken) {
    let mut drawn = tokio::time::Instant::now();
    loop {
        let wait = match shield.secret_lifetime() {
            Some(life) => (drawn + life).saturating_duration_since(tokio::time::Instant::now()),
            None => RELOAD_POLL,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait.min(RELOAD_POLL)) => {}
        }
        match shield.secret_lifetime() {
            Some(life) if drawn.elapsed() >= life => {
                shield.rotate();
                drawn = tokio::time::Instant::now();
                tracing::debug!("new DNS cookie secret drawn");
            }
            Some(_) => {}
            None => drawn = tokio::time::Instant::now(),
        }
    }
}

/// How often gauges derived from state (endpoint up, time in state, generation) are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// Keep the state gauges current: endpoint up and time in state, config generation, reloads,
/// GeoIP database build time.
async fn refresh_gauges(control: Control, cancel: CancellationToken) {
    crate::metrics::install();
    let mut tick = tokio::time::interval(GAUGES_EVERY);
    let mut reported = (0, 0);
    let mut kept: Vec<EndpointGauges> = Vec::new();
    let mut clocks = Clocks::read();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let read = Clocks::read();
        if let Some(jump) = read.wall_jump_since(&clocks) {
            let direction = if jump > 0.0 { "forward" } else { "backward" };
            tracing::warn!(
                seconds = jump,
                direction,
                "the wall clock jumped; health, latency, overrides in force and rate limiting run on the monotonic clock"
            );
            metrics::counter!("meridian_clock_jumps_total", "direction" => direction).increment(1);
            let monitor = control.monitor().clone();
            let restamped = tokio::task::spawn_blocking(move || monitor.restamp_state_file()).await;
            if matches!(restamped, Ok(true)) {
                tracing::info!("state file written again: its expiries are on the new wall clock");
            }
        }
        clocks = read;
        let now = crate::monitor::now();
        let status = control.monitor().gauge_states();
        // The handles of the last tick serve while the endpoints are the same, in the same
        // order (configuration order): a registry lookup per gauge only after a change.
        kept.truncate(status.len());
        for (i, e) in status.iter().enumerate() {
            if kept
                .get(i)
                .is_none_or(|k| k.endpoint.as_str() != &*e.name || *k.pool != *e.pool)
            {
                let g = EndpointGauges::new(&e.name, &e.pool);
                match kept.get_mut(i) {
                    Some(k) => *k = g,
                    None => kept.push(g),
                }
            }
            let g = &mut kept[i];
            g.state_seconds
                .set(now.saturating_duration_since(e.since).as_secs_f64());
            let up = matches!(e.serving, crate::health::state::Serving::Up);
            let active = e
                .override_kind
                .filter(|(_, until)| until.is_none_or(|u| u > now))
                .map(|(k, _)| k);
            // Set only when they change: four of an endpoint's five gauges rarely do.
            if g.shown != Some((up, active)) {
                g.shown = Some((up, active));
                g.up.set(if up { 1.0 } else { 0.0 });
                for (kind, gauge) in OVERRIDE_KINDS.iter().zip(&g.overrides) {
                    gauge.set(if active == Some(*kind) { 1.0 } else { 0.0 });
                }
            }
        }
        metrics::gauge!("meridian_config_generation").set(control.generation() as f64);
        let (ok, failed) = control.reload_counts();
        metrics::counter!("meridian_config_reloads_total", "result" => "ok")
            .increment(ok - reported.0);
        metrics::counter!("meridian_config_reloads_total", "result" => "error")
            .increment(failed - reported.1);
        reported = (ok, failed);
        if let Some(geo) = control
            .snapshot()
            .steering
            .as_ref()
            .and_then(|st| st.geo.clone())
        {
            metrics::gauge!("meridian_geo_database_build_timestamp_seconds")
                .set(geo.current().build_epoch() as f64);
        }
    }
}

/// The wall clock may move this far against the monotonic clock between two readings before it
/// counts as a jump: NTP slews by at most 0.5 ms a second and steps only past 128 ms, so one
/// second apart, anything near a second is a step (or a suspended host), not drift.
const CLOCK_JUMP: Duration = Duration::from_millis(900);

/// The system's monotonic and wall clocks, read together (the real ones, not tokio's: a jump of
/// the wall clock is what is looked for).
struct Clocks {
    monotonic: std::time::Instant,
    wall: std::time::SystemTime,
}

impl Clocks {
    fn read() -> Clocks {
        Clocks {
            monotonic: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    /// How far the wall clock moved beyond the monotonic clock since `before`, in seconds
    /// (negative: backwards), when that is at least [`CLOCK_JUMP`].
    fn wall_jump_since(&self, before: &Clocks) -> Option<f64> {
        let monotonic = self
            .monotonic
            .duration_since(before.monotonic)
            .as_secs_f64();
        let wall = match self.wall.duration_since(before.wall) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let jump = wall - monotonic;
        (jump.abs() >= CLOCK_JUMP.as_secs_f64()).then_some(jump)
    }
}

/// The override kinds, in the order of [`EndpointGauges::overrides`], with their label.
const OVERRIDE_KINDS: [crate::health::state::OverrideKind; 3] = [
    crate::health::state::OverrideKind::Drain,
    crate::health::state::OverrideKind::ForceUp,
    crate::health::state::OverrideKind::ForceDown,
];

/// One endpoint's state gauges, looked up in the registry once and set every tick.
struct EndpointGauges {
    endpoint: String,
    pool: String,
    up: metrics::Gauge,
    state_seconds: metrics::Gauge,
    /// `meridian_health_endpoint_override` per kind of [`OVERRIDE_KINDS`].
    overrides: [metrics::Gauge; 3],
    /// The up state and override last set in `up` and `overrides`.
    shown: Option<(bool, Option<crate::health::state::OverrideKind>)>,
}

impl EndpointGauges {
    fn new(endpoint: &str, pool: &str) -> EndpointGauges {
        let labels = [
            ("endpoint", endpoint.to_string()),
            ("pool", pool.to_string()),
        ];
        let kind = |name: &'static str| metrics::gauge!("meridian_health_endpoint_override", "endpoint" => endpoint.to_string(), "kind" => name);
        EndpointGauges {
            endpoint: endpoint.to_string(),
            pool: pool.to_string(),
            up: metrics::gauge!("meridian_health_endpoint_up", &labels),
            state_seconds: metrics::gauge!("meridian_health_endpoint_state_seconds", &labels),
            overrides: [kind("drain"), kind("force-up"), kind("force-down")],
            shown: None,
        }
    }
}

/// The files a reload reads: configuration, zones, state file. A secondary zone's kept copy is
/// not watched: Meridian writes it, and serves each version it writes already.
fn watched_files(config: &Config) -> Vec<std::path::PathBuf> {
    let mut files = vec![config.path.clone()];
    files.extend(
        config
            .zones
            .iter()
            .filter(|z| !z.catalog && z.secondary.is_none())
            .map(|z| z.file.clone()),
    );
    files.extend(config.state_file.clone());
    files
}

/// Identity of a file's current contents, as far as a watcher can tell cheaply.
type Stamp = (std::time::SystemTime, u64, u64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// `[reload] watch`: reload when a watched file changed and then stayed still for one interval
/// (editors and `rename` writers settle first). The setting itself is re-read on every reload.
async fn watch_files(control: Control, mut seen: Vec<Option<Stamp>>, cancel: CancellationToken) {
    let mut pending = false;
    loop {
        let every = control
            .with_config(|c| c.watch)
            .unwrap_or(Duration::from_secs(2));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(files) = control.with_config(|c| c.watch.map(|_| watched_files(c))) else {
            pending = false;
            continue;
        };
        let now: Vec<_> = files.iter().map(|f| stamp(f)).collect();
        if now != seen {
            seen = now;
            pending = true; // changed: wait one more interval for the writer to finish
            continue;
        }
        if pending {
            pending = false;
            tracing::info!("watched files changed: reloading");
            let c = control.clone();
            let _ = tokio::task::spawn_blocking(move || c.reload()).await;
            // `seen` stays what was stamped before the reload read the files: an edit made
            // during the reload shows as a change next round. (If the reload changed the set of
            // files, that also shows as a change and costs one more, harmless, reload.)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_jump_is_told_from_elapsed_time() {
        let before = Clocks::read();
        let after = |monotonic: u64, wall: i64| Clocks {
            monotonic: before.monotonic + Duration::from_millis(monotonic),
            wall: if wall >= 0 {
                before.wall + Duration::from_millis(wall as u64)
            } else {
                before.wall - Duration::from_millis(wall.unsigned_abs())
            },
        };
        // Time passing, slewed or late: no jump.
        assert_eq!(after(1000, 1000).wall_jump_since(&before), None);
        assert_eq!(after(5000, 5001).wall_jump_since(&before), None);
        assert_eq!(after(1000, 1899).wall_jump_since(&before), None);
        // Stepped forward, backward (past the earlier reading too), or a suspended host.
        assert_eq!(
            after(1000, 3_601_000).wall_jump_since(&before),
            Some(3600.0)
        );
        assert_eq!(after(1000, 0).wall_jump_since(&before), Some(-1.0));
        assert_eq!(
            after(1000, -7_199_000).wall_jump_since(&before),
            Some(-7200.0)
        );
    }
}
