//! The test kit, one module tree that every integration test binary includes with
//! `#[path = "support/mod.rs"] mod support;`:
//!
//! - [`server`]: a real Meridian server in process on loopback ports, started from zone text and
//!   config lines, with DNS clients over UDP and TCP (`use crate::support::*` brings these);
//! - [`wire`]: raw DNS wire bytes for tests that build or check messages by hand;
//! - [`wait`]: [`wait_for`], the one bounded wait on a condition, and [`exit_within`] for a
//!   child process;
//! - [`target`]: probe targets: HTTP servers whose status and delay a test sets, killed and
//!   restarted on the same port, counting requests; TCP ports that accept, hold or refuse; TCP
//!   and UDP echo servers;
//! - [`webhook`]: a webhook sink that keeps every JSON body it is sent;
//! - [`exposition`]: a metric's value in the Prometheus exposition, and the lock that tests
//!   asserting on the process-wide registry hold;
//! - [`steering`]: ECS queries and answer decoding for the steering tests;
//! - [`knot_primary`]: a Knot DNS primary serving one zone on a free loopback port, with NOTIFY
//!   to a secondary and edits served by IXFR (skipped when knotd is missing);
//! - [`knot`]: a Knot DNS server (`knotd`) on a loopback port of its own, to replicate with;
//! - [`monitor`]: a health monitor on its own in the test's runtime, for tests on paused time;
//! - fixture zones, as files under tests/fixtures/ ([`fixture`]).
//!
//! The counting allocator (`counting_alloc.rs`) is not part of this tree: it installs itself as
//! the global allocator of the binary that includes it, so only tests/alloc.rs and tests/geo.rs
//! include it, by path.
#![allow(dead_code, unused_imports)]

pub mod exposition;
pub mod knot;
pub mod knot_primary;
pub mod monitor;
pub mod server;
pub mod steering;
pub mod target;
pub mod wait;
pub mod webhook;
pub mod wire;

use std::path::PathBuf;

pub use server::*;
pub use wait::{exit_within, wait_for};

/// The path of a fixture file under tests/fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
