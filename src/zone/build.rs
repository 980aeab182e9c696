//! Turning the records of a master file into a checked, ready-to-serve [`Zone`].
//!
//! The checks here are the ones that make a zone unservable: no SOA or more than one, SOA away
//! from the apex, CNAME beside other data, DNAME (not implemented). Either the whole zone passes
//! and is built, or nothing of it is used.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::file::{RawRecord, ReadRecords, SourceRecord, read_zone_files};
use super::{NameIndex, RrSetBuf, Zone};

/// A name as `(lowercase wire form, wire form as written)`.
pub type WrittenName = (Box<[u8]>, Box<[u8]>);

use crate::wire::{CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_SOA};

/// A problem in a zone, located in its master file (line and column are 1-based; 0 = unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ZoneError {
    pub fn at(file: &Path, line: usize, column: usize, message: String) -> Self {
        ZoneError {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file.display(), self.message),
            (l, 0) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            (l, c) => write!(f, "{}:{l}:{c}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ZoneError {}

/// Lowercase wire form of a name.
pub fn lower_wire(name: &Name) -> Box<[u8]> {
    name_wire(&name.to_lowercase())
}

/// Labels of a wire name below the root (hickory's `num_labels` skips a leading `*`).
pub fn wire_labels(wire: &[u8]) -> usize {
    let (mut pos, mut n) = (0, 0);
    while pos < wire.len() && wire[pos] != 0 {
        pos += 1 + wire[pos] as usize;
        n += 1;
    }
    n
}

/// Wire form of a name, in its own case.
pub fn name_wire(name: &Name) -> Box<[u8]> {
    let mut fqdn = name.clone();
    fqdn.set_fqdn(true);
    fqdn.to_bytes()
        .expect("a parsed name encodes")
        .into_boxed_slice()
}

/// RDATA in wire form with uncompressed names, so it can be copied into any message.
pub fn rdata_wire(rdata: &RData) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut enc)?;
    Ok(buf)
}

fn encode_record(out: &mut Vec<u8>, rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Read, check and build the zone `origin` from `file`.
pub fn load_zone(origin: &Name, file: &Path) -> Result<Zone, Vec<ZoneError>> {
    let (records, files) = read_zone_files(file, origin)?;
    let mut zone = build_read(origin, file, records)?;
    zone.sources = files.into();
    Ok(zone)
}

/// A file's state as far as a reload can tell cheaply: length, modification time, inode. A
/// file rewritten in place or replaced by a rename changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    /// `path`'s stamp now; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            inode: m.ino(),
        })
    }
}

impl Zone {
    /// Whether every file this zone was read from is as it was then (a zone read from no file
    /// never is).
    pub fn sources_unchanged(&self) -> bool {
        !self.sources.is_empty()
            && self
                .sources
                .iter()
                .all(|(path, stamp)| Stamp::of(path) == Some(*stamp))
    }
}

/// Lowercase owner names while a zone is built: one arena, found by hash (open addressing), so
/// a million names are not a million heap objects.
struct Owners {
    keys: Vec<u8>,
    spans: Vec<(u32, u8)>,
    slots: Vec<u32>,
}

impl Owners {
    fn with_capacity(names: usize) -> Owners {
        Owners {
            keys: Vec::with_capacity(names * 16),
            spans: Vec::with_capacity(names),
            slots: vec![NONE; (names * 2).next_power_of_two().max(16)],
        }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn key(&self, id: u32) -> &[u8] {
        let (at, len) = self.spans[id as usize];
        &self.keys[at as usize..at as usize + len as usize]
    }

    /// The slot holding `lower`, or the empty slot where it would go.
    fn slot(&self, lower: &[u8]) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = crate::wire::name_hash(lower) as usize & mask;
        while self.slots[i] != NONE && self.key(self.slots[i]) != lower {
            i = (i + 1) & mask;
        }
        i
    }

    fn find(&self, lower: &[u8]) -> Option<u32> {
        let id = self.slots[self.slot(lower)];
        (id != NONE).then_some(id)
    }

    /// `lower`'s id, and whether it was added now.
    fn insert(&mut self, lower: &[u8]) -> (u32, bool) {
        let i = self.slot(lower);
        if self.slots[i] != NONE {
            return (self.slots[i], false);
        }
        let id = self.spans.len() as u32;
        self.spans.push((self.keys.len() as u32, lower.len() as u8));
        self.keys.extend_from_slice(lower);
        self.slots[i] = id;
        if self.spans.len() * 2 > self.slots.len() {
            let mut grown = vec![NONE; self.slots.len() * 2];
            let mask = grown.len() - 1;
            for id in 0..self.spans.len() as u32 {
                let mut j = crate::wire::name_hash(self.key(id)) as usize & mask;
                while grown[j] != NONE {
                    j = (j + 1) & mask;
                }
                grown[j] = id;
            }
            self.slots = grown;
        }
        (id, true)
    }
}

