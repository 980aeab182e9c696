//! Configuration: the TOML schema, its validation, and the compiled model ([`model`]).
//!
//! Loading is two steps. [`Config::load`] reads and deserializes the file (unknown fields are
//! errors) and checks every value, collecting *all* problems, each with file, line and column.
//! Assembly (`snapshot::assemble`, a layer above) then reads the zone files and builds the
//! immutable snapshot the server answers from. Neither step touches a running server: a reload
//! that fails changes nothing. This module builds nothing itself: it is the model.
//!
//! Layer 2 of ARCHITECTURE.md: uses only modules of lower layers.

pub mod admin;
mod error;
pub mod fleet;
pub mod health;
pub mod model;
pub mod policy;
pub mod pools;
pub mod replication;
pub mod rrl;
pub mod secondary;
pub mod tcp;
pub mod tsig;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

pub use error::{ConfigError, ConfigErrors};
pub use model::Endpoint;
pub use pools::{Pool, Webhook};

/// Smallest EDNS payload the server may advertise (RFC 6891 §6.2.5).
const MIN_PAYLOAD: u16 = 512;
/// Largest EDNS payload accepted; above this fragmentation is near certain.
const MAX_PAYLOAD: u16 = 4096;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// DNS serving: sockets, workers, limits.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Authoritative zones, each an origin and an RFC 1035 master file.
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneConfig>,
    /// Named health checks, attached to pools and endpoints by name.
    #[serde(default)]
    pub checks: std::collections::BTreeMap<String, health::CheckConfig>,
    /// Pools of endpoints.
    #[serde(default, rename = "pool")]
    pub pools: Vec<pools::PoolConfig>,
    /// Health-checking settings: state file, webhooks.
    #[serde(default)]
    pub health: pools::HealthConfig,
    /// This instance: its region (latency vantage).
    #[serde(default)]
    pub node: policy::NodeConfig,
    /// Reloading on file changes.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// Client location: GeoIP database, default region, CIDR overrides.
    #[serde(default)]
    pub geo: policy::GeoConfig,
    /// Regions clients map to and pools live in.
    #[serde(default, rename = "region")]
    pub regions: Vec<policy::RegionConfig>,
    /// Dynamic names answered by the policy engine.
    #[serde(default, rename = "service")]
    pub services: Vec<policy::ServiceConfig>,
    /// The admin HTTP API: listen address and token.
    #[serde(default)]
    pub admin: admin::AdminConfig,
    /// Other instances of the fleet to pull health observations from.
    pub fleet: Option<Spanned<fleet::FleetConfig>>,
    /// TSIG keys (RFC 8945) for zone transfers, NOTIFY and SOA queries.
    #[serde(default, rename = "tsig_key")]
    pub tsig_keys: Vec<tsig::TsigKeyConfig>,
    /// Response rate limiting of UDP answers (on by default).
    #[serde(default)]
    pub rrl: rrl::RrlConfig,
    /// DNS Cookies (on by default).
    #[serde(default)]
    pub cookies: rrl::CookiesConfig,
}

/// The `[dns]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Addresses to serve DNS on, UDP and TCP on each, e.g. `"127.0.0.1:5353"`, `"[::1]:5353"`.
    /// Port 0 picks a free port (the same one for UDP and TCP).
    #[serde(default = "default_listen")]
    pub listen: Vec<Spanned<String>>,
    /// UDP worker threads per listen address, each with its own SO_REUSEPORT socket.
    /// 0 (the default) means one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// EDNS UDP payload size the server advertises and never exceeds (512..=4096).
    #[serde(default = "default_payload")]
    pub edns_udp_payload: Spanned<u16>,
    /// Seconds a TCP connection may sit with no message started before it is closed (1..=3600,
    /// default 10).
    pub tcp_idle_timeout_secs: Option<Spanned<i64>>,
    /// Milliseconds within which a TCP message must be complete once its first byte arrived,
    /// and each write of answers taken by the client (1..=60000, default 2000).
    pub tcp_io_timeout_ms: Option<Spanned<i64>>,
    /// Most TCP connections open at once; further connections are closed on accept (default
    /// 1024).
    pub tcp_max_connections: Option<Spanned<i64>>,
    /// Most TCP connections open at once from one client address (default 32).
    pub tcp_max_connections_per_client: Option<Spanned<i64>>,
    /// Queries answered on one TCP connection before it is closed (default 1000).
    pub tcp_max_queries: Option<Spanned<i64>>,
    /// Answers to pipelined queries held back on a TCP connection before they are written out
    /// (1..=1024, default 16).
    pub tcp_max_in_flight: Option<Spanned<i64>>,
}

