//! Pools and endpoints: what is probed and what is answered, plus health notifications.
//!
//! A pool sits in a region and holds endpoints; each endpoint has an IPv4 and/or IPv6 address
//! (answered as A/AAAA) or a hostname (answered as a CNAME), a weight and a capacity, and runs
//! its pool's checks plus its own. Both the health monitor and the policy engine read the
//! compiled [`Pool`]s, in the same order.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::RawConfig;
use super::health::{self, Problems, parse_duration};
use super::model::{Endpoint, EndpointId};
use crate::health::state::StartupPolicy;

/// `[[pool]]`: endpoints that serve together, probed by the same checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Unique pool name.
    pub name: Spanned<String>,
    /// Checks every endpoint of the pool runs.
    #[serde(default)]
    pub checks: Vec<Spanned<String>>,
    /// Health assumed until the first verdict: "assume_up" (default) or "assume_down".
    pub startup: Option<Spanned<String>>,
    /// The region the pool serves from (a `[[region]]` name); needed by services.
    pub region: Option<Spanned<String>>,
    /// Pool weight for the `weighted` policy (0..=1,000,000); 0 = standby pool. Default 1.
    pub weight: Option<Spanned<u32>>,
    /// [latitude, longitude] of the pool's datacenter, in degrees. Default: its region's
    /// location.
    pub location: Option<Spanned<[f64; 2]>>,
    /// Most share (0..=1) of a service's traffic that spill from other pools may bring this
    /// pool to. Default: its own clients' share × the service's overprovisioning.
    pub max_share: Option<Spanned<f64>>,
    /// The pool's endpoints.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
}

/// `[[pool.endpoint]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Unique endpoint name (across all pools).
    pub name: Spanned<String>,
    /// Address answered in DNS (IPv4 → A, IPv6 → AAAA).
    pub address: Option<Spanned<String>>,
    /// A second address of the other family, so the endpoint answers both A and AAAA.
    pub address6: Option<Spanned<String>>,
    /// A hostname answered as a CNAME instead of addresses (CDN origin steering).
    pub hostname: Option<Spanned<String>>,
    /// Address probed instead, when checks go through a private address or a sidecar.
    /// Default: `address`, else `address6`.
    pub check_address: Option<Spanned<String>>,
    /// Share of the pool's traffic (0..=1,000,000); 0 = standby. Default 1.
    pub weight: Option<Spanned<u32>>,
    /// Relative capacity for graded failover. Default: the weight (1 for standby).
    pub capacity: Option<u32>,
    /// Checks for this endpoint only, run in addition to the pool's.
    #[serde(default)]
    pub checks: Vec<Spanned<String>>,
}

/// A webhook notified of every endpoint state change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL to POST the JSON event to (http or https).
    pub url: Spanned<String>,
    /// Timeout of one delivery attempt. Default "2s".
    pub timeout: Option<Spanned<String>>,
    /// Further attempts after a failed one (with back-off). Default 3.
    pub retries: Option<u32>,
}

/// `[health]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// File where manual overrides are kept across restarts. Default: none (overrides are
    /// then lost on restart).
    pub state_file: Option<String>,
    /// Webhooks notified of state changes.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// A pool of endpoints.
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub startup: StartupPolicy,
    /// Region name, when given (services require it).
    pub region: Option<Spanned<String>>,
    pub weight: u32,
    /// Shared with the policy model's pool (`PoolDef`).
    pub endpoints: Arc<[Endpoint]>,
    /// [latitude, longitude], when given.
    pub location: Option<Spanned<[f64; 2]>>,
    /// Most share of a service's traffic spill may bring it to, when given.
    pub max_share: Option<f64>,
    /// Byte offset of the pool's name in the config, for errors found later.
    pub at: usize,
}

/// A compiled webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub timeout: std::time::Duration,
    pub retries: u32,
}

/// Largest pool or endpoint weight. The `weighted` policy draws by pool weight × endpoint
/// weight, summed over a service's endpoints in 64 bits: with weights up to this, a million
/// endpoints cannot overflow the sum (any `u32` could, with two endpoints: found by fuzzing the
/// policy engine). Ratios finer than one in a million make no difference to a draw anyway.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// A configured weight, checked against [`MAX_WEIGHT`] (`what` names the field); 1 when absent.
fn weight_of(w: &Option<Spanned<u32>>, what: &dyn Fn() -> String, problems: &mut Problems) -> u32 {
    let Some(w) = w else { return 1 };
    let v = *w.get_ref();
    if v > MAX_WEIGHT {
        problems.push((
            w.span().start,
            format!("{}.weight: {v} is outside 0..={MAX_WEIGHT}", what()),
        ));
    }
    v.min(MAX_WEIGHT)
}

