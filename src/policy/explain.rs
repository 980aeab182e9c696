//! What `explain` shows about a decision: every candidate pool and endpoint, and why.
//!
//! Operators must be able to ask why Meridian answered what it did (STYLE habit 10). Each
//! [`crate::policy::Decision`] carries an [`Explanation`] built by the same code that built the
//! answer, so `explain` never re-derives (and never disagrees with) the server's reasoning.

use super::Serving;
use super::rank::{Hysteresis, RankedPool};
use crate::config::model::PolicyKind;

/// Which endpoints a decision draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Positive-weight endpoints that serve.
    Primary,
    /// No positive-weight endpoint serves: standby (weight-0) endpoints that serve.
    Standby,
    /// Nothing serves: the service's fallback.
    Fallback,
}

/// One endpoint as `explain` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointExplanation {
    /// Index into the pool's endpoints.
    pub endpoint: usize,
    /// Health as read for this build.
    pub serving: Serving,
    /// Draw weight in the decision's tier (0 when not in the tier).
    pub weight: u64,
    /// Capacity used for spill (0 counts as 1).
    pub capacity: u32,
    /// The measured round trip (ms) from this node that went into the pool's excess, if any
    /// (`latency` policy only).
    pub rtt_ms: Option<f64>,
}

/// One candidate pool as `explain` shows it, in rank order.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolExplanation {
    /// The pool's rank and score.
    pub ranked: RankedPool,
    /// Its spill level.
    pub level: usize,
    /// Healthy capacity over capacity, in the tier.
    pub healthy_fraction: f64,
    /// `min(1, healthy fraction × overprovisioning)`.
    pub keep: f64,
    /// Spare capacity, the weight of its part of a level's share.
    pub spare: f64,
    /// Share of this client region's queries it answers.
    pub share: f64,
    /// The share spill alone would give it, before the capacity bound
    /// ([`crate::policy::bound`]); equal to `share` when the bound changed nothing.
    pub asked: f64,
    /// Every endpoint of the pool.
    pub endpoints: Vec<EndpointExplanation>,
}

/// Why a decision is what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The service's policy.
    pub policy: PolicyKind,
    /// The client region decided for; `None` for a class of places (`nearest`, `latency`).
    pub client_region: Option<usize>,
    /// For a class of places: where it was first ranked (latitude, longitude, accuracy band
    /// km); pool distances are from there.
    pub at: Option<(f64, f64, f64)>,
    /// Which endpoints serve.
    pub tier: Tier,
    /// How many endpoints of the service's pools are withdrawn (down or drained).
    pub withdrawn: usize,
    /// The first ranked pool with a serving endpoint.
    pub leader: Option<usize>,
    /// `latency`: what the excess hysteresis did for each pool whose measurement moved.
    pub hysteresis: Vec<Hysteresis>,
    /// `latency`: the vantage (region index) whose measurements gave the pools' excess: the
    /// client's region when a fleet peer there measures, else this instance's.
    pub vantage: Option<usize>,
    /// Every pool of the service, in rank order.
    pub pools: Vec<PoolExplanation>,
}