fn default_listen() -> Vec<Spanned<String>> {
    vec![
        Spanned::new(0..0, "127.0.0.1:5353".into()),
        Spanned::new(0..0, "[::1]:5353".into()),
    ]
}
fn default_payload() -> Spanned<u16> {
    Spanned::new(0..0, 1232)
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: default_listen(),
            workers: 0,
            edns_udp_payload: default_payload(),
            tcp_idle_timeout_secs: None,
            tcp_io_timeout_ms: None,
            tcp_max_connections: None,
            tcp_max_connections_per_client: None,
            tcp_max_queries: None,
            tcp_max_in_flight: None,
        }
    }
}

/// The `[reload]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Reload by itself when the configuration file, a zone file or the state file changes
    /// (checked every `interval`, applied once the files have been still for one interval).
    /// Default false: reload on SIGHUP or `POST /reload`.
    #[serde(default)]
    pub watch: bool,
    /// How often watched files are checked. Default "2s".
    pub interval: Option<Spanned<String>>,
}

/// One `[[zone]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's apex, e.g. `"example.com."`.
    pub origin: Spanned<String>,
    /// Master file, relative to the configuration file's folder. For a zone with `primaries`,
    /// the copy Meridian keeps of the transferred zone (it writes the file and its folder).
    pub file: Option<Spanned<String>>,
    /// The zone is a catalog (RFC 9432) of every other served zone, generated, with no file.
    #[serde(default)]
    pub catalog: Option<Spanned<bool>>,
    /// Take the zone from these primaries by zone transfer (`"address:port"`, tried in order)
    /// instead of reading `file` as the operator's own.
    pub primaries: Option<Vec<Spanned<String>>>,
    /// The TSIG key (by name) for this secondary zone's SOA queries, transfers and NOTIFY.
    pub key: Option<Spanned<String>>,
    /// Outgoing zone transfers (AXFR over TCP); none without this table.
    pub transfer: Option<Spanned<TransferConfig>>,
    /// How the serial moves when the content changes: `"file"` (default) or `"unixtime"`.
    pub serial: Option<Spanned<String>>,
}

/// A zone's `[zone.transfer]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// Source prefixes that may transfer the zone, e.g. `"192.0.2.0/24"`, `"2001:db8::/32"`
    /// (a bare address is one host); host bits must be clear. At least one prefix here or one
    /// key in `keys`.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Where NOTIFY goes: `"192.0.2.53:53"`, `"[2001:db8::53]:53"`, or an address alone (port 53).
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    /// How service names appear in transfers: `"snapshot"` (default) or `"omit"`.
    pub gslb: Option<Spanned<String>>,
    /// At most one snapshot-driven version per this interval. Default "30s".
    pub snapshot_interval: Option<Spanned<String>>,
    /// Names of `[[tsig_key]]`s: a request signed with one of them may transfer the zone from
    /// any source.
    #[serde(default)]
    pub keys: Vec<Spanned<String>>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub edns_udp_payload: u16,
    /// TCP connection limits and timeouts.
    pub tcp: tcp::TcpSettings,
    /// Response rate limiting (`[rrl]`); `None` when turned off.
    pub rrl: Option<rrl::RrlSettings>,
    /// DNS Cookies (`[cookies]`); `None` when turned off.
    pub cookies: Option<rrl::CookieSettings>,
    pub zones: Vec<ZoneSource>,
    /// Pools of endpoints with their compiled checks; shared by the copies of the configuration
    /// (a large one is not copied).
    pub pools: std::sync::Arc<[Pool]>,
    /// Where manual overrides persist, resolved against the config file's folder.
    pub state_file: Option<PathBuf>,
    /// Webhooks notified of endpoint state changes.
    pub webhooks: Vec<Webhook>,
    /// Regions, pools and services for the policy engine, and how clients are located; shared
    /// with the steering data built from it (a large model is not copied).
    pub model: std::sync::Arc<policy::Model>,
    /// The admin HTTP API, when `[admin] listen` is set.
    pub admin: Option<admin::Admin>,
    /// Line and column of each service's name, for errors found when zones are loaded.
    pub service_at: Vec<(usize, usize)>,
    /// Check watched files this often (`[reload] watch`); `None` = no watching.
    pub watch: Option<std::time::Duration>,
    /// This instance's name (`[node] name`, default the host name).
    pub node_name: String,
    /// Send `node_name` as the NSID to queries that ask (`[node] nsid`).
    pub nsid: bool,
    /// Peers to pull health observations from, when `[fleet]` is present.
    pub fleet: Option<fleet::FleetSettings>,
    /// The `[[tsig_key]]`s, in order (`ZoneSource::transfer_keys` are positions in it).
    pub tsig_keys: crate::wire::tsig::KeyRing,
}

