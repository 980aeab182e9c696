//! Meridian: a geo- and latency-aware authoritative DNS traffic director.
//!
//! The modules, bottom layer first; each uses only modules of lower layers (ARCHITECTURE.md
//! gives the rules, the data flow of a query and of a probe result, and the hot-path budget;
//! `.ci/layers.py` checks the layers):
//!
//! - [`wire`], [`geo`], [`health`]: DNS wire primitives and the query parser; locating clients
//!   (MaxMind DB, CIDR tables, regions); probers, anti-flap state and latency windows.
//! - [`zone`]: static zones from RFC 1035 master files, the catalog, the zone's answer sections
//!   and the prepared responses.
//! - [`config`]: the TOML schema, validation that names file, line and column, the compiled
//!   model (regions, pools, endpoints, services). Builds nothing.
//! - [`policy`]: the policy engine: ranking, graded spill, decision tables, the per-query draw.
//! - [`snapshot`]: what the engine answers from, its assembly from a configuration, decision
//!   tables from a health view.
//! - [`dns`]: the answer engine (kept and prepared responses, the general path, services).
//! - [`metrics`], [`monitor`], [`fleet`], [`explain`], [`simulate`]: metric names and the
//!   workers' tally; the health monitor's tasks and the health view it keeps; the fleet's peer
//!   pull of other instances' observations; `meridian explain`; `meridian simulate`.
//! - [`serve`], [`control`]: the UDP workers and TCP tasks; reload.
//! - [`secondary`]: zones taken from primaries by IXFR/AXFR, refreshed on the SOA timers and on
//!   NOTIFY, kept on disk, published one zone at a time.
//! - [`admin`]: the admin HTTP API.
//! - [`server`]: start-up, the publisher tasks, shutdown.

pub mod admin;
pub mod config;
pub mod control;
pub mod dns;
pub mod explain;
pub mod fleet;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod policy;
pub mod secondary;
pub mod serve;
pub mod server;
pub mod simulate;
pub mod snapshot;
pub mod wire;
pub mod zone;
