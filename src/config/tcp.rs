//! The TCP limits of `[dns]`: how many connections, from whom, for how long, with how much in
//! flight. A slow or stuck client is closed by these, whatever it does.
//!
//! ```toml
//! [dns]
//! tcp_max_connections = 1024           # open at once; more are closed on accept
//! tcp_max_connections_per_client = 32  # open at once from one address
//! tcp_idle_timeout_secs = 10           # no message started for this long: closed
//! tcp_io_timeout_ms = 2000             # a message started must be in within this; so must
//!                                      # each write of answers
//! tcp_max_queries = 1000               # queries answered on one connection, then closed
//! tcp_max_in_flight = 16               # answers held back for pipelined queries before a flush
//! ```

use std::time::Duration;

use toml::Spanned;

/// Validated TCP limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSettings {
    /// Close a connection on which no message starts for this long.
    pub idle_timeout: Duration,
    /// A message whose first byte arrived must be complete within this; each write of answers
    /// must be taken by the client within this too.
    pub io_timeout: Duration,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Queries answered on one connection before it is closed.
    pub max_queries: u32,
    /// Answers to pipelined queries held back before they are written out.
    pub max_in_flight: u32,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_SECS as u64),
            io_timeout: Duration::from_millis(DEFAULT_IO_MS as u64),
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            max_connections_per_client: DEFAULT_PER_CLIENT as usize,
            max_queries: DEFAULT_MAX_QUERIES as u32,
            max_in_flight: DEFAULT_IN_FLIGHT as u32,
        }
    }
}

/// Knot's `tcp-idle-timeout`.
pub const DEFAULT_IDLE_SECS: i64 = 10;
/// Four times Knot's `tcp-io-timeout` (500 ms): room for a long path's round trips.
pub const DEFAULT_IO_MS: i64 = 2000;
pub const DEFAULT_MAX_CONNECTIONS: i64 = 1024;
/// One address takes at most 1/32 of the default global cap.
pub const DEFAULT_PER_CLIENT: i64 = 32;
pub const DEFAULT_MAX_QUERIES: i64 = 1000;
pub const DEFAULT_IN_FLIGHT: i64 = 16;

/// The raw keys, as `[dns]` holds them.
pub struct RawTcp<'a> {
    pub idle_timeout_secs: &'a Option<Spanned<i64>>,
    pub io_timeout_ms: &'a Option<Spanned<i64>>,
    pub max_connections: &'a Option<Spanned<i64>>,
    pub max_connections_per_client: &'a Option<Spanned<i64>>,
    pub max_queries: &'a Option<Spanned<i64>>,
    pub max_in_flight: &'a Option<Spanned<i64>>,
}

/// Validate the TCP keys; problems go to `problem` with their offsets (the default stands in).
pub fn compile(raw: RawTcp<'_>, problem: &mut dyn FnMut(usize, String)) -> TcpSettings {
    let mut get = |key: &str, v: &Option<Spanned<i64>>, max: i64, default: i64| match v {
        None => default,
        Some(n) if (1..=max).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            problem(
                n.span().start,
                format!("dns.{key}: {} is outside 1..={max}", n.get_ref()),
            );
            default
        }
    };
    let idle = get(
        "tcp_idle_timeout_secs",
        raw.idle_timeout_secs,
        3600,
        DEFAULT_IDLE_SECS,
    );
    let io = get(
        "tcp_io_timeout_ms",
        raw.io_timeout_ms,
        60_000,
        DEFAULT_IO_MS,
    );
    let max = get(
        "tcp_max_connections",
        raw.max_connections,
        1_000_000,
        DEFAULT_MAX_CONNECTIONS,
    );
    let per_client = get(
        "tcp_max_connections_per_client",
        raw.max_connections_per_client,
        1_000_000,
        DEFAULT_PER_CLIENT,
    );
    let queries = get(
        "tcp_max_queries",
        raw.max_queries,
        u32::MAX as i64,
        DEFAULT_MAX_QUERIES,
    );
    let in_flight = get(
        "tcp_max_in_flight",
        raw.max_in_flight,
        1024,
        DEFAULT_IN_FLIGHT,
    );
    TcpSettings {
        idle_timeout: Duration::from_secs(idle as u64),
        io_timeout: Duration::from_millis(io as u64),
        max_connections: max as usize,
        max_connections_per_client: per_client as usize,
        max_queries: queries as u32,
        max_in_flight: in_flight as u32,
    }
}
