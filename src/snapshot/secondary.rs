//! The secondary zones as the answer engine sees them: which zones Meridian takes from
//! primaries, from which addresses a NOTIFY for each is accepted, and the handle that wakes
//! the zone's refresh task.
//!
//! A NOTIFY (RFC 1996) is answered by the engine (`dns`), which must reach the zone's task
//! without a lock: each [`SecondaryZone`] holds a `tokio::sync::Notify` that the engine pokes
//! and the task waits on. The handles outlive snapshots: the publisher gives every snapshot it
//! serves the same handle per zone, so a reload never strands a waiting task.
//!
//! [`Signer`] is where TSIG (RFC 8945) plugs in: the one place that signs a secondary's
//! requests (SOA query, transfer request) and checks their responses, and that checks a NOTIFY
//! and signs its acknowledgement. Until keys are wired in, [`Unsigned`] does nothing.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;

/// One zone taken from primaries.
#[derive(Clone, Debug)]
pub struct SecondaryZone {
    /// The zone's apex as configured.
    pub origin: Name,
    /// Lowercase wire form of the apex.
    pub apex: Box<[u8]>,
    /// The primaries' addresses: a NOTIFY from one of them is accepted.
    pub primaries: Box<[IpAddr]>,
    /// The TSIG key for the zone's messages (`[[zone]] key`), by name.
    pub key: Option<Name>,
    /// Wakes the zone's refresh task (a NOTIFY came).
    pub wake: Arc<tokio::sync::Notify>,
    /// How the zone's versions are made when Meridian gives it to secondaries of its own
    /// (`[zone.transfer]`); `None` without.
    pub replica: Option<Arc<crate::zone::transfer::Settings>>,
}

/// Every secondary zone of a snapshot.
#[derive(Clone, Debug, Default)]
pub struct Secondaries {
    pub zones: Box<[SecondaryZone]>,
}

impl Secondaries {
    /// The secondary zone whose apex is exactly `apex` (lowercase wire form).
    pub fn zone(&self, apex: &[u8]) -> Option<&SecondaryZone> {
        self.zones.iter().find(|z| *z.apex == *apex)
    }
}

/// Why a signed exchange was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The message is not signed with the key expected, or its signature does not verify.
    #[error("TSIG check failed: {0}")]
    Check(&'static str),
}

/// TSIG for a secondary's messages: sign what goes out, check what comes back. One value per
/// zone (its key); the same hooks serve the SOA query, the transfer and the NOTIFY exchange.
pub trait Signer: Send + Sync {
    /// Sign a request (SOA query or transfer request) before it is sent. `msg` is a complete
    /// DNS message; a signer appends its TSIG record and raises ARCOUNT.
    fn sign(&self, msg: &mut Vec<u8>);
    /// Check one response message of the exchange the last [`Signer::sign`] started (every
    /// message of a transfer, in order; `first` for the first).
    fn check(&self, msg: &[u8], first: bool) -> Result<(), SignError>;
}

/// No key: requests go unsigned and responses are taken as they come.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl Signer for Unsigned {
    fn sign(&self, _msg: &mut Vec<u8>) {}
    fn check(&self, _msg: &[u8], _first: bool) -> Result<(), SignError> {
        Ok(())
    }
}
