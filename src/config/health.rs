//! The health-check part of the configuration: named checks.
//!
//! Checks are declared once (`[checks.NAME]`) and attached to pools (every endpoint of the pool
//! runs them) or to single endpoints (see [`super::pools`]). A check's table is flat: the fields that belong to its
//! `kind` are accepted, the others are errors that name their place.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::health::probe::{
    DnsSpec, ExecSpec, HttpSpec, IcmpSpec, ProbeSpec, StatusRange, TcpSpec, UdpSpec,
};
use crate::health::state::HealthParams;

/// `[checks.NAME]`: one way of probing an endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Probe kind: "http", "https", "tcp", "udp", "dns", "icmp" or "exec".
    pub kind: Spanned<String>,
    /// Time between probes, e.g. "5s", "500ms". Default "5s".
    pub interval: Option<Spanned<String>>,
    /// Give up on one probe after this long. Default "2s"; must be below the interval.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive successes to come up. Default 2.
    pub rise: Option<u32>,
    /// Consecutive failures to go down. Default 3.
    pub fall: Option<u32>,
    /// Spread of start times: each endpoint's first probe waits a random part of this (at
    /// most one interval). Default: the interval or 1 s, whichever is shorter.
    pub jitter: Option<Spanned<String>>,
    /// State changes within `flap_window` that trigger damping (0 = off). Default 6.
    pub flap_threshold: Option<u32>,
    /// Window over which state changes are counted. Default "5m".
    pub flap_window: Option<Spanned<String>>,
    /// How long a flapping endpoint is held down. Default "10m".
    pub hold_down: Option<Spanned<String>>,
    /// Port to probe (tcp, udp, dns: required; http/https: default 80/443).
    pub port: Option<u16>,
    /// http(s): request method. Default "GET".
    pub method: Option<String>,
    /// http(s): path and query. Default "/".
    pub path: Option<String>,
    /// http(s): Host header and TLS SNI. Default: the probed address.
    pub host: Option<String>,
    /// http(s): extra request headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// http(s): acceptable statuses: numbers and "low-high" ranges. Default 200-299.
    pub expect_status: Option<Vec<Spanned<StatusItem>>>,
    /// http(s): the body (first 64 KiB) must contain this text.
    pub body_contains: Option<String>,
    /// http(s): the body (first 64 KiB) must match this regular expression.
    pub body_regex: Option<Spanned<String>>,
    /// https: verify the certificate. Default true.
    pub verify_tls: Option<bool>,
    /// http(s): follow up to 5 redirects. Default false (a 3xx is judged as is).
    pub follow_redirects: Option<bool>,
    /// tcp/udp: bytes to send (text; escapes \r \n \t \\ and \xHH are understood).
    pub send: Option<String>,
    /// tcp/udp: the reply must start with these bytes (same escapes).
    pub expect: Option<String>,
    /// dns: name to query. Default ".".
    pub query_name: Option<String>,
    /// dns: type to query. Default "SOA".
    pub query_type: Option<Spanned<String>>,
    /// dns: expected RCODE name or number. Default "NOERROR".
    pub rcode: Option<Spanned<String>>,
    /// exec: program and arguments; {address}, {port}, {endpoint} are substituted.
    pub command: Option<Vec<String>>,
}

/// One entry of `expect_status`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    Range(String),
}

/// A check compiled from its table.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub spec: ProbeSpec,
    pub port: Option<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: Duration,
    pub params: HealthParams,
}

/// Why a duration ("500ms", "5s", "2m", "1h") could not be read. Each variant holds the text,
/// trimmed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    /// No number where the duration starts ("soon", "-5s", "ms").
    #[error("{text:?} is not a duration like \"500ms\", \"5s\", \"2m\"")]
    NotANumber {
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A number followed by something other than ms, s, m or h.
    #[error("unknown unit {unit:?} in {text:?} (ms, s, m, h)")]
    UnknownUnit { unit: String, text: String },
    /// More than a `Duration` holds.
    #[error("{text:?} is too long a duration")]
    TooLong {
        text: String,
        #[source]
        source: std::time::TryFromFloatSecsError,
    },
}

