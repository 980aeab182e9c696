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

use super::{Node, RrSet, RrSetBuf, Zone};
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
    pub extra: Arc<[(Box<[u8]>, RrSetBuf)]>,
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
        self.serial = serial;
        let data = self.data_mut();
        let node = data.nodes[apex as usize];
        let sets = &data.sets[node.sets_at as usize..][..node.sets_len as usize];
        if let Some(soa) = sets.iter().find(|s| s.rtype == TYPE_SOA) {
            let (at, len) = (soa.at as usize, soa.len as usize);
            with_serial(&mut data.bytes[at..at + len], serial);
        }
        with_serial(data.negative_soa.at_qname_mut(), serial);
    }

    /// The apex SOA record (TYPE..RDATA, no owner).
    pub fn soa_record(&self) -> &[u8] {
        let apex = self.find(&self.apex).expect("the apex is a node");
        self.node(apex)
            .rrset(TYPE_SOA)
            .and_then(|s| s.each_record().next())
            .expect("a zone has its SOA")
    }

    /// Bytes of the zone's records as a transfer writes them (owners uncompressed).
    pub fn transfer_bytes(&self) -> usize {
        let nodes: usize = self
            .nodes()
            .filter(|n| !n.dynamic)
            .map(|n| {
                n.rrsets
                    .iter()
                    .map(|s| s.records_len() + s.count as usize * n.name.len())
                    .sum::<usize>()
            })
            .sum();
        let extra: usize = self
            .replica
            .extra
            .iter()
            .map(|(o, s)| s.view().records_len() + s.count as usize * o.len())
            .sum();
        nodes + extra
    }
}

