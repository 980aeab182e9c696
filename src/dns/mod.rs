//! The answer engine: one query in, one response out, for UDP and TCP alike.
//!
//! [`answer`] turns a query's bytes into a response in a caller-owned buffer: the kept and
//! prepared fast paths first, then the general path (parse, find the zone and node, a
//! service's answer from `service` or the zone's sections). [`cache`] is a UDP worker's kept
//! responses; [`notify`] acknowledges a primary's NOTIFY for a secondary zone; [`cookie`]
//! checks and issues DNS Cookies; [`rrl`] is the rate limiter of UDP answers (its table, the
//! response classes, the truncated "slip" answer). No sockets, clocks or locks here: the sockets are `serve`'s, and routing
//! decisions are made by the policy engine; this module only carries them out. See
//! ARCHITECTURE.md for the layers and the query's path.

pub mod answer;
pub mod cache;
pub mod cookie;
pub mod notify;
pub mod rrl;
mod service;
pub mod xfr;
