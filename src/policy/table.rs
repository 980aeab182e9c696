//! Decision tables: every answer the server can give, prepared before anyone asks.
//!
//! The query path must not rank, weigh or look at health (ARCHITECTURE.md, "Hot-path budget"). So whenever config, health or latency changes, [`build_tables`] computes one
//! [`Decision`] per service × client region, off the query path, and the server swaps the new
//! [`Tables`] in atomically. A decision holds what a query needs (pool choices with cumulative
//! shares, endpoints with cumulative weights, the TTL) and what `explain` prints (an
//! [`Explanation`] of every candidate).
//!
//! # Per service (see [`crate::policy`] for tiers, [`crate::policy::rank`], [`crate::policy::spill`])
//! 1. Health of every endpoint is read once; the tier is Primary when a positive-weight endpoint
//!    serves, else Standby when a standby endpoint serves, else Fallback.
//! 2. Per client region: rank the pools, apply latency hysteresis against the previous tables
//!    (matched by service, region and pool *names*, so a reload that renumbers keeps it), group
//!    levels, compute shares, and keep the pools with a positive share as [`PoolChoice`]s of their
//!    serving tier endpoints. `weighted` instead has one choice: every serving tier endpoint of
//!    every pool, weighted by pool weight × endpoint weight.
//! 3. Fallback: `all` answers every endpoint of the service whatever its health (positive-weight
//!    ones if there are any, else the standby ones); `addresses` and `cname` answer themselves.
//! 4. Degraded when an endpoint of the service's pools is withdrawn (down or drained), the top
//!    level keeps less than all traffic (a spill), the standby tier serves, or the fallback
//!    answers. TTL is `failover_ttl` while degraded, `ttl` otherwise.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::bound::{self, PlaceShares, PoolLoad};
use super::explain::{EndpointExplanation, Explanation, PoolExplanation, Tier};
use super::geometry::{distance_km, estimated_rtt_ms};
use super::pick::{EndpointRef, MAX_ANSWERS, pick};
use super::places::{Geometry, GeometryKey, Metric, Place, Site, Ties};
use super::rank::{self, Hysteresis, RankReason, RankedPool};
use super::spill::{self, PoolCapacity};
use super::{PolicyInputs, Serving};
use crate::config::model::{Fallback, PolicyKind, ServiceDef};

pub use super::pick::PoolChoice;

/// What a decision answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Draw one choice by share, then endpoints by weight ([`Decision::pick`]).
    Endpoints(Vec<PoolChoice>),
    /// The service's fallback addresses (A from `ipv4`, AAAA from `ipv6`).
    Addresses {
        /// Addresses for A queries.
        ipv4: Vec<Ipv4Addr>,
        /// Addresses for AAAA queries.
        ipv6: Vec<Ipv6Addr>,
    },
    /// The service's fallback CNAME target.
    Cname(String),
}

/// What to answer for one service and client region.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The answer set.
    pub answer: Answer,
    /// TTL of the answer records.
    pub ttl: u32,
    /// An endpoint withdrawn, a spill, standby or fallback in use.
    pub degraded: bool,
    /// The service's configured answer count (most endpoints per answer).
    pub answers: usize,
    /// The why, for `explain`.
    pub explanation: Explanation,
}

impl Decision {
    /// Whether the leading pool keeps less than all of this region's traffic.
    pub fn spills(&self) -> bool {
        self.explanation
            .pools
            .first()
            .is_some_and(|p| p.share < 1.0 - 1e-9)
    }

    /// Draws up to `want` distinct endpoints into `out` (see [`crate::policy::pick`] for the
    /// budget: no allocation, no lock). Returns how many; 0 for `Addresses` and `Cname` answers,
    /// which the caller encodes from [`Decision::answer`] directly.
    #[inline]
    pub fn pick(&self, random: u64, want: usize, out: &mut [EndpointRef; MAX_ANSWERS]) -> usize {
        match &self.answer {
            Answer::Endpoints(choices) => pick(choices, random, want, out),
            _ => 0,
        }
    }
}