const NONE: u32 = u32::MAX;

/// Whether two RDATA of type `rtype` are the same record: names compared without regard to case
/// (RFC 4343), everything else byte for byte.
fn same_rdata(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    use crate::wire::{TYPE_CNAME, TYPE_MX, TYPE_NS, TYPE_SRV};
    let name_at = match rtype {
        TYPE_NS | TYPE_CNAME | 12 => 0, // 12: PTR
        TYPE_MX => 2,
        TYPE_SRV => 6,
        _ => return a == b,
    };
    a.len() == b.len()
        && a.len() >= name_at
        && a[..name_at] == b[..name_at]
        && a[name_at..].eq_ignore_ascii_case(&b[name_at..])
}

/// Where the name an RRset of `rtype` points at starts in its RDATA, for additional-section
/// processing (NS, MX, SRV).
fn target_at(rtype: u16) -> Option<usize> {
    use crate::wire::{TYPE_MX, TYPE_NS, TYPE_SRV};
    match rtype {
        TYPE_NS => Some(0),
        TYPE_MX => Some(2),
        TYPE_SRV => Some(6),
        _ => None,
    }
}

/// One RRset while a zone is built: its type, TTL and records (`members[first..end]`,
/// positions in the records read).
struct Group {
    rtype: u16,
    ttl: u32,
    first: u32,
    end: u32,
}

/// Build a zone from hickory-proto records (a secondary's, the catalog zone's); every error is
/// reported.
pub fn build_zone(
    origin: &Name,
    file: &Path,
    records: Vec<SourceRecord>,
) -> Result<Zone, Vec<ZoneError>> {
    build_read(origin, file, ReadRecords::from_source(records)?)
}

