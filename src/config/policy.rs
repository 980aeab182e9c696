//! The steering part of the configuration: this node, the GeoIP database, regions, services.
//!
//! Compiles into the model ([`super::model`]) the policy engine reads, with every reference
//! (a pool's region, a service's pools, a region's fallback) checked and located.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::health::Problems;
use super::pools::Pool;
use crate::config::model::{Fallback, Layout, Percentile, PolicyKind, PoolDef, Region, ServiceDef};

/// `[node]`: this instance.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This instance's name, unique among the instances serving the same zones: the NSID it
    /// sends (see `nsid`). Default: the host name.
    pub name: Option<Spanned<String>>,
    /// The region this instance runs in: its probes measure latency from here (its vantage).
    pub region: Option<Spanned<String>>,
    /// Answer the EDNS Name Server Identifier option (RFC 5001) with `name`, so that an
    /// operator can tell which instance behind an anycast address or NS name answered.
    /// Default false, as in Knot and NSD.
    #[serde(default)]
    pub nsid: bool,
}

/// `[geo]`: how clients are located.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// MaxMind DB file (GeoIP2/GeoLite2 City or Country, DB-IP, or ip-location-db country),
    /// relative to the config file. A replaced file is picked up without restart.
    pub database: Option<Spanned<String>>,
    /// Region for clients nothing else places. Default: the first region.
    pub default_region: Option<Spanned<String>>,
    /// CIDR prefixes placed in a region regardless of the database; longest prefix wins.
    #[serde(default)]
    pub overrides: Vec<GeoOverride>,
    /// Where clients are, for sizing spill by capacity: "database" (default: every IPv4
    /// network of the database, weighted by its address count), "none", or a CSV file of
    /// `network,weight` lines relative to the config file (e.g. query counts from logs).
    pub demand: Option<Spanned<String>>,
}

/// One `[[geo.overrides]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoOverride {
    /// e.g. "198.51.100.0/24".
    pub prefix: Spanned<String>,
    pub region: Spanned<String>,
}

/// `[[region]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Unique region name.
    pub name: Spanned<String>,
    /// [latitude, longitude] in degrees.
    pub location: Spanned<[f64; 2]>,
    /// Continent codes mapped here ("EU", "NA", "AS", "SA", "AF", "OC", "AN").
    #[serde(default)]
    pub continents: Vec<Spanned<String>>,
    /// ISO 3166-1 country codes mapped here.
    #[serde(default)]
    pub countries: Vec<Spanned<String>>,
    /// ISO 3166-2 subdivision codes mapped here, e.g. "US-CA".
    #[serde(default)]
    pub subdivisions: Vec<Spanned<String>>,
    /// Client prefixes mapped here.
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    /// Regions to fall back to, in order, when this region's pools cannot serve (`geo` policy).
    #[serde(default)]
    pub fallback: Vec<Spanned<String>>,
}

/// `[[service]]`: a dynamic name answered by the policy engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The name, inside a served zone, e.g. "www.example.com.".
    pub name: Spanned<String>,
    /// "failover", "weighted", "geo", "latency" or "nearest".
    pub policy: Spanned<String>,
    /// Pool names, each once; for `failover`, in priority order.
    pub pools: Vec<Spanned<String>>,
    /// Most endpoints per answer (1..=8). Default 1.
    pub answers: Option<Spanned<usize>>,
    /// TTL of answers while healthy. Default 60.
    pub ttl: Option<u32>,
    /// TTL while degraded (an endpoint withdrawn, a spill, or a fallback). Default 10.
    pub failover_ttl: Option<u32>,
    /// When nothing can serve: "all" (default, fail open), or { addresses = [...] },
    /// or { cname = "backup.example.net." }.
    pub fallback: Option<Spanned<FallbackConfig>>,
    /// Share a degraded pool keeps = min(1, healthy fraction × this). Default 1.4.
    pub overprovisioning: Option<f64>,
    /// Latency percentile used by `latency`: "p50" (default) or "p90".
    pub percentile: Option<Spanned<String>>,
    /// `latency`: a new best pool must beat the current one by this fraction... Default 0.2.
    pub hysteresis_ratio: Option<f64>,
    /// ...and by at least this many milliseconds. Default 10.
    pub hysteresis_ms: Option<f64>,
    /// Locate clients by EDNS Client Subnet when the query carries one. Default true.
    pub ecs: Option<bool>,
    /// `nearest`/`latency`: pools within this many km of a level's first pool share its
    /// traffic by capacity. Default 50.
    pub tie_km: Option<f64>,
    /// ...or within this fraction of its distance, whichever is more. Default 0.05.
    pub tie_ratio: Option<f64>,
    /// ...widened by this fraction of the client's accuracy radius. Default 0.5.
    pub tie_radius: Option<f64>,
    /// "bounded" (default): spill from failed pools goes to the next pools only up to their
    /// capacity, the rest further on; "unbounded": each client place spills on its own.
    pub spill: Option<Spanned<String>>,
}