/// Set the serial of the SOA record in `at_qname` (one record in the form of
/// [`RrSet::at_qname`]) to `serial`, in place.
fn with_serial(at_qname: &mut [u8], serial: u32) {
    let mname = wire_len(&at_qname[12..]);
    let rname = wire_len(&at_qname[12 + mname..]);
    let at = 12 + mname + rname;
    at_qname[at..at + 4].copy_from_slice(&serial.to_be_bytes());
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
    // with one comparison of their bytes, and shared data (a zone kept across a reload) at once.
    let shared = Arc::ptr_eq(&old.data, &new.data);
    for (key, ni) in new.names().filter(|_| !shared) {
        let n = new.node(ni);
        let o = old.index.get(key).map(|oi| old.node(oi));
        compare_nodes(o, Some(n), &mut removed, &mut added);
    }
    for (key, oi) in old.names().filter(|_| !shared) {
        if new.index.get(key).is_none() {
            compare_nodes(Some(old.node(oi)), None, &mut removed, &mut added);
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
                removed.all(&a[i].0, a[i].1.view());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.all(&b[j].0, b[j].1.view());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                compare_sets(
                    &b[j].0,
                    Some(a[i].1.view()),
                    Some(b[j].1.view()),
                    &mut removed,
                    &mut added,
                );
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
pub fn extra_key(e: &(Box<[u8]>, RrSetBuf)) -> (Vec<u8>, u16) {
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

    fn all(&mut self, owner: &[u8], set: RrSet) {
        for r in set.each_record() {
            self.one(owner, r);
        }
    }
}

fn sets_of<'z>(n: Option<Node<'z>>) -> Vec<RrSet<'z>> {
    match n {
        Some(n) if !n.dynamic => n.rrsets.iter().collect(),
        _ => Vec::new(),
    }
}

fn compare_nodes(old: Option<Node>, new: Option<Node>, removed: &mut Writer, added: &mut Writer) {
    let sets = sets_of;
    let (o, n) = (sets(old), sets(new));
    let owner_new = new.map(|n| n.name);
    let owner_old = old.map(|n| n.name);
    for &s in &n {
        if s.rtype == TYPE_SOA {
            continue;
        }
        let before = o.iter().find(|x| x.rtype == s.rtype).copied();
        compare_sets(
            owner_new.expect("has sets"),
            before,
            Some(s),
            removed,
            added,
        );
    }
    for &s in &o {
        if s.rtype != TYPE_SOA && !n.iter().any(|x| x.rtype == s.rtype) {
            removed.all(owner_old.expect("has sets"), s);
        }
    }
}

/// The records of `old` not in `new` go to `removed`, those of `new` not in `old` to `added`.
fn compare_sets(
    owner: &[u8],
    old: Option<RrSet>,
    new: Option<RrSet>,
    removed: &mut Writer,
    added: &mut Writer,
) {
    match (old, new) {
        (Some(o), Some(n)) if o.at_qname == n.at_qname => {}
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

/// Length of the uncompressed wire name at the start of `bytes` (a zone's own, well formed).
fn wire_len(bytes: &[u8]) -> usize {
    crate::wire::skip_name(bytes, 0).expect("a zone's names are well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(text: &str) -> Zone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.zone");
        std::fs::write(&path, text).unwrap();
        let origin = hickory_proto::rr::Name::from_ascii("example.org.").unwrap();
        crate::zone::load_zone(&origin, &path).unwrap()
    }

    const V1: &str = "$ORIGIN example.org.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww A 192.0.2.11\nold TXT \"gone soon\"\n";
    const V2: &str = "$ORIGIN example.org.\n$TTL 300\n@ SOA ns hostmaster 2 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww A 192.0.2.12\nnew TXT \"here now\"\n";

    fn owned(bytes: &[u8]) -> Vec<String> {
        let mut v: Vec<String> = each_owned(bytes)
            .map(|(o, r)| format!("{} {:?}", crate::zone::build::wire_to_text(o), &r[10..]))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn diff_lists_exactly_the_records_that_changed() {
        let (a, b) = (zone(V1), zone(V2));
        let d = diff(&a, &b);
        assert_eq!((d.from, d.to), (1, 2));
        assert_eq!((d.removed_count, d.added_count), (2, 2));
        assert_eq!(
            owned(&d.removed),
            vec![
                "old.example.org. [9, 103, 111, 110, 101, 32, 115, 111, 111, 110]".to_string(),
                "www.example.org. [192, 0, 2, 11]".to_string(),
            ]
        );
        assert_eq!(
            owned(&d.added),
            vec![
                "new.example.org. [8, 104, 101, 114, 101, 32, 110, 111, 119]".to_string(),
                "www.example.org. [192, 0, 2, 12]".to_string(),
            ]
        );
        // Applying the delta to the old records gives the new ones (the oracle: each zone's own
        // records).
        let records = |z: &Zone| -> Vec<(Vec<u8>, Vec<u8>)> {
            let mut v = Vec::new();
            for n in z.nodes() {
                for s in n.rrsets.iter().filter(|s| s.rtype != TYPE_SOA) {
                    for r in s.each_record() {
                        v.push((n.name.to_ascii_lowercase(), r.to_vec()));
                    }
                }
            }
            v.sort();
            v
        };
        let mut applied = records(&a);
        for (o, r) in each_owned(&d.removed) {
            let at = applied
                .iter()
                .position(|x| x.0 == o.to_ascii_lowercase() && x.1 == r)
                .expect("a removed record was there");
            applied.remove(at);
        }
        applied.extend(each_owned(&d.added).map(|(o, r)| (o.to_ascii_lowercase(), r.to_vec())));
        applied.sort();
        assert_eq!(applied, records(&b));
        assert!(diff(&a, &zone(V1)).is_empty());
    }

    #[test]
    fn set_serial_changes_the_soa_everywhere_and_nothing_else() {
        let mut z = zone(V1);
        let before = z.soa_record().to_vec();
        z.set_serial(0xDEAD_BEEF);
        assert_eq!(z.serial, 0xDEAD_BEEF);
        let after = z.soa_record();
        assert!(!soa_differs_beyond_serial(&before, after));
        assert_ne!(&before[..], after);
        let neg = z.negative_soa().each_record().next().unwrap();
        assert!(neg.windows(4).any(|w| w == 0xDEAD_BEEFu32.to_be_bytes()));
        assert!(diff(&zone(V1), &z).is_empty());
        // A change of the SOA's timers is a change beyond the serial.
        let other = zone(&V1.replace("3600 600", "7200 600"));
        assert!(soa_differs_beyond_serial(&before, other.soa_record()));
    }

    fn delta(from: u32, to: u32, bytes: usize) -> Delta {
        Delta {
            from,
            to,
            old_soa: Box::new([]),
            new_soa: Box::new([]),
            removed: vec![0; bytes].into(),
            removed_count: 1,
            added: Box::new([]),
            added_count: 0,
        }
    }

    #[test]
    fn the_journal_reaches_back_as_far_as_its_bounds_allow() {
        let mut j = Journal::default();
        for s in 1..=5 {
            j = j.with(delta(s, s + 1, 10), 0);
        }
        assert_eq!(j.since(3).map(|d| d.len()), Some(3));
        assert_eq!(j.since(1).map(|d| d.len()), Some(5));
        assert!(j.since(6).is_none() && j.since(0).is_none());
        // Bytes: the zone's size, at least JOURNAL_MIN_BYTES.
        let big = j.with(delta(6, 7, JOURNAL_MIN_BYTES), 0);
        assert_eq!((big.len(), big.oldest()), (1, Some(6)));
        let kept = j.with(delta(6, 7, JOURNAL_MIN_BYTES), 10 * JOURNAL_MIN_BYTES);
        assert_eq!(kept.len(), 6);
        // Versions.
        let mut many = Journal::default();
        for s in 0..(JOURNAL_VERSIONS as u32 + 10) {
            many = many.with(delta(s, s + 1, 1), 0);
        }
        assert_eq!(many.len(), JOURNAL_VERSIONS);
        assert_eq!(many.oldest(), Some(10));
        // A delta that does not follow starts afresh.
        let fresh = j.with(delta(40, 41, 1), 0);
        assert_eq!((fresh.len(), fresh.oldest()), (1, Some(40)));
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_newer(2, 1));
        assert!(!serial_newer(1, 2) && !serial_newer(5, 5));
        assert!(serial_newer(1, u32::MAX));
        assert!(serial_newer(
            1_796_300_000u32.wrapping_add(1 << 30),
            1_796_300_000
        ));
    }
}
