//! The secondary zones as the answer engine sees them: which zones Meridian takes from
//! primaries, from which addresses a NOTIFY for each is accepted, and the handle that wakes
//! the zone's refresh task.
//!
//! A NOTIFY (RFC 1996) is answered by the engine (`dns`), which must reach the zone's task
//! without a lock: each [`SecondaryZone`] holds a `tokio::sync::Notify` that the engine pokes
//! and the task waits on. The handles outlive snapshots: the publisher gives every snapshot it
//! serves the same handle per zone, so a reload never strands a waiting task.
//!
//! A zone with a TSIG key (`[[zone]] key`) takes only a NOTIFY signed with that key; its
//! position in the snapshot's key ring is here for the engine to check it.

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
    /// Its position in the snapshot's `tsig_keys`: a NOTIFY must be signed with it.
    pub key_index: Option<usize>,
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