/// Decisions for every service and client place, indexed by position in the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    regions: usize,
    /// Per service: where its decisions start and how a client picks one.
    rows: Vec<Row>,
    decisions: Vec<Decision>,
    /// The geometries of the `nearest` and `latency` services.
    geometries: Vec<Arc<Geometry>>,
    /// Per-region parts of rows with several vantages ([`Row::regional`]).
    subrows: Vec<SubRow>,
    /// Per service: whether any client's answer differs from another's.
    varies: Vec<bool>,
    /// Per service: whether any client's leading pool keeps less than all its traffic.
    spills: Vec<bool>,
    service_names: Vec<String>,
    /// Per service, per pool of the service: load and budget under the capacity bound (empty
    /// when the service is not bounded).
    loads: Vec<Vec<PoolLoad>>,
    /// A digest of every answer the tables give ([`Tables::fingerprint`]).
    fingerprint: u64,
    /// Per pool name: the latency excess (ms) this build published, for the next build's
    /// hysteresis.
    excess: HashMap<String, f64>,
}

/// How one service's decisions are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    /// Index of its first decision.
    start: usize,
    /// Number of decisions.
    len: usize,
    /// `None`: one decision per client region. `Some(g)`: one per class of geometry `g`.
    geometry: Option<usize>,
    /// `latency` with fleet vantages: where this row's per-region parts start in
    /// `Tables::subrows` (one per client region); [`NO_SUBROWS`] when it has one part.
    regional: u32,
}

/// A row with one part only.
const NO_SUBROWS: u32 = u32::MAX;

/// The part of a row a client region reads: the decisions ranked with its vantage's
/// measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SubRow {
    start: usize,
    geometry: usize,
}

impl Tables {
    /// The decision for `service` and a client known only by its region (indexes into the
    /// model the tables were built from; `nearest` and `latency` rank at the region's
    /// location). Panics when out of range.
    #[inline]
    pub fn decision(&self, service: usize, client_region: usize) -> &Decision {
        let row = self.rows[service];
        match row.geometry {
            None => &self.decisions[row.start + client_region],
            Some(g) => {
                let (start, g) = self.part(row, g, client_region);
                &self.decisions[start + self.geometries[g].class_of_region(client_region)]
            }
        }
    }

    /// Where the decisions a client region reads start, and their geometry.
    #[inline]
    fn part(&self, row: Row, geometry: usize, region: usize) -> (usize, usize) {
        if row.regional == NO_SUBROWS {
            (row.start, geometry)
        } else {
            let s = self.subrows[row.regional as usize + region];
            (s.start, s.geometry)
        }
    }

    /// The decision for `service` and a client at `place`: by its cell when the service ranks by
    /// distance and the client's position is known, else by its region.
    #[inline]
    pub fn decision_at(&self, service: usize, place: Place) -> &Decision {
        let row = self.rows[service];
        match (row.geometry, place.cell) {
            (Some(g), Some(cell)) => {
                let (start, g) = self.part(row, g, place.region);
                &self.decisions[start + self.geometries[g].class_of(cell)]
            }
            _ => self.decision(service, place.region),
        }
    }

    /// Every decision of `service` (one per region, or one per class).
    pub fn decisions(&self, service: usize) -> &[Decision] {
        let row = self.rows[service];
        &self.decisions[row.start..row.start + row.len]
    }

    /// The geometry `service` ranks by, when it ranks by distance.
    pub fn geometry(&self, service: usize) -> Option<&Geometry> {
        self.rows[service].geometry.map(|g| &*self.geometries[g])
    }

    /// Whether the answer for `service` depends on where the client is at all. When it does not
    /// (`failover`, `weighted`, a fallback, or places that happen to agree), the answer's ECS
    /// scope can be 0 so that resolvers cache one answer for everyone.
    pub fn varies_by_region(&self, service: usize) -> bool {
        self.varies[service]
    }

    /// Whether, for some client, part of the traffic spills away from its leading pool (for
    /// metrics when the client was not located because every client gets the same answer).
    pub fn any_region_spills(&self, service: usize) -> bool {
        self.spills[service]
    }

