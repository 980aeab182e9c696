//! Assembly: a validated [`Config`] and the files it names (zones, GeoIP database) turned into
//! the [`Snapshot`] the engine answers from.
//!
//! Zones are loaded whole or not at all; every service's name becomes a node of its zone
//! ([`crate::zone::build::add_dynamic`]); the catalog prepares its responses; steering data and
//! first decision tables are built. Nothing here touches a running server: the publisher
//! swaps the result in, and a failed assembly changes nothing.

use std::path::Path;

use super::Snapshot;
use crate::config::{Config, ConfigError, ConfigErrors};
use crate::zone::{Catalog, load_zone};

/// Read, validate and assemble `path` with everything it names: what `check`, `serve` and
/// every reload do.
pub fn load(path: &Path) -> Result<(Config, Snapshot), ConfigErrors> {
    let config = Config::load(path)?;
    let snapshot = assemble(&config)?;
    Ok((config, snapshot))
}

/// [`load`] for a running server's reload: the snapshot comes without decision tables, which
/// the publisher builds from the health monitor's view when it serves it (tables built here,
/// every endpoint up, would be thrown away).
pub fn load_for_publish(path: &Path) -> Result<(Config, Snapshot), ConfigErrors> {
    let config = Config::load(path)?;
    let snapshot = assemble_tables(&config, crate::zone::PREPARED_BYTES_MAX, false)?;
    Ok((config, snapshot))
}

/// Load every zone of `config` and build the snapshot to serve, every endpoint up until the
/// health monitor has a view. All zone errors are reported.
pub fn assemble(config: &Config) -> Result<Snapshot, ConfigErrors> {
    assemble_with(config, crate::zone::PREPARED_BYTES_MAX)
}

/// [`assemble`] with at most `prepared_bytes` of prepared responses (0: none, so every query
/// takes the general path: the oracle that tests hold the fast paths to).
pub fn assemble_with(config: &Config, prepared_bytes: usize) -> Result<Snapshot, ConfigErrors> {
    assemble_tables(config, prepared_bytes, true)
}

/// [`assemble_with`]; first decision tables (every endpoint up) only when `tables`.
fn assemble_tables(
    config: &Config,
    prepared_bytes: usize,
    tables: bool,
) -> Result<Snapshot, ConfigErrors> {
    let mut zones = Vec::new();
    let mut errors = Vec::new();
    for z in &config.zones {
        if z.catalog {
            // Every other zone, in configuration order.
            let members: Vec<_> = config
                .zones
                .iter()
                .filter(|m| !m.catalog)
                .map(|m| m.origin.clone())
                .collect();
            let mut zone = crate::zone::build::catalog_zone(&z.origin, &members);
            zone.transfer = z.transfer.as_ref().map(|t| t.as_slice().into());
            zones.push(zone);
            continue;
        }
        match load_zone(&z.origin, &z.file) {
            Ok(mut zone) => {
                zone.transfer = z.transfer.as_ref().map(|t| t.as_slice().into());
                zone.transfer_keys = z.transfer_keys.as_slice().into();
                zones.push(zone)
            }
            Err(es) => errors.extend(es.into_iter().map(ConfigError::Zone)),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    // Every service's name becomes a node of its zone, answered by the policy engine: it
    // exists for every lookup and every answer path (see `zone::build::add_dynamic`).
    let mut dynamic = vec![Vec::new(); zones.len()];
    for (i, s) in config.model.services.iter().enumerate() {
        let lower = crate::zone::build::name_wire_str(&s.name, true);
        let mut name = crate::wire::NameBuf::default();
        name.set_wire(&lower);
        let zone = zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.contains(&lower))
            .max_by_key(|(_, z)| z.apex_labels());
        let problem = match zone.map(|(zi, z)| (zi, z, z.lookup(&name, 1))) {
            None => Some(format!(
                "service {:?} is not inside any served zone",
                s.name
            )),
            Some((
                _,
                z,
                crate::zone::Lookup::Found {
                    node,
                    wildcard: false,
                },
            )) if !node.rrsets.is_empty() => Some(format!(
                "service {:?}: the zone {} also has records at that name",
                s.name, z.origin
            )),
            Some((_, z, crate::zone::Lookup::Referral { cut })) => Some(format!(
                "service {:?} is at or below the delegation {} in zone {}: the child zone's servers answer it",
                s.name,
                crate::zone::build::wire_to_text(&cut.name),
                z.origin
            )),
            Some((zi, _, _)) => {
                let written = crate::zone::build::name_wire_str(&s.name, false);
                dynamic[zi].push((lower, written));
                None
            }
        };
        if let Some(message) = problem {
            let (line, column) = config.service_at.get(i).copied().unwrap_or((0, 0));
            errors.push(ConfigError::At {
                file: config.path.clone(),
                line,
                column,
                message,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    for ((zone, names), source) in zones.iter_mut().zip(&dynamic).zip(&config.zones) {
        crate::zone::build::add_dynamic(zone, names);
        if zone.transfer.is_some() {
            zone.replica.settings = Some(std::sync::Arc::new(transfer_settings(
                &source.replication,
                (!names.is_empty()
                    && source.replication.gslb == crate::config::replication::Gslb::Snapshot)
                    || source.catalog,
            )));
        }
    }
    let catalog = Catalog::build(zones, prepared_bytes);
    let (steering, tables) = if config.model.services.is_empty() {
        (None, None)
    } else {
        let st = super::steering::Steering::new(std::sync::Arc::clone(&config.model))
            .map_err(|e| ConfigErrors::one(ConfigError::io(&config.path, e.to_string())))?;
        // Until the health monitor has a view, every endpoint counts as up.
        let tables = tables.then(|| {
            std::sync::Arc::new(super::steering::build_tables(
                &st,
                &Default::default(),
                None,
            ))
        });
        (Some(std::sync::Arc::new(st)), tables)
    };
    Ok(Snapshot {
        catalog: std::sync::Arc::new(catalog),
        edns_udp_payload: config.edns_udp_payload,
        steering,
        tables,
        nsid: config
            .nsid
            .then(|| std::sync::Arc::from(config.node_name.as_bytes())),
        tsig_keys: std::sync::Arc::new(config.tsig_keys.clone()),
    })
}

/// A zone's transfer settings from its configuration; `generated` says whether services live in
/// it and appear in its transfers as snapshots, or it is a catalog zone (the default serial policy then follows unix time: its content
/// changes without a file whose serial could follow, and the time never goes back across a
/// restart).
fn transfer_settings(
    r: &crate::config::replication::Replication,
    generated: bool,
) -> crate::zone::transfer::Settings {
    use crate::config::replication::{Gslb, SerialPolicy};
    let snapshot = r.gslb == Gslb::Snapshot;
    crate::zone::transfer::Settings {
        snapshot,
        unixtime: match r.serial {
            SerialPolicy::UnixTime => true,
            SerialPolicy::File => false,
            SerialPolicy::Auto => generated,
        },
        interval: r.snapshot_interval,
        notify: r.notify.clone().into(),
    }
}