/// Build a zone from records already read; every error is reported.
pub fn build_read(origin: &Name, file: &Path, read: ReadRecords) -> Result<Zone, Vec<ZoneError>> {
    use crate::wire::{TYPE_CNAME, TYPE_NS};
    const TYPE_DNAME: u16 = 39;
    let mut errors = Vec::new();
    let apex = lower_wire(origin);
    let apex_labels = wire_labels(&apex);
    let mut owners = Owners::with_capacity(read.len() + 1);
    // Names as written, then records, CNAME targets: the zone's arena.
    let mut bytes: Vec<u8> = Vec::new();
    let mut names: Vec<(u32, u8)> = Vec::with_capacity(read.len() + 1);
    let mut owner_of: Vec<u32> = Vec::with_capacity(read.len());
    let mut lower = Vec::with_capacity(crate::wire::MAX_NAME);
    for r in &read.records {
        if r.rtype == TYPE_DNAME {
            errors.push(read.error_at(r, "DNAME records are not supported".into()));
            owner_of.push(NONE);
            continue;
        }
        let written = read.owner(r);
        lower.clear();
        lower.extend(written.iter().map(u8::to_ascii_lowercase));
        let (id, new) = owners.insert(&lower);
        if new {
            names.push((bytes.len() as u32, written.len() as u8));
            bytes.extend_from_slice(written);
        }
        owner_of.push(id);
    }
    let with_records = owners.len();
    // Records grouped by owner (a counting sort: file order kept within an owner), then by type.
    let mut starts = vec![0u32; with_records + 1];
    for &o in owner_of.iter().filter(|&&o| o != NONE) {
        starts[o as usize + 1] += 1;
    }
    for i in 0..with_records {
        starts[i + 1] += starts[i];
    }
    let mut members = vec![0u32; starts[with_records] as usize];
    let mut fill = starts.clone();
    for (i, &o) in owner_of.iter().enumerate().filter(|(_, o)| **o != NONE) {
        members[fill[o as usize] as usize] = i as u32;
        fill[o as usize] += 1;
    }
    drop((owner_of, fill));
    let mut groups: Vec<Group> = Vec::with_capacity(read.len());
    // Per owner: its groups `groups[group_starts[o]..group_starts[o + 1]]`.
    let mut group_starts = Vec::with_capacity(with_records + 1);
    let mut soa: Option<(u32, usize)> = None; // TTL, position in the records read
    let owner_text = |r: &RawRecord| wire_to_text(read.owner(r));
    for o in 0..with_records {
        group_starts.push(groups.len() as u32);
        let (lo, hi) = (starts[o] as usize, starts[o + 1] as usize);
        let recs = &mut members[lo..hi];
        recs.sort_by_key(|&i| read.records[i as usize].rtype); // stable: file order kept
        let first_group = groups.len();
        let mut i = 0;
        while i < recs.len() {
            let rtype = read.records[recs[i] as usize].rtype;
            let mut end = i;
            let mut kept = i;
            let mut ttl = u32::MAX;
            while end < recs.len() && read.records[recs[end] as usize].rtype == rtype {
                let r = &read.records[recs[end] as usize];
                // RFC 2181 §5.2: the TTLs of an RRset must agree; serve the lowest.
                ttl = ttl.min(r.ttl);
                let rd = read.rdata(r);
                if !recs[i..kept]
                    .iter()
                    .any(|&k| same_rdata(rtype, read.rdata(&read.records[k as usize]), rd))
                {
                    recs[kept] = recs[end];
                    kept += 1;
                }
                end += 1;
            }
            groups.push(Group {
                rtype,
                ttl,
                first: (lo + i) as u32,
                end: (lo + kept) as u32,
            });
            i = end;
        }
        let sets = &groups[first_group..];
        for g in sets {
            let first = &read.records[members[g.first as usize] as usize];
            if g.rtype == TYPE_SOA {
                if owners.key(o as u32) != &apex[..] {
                    errors.push(read.error_at(
                        first,
                        format!(
                            "SOA record at {} is not at the zone apex {origin}",
                            owner_text(first)
                        ),
                    ));
                } else if g.end - g.first > 1 {
                    errors
                        .push(read.error_at(first, "more than one SOA record at the apex".into()));
                } else {
                    soa = Some((g.ttl, members[g.first as usize] as usize));
                }
            }
            if g.rtype == TYPE_CNAME {
                if sets.len() > 1 {
                    errors.push(read.error_at(
                        first,
                        format!("{} has a CNAME and other data", owner_text(first)),
                    ));
                } else if g.end - g.first > 1 {
                    errors.push(read.error_at(
                        first,
                        format!("{} has more than one CNAME", owner_text(first)),
                    ));
                }
            }
        }
    }
    group_starts.push(groups.len() as u32);
    let Some((soa_ttl, soa_at)) = soa else {
        if errors.is_empty() {
            errors.push(ZoneError::at(
                file,
                0,
                0,
                format!("zone {origin} has no SOA record at its apex"),
            ));
        }
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    // Empty non-terminals: every ancestor between the apex and an owner exists as a node. An
    // ancestor found is done (its own ancestors are walked from it); the loop also walks the
    // ones added.
    let mut id = 0;
    let mut name = Vec::with_capacity(crate::wire::MAX_NAME);
    while id < owners.len() {
        let (at, len) = names[id];
        name.clear();
        name.extend_from_slice(&bytes[at as usize..at as usize + len as usize]);
        let mut labels = wire_labels(&name);
        let mut from = 0;
        while labels > apex_labels + 1 {
            from += 1 + name[from] as usize;
            labels -= 1;
            lower.clear();
            lower.extend(name[from..].iter().map(u8::to_ascii_lowercase));
            if !owners.insert(&lower).1 {
                break;
            }
            names.push((at + from as u32, (len as usize - from) as u8));
        }
        id += 1;
    }
    let node_count = owners.len();

    let holds = |o: usize, want: &dyn Fn(u16) -> bool| {
        o < with_records
            && groups[group_starts[o] as usize..group_starts[o + 1] as usize]
                .iter()
                .any(|g| want(g.rtype))
    };
    // Zone cuts: a node with NS records below the apex; every node at or below it is under it.
    let is_cut =
        |o: usize| wire_labels(owners.key(o as u32)) > apex_labels && holds(o, &|t| t == TYPE_NS);
    let any_cut = (0..with_records).any(is_cut);
    let mut nodes = Vec::with_capacity(node_count);
    for (o, &(name_at, name_len)) in names.iter().enumerate() {
        let key = owners.key(o as u32);
        let labels = wire_labels(key);
        let mut cut = NONE;
        if any_cut {
            let (mut k, mut l) = (key, labels);
            while l > apex_labels {
                let j = owners.find(k).expect("ancestors are nodes") as usize;
                if is_cut(j) {
                    cut = j as u32; // keep walking up: the topmost cut wins
                }
                k = &k[1 + k[0] as usize..];
                l -= 1;
            }
        }
        nodes.push(super::NodeEntry {
            name_at,
            name_len,
            labels: labels as u8,
            sets_at: 0,
            sets_len: 0,
            cut,
            dynamic: false,
        });
    }

    // The RRsets, their records in the form every answer copies.
    let mut sets = Vec::with_capacity(groups.len());
    let mut extra: Vec<u32> = Vec::new();
    bytes.reserve(read.len() * 16);
    for o in 0..with_records {
        nodes[o].sets_at = sets.len() as u32;
        let mine = &groups[group_starts[o] as usize..group_starts[o + 1] as usize];
        nodes[o].sets_len = mine.len() as u16;
        for g in mine {
            let at = bytes.len();
            let extra_at = extra.len();
            let mut last_rdlen = 0;
            for &m in &members[g.first as usize..g.end as usize] {
                let rd = read.rdata(&read.records[m as usize]);
                bytes.extend_from_slice(&super::QNAME_POINTER);
                encode_record(&mut bytes, g.rtype, g.ttl, rd);
                last_rdlen = rd.len() as u16;
                if let Some(t) = target_at(g.rtype).filter(|&t| t < rd.len()) {
                    lower.clear();
                    lower.extend(rd[t..].iter().map(u8::to_ascii_lowercase));
                    if let Some(idx) = owners.find(&lower)
                        && holds(idx as usize, &|t| matches!(t, TYPE_A | TYPE_AAAA))
                        && !extra[extra_at..].contains(&idx)
                    {
                        extra.push(idx);
                    }
                }
            }
            let len = bytes.len() - at;
            let (mut target_at, mut target_len) = (NONE, 0);
            if g.rtype == TYPE_CNAME {
                let rd = read.rdata(&read.records[members[g.first as usize] as usize]);
                target_at = bytes.len() as u32;
                target_len = rd.len() as u8;
                bytes.extend(rd.iter().map(u8::to_ascii_lowercase));
            }
            assert!(bytes.len() <= u32::MAX as usize, "zone data fits in 4 GiB");
            sets.push(super::SetEntry {
                at: at as u32,
                len: len as u32,
                extra_at: extra_at as u32,
                extra_len: (extra.len() - extra_at) as u16,
                target_at,
                target_len,
                rtype: g.rtype,
                count: (g.end - g.first) as u16,
                last_rdlen,
            });
        }
    }

    let soa_rdata = read.rdata(&read.records[soa_at]);
    let field = |from_end: usize| {
        let at = soa_rdata.len() - from_end;
        u32::from_be_bytes(soa_rdata[at..at + 4].try_into().expect("four bytes"))
    };
    let (serial, minimum) = (field(20), field(4));
    let mut neg = Vec::new();
    encode_record(&mut neg, TYPE_SOA, soa_ttl.min(minimum), soa_rdata);
    let complex = (0..with_records as u32)
        .filter(|&o| {
            let n = &nodes[o as usize];
            sets[n.sets_at as usize..][..n.sets_len as usize]
                .iter()
                .any(|s| s.rtype == TYPE_CNAME || s.extra_len > 0)
        })
        .collect();
    let index = NameIndex::new((0..node_count as u32).map(|o| (owners.key(o), o)));
    drop(owners);
    let nx_ready = !any_cut
        && names
            .iter()
            .all(|&(at, _)| !bytes[at as usize..].starts_with(b"\x01*"));
    bytes.shrink_to_fit();
    Ok(Zone {
        origin: origin.to_string(),
        data: std::sync::Arc::new(super::ZoneData {
            apex,
            apex_labels,
            nodes,
            sets,
            bytes,
            extra,
            index,
            negative_soa: RrSetBuf::new(TYPE_SOA, 1, &neg, None),
            nx_ready,
            complex,
        }),
        serial,
        // A record written twice is held (and served, and transferred) once: count it once.
        record_count: groups.iter().map(|g| (g.end - g.first) as usize).sum(),
        id: 0,
        transfer: None,
        transfer_keys: Box::new([]),
        replica: Default::default(),
        sources: Box::new([]),
    })
}

/// Make each of `names` a node of `zone` whose answers are dynamic (a service's), adding empty
/// non-terminals above it as needed; a name that is already a node (an empty non-terminal, as
/// config validation allows) is marked dynamic. Each name is `(lowercase wire, wire as
/// written)` and lies inside the zone. The names then exist for every lookup: their ancestors
/// answer NODATA, not NXDOMAIN (RFC 8020), and a wildcard above them no longer covers names
/// below them (RFC 4592 §2.2).
pub fn add_dynamic(zone: &mut Zone, names: &[WrittenName]) {
    if names.is_empty() {
        return;
    }
    let zone = zone.data_mut();
    let mut added: HashMap<Box<[u8]>, u32, foldhash::fast::RandomState> = HashMap::default();
    let first_new = zone.nodes.len();
    for (lower, written) in names {
        let (mut k, mut w) = (&lower[..], &written[..]);
        let mut dynamic = true;
        loop {
            if let Some(idx) = zone.index.get(k).or_else(|| added.get(k).copied()) {
                zone.nodes[idx as usize].dynamic |= dynamic;
                break;
            }
            let labels = wire_labels(w);
            added.insert(k.into(), zone.nodes.len() as u32);
            zone.nodes.push(super::NodeEntry {
                name_at: zone.bytes.len() as u32,
                name_len: w.len() as u8,
                labels: labels as u8,
                sets_at: 0,
                sets_len: 0,
                cut: NONE,
                dynamic,
            });
            zone.bytes.extend_from_slice(w);
            if labels <= zone.apex_labels {
                break; // not inside the zone: the caller's mistake; stop at the root
            }
            (k, w) = (&k[1 + k[0] as usize..], &w[1 + w[0] as usize..]);
            dynamic = false;
        }
    }
    // The topmost cut above each new node (services below a cut are refused by validation; the
    // nodes are still placed right).
    for i in first_new..zone.nodes.len() {
        let lower = zone.node(i as u32).name.to_ascii_lowercase();
        let mut k = &lower[..];
        let mut cut = NONE;
        while wire_labels(k) > zone.apex_labels {
            let j = zone
                .index
                .get(k)
                .or_else(|| added.get(k).copied())
                .expect("ancestors are nodes");
            if zone.node(j).rrset(crate::wire::TYPE_NS).is_some() {
                cut = j;
            }
            k = &k[1 + k[0] as usize..];
        }
        zone.nodes[i].cut = cut;
    }
    let mut keys: Vec<(&[u8], u32)> = zone.index.iter().collect();
    keys.extend(added.iter().map(|(k, &v)| (&k[..], v)));
    let index = NameIndex::new(keys);
    zone.index = index;
}

/// Wire form of a validated textual name; lowercased when `lower`.
pub fn name_wire_str(name: &str, lower: bool) -> Box<[u8]> {
    let n = Name::from_ascii(name).expect("names are validated by config");
    if lower { lower_wire(&n) } else { name_wire(&n) }
}

/// Presentation form of a wire name (for messages).
pub fn wire_to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        let l = wire[pos] as usize;
        out.push_str(&String::from_utf8_lossy(&wire[pos + 1..pos + 1 + l]));
        out.push('.');
        pos += 1 + l;
    }
    if out.is_empty() { ".".into() } else { out }
}