    /// Per pool of `service` (in the service's order): its baseline share, budget and load
    /// under the capacity bound ([`crate::policy::bound`]); empty when the service is not
    /// bounded (`spill = "unbounded"`, no demand known, `weighted`, or the fallback answers).
    pub fn loads(&self, service: usize) -> &[PoolLoad] {
        &self.loads[service]
    }

    /// A digest of every answer these tables give (per service and place: the pools, their
    /// shares, the endpoints and their weights, the TTL), stable across processes and builds of
    /// the same version: instances of a fleet that see the same configuration, health and
    /// measurements have the same fingerprint, and an alert compares them.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Number of services.
    pub fn services(&self) -> usize {
        self.service_names.len()
    }

    /// Number of client regions.
    pub fn regions(&self) -> usize {
        self.regions
    }

    /// Heap bytes of the geometries and decisions (an estimate: vectors at their capacity).
    pub fn heap_bytes(&self) -> usize {
        let geometries: usize = self.geometries.iter().map(|g| g.heap_bytes()).sum();
        let decisions: usize = self.decisions.iter().map(Decision::heap_bytes).sum();
        geometries + decisions + self.decisions.capacity() * std::mem::size_of::<Decision>()
    }
}

impl Decision {
    /// Heap bytes held by this decision (an estimate).
    fn heap_bytes(&self) -> usize {
        let choices = match &self.answer {
            Answer::Endpoints(c) => c
                .iter()
                .map(|c| {
                    std::mem::size_of::<PoolChoice>()
                        + c.endpoints.capacity() * std::mem::size_of::<EndpointRef>()
                        + c.cumulative.capacity() * 8
                })
                .sum(),
            _ => 0,
        };
        let pools: usize = self
            .explanation
            .pools
            .iter()
            .map(|p| {
                std::mem::size_of::<PoolExplanation>()
                    + p.endpoints.capacity() * std::mem::size_of::<EndpointExplanation>()
            })
            .sum();
        choices + pools
    }
}

