//! `[rrl]` (response rate limiting) and `[cookies]` (DNS Cookies): what keeps the UDP answers
//! from being turned against a third party.
//!
//! ```toml
//! [rrl]                       # on by default, with these values
//! rate = 200                  # responses per second to one client prefix, in each class
//! burst = 400                 # responses at once from a prefix that was quiet (default 2 x rate)
//! slip = 2                    # every 2nd limited response goes out truncated (TC=1); 0: none
//! ipv4_prefix = 24
//! ipv6_prefix = 56
//! table_size = 524288         # buckets (8 bytes each), shared by every UDP worker
//! exempt = ["127.0.0.0/8", "::1/128"]
//!
//! [cookies]                   # on by default
//! strict = false              # true: an invalid server cookie is answered BADCOOKIE
//! secret_lifetime = "26h"     # a new random secret this often; the previous one still counts
//! # secret = "..."            # 32 hex digits: one fixed secret for a whole anycast set
//! ```

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::health::parse_duration;

/// Default responses per second per prefix and class (NSD's `rrl-ratelimit`).
pub const DEFAULT_RATE: u32 = 200;
/// Default slip (NSD's `rrl-slip`).
pub const DEFAULT_SLIP: u32 = 2;
/// Default IPv4 prefix length (NSD's and Knot's).
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// Default IPv6 prefix length (Knot's fixed prefix before 3.4; NSD's is /64).
pub const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Default number of buckets (Knot's `table-size`).
pub const DEFAULT_TABLE_SIZE: usize = 524_288;
/// Highest `rate` accepted.
pub const MAX_RATE: u32 = 100_000;
/// Highest `burst` accepted (the bucket's 28-bit token count, at 250 units a token).
pub const MAX_BURST: u32 = 1_000_000;
/// Table sizes accepted (8 bytes a bucket: 8 KiB to 128 MiB).
const TABLE_SIZES: std::ops::RangeInclusive<i64> = 1024..=16_777_216;
/// Default secret lifetime (Knot's `secret-lifetime`).
pub const DEFAULT_SECRET_LIFETIME: Duration = Duration::from_secs(26 * 3600);
/// Longest secret lifetime (RFC 7873 §7.1: change it at least every 36 days).
const MAX_SECRET_LIFETIME: Duration = Duration::from_secs(36 * 24 * 3600);
/// Shortest secret lifetime: cookies live an hour; a secret that changes much faster only
/// makes clients learn new cookies more often.
const MIN_SECRET_LIFETIME: Duration = Duration::from_secs(1);

/// The `[rrl]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Rate limiting of UDP responses. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Responses per second one client prefix gets in each class (positive, empty, nxdomain,
    /// error, large, any). Default 200.
    pub rate: Option<Spanned<i64>>,
    /// Responses a prefix that was quiet may get at once. Default twice `rate`.
    pub burst: Option<Spanned<i64>>,
    /// Every `slip`th limited response is sent truncated (TC=1, so a real client asks again
    /// over TCP), the others are dropped; 0 drops them all, 1 truncates them all. Default 2.
    pub slip: Option<Spanned<i64>>,
    /// Clients are counted by their address's first this many bits (IPv4). Default 24.
    pub ipv4_prefix: Option<Spanned<i64>>,
    /// Clients are counted by their address's first this many bits (IPv6). Default 56.
    pub ipv6_prefix: Option<Spanned<i64>>,
    /// Buckets in the table all UDP workers share, 8 bytes each. Default 524288.
    pub table_size: Option<Spanned<i64>>,
    /// Source prefixes never limited. Default loopback only: `["127.0.0.0/8", "::1/128"]`.
    pub exempt: Option<Vec<Spanned<String>>>,
}

fn yes() -> bool {
    true
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            enabled: true,
            rate: None,
            burst: None,
            slip: None,
            ipv4_prefix: None,
            ipv6_prefix: None,
            table_size: None,
            exempt: None,
        }
    }
}

/// Validated `[rrl]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlSettings {
    pub rate: u32,
    pub burst: u32,
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub table_size: usize,
    pub exempt: Vec<ipnet::IpNet>,
}

impl Default for RrlSettings {
    fn default() -> Self {
        RrlSettings {
            rate: DEFAULT_RATE,
            burst: 2 * DEFAULT_RATE,
            slip: DEFAULT_SLIP,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            table_size: DEFAULT_TABLE_SIZE,
            exempt: default_exempt(),
        }
    }
}

