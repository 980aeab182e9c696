//! `meridian simulate`: the routing quality a service gives its clients, and what a failure
//! would change.
//!
//! For every client network (a CSV of `network,weight`, or every network of the GeoIP
//! database), the server's own code places the network's first address
//! ([`Steering::locate`]) and reads the decision for that place ([`Tables::decision_at`]): the
//! share of the network's queries each pool answers. That is set against the truth: the
//! network's position (the database's, else its region's location) and each pool's own location,
//! with an expected round-trip time of great-circle km / 100 + [`BASE_RTT_MS`]. A network's
//! expected RTT is Σ share × RTT; its excess is that minus the RTT of the best pool that serves.
//!
//! With pools, regions or endpoints taken down ([`Request::down`]), the same runs against
//! tables built with those endpoints withdrawn and is compared with the baseline: each pool's
//! share before and after, the engine's budget and load for it when spill is bounded by
//! capacity ([`crate::policy::bound`], over the `[geo] demand` networks), whether it is pushed
//! past its capacity, and which networks moved where.
//!
//! [`report`] gathers everything into one [`Report`]; the command line prints it as text
//! ([`Report::to_text`]) or JSON, and the admin API serves the same JSON (`GET /simulate`).
//! Layer 6: off the query path, it builds tables of its own and never touches the served ones.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::model::{EndpointId, PolicyKind};
use crate::health::state::Serving;
use crate::policy::geometry::distance_km;
use crate::policy::{Place, Tables};
use crate::snapshot::Steering;
use crate::snapshot::steering::{HealthView, build_tables};

/// Fixed part of the expected round-trip time to any pool, in ms (the last mile and the
/// server), added to the distance part (100 km per ms).
pub const BASE_RTT_MS: f64 = 2.0;
/// A network is well routed when its expected RTT is within this fraction of its best.
pub const GOOD_RATIO: f64 = 0.10;

mod networks;
mod text;

pub use crate::geo::networks::{
    ClientNetwork, CsvProblem, IPV6_WEIGHT_CAP, Network, parse_networks,
};
pub use networks::{database_networks, read_networks};

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The configuration has no services (so no steering).
    #[error("the configuration defines no services")]
    NoServices,
    /// No service of that name.
    #[error("no service {0:?}")]
    UnknownService(String),
    /// A `down` name is no pool, region or endpoint.
    #[error("down {0:?}: no pool, region or endpoint of that name")]
    UnknownDown(String),
    /// The networks file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the networks file is wrong.
    #[error("{}:{line}: {problem}", path.display())]
    Csv {
        path: PathBuf,
        line: usize,
        problem: CsvProblem,
    },
    /// No networks were given and the configuration has no GeoIP database to take them from.
    #[error("no --networks file and no [geo] database to take the networks from")]
    NoNetworks,
    /// The GeoIP database's networks cannot be listed.
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
}

/// What to simulate.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The service's name (the trailing dot optional).
    pub service: String,
    /// Pools, regions or endpoints to take down.
    pub down: Vec<String>,
}

/// Everything `simulate` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub service: String,
    pub policy: &'static str,
    /// Pools, regions or endpoints taken down.
    pub down: Vec<String>,
    /// The service's overprovisioning factor.
    pub overprovisioning: f64,
    /// Per client network, in the order given.
    pub networks: Vec<NetworkReport>,
    pub summary: Summary,
    /// With `down`: the comparison with everything as it was.
    pub what_if: Option<WhatIf>,
}

/// One client network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkReport {
    pub network: Network,
    pub weight: f64,
    /// The region the network is placed in.
    pub region: String,
    /// Where the network is taken to be.
    pub position: Spot,
    /// The pools answering it, with their shares (in rank order; shares sum to 1).
    pub pools: Vec<PoolShare>,
    /// Σ share × RTT, in ms; `None` when no pool answers (the service's fallback).
    pub expected_rtt_ms: Option<f64>,
    /// The serving pool with the lowest RTT, and that RTT.
    pub best_pool: Option<String>,
    pub best_rtt_ms: Option<f64>,
    /// Expected minus best, in ms.
    pub excess_ms: Option<f64>,
}

