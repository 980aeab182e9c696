//! Zone versions for outgoing transfers: what a snapshot's zones hold for their secondaries, and
//! when a new version (a new serial, a journal entry, a NOTIFY) is made.
//!
//! A zone with `[zone.transfer]` gets a new version when its content changes: a reload that
//! changed its file, or, with `gslb = "snapshot"`, a change of a service's answer for the
//! default region (at most once per `snapshot_interval`). [`versions`] works out which zones of
//! a snapshot about to be served need a new version, given the versions served now, and makes
//! them: the snapshot records ([`gslb_records`]), the serial ([`next_serial`]), the journal entry
//! ([`crate::zone::transfer::diff`]). Pure: the publisher passes the time and the rate limit,
//! swaps the zones in and announces them.

use std::sync::Arc;

use super::Snapshot;
use super::steering::Steering;
use crate::policy::{Answer, MAX_ANSWERS, Tables};
use crate::wire::{CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_CNAME};
use crate::zone::transfer::{diff, extra_key, serial_newer, soa_differs_beyond_serial};
use crate::zone::{Catalog, RrSetBuf, Zone};

/// One new version of a zone.
pub struct Version {
    /// The zone to serve, with its serial, snapshot records and journal.
    pub zone: Zone,
    /// The serial served before (`None`: the zone is new to this server).
    pub from: Option<u32>,
    /// Records deleted and added.
    pub removed: usize,
    pub added: usize,
    /// The content changed but the file's serial was not raised (the serial was raised by one).
    pub serial_not_raised: bool,
    /// Only the snapshot records changed (health), not the file.
    pub by_snapshot: bool,
}

/// Why [`versions`] is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// `next` is a fresh assembly (start or reload): its zones carry their files' serials.
    Load,
    /// `next` is the served snapshot with new decision tables: only snapshot records can change.
    Tables,
}

/// The zones of `next` that need a new version, made. `served` is the catalog served now (`None`
/// at start); `now` is unix time; `may_snapshot(zone)` says whether a version made by snapshot
/// records alone is allowed now (the per-zone rate limit). On [`Occasion::Load`], every zone
/// with transfer settings is returned (a fresh zone must carry over its served serial and journal
/// even when unchanged); on [`Occasion::Tables`], only the zones that changed.
pub fn versions(
    served: Option<&Catalog>,
    next: &Snapshot,
    occasion: Occasion,
    now: u32,
    may_snapshot: &dyn Fn(&Zone) -> bool,
) -> Vec<Version> {
    let mut made = Vec::new();
    for zone in next.catalog.zones() {
        let Some(settings) = zone.replica.settings.clone() else {
            continue;
        };
        let extra = if settings.snapshot {
            match (&next.steering, &next.tables) {
                (Some(st), Some(t)) => gslb_records(st, t, &next.catalog, zone),
                _ => Arc::from(Vec::new()),
            }
        } else {
            Arc::from(Vec::new())
        };
        let old = served.and_then(|c| c.zone_at_apex(zone.apex()));
        if occasion == Occasion::Tables && extra[..] == zone.replica.extra[..] {
            continue;
        }
        if occasion == Occasion::Tables && !may_snapshot(zone) {
            continue; // asked again at the next rebuild
        }
        let mut candidate = Zone::clone(zone);
        candidate.replica.extra = extra;
        let file_serial = candidate.serial;
        let Some(old) = old else {
            // New to this server: the file's serial, or the time when that is newer.
            let serial = if settings.unixtime && serial_newer(now, file_serial) {
                now
            } else {
                file_serial
            };
            candidate.replica.journal = Default::default();
            if serial != file_serial {
                candidate.set_serial(serial);
            }
            made.push(Version {
                zone: candidate,
                from: None,
                removed: 0,
                added: 0,
                serial_not_raised: false,
                by_snapshot: false,
            });
            continue;
        };
        let delta = diff(old, &candidate);
        let changed = !delta.is_empty()
            || soa_differs_beyond_serial(old.soa_record(), candidate.soa_record());
        let by_snapshot = occasion == Occasion::Tables;
        let (serial, not_raised) = if changed {
            next_serial(old.serial, file_serial, settings.unixtime, now, by_snapshot)
        } else if occasion == Occasion::Load && serial_newer(file_serial, old.serial) {
            (file_serial, false) // the file's serial raised alone: a version with no changes
        } else {
            // Unchanged: the fresh copy carries the served version on.
            if candidate.serial != old.serial {
                candidate.set_serial(old.serial);
            }
            candidate.replica.journal = old.replica.journal.clone();
            made.push(Version {
                zone: candidate,
                from: Some(old.serial),
                removed: 0,
                added: 0,
                serial_not_raised: false,
                by_snapshot: false,
            });
            continue;
        };
        if candidate.serial != serial {
            candidate.set_serial(serial);
        }
        let mut delta = delta;
        delta.to = serial;
        delta.new_soa = candidate.soa_record().into();
        let (removed, added) = (delta.removed_count, delta.added_count);
        let bytes = candidate.transfer_bytes();
        candidate.replica.journal = old.replica.journal.with(delta, bytes);
        made.push(Version {
            zone: candidate,
            from: Some(old.serial),
            removed,
            added,
            serial_not_raised: not_raised,
            by_snapshot,
        });
    }
    made
}

