//! The `[fleet]` table: the other Meridian instances this one pulls health observations from.
//!
//! Each instance serves what its own probes see at `GET /fleet/observations` on its admin
//! listener and pulls the same from every peer (the top-level `fleet` module). This table says who the peers
//! are (their admin listeners' base URLs), how often they are pulled, how long their data counts
//! as fresh, how many vantages make a quorum, and the shared secret. Every problem is reported
//! with its place, like the rest of the configuration.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::admin::secret;
use super::health::parse_duration;

/// Pull period when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Shortest pull period accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// `max_age` when not set: this many intervals.
pub const DEFAULT_MAX_AGE_INTERVALS: u32 = 5;

/// `[fleet]`: peers to pull health observations from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The other instances' admin listeners, as base URLs with scheme, host and port, e.g.
    /// `"https://ns3.example.net:9353"`; each is pulled at `{url}/fleet/observations`.
    #[serde(default)]
    pub peers: Vec<Spanned<String>>,
    /// How often each peer is pulled (the first pull is at once). Default "2s".
    pub interval: Option<Spanned<String>>,
    /// A peer's data older than this (since it was received) is no longer fresh. At least
    /// `interval`; default 5 × `interval`.
    pub max_age: Option<Spanned<String>>,
    /// How many vantages must agree: "majority" (default) or a number of vantages from 1 up.
    pub quorum: Option<Spanned<toml::Value>>,
    /// The fleet's shared secret: peers must send it as `Authorization: Bearer TOKEN` to read
    /// this instance's observations, and it is sent to them. Without one (and without
    /// `token_env`) observations are open like the admin API's other `GET`s.
    pub token: Option<Spanned<String>>,
    /// Name of an environment variable holding the fleet token (instead of `token`). Read
    /// whenever the configuration is loaded.
    pub token_env: Option<Spanned<String>>,
    /// Probe sharding: each endpoint is probed by this many of the live instances (this one
    /// and the peers whose data is fresh), chosen by rendezvous hashing of endpoint and node
    /// names. Unset: every instance probes every endpoint.
    pub probes_per_endpoint: Option<Spanned<toml::Value>>,
}

/// How many vantages make a quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// More than half of the vantages that have fresh data.
    Majority,
    /// At least this many vantages.
    AtLeast(NonZeroU32),
}

/// Validated `[fleet]` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSettings {
    /// This instance's name (`[node] name`): peers refuse observations that carry their own.
    pub node: String,
    /// This instance's vantage: the name of its region (`[node] region`).
    pub vantage: String,
    /// Peers' base URLs, without a trailing `/`, in configured order.
    pub peers: Vec<String>,
    /// Pull period.
    pub interval: Duration,
    /// How long a peer's data stays fresh after it is received.
    pub max_age: Duration,
    pub quorum: Quorum,
    /// The shared secret, when one is configured.
    pub token: Option<String>,
    /// How many live instances probe each endpoint; `None`: every instance probes every one.
    pub probes_per_endpoint: Option<NonZeroU32>,
}

impl fmt::Debug for FleetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetSettings")
            .field("node", &self.node)
            .field("vantage", &self.vantage)
            .field("peers", &self.peers)
            .field("interval", &self.interval)
            .field("max_age", &self.max_age)
            .field("quorum", &self.quorum)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("probes_per_endpoint", &self.probes_per_endpoint)
            .finish()
    }
}