/// A service's fallback.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FallbackConfig {
    Word(String),
    Addresses { addresses: Vec<String> },
    Cname { cname: String },
}

/// Geo settings compiled: what the geo module needs to place clients.
#[derive(Debug, Clone)]
pub struct GeoSettings {
    pub database: Option<PathBuf>,
    /// Where clients are, weighted (`[geo] demand`).
    pub demand: DemandSource,
    pub default_region: usize,
    pub overrides: Vec<(IpNet, usize)>,
    /// Per region (same index as the regions): how clients map to it.
    pub regions: Vec<RegionRules>,
}

/// Where the demand that sizes spill comes from (`[geo] demand`).
#[derive(Debug, Clone, Default)]
pub enum DemandSource {
    /// Every IPv4 network of the GeoIP database, weighted by its address count.
    #[default]
    Database,
    /// None: spill is bounded per client place only.
    None,
    /// These networks, from the file named.
    Networks(
        PathBuf,
        std::sync::Arc<Vec<crate::geo::networks::ClientNetwork>>,
    ),
}

/// How clients map to one region.
#[derive(Debug, Clone, Default)]
pub struct RegionRules {
    pub continents: Vec<String>,
    pub countries: Vec<String>,
    pub subdivisions: Vec<String>,
    pub prefixes: Vec<IpNet>,
}

/// The compiled steering configuration.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub regions: Vec<Region>,
    /// Same order and endpoint order as the config's pools.
    pub pools: Vec<PoolDef>,
    pub services: Vec<ServiceDef>,
    /// This node's region (its latency vantage); `None` when no region is configured.
    pub node_region: Option<usize>,
    pub geo: Option<GeoSettings>,
    /// This compilation's serial: the layout the endpoints' [`EndpointId`]s belong to.
    ///
    /// [`EndpointId`]: crate::config::model::EndpointId
    pub layout: Layout,
}

impl Model {
    /// How many [`EndpointId`] slots the model's endpoints take (the highest id + 1): the length
    /// of a view indexed by them.
    ///
    /// [`EndpointId`]: crate::config::model::EndpointId
    pub fn endpoint_slots(&self) -> usize {
        self.pools
            .iter()
            .flat_map(|p| p.endpoints.iter())
            .map(|e| e.id.index() + 1)
            .max()
            .unwrap_or(0)
    }
}

#[allow(clippy::too_many_arguments)]
fn region_index(
    name: &Spanned<String>,
    index: &HashMap<String, usize>,
    what: &str,
    problems: &mut Problems,
) -> Option<usize> {
    let i = index.get(name.get_ref()).copied();
    if i.is_none() {
        problems.push((
            name.span().start,
            format!("{what}: region {:?} is not defined", name.get_ref()),
        ));
    }
    i
}

