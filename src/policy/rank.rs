//! Ranking: the order in which a service's pools should serve one client.
//!
//! Each policy is a different answer to "which pool is best for this client": the operator's
//! priority order, the client's own region and its fallback chain, the shortest distance, or the
//! shortest expected round trip. Ranking only orders pools and scores them; how much traffic
//! each one then takes is [`crate::policy::spill`]'s business, and a pool that does not serve is
//! still ranked (so that `explain` shows it) but gets no share there.
//!
//! # Scores (lower is better; ties keep the configured order)
//! - `failover`: the pool's position in the service's list.
//! - `geo`: 0 for pools in the client's region, `1 + i` for pools in the `i`-th region of the client
//!   region's `fallback` list (the first position a region appears at), `1 + len` for the rest.
//! - `nearest`: great-circle km from the client to the pool's location.
//! - `latency`: expected round trip in ms: the distance model from the client to the pool's
//!   location plus the pool's published excess ([`excess`]).
//! - `weighted`: 0 for every pool (not ranked: all pools share one draw).
//!
//! `nearest` and `latency` are ranked per client place by [`crate::policy::places`], where
//! near-ties form levels; [`rank`] here ranks the region policies, with equal scores as levels
//! ([`levels`]).
//!
//! # Excess and its hysteresis (`latency`)
//! A pool's measured RTT from this node is the mean, over its serving endpoints that have a
//! measurement, of the service's percentile. Its *excess* is
//! `max(0, measured - model(node → pool))`, the distance model being 1 ms per 100 km of
//! great-circle distance ([`crate::policy::geometry`]): what is slow about the pool itself, so a
//! slow pool is penalised for every client, not only the node's neighbours. The excess a table
//! build uses (*published*) changes only when the new measurement differs from the published one
//! by more than `max(hysteresis_ratio × (model + published), hysteresis_ms)` ([`excess`]), so that
//! measurement noise does not move clients back and forth; without a measurement the published
//! value stays.

use super::PolicyInputs;
use super::geometry::distance_km;
use crate::config::model::{PolicyKind, ServiceDef};

/// Why a pool has its place in the ranking (shown by `explain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RankReason {
    /// `failover`: the configured priority order.
    Configured,
    /// `geo`: the pool is in the client's region.
    ClientRegion,
    /// `geo`: the pool is in the region at this position (0-based) of the client region's
    /// fallback chain.
    FallbackRegion {
        /// Position in the chain.
        position: usize,
    },
    /// `geo`: in neither the client's region nor its fallback chain.
    OtherRegion,
    /// `nearest`: great-circle distance.
    Distance,
    /// `latency`: the distance model plus the pool's excess measured from this node.
    EstimatedRtt {
        /// The distance model's round trip, in ms.
        distance_ms: f64,
        /// How much slower than its own distance model the pool measured from this node, in ms.
        excess_ms: f64,
    },
    /// `weighted`: not ranked.
    Weighted,
}

/// One pool in a ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedPool {
    /// Index into the pools.
    pub pool: usize,
    /// Lower is better; the unit depends on the policy (see the module docs).
    pub score: f64,
    /// Why the pool scored so.
    pub reason: RankReason,
    /// Great-circle km from the client to the pool's location.
    pub distance_km: f64,
}

/// What the excess hysteresis did for one pool (shown by `explain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hysteresis {
    /// The pool.
    pub pool: usize,
    /// The excess the previous tables published, in ms.
    pub previous_ms: f64,
    /// The excess measured now, in ms.
    pub measured_ms: f64,
    /// How far the measurement had to move to be published, in ms.
    pub margin_ms: f64,
    /// Whether the measurement was published.
    pub switched: bool,
}

/// The excess to publish for a pool (see the module docs): `measured` is the measured excess
/// now (ms, `None` without a measurement), `model_ms` the distance model from the node,
/// `previous` the excess the previous tables published. Returns the published value and, when
/// there was a previous value and a different measurement, what the hysteresis decided.
pub fn excess(
    pool: usize,
    measured: Option<f64>,
    model_ms: f64,
    previous: Option<f64>,
    ratio: f64,
    min_ms: f64,
) -> (f64, Option<Hysteresis>) {
    match (measured, previous) {
        (None, p) => (p.unwrap_or(0.0), None),
        (Some(m), None) => (m, None),
        (Some(m), Some(p)) if m == p => (p, None),
        (Some(m), Some(p)) => {
            let margin_ms = (ratio * (model_ms + p)).max(min_ms);
            let switched = (m - p).abs() > margin_ms;
            let note = Hysteresis {
                pool,
                previous_ms: p,
                measured_ms: m,
                margin_ms,
                switched,
            };
            (if switched { m } else { p }, Some(note))
        }
    }
}

/// Ranks the service's pools for clients of region `client` under a region policy
/// (`failover`, `weighted`, `geo`). `nearest` and `latency` rank per client place, in
/// [`crate::policy::places`]; asking for them here is a bug and panics.
pub fn rank(inputs: &PolicyInputs, service: &ServiceDef, client: usize) -> Vec<RankedPool> {
    let client_region = &inputs.regions[client];
    let mut ranked: Vec<RankedPool> = service
        .pools
        .iter()
        .enumerate()
        .map(|(position, &pool)| {
            let p = &inputs.pools[pool];
            let distance_km = distance_km(client_region.lat, client_region.lon, p.lat, p.lon);
            let (score, reason) = match service.policy {
                PolicyKind::Failover => (position as f64, RankReason::Configured),
                PolicyKind::Weighted => (0.0, RankReason::Weighted),
                PolicyKind::Geo => geo_score(inputs, client, p.region),
                PolicyKind::Nearest | PolicyKind::Latency => {
                    unreachable!("nearest and latency are ranked per place by policy::places")
                }
            };
            RankedPool {
                pool,
                score,
                reason,
                distance_km,
            }
        })
        .collect();
    // Stable: ties keep the configured order.
    ranked.sort_by(|a, b| a.score.total_cmp(&b.score));
    ranked
}

fn geo_score(inputs: &PolicyInputs, client: usize, region: usize) -> (f64, RankReason) {
    let chain = &inputs.regions[client].fallback;
    if region == client {
        (0.0, RankReason::ClientRegion)
    } else if let Some(position) = chain.iter().position(|&r| r == region) {
        (
            1.0 + position as f64,
            RankReason::FallbackRegion { position },
        )
    } else {
        (1.0 + chain.len() as f64, RankReason::OtherRegion)
    }
}

/// Spill levels for a ranking: consecutive pools with equal scores share a level.
pub fn levels(ranked: &[RankedPool]) -> Vec<usize> {
    let mut level = 0;
    ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i > 0 && r.score != ranked[i - 1].score {
                level += 1;
            }
            level
        })
        .collect()
}