/// Parse "500ms", "5s", "2m", "1h" (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|source| DurationError::NotANumber {
        text: s.to_string(),
        source,
    })?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(DurationError::UnknownUnit {
                unit: u.to_string(),
                text: s.to_string(),
            });
        }
    };
    // Out of range (a number too long for a Duration) is an error, not a panic.
    Duration::try_from_secs_f64(secs).map_err(|source| DurationError::TooLong {
        text: s.to_string(),
        source,
    })
}

/// Why a `send` or `expect` text could not be unescaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// `\x` at the end of the text, with fewer than two characters after it.
    #[error("\\x needs two hex digits")]
    ShortHex,
    /// `\x` followed by two characters that are not hex digits.
    #[error("bad escape \\x{digits}")]
    BadHex { digits: String },
    /// A backslash followed by something other than n, r, t, \\ or x.
    #[error("bad escape at byte {at} of {text:?}")]
    Unknown { at: usize, text: String },
}

/// Undo the escapes accepted in `send` and `expect`.
pub fn unescape(s: &str) -> Result<Vec<u8>, EscapeError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or(EscapeError::ShortHex)?;
                out.push(
                    u8::from_str_radix(hex, 16).map_err(|_| EscapeError::BadHex {
                        digits: hex.to_string(),
                    })?,
                );
                i += 2;
            }
            _ => {
                return Err(EscapeError::Unknown {
                    at: i,
                    text: s.to_string(),
                });
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Problems are reported through this: (byte offset in the config text, message).
pub type Problems = Vec<(usize, String)>;

impl CheckConfig {
    /// Compile into a [`Check`], pushing every problem into `errs`.
    pub fn compile(&self, name: &str, errs: &mut Problems) -> Option<Check> {
        let start = errs.len();
        let at = self.kind.span().start;
        let dur = |v: &Option<Spanned<String>>,
                   default: Duration,
                   field: &str,
                   errs: &mut Problems| match v {
            None => default,
            Some(s) => parse_duration(s.get_ref()).unwrap_or_else(|e| {
                errs.push((s.span().start, format!("checks.{name}.{field}: {e}")));
                default
            }),
        };
        let interval = dur(&self.interval, Duration::from_secs(5), "interval", errs);
        let timeout = dur(&self.timeout, Duration::from_secs(2), "timeout", errs);
        let jitter = dur(
            &self.jitter,
            interval.min(Duration::from_secs(1)),
            "jitter",
            errs,
        );
        let defaults = HealthParams::default();
        let params = HealthParams {
            rise: self.rise.unwrap_or(defaults.rise).max(1),
            fall: self.fall.unwrap_or(defaults.fall).max(1),
            flap_threshold: self.flap_threshold.unwrap_or(defaults.flap_threshold),
            flap_window: dur(&self.flap_window, defaults.flap_window, "flap_window", errs),
            hold_down: dur(&self.hold_down, defaults.hold_down, "hold_down", errs),
        };
        if params.flap_threshold > crate::health::state::MAX_FLAP_THRESHOLD {
            errs.push((
                at,
                format!(
                    "checks.{name}.flap_threshold: {} is above the most supported, {}",
                    params.flap_threshold,
                    crate::health::state::MAX_FLAP_THRESHOLD
                ),
            ));
        }
        for (field, d) in [
            ("interval", interval),
            ("hold_down", params.hold_down),
            ("flap_window", params.flap_window),
        ] {
            if d > Duration::from_secs(7 * 86400) {
                errs.push((at, format!("checks.{name}.{field}: longer than a week")));
            }
        }
        if timeout >= interval || timeout.is_zero() {
            errs.push((
                at,
                format!("checks.{name}: timeout must be above 0 and below the interval"),
            ));
        }
        let kind = self.kind.get_ref().as_str();
        // Fields that only some kinds take.
        let http_only = [
            ("method", self.method.is_some()),
            ("path", self.path.is_some()),
            ("host", self.host.is_some()),
            ("headers", self.headers.is_some()),
            ("expect_status", self.expect_status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("body_regex", self.body_regex.is_some()),
            ("verify_tls", self.verify_tls.is_some()),
            ("follow_redirects", self.follow_redirects.is_some()),
        ];
        let stream_only = [
            ("send", self.send.is_some()),
            ("expect", self.expect.is_some()),
        ];
        let dns_only = [
            ("query_name", self.query_name.is_some()),
            ("query_type", self.query_type.is_some()),
            ("rcode", self.rcode.is_some()),
        ];
        let exec_only = [("command", self.command.is_some())];
        let allowed: &[&[(&str, bool)]] = match kind {
            "http" | "https" => &[&stream_only, &dns_only, &exec_only],
            "tcp" | "udp" => &[&http_only, &dns_only, &exec_only],
            "dns" => &[&http_only, &stream_only, &exec_only],
            "icmp" => &[&http_only, &stream_only, &dns_only, &exec_only],
            "exec" => &[&http_only, &stream_only, &dns_only],
            other => {
                errs.push((at, format!("checks.{name}.kind: unknown kind {other:?} (http, https, tcp, udp, dns, icmp, exec)")));
                return None;
            }
        };
        for (field, set) in allowed.iter().flat_map(|g| g.iter()) {
            if *set {
                errs.push((
                    at,
                    format!("checks.{name}: field `{field}` does not apply to kind {kind:?}"),
                ));
            }
        }
        if matches!(kind, "tcp" | "udp" | "dns") && self.port.is_none() {
            errs.push((at, format!("checks.{name}: kind {kind:?} needs a port")));
        }
        let bytes = |v: &Option<String>, field: &str, errs: &mut Problems| {
            v.as_ref().and_then(|s| {
                unescape(s)
                    .map_err(|e| errs.push((at, format!("checks.{name}.{field}: {e}"))))
                    .ok()
            })
        };
        let spec = match kind {
            "http" | "https" => {
                let mut expect_status = Vec::new();
                for item in self.expect_status.iter().flatten() {
                    match item.get_ref() {
                        StatusItem::Code(c) => {
                            expect_status.push(StatusRange { low: *c, high: *c })
                        }
                        StatusItem::Range(r) => {
                            let parsed = r.split_once('-').and_then(|(a, b)| {
                                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
                            });
                            match parsed {
                                Some((low, high)) if low <= high => expect_status.push(StatusRange { low, high }),
                                _ => errs.push((item.span().start, format!("checks.{name}.expect_status: {r:?} is not a code or \"low-high\""))),
                            }
                        }
                    }
                }
                if let Some(re) = &self.body_regex
                    && let Err(e) = regex::Regex::new(re.get_ref())
                {
                    errs.push((re.span().start, format!("checks.{name}.body_regex: {e}")));
                }
                ProbeSpec::Http(HttpSpec {
                    tls: kind == "https",
                    method: self.method.clone().unwrap_or_else(|| "GET".into()),
                    path: self.path.clone().unwrap_or_else(|| "/".into()),
                    host: self.host.clone(),
                    headers: self
                        .headers
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    expect_status,
                    body_contains: self.body_contains.clone(),
                    body_regex: self.body_regex.as_ref().map(|r| r.get_ref().clone()),
                    verify_tls: self.verify_tls.unwrap_or(true),
                    follow_redirects: self.follow_redirects.unwrap_or(false),
                })
            }
            "tcp" => ProbeSpec::Tcp(TcpSpec {
                send: bytes(&self.send, "send", errs),
                expect_prefix: bytes(&self.expect, "expect", errs),
            }),
            "udp" => ProbeSpec::Udp(UdpSpec {
                send: bytes(&self.send, "send", errs).unwrap_or_default(),
                expect_prefix: bytes(&self.expect, "expect", errs),
            }),
            "dns" => {
                let qtype = match &self.query_type {
                    None => 6,
                    Some(t) => match hickory_proto::rr::RecordType::from_str(
                        &t.get_ref().to_ascii_uppercase(),
                    ) {
                        Ok(rt) => u16::from(rt),
                        Err(_) => {
                            errs.push((
                                t.span().start,
                                format!("checks.{name}.query_type: unknown type {:?}", t.get_ref()),
                            ));
                            6
                        }
                    },
                };
                let rcode = match &self.rcode {
                    None => 0,
                    Some(r) => match rcode_number(r.get_ref()) {
                        Some(n) => n,
                        None => {
                            errs.push((
                                r.span().start,
                                format!("checks.{name}.rcode: unknown RCODE {:?}", r.get_ref()),
                            ));
                            0
                        }
                    },
                };
                ProbeSpec::Dns(DnsSpec {
                    name: self.query_name.clone().unwrap_or_else(|| ".".into()),
                    qtype,
                    rcode,
                })
            }
            "icmp" => {
                // Say at load time, not at the first probe, when this host cannot send pings.
                if let Err(e) = crate::health::probe::icmp::icmp_available() {
                    errs.push((at, format!("checks.{name}: {e}")));
                }
                ProbeSpec::Icmp(IcmpSpec {})
            }
            _ => match &self.command {
                Some(c) if !c.is_empty() => ProbeSpec::Exec(ExecSpec { command: c.clone() }),
                _ => {
                    errs.push((
                        at,
                        format!("checks.{name}: kind \"exec\" needs a non-empty command"),
                    ));
                    return None;
                }
            },
        };
        if errs.len() > start {
            return None;
        }
        Some(Check {
            name: name.to_string(),
            spec,
            port: self.port,
            interval,
            timeout,
            jitter,
            params,
        })
    }
}

fn rcode_number(s: &str) -> Option<u8> {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    let up = s.to_ascii_uppercase();
    NAMES
        .iter()
        .position(|n| *n == up)
        .map(|i| i as u8)
        .or_else(|| s.parse().ok().filter(|&n: &u8| n < 16))
}

/// Parse an endpoint address.
pub fn parse_ip(
    s: &Spanned<String>,
    what: &dyn Fn() -> String,
    errs: &mut Problems,
) -> Option<IpAddr> {
    IpAddr::from_str(s.get_ref())
        .map_err(|_| {
            errs.push((
                s.span().start,
                format!(
                    "{}: {:?} is not an IPv4 or IPv6 address",
                    what(),
                    s.get_ref()
                ),
            ))
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_escapes() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        let e = parse_duration(" 5 parsecs").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown unit "parsecs" in "5 parsecs" (ms, s, m, h)"#
        );
        let e = parse_duration("soon").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""soon" is not a duration like "500ms", "5s", "2m""#
        );
        let e = parse_duration("99999999999999999999999999h").unwrap_err();
        assert!(matches!(e, DurationError::TooLong { .. }), "{e:?}");
        assert_eq!(unescape("PING\\r\\n\\x00").unwrap(), b"PING\r\n\0");
        assert_eq!(
            unescape("a\\q").unwrap_err().to_string(),
            r#"bad escape at byte 1 of "a\\q""#
        );
        assert_eq!(
            unescape("\\xzz").unwrap_err().to_string(),
            r"bad escape \xzz"
        );
        assert_eq!(unescape("\\x1").unwrap_err(), EscapeError::ShortHex);
        assert_eq!(rcode_number("nxdomain"), Some(3));
        assert_eq!(rcode_number("9"), Some(9));
    }
}