/// Names seen, borrowed from the raw configuration (a fast hash: the names are the operator's).
type Names<'a> = HashSet<&'a str, foldhash::fast::RandomState>;

/// Compile checks, pools and webhooks; every problem goes to `err(offset, message)`.
pub fn compile(raw: &RawConfig, err: &mut dyn FnMut(usize, String)) -> (Vec<Pool>, Vec<Webhook>) {
    let mut problems = Vec::new();
    let mut checks: BTreeMap<&str, Arc<health::Check>> = BTreeMap::new();
    for (name, c) in &raw.checks {
        if let Some(check) = c.compile(name, &mut problems) {
            checks.insert(name, Arc::new(check));
        }
    }
    let resolve =
        |names: &[Spanned<String>], what: &dyn Fn() -> String, problems: &mut Problems| {
            let mut out = Vec::new();
            for n in names {
                match checks.get(n.get_ref().as_str()) {
                    Some(c) => out.push(Arc::clone(c)),
                    None if raw.checks.contains_key(n.get_ref()) => {} // reported already
                    None => problems.push((
                        n.span().start,
                        format!("{}: check {:?} is not defined", what(), n.get_ref()),
                    )),
                }
            }
            out
        };
    let mut pools = Vec::new();
    // Names are looked up by hash, borrowed from the raw configuration, in sets sized once.
    let endpoint_count = raw.pools.iter().map(|p| p.endpoints.len()).sum();
    let mut pool_names = Names::with_capacity_and_hasher(raw.pools.len(), Default::default());
    let mut endpoint_names = Names::with_capacity_and_hasher(endpoint_count, Default::default());
    let mut next_id = 0u32;
    for p in &raw.pools {
        let pname = p.name.get_ref();
        if !pool_names.insert(pname) {
            problems.push((
                p.name.span().start,
                format!("pool {pname:?} is defined twice"),
            ));
        }
        let startup = match p.startup.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("assume_up") => StartupPolicy::AssumeUp,
            Some("assume_down") => StartupPolicy::AssumeDown,
            Some(other) => {
                let at = p.startup.as_ref().map_or(0, |s| s.span().start);
                problems.push((
                    at,
                    format!(
                        "pool {pname:?}.startup: {other:?} is not \"assume_up\" or \"assume_down\""
                    ),
                ));
                StartupPolicy::AssumeUp
            }
        };
        let pool_checks = resolve(&p.checks, &|| format!("pool {pname:?}"), &mut problems);
        let mut endpoints = Vec::new();
        for e in &p.endpoints {
            // Endpoint ids are positions among every endpoint, pool after pool.
            let ename = e.name.get_ref();
            // The path for messages, written only when there is one to write.
            let what = || format!("pool {pname:?}: endpoint {ename:?}");
            if !endpoint_names.insert(ename) {
                problems.push((
                    e.name.span().start,
                    format!(
                        "{} is defined twice (endpoint names are unique across pools)",
                        what()
                    ),
                ));
            }
            if let Some(mut e) =
                compile_endpoint(e, &what, &pool_checks, &resolve, raw, &mut problems)
            {
                e.id = EndpointId(next_id);
                next_id += 1;
                endpoints.push(e);
            }
        }
        pools.push(Pool {
            name: pname.clone(),
            startup,
            region: p.region.clone(),
            location: p.location.clone(),
            max_share: p.max_share.as_ref().map(|m| {
                let v = *m.get_ref();
                if !(v > 0.0 && v <= 1.0) {
                    problems.push((
                        m.span().start,
                        format!("pool {pname:?}.max_share: {v} is outside (0, 1]"),
                    ));
                }
                v.clamp(0.0, 1.0)
            }),
            weight: weight_of(&p.weight, &|| format!("pool {pname:?}"), &mut problems),
            endpoints: endpoints.into(),
            at: p.name.span().start,
        });
    }
    let mut webhooks = Vec::new();
    for (i, w) in raw.health.webhooks.iter().enumerate() {
        let url = w.url.get_ref();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push((
                w.url.span().start,
                format!("health.webhooks[{i}].url: {url:?} is not an http(s) URL"),
            ));
        }
        let timeout = match &w.timeout {
            None => std::time::Duration::from_secs(2),
            Some(t) => parse_duration(t.get_ref()).unwrap_or_else(|e| {
                problems.push((t.span().start, format!("health.webhooks[{i}].timeout: {e}")));
                std::time::Duration::from_secs(2)
            }),
        };
        webhooks.push(Webhook {
            url: url.clone(),
            timeout,
            retries: w.retries.unwrap_or(3),
        });
    }
    for (offset, msg) in problems {
        err(offset, msg);
    }
    (pools, webhooks)
}