/// A point and where it came from: "record", "country centroid" or "region".
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spot {
    pub lat: f64,
    pub lon: f64,
    pub source: &'static str,
}

/// A pool and a share of traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolShare {
    pub pool: String,
    pub share: f64,
}

/// The routing quality over all networks.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub networks: usize,
    pub total_weight: f64,
    /// Weighted fraction of networks whose expected RTT is within 10% of their best.
    pub within_10pct: f64,
    /// Weighted mean excess, in ms.
    pub mean_excess_ms: f64,
    /// Weight of networks no pool answers (the service's fallback).
    pub unserved_weight: f64,
    /// Each pool's share of all traffic, in the service's pool order.
    pub pools: Vec<PoolShare>,
}

/// The scenario set against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIf {
    /// The baseline's summary (everything as it was).
    pub baseline: Summary,
    pub pools: Vec<PoolChange>,
    /// Networks whose shares changed.
    pub moved: Vec<Moved>,
}

/// One pool's share before and after.
#[derive(Debug, Clone, Serialize)]
pub struct PoolChange {
    pub pool: String,
    /// Its share of the networks' weight, everything as it was.
    pub baseline_share: f64,
    /// The same in the what-if.
    pub what_if_share: f64,
    /// The engine's budget for it, as a share of the service's demand (`[geo] demand`); `None`
    /// when unbounded or the service's spill is not bounded.
    pub budget: Option<f64>,
    /// The engine's load on it in the what-if, as a share of the demand (`None`: not bounded).
    pub load: Option<f64>,
    /// Pushed past its capacity: the engine's load over its budget when the service's spill is
    /// bounded, else `what_if_share > baseline_share × overprovisioning`.
    pub over_capacity: bool,
}

/// A network answered by other pools than in the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub network: Network,
    pub weight: f64,
    pub from: Vec<PoolShare>,
    pub to: Vec<PoolShare>,
}