/// Builds the decision tables (off the query path). `previous` supplies the latency excesses
/// published last time (hysteresis) and geometries to reuse; `None` on the first build.
pub fn build_tables(inputs: &PolicyInputs, previous: Option<&Tables>) -> Tables {
    let region_points: Vec<(f64, f64)> = inputs.regions.iter().map(|r| (r.lat, r.lon)).collect();
    let mut rows = Vec::with_capacity(inputs.services.len());
    let mut decisions = Vec::new();
    let mut geometries: Vec<Arc<Geometry>> = Vec::new();
    let mut excess_out = HashMap::new();
    let mut loads = Vec::with_capacity(inputs.services.len());
    let mut subrows: Vec<SubRow> = Vec::new();
    for service in inputs.services {
        let state = ServiceState::read(inputs, service);
        let start = decisions.len();
        let metric = match service.policy {
            PolicyKind::Nearest => Some(Metric::Distance),
            PolicyKind::Latency => Some(Metric::Rtt),
            _ => None,
        };
        let Some(metric) = metric else {
            let places: Vec<Ranking> = (0..inputs.regions.len())
                .map(|client| {
                    let ranked = rank::rank(inputs, service, client);
                    let levels = rank::levels(&ranked);
                    Ranking {
                        ranked,
                        levels,
                        demand: inputs
                            .demand
                            .map_or(0.0, |d| d.by_region.get(client).copied().unwrap_or(0.0)),
                    }
                })
                .collect();
            let (shares, pool_loads) =
                state.shares(inputs, service, &places, inputs.demand.is_some());
            for (client, (place, shares)) in places.into_iter().zip(shares).enumerate() {
                decisions.push(state.decide(
                    inputs,
                    service,
                    Some(client),
                    None,
                    place,
                    shares,
                    Vec::new(),
                    None,
                ));
            }
            loads.push(pool_loads);
            rows.push(Row {
                start,
                len: decisions.len() - start,
                geometry: None,
                regional: NO_SUBROWS,
            });
            continue;
        };
        // `latency` measures from this node and from every fleet vantage with data: the clients
        // of such a region rank by the excess measured from there, everyone else by this
        // node's. Each vantage has its own geometry (shared when the excesses agree).
        let mut vantages = vec![inputs.node_region];
        if metric == Metric::Rtt && state.tier != Tier::Fallback {
            vantages.extend(
                inputs
                    .vantages
                    .iter()
                    .copied()
                    .filter(|&v| v != inputs.node_region && v < inputs.regions.len()),
            );
            // In region order, whichever is this node's: instances that see the same vantages
            // lay their tables out alike (and so fingerprint them alike).
            vantages.sort_unstable();
            vantages.dedup();
        }
        // Each client region's vantage, worked out once: its own when it is one, else the
        // nearest vantage's (ties: the lower region index), so that instances seeing the same
        // vantages rank alike.
        let vantage_of: Vec<usize> = inputs
            .regions
            .iter()
            .enumerate()
            .map(|(region, at)| {
                if vantages.contains(&region) {
                    return region;
                }
                vantages
                    .iter()
                    .filter_map(|&v| {
                        let r = inputs.regions.get(v)?;
                        Some((distance_km(at.lat, at.lon, r.lat, r.lon), v))
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                    .map_or(inputs.node_region, |(_, v)| v)
            })
            .collect();
        let ties = Ties {
            km: service.tie_km,
            ratio: service.tie_ratio,
            radius: service.tie_radius,
        };
        // (vantage, geometry, hysteresis notes)
        let mut parts: Vec<(usize, usize, Vec<Hysteresis>)> = Vec::new();
        for &v in &vantages {
            let mut notes = Vec::new();
            let rtts = if metric == Metric::Rtt && state.tier != Tier::Fallback {
                if v == inputs.node_region {
                    state.node_rtt.clone()
                } else {
                    state.measure(inputs, service, v)
                }
            } else {
                Vec::new()
            };
            let sites: Vec<Site> = service
                .pools
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let pool = &inputs.pools[p];
                    let excess_ms = if metric == Metric::Rtt && state.tier != Tier::Fallback {
                        let model = inputs.regions.get(v).map_or(0.0, |at| {
                            estimated_rtt_ms(distance_km(at.lat, at.lon, pool.lat, pool.lon))
                        });
                        let measured = mean(&rtts[i]).map(|m| (m - model).max(0.0));
                        let name = excess_key(inputs, v, &pool.name);
                        let previous = previous.and_then(|t| t.excess.get(&name).copied());
                        let (published, note) = rank::excess(
                            p,
                            measured,
                            model,
                            previous,
                            service.hysteresis_ratio,
                            service.hysteresis_ms,
                        );
                        notes.extend(note);
                        excess_out.insert(name, published);
                        published
                    } else {
                        0.0
                    };
                    Site {
                        pool: p,
                        lat: pool.lat,
                        lon: pool.lon,
                        excess_ms,
                    }
                })
                .collect();
            let key = GeometryKey::new(metric, &sites, &region_points, ties);
            let g = match geometries.iter().position(|g| *g.key() == key) {
                Some(g) => g,
                None => {
                    let reused = previous
                        .and_then(|t| t.geometries.iter().find(|g| *g.key() == key))
                        .cloned();
                    geometries.push(reused.unwrap_or_else(|| {
                        Arc::new(Geometry::build(metric, &sites, &region_points, ties))
                    }));
                    geometries.len() - 1
                }
            };
            parts.push((v, g, notes));
        }
        // Every part's classes are places of one capacity bound: each counts the demand of the
        // regions whose vantage it is.
        let mut places: Vec<Ranking> = Vec::new();
        let mut part_of: Vec<usize> = Vec::new();
        let mut at: Vec<(f64, f64, f64)> = Vec::new();
        for (pi, &(v, g, _)) in parts.iter().enumerate() {
            let geometry = &geometries[g];
            let demand = inputs
                .demand
                .map(|d| geometry.class_demand(d, |r| vantage_of.get(r) == Some(&v)));
            for (c, class) in geometry.classes.iter().enumerate() {
                places.push(Ranking {
                    ranked: class.ranked.clone(),
                    levels: class.levels.clone(),
                    demand: demand.as_ref().map_or(0.0, |d| d[c]),
                });
                part_of.push(pi);
                at.push(class.at);
            }
        }
        let (shares, pool_loads) = state.shares(inputs, service, &places, inputs.demand.is_some());
        let mut starts = vec![start; parts.len()];
        for (k, (place, shares)) in places.into_iter().zip(shares).enumerate() {
            let pi = part_of[k];
            if k > 0 && part_of[k - 1] != pi {
                starts[pi] = decisions.len();
            }
            let (v, _, notes) = &parts[pi];
            let vantage = (metric == Metric::Rtt).then_some(*v);
            decisions.push(state.decide(
                inputs,
                service,
                None,
                Some(at[k]),
                place,
                shares,
                notes.clone(),
                vantage,
            ));
        }
        loads.push(pool_loads);
        let regional = if parts.len() > 1 {
            let first = subrows.len() as u32;
            for &v in &vantage_of {
                let pi = parts.iter().position(|p| p.0 == v).unwrap_or(0);
                subrows.push(SubRow {
                    start: starts[pi],
                    geometry: parts[pi].1,
                });
            }
            first
        } else {
            NO_SUBROWS
        };
        rows.push(Row {
            start,
            len: decisions.len() - start,
            geometry: Some(parts[0].1),
            regional,
        });
    }
    let varies = rows
        .iter()
        .map(|r| {
            let row = &decisions[r.start..r.start + r.len];
            row.iter().any(|d| d.answer != row[0].answer)
        })
        .collect();
    let spills = rows
        .iter()
        .map(|r| {
            decisions[r.start..r.start + r.len]
                .iter()
                .any(Decision::spills)
        })
        .collect();
    let fingerprint = fingerprint(&rows, &decisions);
    Tables {
        regions: inputs.regions.len(),
        fingerprint,
        rows,
        decisions,
        geometries,
        subrows,
        varies,
        spills,
        service_names: inputs.services.iter().map(|s| s.name.clone()).collect(),
        loads,
        excess: excess_out,
    }
}

