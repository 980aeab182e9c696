//! What the fleet publishes for the engine: every peer's newest accepted observations.
//!
//! [`PeerViews`] is immutable and published behind an atomic pointer (`Fleet::peers`: one
//! load). A peer appears once a pull from it was accepted, and stays (with its data as last
//! accepted) until it is no longer configured; whether its data still counts is for the reader
//! to say at its own `now` ([`PeerView::fresh`]), so a view never needs rewriting because time
//! passed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::health::state::{Health, OverrideKind, Serving};

/// Every peer's kept data.
#[derive(Debug, Clone, Default)]
pub struct PeerViews {
    /// How long a peer's data counts after it was received (`[fleet] max_age`).
    pub max_age: Duration,
    /// Peers with accepted data, in configured order.
    pub peers: Vec<Arc<PeerView>>,
}

impl PeerViews {
    /// The peers whose data is fresh at `now` (the fleet's clock: `monitor::now()`).
    pub fn fresh(&self, now: Instant) -> impl Iterator<Item = &PeerView> {
        self.peers
            .iter()
            .map(|p| &**p)
            .filter(move |p| p.fresh(now, self.max_age))
    }
}

/// One peer's newest accepted document.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// The base URL it is pulled from (`[fleet] peers`).
    pub url: String,
    /// Its `[node] name`.
    pub node: String,
    /// Its vantage: its `[node] region`.
    pub vantage: String,
    /// When the document was received, on tokio's clock (`monitor::now()`).
    pub received: Instant,
    /// When the peer wrote it, Unix milliseconds on the peer's clock.
    pub sent_unix_ms: u64,
    /// What it sees of each endpoint, by endpoint name.
    pub endpoints: HashMap<String, Observation>,
}

impl PeerView {
    /// Whether the data still counts at `now`: received less than `max_age` before it.
    pub fn fresh(&self, now: Instant, max_age: Duration) -> bool {
        self.received
            .checked_add(max_age)
            .is_none_or(|until| until > now)
    }
}

/// What one peer sees of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What the peer's answers do with it.
    pub serving: Serving,
    /// The peer's verdict from its own probes.
    pub health: Health,
    /// When that verdict last changed, Unix milliseconds on the peer's clock.
    pub since_unix_ms: u64,
    /// The manual override in force on the peer, if any.
    pub overridden: Option<PeerOverride>,
    /// The peer probes it now and has a verdict from its probes: its verdict votes. False
    /// for an endpoint probe sharding gives to other instances.
    pub probed: bool,
    /// Median probe RTT over the peer's latency window.
    pub p50: Option<Duration>,
    /// 90th percentile probe RTT.
    pub p90: Option<Duration>,
    /// Probes that answered inside the window.
    pub samples: u64,
    /// Probes lost or failed inside the window.
    pub lost: u64,
    /// The window's RTTs, in units of `health::latency::UNIT`, when the peer sent them.
    pub histogram: Option<Histogram<u16>>,
}

/// A manual override on a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOverride {
    pub kind: OverrideKind,
    /// When it was set, Unix milliseconds: across instances the newest wins.
    pub set_unix_ms: u64,
    /// When it ends, Unix milliseconds; `None` = until cleared.
    pub expires_unix_ms: Option<u64>,
}

/// How a newly accepted document differs from the one kept before, for subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Nothing an engine reads.
    None,
    /// Only latency figures (p50, p90).
    Latency,
    /// Serving states, overrides, the endpoints listed, or who the peer is.
    Serving,
}

impl Change {
    /// What changed from `old` (if any was kept) to `new`.
    pub fn between(old: Option<&PeerView>, new: &PeerView) -> Change {
        let Some(old) = old else {
            return Change::Serving;
        };
        if old.node != new.node
            || old.vantage != new.vantage
            || old.endpoints.len() != new.endpoints.len()
        {
            return Change::Serving;
        }
        let mut change = Change::None;
        for (name, n) in &new.endpoints {
            let Some(o) = old.endpoints.get(name) else {
                return Change::Serving;
            };
            if o.serving != n.serving || o.overridden != n.overridden || o.probed != n.probed {
                return Change::Serving;
            }
            if o.p50 != n.p50 || o.p90 != n.p90 {
                change = Change::Latency;
            }
        }
        change
    }
}

