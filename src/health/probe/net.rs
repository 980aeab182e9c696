//! TCP, UDP and DNS-over-UDP probers.
//!
//! Each prober makes one attempt against one [`Target`] and reports a raw [`ProbeResult`]. The
//! whole attempt (connect, send, reply) runs against a single deadline, `start + timeout`, so a
//! blackholed target (drops SYNs, or accepts and never answers) costs exactly its timeout. A
//! timeout's reason names the step that was waiting ("timed out after 2s waiting for reply").
//! Buffers are small and short-lived: a prober holds at most one 4 KiB receive buffer.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use super::{DnsSpec, ProbeResult, Target, TcpSpec, UdpSpec};

/// Receive buffer for UDP and DNS replies. Replies longer than this are cut, which is harmless:
/// only a prefix or the DNS header is judged.
const RECV_BUF: usize = 4096;
/// Bytes of a payload shown in a reason, before "...".
const SHOW_BYTES: usize = 32;
/// DNS replies with a foreign id (or not replies at all) tolerated before giving up.
const MAX_STRAY_REPLIES: usize = 64;

/// One attempt: when it started and when it must end.
pub(super) struct Attempt {
    pub(super) start: Instant,
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
}

impl Attempt {
    /// Starts the clock for an attempt bounded by `timeout`.
    pub(super) fn start(timeout: Duration) -> Self {
        let start = Instant::now();
        Attempt {
            start,
            deadline: start + timeout,
            timeout,
        }
    }

    /// A result whose rtt is the time since the start.
    pub(super) fn done(&self, ok: bool, detail: impl Into<String>) -> ProbeResult {
        ProbeResult {
            ok,
            rtt: self.start.elapsed(),
            detail: detail.into(),
        }
    }

    /// A failure for a step that ran out of time: "timed out after 2s waiting for reply".
    pub(super) fn timed_out(&self, step: &str) -> ProbeResult {
        self.done(false, format!("timed out after {:?} {step}", self.timeout))
    }
}

/// A short, lower-case reason for an I/O error.
pub(super) fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let s = match e.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::BrokenPipe => "broken pipe",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable => "network unreachable",
        K::AddrNotAvailable => "address not available",
        K::PermissionDenied => "permission denied",
        _ => return e.to_string(),
    };
    s.to_string()
}

/// Bytes as a short escaped string for a reason: `"+PONG\r\n"`, cut after [`SHOW_BYTES`].
fn show(bytes: &[u8]) -> String {
    let cut = bytes.len().min(SHOW_BYTES);
    let more = if bytes.len() > cut { "..." } else { "" };
    format!("\"{}{more}\"", bytes[..cut].escape_ascii())
}

/// Judges a reply against an expected prefix.
fn judge_prefix(a: &Attempt, got: &[u8], want: &[u8]) -> ProbeResult {
    if got.starts_with(want) {
        a.done(true, format!("reply starts with {}", show(want)))
    } else {
        a.done(
            false,
            format!(
                "reply does not start with {} (got {})",
                show(want),
                show(got)
            ),
        )
    }
}

/// The unspecified address of the target's family, for binding an ephemeral UDP socket.
fn any_of(addr: IpAddr) -> SocketAddr {
    match addr {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

/// TCP probe: connect; if `send` is set, write it; if `expect_prefix` is set, read until that many
/// bytes arrived (or EOF) and compare. Passes with "connected" when there is nothing to compare.
pub async fn tcp(s: &TcpSpec, t: &Target, timeout: Duration) -> ProbeResult {
    let a = Attempt::start(timeout);
    let Some(port) = t.port else {
        return a.done(false, "tcp probe needs a port");
    };
    let mut stream = match timeout_at(a.deadline, TcpStream::connect((t.address, port))).await {
        Err(_) => return a.timed_out("connecting"),
        Ok(Err(e)) => return a.done(false, io_reason(&e)),
        Ok(Ok(stream)) => stream,
    };
    if let Some(send) = &s.send {
        match timeout_at(a.deadline, stream.write_all(send)).await {
            Err(_) => return a.timed_out("sending"),
            Ok(Err(e)) => return a.done(false, format!("send failed: {}", io_reason(&e))),
            Ok(Ok(())) => {}
        }
    }
    let Some(want) = &s.expect_prefix else {
        return a.done(true, "connected");
    };
    let mut got = Vec::with_capacity(want.len());
    let mut chunk = [0u8; 512];
    // Each read returns at least one byte or ends the loop, so it runs at most `want.len()` times.
    while got.len() < want.len() {
        let room = (want.len() - got.len()).min(chunk.len());
        match timeout_at(a.deadline, stream.read(&mut chunk[..room])).await {
            Err(_) if got.is_empty() => return a.timed_out("waiting for reply"),
            Err(_) => {
                let step = format!(
                    "waiting for the rest of the reply ({} of {} bytes)",
                    got.len(),
                    want.len()
                );
                return a.timed_out(&step);
            }
            Ok(Err(e)) => return a.done(false, format!("read failed: {}", io_reason(&e))),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
        // Compare early: a mismatch in the first bytes needs no more reading.
        if !want.starts_with(&got) {
            break;
        }
    }
    if got.is_empty() && !want.is_empty() {
        return a.done(false, "connection closed without a reply");
    }
    judge_prefix(&a, &got, want)
}

/// Binds an ephemeral UDP socket of the target's family and connects it to `addr`, so that the
/// kernel filters replies by source and reports ICMP port-unreachable as `ConnectionRefused`.
async fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(any_of(addr.ip())).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

/// Reason for a UDP send/receive error: "port unreachable" for the ICMP answer of a closed port.
fn udp_reason(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        "port unreachable".to_string()
    } else {
        io_reason(e)
    }
}

/// UDP probe: send the payload, wait for one reply, and compare its prefix if one is expected.
/// A closed port on a reachable host answers with ICMP port unreachable, reported at once.
pub async fn udp(s: &UdpSpec, t: &Target, timeout: Duration) -> ProbeResult {
    let a = Attempt::start(timeout);
    let Some(port) = t.port else {
        return a.done(false, "udp probe needs a port");
    };
    let sock = match udp_socket(SocketAddr::new(t.address, port)).await {
        Ok(sock) => sock,
        Err(e) => return a.done(false, format!("socket: {}", io_reason(&e))),
    };
    match timeout_at(a.deadline, sock.send(&s.send)).await {
        Err(_) => return a.timed_out("sending"),
        Ok(Err(e)) => return a.done(false, udp_reason(&e)),
        Ok(Ok(_)) => {}
    }
    let mut buf = vec![0u8; RECV_BUF];
    let n = match timeout_at(a.deadline, sock.recv(&mut buf)).await {
        Err(_) => return a.timed_out("waiting for reply"),
        Ok(Err(e)) => return a.done(false, udp_reason(&e)),
        Ok(Ok(n)) => n,
    };
    match &s.expect_prefix {
        Some(want) => judge_prefix(&a, &buf[..n], want),
        None => a.done(true, format!("reply received ({n} bytes)")),
    }
}

/// The mnemonic of an RCODE: "NOERROR", "SERVFAIL", ..., or "RCODE 23" for unnamed ones.
pub fn rcode_name(rcode: u16) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        other => return format!("RCODE {other}"),
    };
    name.to_string()
}

