//! Health checking: probers, anti-flap state, latency windows.
//!
//! Probers ([`probe`]) stay simple: each reports raw `(ok, rtt, detail)` for one attempt. The
//! health core ([`state`]) owns every decision: rise/fall thresholds, flap damping, combining
//! several checks on one endpoint, start-up policy, and manual overrides. [`latency`] keeps a
//! sliding window of round-trip times per endpoint. All of it is plain code of
//! `(state, input, now)`; only the scheduler touches sockets, and [`clock`] is the one place time
//! is read (tokio's clock, so tests can pause it).
//!
//! Layer 0 (ARCHITECTURE.md): uses no other module of the crate. The monitor's tasks, which
//! schedule the probers and publish a health view, live in `monitor`.

pub mod clock;
pub mod latency;

pub mod overrides;
pub mod probe;
pub mod state;
