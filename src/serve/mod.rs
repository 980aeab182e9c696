//! The DNS sockets: UDP workers and TCP tasks around the answer engine.
//!
//! [`udp`] runs one OS thread per SO_REUSEPORT socket, reading and answering datagrams in
//! batches (`recvmmsg`/`sendmmsg`) with preallocated buffers; `pktinfo` lets a wildcard-bound
//! socket answer from the address each query was sent to. [`tcp`] runs a task per connection
//! (RFC 7766: pipelining; caps on connections, per client, per connection; idle and I/O
//! timeouts). Both call `dns::answer::respond` and count each query in a worker-local metrics
//! tally. [`shield`] holds what they defend with: the UDP rate limiter and the cookie secrets.
//! See ARCHITECTURE.md for the budget.

mod pktinfo;
pub mod shield;
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
