//! Metrics asserted, not just exposed: counters that move with real events, and the
//! observability artefacts (exposition, dashboard, alert rules, systemd unit) checked with the
//! real tools.
//!
//! The metrics registry is one per process. These tests assert exact deltas and gauge values on
//! it, so they have this binary to themselves (no other test's server moves the same series),
//! and among themselves those that run a server hold `support::exposition::registry_lock`.

#[path = "../support/mod.rs"]
mod support;

mod counters;
mod defences;
mod observability;
mod observability_support;
