//! What a zone's outgoing transfers hold beyond its master file, and its recent history.
//!
//! A [`Replica`] hangs off every [`Zone`]: the records that stand in for its services in
//! transfers (`[zone.transfer] gslb = "snapshot"`: each service's current answer as plain
//! A/AAAA/CNAME records; see `snapshot::transfer`) and the [`Journal`] of its latest changes,
//! from which IXFR (RFC 1995) answers a secondary that is only a few versions behind.
//!
//! [`diff`] works out what changed between two versions of a zone (its static records and its
//! snapshot records; the SOA aside) as one [`Delta`]; [`Zone::set_serial`] gives a version its
//! serial. Both are pure: the publisher decides when a new version is made, and the serial.
//!
//! Records in a delta are written as in a transfer: owner name uncompressed (as the zone file
//! wrote it), then TYPE, CLASS, TTL, RDLENGTH, RDATA.

use std::sync::Arc;

use super::{Node, RrSet, Zone};
use crate::wire::TYPE_SOA;

/// Most versions a journal remembers.
pub const JOURNAL_VERSIONS: usize = 100;

/// A journal keeps at least this many bytes of changes, and otherwise at most the zone's own
/// size: past that, a whole transfer costs less than the changes.
pub const JOURNAL_MIN_BYTES: usize = 64 * 1024;

/// How a zone's versions are made and announced (from its `[zone.transfer]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Services appear in transfers as snapshot records (`gslb = "snapshot"`).
    pub snapshot: bool,
    /// The serial follows unix time (`serial = "unixtime"`, or the default for a zone whose
    /// transfers carry service snapshots); else the file's serial, raised by one when needed.
    pub unixtime: bool,
    /// At most one version made by snapshot changes alone per this interval.
    pub interval: std::time::Duration,
    /// Secondaries told of every new version by NOTIFY.
    pub notify: Box<[std::net::SocketAddr]>,
}

/// A zone's transfer-only data: its snapshot records and its journal.
#[derive(Clone, Default)]
pub struct Replica {
    /// How versions are made; `None` for a zone without `[zone.transfer]` (its serial is its
    /// file's, and nothing is kept).
    pub settings: Option<Arc<Settings>>,
    /// Records standing in for the zone's services in transfers: `(owner as written, RRset)`,
    /// sorted by lowercase owner and type. Empty unless `gslb = "snapshot"`.
    pub extra: Arc<[(Box<[u8]>, RrSet)]>,
    /// The latest changes, oldest first.
    pub journal: Journal,
}

/// One version's changes to the previous one (RFC 1995 §4: the old SOA, what was deleted, the
/// new SOA, what was added).
#[derive(Debug, PartialEq, Eq)]
pub struct Delta {
    /// Serial of the version it starts from.
    pub from: u32,
    /// Serial of the version it makes.
    pub to: u32,
    /// The old and the new SOA record, without owner (the owner is the apex).
    pub old_soa: Box<[u8]>,
    pub new_soa: Box<[u8]>,
    /// Deleted records, each with its owner; and how many.
    pub removed: Box<[u8]>,
    pub removed_count: usize,
    /// Added records, each with its owner; and how many.
    pub added: Box<[u8]>,
    pub added_count: usize,
}

impl Delta {
    /// Whether only the serial changed.
    pub fn is_empty(&self) -> bool {
        self.removed_count == 0 && self.added_count == 0
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.old_soa.len() + self.new_soa.len() + self.removed.len() + self.added.len()
    }
}

/// Iterate over records written owner first (as in [`Delta::removed`]): each `(owner, record)`.
pub fn each_owned(mut bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let owner_len = wire_len(bytes);
        let rdlen = u16::from_be_bytes([bytes[owner_len + 8], bytes[owner_len + 9]]) as usize;
        let end = owner_len + 10 + rdlen;
        let (owner, record) = (&bytes[..owner_len], &bytes[owner_len..end]);
        bytes = &bytes[end..];
        Some((owner, record))
    })
}

/// A zone's latest changes, bounded in versions and bytes. Cheap to clone (the deltas are
/// shared), so each version of a zone carries its own.
#[derive(Clone, Default)]
pub struct Journal {
    deltas: Vec<Arc<Delta>>,
    bytes: usize,
}

