//! Meridian: a geo- and latency-aware authoritative DNS traffic director.
//!
//! A tour of the modules, in the order data flows through them:
//!
//! - [`config`]: the TOML schema; validation that names file, line and column of every problem;
//!   compilation into an immutable [`dns::answer::Snapshot`].
//! - [`zone`]: static zones from RFC 1035 master files, checked and held in wire form.
//! - [`dns`]: query parsing, the answer engine, and the UDP/TCP servers.
//! - [`server`]: starts the sockets and workers, publishes snapshots (reload), shuts down.
//! - [`admin`]: the admin HTTP API: status, explain, metrics, overrides, reload.
//!
//! Still to come (see README.md): health checking, GeoIP and the policy engine, metrics and the
//! admin API, zone transfers.

pub mod admin;
pub mod config;
pub mod control;
pub mod dns;
pub mod explain;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod monitor;
pub mod policy;
pub mod serve;
pub mod server;
pub mod snapshot;
pub mod wire;
pub mod zone;