/// Compile node, geo, regions and services against the compiled pools.
pub fn compile(
    node: &NodeConfig,
    geo: &GeoConfig,
    regions: &[RegionConfig],
    services: &[ServiceConfig],
    pools: &[Pool],
    base: &Path,
    problems: &mut Problems,
) -> Model {
    let mut index = HashMap::new();
    for (i, r) in regions.iter().enumerate() {
        if index.insert(r.name.get_ref().clone(), i).is_some() {
            problems.push((
                r.name.span().start,
                format!("region {:?} is defined twice", r.name.get_ref()),
            ));
        }
    }
    let mut out_regions = Vec::new();
    let mut rules = Vec::new();
    for r in regions {
        let what = format!("region {:?}", r.name.get_ref());
        let [lat, lon] = *r.location.get_ref();
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            problems.push((
                r.location.span().start,
                format!("{what}.location: [{lat}, {lon}] is not [latitude, longitude]"),
            ));
        }
        let fallback = r
            .fallback
            .iter()
            .filter_map(|f| region_index(f, &index, &format!("{what}.fallback"), problems))
            .collect();
        out_regions.push(Region {
            name: r.name.get_ref().clone(),
            lat,
            lon,
            fallback,
        });
        let mut rule = RegionRules::default();
        for c in &r.continents {
            let code = c.get_ref().to_ascii_uppercase();
            if !["AF", "AN", "AS", "EU", "NA", "OC", "SA"].contains(&code.as_str()) {
                problems.push((
                    c.span().start,
                    format!(
                        "{what}.continents: {:?} is not a continent code",
                        c.get_ref()
                    ),
                ));
            }
            rule.continents.push(code);
        }
        for c in &r.countries {
            let code = c.get_ref().to_ascii_uppercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                problems.push((
                    c.span().start,
                    format!(
                        "{what}.countries: {:?} is not an ISO 3166-1 alpha-2 code",
                        c.get_ref()
                    ),
                ));
            }
            rule.countries.push(code);
        }
        for s in &r.subdivisions {
            let code = s.get_ref().to_ascii_uppercase();
            if code.len() < 4 || code.as_bytes()[2] != b'-' {
                problems.push((
                    s.span().start,
                    format!(
                        "{what}.subdivisions: {:?} is not like \"US-CA\"",
                        s.get_ref()
                    ),
                ));
            }
            rule.subdivisions.push(code);
        }
        for p in &r.prefixes {
            match IpNet::from_str(p.get_ref()) {
                Ok(n) => rule.prefixes.push(n.trunc()),
                Err(_) => problems.push((
                    p.span().start,
                    format!("{what}.prefixes: {:?} is not a CIDR prefix", p.get_ref()),
                )),
            }
        }
        rules.push(rule);
    }

    let node_region = node
        .region
        .as_ref()
        .and_then(|r| region_index(r, &index, "node.region", problems));

    // Pools in the policy model, in config order; found by name (borrowed) through one index.
    let mut pool_defs = Vec::with_capacity(pools.len());
    let mut pool_index: HashMap<&str, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(pools.len(), Default::default());
    for (i, p) in pools.iter().enumerate() {
        pool_index.insert(p.name.as_str(), i);
        let region = match &p.region {
            Some(r) => match index.get(r.get_ref()) {
                Some(&i) => i,
                None => region_index(r, &index, &format!("pool {:?}.region", p.name), problems)
                    .unwrap_or(0),
            },
            None => usize::MAX, // checked below if a service uses the pool
        };
        let endpoints = std::sync::Arc::clone(&p.endpoints);
        let (lat, lon) = match &p.location {
            Some(l) => {
                let [lat, lon] = *l.get_ref();
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    problems.push((
                        l.span().start,
                        format!(
                            "pool {:?}.location: [{lat}, {lon}] is not [latitude, longitude]",
                            p.name
                        ),
                    ));
                }
                (lat.clamp(-90.0, 90.0), lon.clamp(-180.0, 180.0))
            }
            None => out_regions
                .get(region)
                .map_or((0.0, 0.0), |r: &Region| (r.lat, r.lon)),
        };
        pool_defs.push(PoolDef {
            name: p.name.clone(),
            region,
            weight: p.weight,
            endpoints,
            lat,
            lon,
            max_share: p.max_share,
        });
    }

    let mut out_services = Vec::with_capacity(services.len());
    let mut service_names: std::collections::HashSet<String, foldhash::fast::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(services.len(), Default::default());
    for s in services {
        let name = match hickory_proto::rr::Name::from_ascii(s.name.get_ref()) {
            Ok(mut n) => {
                n.set_fqdn(true);
                n.to_lowercase().to_string()
            }
            Err(e) => {
                problems.push((
                    s.name.span().start,
                    format!("service {:?}: {e}", s.name.get_ref()),
                ));
                continue;
            }
        };
        let what = format!("service {:?}", s.name.get_ref());
        if !service_names.insert(name.clone()) {
            problems.push((s.name.span().start, format!("{what} is defined twice")));
        }
        let policy = match s.policy.get_ref().as_str() {
            "failover" => PolicyKind::Failover,
            "weighted" => PolicyKind::Weighted,
            "geo" => PolicyKind::Geo,
            "latency" => PolicyKind::Latency,
            "nearest" => PolicyKind::Nearest,
            other => {
                problems.push((s.policy.span().start, format!("{what}.policy: {other:?} is not failover, weighted, geo, latency or nearest")));
                PolicyKind::Failover
            }
        };
        let mut svc_pools = Vec::new();
        for p in &s.pools {
            match pool_index.get(p.get_ref().as_str()) {
                Some(&i) => {
                    if pool_defs[i].region == usize::MAX {
                        problems.push((
                            p.span().start,
                            format!("{what}: pool {:?} has no region", p.get_ref()),
                        ));
                    } else if pool_defs[i].endpoints.is_empty() {
                        problems.push((
                            p.span().start,
                            format!("{what}: pool {:?} has no endpoints", p.get_ref()),
                        ));
                    }
                    // Twice would put its endpoints twice in one answer (a `weighted` draw
                    // over both copies) and count its capacity twice.
                    if svc_pools.contains(&i) {
                        problems.push((
                            p.span().start,
                            format!("{what}: pool {:?} is listed twice", p.get_ref()),
                        ));
                        continue;
                    }
                    svc_pools.push(i);
                }
                None => problems.push((
                    p.span().start,
                    format!("{what}: pool {:?} is not defined", p.get_ref()),
                )),
            }
        }
        if s.pools.is_empty() {
            problems.push((
                s.name.span().start,
                format!("{what}: needs at least one pool"),
            ));
        }
        let answers = s.answers.as_ref().map_or(1, |a| *a.get_ref());
        if !(1..=8).contains(&answers) {
            let at = s.answers.as_ref().map_or(0, |a| a.span().start);
            problems.push((at, format!("{what}.answers: {answers} is outside 1..=8")));
        }
        let fallback = match s.fallback.as_ref().map(|f| (f.span().start, f.get_ref())) {
            None => Fallback::All,
            Some((_, FallbackConfig::Word(w))) if w == "all" => Fallback::All,
            Some((at, FallbackConfig::Word(w))) => {
                problems.push((at, format!("{what}.fallback: {w:?} is not \"all\", {{ addresses = [...] }} or {{ cname = \"...\" }}")));
                Fallback::All
            }
            Some((at, FallbackConfig::Addresses { addresses })) => {
                let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
                for a in addresses {
                    match IpAddr::from_str(a) {
                        Ok(IpAddr::V4(x)) => ipv4.push(x),
                        Ok(IpAddr::V6(x)) => ipv6.push(x),
                        Err(_) => {
                            problems.push((at, format!("{what}.fallback: {a:?} is not an address")))
                        }
                    }
                }
                Fallback::Addresses { ipv4, ipv6 }
            }
            Some((at, FallbackConfig::Cname { cname })) => {
                match hickory_proto::rr::Name::from_ascii(cname) {
                    Ok(mut n) => {
                        n.set_fqdn(true);
                        Fallback::Cname(n.to_lowercase().to_string())
                    }
                    Err(e) => {
                        problems.push((at, format!("{what}.fallback.cname: {e}")));
                        Fallback::All
                    }
                }
            }
        };
        let percentile = match s
            .percentile
            .as_ref()
            .map(|p| (p.span().start, p.get_ref().as_str()))
        {
            None | Some((_, "p50")) => Percentile::P50,
            Some((_, "p90")) => Percentile::P90,
            Some((at, other)) => {
                problems.push((
                    at,
                    format!("{what}.percentile: {other:?} is not \"p50\" or \"p90\""),
                ));
                Percentile::P50
            }
        };
        let overprovisioning = s.overprovisioning.unwrap_or(1.4);
        if !(1.0..=10.0).contains(&overprovisioning) {
            problems.push((
                s.name.span().start,
                format!("{what}.overprovisioning: {overprovisioning} is outside 1..=10"),
            ));
        }
        let tie = |v: Option<f64>, default: f64, max: f64, field: &str, problems: &mut Problems| {
            let v = v.unwrap_or(default);
            if !(0.0..=max).contains(&v) {
                problems.push((
                    s.name.span().start,
                    format!("{what}.{field}: {v} is outside 0..={max}"),
                ));
            }
            v.clamp(0.0, max)
        };
        let tie_km = tie(s.tie_km, 50.0, 5000.0, "tie_km", problems);
        let tie_ratio = tie(s.tie_ratio, 0.05, 1.0, "tie_ratio", problems);
        let tie_radius = tie(s.tie_radius, 0.5, 2.0, "tie_radius", problems);
        let spill_bounded = match s
            .spill
            .as_ref()
            .map(|v| (v.span().start, v.get_ref().as_str()))
        {
            None | Some((_, "bounded")) => true,
            Some((_, "unbounded")) => false,
            Some((at, other)) => {
                problems.push((
                    at,
                    format!("{what}.spill: {other:?} is not \"bounded\" or \"unbounded\""),
                ));
                true
            }
        };
        if policy == PolicyKind::Latency && node_region.is_none() {
            problems.push((
                s.policy.span().start,
                format!("{what}: the latency policy needs node.region (this instance's vantage)"),
            ));
        }
        out_services.push(ServiceDef {
            name,
            policy,
            pools: svc_pools,
            answers,
            ttl: s.ttl.unwrap_or(60),
            failover_ttl: s.failover_ttl.unwrap_or(10),
            fallback,
            overprovisioning,
            percentile,
            hysteresis_ratio: s.hysteresis_ratio.unwrap_or(0.2).max(0.0),
            hysteresis_ms: s.hysteresis_ms.unwrap_or(10.0).max(0.0),
            use_ecs: s.ecs.unwrap_or(true),
            tie_km,
            tie_ratio,
            tie_radius,
            spill_bounded,
        });
    }

    let geo_settings = if regions.is_empty() {
        if geo.database.is_some() {
            let at = geo.database.as_ref().map_or(0, |d| d.span().start);
            problems.push((
                at,
                "geo.database: no [[region]] is defined to map clients to".into(),
            ));
        }
        None
    } else {
        let default_region = match &geo.default_region {
            Some(r) => region_index(r, &index, "geo.default_region", problems).unwrap_or(0),
            None => 0,
        };
        let mut overrides = Vec::new();
        for o in &geo.overrides {
            let region = region_index(&o.region, &index, "geo.overrides", problems);
            match (IpNet::from_str(o.prefix.get_ref()), region) {
                (Ok(n), Some(r)) => overrides.push((n.trunc(), r)),
                (Err(_), _) => problems.push((
                    o.prefix.span().start,
                    format!(
                        "geo.overrides: {:?} is not a CIDR prefix",
                        o.prefix.get_ref()
                    ),
                )),
                _ => {}
            }
        }
        let database = geo.database.as_ref().map(|d| {
            let path = base.join(d.get_ref());
            if !path.is_file() {
                problems.push((
                    d.span().start,
                    format!(
                        "geo.database: {} does not exist or is not a file",
                        path.display()
                    ),
                ));
            }
            path
        });
        let demand = match geo
            .demand
            .as_ref()
            .map(|d| (d.span().start, d.get_ref().as_str()))
        {
            None | Some((_, "database")) => DemandSource::Database,
            Some((_, "none")) => DemandSource::None,
            Some((at, file)) => {
                let path = base.join(file);
                match std::fs::read_to_string(&path) {
                    Err(e) => {
                        problems.push((at, format!("geo.demand: {}: {e}", path.display())));
                        DemandSource::None
                    }
                    Ok(text) => match crate::geo::networks::parse_networks(&text) {
                        Ok(nets) => DemandSource::Networks(path, std::sync::Arc::new(nets)),
                        Err((line, problem)) => {
                            problems.push((
                                at,
                                format!("geo.demand: {}:{line}: {problem}", path.display()),
                            ));
                            DemandSource::None
                        }
                    },
                }
            }
        };
        Some(GeoSettings {
            database,
            demand,
            default_region,
            overrides,
            regions: rules,
        })
    };
    if !services.is_empty() && regions.is_empty() {
        problems.push((
            services[0].name.span().start,
            "services need at least one [[region]]".into(),
        ));
    }
    Model {
        regions: out_regions,
        pools: pool_defs,
        services: out_services,
        node_region,
        geo: geo_settings,
        layout: Layout::next(),
    }
}