/// Loopback sources: never spoofed from the network (the kernel drops such packets arriving on
/// any other interface), and where a local resolver or a benchmark asks from.
fn default_exempt() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("a prefix"))
        .collect()
}

/// A whole number in `range`, or a problem at its place.
fn number(
    what: &str,
    v: &Option<Spanned<i64>>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    problem: &mut dyn FnMut(usize, String),
) -> i64 {
    match v {
        None => default,
        Some(n) if range.contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            problem(
                n.span().start,
                format!(
                    "{what}: {} is outside {}..={}",
                    n.get_ref(),
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

/// Validate `[rrl]`: `None` when it is turned off. Problems go to `problem` with their offsets.
pub fn compile(raw: &RrlConfig, problem: &mut dyn FnMut(usize, String)) -> Option<RrlSettings> {
    let d = RrlSettings::default();
    let rate = number(
        "rrl.rate",
        &raw.rate,
        1..=MAX_RATE as i64,
        d.rate as i64,
        problem,
    );
    let burst = number(
        "rrl.burst",
        &raw.burst,
        1..=MAX_BURST as i64,
        (2 * rate).min(MAX_BURST as i64),
        problem,
    );
    let slip = number("rrl.slip", &raw.slip, 0..=100, d.slip as i64, problem);
    let v4 = number("rrl.ipv4_prefix", &raw.ipv4_prefix, 1..=32, 24, problem);
    let v6 = number("rrl.ipv6_prefix", &raw.ipv6_prefix, 1..=128, 56, problem);
    let table_size = number(
        "rrl.table_size",
        &raw.table_size,
        TABLE_SIZES,
        d.table_size as i64,
        problem,
    );
    let exempt = match &raw.exempt {
        None => d.exempt,
        Some(list) => prefixes("rrl.exempt", list, problem),
    };
    raw.enabled.then_some(RrlSettings {
        rate: rate as u32,
        burst: burst as u32,
        slip: slip as u32,
        ipv4_prefix: v4 as u8,
        ipv6_prefix: v6 as u8,
        table_size: table_size as usize,
        exempt,
    })
}

/// Prefixes like `"192.0.2.0/24"` or a bare address; host bits must be clear.
fn prefixes(
    what: &str,
    list: &[Spanned<String>],
    problem: &mut dyn FnMut(usize, String),
) -> Vec<ipnet::IpNet> {
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let s = p.get_ref().trim();
        let net = ipnet::IpNet::from_str(s)
            .or_else(|_| std::net::IpAddr::from_str(s).map(ipnet::IpNet::from));
        match net {
            Ok(n) if n.trunc() != n => problem(
                p.span().start,
                format!(
                    "{what}[{i}]: {s:?} has host bits set (the prefix is {})",
                    n.trunc()
                ),
            ),
            Ok(n) => out.push(n),
            Err(_) => problem(
                p.span().start,
                format!(
                    "{what}[{i}]: {s:?} is not a prefix like \"192.0.2.0/24\" or \"2001:db8::/32\""
                ),
            ),
        }
    }
    out
}

/// The `[cookies]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesConfig {
    /// DNS Cookies (RFC 7873, RFC 9018): issued to every query with a COOKIE option and checked.
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Answer an invalid server cookie with BADCOOKIE (and a fresh cookie) instead of treating it
    /// as a client cookie alone. Default false.
    #[serde(default)]
    pub strict: bool,
    /// How often a new random secret is drawn (the previous one is accepted until the next
    /// change), e.g. "26h" (the default). Ignored with `secret`.
    pub secret_lifetime: Option<Spanned<String>>,
    /// A fixed secret, 32 hex digits, for every server of an anycast set to accept the others'
    /// cookies (RFC 9018). Changed by a reload, the old one is still accepted until the next.
    pub secret: Option<Spanned<String>>,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        CookiesConfig {
            enabled: true,
            strict: false,
            secret_lifetime: None,
            secret: None,
        }
    }
}

/// Validated `[cookies]`.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub strict: bool,
    pub secret_lifetime: Duration,
    pub secret: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSettings")
            .field("strict", &self.strict)
            .field("secret_lifetime", &self.secret_lifetime)
            .field("secret", &self.secret.map(|_| "<redacted>"))
            .finish()
    }
}