/// The fresh peers' observations at `now`, in the engine's terms for `model`: endpoints by
/// their [`EndpointId`](crate::config::model::EndpointId) in that model, a peer's vantage as the
/// model's region of that name. Peers' expired overrides are left out (`now_unix_ms` on this
/// host's clock).
pub fn engine_view(
    model: &crate::config::policy::Model,
    peers: &PeerViews,
    quorum: crate::config::fleet::Quorum,
    now: Instant,
    now_unix_ms: u64,
) -> crate::snapshot::steering::FleetView {
    use crate::config::fleet::Quorum as Configured;
    use crate::snapshot::steering::{FleetView, PeerEndpoint, PeerObservations, Quorum};
    let slots = model.endpoint_slots();
    let fresh = peers
        .fresh(now)
        .map(|peer| {
            let mut endpoints = vec![None; slots];
            for e in model.pools.iter().flat_map(|p| p.endpoints.iter()) {
                let Some(o) = peer.endpoints.get(&e.name) else {
                    continue;
                };
                let overridden = o
                    .overridden
                    .filter(|o| o.expires_unix_ms.is_none_or(|t| t > now_unix_ms))
                    .map(|o| (o.kind, o.set_unix_ms));
                endpoints[e.id.index()] = Some(PeerEndpoint {
                    serving: o.serving,
                    probed: o.probed,
                    p50: o.p50,
                    p90: o.p90,
                    overridden,
                });
            }
            PeerObservations {
                node: peer.node.clone(),
                vantage: model.regions.iter().position(|r| r.name == peer.vantage),
                endpoints,
            }
        })
        .collect();
    FleetView {
        quorum: match quorum {
            Configured::Majority => Quorum::Majority,
            Configured::AtLeast(n) => Quorum::Count(n.get()),
        },
        peers: fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(serving: Serving, p50_ms: u64) -> Observation {
        Observation {
            serving,
            health: Health::Up,
            since_unix_ms: 0,
            overridden: None,
            probed: true,
            p50: Some(Duration::from_millis(p50_ms)),
            p90: None,
            samples: 1,
            lost: 0,
            histogram: None,
        }
    }

    fn view(at: Instant, endpoints: &[(&str, Observation)]) -> PeerView {
        PeerView {
            url: "http://127.0.0.1:1".into(),
            node: "us-1".into(),
            vantage: "us".into(),
            received: at,
            sent_unix_ms: 0,
            endpoints: endpoints
                .iter()
                .map(|(n, o)| (n.to_string(), o.clone()))
                .collect(),
        }
    }

    #[test]
    fn freshness_ends_max_age_after_receipt() {
        let t0 = Instant::now();
        let v = view(t0, &[]);
        let age = Duration::from_secs(10);
        assert!(v.fresh(t0, age));
        assert!(v.fresh(t0 + age - Duration::from_nanos(1), age));
        assert!(!v.fresh(t0 + age, age));
        let views = PeerViews {
            max_age: age,
            peers: vec![Arc::new(v)],
        };
        assert_eq!(views.fresh(t0).count(), 1);
        assert_eq!(views.fresh(t0 + age).count(), 0);
    }

    #[test]
    fn changes() {
        let t0 = Instant::now();
        let a = view(t0, &[("e", observation(Serving::Up, 10))]);
        assert_eq!(Change::between(None, &a), Change::Serving);
        assert_eq!(Change::between(Some(&a), &a), Change::None);
        let mut b = a.clone();
        b.endpoints.get_mut("e").unwrap().samples = 7;
        assert_eq!(Change::between(Some(&a), &b), Change::None);
        let b = view(t0, &[("e", observation(Serving::Up, 11))]);
        assert_eq!(Change::between(Some(&a), &b), Change::Latency);
        let b = view(t0, &[("e", observation(Serving::Down, 11))]);
        assert_eq!(Change::between(Some(&a), &b), Change::Serving);
        let b = view(t0, &[("f", observation(Serving::Up, 10))]);
        assert_eq!(Change::between(Some(&a), &b), Change::Serving);
        let mut b = a.clone();
        b.endpoints.get_mut("e").unwrap().probed = false;
        assert_eq!(Change::between(Some(&a), &b), Change::Serving);
        let mut b = a.clone();
        b.endpoints.get_mut("e").unwrap().overridden = Some(PeerOverride {
            kind: OverrideKind::Drain,
            set_unix_ms: 1,
            expires_unix_ms: None,
        });
        assert_eq!(Change::between(Some(&a), &b), Change::Serving);
    }
}