impl Journal {
    /// This journal with `delta` appended, then the oldest dropped until at most
    /// [`JOURNAL_VERSIONS`] remain and their bytes stay within `max(zone_bytes,
    /// JOURNAL_MIN_BYTES)`. A delta that does not follow the newest (its `from` is not the newest
    /// `to`) starts the journal afresh.
    pub fn with(&self, delta: Delta, zone_bytes: usize) -> Journal {
        let mut next = if self.deltas.last().is_some_and(|d| d.to != delta.from) {
            Journal::default()
        } else {
            self.clone()
        };
        next.bytes += delta.bytes();
        next.deltas.push(Arc::new(delta));
        let limit = zone_bytes.max(JOURNAL_MIN_BYTES);
        let mut drop = 0;
        while next.deltas.len() - drop > JOURNAL_VERSIONS
            || (next.bytes > limit && next.deltas.len() - drop > 1)
        {
            next.bytes -= next.deltas[drop].bytes();
            drop += 1;
        }
        next.deltas.drain(..drop);
        next
    }

    /// The changes that take a secondary at `serial` to the newest version, oldest first; `None`
    /// when the journal does not reach back to `serial` (the secondary then gets the whole zone).
    pub fn since(&self, serial: u32) -> Option<&[Arc<Delta>]> {
        let start = self.deltas.iter().position(|d| d.from == serial)?;
        Some(&self.deltas[start..])
    }

    /// Versions remembered.
    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest serial a secondary can be brought forward from.
    pub fn oldest(&self) -> Option<u32> {
        self.deltas.first().map(|d| d.from)
    }
}

impl Zone {
    /// Give this version the serial `serial`: the apex SOA, the SOA of negative answers and
    /// [`Zone::serial`]. A catalog built afterwards prepares responses with it.
    pub fn set_serial(&mut self, serial: u32) {
        let apex = self.find(&self.apex).expect("the apex is a node");
        let node = &mut self.nodes[apex as usize];
        let sets = std::mem::take(&mut node.rrsets);
        node.rrsets = sets
            .into_vec()
            .into_iter()
            .map(|s| {
                if s.rtype == TYPE_SOA {
                    with_serial(&s, serial)
                } else {
                    s
                }
            })
            .collect();
        self.negative_soa = with_serial(&self.negative_soa, serial);
        self.serial = serial;
    }

    /// The apex SOA record (TYPE..RDATA, no owner).
    pub fn soa_record(&self) -> &[u8] {
        let apex = self.find(&self.apex).expect("the apex is a node");
        self.nodes[apex as usize]
            .rrset(TYPE_SOA)
            .and_then(|s| s.each_record().next())
            .expect("a zone has its SOA")
    }

    /// Bytes of the zone's records as a transfer writes them (owners uncompressed).
    pub fn transfer_bytes(&self) -> usize {
        let nodes: usize = self
            .nodes
            .iter()
            .filter(|n| !n.dynamic)
            .map(|n| n.rrsets.iter().map(|s| s.records.len() + s.count as usize * n.name.len()).sum::<usize>())
            .sum();
        let extra: usize = self
            .replica
            .extra
            .iter()
            .map(|(o, s)| s.records.len() + s.count as usize * o.len())
            .sum();
        nodes + extra
    }
}

