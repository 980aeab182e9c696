//! The monitor's tasks: one prober per (endpoint, check), and the core task that applies their
//! results.
//!
//! A prober sleeps, probes, and sends the raw result to the core. The core takes every report
//! queued when it wakes (a batch), applies each to its endpoint's state machine and latency
//! window, sets the endpoint's slot of the kept view, and publishes the view once for the batch:
//! at once when a serving state or an endpoint's health changed, at most every
//! [`PUBLISH_GAP`] for latency alone. It also wakes at the kept view's deadlines, when time alone
//! changes an endpoint's serving state or latency, and refreshes those slots.
//!
//! [`PUBLISH_GAP`]: super::kept::PUBLISH_GAP

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::clock;
use super::notify::Event;
use super::{Monitor, State};
use crate::health::probe::{self, Target};

/// Reports the core applies in one batch, at most.
const BATCH: usize = 1024;

/// Result of one probe, on its way to the core task.
pub(super) struct Report {
    pub(super) endpoint: Arc<str>,
    pub(super) generation: u64,
    pub(super) check: usize,
    /// The check's configured name, for metrics.
    pub(super) check_name: Arc<str>,
    pub(super) result: probe::ProbeResult,
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

/// When a prober stops and when it skips its turn.
pub(super) struct Switches {
    /// Read before each probe: false while probe sharding gives the endpoint to other instances.
    pub(super) probing: Arc<AtomicBool>,
    pub(super) cancel: CancellationToken,
}

/// Probe `target` with check number `check` of `endpoint` now (after a random part of the
/// check's jitter) and then every interval, until `switches.cancel`; a turn while
/// `switches.probing` is false is skipped.
pub(super) async fn prober(
    endpoint: Arc<str>,
    generation: u64,
    check: usize,
    spec: Arc<crate::config::health::Check>,
    target: Target,
    tx: mpsc::Sender<Report>,
    switches: Switches,
) {
    let Switches { probing, cancel } = switches;
    // HTTP probers build their client once; the other kinds have nothing to keep.
    let http = match &spec.spec {
        probe::ProbeSpec::Http(h) => match probe::http::HttpProber::new(h, &target) {
            Ok(p) => Some(p),
            Err(e) => return tracing::error!(%endpoint, "http check cannot run: {e}"),
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
        if !probing.load(Ordering::Relaxed) {
            continue; // probe sharding gives it to other instances now: a skipped turn
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = async {
                match &http {
                    Some(p) => p.probe(spec.timeout).await,
                    None => probe::run(&spec.spec, &target, spec.timeout).await,
                }
            } => r,
        };
        let report = Report {
            endpoint: Arc::clone(&endpoint),
            generation,
            check,
            check_name: Arc::clone(&check_name),
            result,
        };
        if tx.send(report).await.is_err() {
            return;
        }
        // A probe that overran (it cannot by more than its timeout) does not cause a burst.
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// The core task: apply batches of reports, refresh slots at their deadlines, publish the view,
/// hand state changes to the notifier.
pub(super) async fn core(
    monitor: Monitor,
    mut rx: mpsc::Receiver<Report>,
    notify: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let shared = &monitor.shared;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let wake = shared.state().kept.next_wake();
        let at_wake = async {
            match wake {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
            _ = at_wake => {}
            // An override or a reload set deadlines the wait above does not know.
            _ = shared.wake.notified() => {}
        }
        let now = clock::now();
        let (events, published) = {
            let mut st = shared.state();
            let events = apply(&mut st, batch.drain(..), now);
            for entry in st.kept.take_due(now) {
                st.refresh(entry, now);
            }
            (events, st.kept.publish_due(now))
        };
        if let Some((view, notify)) = published {
            shared.view.store(view);
            if notify {
                shared.version.send_modify(|v| *v += 1);
            }
        }
        for ev in events {
            tracing::info!(
                endpoint = %ev.endpoint, pool = %ev.pool, from = %ev.from, to = %ev.to,
                reason = %ev.reason, detail = %ev.detail, "endpoint state changed"
            );
            metrics::counter!("meridian_health_transitions_total", "endpoint" => ev.endpoint.clone(), "to" => ev.to.clone())
                .increment(1);
            if notify.try_send(ev).is_err() {
                tracing::warn!("webhook queue full: a state change notification was dropped");
                metrics::counter!("meridian_health_webhook_deliveries_total", "result" => "dropped")
                    .increment(1);
            }
        }
    }
}

/// Apply `reports` at `now`: count them, feed each endpoint's latency window and state machine,
/// set its slot. The state changes, in order.
fn apply(
    st: &mut State,
    reports: impl Iterator<Item = Report>,
    now: std::time::Instant,
) -> Vec<Event> {
    let mut events = Vec::new();
    for report in reports {
        let Some(&i) = st.index.get(&*report.endpoint) else {
            continue; // an endpoint a reload removed
        };
        let e = &mut st.entries[i];
        if e.generation != report.generation {
            continue; // from a prober a reload has replaced
        }
        if !e.probing() {
            continue; // started before probe sharding gave the endpoint away
        }
        let r = &report.result;
        let result = if r.ok { "ok" } else { "fail" };
        metrics::counter!(
            "meridian_health_probes_total",
            "endpoint" => report.endpoint.to_string(), "check" => report.check_name.to_string(), "result" => result
        )
        .increment(1);
        if r.ok {
            let labels = [
                ("endpoint", report.endpoint.to_string()),
                ("check", report.check_name.to_string()),
            ];
            metrics::histogram!("meridian_health_probe_rtt_seconds", &labels)
                .record(r.rtt.as_secs_f64());
        }
        e.latency.record(if r.ok { Some(r.rtt) } else { None }, now);
        e.last_detail.clone_from(&r.detail);
        if let Some(t) = e.health.record(report.check, r.ok, now) {
            st.kept.note_transition();
            events.push(Event {
                endpoint: report.endpoint.to_string(),
                pool: e.pool.to_string(),
                from: t.from.to_string(),
                to: t.to.to_string(),
                reason: t.reason,
                detail: r.detail.clone(),
                time: clock::unix_now(),
            });
        }
        st.refresh(i, now);
    }
    events
}