/// A zone to load.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    pub origin: Name,
    pub file: PathBuf,
    /// Where the `[[zone]]` entry is, for errors that concern the whole zone.
    pub origin_at: (usize, usize),
    /// Source prefixes that may transfer the zone (`[zone.transfer] allow`); `None`: no
    /// transfers.
    pub transfer: Option<Vec<ipnet::IpNet>>,
    /// NOTIFY targets, service names in transfers, the serial policy.
    pub replication: replication::Replication,
    /// A catalog zone (RFC 9432) of the other zones, generated (`file` is empty).
    pub catalog: bool,
    /// Set when the zone is taken from primaries by zone transfer (`file` is then the copy kept).
    pub secondary: Option<secondary::Secondary>,
    /// Keys (positions in `Config::tsig_keys`) that sign a transfer from any source
    /// (`[zone.transfer] keys`).
    pub transfer_keys: Vec<usize>,
}

/// The largest configuration file read: 64 MiB, eight times the 10,000-service,
/// 100,000-endpoint configuration of benches/big_config.py (7.8 MB, checked in about a second
/// with 283 MB at peak). A larger file, or an endless one (a device, a pipe), is refused before
/// it is parsed, with the file and the limit named.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Read `path` as UTF-8 text of at most `limit` bytes. A longer file is an error that says its
/// size and the limit (a file whose size is not known, such as a device, is read up to one byte
/// past the limit, never further).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let too_large = |size: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{size}, over the limit of {limit} bytes"),
        )
    };
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_large(format!("{len} bytes")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large("more bytes".to_string()));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl Config {
    /// Read and validate `path`, reporting every problem found.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_bounded(path, MAX_CONFIG_BYTES).map_err(|e| {
            ConfigErrors::one(ConfigError::io(path, format!("cannot read config: {e}")))
        })?;
        Self::parse(path, &text)
    }

    /// Validate configuration text as if read from `path` (relative zone files resolve there).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigErrors::one(ConfigError::at(
                path,
                text,
                span.start,
                e.message().to_string(),
            ))
        })?;
        let mut errors = Vec::new();
        // Positions of items that are kept (zones, services) are resolved through one index.
        let lines = error::LineIndex::new(text);
        let err = |span: std::ops::Range<usize>, msg: String| {
            ConfigError::at(path, text, span.start, msg)
        };
        let mut listen = Vec::new();
        for (i, l) in raw.dns.listen.iter().enumerate() {
            match SocketAddr::from_str(l.get_ref()) {
                Ok(a) => listen.push(a),
                Err(_) => errors.push(err(
                    l.span(),
                    format!(
                        "dns.listen[{i}]: {:?} is not an address:port (IPv6 in brackets)",
                        l.get_ref()
                    ),
                )),
            }
        }
        if raw.dns.listen.is_empty() {
            errors.push(ConfigError::at(
                path,
                text,
                0,
                "dns.listen: at least one address is needed".into(),
            ));
        }
        let payload = *raw.dns.edns_udp_payload.get_ref();
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&payload) {
            errors.push(err(
                raw.dns.edns_udp_payload.span(),
                format!("dns.edns_udp_payload: {payload} is outside {MIN_PAYLOAD}..={MAX_PAYLOAD}"),
            ));
        }
        let tcp = tcp::compile(
            tcp::RawTcp {
                idle_timeout_secs: &raw.dns.tcp_idle_timeout_secs,
                io_timeout_ms: &raw.dns.tcp_io_timeout_ms,
                max_connections: &raw.dns.tcp_max_connections,
                max_connections_per_client: &raw.dns.tcp_max_connections_per_client,
                max_queries: &raw.dns.tcp_max_queries,
                max_in_flight: &raw.dns.tcp_max_in_flight,
            },
            &mut |offset, msg| errors.push(ConfigError::at(path, text, offset, msg)),
        );
        let rrl = rrl::compile(&raw.rrl, &mut |offset, msg| {
            errors.push(ConfigError::at(path, text, offset, msg))
        });
        let cookies = rrl::compile_cookies(&raw.cookies, &mut |offset, msg| {
            errors.push(ConfigError::at(path, text, offset, msg))
        });
        let base = path.parent().unwrap_or(Path::new("."));
        let tsig_keys = tsig::compile(&raw.tsig_keys, base, &mut |offset, msg| {
            errors.push(ConfigError::at(path, text, offset, msg))
        });
        let mut zones: Vec<ZoneSource> = Vec::new();
        for (i, z) in raw.zones.iter().enumerate() {
            let origin = match Name::from_str(z.origin.get_ref()) {
                Ok(mut n) => {
                    n.set_fqdn(true);
                    n
                }
                Err(e) => {
                    errors.push(err(
                        z.origin.span(),
                        format!("zone[{i}].origin: {:?}: {e}", z.origin.get_ref()),
                    ));
                    continue;
                }
            };
            if let Some(other) = zones
                .iter()
                .find(|o| o.origin.to_lowercase() == origin.to_lowercase())
            {
                let _ = other;
                errors.push(err(
                    z.origin.span(),
                    format!("zone[{i}].origin: zone {origin} is configured twice"),
                ));
            }
            let catalog = z.catalog.as_ref().is_some_and(|c| *c.get_ref());
            let secondary = secondary::compile(
                i,
                z.origin.span().start,
                z.primaries.as_ref(),
                z.key.as_ref(),
                &mut |offset, msg| errors.push(ConfigError::at(path, text, offset, msg)),
            );
            let file = match (&z.file, catalog) {
                // A secondary's kept copy is written by Meridian: it need not exist yet.
                (Some(f), false) if secondary.is_some() => base.join(f.get_ref()),
                (Some(f), false) => {
                    let file = base.join(f.get_ref());
                    if !file.is_file() {
                        errors.push(err(
                            f.span(),
                            format!(
                                "zone[{i}].file: {} does not exist or is not a file",
                                file.display()
                            ),
                        ));
                    }
                    file
                }
                (None, true) if secondary.is_some() => {
                    errors.push(err(
                        z.origin.span(),
                        format!(
                            "zone[{i}]: a catalog zone is generated here, not taken from primaries"
                        ),
                    ));
                    PathBuf::new()
                }
                (None, true) => PathBuf::new(),
                (Some(f), true) => {
                    errors.push(err(
                        f.span(),
                        format!("zone[{i}].file: a catalog zone is generated and has no file"),
                    ));
                    PathBuf::new()
                }
                (None, false) => {
                    errors.push(err(
                        z.origin.span(),
                        format!("zone[{i}]: file is missing (a master file, or catalog = true)"),
                    ));
                    PathBuf::new()
                }
            };
            let at = lines.line_col(text, z.origin.span().start);
            let mut problem = |offset, msg| errors.push(ConfigError::at(path, text, offset, msg));
            let transfer = z
                .transfer
                .as_ref()
                .map(|t| transfer_allow(i, t, &mut problem));
            let transfer_keys = z.transfer.as_ref().map_or(Vec::new(), |t| {
                let keys = &t.get_ref().keys;
                tsig::zone_keys(i, keys, &raw.tsig_keys, &tsig_keys, &mut problem)
            });
            let secondary = secondary.map(|mut s| {
                if let Some(k) = &z.key {
                    s.key_index =
                        secondary::key_index(i, k, &raw.tsig_keys, &tsig_keys, &mut problem);
                }
                s
            });
            let replication = replication::compile(
                i,
                z.transfer.as_ref().map(|t| t.get_ref()),
                z.serial.as_ref(),
                &mut problem,
            );
            zones.push(ZoneSource {
                origin,
                file,
                origin_at: at,
                transfer,
                replication,
                catalog,
                secondary,
                transfer_keys,
            });
        }
        let (pools, webhooks) = pools::compile(&raw, &mut |offset, msg| {
            errors.push(ConfigError::at(path, text, offset, msg))
        });
        let mut problems = Vec::new();
        let steering = policy::compile(
            &raw.node,
            &raw.geo,
            &raw.regions,
            &raw.services,
            &pools,
            base,
            &mut problems,
        );
        errors.extend(
            problems
                .into_iter()
                .map(|(offset, msg)| ConfigError::at(path, text, offset, msg)),
        );
        let admin = admin::compile(&raw.admin, &mut |offset, msg| {
            errors.push(ConfigError::at(path, text, offset, msg))
        });
        let node_name = match &raw.node.name {
            Some(n) => n.get_ref().clone(),
            None => host_name(),
        };
        if let Some(n) = &raw.node.name
            && (n.get_ref().is_empty() || n.get_ref().len() > MAX_NODE_NAME)
        {
            errors.push(err(
                n.span(),
                format!("node.name: must be 1 to {MAX_NODE_NAME} bytes long"),
            ));
        }
        let fleet = raw.fleet.as_ref().and_then(|f| {
            fleet::compile(
                f.get_ref(),
                f.span().start,
                &node_name,
                raw.node.region.as_ref(),
                &mut |offset, msg| errors.push(ConfigError::at(path, text, offset, msg)),
            )
        });
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let workers = match raw.dns.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            workers,
            edns_udp_payload: payload,
            tcp,
            rrl,
            cookies,
            zones,
            pools: pools.into(),
            state_file: raw.health.state_file.as_ref().map(|f| base.join(f)),
            webhooks,
            model: std::sync::Arc::new(steering),
            admin,
            watch: if raw.reload.watch {
                Some(match &raw.reload.interval {
                    None => std::time::Duration::from_secs(2),
                    Some(i) => match health::parse_duration(i.get_ref()) {
                        Ok(d) if !d.is_zero() => d,
                        _ => {
                            return Err(ConfigErrors::one(ConfigError::at(
                                path,
                                text,
                                i.span().start,
                                format!(
                                    "reload.interval: {:?} is not a duration like \"2s\"",
                                    i.get_ref()
                                ),
                            )));
                        }
                    },
                })
            } else {
                None
            },
            node_name,
            nsid: raw.node.nsid,
            fleet,
            tsig_keys,
            service_at: raw
                .services
                .iter()
                .map(|s| lines.line_col(text, s.name.span().start))
                .collect(),
        })
    }
}

