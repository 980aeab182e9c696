//! Assembly: a validated [`Config`] and the files it names (zones, GeoIP database) turned into
//! the [`Snapshot`] the engine answers from.
//!
//! Zones are loaded whole or not at all; every service's name becomes a node of its zone
//! ([`crate::zone::build::add_dynamic`]); the catalog prepares its responses; steering data and
//! first decision tables are built. Nothing here touches a running server: the publisher
//! swaps the result in, and a failed assembly changes nothing.

use std::path::Path;

use super::Snapshot;
use super::secondary::{Secondaries, SecondaryZone};
use crate::config::{Config, ConfigError, ConfigErrors};
use crate::zone::{Catalog, Zone, load_zone};

/// Read, validate and assemble `path` with everything it names: what `check` and `serve` do.
pub fn load(path: &Path) -> Result<(Config, Snapshot), ConfigErrors> {
    let config = Config::load(path)?;
    let snapshot = assemble_after(&config, crate::zone::PREPARED_BYTES_MAX, None, true)?;
    Ok((config, snapshot))
}

/// [`load`] for the reload of a server serving `served`: a zone whose files did not change
/// since they were read for it (and whose services are the same) is kept as it is, not read
/// again; and the snapshot comes without decision tables, which the publisher builds from the
/// health monitor's view when it serves it (tables built here, every endpoint up, would be
/// thrown away).
pub fn load_after(
    path: &Path,
    served: Option<&Catalog>,
) -> Result<(Config, Snapshot), ConfigErrors> {
    let config = Config::load(path)?;
    let snapshot = assemble_after(&config, crate::zone::PREPARED_BYTES_MAX, served, false)?;
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
    assemble_after(config, prepared_bytes, None, true)
}

/// The zone `origin` of `served` when the files it was read from are unchanged: kept as it is
/// (its data shared, its serial and journal those served), with what the configuration says
/// about it set again by the caller.
fn unchanged(served: Option<&Catalog>, origin: &hickory_proto::rr::Name) -> Option<Zone> {
    let zone = served?.zone_at_apex(&crate::zone::build::lower_wire(origin))?;
    zone.sources_unchanged().then(|| {
        let mut kept = zone.clone();
        kept.origin = origin.to_string();
        kept.replica = Default::default();
        kept.replica.journal = zone.replica.journal.clone();
        kept.replica.extra = zone.replica.extra.clone();
        kept
    })
}

/// Lowercase wire names of a zone's service nodes, sorted.
fn dynamic_names(zone: &Zone) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = zone
        .nodes()
        .filter(|n| n.dynamic)
        .map(|n| n.name.to_ascii_lowercase())
        .collect();
    names.sort();
    names
}

