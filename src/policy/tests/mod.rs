//! Tests of the policy engine as a whole: a small world of regions, pools and services with
//! health and latency set by hand, built into tables and drawn from.

mod bounded;
mod ranking;
mod tables;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Demand, PolicyInputs, Serving, Tables, build_tables};
use crate::config::model::{
    Endpoint, Fallback, Percentile, PolicyKind, PoolDef, Region, ServiceDef,
};

/// Region indexes of [`World::new`].
pub const EU: usize = 0;
pub const US: usize = 1;
pub const AP: usize = 2;
pub const SA: usize = 3;

pub fn region(name: &str, lat: f64, lon: f64, fallback: &[usize]) -> Region {
    Region {
        name: name.into(),
        lat,
        lon,
        fallback: fallback.to_vec(),
    }
}

/// A pool of `n` endpoints of weight 1 and capacity 1.
pub fn pool(name: &str, region: usize, n: usize) -> PoolDef {
    let endpoints = (0..n)
        .map(|i| Endpoint {
            id: Default::default(),
            name: format!("{name}-{i}"),
            ipv4: Some(Ipv4Addr::new(10, region as u8, 0, i as u8)),
            ipv6: None,
            hostname: None,
            weight: 1,
            capacity: 1,
            check_address: None,
            checks: Vec::new(),
        })
        .collect();
    // Pools sit at their region's location (see World::new).
    let (lat, lon) = [(50.1, 8.7), (38.9, -77.0), (1.35, 103.8), (-23.5, -46.6)]
        .get(region)
        .copied()
        .unwrap_or((0.0, 0.0));
    PoolDef {
        name: name.into(),
        region,
        weight: 1,
        endpoints,
        lat,
        lon,
        max_share: None,
    }
}

pub fn service(name: &str, policy: PolicyKind, pools: &[usize]) -> ServiceDef {
    ServiceDef {
        name: format!("{name}.example.com."),
        policy,
        pools: pools.to_vec(),
        answers: 2,
        ttl: 30,
        failover_ttl: 5,
        fallback: Fallback::All,
        overprovisioning: 1.4,
        percentile: Percentile::P50,
        hysteresis_ratio: 0.2,
        hysteresis_ms: 10.0,
        use_ecs: true,
        tie_km: 0.0,
        tie_ratio: 0.0,
        tie_radius: 0.0,
        spill_bounded: true,
    }
}

/// Regions, pools and services plus the health and latency the closures report.
pub struct World {
    pub regions: Vec<Region>,
    pub pools: Vec<PoolDef>,
    pub services: Vec<ServiceDef>,
    /// Withdrawn endpoints by (pool, endpoint); absent = Up.
    pub health: HashMap<(usize, usize), Serving>,
    /// (vantage, pool, endpoint) → (p50, p90) in ms.
    pub rtt: HashMap<(usize, usize, usize), (f64, f64)>,
    pub node: usize,
    /// Where clients are, when the test sizes spill by it.
    pub demand: Option<Demand>,
    /// Fleet vantages with measurements besides the node's.
    pub vantages: Vec<usize>,
}

impl World {
    /// Frankfurt (falls back to us), Virginia (falls back to eu), Singapore (eu, then us), São
    /// Paulo (us; no pools of its own). Pools: eu, us, ap with 4 endpoints each. Node in eu.
    pub fn new() -> World {
        World {
            regions: vec![
                region("eu", 50.1, 8.7, &[US]),
                region("us", 38.9, -77.0, &[EU]),
                region("ap", 1.35, 103.8, &[EU, US]),
                region("sa", -23.5, -46.6, &[US]),
            ],
            pools: vec![pool("eu", EU, 4), pool("us", US, 4), pool("ap", AP, 4)],
            services: Vec::new(),
            health: HashMap::new(),
            rtt: HashMap::new(),
            node: EU,
            demand: None,
            vantages: Vec::new(),
        }
    }

    pub fn set(
        &mut self,
        pool: usize,
        endpoints: impl IntoIterator<Item = usize>,
        serving: Serving,
    ) {
        for e in endpoints {
            self.health.insert((pool, e), serving);
        }
    }

    /// Every endpoint of `pool` measures `p50` ms (p90 = twice that) from `vantage`.
    pub fn measure(&mut self, vantage: usize, pool: usize, p50: f64) {
        for e in 0..self.pools[pool].endpoints.len() {
            self.rtt.insert((vantage, pool, e), (p50, 2.0 * p50));
        }
    }

    pub fn with_inputs<T>(&self, f: impl FnOnce(&PolicyInputs) -> T) -> T {
        let serving = |p: usize, e: usize| self.health.get(&(p, e)).copied().unwrap_or(Serving::Up);
        let rtt = |v: usize, p: usize, e: usize, pct: Percentile| {
            self.rtt.get(&(v, p, e)).map(|&(p50, p90)| {
                Duration::from_secs_f64(if pct == Percentile::P50 { p50 } else { p90 } / 1000.0)
            })
        };
        let inputs = PolicyInputs {
            regions: &self.regions,
            pools: &self.pools,
            services: &self.services,
            serving: &serving,
            rtt: &rtt,
            node_region: self.node,
            vantages: &self.vantages,
            demand: self.demand.as_ref(),
        };
        f(&inputs)
    }

    pub fn build(&self, previous: Option<&Tables>) -> Tables {
        self.with_inputs(|inputs| build_tables(inputs, previous))
    }
}

/// Pools of a decision in rank order, by name.
pub fn order(world: &World, tables: &Tables, service: usize, client: usize) -> Vec<String> {
    let d = tables.decision(service, client);
    d.explanation
        .pools
        .iter()
        .map(|p| world.pools[p.ranked.pool].name.clone())
        .collect()
}

/// Shares of a decision by pool name, in rank order.
pub fn shares(world: &World, tables: &Tables, service: usize, client: usize) -> Vec<(String, f64)> {
    let d = tables.decision(service, client);
    d.explanation
        .pools
        .iter()
        .map(|p| (world.pools[p.ranked.pool].name.clone(), p.share))
        .collect()
}

pub fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}