/// Resolves check names (with the path for messages) to compiled checks.
type ResolveChecks<'a> =
    dyn Fn(&[Spanned<String>], &dyn Fn() -> String, &mut Problems) -> Vec<Arc<health::Check>> + 'a;

fn compile_endpoint(
    e: &EndpointConfig,
    what: &dyn Fn() -> String,
    pool_checks: &[Arc<health::Check>],
    resolve: &ResolveChecks,
    raw: &RawConfig,
    problems: &mut Problems,
) -> Option<Endpoint> {
    let start = problems.len();
    let at = e.name.span().start;
    let (mut ipv4, mut ipv6) = (None, None);
    for (field, v) in [("address", &e.address), ("address6", &e.address6)] {
        let Some(v) = v else { continue };
        match health::parse_ip(v, &|| format!("{}.{field}", what()), problems) {
            Some(IpAddr::V4(a)) if ipv4.is_none() => ipv4 = Some(a),
            Some(IpAddr::V6(a)) if ipv6.is_none() => ipv6 = Some(a),
            Some(_) => problems.push((
                v.span().start,
                format!("{}.{field}: a second address of the same family", what()),
            )),
            None => {}
        }
    }
    let hostname =
        e.hostname
            .as_ref()
            .and_then(|h| match hickory_proto::rr::Name::from_ascii(h.get_ref()) {
                Ok(mut n) => {
                    n.set_fqdn(true);
                    Some(n.to_lowercase().to_string())
                }
                Err(err) => {
                    problems.push((
                        h.span().start,
                        format!("{}.hostname: {:?}: {err}", what(), h.get_ref()),
                    ));
                    None
                }
            });
    if hostname.is_some() && (ipv4.is_some() || ipv6.is_some()) {
        problems.push((
            at,
            format!("{}: give addresses or a hostname, not both", what()),
        ));
    }
    if e.hostname.is_none() && e.address.is_none() && e.address6.is_none() {
        problems.push((
            at,
            format!("{}: needs an address, address6 or hostname", what()),
        ));
    }
    let check_address = match &e.check_address {
        Some(c) => health::parse_ip(c, &|| format!("{}.check_address", what()), problems),
        None => ipv4.map(IpAddr::V4).or(ipv6.map(IpAddr::V6)),
    };
    let mut all = pool_checks.to_vec();
    all.extend(resolve(&e.checks, what, problems));
    if !all.is_empty() && check_address.is_none() && problems.len() == start {
        problems.push((
            at,
            format!(
                "{}: has checks but no address to probe (set check_address)",
                what()
            ),
        ));
    }
    // HTTP checks: build the request once here so that bad headers, hosts or certificate stores
    // are reported by `meridian check`, not at the first probe.
    if let Some(address) = check_address {
        for c in &all {
            if let crate::health::probe::ProbeSpec::Http(h) = &c.spec {
                let target = crate::health::probe::Target {
                    address,
                    port: c.port,
                    endpoint: e.name.get_ref().clone(),
                };
                if let Err(err) = crate::health::probe::http::HttpProber::new(h, &target) {
                    let at = raw.checks.get(&c.name).map_or(0, |k| k.kind.span().start);
                    problems.push((at, format!("checks.{}: {err} (for {})", c.name, what())));
                }
            }
        }
    }
    let weight = weight_of(&e.weight, what, problems);
    if problems.len() > start {
        return None;
    }
    Some(Endpoint {
        id: EndpointId::default(), // numbered by `compile` once the endpoint is kept
        name: e.name.get_ref().clone(),
        ipv4,
        ipv6,
        hostname,
        weight,
        capacity: e.capacity.unwrap_or(weight.max(1)),
        check_address,
        checks: all,
    })
}