/// Validate `[cookies]`: `None` when cookies are turned off.
pub fn compile_cookies(
    raw: &CookiesConfig,
    problem: &mut dyn FnMut(usize, String),
) -> Option<CookieSettings> {
    let secret_lifetime = match &raw.secret_lifetime {
        None => DEFAULT_SECRET_LIFETIME,
        Some(s) => match parse_duration(s.get_ref()) {
            Ok(d) if (MIN_SECRET_LIFETIME..=MAX_SECRET_LIFETIME).contains(&d) => d,
            _ => {
                problem(
                    s.span().start,
                    format!(
                        "cookies.secret_lifetime: {:?} is not a duration from \"1s\" to \"864h\" (36 days), like \"26h\"",
                        s.get_ref()
                    ),
                );
                DEFAULT_SECRET_LIFETIME
            }
        },
    };
    let secret = raw.secret.as_ref().and_then(|s| match hex16(s.get_ref()) {
        Some(k) => Some(k),
        None => {
            problem(
                s.span().start,
                "cookies.secret: must be 32 hex digits (16 bytes)".to_string(),
            );
            None
        }
    });
    raw.enabled.then_some(CookieSettings {
        strict: raw.strict,
        secret_lifetime,
        secret,
    })
}

/// Sixteen bytes from 32 hex digits.
fn hex16(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: i64) -> Option<Spanned<i64>> {
        Some(Spanned::new(0..0, v))
    }

    fn s(v: &str) -> Spanned<String> {
        Spanned::new(0..0, v.to_string())
    }

    #[test]
    fn defaults_are_on() {
        let mut errs = Vec::new();
        let r = compile(&RrlConfig::default(), &mut |_, m| errs.push(m)).unwrap();
        assert_eq!(r, RrlSettings::default());
        assert_eq!((r.rate, r.burst, r.slip), (200, 400, 2));
        assert_eq!((r.ipv4_prefix, r.ipv6_prefix), (24, 56));
        let c = compile_cookies(&CookiesConfig::default(), &mut |_, m| errs.push(m)).unwrap();
        assert_eq!(c.secret_lifetime, Duration::from_secs(26 * 3600));
        assert!(!c.strict && c.secret.is_none());
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn problems_are_reported_and_off_is_none() {
        let raw = RrlConfig {
            enabled: false,
            rate: n(0),
            burst: n(-1),
            slip: n(101),
            ipv4_prefix: n(33),
            ipv6_prefix: n(0),
            table_size: n(10),
            exempt: Some(vec![s("10.0.0.1/8"), s("nonsense"), s("2001:db8::/32")]),
        };
        let mut errs = Vec::new();
        assert!(compile(&raw, &mut |_, m| errs.push(m)).is_none());
        let want = [
            "rrl.rate: 0 is outside 1..=100000",
            "rrl.burst: -1 is outside 1..=1000000",
            "rrl.slip: 101 is outside 0..=100",
            "rrl.ipv4_prefix: 33 is outside 1..=32",
            "rrl.ipv6_prefix: 0 is outside 1..=128",
            "rrl.table_size: 10 is outside 1024..=16777216",
            "rrl.exempt[0]: \"10.0.0.1/8\" has host bits set (the prefix is 10.0.0.0/8)",
            "rrl.exempt[1]: \"nonsense\" is not a prefix",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:?}");
        for (e, w) in errs.iter().zip(want) {
            assert!(e.starts_with(w), "{e} / {w}");
        }
        let raw = CookiesConfig {
            enabled: false,
            strict: true,
            secret_lifetime: Some(s("865h")),
            secret: Some(s("abc")),
        };
        let mut errs = Vec::new();
        assert!(compile_cookies(&raw, &mut |_, m| errs.push(m)).is_none());
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("cookies.secret_lifetime"), "{errs:?}");
        assert!(
            errs[1].starts_with("cookies.secret: must be 32 hex"),
            "{errs:?}"
        );
        assert_eq!(
            hex16("000102030405060708090a0b0c0d0eFF"),
            Some([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255])
        );
        assert_eq!(hex16("000102030405060708090a0b0c0d0eZZ"), None);
    }

    #[test]
    fn burst_follows_rate_unless_given() {
        let mut errs = Vec::new();
        let r = compile(
            &RrlConfig {
                rate: n(1000),
                ..RrlConfig::default()
            },
            &mut |_, m| errs.push(m),
        )
        .unwrap();
        assert_eq!(r.burst, 2000);
        let r = compile(
            &RrlConfig {
                rate: n(1000),
                burst: n(10),
                exempt: Some(vec![]),
                ..RrlConfig::default()
            },
            &mut |_, m| errs.push(m),
        )
        .unwrap();
        assert_eq!((r.burst, r.exempt.len()), (10, 0));
        assert!(errs.is_empty());
    }
}