/// The SOA RRset `set` (one record) with its serial set to `serial`.
fn with_serial(set: &RrSet, serial: u32) -> RrSet {
    let mut records = set.records.to_vec();
    let mname = wire_len(&records[10..]);
    let rname = wire_len(&records[10 + mname..]);
    let at = 10 + mname + rname;
    records[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    RrSet::new(
        set.rtype,
        set.count,
        records.into_boxed_slice(),
        set.additional.clone(),
        set.target.clone(),
    )
}

/// RFC 1982 serial arithmetic: whether `a` is newer than `b`.
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The records that changed from `old` to `new` (static data and snapshot records, the SOA
/// aside), as a delta from `old.serial` to `new.serial` (empty when only the SOA changed).
pub fn diff(old: &Zone, new: &Zone) -> Delta {
    let mut removed = Writer::default();
    let mut added = Writer::default();
    // Static data: node by node, RRset by RRset; identical RRsets (the common case) are skipped
    // with one comparison of their bytes.
    for (key, ni) in new.names() {
        let n = &new.nodes[ni as usize];
        let o = old.index.get(key).map(|oi| &old.nodes[oi as usize]);
        compare_nodes(o, Some(n), &mut removed, &mut added);
    }
    for (key, oi) in old.names() {
        if new.index.get(key).is_none() {
            compare_nodes(Some(&old.nodes[oi as usize]), None, &mut removed, &mut added);
        }
    }
    // Snapshot records: both lists are sorted by lowercase owner and type.
    let (a, b) = (&old.replica.extra[..], &new.replica.extra[..]);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => extra_key(x).cmp(&extra_key(y)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                removed.all(&a[i].0, &a[i].1);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.all(&b[j].0, &b[j].1);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                compare_sets(&b[j].0, Some(&a[i].1), Some(&b[j].1), &mut removed, &mut added);
                i += 1;
                j += 1;
            }
        }
    }
    Delta {
        from: old.serial,
        to: new.serial,
        old_soa: old.soa_record().into(),
        new_soa: new.soa_record().into(),
        removed: removed.bytes.into_boxed_slice(),
        removed_count: removed.count,
        added: added.bytes.into_boxed_slice(),
        added_count: added.count,
    }
}

/// Whether two SOA records (TYPE..RDATA) differ in anything but their serial.
pub fn soa_differs_beyond_serial(a: &[u8], b: &[u8]) -> bool {
    let at = |r: &[u8]| {
        let mname = wire_len(&r[10..]);
        10 + mname + wire_len(&r[10 + mname..])
    };
    let (x, y) = (at(a), at(b));
    a.len() != b.len() || x != y || a[..x] != b[..y] || a[x + 4..] != b[y + 4..]
}

/// Sort key of a snapshot record set: lowercase owner, type.
pub fn extra_key(e: &(Box<[u8]>, RrSet)) -> (Vec<u8>, u16) {
    (e.0.to_ascii_lowercase(), e.1.rtype)
}

/// Records written owner first, counted.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    count: usize,
}

impl Writer {
    fn one(&mut self, owner: &[u8], record: &[u8]) {
        self.bytes.extend_from_slice(owner);
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    fn all(&mut self, owner: &[u8], set: &RrSet) {
        for r in set.each_record() {
            self.one(owner, r);
        }
    }
}

fn sets_of(n: Option<&Node>) -> &[RrSet] {
    match n {
        Some(n) if !n.dynamic => &n.rrsets,
        _ => &[],
    }
}

fn compare_nodes(old: Option<&Node>, new: Option<&Node>, removed: &mut Writer, added: &mut Writer) {
    let sets = sets_of;
    let (o, n) = (sets(old), sets(new));
    let owner_new = new.map(|n| &n.name[..]);
    let owner_old = old.map(|n| &n.name[..]);
    for s in n {
        if s.rtype == TYPE_SOA {
            continue;
        }
        let before = o.iter().find(|x| x.rtype == s.rtype);
        compare_sets(owner_new.expect("has sets"), before, Some(s), removed, added);
    }
    for s in o {
        if s.rtype != TYPE_SOA && !n.iter().any(|x| x.rtype == s.rtype) {
            removed.all(owner_old.expect("has sets"), s);
        }
    }
}

/// The records of `old` not in `new` go to `removed`, those of `new` not in `old` to `added`.
fn compare_sets(
    owner: &[u8],
    old: Option<&RrSet>,
    new: Option<&RrSet>,
    removed: &mut Writer,
    added: &mut Writer,
) {
    match (old, new) {
        (Some(o), Some(n)) if o.records == n.records => {}
        (Some(o), Some(n)) => {
            for r in o.each_record() {
                if !n.each_record().any(|x| x == r) {
                    removed.one(owner, r);
                }
            }
            for r in n.each_record() {
                if !o.each_record().any(|x| x == r) {
                    added.one(owner, r);
                }
            }
        }
        (Some(o), None) => removed.all(owner, o),
        (None, Some(n)) => added.all(owner, n),
        (None, None) => {}
    }
}

/// Length of the uncompressed wire name at the start of `bytes`.
fn wire_len(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while bytes[pos] != 0 {
        pos += 1 + bytes[pos] as usize;
    }
    pos + 1
}