/// A catalog zone (RFC 9432, version 2) named `origin` listing `members`: the SOA and NS the RFC
/// asks for (`invalid.`; TTL 0), `version` TXT "2", and one PTR per member at
/// `<id>.zones.<origin>`, where `<id>` is a hash of the member's lowercase name (stable across
/// restarts and reloads, so a consumer sees a member keep its identity). Serial 1: the versions
/// served are numbered by the transfer machinery.
pub fn catalog_zone(origin: &Name, members: &[Name]) -> Zone {
    use hickory_proto::rr::rdata::{NS, PTR, SOA, TXT};
    let invalid = Name::from_ascii("invalid.").expect("a valid name");
    let record = |owner: Name, rdata: RData| SourceRecord {
        owner,
        ttl: 0,
        rdata,
        file: std::path::PathBuf::from("(catalog zone)"),
        line: 0,
        column: 0,
    };
    let under = |label: &str| {
        Name::from_ascii(label)
            .expect("a valid label")
            .append_domain(origin)
            .expect("a short name")
    };
    let mut records = vec![
        record(
            origin.clone(),
            RData::SOA(SOA::new(
                invalid.clone(),
                invalid.clone(),
                1,
                3600,
                600,
                2_147_483_646,
                0,
            )),
        ),
        record(origin.clone(), RData::NS(NS(invalid))),
        record(under("version"), RData::TXT(TXT::new(vec!["2".into()]))),
    ];
    for m in members {
        let lower = lower_wire(m);
        // FNV-1a, 64 bits: a unique, stable label per member (RFC 9432 §4.1 leaves the choice).
        let id = lower.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        records.push(record(
            under(&format!("{id:016x}.zones")),
            RData::PTR(PTR(m.clone())),
        ));
    }
    build_zone(origin, Path::new("(catalog zone)"), records)
        .unwrap_or_else(|e| panic!("a generated catalog zone is valid: {}", e[0]))
}
