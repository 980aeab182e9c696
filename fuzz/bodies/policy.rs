//! The policy engine over arbitrary worlds: regions, pools, endpoints and services of every
//! policy (as the configuration compiler could produce them: weights up to the largest it
//! accepts, capacities of any `u32`, locations in range, a pool listed by several services), health of
//! every endpoint, latency from every vantage, demand, and a second build over the first one
//! (hysteresis, reused geometries) with other health and latency.
//!
//! Held to, for every decision of every service (per region, per class of places, and at
//! places drawn from the input):
//! - no panic;
//! - a decision is never empty: its pool choices each have endpoints, with positive, rising
//!   cumulative weights, and every endpoint belongs to one of the service's pools;
//! - when any endpoint of the service's pools serves, only serving endpoints are answered, from
//!   the positive-weight tier while one of those serves, else from the standby tier; when none
//!   serves, the configured fallback answers (every endpoint, the addresses or the CNAME);
//! - a draw gives `min(answers, endpoints of the chosen pool)` distinct endpoints of a choice;
//! - the TTL is `failover_ttl` exactly when the decision is degraded;
//! - shares and loads are finite numbers in 0..=1, and the shares of a ranked decision sum to 1;
//! - the same inputs build the same tables (fingerprint).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use meridian::config::model::{
    Endpoint, Fallback, Percentile, PolicyKind, PoolDef, Region, ServiceDef,
};
use meridian::config::pools::MAX_WEIGHT;
use meridian::policy::{
    Answer, Cell, Decision, Demand, EndpointRef, MAX_ANSWERS, Place, PolicyInputs, Serving, Tables,
    Tier, build_tables,
};

use super::Bytes;

/// A world read from the input.
pub struct World {
    pub regions: Vec<Region>,
    pub pools: Vec<PoolDef>,
    pub services: Vec<ServiceDef>,
    pub node_region: usize,
    pub vantages: Vec<usize>,
    pub demand: Option<Demand>,
}

/// Health and latency: `serving[pool][endpoint]`, `rtt[vantage][pool][endpoint]` in ms.
pub struct State {
    pub serving: Vec<Vec<Serving>>,
    pub rtt: Vec<Vec<Vec<Option<f64>>>>,
}

/// Weights as the configuration accepts them: 0 (standby) to `config::pools::MAX_WEIGHT`.
const WEIGHTS: [u32; 8] = [0, 1, 1, 2, 3, 100, 65_535, MAX_WEIGHT];
const CAPACITIES: [u32; 6] = [0, 1, 2, 5, 1000, u32::MAX];
const POLICIES: [PolicyKind; 5] = [
    PolicyKind::Failover,
    PolicyKind::Weighted,
    PolicyKind::Geo,
    PolicyKind::Nearest,
    PolicyKind::Latency,
];

fn location(b: &mut Bytes) -> (f64, f64) {
    (b.range(-90.0, 90.0), b.range(-180.0, 180.0))
}

