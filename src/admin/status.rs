//! `GET /status`: the running server's state as one JSON document.
//!
//! Built on request from what the server already holds (the snapshot being served, its decision
//! tables, the health monitor's view) and never kept: the admin API holds no routing state of
//! its own (ARCHITECTURE.md: the publisher is the only writer). The types below are the document's shape, field for field, in order.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::model::Fallback;
use crate::control::Control;
use crate::explain::{policy_name, tier_name};
use crate::fleet::Fleet;
use crate::health::state::{Health, OverrideKind, Serving};
use crate::monitor::EndpointStatus;
use crate::policy::Answer;
use crate::secondary::Secondaries;

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Configuration generation: 1 as started, +1 per applied reload.
    pub generation: u64,
    /// Every health check has a first verdict.
    pub ready: bool,
    pub reloads: Reloads,
    pub zones: Vec<ZoneStatus>,
    pub services: Vec<ServiceStatus>,
    /// Every endpoint of every pool, by name.
    pub endpoints: Vec<EndpointJson>,
    /// The current decision per service × client region.
    pub decisions: Vec<ServiceDecisions>,
    /// The fleet's peers and how their pulls go; `null` without `[fleet]`.
    pub fleet: Option<super::fleet::FleetJson>,
    /// Zones taken from primaries: serial held, primary, last refresh and its result, expiry.
    pub secondaries: Vec<crate::secondary::ZoneStatus>,
}

/// Reloads since start.
#[derive(Debug, Serialize)]
pub struct Reloads {
    pub ok: u64,
    pub failed: u64,
}

/// One zone served.
#[derive(Debug, Serialize)]
pub struct ZoneStatus {
    pub origin: String,
    pub serial: u32,
    pub records: usize,
    /// Versions for secondaries, when the zone has `[zone.transfer]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfers: Option<TransfersStatus>,
}

/// A zone's versions for its secondaries.
#[derive(Debug, Serialize)]
pub struct TransfersStatus {
    /// Versions the journal keeps for incremental transfers, and the oldest serial it reaches
    /// back to (`null`: none kept; every IXFR gets the whole zone).
    pub journal_versions: usize,
    pub journal_oldest_serial: Option<u32>,
    pub journal_bytes: usize,
    /// Records standing in for services (`gslb = "snapshot"`).
    pub snapshot_records: usize,
    /// The serial follows unix time (else the file's).
    pub serial_policy: &'static str,
    /// Each NOTIFY target's last outcome.
    pub notify: Vec<NotifyStatus>,
}

/// The last NOTIFY to one target.
#[derive(Debug, Serialize)]
pub struct NotifyStatus {
    pub target: String,
    pub serial: u32,
    /// "sending", "acked", "refused" or "unanswered".
    pub result: &'static str,
    pub tries: u32,
    pub at_unix_ms: u64,
}

/// One service as configured.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// "failover", "weighted", "geo", "latency" or "nearest".
    pub policy: &'static str,
    pub answers: usize,
    pub ttl: u32,
    pub failover_ttl: u32,
    pub fallback: FallbackStatus,
    pub use_ecs: bool,
    /// Its pools, in configured order.
    pub pools: Vec<PoolStatus>,
}

/// A service's fallback.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FallbackStatus {
    All,
    Addresses {
        ipv4: Vec<Ipv4Addr>,
        ipv6: Vec<Ipv6Addr>,
    },
    Cname {
        target: String,
    },
}

/// One pool of a service.
#[derive(Debug, Serialize)]
pub struct PoolStatus {
    pub name: String,
    pub region: Option<String>,
    pub weight: u32,
    /// Endpoint names (their state is under `endpoints`).
    pub endpoints: Vec<String>,
}