/// Validate `[fleet]` (at byte `at` of the file) for the node `node` in region `region` (its
/// `[node] region`, with its place); every problem goes to `err(byte offset, message)`. `None`
/// when there are problems.
pub fn compile(
    raw: &FleetConfig,
    at: usize,
    node: &str,
    region: Option<&Spanned<String>>,
    err: &mut dyn FnMut(usize, String),
) -> Option<FleetSettings> {
    let mut ok = true;
    let mut fail = |offset: usize, msg: String| {
        ok = false;
        err(offset, msg)
    };
    let vantage = match region {
        Some(r) => r.get_ref().clone(),
        None => {
            fail(
                at,
                "fleet: node.region is required with [fleet]: it is this instance's vantage, \
                 which its observations are labelled with"
                    .into(),
            );
            String::new()
        }
    };
    let mut peers: Vec<String> = Vec::new();
    for (i, p) in raw.peers.iter().enumerate() {
        match peer_url(p.get_ref()) {
            Ok(url) if peers.contains(&url) => fail(
                p.span().start,
                format!("fleet.peers[{i}]: {url} is listed twice"),
            ),
            Ok(url) => peers.push(url),
            Err(why) => fail(
                p.span().start,
                format!("fleet.peers[{i}]: {:?} {why}", p.get_ref()),
            ),
        }
    }
    let mut duration = |d: &Option<Spanned<String>>, name: &str| -> Option<Duration> {
        let d = d.as_ref()?;
        match parse_duration(d.get_ref()) {
            Ok(v) if v >= MIN_INTERVAL => Some(v),
            Ok(_) => {
                fail(
                    d.span().start,
                    format!(
                        "fleet.{name}: {:?} is shorter than {MIN_INTERVAL:?}",
                        d.get_ref()
                    ),
                );
                None
            }
            Err(e) => {
                fail(
                    d.span().start,
                    format!("fleet.{name}: {e} (a duration like \"2s\")"),
                );
                None
            }
        }
    };
    let interval = duration(&raw.interval, "interval").unwrap_or(DEFAULT_INTERVAL);
    let max_age = duration(&raw.max_age, "max_age");
    if let (Some(m), Some(span)) = (max_age, &raw.max_age)
        && m < interval
    {
        fail(
            span.span().start,
            format!(
                "fleet.max_age: {m:?} is shorter than fleet.interval ({interval:?}): every peer \
                 would go stale between two pulls"
            ),
        );
    }
    let max_age = max_age.unwrap_or(interval * DEFAULT_MAX_AGE_INTERVALS);
    let quorum = match &raw.quorum {
        None => Quorum::Majority,
        Some(q) => match q.get_ref() {
            toml::Value::String(s) if s == "majority" => Quorum::Majority,
            toml::Value::Integer(n) => match u32::try_from(*n).ok().and_then(NonZeroU32::new) {
                Some(n) => Quorum::AtLeast(n),
                None => {
                    fail(
                        q.span().start,
                        format!("fleet.quorum: {n} is not a number of vantages (1 or more)"),
                    );
                    Quorum::Majority
                }
            },
            other => {
                fail(
                    q.span().start,
                    format!(
                        "fleet.quorum: {other} is neither \"majority\" nor a number of vantages"
                    ),
                );
                Quorum::Majority
            }
        },
    };
    let probes_per_endpoint = raw.probes_per_endpoint.as_ref().and_then(|k| {
        let n = match k.get_ref() {
            toml::Value::Integer(n) => u32::try_from(*n).ok().and_then(NonZeroU32::new),
            _ => None,
        };
        if n.is_none() {
            fail(
                k.span().start,
                format!(
                    "fleet.probes_per_endpoint: {} is not a number of instances (1 or more)",
                    k.get_ref()
                ),
            );
        }
        n
    });
    let token = secret(&raw.token, &raw.token_env, "fleet", &mut fail);
    let token = token.ok()?;
    ok.then(|| FleetSettings {
        node: node.to_string(),
        vantage,
        peers,
        interval,
        max_age,
        quorum,
        token,
        probes_per_endpoint,
    })
}

