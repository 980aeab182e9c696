//! The snapshot: everything the answer engine reads, published as one immutable unit.
//!
//! A [`Snapshot`] holds the zone catalog (with its prepared responses), the steering data of the
//! services (regions, GeoIP, endpoint answers in wire form) and the decision tables built from
//! the configuration and the health monitor's view. [`assemble()`] builds one from a validated
//! configuration; [`steering::build_tables`] builds new decision tables for it when health changes.
//! The publisher (the server module) is the only writer of the served snapshot; workers read it
//! through an atomic pointer and never wait.
//!
//! Layer: above the zone data, the configuration model, geo, health state and the policy
//! engine; below the answer engine (`dns`). See ARCHITECTURE.md.

pub mod assemble;
pub mod demand;
pub mod replica;
pub mod steering;

use std::sync::Arc;

pub use assemble::{assemble, assemble_with, load, load_for_publish};
pub use steering::Steering;

use crate::policy::Tables;
use crate::zone::Catalog;

/// Immutable data the engine answers from; published as one unit and swapped atomically.
///
/// Decision tables change with health (often); zones and steering with the configuration
/// (rarely). A new snapshot with new tables shares the rest through the `Arc`s.
#[derive(Clone)]
pub struct Snapshot {
    pub catalog: Arc<Catalog>,
    /// The server's EDNS UDP payload size (advertised and enforced).
    pub edns_udp_payload: u16,
    /// Services, regions and GeoIP, when any service is configured.
    pub steering: Option<Arc<Steering>>,
    /// Decision tables for `steering`, built from the same configuration.
    pub tables: Option<Arc<Tables>>,
    /// The server's identifier, sent to queries that ask for it (`[node] nsid`, RFC 5001).
    pub nsid: Option<Arc<[u8]>>,
    /// The TSIG keys (`[[tsig_key]]`): transfers and signed queries are checked against them.
    pub tsig_keys: Arc<crate::wire::tsig::KeyRing>,
}
