//! The fleet's part of the admin API: `GET /fleet/observations` (this instance's observations
//! for its peers, [`crate::fleet::wire`]) and the `fleet` section of `/status`.
//!
//! The document is built on request from the monitor (each endpoint's status and merged latency
//! window) and the `[fleet]` settings in force; nothing is kept. Times leave as Unix
//! milliseconds on the monitor's clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;

use super::Api;
use super::routes::{Fail, Reply, bearer, reply};
use crate::config::fleet::{FleetSettings, Quorum};
use crate::fleet::wire::{self, EndpointObservation, Observations, OverrideObservation};
use crate::fleet::{Fleet, PeerStatus};
use crate::monitor::{self, EndpointStatus, Monitor};

/// `GET /fleet/observations`: with a fleet token configured, only for the bearer of it
/// (counted either way).
pub(super) fn authorize(api: &Api, req: &Request<Incoming>) -> Result<(), Fail> {
    let token = api.fleet.settings().and_then(|s| s.token.clone());
    let r = match &token {
        None => Ok(()),
        Some(t) => bearer(req, t),
    };
    let result = if r.is_ok() { "ok" } else { "unauthorized" };
    metrics::counter!("meridian_fleet_observation_requests_total", "result" => result).increment(1);
    r
}

/// This instance's observations; 404 without `[fleet]`. Built on a blocking thread: it merges
/// and compresses every endpoint's latency window.
pub(super) async fn serve(api: &Api) -> Result<Reply, Fail> {
    let settings = api.fleet.settings().ok_or_else(|| {
        Fail(
            StatusCode::NOT_FOUND,
            "no [fleet] configured: this instance serves no observations".into(),
        )
    })?;
    let monitor = api.control.monitor().clone();
    let generation = api.control.generation();
    let doc = tokio::task::spawn_blocking(move || observations(&monitor, &settings, generation))
        .await
        .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut body = serde_json::to_vec(&doc)
        .map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    body.push(b'\n');
    Ok(reply(StatusCode::OK, "application/json", body))
}

/// This instance's observations now, as `settings` names it.
pub fn observations(monitor: &Monitor, settings: &FleetSettings, generation: u64) -> Observations {
    let statuses = monitor.status_with_histograms();
    let (now, unix_ms) = (monitor::now(), monitor::unix_now_ms());
    Observations {
        version: wire::VERSION,
        node: settings.node.clone(),
        vantage: settings.vantage.clone(),
        sent_unix_ms: unix_ms,
        config_generation: Some(generation),
        endpoints: statuses
            .iter()
            .map(|(s, h)| endpoint(s, h, now, unix_ms))
            .collect(),
    }
}

/// An instant of the monitor's clock as Unix milliseconds, given `now` on both clocks.
fn unix_ms_of(t: Instant, now: Instant, unix_ms: u64) -> u64 {
    if t <= now {
        unix_ms.saturating_sub(millis(now - t))
    } else {
        unix_ms.saturating_add(millis(t - now))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn endpoint(
    s: &EndpointStatus,
    h: &hdrhistogram::Histogram<u16>,
    now: Instant,
    unix_ms: u64,
) -> EndpointObservation {
    // The monitor clears an expired override lazily: one past its expiry is no override.
    let override_ = s
        .override_kind
        .filter(|(_, until)| until.is_none_or(|u| u > now))
        .map(|(kind, until)| OverrideObservation {
            kind,
            set_unix_ms: s.override_set_unix_ms.unwrap_or(unix_ms),
            expires_unix_ms: until.map(|u| unix_ms_of(u, now, unix_ms)),
        });
    EndpointObservation {
        name: s.name.clone(),
        serving: s.serving,
        health: s.health,
        since_unix_ms: unix_ms_of(s.since, now, unix_ms),
        override_,
        probed: s.probed,
        p50_ms: wire::ms(s.latency.p50),
        p90_ms: wire::ms(s.latency.p90),
        samples: s.latency.samples,
        lost: s.latency.lost,
        histogram: (!h.is_empty()).then(|| wire::encode_histogram(h)),
    }
}

/// `/status`'s `fleet` section.
#[derive(Debug, Serialize)]
pub struct FleetJson {
    pub node: String,
    pub vantage: String,
    pub interval_seconds: f64,
    pub max_age_seconds: f64,
    /// "majority" or a number of vantages.
    pub quorum: serde_json::Value,
    /// Vantages whose verdicts decide health now: this instance plus its fresh peers.
    pub vantages_deciding: usize,
    /// How health is decided now: "quorum" (some peer is fresh) or "local only".
    pub deciding: &'static str,
    /// `[fleet] probes_per_endpoint`: how many live instances probe each endpoint; `null`:
    /// every instance probes every endpoint.
    pub probes_per_endpoint: Option<u32>,
    /// Endpoints this instance probes now, of `endpoints`.
    pub probed_endpoints: usize,
    pub endpoints: usize,
    pub peers: Vec<PeerJson>,
}

/// One peer in `/status`.
#[derive(Debug, Serialize)]
pub struct PeerJson {
    pub url: String,
    /// From its newest accepted observations; `null` before any.
    pub node: Option<String>,
    pub vantage: Option<String>,
    pub fresh: bool,
    /// Seconds since its newest accepted observations were received.
    pub age_seconds: Option<f64>,
    /// The last pull's result (a `meridian_fleet_pulls_total` label) and its detail.
    pub last_result: Option<&'static str>,
    pub last_detail: String,
    /// Pulls by result since the peer was configured.
    pub pulls: BTreeMap<&'static str, u64>,
}

/// The `fleet` section of `/status`; `None` without `[fleet]`.
pub fn status(fleet: &Fleet, monitor: &Monitor) -> Option<FleetJson> {
    let s = fleet.settings()?;
    let (probed_endpoints, endpoints) = monitor.probing();
    let peers: Vec<PeerJson> = fleet.status().into_iter().map(peer).collect();
    let deciding = 1 + peers.iter().filter(|p| p.fresh).count();
    Some(FleetJson {
        node: s.node.clone(),
        vantage: s.vantage.clone(),
        interval_seconds: s.interval.as_secs_f64(),
        max_age_seconds: s.max_age.as_secs_f64(),
        quorum: match s.quorum {
            Quorum::Majority => "majority".into(),
            Quorum::AtLeast(n) => n.get().into(),
        },
        vantages_deciding: deciding,
        deciding: if deciding > 1 { "quorum" } else { "local only" },
        probes_per_endpoint: s.probes_per_endpoint.map(|k| k.get()),
        probed_endpoints,
        endpoints,
        peers,
    })
}

fn peer(p: PeerStatus) -> PeerJson {
    PeerJson {
        url: p.url,
        node: p.node,
        vantage: p.vantage,
        fresh: p.fresh,
        age_seconds: p.age.map(|a| (a.as_secs_f64() * 1000.0).round() / 1000.0),
        last_result: p.last_result.map(|r| r.as_str()),
        last_detail: p.last_detail,
        pulls: p.pulls.into_iter().map(|(r, n)| (r.as_str(), n)).collect(),
    }
}