/// A peer's base URL, checked and normalised (no trailing `/`), or why it is not one.
fn peer_url(text: &str) -> Result<String, &'static str> {
    let url = reqwest::Url::parse(text).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("carries credentials: set fleet.token or fleet.token_env instead");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("has a query or fragment: give the admin listener's base URL");
    }
    // The URL type drops a scheme's default port: look for one in the text itself.
    if url.port().is_none() && !has_port(text) {
        return Err("has no port (the peer's admin listener, e.g. :9353)");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Whether the authority of an absolute URL's text ends in `:PORT`.
fn has_port(text: &str) -> bool {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    authority[host_end..]
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Spanned<String> {
        Spanned::new(0..0, v.to_string())
    }

    fn run(raw: &FleetConfig) -> (Option<FleetSettings>, Vec<String>) {
        let mut errs = Vec::new();
        let region = s("eu");
        let f = compile(raw, 0, "eu-1", Some(&region), &mut |_, m| errs.push(m));
        (f, errs)
    }

    #[test]
    fn defaults() {
        let (f, e) = run(&FleetConfig::default());
        assert!(e.is_empty(), "{e:?}");
        let f = f.unwrap();
        assert_eq!(
            (f.interval, f.max_age),
            (DEFAULT_INTERVAL, 5 * DEFAULT_INTERVAL)
        );
        assert_eq!(f.quorum, Quorum::Majority);
        assert_eq!(f.probes_per_endpoint, None);
        assert_eq!((f.node.as_str(), f.vantage.as_str()), ("eu-1", "eu"));
    }

    #[test]
    fn peer_urls() {
        for (text, want) in [
            ("http://127.0.0.1:9354", Ok("http://127.0.0.1:9354")),
            (
                "https://ns3.example.net:9353/",
                Ok("https://ns3.example.net:9353"),
            ),
            ("http://[::1]:80", Ok("http://[::1]")),
            (
                "https://Host.Example:443/meridian/",
                Ok("https://host.example/meridian"),
            ),
            ("http://127.0.0.1", Err("has no port")),
            ("http://[::1]/", Err("has no port")),
            ("ftp://h:1", Err("is not an http")),
            ("127.0.0.1:9353", Err("is not a URL")),
            ("ns1:9353", Err("is not an http")),
            ("nonsense", Err("is not a URL")),
            ("http://u:p@h:1", Err("carries credentials")),
            ("http://h:1/?a=b", Err("has a query")),
        ] {
            match (peer_url(text), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{text}"),
                (Err(got), Err(w)) => assert!(got.starts_with(w), "{text}: {got}"),
                (got, w) => panic!("{text}: {got:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn problems() {
        let raw = FleetConfig {
            peers: vec![s("http://a:1"), s("http://a:1/"), s("http://b")],
            interval: Some(s("2s")),
            max_age: Some(s("1s")),
            quorum: Some(Spanned::new(0..0, toml::Value::Integer(0))),
            token: Some(s("t")),
            token_env: Some(s("X")),
            probes_per_endpoint: None,
        };
        let (f, e) = run(&raw);
        assert!(f.is_none());
        let want = [
            "fleet.peers[1]: http://a:1 is listed twice",
            "fleet.peers[2]: \"http://b\" has no port",
            "fleet.max_age: 1s is shorter than fleet.interval",
            "fleet.quorum: 0 is not a number of vantages",
            "fleet.token_env: set either token or token_env",
        ];
        assert_eq!(e.len(), want.len(), "{e:?}");
        for (got, w) in e.iter().zip(want) {
            assert!(got.starts_with(w), "{got} / {w}");
        }
        let raw = FleetConfig {
            quorum: Some(Spanned::new(0..0, toml::Value::String("most".into()))),
            interval: Some(s("fast")),
            ..FleetConfig::default()
        };
        let (_, e) = run(&raw);
        assert!(e[0].starts_with("fleet.interval: "), "{e:?}");
        assert!(e[1].contains("neither \"majority\""), "{e:?}");
        let raw = FleetConfig {
            quorum: Some(Spanned::new(0..0, toml::Value::Integer(3))),
            ..FleetConfig::default()
        };
        assert_eq!(
            run(&raw).0.unwrap().quorum,
            Quorum::AtLeast(NonZeroU32::new(3).unwrap())
        );
    }

    #[test]
    fn probes_per_endpoint() {
        let k = |v: toml::Value| FleetConfig {
            probes_per_endpoint: Some(Spanned::new(0..0, v)),
            ..FleetConfig::default()
        };
        let (f, e) = run(&k(toml::Value::Integer(2)));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(f.unwrap().probes_per_endpoint, NonZeroU32::new(2));
        for bad in [
            toml::Value::Integer(0),
            toml::Value::Integer(-1),
            "all".into(),
        ] {
            let (f, e) = run(&k(bad.clone()));
            assert!(f.is_none(), "{bad}");
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                e[0].starts_with("fleet.probes_per_endpoint: ") && e[0].contains("1 or more"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn region_is_required() {
        let mut errs = Vec::new();
        let f = compile(&FleetConfig::default(), 7, "n", None, &mut |at, m| {
            errs.push((at, m))
        });
        assert!(f.is_none());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, 7);
        assert!(errs[0].1.contains("node.region is required"), "{errs:?}");
    }
}