/// One client place (a region, or a class of places) of a service: its ranking and demand.
struct Ranking {
    ranked: Vec<RankedPool>,
    levels: Vec<usize>,
    /// Weight of the clients placed here (0 without demand).
    demand: f64,
}

/// A place's shares per ranked pool: what spill gives it alone (`asked`) and what it gets
/// with the capacity bound (`share`; the same when the service is not bounded).
struct Shares {
    asked: Vec<f64>,
    share: Vec<f64>,
}

/// What a service's decisions share across client regions: health, tier, weights, capacity.
struct ServiceState {
    tier: Tier,
    withdrawn: usize,
    /// Parallel to `service.pools`, then to each pool's endpoints.
    serving: Vec<Vec<Serving>>,
    /// Draw weight in the tier, 0 when not in it; for `Fallback`, the fail-open weights.
    weight: Vec<Vec<u64>>,
    capacity: Vec<PoolCapacity>,
    /// Measured RTT (ms) of each endpoint from this node (`latency` only).
    node_rtt: Vec<Vec<Option<f64>>>,
}

impl ServiceState {
    fn read(inputs: &PolicyInputs, service: &ServiceDef) -> ServiceState {
        let weighted = service.policy == PolicyKind::Weighted;
        let pools = || service.pools.iter().map(|&p| &inputs.pools[p]);
        let serving: Vec<Vec<Serving>> = service
            .pools
            .iter()
            .map(|&p| {
                (0..inputs.pools[p].endpoints.len())
                    .map(|e| (inputs.serving)(p, e))
                    .collect()
            })
            .collect();
        // Primary weight: pool × endpoint for `weighted`, endpoint alone otherwise.
        let primary: Vec<Vec<u64>> = pools()
            .map(|p| {
                let pw = if weighted { u64::from(p.weight) } else { 1 };
                p.endpoints
                    .iter()
                    .map(|e| pw * u64::from(e.weight))
                    .collect()
            })
            .collect();
        let standby: Vec<Vec<u64>> = pools()
            .zip(&primary)
            .map(|(p, prim)| {
                let pw = if weighted {
                    u64::from(p.weight.max(1))
                } else {
                    1
                };
                p.endpoints
                    .iter()
                    .zip(prim)
                    .map(|(e, &w)| {
                        if w == 0 {
                            pw * u64::from(e.weight.max(1))
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        let up = |w: &Vec<Vec<u64>>| {
            w.iter()
                .zip(&serving)
                .any(|(ws, ss)| ws.iter().zip(ss).any(|(&w, &s)| w > 0 && s == Serving::Up))
        };
        let any_primary = primary.iter().flatten().any(|&w| w > 0);
        let (tier, weight) = if up(&primary) {
            (Tier::Primary, primary)
        } else if up(&standby) {
            (Tier::Standby, standby)
        } else {
            (Tier::Fallback, if any_primary { primary } else { standby })
        };
        let capacity = pools()
            .zip(&weight)
            .zip(&serving)
            .map(|((p, ws), ss)| {
                let mut c = PoolCapacity::default();
                for ((e, &w), &s) in p.endpoints.iter().zip(ws).zip(ss) {
                    if w > 0 {
                        let cap = u64::from(e.capacity.max(1));
                        c.total += cap;
                        c.healthy += if s == Serving::Up { cap } else { 0 };
                    }
                }
                c
            })
            .collect();
        let withdrawn = serving
            .iter()
            .flatten()
            .filter(|&&s| s != Serving::Up)
            .count();
        let mut state = ServiceState {
            tier,
            withdrawn,
            serving,
            weight,
            capacity,
            node_rtt: Vec::new(),
        };
        if service.policy == PolicyKind::Latency && tier != Tier::Fallback {
            state.node_rtt = state.measure(inputs, service, inputs.node_region);
        }
        state
    }

    /// Every place's shares, and the service's pool loads: spill per place, then the capacity
    /// bound across places when the service is bounded and `demand` is known. `None` per place
    /// when the shares are not spill's (`weighted`, the fallback): `decide` works them out.
    fn shares(
        &self,
        inputs: &PolicyInputs,
        service: &ServiceDef,
        places: &[Ranking],
        demand: bool,
    ) -> (Vec<Option<Shares>>, Vec<PoolLoad>) {
        if self.tier == Tier::Fallback || service.policy == PolicyKind::Weighted {
            return (places.iter().map(|_| None).collect(), Vec::new());
        }
        let of = service.overprovisioning;
        let slots: Vec<Vec<usize>> = places
            .iter()
            .map(|p| p.ranked.iter().map(|r| slot_of(service, r.pool)).collect())
            .collect();
        let local: Vec<Vec<f64>> = places
            .iter()
            .zip(&slots)
            .map(|(p, s)| {
                let caps: Vec<PoolCapacity> = s.iter().map(|&i| self.capacity[i]).collect();
                spill::shares(&caps, &p.levels, of)
            })
            .collect();
        if !(demand && service.spill_bounded) {
            let out = local
                .into_iter()
                .map(|l| {
                    Some(Shares {
                        asked: l.clone(),
                        share: l,
                    })
                })
                .collect();
            return (out, Vec::new());
        }
        let healthy: Vec<PoolCapacity> = self
            .capacity
            .iter()
            .map(|c| PoolCapacity {
                total: c.total,
                healthy: c.total,
            })
            .collect();
        let baseline: Vec<Vec<f64>> = places
            .iter()
            .zip(&slots)
            .map(|(p, s)| {
                let caps: Vec<PoolCapacity> = s.iter().map(|&i| healthy[i]).collect();
                spill::shares(&caps, &p.levels, of)
            })
            .collect();
        let mut bounded: Vec<PlaceShares> = places
            .iter()
            .enumerate()
            .map(|(j, p)| PlaceShares {
                demand: p.demand,
                slots: &slots[j],
                levels: &p.levels,
                baseline: &baseline[j],
                shares: local[j].clone(),
            })
            .collect();
        let max_share: Vec<Option<f64>> = service
            .pools
            .iter()
            .map(|&p| inputs.pools[p].max_share)
            .collect();
        let loads = bound::bound(&mut bounded, &self.capacity, &max_share, of);
        let out = bounded
            .into_iter()
            .zip(local)
            .map(|(b, asked)| {
                Some(Shares {
                    asked,
                    share: b.shares,
                })
            })
            .collect();
        (out, loads)
    }

    /// Whether an endpoint is drawn from in the tier: in it, and serving (fallback ignores health).
    fn usable(&self, i: usize, e: usize) -> bool {
        self.weight[i][e] > 0 && (self.tier == Tier::Fallback || self.serving[i][e] == Serving::Up)
    }

    /// Measured RTT (ms) of every usable endpoint from `vantage`.
    fn measure(
        &self,
        inputs: &PolicyInputs,
        service: &ServiceDef,
        vantage: usize,
    ) -> Vec<Vec<Option<f64>>> {
        service
            .pools
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                (0..self.serving[i].len())
                    .map(|e| {
                        if !self.usable(i, e) {
                            return None;
                        }
                        (inputs.rtt)(vantage, p, e, service.percentile)
                            .map(|d| d.as_secs_f64() * 1000.0)
                    })
                    .collect()
            })
            .collect()
    }

    /// The decision for one client (a region, or a class of places ranked at `at`) from a
    /// ranking and its levels.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        inputs: &PolicyInputs,
        service: &ServiceDef,
        client_region: Option<usize>,
        at: Option<(f64, f64, f64)>,
        place: Ranking,
        computed: Option<Shares>,
        hysteresis: Vec<Hysteresis>,
        vantage: Option<usize>,
    ) -> Decision {
        let Ranking { ranked, levels, .. } = place;
        let slots: Vec<usize> = ranked.iter().map(|r| slot_of(service, r.pool)).collect();
        let of = service.overprovisioning;

        let (answer, shares) = match (self.tier, service.policy, &service.fallback) {
            (Tier::Fallback, _, Fallback::Addresses { ipv4, ipv6 }) => (
                Answer::Addresses {
                    ipv4: ipv4.clone(),
                    ipv6: ipv6.clone(),
                },
                vec![0.0; ranked.len()],
            ),
            (Tier::Fallback, _, Fallback::Cname(target)) => {
                (Answer::Cname(target.clone()), vec![0.0; ranked.len()])
            }
            (Tier::Fallback, _, Fallback::All) | (_, PolicyKind::Weighted, _) => {
                let choice = self.choice(service, u32::MAX, 0..service.pools.len());
                let total = choice.cumulative.last().copied().unwrap_or(0).max(1) as f64;
                let shares = slots
                    .iter()
                    .map(|&i| self.usable_weight(i) as f64 / total)
                    .collect();
                (Answer::Endpoints(vec![choice]), shares)
            }
            _ => {
                let shares = match &computed {
                    Some(c) => c.share.clone(),
                    None => {
                        let caps: Vec<PoolCapacity> =
                            slots.iter().map(|&i| self.capacity[i]).collect();
                        spill::shares(&caps, &levels, of)
                    }
                };
                let mut cumulative = 0.0;
                let mut choices = Vec::new();
                for (&i, &share) in slots.iter().zip(&shares) {
                    if share > 0.0 {
                        cumulative += share;
                        let threshold =
                            (cumulative * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
                        choices.push(self.choice(service, threshold, i..i + 1));
                    }
                }
                (Answer::Endpoints(choices), shares)
            }
        };

        let spilled = service.policy != PolicyKind::Weighted
            && self.tier != Tier::Fallback
            && shares
                .iter()
                .zip(&levels)
                .filter(|&(_, &l)| l == 0)
                .map(|(s, _)| s)
                .sum::<f64>()
                < 1.0 - 1e-9;
        let degraded = self.withdrawn > 0 || self.tier != Tier::Primary || spilled;
        let pools = ranked
            .iter()
            .zip(&slots)
            .zip(&levels)
            .zip(&shares)
            .enumerate()
            .map(|(k, (((r, &i), &level), &share))| {
                let asked = computed.as_ref().map_or(share, |c| c.asked[k]);
                self.explain_pool(inputs, *r, i, level, (share, asked), of)
            })
            .collect();
        let leader = match self.tier {
            Tier::Fallback => None,
            _ => ranked
                .iter()
                .zip(&slots)
                .find(|(_, i)| self.capacity[**i].healthy > 0)
                .map(|(r, _)| r.pool),
        };
        Decision {
            answer,
            ttl: if degraded {
                service.failover_ttl
            } else {
                service.ttl
            },
            degraded,
            answers: service.answers,
            explanation: Explanation {
                policy: service.policy,
                client_region,
                at,
                tier: self.tier,
                withdrawn: self.withdrawn,
                leader,
                hysteresis,
                vantage,
                pools,
            },
        }
    }

    /// A choice over the usable endpoints of the service's pools at `slots`.
    fn choice(
        &self,
        service: &ServiceDef,
        threshold: u32,
        slots: std::ops::Range<usize>,
    ) -> PoolChoice {
        let mut choice = PoolChoice {
            threshold,
            endpoints: Vec::new(),
            cumulative: Vec::new(),
        };
        let mut sum = 0u64;
        for i in slots {
            for e in 0..self.weight[i].len() {
                if self.usable(i, e) {
                    sum += self.weight[i][e];
                    choice.endpoints.push(EndpointRef {
                        pool: service.pools[i] as u32,
                        endpoint: e as u32,
                    });
                    choice.cumulative.push(sum);
                }
            }
        }
        choice
    }

    fn usable_weight(&self, i: usize) -> u64 {
        (0..self.weight[i].len())
            .filter(|&e| self.usable(i, e))
            .map(|e| self.weight[i][e])
            .sum()
    }

    #[allow(clippy::too_many_arguments)]
    fn explain_pool(
        &self,
        inputs: &PolicyInputs,
        ranked: RankedPool,
        i: usize,
        level: usize,
        (share, asked): (f64, f64),
        of: f64,
    ) -> PoolExplanation {
        let rtts = match ranked.reason {
            RankReason::EstimatedRtt { .. } => self.node_rtt.get(i),
            _ => None,
        };
        let defs = &inputs.pools[ranked.pool].endpoints;
        PoolExplanation {
            ranked,
            level,
            healthy_fraction: self.capacity[i].healthy_fraction(),
            keep: self.capacity[i].keep(of),
            spare: self.capacity[i].spare(of),
            share,
            asked,
            endpoints: (0..defs.len())
                .map(|e| EndpointExplanation {
                    endpoint: e,
                    serving: self.serving[i][e],
                    weight: self.weight[i][e],
                    capacity: defs[e].capacity,
                    rtt_ms: rtts.and_then(|r| r[e]),
                })
                .collect(),
        }
    }
}

/// The key a pool's published excess is kept under for the next build's hysteresis: its name
/// from this node's vantage, `name@region` from another.
fn excess_key(inputs: &PolicyInputs, vantage: usize, pool: &str) -> String {
    if vantage == inputs.node_region {
        pool.to_string()
    } else {
        format!("{pool}@{}", inputs.regions[vantage].name)
    }
}

/// The position of `pool` (a model pool index) among `service`'s pools.
fn slot_of(service: &ServiceDef, pool: usize) -> usize {
    service
        .pools
        .iter()
        .position(|&p| p == pool)
        .expect("ranked pool belongs to the service")
}

/// FNV-1a over the answers of every decision, row by row (see [`Tables::fingerprint`]).
fn fingerprint(rows: &[Row], decisions: &[Decision]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for r in rows {
        eat(r.len as u64);
        for d in &decisions[r.start..r.start + r.len] {
            eat(u64::from(d.ttl));
            match &d.answer {
                Answer::Endpoints(choices) => {
                    for c in choices {
                        eat(u64::from(c.threshold));
                        for (e, w) in c.endpoints.iter().zip(&c.cumulative) {
                            eat(u64::from(e.pool) << 32 | u64::from(e.endpoint));
                            eat(*w);
                        }
                    }
                }
                Answer::Addresses { ipv4, ipv6 } => {
                    ipv4.iter().for_each(|a| eat(u64::from(u32::from(*a))));
                    ipv6.iter().for_each(|a| eat(u128::from(*a) as u64));
                }
                Answer::Cname(t) => t.bytes().for_each(|b| eat(u64::from(b))),
            }
        }
    }
    h
}

/// Mean of the measured values, `None` when there are none.
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .flatten()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}
