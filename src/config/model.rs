//! The policy engine's view of the world: regions, pools, endpoints, services.
//!
//! These are plain, validated data (built by `config` from the TOML), indexed by position so that
//! decision tables can refer to them with small integers. Nothing here does I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A region clients are mapped to and pools live in.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    /// Latitude and longitude in degrees, for distance estimates.
    pub lat: f64,
    pub lon: f64,
    /// Regions to fall back to, in order, when this region's pools cannot serve (`geo` policy).
    pub fallback: Vec<usize>,
}

/// An endpoint's position among all endpoints of a compiled configuration, pool after pool in
/// configuration order: fixed when the configuration is compiled, and the index of every
/// per-endpoint view (health, latency) the decision tables are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EndpointId(pub u32);

impl EndpointId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Which compiled configuration a set of [`EndpointId`]s belongs to: a serial taken each time a
/// configuration is compiled, unique within the process. Two reloads number their endpoints
/// independently, so a per-endpoint view is only read by id against the model of its own
/// layout. `Layout(0)` (the default) is no compiled configuration: a hand-built model, or the
/// empty view that counts every endpoint as up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layout(pub u64);

impl Layout {
    /// A serial no configuration compiled in this process has had yet.
    pub fn next() -> Layout {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Layout(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// One endpoint of a pool: what is answered for it, how it shares traffic, and what probes it.
/// The one description of an endpoint: validation builds it, the policy engine, the answer
/// data and the health monitor all read it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its position among all endpoints (see [`EndpointId`]).
    pub id: EndpointId,
    /// Unique name (across all pools): the key operators use for health, latency and overrides.
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// A hostname answered as a CNAME (CDN origin steering), fully qualified, lowercase.
    pub hostname: Option<String>,
    /// Relative share of traffic within its pool; 0 = standby (used only when no endpoint with a
    /// positive weight can serve).
    pub weight: u32,
    /// Relative capacity, for graded failover (defaults to the weight, or 1 for standby).
    pub capacity: u32,
    /// Address probed: `check_address` if set, else an answered address; `None` only for a
    /// hostname endpoint without checks.
    pub check_address: Option<std::net::IpAddr>,
    /// Every check it runs: its pool's, then its own.
    pub checks: Vec<std::sync::Arc<super::health::Check>>,
}

/// A pool of endpoints in one region.
#[derive(Debug, Clone)]
pub struct PoolDef {
    pub name: String,
    /// Index into the regions.
    pub region: usize,
    /// Pool weight for the `weighted` policy (multiplies endpoint weights); 0 = standby pool.
    pub weight: u32,
    /// Shared with the configuration's pool (`config::Pool`): compiled once.
    pub endpoints: std::sync::Arc<[Endpoint]>,
    /// Where the pool is, latitude and longitude in degrees (default: its region's location):
    /// what `nearest` and `latency` measure client distances to.
    pub lat: f64,
    pub lon: f64,
    /// Most share of a service's traffic spill may bring the pool to (`None`: sized from its
    /// baseline load, see the policy engine's `bound` module).
    pub max_share: Option<f64>,
}

/// How a service chooses among its pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Pools in priority order; the first with healthy capacity serves (graded spill).
    Failover,
    /// Weighted random over healthy endpoints of all pools.
    Weighted,
    /// Client region → that region's pools, then the region's fallback chain.
    Geo,
    /// Pools ranked by expected round-trip time from the client's region.
    Latency,
    /// Pools ranked by great-circle distance from the client's region.
    Nearest,
}

/// What to answer when no endpoint of a service can serve.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
    /// Every endpoint, healthy or not (fail open).
    All,
    /// These addresses.
    Addresses {
        ipv4: Vec<Ipv4Addr>,
        ipv6: Vec<Ipv6Addr>,
    },
    /// A CNAME to this name (fully qualified, lowercase).
    Cname(String),
}

/// Which latency percentile ranks pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
}

/// A dynamic name answered by the policy engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// Fully qualified, lowercase, e.g. "www.example.com.".
    pub name: String,
    pub policy: PolicyKind,
    /// Indexes into the pools, in configured order (priority order for `failover`).
    pub pools: Vec<usize>,
    /// Most endpoints in one answer (multi-value), at least 1.
    pub answers: usize,
    /// TTL of answers while everything is healthy.
    pub ttl: u32,
    /// TTL while the service is degraded (an endpoint withdrawn, a spill, or a fallback).
    pub failover_ttl: u32,
    pub fallback: Fallback,
    /// Share a pool keeps is min(1, healthy fraction × this); default 1.4.
    pub overprovisioning: f64,
    pub percentile: Percentile,
    /// Switching the best pool needs the new one to be better by this fraction (e.g. 0.2)...
    pub hysteresis_ratio: f64,
    /// ...and by at least this many milliseconds.
    pub hysteresis_ms: f64,
    /// Locate clients by their EDNS Client Subnet when present (else by source address).
    pub use_ecs: bool,
    /// Near-ties (`nearest`, `latency`): pools whose distance from the client is within
    /// `max(tie_km, tie_ratio × nearest distance) + tie_radius × accuracy radius` of a level's
    /// first pool join its level and share its traffic by capacity.
    pub tie_km: f64,
    pub tie_ratio: f64,
    pub tie_radius: f64,
    /// Bound spill by the receiving pools' capacity across all client places
    /// (the policy engine's `bound` module), when demand is known. `spill = "bounded"` (default) or
    /// `"unbounded"`.
    pub spill_bounded: bool,
}