/// One endpoint as the health monitor sees it.
#[derive(Debug, Serialize)]
pub struct EndpointJson {
    pub name: String,
    pub pool: String,
    /// Combined health of its checks: "unknown", "up" or "down".
    pub health: Health,
    /// What answers do with it: "up", "down" or "drained".
    pub serving: Serving,
    /// Seconds since the health last changed.
    pub since_seconds: f64,
    /// The last probe's detail.
    pub last_detail: String,
    pub latency: LatencyJson,
    #[serde(rename = "override")]
    pub override_: Option<OverrideJson>,
}

/// Probe round trips over the latency window, in milliseconds.
#[derive(Debug, Serialize)]
pub struct LatencyJson {
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub samples: u64,
    pub lost: u64,
    pub loss_ratio: f64,
}

/// A manual override in force.
#[derive(Debug, Serialize)]
pub struct OverrideJson {
    /// "drain", "force-up" or "force-down".
    pub kind: OverrideKind,
    /// `null` = until cleared.
    pub expires_in_seconds: Option<f64>,
}

/// A service's decisions, one per client region.
#[derive(Debug, Serialize)]
pub struct ServiceDecisions {
    pub service: String,
    /// Whether any client region is answered differently from another.
    pub varies_by_region: bool,
    pub regions: Vec<RegionDecision>,
}

/// What one client region is answered now.
#[derive(Debug, Serialize)]
pub struct RegionDecision {
    pub client_region: String,
    pub ttl: u32,
    pub degraded: bool,
    /// "primary", "standby" or "fallback".
    pub tier: &'static str,
    /// Endpoints of the service's pools that are down or drained.
    pub withdrawn: usize,
    /// "endpoints", or the fallback's "addresses" or "cname".
    pub answer: &'static str,
    /// Every pool of the service in rank order, with its share of this region's queries.
    pub pools: Vec<PoolShare>,
}

/// One pool's part of a decision.
#[derive(Debug, Serialize)]
pub struct PoolShare {
    pub pool: String,
    pub share: f64,
    /// The endpoints answers are drawn from.
    pub endpoints: Vec<String>,
}

/// Milliseconds, rounded to microseconds.
fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| round3(d.as_secs_f64() * 1000.0))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One endpoint as the monitor sees it at `now`.
pub fn endpoint_json(s: &EndpointStatus, now: Instant) -> EndpointJson {
    // The monitor clears an expired override lazily: one past its expiry is no override.
    let override_ = s
        .override_kind
        .filter(|(_, until)| until.is_none_or(|u| u > now))
        .map(|(kind, until)| OverrideJson {
            kind,
            expires_in_seconds: until
                .map(|u| round3(u.saturating_duration_since(now).as_secs_f64())),
        });
    let l = &s.latency;
    EndpointJson {
        name: s.name.clone(),
        pool: s.pool.clone(),
        health: s.health,
        serving: s.serving,
        since_seconds: round3(now.saturating_duration_since(s.since).as_secs_f64()),
        last_detail: s.last_detail.clone(),
        latency: LatencyJson {
            p50_ms: ms(l.p50),
            p90_ms: ms(l.p90),
            p99_ms: ms(l.p99),
            mean_ms: ms(l.mean),
            samples: l.samples,
            lost: l.lost,
            loss_ratio: l.loss_ratio,
        },
        override_,
    }
}

