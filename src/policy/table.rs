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

use super::explain::{EndpointExplanation, Explanation, PoolExplanation, Tier};
use super::pick::{EndpointRef, MAX_ANSWERS, pick};
use super::rank::{self, PoolLatency, RankReason, RankedPool};
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

/// Decisions for every service × client region, indexed by position in the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    regions: usize,
    decisions: Vec<Decision>,
    /// Per service: whether any client region's answer differs from another's.
    varies: Vec<bool>,
    /// Per service: whether any client region's leading pool keeps less than all its traffic.
    spills: Vec<bool>,
    service_names: Vec<String>,
    region_names: Vec<String>,
    pool_names: Vec<String>,
}

impl Tables {
    /// The decision for `service` and `client_region` (indexes into the model the tables were
    /// built from). Panics when out of range.
    #[inline]
    pub fn decision(&self, service: usize, client_region: usize) -> &Decision {
        &self.decisions[service * self.regions + client_region]
    }

    /// Whether the answer for `service` depends on the client's region at all. When it does not
    /// (`failover`, `weighted`, a fallback, or regions that happen to agree), the answer's ECS
    /// scope can be 0 so that resolvers cache one answer for everyone.
    pub fn varies_by_region(&self, service: usize) -> bool {
        self.varies[service]
    }

    /// Whether, for some client region, part of the traffic spills away from its leading pool
    /// (for metrics when the client was not located because every region gets the same answer).
    pub fn any_region_spills(&self, service: usize) -> bool {
        self.spills[service]
    }

    /// Number of services.
    pub fn services(&self) -> usize {
        self.service_names.len()
    }

    /// Number of client regions.
    pub fn regions(&self) -> usize {
        self.regions
    }

    /// The name of the pool that led `service` for `client_region`, by names.
    fn leader(&self, service: &str, region: &str) -> Option<&str> {
        let s = self.service_names.iter().position(|n| n == service)?;
        let r = self.region_names.iter().position(|n| n == region)?;
        let d = self.decision(s, r);
        if d.explanation.policy != PolicyKind::Latency {
            return None;
        }
        d.explanation.leader.map(|p| self.pool_names[p].as_str())
    }
}

/// Builds the decision tables (off the query path). `previous` supplies the incumbents for
/// latency hysteresis; `None` on the first build.
pub fn build_tables(inputs: &PolicyInputs, previous: Option<&Tables>) -> Tables {
    let pool_index: HashMap<&str, usize> = inputs
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut decisions = Vec::with_capacity(inputs.services.len() * inputs.regions.len());
    for service in inputs.services {
        let state = ServiceState::read(inputs, service);
        for client in 0..inputs.regions.len() {
            let incumbent = previous
                .and_then(|t| t.leader(&service.name, &inputs.regions[client].name))
                .and_then(|name| pool_index.get(name).copied());
            decisions.push(state.decide(inputs, service, client, incumbent));
        }
    }
    let regions = inputs.regions.len();
    let varies = (0..inputs.services.len())
        .map(|s| {
            let row = &decisions[s * regions..(s + 1) * regions];
            row.iter().any(|d| d.answer != row[0].answer)
        })
        .collect();
    let spills = (0..inputs.services.len())
        .map(|s| {
            decisions[s * regions..(s + 1) * regions]
                .iter()
                .any(Decision::spills)
        })
        .collect();
    Tables {
        regions,
        decisions,
        varies,
        spills,
        service_names: inputs.services.iter().map(|s| s.name.clone()).collect(),
        region_names: inputs.regions.iter().map(|r| r.name.clone()).collect(),
        pool_names: inputs.pools.iter().map(|p| p.name.clone()).collect(),
    }
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

    fn decide(
        &self,
        inputs: &PolicyInputs,
        service: &ServiceDef,
        client: usize,
        incumbent: Option<usize>,
    ) -> Decision {
        let latency_policy = service.policy == PolicyKind::Latency && self.tier != Tier::Fallback;
        let client_rtt = match latency_policy {
            true if client == inputs.node_region => self.node_rtt.clone(),
            true => self.measure(inputs, service, client),
            false => Vec::new(),
        };
        let latency: Vec<PoolLatency> = match latency_policy {
            true => (0..service.pools.len())
                .map(|i| PoolLatency {
                    from_client: mean(&client_rtt[i]),
                    from_node: mean(&self.node_rtt[i]),
                })
                .collect(),
            false => Vec::new(),
        };
        let slot = |pool: usize| {
            service
                .pools
                .iter()
                .position(|&p| p == pool)
                .expect("ranked pool belongs to the service")
        };
        let mut ranked = rank::rank(inputs, service, client, &latency);
        let hysteresis = match (latency_policy, incumbent) {
            (true, Some(b)) => rank::apply_hysteresis(
                &mut ranked,
                b,
                |p| self.capacity[slot(p)].healthy > 0,
                service.hysteresis_ratio,
                service.hysteresis_ms,
            ),
            _ => None,
        };
        let levels = rank::levels(&ranked);
        let slots: Vec<usize> = ranked.iter().map(|r| slot(r.pool)).collect();
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
                let caps: Vec<PoolCapacity> = slots.iter().map(|&i| self.capacity[i]).collect();
                let shares = spill::shares(&caps, &levels, of);
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
            .map(|(((r, &i), &level), &share)| {
                self.explain_pool(inputs, *r, i, level, share, of, &latency, &client_rtt)
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
                client_region: client,
                tier: self.tier,
                withdrawn: self.withdrawn,
                leader,
                hysteresis,
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
        share: f64,
        of: f64,
        latency: &[PoolLatency],
        client_rtt: &[Vec<Option<f64>>],
    ) -> PoolExplanation {
        let rtts = match ranked.reason {
            RankReason::MeasuredRtt { .. } => client_rtt.get(i),
            _ if !latency.is_empty() => self.node_rtt.get(i),
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

/// Mean of the measured values, `None` when there are none.
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .flatten()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}
