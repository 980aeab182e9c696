//! The policy engine: which endpoints answer a service name, for each client region.
//!
//! Meridian exists to answer a dynamic name with the best healthy endpoints for the client that
//! asked. This module turns the configured model ([`crate::config::model`]), health ([`Serving`]) and measured
//! latency into immutable decision [`Tables`], one [`Decision`] per service × client region,
//! built off the query path whenever any of those change. The query path then only looks a
//! decision up and draws from it ([`Decision::pick`]).
//!
//! Everything here is a plain function of its inputs (STYLE habit 1): no clock, no I/O, no global
//! random generator. Health and latency come in as closures in [`PolicyInputs`]; randomness comes
//! in as a `u64` per query from the worker's own [`Rng`].
//!
//! # Tour
//! - [`geometry`]: great-circle distance and the distance-based round-trip model.
//! - [`rank`]: orders a service's pools for a client region, per policy, with hysteresis.
//! - [`spill`]: graded failover: how much traffic each ranked pool keeps when capacity is lost.
//! - [`bound`]: spill bounded by the receiving pools' capacity, across all client places.
//! - [`places`]: client cells and the per-service geometries `nearest` and `latency` rank by.
//! - [`table`]: builds the decision tables, with the TTL and degraded flag.
//! - [`explain`]: the record of every candidate and why, kept with each decision.
//! - [`pick`]: the per-query draw (no allocation), and the worker's fast [`Rng`].
//!
//! # Rules in one place
//! - **Tiers.** Endpoints with a positive weight serve first (for `weighted`, the weight is pool
//!   weight × endpoint weight). Weight-0 endpoints (or, for `weighted`, weight-0 pools) are standby:
//!   they serve only when no positive-weight endpoint of the *whole service* serves, each drawn with
//!   weight `max(1, endpoint weight) × max(1, pool weight)` (pool weight for `weighted` only).
//!   When nothing serves, the service's [`crate::config::model::Fallback`] answers. A decision is never empty.
//! - **Ranking** ([`rank`]): `failover` = configured order; `geo` = client region's pools, then its
//!   fallback regions' pools in chain order, then the rest; `nearest` = great-circle distance;
//!   `latency` = expected round-trip time (measured, or estimated from distance plus the pool's
//!   measured excess), with hysteresis; `weighted` = not ranked.
//! - **Levels and spill** ([`spill`]): consecutive ranked pools with equal scores form a level (pools
//!   the policy cannot tell apart). Levels take traffic in order, each `min(remaining, h × OF)`,
//!   split inside the level by spare capacity. With demand known, spill is then bounded across
//!   places ([`bound`]): a pool takes spilled traffic up to its budget (baseline × OF, or
//!   `max_share`), and the rest moves on to each place's next level.
//! - **TTL** ([`table`]): `failover_ttl` while degraded (an endpoint withdrawn, a spill, standby or
//!   fallback in use), else `ttl`.
//!
//! Layer 3 of ARCHITECTURE.md: uses only modules of lower layers.

pub mod bound;
pub mod explain;
pub mod geometry;

pub mod pick;
pub mod places;
pub mod rank;
pub mod spill;
pub mod table;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use crate::health::state::Serving;
pub use bound::{Demand, PoolLoad};
pub use explain::{Explanation, Tier};
pub use pick::{EndpointRef, MAX_ANSWERS, Rng};
pub use places::{Cell, Place};
pub use table::{Answer, Decision, PoolChoice, Tables, build_tables};

use crate::config::model::{Percentile, PoolDef, Region, ServiceDef};

/// Everything a table build reads: the model, this node's vantage, and views of health and
/// latency. Views are closures so that the caller decides where the data lives (the health
/// monitor in the server, fixed values in tests and `explain --config`).
pub struct PolicyInputs<'a> {
    /// All regions; indexes are region ids.
    pub regions: &'a [Region],
    /// All pools; indexes are pool ids.
    pub pools: &'a [PoolDef],
    /// All services; indexes are service ids, and [`Tables`] is indexed the same way.
    pub services: &'a [ServiceDef],
    /// `serving(pool, endpoint)`: whether DNS answers may include the endpoint. `Down` and
    /// `Drained` both withdraw it.
    pub serving: &'a dyn Fn(usize, usize) -> Serving,
    /// `rtt(vantage_region, pool, endpoint, percentile)`: the measured round-trip percentile of an
    /// endpoint from probes run in `vantage_region`, or `None` when nothing was measured there.
    /// Keyed by vantage so that shared observations from other instances can join later; today
    /// only [`PolicyInputs::node_region`] has measurements.
    pub rtt: &'a dyn Fn(usize, usize, usize, Percentile) -> Option<Duration>,
    /// The region this instance runs in: its own vantage, used for the latency excess.
    pub node_region: usize,
    /// Other vantages (region indexes) with measurements from fresh fleet peers: `latency`
    /// ranks the clients of each such region by the excess measured from there.
    pub vantages: &'a [usize],
    /// Where clients are, weighted (for the capacity bound on spill, [`bound`]); `None` when
    /// unknown, and spill is then bounded per place only.
    pub demand: Option<&'a Demand>,
}
