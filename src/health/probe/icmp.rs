//! ICMP echo prober (ping), without spawning `ping`.
//!
//! Two ways to send an echo request, tried in this order:
//!
//! 1. An unprivileged *ping socket* (`SOCK_DGRAM`, `IPPROTO_ICMP`/`IPPROTO_ICMPV6`). The kernel
//!    fills in the identifier and checksum and hands this socket only the echo replies meant for
//!    it. Linux allows it to processes whose group is inside `net.ipv4.ping_group_range` (which
//!    governs IPv6 too); many distributions leave that range empty ("1 0").
//! 2. A *raw socket* (`SOCK_RAW`), which needs root or `CAP_NET_RAW`. It sees every ICMP packet
//!    from the target (on loopback, our own request too), so the prober picks its own identifier
//!    and matches type, identifier, sequence number and payload itself. IPv4 raw sockets also
//!    need the checksum computed here and deliver the IP header, which is skipped; for ICMPv6 the
//!    kernel computes the checksum.
//!
//! The mode that worked is remembered per address family, so a denied ping socket costs one
//! failed `socket()` call once, not per probe. Waiting is asynchronous ([`AsyncFd`] around the
//! non-blocking socket): a probe that waits for a reply does not hold a thread. `meridian check`
//! calls [`icmp_available`] to say, before serving, whether ICMP probes can work at all.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::timeout_at;

use super::net::{Attempt, io_reason};
use super::{IcmpSpec, ProbeResult, Target};

/// Packets from the target read while waiting for our reply, at most (own request, NDP, stray
/// replies of other probes on a raw socket...).
const MAX_PACKETS: usize = 256;
/// Bytes in the echo payload: an 8-byte random nonce then a marker.
const PAYLOAD_LEN: usize = 16;

/// How an echo request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Unprivileged ping socket (`SOCK_DGRAM`).
    Ping,
    /// Raw socket (`SOCK_RAW`, root or `CAP_NET_RAW`).
    Raw,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Ping => "ping socket",
            Mode::Raw => "raw socket",
        }
    }
}

/// The mode that last worked, per family (index 0 = IPv4, 1 = IPv6): 0 unknown, 1 ping, 2 raw.
static WORKING_MODE: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];
/// Sequence numbers for echo requests, shared by all probes.
static NEXT_SEQ: AtomicU16 = AtomicU16::new(1);

/// Opens a non-blocking ICMP socket of the given mode and family.
fn open(mode: Mode, v6: bool) -> io::Result<Socket> {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ty = match mode {
        Mode::Ping => Type::DGRAM,
        Mode::Raw => Type::RAW,
    };
    let sock = Socket::new(domain, ty, Some(protocol))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Why ICMP probes cannot be sent from this process.
#[derive(Debug, thiserror::Error)]
pub enum IcmpError {
    /// Neither a ping socket nor a raw socket could be opened. Both failures are kept (neither is
    /// *the* cause, so neither is the `source`), with the settings that would fix them.
    #[error(
        "ICMP probes impossible: ping socket: {} (group {gid} is not in \
         net.ipv4.ping_group_range \"{ping_group_range}\"); raw socket: {} (needs root or \
         CAP_NET_RAW)",
        io_reason(ping),
        io_reason(raw)
    )]
    NoSocket {
        /// Why the unprivileged ping socket failed.
        ping: io::Error,
        /// Why the raw socket failed.
        raw: io::Error,
        /// The process's effective group.
        gid: u32,
        /// `/proc/sys/net/ipv4/ping_group_range`, or "unreadable".
        ping_group_range: String,
    },
}

/// Opens an ICMP socket: the mode that worked before, else a ping socket, else a raw socket.
/// The error names both failures and how to fix them.
fn open_any(v6: bool) -> Result<(Socket, Mode), IcmpError> {
    let cache = &WORKING_MODE[usize::from(v6)];
    if cache.load(Ordering::Relaxed) == 2
        && let Ok(sock) = open(Mode::Raw, v6)
    {
        return Ok((sock, Mode::Raw));
    }
    let ping_err = match open(Mode::Ping, v6) {
        Ok(sock) => {
            cache.store(1, Ordering::Relaxed);
            return Ok((sock, Mode::Ping));
        }
        Err(e) => e,
    };
    match open(Mode::Raw, v6) {
        Ok(sock) => {
            cache.store(2, Ordering::Relaxed);
            Ok((sock, Mode::Raw))
        }
        Err(raw_err) => Err(neither(ping_err, raw_err)),
    }
}

/// The error when neither socket mode can be opened, with the settings that would fix it.
fn neither(ping: io::Error, raw: io::Error) -> IcmpError {
    let ping_group_range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".to_string());
    // SAFETY: getegid has no preconditions and cannot fail.
    let gid = unsafe { libc::getegid() };
    IcmpError::NoSocket {
        ping,
        raw,
        gid,
        ping_group_range,
    }
}

/// Which ICMP mode works for this process: `"ping socket"` or `"raw socket"`, or why neither
/// does (for `meridian check`). Probes IPv4; IPv6 uses the same permissions.
pub fn icmp_available() -> Result<&'static str, IcmpError> {
    open_any(false).map(|(_, mode)| mode.name())
}

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type 8 (ICMPv4) or 128 (ICMPv6), code 0, then id, seq and payload. The
/// ICMPv4 checksum is filled in (a raw socket sends it as is; a ping socket recomputes it);
/// ICMPv6 checksums are always computed by the kernel.
fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(8 + payload.len());
    pkt.extend_from_slice(&[if v6 { 128 } else { 8 }, 0, 0, 0]);
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    pkt
}