/// Builds the query datagram (random id, RD set so that resolvers as well as authoritative
/// servers can be probed) and returns it with its id.
fn dns_query(s: &DnsSpec) -> Result<(u16, Vec<u8>), String> {
    let mut name =
        Name::from_ascii(&s.name).map_err(|e| format!("bad query name {:?}: {e}", s.name))?;
    name.set_fqdn(true);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, RecordType::from(s.qtype)));
    let wire = msg
        .to_vec()
        .map_err(|e| format!("cannot encode query: {e}"))?;
    Ok((msg.metadata.id, wire))
}

/// The RCODE of a datagram if it is a reply (QR set) with id `id`, else `None`. The RCODE
/// includes the EDNS extended bits when the reply parses in full; a reply that does not (cut by
/// the receive buffer, or malformed past the header) is judged by its header.
fn reply_rcode(id: u16, dgram: &[u8]) -> Option<u16> {
    if dgram.len() < 12 || u16::from_be_bytes([dgram[0], dgram[1]]) != id || dgram[2] & 0x80 == 0 {
        return None;
    }
    match Message::from_vec(dgram) {
        Ok(m) => Some(u16::from(m.metadata.response_code)),
        Err(_) => Some(u16::from(dgram[3] & 0x0F)),
    }
}

/// DNS probe: query `name`/`qtype` over UDP with a random id and pass when the reply's RCODE is
/// the expected one. Datagrams with another id are ignored until the timeout.
pub async fn dns(s: &DnsSpec, t: &Target, timeout: Duration) -> ProbeResult {
    let a = Attempt::start(timeout);
    let Some(port) = t.port else {
        return a.done(false, "dns probe needs a port");
    };
    let (id, query) = match dns_query(s) {
        Ok(q) => q,
        Err(reason) => return a.done(false, reason),
    };
    let sock = match udp_socket(SocketAddr::new(t.address, port)).await {
        Ok(sock) => sock,
        Err(e) => return a.done(false, format!("socket: {}", io_reason(&e))),
    };
    match timeout_at(a.deadline, sock.send(&query)).await {
        Err(_) => return a.timed_out("sending"),
        Ok(Err(e)) => return a.done(false, udp_reason(&e)),
        Ok(Ok(_)) => {}
    }
    let mut buf = vec![0u8; RECV_BUF];
    for _ in 0..MAX_STRAY_REPLIES {
        let n = match timeout_at(a.deadline, sock.recv(&mut buf)).await {
            Err(_) => return a.timed_out("waiting for reply"),
            Ok(Err(e)) => return a.done(false, udp_reason(&e)),
            Ok(Ok(n)) => n,
        };
        let Some(got) = reply_rcode(id, &buf[..n]) else {
            continue;
        };
        let want = u16::from(s.rcode);
        return if got == want {
            a.done(true, format!("rcode {}", rcode_name(got)))
        } else {
            a.done(
                false,
                format!("rcode {}, expected {}", rcode_name(got), rcode_name(want)),
            )
        };
    }
    a.done(
        false,
        format!("no reply with id {id} among {MAX_STRAY_REPLIES} datagrams"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_bytes_escaped_and_cut() {
        assert_eq!(show(b"+PONG\r\n"), "\"+PONG\\r\\n\"");
        assert_eq!(show(&[b'a'; 40]), format!("\"{}...\"", "a".repeat(32)));
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(23), "RCODE 23");
    }

    #[test]
    fn reply_rcode_checks_id_and_qr() {
        let mut hdr = [0u8; 12];
        hdr[0..2].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(reply_rcode(7, &hdr), None, "a query, not a reply");
        hdr[2] = 0x80;
        hdr[3] = 0x03;
        assert_eq!(reply_rcode(7, &hdr), Some(3));
        assert_eq!(reply_rcode(8, &hdr), None, "foreign id");
        assert_eq!(reply_rcode(7, &hdr[..11]), None, "short");
    }
}