/// Whether a list of versions from [`versions`] changes anything a secondary sees: a new serial.
pub fn announces(v: &Version) -> bool {
    v.from != Some(v.zone.serial)
}

/// The serial of a new version whose content changed, served now at `served` with `file` the
/// master file's serial: the file's when it is newer; else, following unix time, `now` when that
/// is newer, else `served + 1`. The flag says the change came from the file without a raised
/// serial (reported; never for snapshot changes, which no file can follow).
pub fn next_serial(
    served: u32,
    file: u32,
    unixtime: bool,
    now: u32,
    by_snapshot: bool,
) -> (u32, bool) {
    if !by_snapshot && serial_newer(file, served) {
        return (file, false);
    }
    if unixtime && serial_newer(now, served) {
        return (now, false);
    }
    (served.wrapping_add(1), !unixtime && !by_snapshot)
}

/// The records that stand in for `zone`'s services in transfers: for each service whose name
/// lies in `zone` (the most specific served zone), its answer for a client of the default
/// region: the first pool's endpoints (at most [`MAX_ANSWERS`], in the order the pool lists them)
/// as A and AAAA records, or a CNAME when an endpoint is a host name, or the fallback's
/// addresses or CNAME; TTL the service's failover TTL. Sorted by lowercase owner and type.
pub fn gslb_records(
    st: &Steering,
    tables: &Tables,
    catalog: &Catalog,
    zone: &Zone,
) -> Arc<[(Box<[u8]>, RrSetBuf)]> {
    let mut out = Vec::new();
    let default = st.regions.default_region();
    for (svc, def) in st.model.services.iter().enumerate() {
        let lower = crate::zone::build::name_wire_str(&def.name, true);
        let mut name = crate::wire::NameBuf::default();
        name.set_wire(&lower);
        if catalog.find(&name).is_none_or(|z| z.id != zone.id) {
            continue;
        }
        let owner = crate::zone::build::name_wire_str(&def.name, false);
        let ttl = def.failover_ttl;
        let decision = tables.decision(svc, default);
        let mut a: Vec<&[u8]> = Vec::new();
        let mut aaaa: Vec<&[u8]> = Vec::new();
        let mut cname: Option<&[u8]> = None;
        match &decision.answer {
            Answer::Endpoints(choices) => {
                let Some(first) = choices.first() else {
                    continue;
                };
                for r in first.endpoints.iter().take(MAX_ANSWERS) {
                    let e = &st.endpoints[r.pool as usize][r.endpoint as usize];
                    if let Some(c) = &e.cname {
                        cname.get_or_insert(c);
                    }
                    if let Some(v4) = &e.a {
                        a.push(v4);
                    }
                    if let Some(v6) = &e.aaaa {
                        aaaa.push(v6);
                    }
                }
            }
            Answer::Addresses { .. } | Answer::Cname(_) => {
                let fb = &st.fallbacks[svc];
                a.extend(fb.a.iter().map(|x| &x[..]));
                aaaa.extend(fb.aaaa.iter().map(|x| &x[..]));
                cname = fb.cname.as_deref();
            }
        }
        let mut sets = Vec::new();
        match cname {
            // A name has one CNAME at most, and nothing beside it.
            Some(c) => sets.push(rrset(TYPE_CNAME, ttl, &[c])),
            None => {
                if !a.is_empty() {
                    sets.push(rrset(TYPE_A, ttl, &a));
                }
                if !aaaa.is_empty() {
                    sets.push(rrset(TYPE_AAAA, ttl, &aaaa));
                }
            }
        }
        out.extend(sets.into_iter().map(|s| (owner.clone(), s)));
    }
    out.sort_by_key(extra_key);
    out.into()
}

/// One RRset of `rtype` with the given RDATAs (duplicates dropped).
fn rrset(rtype: u16, ttl: u32, rdatas: &[&[u8]]) -> RrSetBuf {
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut records = Vec::new();
    for r in rdatas {
        if seen.contains(r) {
            continue;
        }
        seen.push(r);
        records.extend_from_slice(&rtype.to_be_bytes());
        records.extend_from_slice(&CLASS_IN.to_be_bytes());
        records.extend_from_slice(&ttl.to_be_bytes());
        records.extend_from_slice(&(r.len() as u16).to_be_bytes());
        records.extend_from_slice(r);
    }
    RrSetBuf::new(rtype, seen.len() as u16, &records, None)
}

#[cfg(test)]
mod tests {
    use super::next_serial;

    #[test]
    fn serials_move_forward_by_the_file_the_clock_or_one() {
        // The file's serial when raised (not for snapshot changes, which the file cannot follow).
        assert_eq!(next_serial(5, 9, false, 100, false), (9, false));
        assert_eq!(next_serial(5, 9, true, 100, false), (9, false));
        assert_eq!(next_serial(5, 9, false, 100, true), (6, false));
        // Not raised: by one, reported for a file change under the file policy.
        assert_eq!(next_serial(5, 5, false, 100, false), (6, true));
        // Unix time when newer, else one more.
        assert_eq!(next_serial(5, 5, true, 100, false), (100, false));
        assert_eq!(next_serial(100, 5, true, 100, true), (101, false));
        // A date-style serial (newer than the time in serial arithmetic) goes up by one.
        assert_eq!(
            next_serial(2_026_120_301, 2_026_120_301, true, 1_796_300_000, true),
            (2_026_120_302, false)
        );
    }
}
