//! DNS on the wire: parsing queries, the answer engine, and the UDP and TCP servers.
//!
//! [`wire`] reads untrusted bytes into a stack-allocated query; [`answer`] turns a query into a
//! response in a caller-owned buffer (the one engine both transports share); [`udp`] and [`tcp`]
//! own the sockets; [`cache`] keeps a UDP worker's repeated responses. Routing decisions belong
//! elsewhere: this module only carries them out.

pub mod answer;
pub mod cache;
mod pktinfo;
mod service;
pub mod tcp;
pub mod udp;

/// A seed for a worker's random generator: the clock mixed with a stack address, so that
/// workers started at the same instant still differ.
pub(crate) fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    t ^ (&local as *const u8 as u64).rotate_left(32)
}
