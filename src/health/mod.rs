//! Health checking: probers, anti-flap state, latency windows.
//!
//! Probers ([`probe`]) stay simple: each reports raw `(ok, rtt, detail)` for one attempt. The
//! health core ([`state`]) owns every decision: rise/fall thresholds, flap damping, combining
//! several checks on one endpoint, start-up policy, and manual overrides. [`latency`] keeps a
//! sliding window of round-trip times per endpoint. All of it is plain code of
//! `(state, input, now)`; only the scheduler touches sockets and clocks.
//!
//! Status: work in progress (issue 3) — see README.md "Not yet built".

pub mod latency;

pub mod overrides;
pub mod probe;
pub mod state;