/// The prefixes of zone `i`'s `[zone.transfer] allow` (empty when only `keys` are given); each problem goes to `problem` with its
/// byte offset.
fn transfer_allow(
    i: usize,
    t: &Spanned<TransferConfig>,
    problem: &mut dyn FnMut(usize, String),
) -> Vec<ipnet::IpNet> {
    let allow = &t.get_ref().allow;
    if allow.is_empty() && t.get_ref().keys.is_empty() {
        problem(
            t.span().start,
            format!(
                "zone[{i}].transfer.allow: at least one source prefix is needed (or a key in keys)"
            ),
        );
    }
    let mut nets = Vec::with_capacity(allow.len());
    for (j, a) in allow.iter().enumerate() {
        let s = a.get_ref().trim();
        let net = ipnet::IpNet::from_str(s)
            .or_else(|_| std::net::IpAddr::from_str(s).map(ipnet::IpNet::from));
        match net {
            Ok(n) if n.trunc() != n => problem(
                a.span().start,
                format!(
                    "zone[{i}].transfer.allow[{j}]: {s:?} has host bits set (the prefix is {})",
                    n.trunc()
                ),
            ),
            Ok(n) => nets.push(n),
            Err(_) => problem(
                a.span().start,
                format!(
                    "zone[{i}].transfer.allow[{j}]: {s:?} is not a prefix like \"192.0.2.0/24\" or \"2001:db8::/32\""
                ),
            ),
        }
    }
    nets
}

/// Longest `[node] name`: it travels in every NSID answer.
const MAX_NODE_NAME: usize = 128;

/// The host's name, or "meridian" if the system has none to give.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed; gethostname writes
    // at most that many bytes.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(s) if r == 0 && !s.is_empty() => s.chars().take(MAX_NODE_NAME).collect(),
        _ => "meridian".into(),
    }
}