/// An echo reply in a received packet: `(id, seq, payload)`, or `None` for anything else. IPv4
/// raw sockets deliver the IP header first; the others deliver the ICMP message alone.
fn echo_reply(mode: Mode, v6: bool, pkt: &[u8]) -> Option<(u16, u16, &[u8])> {
    let icmp = if mode == Mode::Raw && !v6 {
        let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
        pkt.get(ihl..)?
    } else {
        pkt
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((id, seq, &icmp[8..]))
}

/// 64 random bits, for the payload nonce and the raw-socket identifier.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u16(NEXT_SEQ.load(Ordering::Relaxed));
    h.finish()
}

/// ICMP echo probe: send one echo request to the target and wait for the matching reply.
/// Passes with "echo reply (ping socket)" or "echo reply (raw socket)".
pub async fn probe(_s: &IcmpSpec, t: &Target, timeout: Duration) -> ProbeResult {
    let a = Attempt::start(timeout);
    let v6 = t.address.is_ipv6();
    let (sock, mode) = match open_any(v6) {
        Ok(opened) => opened,
        Err(e) => return a.done(false, e.to_string()),
    };
    if let Err(e) = sock.connect(&SockAddr::from(SocketAddr::new(t.address, 0))) {
        return a.done(false, format!("{}: {}", mode.name(), io_reason(&e)));
    }
    // SAFETY: the AsyncFd owns the socket, which keeps its descriptor open and unchanged
    // until the AsyncFd is dropped.
    let fd = match unsafe { AsyncFd::register(sock) } {
        Ok(fd) => fd,
        Err(e) => return a.done(false, format!("{}: {}", mode.name(), io_reason(&e.into()))),
    };
    let nonce = random_u64();
    let id = nonce as u16; // a ping socket replaces it with its own
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[..8].copy_from_slice(&nonce.to_be_bytes());
    payload[8..].copy_from_slice(b"meridian");
    let request = echo_request(v6, id, seq, &payload);

    match timeout_at(
        a.deadline,
        fd.async_io(Interest::WRITABLE, |s| s.send(&request)),
    )
    .await
    {
        Err(_) => return a.timed_out("sending echo request"),
        Ok(Err(e)) => return a.done(false, format!("send failed: {}", io_reason(&e))),
        Ok(Ok(_)) => {}
    }
    let mut buf = [0u8; 1500];
    for _ in 0..MAX_PACKETS {
        let read = fd.async_io(Interest::READABLE, |mut s| s.read(&mut buf));
        let n = match timeout_at(a.deadline, read).await {
            Err(_) => return a.timed_out("waiting for echo reply"),
            Ok(Err(e)) => return a.done(false, io_reason(&e)),
            Ok(Ok(n)) => n,
        };
        let Some((rid, rseq, rpayload)) = echo_reply(mode, v6, &buf[..n]) else {
            continue;
        };
        if rseq == seq && rpayload == payload && (mode == Mode::Ping || rid == id) {
            return a.done(true, format!("echo reply ({})", mode.name()));
        }
    }
    a.done(
        false,
        format!("no matching echo reply among {MAX_PACKETS} packets"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_names_both_failures_and_the_fixes() {
        let e = IcmpError::NoSocket {
            ping: io::Error::from(io::ErrorKind::PermissionDenied),
            raw: io::Error::from_raw_os_error(libc::EPERM),
            gid: 1000,
            ping_group_range: "1 0".into(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "ICMP probes impossible: ping socket: permission denied (group 1000 is not in \
                 net.ipv4.ping_group_range \"1 0\"); raw socket: {} (needs root or CAP_NET_RAW)",
                io_reason(&io::Error::from_raw_os_error(libc::EPERM))
            )
        );
    }

    #[test]
    fn checksum_of_a_known_echo_request() {
        // Type 8, code 0, id 0x1234, seq 1, no payload: sum 0x0800 + 0x1234 + 0x0001 = 0x1a35.
        let pkt = echo_request(false, 0x1234, 1, &[]);
        assert_eq!(&pkt[2..4], &(!0x1a35u16).to_be_bytes());
        assert_eq!(checksum(&pkt), 0, "a packet with its checksum sums to zero");
        let odd = echo_request(false, 7, 9, b"abc");
        assert_eq!(checksum(&odd), 0, "odd length");
    }

    #[test]
    fn parses_replies_and_skips_the_ipv4_header() {
        let mut reply = echo_request(false, 0x1234, 5, b"hi");
        reply[0] = 0;
        assert_eq!(
            echo_reply(Mode::Ping, false, &reply),
            Some((0x1234, 5, &b"hi"[..]))
        );
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&reply);
        assert_eq!(
            echo_reply(Mode::Raw, false, &ip),
            Some((0x1234, 5, &b"hi"[..]))
        );
        let request = echo_request(false, 1, 1, &[]);
        assert_eq!(
            echo_reply(Mode::Ping, false, &request),
            None,
            "a request is no reply"
        );
        let mut v6 = echo_request(true, 3, 4, b"x");
        v6[0] = 129;
        assert_eq!(echo_reply(Mode::Raw, true, &v6), Some((3, 4, &b"x"[..])));
    }
}