/// The endpoints `down` names (pool, region or endpoint names), or the first unknown name.
pub fn down_endpoints(st: &Steering, down: &[String]) -> Result<Vec<EndpointId>, SimulateError> {
    let m = &st.model;
    let mut ids = Vec::new();
    for name in down {
        let before = ids.len();
        let mut known = false;
        for p in &m.pools {
            let region = &m.regions[p.region].name;
            if p.name == *name || region == name {
                known = true;
                ids.extend(p.endpoints.iter().map(|e| e.id));
            }
            for e in p.endpoints.iter().filter(|e| e.name == *name) {
                known = true;
                ids.push(e.id);
            }
        }
        known |= m.regions.iter().any(|r| r.name == *name);
        if !known && ids.len() == before {
            return Err(SimulateError::UnknownDown(name.clone()));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `base` with the endpoints `down` names withdrawn (as down), for `st`'s model.
pub fn view_with_down(
    st: &Steering,
    base: &HealthView,
    down: &[String],
) -> Result<HealthView, SimulateError> {
    let ids = down_endpoints(st, down)?;
    let m = &st.model;
    let n = m.endpoint_slots();
    // Taken down as by a local override, so that no fleet vote brings them back.
    Ok(HealthView::new(m.layout, n, |id| {
        let mut v = base.get(id);
        if ids.binary_search(&id).is_ok() {
            v.serving = Serving::Down;
            v.overridden = Some(crate::health::state::OverrideKind::ForceDown);
        }
        v
    })
    .with_fleet(base.fleet_shared()))
}

/// The service's index for `name` (case and trailing dot aside).
fn service_index(st: &Steering, name: &str) -> Result<usize, SimulateError> {
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    st.model
        .services
        .iter()
        .position(|s| s.name.trim_end_matches('.').eq_ignore_ascii_case(&want))
        .ok_or_else(|| SimulateError::UnknownService(name.to_string()))
}

/// Simulate `req` for `networks`. `view` is the health the baseline runs with (empty: every
/// endpoint up) and `served` the tables built from it, if at hand (else they are built here);
/// with `req.down`, the scenario runs with those endpoints withdrawn from `view` too.
pub fn report(
    st: &Steering,
    view: &HealthView,
    served: Option<&Tables>,
    req: &Request,
    networks: &[ClientNetwork],
) -> Result<Report, SimulateError> {
    let svc = service_index(st, &req.service)?;
    let def = &st.model.services[svc];
    let built;
    let baseline = match served {
        Some(t) => t,
        None => {
            built = build_tables(st, view, None);
            &built
        }
    };
    let base_rows: Vec<NetworkReport> = networks
        .iter()
        .map(|n| evaluate(st, baseline, view, svc, n))
        .collect();
    let base_summary = summarize(st, svc, &base_rows);
    if req.down.is_empty() {
        return Ok(Report {
            service: def.name.clone(),
            policy: policy_name(def.policy),
            down: Vec::new(),
            overprovisioning: def.overprovisioning,
            networks: base_rows,
            summary: base_summary,
            what_if: None,
        });
    }
    let down_view = view_with_down(st, view, &req.down)?;
    let tables = build_tables(st, &down_view, Some(baseline));
    let rows: Vec<NetworkReport> = networks
        .iter()
        .map(|n| evaluate(st, &tables, &down_view, svc, n))
        .collect();
    let summary = summarize(st, svc, &rows);
    let loads = tables.loads(svc);
    let pools = base_summary
        .pools
        .iter()
        .zip(&summary.pools)
        .enumerate()
        .map(|(i, (b, w))| {
            let engine = loads.get(i);
            PoolChange {
                pool: b.pool.clone(),
                baseline_share: b.share,
                what_if_share: w.share,
                budget: engine.and_then(|l| l.budget),
                load: engine.map(|l| l.load),
                over_capacity: match engine {
                    Some(l) => l.over(),
                    None => w.share > b.share * def.overprovisioning + 1e-12,
                },
            }
        })
        .collect();
    let moved = base_rows
        .iter()
        .zip(&rows)
        .filter(|(b, w)| !same_shares(&b.pools, &w.pools))
        .map(|(b, w)| Moved {
            network: b.network,
            weight: b.weight,
            from: b.pools.clone(),
            to: w.pools.clone(),
        })
        .collect();
    Ok(Report {
        service: def.name.clone(),
        policy: policy_name(def.policy),
        down: req.down.clone(),
        overprovisioning: def.overprovisioning,
        networks: rows,
        summary,
        what_if: Some(WhatIf {
            baseline: base_summary,
            pools,
            moved,
        }),
    })
}

/// The configuration name of a policy.
fn policy_name(p: PolicyKind) -> &'static str {
    match p {
        PolicyKind::Failover => "failover",
        PolicyKind::Weighted => "weighted",
        PolicyKind::Geo => "geo",
        PolicyKind::Latency => "latency",
        PolicyKind::Nearest => "nearest",
    }
}

/// Whether two share lists give every pool the same share (order aside).
fn same_shares(a: &[PoolShare], b: &[PoolShare]) -> bool {
    let of = |l: &[PoolShare], p: &str| l.iter().find(|s| s.pool == p).map_or(0.0, |s| s.share);
    a.iter()
        .chain(b)
        .all(|s| (of(a, &s.pool) - of(b, &s.pool)).abs() < 1e-9)
}

/// Expected RTT in ms over a great-circle distance.
fn rtt_ms(km: f64) -> f64 {
    crate::policy::geometry::estimated_rtt_ms(km) + BASE_RTT_MS
}

/// One network against one set of tables (built from `view`).
fn evaluate(
    st: &Steering,
    tables: &Tables,
    view: &HealthView,
    svc: usize,
    n: &ClientNetwork,
) -> NetworkReport {
    let m = &st.model;
    let ip = n.network.addr;
    let ranks_by_distance = tables.geometry(svc).is_some();
    let (placement, cell) = st.locate(ip, ranks_by_distance);
    // The truth needs the database's record even when the policy does not.
    let located = match ranks_by_distance {
        true => placement.location,
        false => st.locate(ip, true).0.location,
    };
    let region = &m.regions[placement.region];
    let position = match located.as_ref().and_then(crate::geo::position) {
        Some(p) => Spot {
            lat: p.lat,
            lon: p.lon,
            source: p.source.as_str(),
        },
        None => Spot {
            lat: region.lat,
            lon: region.lon,
            source: "region",
        },
    };
    let rtt_to = |p: usize| {
        let pool = &m.pools[p];
        rtt_ms(distance_km(position.lat, position.lon, pool.lat, pool.lon))
    };
    let decision = tables.decision_at(
        svc,
        Place {
            region: placement.region,
            cell,
        },
    );
    let shares: Vec<(usize, f64)> = decision
        .explanation
        .pools
        .iter()
        .filter(|p| p.share > 0.0)
        .map(|p| (p.ranked.pool, p.share))
        .collect();
    let total: f64 = shares.iter().map(|s| s.1).sum();
    let expected = (total > 0.0).then(|| shares.iter().map(|&(p, s)| s * rtt_to(p)).sum::<f64>());
    let serves = |p: usize| {
        m.pools[p]
            .endpoints
            .iter()
            .any(|e| view.serving(e.id) == Serving::Up)
    };
    let best = m.services[svc]
        .pools
        .iter()
        .copied()
        .filter(|&p| serves(p))
        .map(|p| (p, rtt_to(p)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    NetworkReport {
        network: n.network,
        weight: n.weight,
        region: region.name.clone(),
        position,
        pools: shares
            .iter()
            .map(|&(p, share)| PoolShare {
                pool: m.pools[p].name.clone(),
                share,
            })
            .collect(),
        expected_rtt_ms: expected,
        best_pool: best.map(|b| m.pools[b.0].name.clone()),
        best_rtt_ms: best.map(|b| b.1),
        excess_ms: expected.zip(best).map(|(e, b)| (e - b.1).max(0.0)),
    }
}

/// The summary of `rows` for service `svc`.
fn summarize(st: &Steering, svc: usize, rows: &[NetworkReport]) -> Summary {
    let m = &st.model;
    let total: f64 = rows.iter().map(|r| r.weight).sum();
    let (mut good, mut excess, mut served, mut unserved) = (0.0, 0.0, 0.0, 0.0);
    let pools = &m.services[svc].pools;
    let mut per_pool = vec![0.0; pools.len()];
    for r in rows {
        let (Some(e), Some(b)) = (r.expected_rtt_ms, r.best_rtt_ms) else {
            unserved += r.weight;
            continue;
        };
        served += r.weight;
        if e <= b * (1.0 + GOOD_RATIO) + 1e-9 {
            good += r.weight;
        }
        excess += r.weight * (e - b).max(0.0);
        for s in &r.pools {
            if let Some(i) = pools.iter().position(|&p| m.pools[p].name == s.pool) {
                per_pool[i] += r.weight * s.share;
            }
        }
    }
    let frac = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    Summary {
        networks: rows.len(),
        total_weight: total,
        within_10pct: frac(good, served),
        mean_excess_ms: frac(excess, served),
        unserved_weight: unserved,
        pools: pools
            .iter()
            .zip(per_pool)
            .map(|(&p, w)| PoolShare {
                pool: m.pools[p].name.clone(),
                share: frac(w, total),
            })
            .collect(),
    }
}