impl World {
    pub fn read(b: &mut Bytes) -> World {
        let nregions = 1 + b.below(5);
        let regions: Vec<Region> = (0..nregions)
            .map(|i| {
                let (lat, lon) = location(b);
                let fallback = (0..b.below(4)).map(|_| b.below(nregions)).collect();
                Region {
                    name: format!("r{i}"),
                    lat,
                    lon,
                    fallback,
                }
            })
            .collect();
        let npools = 1 + b.below(6);
        let mut next_id = 0;
        let pools: Vec<PoolDef> = (0..npools)
            .map(|i| {
                let region = b.below(nregions);
                let (lat, lon) = if b.bool() {
                    (regions[region].lat, regions[region].lon)
                } else {
                    location(b)
                };
                let endpoints = (0..1 + b.below(5))
                    .map(|e| {
                        let weight = b.pick(&WEIGHTS);
                        let capacity = match b.u8() % 3 {
                            0 => weight.max(1),
                            _ => b.pick(&CAPACITIES),
                        };
                        next_id += 1;
                        Endpoint {
                            id: meridian::config::model::EndpointId(next_id - 1),
                            name: format!("p{i}-{e}"),
                            ipv4: Some(Ipv4Addr::new(10, i as u8, 0, e as u8)),
                            ipv6: None,
                            hostname: None,
                            weight,
                            capacity,
                            check_address: None,
                            checks: Vec::new(),
                        }
                    })
                    .collect();
                let max_share = match b.u8() % 4 {
                    0 => Some(b.range(0.0, 1.0).max(1e-3)),
                    _ => None,
                };
                PoolDef {
                    name: format!("p{i}"),
                    region,
                    weight: b.pick(&WEIGHTS),
                    endpoints,
                    lat,
                    lon,
                    max_share,
                }
            })
            .collect();
        let services = (0..1 + b.below(4))
            .map(|i| {
                let policy = b.pick(&POLICIES);
                // Distinct, in an order from the input (the configuration refuses a pool listed
                // twice by one service).
                let mut pools: Vec<usize> = Vec::new();
                for _ in 0..1 + b.below(5) {
                    let p = b.below(npools);
                    if !pools.contains(&p) {
                        pools.push(p);
                    }
                }
                let fallback = match b.u8() % 4 {
                    0 => Fallback::Addresses {
                        ipv4: vec![Ipv4Addr::new(192, 0, 2, 1)],
                        ipv6: if b.bool() {
                            vec![Ipv6Addr::LOCALHOST]
                        } else {
                            Vec::new()
                        },
                    },
                    1 => Fallback::Cname("fallback.example.".into()),
                    _ => Fallback::All,
                };
                ServiceDef {
                    name: format!("s{i}.example."),
                    policy,
                    pools,
                    answers: 1 + b.below(8),
                    ttl: 30,
                    failover_ttl: 5,
                    fallback,
                    overprovisioning: b.range(1.0, 10.0),
                    percentile: if b.bool() {
                        Percentile::P50
                    } else {
                        Percentile::P90
                    },
                    hysteresis_ratio: b.range(0.0, 1.0),
                    hysteresis_ms: b.range(0.0, 100.0),
                    use_ecs: true,
                    tie_km: b.range(0.0, 5000.0),
                    tie_ratio: b.range(0.0, 1.0),
                    tie_radius: b.range(0.0, 2.0),
                    spill_bounded: b.bool(),
                }
            })
            .collect();
        let node_region = b.below(nregions);
        let vantages = (0..b.below(3)).map(|_| b.below(nregions)).collect();
        let demand = b.bool().then(|| read_demand(b, nregions));
        World {
            regions,
            pools,
            services,
            node_region,
            vantages,
            demand,
        }
    }