/// The whole status document.
pub fn status(control: &Control, fleet: &Fleet, secondaries: &Secondaries) -> Status {
    let snap = control.snapshot();
    // The monitor's clock: the one its instants (since, expiries) are on.
    let now = crate::monitor::now();
    let (ok, failed) = control.reload_counts();
    let notified = control
        .publisher()
        .notifier()
        .map(|n| n.status())
        .unwrap_or_default();
    let zones = snap
        .catalog
        .zones()
        .iter()
        .map(|z| ZoneStatus {
            origin: z.origin.clone(),
            serial: z.serial,
            records: z.record_count,
            transfers: z.replica.settings.as_ref().map(|s| TransfersStatus {
                journal_versions: z.replica.journal.len(),
                journal_oldest_serial: z.replica.journal.oldest(),
                journal_bytes: z.replica.journal.bytes(),
                snapshot_records: z.replica.extra.iter().map(|(_, s)| s.count as usize).sum(),
                serial_policy: if s.unixtime { "unixtime" } else { "file" },
                notify: notified
                    .iter()
                    .filter(|n| n.zone == z.origin)
                    .map(|n| NotifyStatus {
                        target: n.target.to_string(),
                        serial: n.serial,
                        result: n.result,
                        tries: n.tries,
                        at_unix_ms: n.at_unix_ms,
                    })
                    .collect(),
            }),
        })
        .collect();
    let endpoints = control
        .monitor()
        .status()
        .iter()
        .map(|s| endpoint_json(s, now))
        .collect();
    let mut services = Vec::new();
    let mut decisions = Vec::new();
    if let (Some(st), Some(tables)) = (&snap.steering, &snap.tables) {
        let m = &st.model;
        let region_name = |r: usize| m.regions.get(r).map(|r| r.name.clone());
        for (si, svc) in m.services.iter().enumerate() {
            services.push(ServiceStatus {
                name: svc.name.clone(),
                policy: policy_name(svc.policy),
                answers: svc.answers,
                ttl: svc.ttl,
                failover_ttl: svc.failover_ttl,
                fallback: match &svc.fallback {
                    Fallback::All => FallbackStatus::All,
                    Fallback::Addresses { ipv4, ipv6 } => FallbackStatus::Addresses {
                        ipv4: ipv4.clone(),
                        ipv6: ipv6.clone(),
                    },
                    Fallback::Cname(c) => FallbackStatus::Cname { target: c.clone() },
                },
                use_ecs: svc.use_ecs,
                pools: svc
                    .pools
                    .iter()
                    .map(|&p| {
                        let pool = &m.pools[p];
                        PoolStatus {
                            name: pool.name.clone(),
                            region: region_name(pool.region),
                            weight: pool.weight,
                            endpoints: pool.endpoints.iter().map(|e| e.name.clone()).collect(),
                        }
                    })
                    .collect(),
            });
            // Tables belong to the snapshot they were built with, so indexes agree; stay
            // defensive anyway.
            if si >= tables.services() {
                continue;
            }
            let regions = (0..tables.regions())
                .map(|ri| {
                    let d = tables.decision(si, ri);
                    let answered: HashSet<(usize, usize)> = match &d.answer {
                        Answer::Endpoints(choices) => choices
                            .iter()
                            .flat_map(|c| &c.endpoints)
                            .map(|e| (e.pool as usize, e.endpoint as usize))
                            .collect(),
                        _ => HashSet::new(),
                    };
                    let pools = d
                        .explanation
                        .pools
                        .iter()
                        .map(|p| {
                            let pi = p.ranked.pool;
                            let pool = &m.pools[pi];
                            PoolShare {
                                pool: pool.name.clone(),
                                share: p.share,
                                endpoints: (0..pool.endpoints.len())
                                    .filter(|&e| answered.contains(&(pi, e)))
                                    .map(|e| pool.endpoints[e].name.clone())
                                    .collect(),
                            }
                        })
                        .collect();
                    RegionDecision {
                        client_region: region_name(ri).unwrap_or_default(),
                        ttl: d.ttl,
                        degraded: d.degraded,
                        tier: tier_name(d.explanation.tier),
                        withdrawn: d.explanation.withdrawn,
                        answer: match d.answer {
                            Answer::Endpoints(_) => "endpoints",
                            Answer::Addresses { .. } => "addresses",
                            Answer::Cname(_) => "cname",
                        },
                        pools,
                    }
                })
                .collect();
            decisions.push(ServiceDecisions {
                service: svc.name.clone(),
                varies_by_region: tables.varies_by_region(si),
                regions,
            });
        }
    }
    Status {
        generation: control.generation(),
        ready: control.ready(),
        reloads: Reloads { ok, failed },
        zones,
        services,
        endpoints,
        decisions,
        fleet: super::fleet::status(fleet, control.monitor()),
        secondaries: secondaries.status(),
    }
}