/// [`assemble_with`], keeping the zones of `served` whose files did not change (see
/// [`load_after`]); first decision tables (every endpoint up) only when `tables`.
fn assemble_after(
    config: &Config,
    prepared_bytes: usize,
    served: Option<&Catalog>,
    tables: bool,
) -> Result<Snapshot, ConfigErrors> {
    let mut zones = Vec::new();
    // The configuration of each zone in `zones` (secondary zones without data are left out).
    let mut sources = Vec::new();
    // Whether each zone was kept from `served` rather than read.
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    for z in &config.zones {
        if z.secondary.is_some() && !z.file.exists() {
            continue; // not transferred yet: not served until the first transfer
        }
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
            sources.push(z);
            kept.push(false);
            continue;
        }
        let loaded = match unchanged(served, &z.origin) {
            Some(zone) => Ok((zone, true)),
            None => timed_load(z).map(|zone| (zone, false)),
        };
        match loaded {
            Ok((mut zone, was_kept)) => {
                zone.transfer = z.transfer.as_ref().map(|t| t.as_slice().into());
                zone.transfer_keys = z.transfer_keys.as_slice().into();
                zones.push(zone);
                sources.push(z);
                kept.push(was_kept);
            }
            // A secondary's kept copy that does not load is not the operator's mistake: the
            // zone is served again after the next transfer.
            Err(es) if z.secondary.is_some() => {
                for e in es {
                    tracing::warn!(zone = %z.origin, "kept copy of a secondary zone not loaded: {e}");
                }
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
        // Inside a secondary zone not transferred yet: it becomes a node of the zone when the
        // zone comes (`replace_zone`).
        let awaited = zone.is_none()
            && hickory_proto::rr::Name::from_ascii(&s.name).is_ok_and(|n| {
                config
                    .zones
                    .iter()
                    .any(|z| z.secondary.is_some() && z.origin.zone_of(&n))
            });
        let problem = match zone.map(|(zi, z)| (zi, z, z.lookup(&name, 1))) {
            None if awaited => None,
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
                crate::zone::build::wire_to_text(cut.name),
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
    for (((zone, names), source), was_kept) in
        zones.iter_mut().zip(&dynamic).zip(sources).zip(&kept)
    {
        if *was_kept {
            let mut wanted: Vec<Vec<u8>> = names.iter().map(|(l, _)| l.to_vec()).collect();
            wanted.sort();
            if wanted != dynamic_names(zone) {
                // Other services than when it was kept: read it again for fresh nodes.
                let mut fresh = timed_load(source)
                    .map_err(|es| ConfigErrors(es.into_iter().map(ConfigError::Zone).collect()))?;
                fresh.transfer = zone.transfer.take();
                fresh.transfer_keys = std::mem::take(&mut zone.transfer_keys);
                *zone = fresh;
                crate::zone::build::add_dynamic(zone, names);
            }
        } else {
            crate::zone::build::add_dynamic(zone, names);
        }
        if zone.transfer.is_some() {
            zone.replica.settings = Some(std::sync::Arc::new(transfer_settings(
                &source.replication,
                (!names.is_empty()
                    && source.replication.gslb == crate::config::replication::Gslb::Snapshot)
                    || source.catalog,
            )));
        }
    }
    // Zones kept from the served catalog keep their prepared responses too.
    let catalog = Catalog::build_after(zones, prepared_bytes, served);
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
        secondaries: std::sync::Arc::new(secondaries(config)),
        tsig_keys: std::sync::Arc::new(config.tsig_keys.clone()),
    })
}

/// The secondary zones of `config`, each with a fresh wake handle (the publisher hands on the
/// ones it already has).
fn secondaries(config: &Config) -> Secondaries {
    let zones = config
        .zones
        .iter()
        .filter_map(|z| {
            let s = z.secondary.as_ref()?;
            // Transfer settings for the versions it is re-served in, as for a zone from a file.
            let services = config.model.services.iter().any(|svc| {
                hickory_proto::rr::Name::from_ascii(&svc.name).is_ok_and(|n| z.origin.zone_of(&n))
            });
            let replica = z.transfer.as_ref().map(|_| {
                std::sync::Arc::new(transfer_settings(
                    &z.replication,
                    services && z.replication.gslb == crate::config::replication::Gslb::Snapshot,
                ))
            });
            Some(SecondaryZone {
                origin: z.origin.clone(),
                apex: crate::zone::build::lower_wire(&z.origin),
                primaries: s.primaries.iter().map(|a| a.ip()).collect(),
                key: s.key.clone(),
                key_index: s.key_index,
                wake: Default::default(),
                replica,
            })
        })
        .collect();
    Secondaries { zones }
}

/// `snap` with the zone at `apex` (lowercase wire form) replaced by `zone` (a secondary's new
/// version), added, or removed (`None`: expired). The services inside the zone become its
/// dynamic nodes as at assembly; everything else is shared with `snap`. Decision tables are
/// kept: they do not depend on zone data.
pub fn replace_zone(snap: &Snapshot, apex: &[u8], zone: Option<Zone>) -> Snapshot {
    let zone = zone.map(|mut zone| {
        if let Some(st) = &snap.steering {
            let names: Vec<_> = st
                .model
                .services
                .iter()
                .filter_map(|s| {
                    let lower = crate::zone::build::name_wire_str(&s.name, true);
                    // The service belongs to this zone unless a more specific one holds it.
                    let deeper = snap.catalog.zones().iter().any(|o| {
                        *o.apex() != *apex
                            && o.apex_labels() > zone.apex_labels()
                            && o.contains(&lower)
                    });
                    (zone.contains(&lower) && !deeper)
                        .then(|| (lower, crate::zone::build::name_wire_str(&s.name, false)))
                })
                .collect();
            crate::zone::build::add_dynamic(&mut zone, &names);
        }
        zone
    });
    let catalog = match zone {
        Some(zone) => snap.catalog.replacing(vec![zone]),
        None => snap.catalog.without(apex),
    };
    Snapshot {
        catalog: std::sync::Arc::new(catalog),
        ..snap.clone()
    }
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

/// Read zone `z` from its files, with one log line and the zone's load figures in metrics.
fn timed_load(z: &crate::config::ZoneSource) -> Result<Zone, Vec<crate::zone::ZoneError>> {
    let started = std::time::Instant::now();
    let zone = load_zone(&z.origin, &z.file)?;
    let took = started.elapsed();
    let bytes = zone.memory_bytes();
    tracing::info!(
        zone = %z.origin,
        records = zone.record_count,
        bytes,
        seconds = took.as_secs_f64(),
        "zone loaded"
    );
    let label = z.origin.to_string();
    metrics::gauge!("meridian_zone_records", "zone" => label.clone()).set(zone.record_count as f64);
    metrics::gauge!("meridian_zone_bytes", "zone" => label.clone()).set(bytes as f64);
    metrics::gauge!("meridian_zone_load_seconds", "zone" => label).set(took.as_secs_f64());
    Ok(zone)
}
