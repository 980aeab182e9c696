//! Probers: one attempt against one target, reported as a raw [`ProbeResult`].
//!
//! A prober never decides whether an endpoint is up: it says whether this one attempt passed,
//! how long it took, and a short human-readable reason. Thresholds and damping live in
//! [`super::state`]. Every prober is bounded by the timeout it is given: a blackholed target
//! costs its timeout and nothing more.

pub mod exec;
pub mod http;
pub mod icmp;
pub mod net;

use std::net::IpAddr;
use std::time::Duration;

/// What one probe attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The attempt passed.
    pub ok: bool,
    /// Time from the start of the attempt to its verdict (for failures: until the failure).
    pub rtt: Duration,
    /// A short reason, one line: "HTTP 200", "connection refused", "timed out after 2s",
    /// "status 503 not in [200-299]", the first line of a script's output, ...
    pub detail: String,
}

/// Where a probe goes: the address probed, which may differ from the one answered in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: IpAddr,
    /// Port for TCP, UDP, DNS and HTTP(S) probes (HTTP defaults to 80/443 when `None`).
    pub port: Option<u16>,
    /// The endpoint's configured name, for `{endpoint}` in exec probes and for reasons.
    pub endpoint: String,
}

/// A range of acceptable HTTP status codes (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

/// HTTP or HTTPS probe parameters.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// true = https.
    pub tls: bool,
    /// Request method, e.g. "GET", "HEAD".
    pub method: String,
    /// Path and query, starting with '/'.
    pub path: String,
    /// Host header, and SNI for https; default: the target address.
    pub host: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Acceptable statuses; empty = 200..=299.
    pub expect_status: Vec<StatusRange>,
    /// Body must contain this substring (searched within the first 64 KiB).
    pub body_contains: Option<String>,
    /// Body must match this regular expression (within the first 64 KiB).
    pub body_regex: Option<String>,
    /// Verify the server certificate (https); on unless explicitly turned off.
    pub verify_tls: bool,
    /// Follow redirects (up to 5); off by default: a 3xx is judged as is.
    pub follow_redirects: bool,
}

/// TCP connect probe, optionally with a send/expect exchange.
#[derive(Debug, Clone, Default)]
pub struct TcpSpec {
    pub send: Option<Vec<u8>>,
    /// The reply must start with these bytes.
    pub expect_prefix: Option<Vec<u8>>,
}

/// UDP probe: send a payload, expect a reply (optionally starting with a prefix).
#[derive(Debug, Clone, Default)]
pub struct UdpSpec {
    pub send: Vec<u8>,
    pub expect_prefix: Option<Vec<u8>>,
}

/// DNS probe over UDP: query `name`/`qtype`, expect `rcode`.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub name: String,
    pub qtype: u16,
    /// Expected RCODE (0 = NOERROR).
    pub rcode: u8,
}

/// ICMP echo probe.
#[derive(Debug, Clone, Default)]
pub struct IcmpSpec {}

/// Custom script probe.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// Program and arguments; `{address}`, `{port}`, `{endpoint}` are substituted in each.
    pub command: Vec<String>,
}

/// A probe kind with its parameters.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Udp(UdpSpec),
    Dns(DnsSpec),
    Icmp(IcmpSpec),
    Exec(ExecSpec),
}

/// Run one probe attempt, bounded by `timeout`.
pub async fn run(spec: &ProbeSpec, target: &Target, timeout: Duration) -> ProbeResult {
    match spec {
        ProbeSpec::Http(s) => http::probe(s, target, timeout).await,
        ProbeSpec::Tcp(s) => net::tcp(s, target, timeout).await,
        ProbeSpec::Udp(s) => net::udp(s, target, timeout).await,
        ProbeSpec::Dns(s) => net::dns(s, target, timeout).await,
        ProbeSpec::Icmp(s) => icmp::probe(s, target, timeout).await,
        ProbeSpec::Exec(s) => exec::probe(s, target, timeout).await,
    }
}
