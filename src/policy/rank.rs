//! Ranking: the order in which a service's pools should serve one client region.
//!
//! Each policy is a different answer to "which pool is best for this client": the operator's
//! priority order, the client's own region and its fallback chain, the shortest distance, or the
//! shortest measured (or estimated) round trip. Ranking only orders pools and scores them; how
//! much traffic each one then takes is [`crate::policy::spill`]'s business, and a pool that does
//! not serve is still ranked (so that `explain` shows it) but gets no share there.
//!
//! # Scores (lower is better; ties keep the configured order)
//! - `failover`: the pool's position in the service's list.
//! - `geo`: 0 for pools in the client's region, `1 + i` for pools in the `i`-th region of the client
//!   region's `fallback` list (the first position a region appears at), `1 + len` for the rest.
//! - `nearest`: great-circle km from the client region to the pool's region.
//! - `latency`: expected round-trip ms ([`expected_rtt`]), then [`apply_hysteresis`].
//! - `weighted`: 0 for every pool (not ranked: all pools share one draw).
//!
//! Pools with equal consecutive scores form one spill level ([`levels`]).
//!
//! # Expected round trip (`latency`)
//! A pool's measured RTT from a vantage is the mean, over its serving endpoints that have a
//! measurement there, of the service's percentile ([`PoolLatency`]).
//! - If the client region is a vantage and the pool has a measurement from it: that value.
//! - Otherwise: the distance model (1 ms per 100 km of great-circle distance from the client
//!   region to the pool's region, see [`crate::policy::geometry`]) plus the pool's *excess*
//!   measured from this node: `max(0, measured_from_node - model(node region → pool region))`, or
//!   0 without a measurement. A slow pool is thus penalised from every region, not only the one
//!   that measured it.
//!
//! # Hysteresis (`latency`)
//! If the previous tables led this (service, client region) with pool B, B still serves, and the
//! best serving pool now is another pool X, X takes the lead only if it beats B by more than
//! `max(hysteresis_ratio × rtt_B, hysteresis_ms)`; otherwise B is moved back to the front and the
//! others keep their order. Measurement noise therefore does not flip answers back and forth.

use super::PolicyInputs;
use super::geometry::{estimated_rtt_ms, region_distance_km};
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
    /// `latency`: measured from the client's region, which is a vantage.
    MeasuredRtt {
        /// The vantage region that measured it.
        vantage: usize,
    },
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
    /// Great-circle km from the client region to the pool's region.
    pub distance_km: f64,
}

/// Latency measured for one pool, from the client's region and from this node (each `None`
/// when none of the pool's serving endpoints has a measurement from there). Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PoolLatency {
    /// Mean measured percentile from the client region as a vantage.
    pub from_client: Option<f64>,
    /// Mean measured percentile from this node's region.
    pub from_node: Option<f64>,
}

/// What the latency hysteresis did for one decision (shown by `explain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hysteresis {
    /// The pool that led the previous tables.
    pub incumbent: usize,
    /// The best serving pool by the new scores.
    pub challenger: usize,
    /// Expected round trips, in ms.
    pub incumbent_ms: f64,
    /// Expected round trip of the challenger, in ms.
    pub challenger_ms: f64,
    /// How much better the challenger had to be, in ms.
    pub margin_ms: f64,
    /// Whether the challenger took the lead.
    pub switched: bool,
}

/// Ranks the service's pools for `client` (a region index). `latency` is parallel to
/// `service.pools` and read only for the `latency` policy (it may be empty otherwise).
pub fn rank(
    inputs: &PolicyInputs,
    service: &ServiceDef,
    client: usize,
    latency: &[PoolLatency],
) -> Vec<RankedPool> {
    let client_region = &inputs.regions[client];
    let mut ranked: Vec<RankedPool> = service
        .pools
        .iter()
        .enumerate()
        .map(|(position, &pool)| {
            let region = inputs.pools[pool].region;
            let distance_km = region_distance_km(client_region, &inputs.regions[region]);
            let (score, reason) = match service.policy {
                PolicyKind::Failover => (position as f64, RankReason::Configured),
                PolicyKind::Weighted => (0.0, RankReason::Weighted),
                PolicyKind::Nearest => (distance_km, RankReason::Distance),
                PolicyKind::Geo => geo_score(inputs, client, region),
                PolicyKind::Latency => expected_rtt(
                    inputs,
                    client,
                    region,
                    latency.get(position).copied().unwrap_or_default(),
                ),
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

/// Expected round trip in ms from `client` to a pool in `pool_region`, and how it was found
/// (see the module docs).
pub fn expected_rtt(
    inputs: &PolicyInputs,
    client: usize,
    pool_region: usize,
    latency: PoolLatency,
) -> (f64, RankReason) {
    if let Some(ms) = latency.from_client {
        return (ms, RankReason::MeasuredRtt { vantage: client });
    }
    let regions = inputs.regions;
    let distance_ms = estimated_rtt_ms(region_distance_km(&regions[client], &regions[pool_region]));
    let excess_ms = latency.from_node.map_or(0.0, |measured| {
        let model = estimated_rtt_ms(region_distance_km(
            &regions[inputs.node_region],
            &regions[pool_region],
        ));
        (measured - model).max(0.0)
    });
    (
        distance_ms + excess_ms,
        RankReason::EstimatedRtt {
            distance_ms,
            excess_ms,
        },
    )
}

/// Keeps the previous leader `incumbent` first unless the best serving pool beats it by more
/// than `max(ratio × rtt_incumbent, min_ms)` (see the module docs). `serves(pool)` tells whether a
/// pool has a serving endpoint. Returns `None` when there was nothing to decide: the incumbent
/// still leads, no longer serves, or is no longer among the pools.
pub fn apply_hysteresis(
    ranked: &mut [RankedPool],
    incumbent: usize,
    serves: impl Fn(usize) -> bool,
    ratio: f64,
    min_ms: f64,
) -> Option<Hysteresis> {
    let at = ranked.iter().position(|r| r.pool == incumbent)?;
    let best = ranked.iter().position(|r| serves(r.pool))?;
    if best == at || !serves(incumbent) {
        return None;
    }
    let (incumbent_ms, challenger_ms) = (ranked[at].score, ranked[best].score);
    let margin_ms = (ratio * incumbent_ms).max(min_ms);
    let switched = incumbent_ms - challenger_ms > margin_ms;
    let note = Hysteresis {
        incumbent,
        challenger: ranked[best].pool,
        incumbent_ms,
        challenger_ms,
        margin_ms,
        switched,
    };
    if !switched {
        ranked[..=at].rotate_right(1);
    }
    Some(note)
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