    /// Health and latency of this world read from the input.
    pub fn read_state(&self, b: &mut Bytes) -> State {
        let serving = self
            .pools
            .iter()
            .map(|p| {
                p.endpoints
                    .iter()
                    .map(|_| match b.u8() % 4 {
                        0 => Serving::Down,
                        1 => Serving::Drained,
                        _ => Serving::Up,
                    })
                    .collect()
            })
            .collect();
        let rtt = self
            .regions
            .iter()
            .map(|_| {
                self.pools
                    .iter()
                    .map(|p| {
                        p.endpoints
                            .iter()
                            .map(|_| match b.u8() % 4 {
                                0 => None,
                                1 => Some(0.0),
                                2 => Some(b.range(0.0, 400.0)),
                                _ => Some(b.u16() as f64 * 10.0),
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        State { serving, rtt }
    }

    /// Build the tables for `state` over `previous`, twice, and check both agree.
    pub fn build(&self, state: &State, previous: Option<&Tables>) -> Tables {
        let serving = |p: usize, e: usize| state.serving[p][e];
        let rtt = |v: usize, p: usize, e: usize, pct: Percentile| {
            let ms = state.rtt.get(v)?.get(p)?.get(e).copied().flatten()?;
            let ms = if pct == Percentile::P90 { 2.0 * ms } else { ms };
            Some(Duration::from_secs_f64(ms / 1000.0))
        };
        let inputs = PolicyInputs {
            regions: &self.regions,
            pools: &self.pools,
            services: &self.services,
            serving: &serving,
            rtt: &rtt,
            node_region: self.node_region,
            vantages: &self.vantages,
            demand: self.demand.as_ref(),
        };
        let tables = build_tables(&inputs, previous);
        let again = build_tables(&inputs, previous);
        assert_eq!(
            tables.fingerprint(),
            again.fingerprint(),
            "the same inputs built different tables"
        );
        tables
    }
}

/// Demand as `snapshot::demand` lays it out: cells sorted by cell and region without repeats,
/// per-region unplaced weight, per-region totals.
fn read_demand(b: &mut Bytes, nregions: usize) -> Demand {
    let weights = [0.5, 1.0, 7.0, 1000.0, 1e9];
    let mut cells: Vec<(u32, u32, f64)> = (0..b.below(8))
        .map(|_| {
            let (lat, lon) = location(b);
            let radius = b.pick(&[1.0, 100.0, 300.0, 1000.0]);
            let cell = Cell::of(lat, lon, radius).index() as u32;
            (cell, b.below(nregions) as u32, b.pick(&weights))
        })
        .collect();
    cells.sort_by_key(|c| (c.0, c.1));
    cells.dedup_by(|b, a| {
        if (a.0, a.1) == (b.0, b.1) {
            a.2 += b.2;
            true
        } else {
            false
        }
    });
    let unplaced: Vec<f64> = (0..nregions)
        .map(|_| if b.bool() { b.pick(&weights) } else { 0.0 })
        .collect();
    let mut by_region = unplaced.clone();
    for c in &cells {
        by_region[c.1 as usize] += c.2;
    }
    Demand {
        cells,
        unplaced,
        by_region,
    }
}

pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let world = World::read(&mut b);
    let first = world.read_state(&mut b);
    let tables = world.build(&first, None);
    let places = read_places(&mut b, &world);
    check_tables(&world, &first, &tables, &places);
    // Health and latency change; the next build starts from this one.
    let second = world.read_state(&mut b);
    let next = world.build(&second, Some(&tables));
    check_tables(&world, &second, &next, &places);
}

fn read_places(b: &mut Bytes, world: &World) -> Vec<Place> {
    (0..b.below(6))
        .map(|_| {
            let (lat, lon) = location(b);
            let radius = b.pick(&[0.0, 20.0, 100.0, 250.0, 1000.0]);
            Place {
                region: b.below(world.regions.len()),
                cell: Some(Cell::of(lat, lon, radius)),
            }
        })
        .collect()
}

/// Every decision of `tables` holds the invariants of the module's documentation.
pub fn check_tables(world: &World, state: &State, tables: &Tables, places: &[Place]) {
    assert_eq!(tables.services(), world.services.len());
    assert_eq!(tables.regions(), world.regions.len());
    for (s, svc) in world.services.iter().enumerate() {
        let facts = Facts::of(world, state, svc);
        for d in tables.decisions(s) {
            check_decision(world, svc, &facts, d);
        }
        for r in 0..world.regions.len() {
            check_decision(world, svc, &facts, tables.decision(s, r));
        }
        for &p in places {
            check_decision(world, svc, &facts, tables.decision_at(s, p));
        }
        for l in tables.loads(s) {
            for v in [l.baseline, l.load, l.unbounded] {
                assert!(
                    v.is_finite() && (-1e-9..=1.0 + 1e-9).contains(&v),
                    "service {s}: pool load {l:?}"
                );
            }
            if let Some(budget) = l.budget {
                assert!(budget.is_finite() && budget >= 0.0, "budget {l:?}");
            }
        }
    }
}

/// What a service's endpoints' health says its answers may hold.
struct Facts {
    /// (pool, endpoint) of every endpoint of the service's pools.
    members: HashSet<(u32, u32)>,
    /// Those that serve.
    up: HashSet<(u32, u32)>,
    /// Some positive-weight endpoint serves.
    primary_up: bool,
    /// Some standby (zero-weight) endpoint serves.
    standby_up: bool,
}

impl Facts {
    fn of(world: &World, state: &State, svc: &ServiceDef) -> Facts {
        let mut f = Facts {
            members: HashSet::new(),
            up: HashSet::new(),
            primary_up: false,
            standby_up: false,
        };
        for &p in &svc.pools {
            for e in 0..world.pools[p].endpoints.len() {
                f.members.insert((p as u32, e as u32));
                if state.serving[p][e] == Serving::Up {
                    f.up.insert((p as u32, e as u32));
                    if positive(world, svc, p, e) {
                        f.primary_up = true;
                    } else {
                        f.standby_up = true;
                    }
                }
            }
        }
        f
    }
}

/// Whether the endpoint is in the positive-weight tier (pool × endpoint weight for `weighted`).
fn positive(world: &World, svc: &ServiceDef, p: usize, e: usize) -> bool {
    let pool = &world.pools[p];
    let w = pool.endpoints[e].weight;
    w > 0 && (svc.policy != PolicyKind::Weighted || pool.weight > 0)
}

fn check_decision(world: &World, svc: &ServiceDef, facts: &Facts, d: &Decision) {
    let any_up = facts.primary_up || facts.standby_up;
    let what = || format!("service {} ({:?}): {:?}", svc.name, svc.policy, d.answer);
    assert_eq!(d.answers, svc.answers, "{}", what());
    assert_eq!(
        d.ttl,
        if d.degraded {
            svc.failover_ttl
        } else {
            svc.ttl
        },
        "{}",
        what()
    );
    match (&d.answer, any_up, &svc.fallback) {
        (Answer::Endpoints(choices), _, _) if any_up || svc.fallback == Fallback::All => {
            assert!(!choices.is_empty(), "an empty decision: {}", what());
            let mut below = 0u32;
            for c in choices {
                assert!(!c.endpoints.is_empty(), "an empty pool choice: {}", what());
                assert_eq!(c.endpoints.len(), c.cumulative.len(), "{}", what());
                assert!(c.threshold >= below, "thresholds fall: {}", what());
                below = c.threshold;
                let mut sum = 0;
                for (e, &cum) in c.endpoints.iter().zip(&c.cumulative) {
                    assert!(cum > sum, "a weight of 0 or less: {}", what());
                    sum = cum;
                    assert!(
                        facts.members.contains(&(e.pool, e.endpoint)),
                        "endpoint {e:?} is not the service's: {}",
                        what()
                    );
                    let (p, i) = (e.pool as usize, e.endpoint as usize);
                    if any_up {
                        assert!(
                            facts.up.contains(&(e.pool, e.endpoint)),
                            "a withdrawn endpoint {e:?} answered while another serves: {}",
                            what()
                        );
                        assert_eq!(
                            positive(world, svc, p, i),
                            facts.primary_up,
                            "endpoint {e:?} of the wrong tier: {}",
                            what()
                        );
                    }
                }
            }
            check_draws(svc, choices, d);
        }
        (Answer::Addresses { ipv4, ipv6 }, false, Fallback::Addresses { ipv4: a, ipv6: b }) => {
            assert_eq!((ipv4, ipv6), (a, b), "{}", what());
        }
        (Answer::Cname(t), false, Fallback::Cname(c)) => assert_eq!(t, c, "{}", what()),
        _ => panic!(
            "the answer does not follow health (any serving: {any_up}, fallback {:?}): {}",
            svc.fallback,
            what()
        ),
    }
    let ranked =
        any_up && svc.policy != PolicyKind::Weighted && d.explanation.tier != Tier::Fallback;
    let mut total = 0.0;
    for p in &d.explanation.pools {
        for v in [p.share, p.asked, p.keep, p.healthy_fraction] {
            assert!(
                v.is_finite() && (-1e-9..=1.0 + 1e-9).contains(&v),
                "a share, keep or fraction of {v}: {}",
                what()
            );
        }
        total += p.share;
    }
    if ranked {
        assert!(
            (total - 1.0).abs() < 1e-6,
            "shares sum to {total}: {}",
            what()
        );
    }
}

/// Draws from the decision: distinct endpoints of one choice, as many as asked and held.
fn check_draws(svc: &ServiceDef, choices: &[meridian::policy::PoolChoice], d: &Decision) {
    let mut out = [EndpointRef::default(); MAX_ANSWERS];
    let mut random = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..8 {
        random = random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = d.pick(random, svc.answers, &mut out);
        let got = &out[..n];
        let choice = choices
            .iter()
            .find(|c| got.first().is_some_and(|e| c.endpoints.contains(e)))
            .unwrap_or_else(|| panic!("drew {got:?} from no choice of {choices:?}"));
        assert_eq!(
            n,
            svc.answers.min(MAX_ANSWERS).min(choice.endpoints.len()),
            "drew {got:?} from {choice:?}"
        );
        for (i, e) in got.iter().enumerate() {
            assert!(
                choice.endpoints.contains(e),
                "drew {e:?} outside {choice:?}"
            );
            assert!(!got[..i].contains(e), "drew {e:?} twice: {got:?}");
        }
    }
}
