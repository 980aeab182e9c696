//! What a zone's secondaries are told and given: `[zone.transfer] notify`, `gslb`,
//! `snapshot_interval`, and the zone's `serial` policy.
//!
//! ```toml
//! [[zone]]
//! origin = "example.com."
//! file = "zones/example.com.zone"
//! serial = "unixtime"              # or "file"; default: see `SerialPolicy::Auto`
//! [zone.transfer]
//! allow = ["192.0.2.53/32"]
//! notify = ["192.0.2.53:53"]       # told of every new version (port 53 if left out)
//! gslb = "snapshot"                # or "omit"
//! snapshot_interval = "30s"        # at most one snapshot-driven version per interval
//! ```

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use super::TransferConfig;
use super::health::parse_duration;

/// How service names appear in a zone's outgoing transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gslb {
    /// Each service's current answer for the default region, as plain A/AAAA/CNAME records with
    /// the service's failover TTL: a secondary that takes over answers with endpoints that were
    /// healthy at the last transfer.
    #[default]
    Snapshot,
    /// Service names are left out of transfers.
    Omit,
}

/// How a zone's serial moves forward when its content changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerialPolicy {
    /// The default: `UnixTime` for a zone whose transfers carry service snapshots (its serial
    /// moves with health, which the file cannot follow), else `File`.
    #[default]
    Auto,
    /// The master file's serial; when the content changes and the file's serial is not newer
    /// than the one served, the change is reported and the served serial is raised by one.
    File,
    /// Unix time at the change (or the served serial plus one when that is not newer), and at
    /// start the newer of the file's serial and the time: survives restarts without going back.
    UnixTime,
}

/// A zone's replication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// Secondaries to send NOTIFY to on every new version.
    pub notify: Vec<SocketAddr>,
    pub gslb: Gslb,
    /// At most one version made by snapshot changes alone per this interval.
    pub snapshot_interval: Duration,
    pub serial: SerialPolicy,
}

/// Shortest `snapshot_interval`.
pub const MIN_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);

/// Default `snapshot_interval`.
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(30);

/// Compile zone `i`'s replication settings from its `[zone.transfer]` table and its `serial`
/// key. Problems go to `problem` with their byte offsets.
pub fn compile(
    i: usize,
    keys: Option<&TransferConfig>,
    serial: Option<&Spanned<String>>,
    problem: &mut dyn FnMut(usize, String),
) -> Replication {
    let mut notify = Vec::new();
    for (j, n) in keys.iter().flat_map(|k| k.notify.iter()).enumerate() {
        let s = n.get_ref().trim();
        let addr = SocketAddr::from_str(s)
            .or_else(|_| std::net::IpAddr::from_str(s).map(|ip| SocketAddr::new(ip, 53)));
        match addr {
            Ok(a) if notify.contains(&a) => problem(
                n.span().start,
                format!("zone[{i}].transfer.notify[{j}]: {a} is listed twice"),
            ),
            Ok(a) => notify.push(a),
            Err(_) => problem(
                n.span().start,
                format!(
                    "zone[{i}].transfer.notify[{j}]: {s:?} is not an address like \"192.0.2.53:53\", \"[2001:db8::53]:53\" or \"192.0.2.53\""
                ),
            ),
        }
    }
    let gslb = match keys
        .and_then(|k| k.gslb.as_ref())
        .map(|g| (g, g.get_ref().as_str()))
    {
        None | Some((_, "snapshot")) => Gslb::Snapshot,
        Some((_, "omit")) => Gslb::Omit,
        Some((g, other)) => {
            problem(
                g.span().start,
                format!("zone[{i}].transfer.gslb: {other:?} is not \"snapshot\" or \"omit\""),
            );
            Gslb::Snapshot
        }
    };
    let snapshot_interval = match keys.and_then(|k| k.snapshot_interval.as_ref()) {
        None => DEFAULT_SNAPSHOT_INTERVAL,
        Some(d) => match parse_duration(d.get_ref()) {
            Ok(v) if v >= MIN_SNAPSHOT_INTERVAL => v,
            Ok(_) => {
                problem(
                    d.span().start,
                    format!(
                        "zone[{i}].transfer.snapshot_interval: {:?} is shorter than {MIN_SNAPSHOT_INTERVAL:?}",
                        d.get_ref()
                    ),
                );
                DEFAULT_SNAPSHOT_INTERVAL
            }
            Err(e) => {
                problem(
                    d.span().start,
                    format!("zone[{i}].transfer.snapshot_interval: {e} (a duration like \"30s\")"),
                );
                DEFAULT_SNAPSHOT_INTERVAL
            }
        },
    };
    let serial = match serial.map(|s| (s, s.get_ref().as_str())) {
        None => SerialPolicy::Auto,
        Some((_, "file")) => SerialPolicy::File,
        Some((_, "unixtime")) => SerialPolicy::UnixTime,
        Some((s, other)) => {
            problem(
                s.span().start,
                format!("zone[{i}].serial: {other:?} is not \"file\" or \"unixtime\""),
            );
            SerialPolicy::Auto
        }
    };
    Replication {
        notify,
        gslb,
        snapshot_interval,
        serial,
    }
}
