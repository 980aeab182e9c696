//! Turning the records of a master file into a checked, ready-to-serve [`Zone`].
//!
//! The checks here are the ones that make a zone unservable: no SOA or more than one, SOA away
//! from the apex, CNAME beside other data, DNAME (not implemented). Either the whole zone passes
//! and is built, or nothing of it is used.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::file::{SourceRecord, read_zone_files};
use super::{NameIndex, Node, RrSet, Zone};

/// A name as `(lowercase wire form, wire form as written)`.
pub type WrittenName = (Box<[u8]>, Box<[u8]>);

/// Owner names while a zone is built (the finished zone keeps a [`NameIndex`]).
type Index = HashMap<Box<[u8]>, u32, foldhash::fast::RandomState>;
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

/// The name an RRset points at for additional-section processing.
fn target_of(rdata: &RData) -> Option<&Name> {
    match rdata {
        RData::NS(ns) => Some(&ns.0),
        RData::MX(mx) => Some(&mx.exchange),
        RData::SRV(srv) => Some(&srv.target),
        _ => None,
    }
}

/// Read, check and build the zone `origin` from `file`.
pub fn load_zone(origin: &Name, file: &Path) -> Result<Zone, Vec<ZoneError>> {
    let (records, files) = read_zone_files(file, origin)?;
    let mut zone = build_zone(origin, file, records)?;
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

/// An empty non-terminal while a zone is built: lowercase, as written, labels.
type Ent = (Box<[u8]>, Box<[u8]>, usize);

/// An owner while a zone is built: its name as written, its label count, its RRsets by type.
type Owner<'a> = (Box<[u8]>, usize, BTreeMap<u16, PendingSet<'a>>);

struct PendingSet<'a> {
    rtype: RecordType,
    ttl: u32,
    rdatas: Vec<&'a RData>,
    first: &'a SourceRecord,
}

/// Build a zone from records already read; every error is reported.
pub fn build_zone(
    origin: &Name,
    file: &Path,
    records: Vec<SourceRecord>,
) -> Result<Zone, Vec<ZoneError>> {
    let mut errors = Vec::new();
    let err = |r: &SourceRecord, m: String| ZoneError::at(&r.file, r.line, r.column, m);
    let apex = lower_wire(origin);
    // owner (lowercase wire) -> (owner as written, type -> set); BTreeMap for a stable order.
    let mut owners: BTreeMap<Box<[u8]>, Owner> = BTreeMap::new();
    for r in &records {
        let rtype = r.rdata.record_type();
        if rtype == RecordType::DNAME {
            errors.push(err(r, "DNAME records are not supported".into()));
            continue;
        }
        let key = lower_wire(&r.owner);
        let entry = owners.entry(key).or_insert_with(|| {
            let w = name_wire(&r.owner);
            let n = wire_labels(&w);
            (w, n, BTreeMap::new())
        });
        let set = entry
            .2
            .entry(u16::from(rtype))
            .or_insert_with(|| PendingSet {
                rtype,
                ttl: r.ttl,
                rdatas: Vec::new(),
                first: r,
            });
        // RFC 2181 §5.2: the TTLs of an RRset must agree; serve the lowest.
        set.ttl = set.ttl.min(r.ttl);
        if !set.rdatas.contains(&&r.rdata) {
            set.rdatas.push(&r.rdata);
        }
    }
    let mut soa = None;
    for (key, (_, _, sets)) in &owners {
        if let Some(s) = sets.get(&TYPE_SOA) {
            if **key != *apex {
                errors.push(err(
                    s.first,
                    format!(
                        "SOA record at {} is not at the zone apex {origin}",
                        s.first.owner
                    ),
                ));
            } else if s.rdatas.len() > 1 {
                errors.push(err(s.first, "more than one SOA record at the apex".into()));
            } else if let RData::SOA(x) = s.rdatas[0] {
                soa = Some((s.ttl, x.clone()));
            }
        }
        if let Some(c) = sets.get(&u16::from(RecordType::CNAME)) {
            if sets.len() > 1 {
                errors.push(err(
                    c.first,
                    format!("{} has a CNAME and other data", c.first.owner),
                ));
            } else if c.rdatas.len() > 1 {
                errors.push(err(
                    c.first,
                    format!("{} has more than one CNAME", c.first.owner),
                ));
            }
        }
    }
    let Some((soa_ttl, soa_rdata)) = soa else {
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

    // Add empty non-terminals: every ancestor between the apex and an owner exists as a node.
    let apex_labels = wire_labels(&apex);
    let mut ents: Vec<Ent> = Vec::new();
    for (key, (written, labels, _)) in &owners {
        let (mut k, mut w, mut l) = (&key[..], &written[..], *labels);
        while l > apex_labels + 1 {
            k = &k[1 + k[0] as usize..];
            w = &w[1 + w[0] as usize..];
            l -= 1;
            if !owners.contains_key(k) && !ents.iter().any(|e| *e.0 == *k) {
                ents.push((k.into(), w.into(), l));
            }
        }
    }
    let mut nodes = Vec::with_capacity(owners.len() + ents.len());
    let mut index = Index::default();
    let mut pending: Vec<Vec<PendingSet>> = Vec::new();
    for (key, (written, labels, sets)) in owners {
        index.insert(key, nodes.len() as u32);
        nodes.push(Node {
            name: written,
            labels,
            rrsets: Box::new([]),
            cut: None,
            dynamic: false,
        });
        pending.push(sets.into_values().collect());
    }
    for (key, written, labels) in ents {
        index.insert(key, nodes.len() as u32);
        nodes.push(Node {
            name: written,
            labels,
            rrsets: Box::new([]),
            cut: None,
            dynamic: false,
        });
        pending.push(Vec::new());
    }

    // Zone cuts: a node with NS records below the apex; every node at or below it is under it.
    let is_cut: Vec<bool> = pending
        .iter()
        .zip(&nodes)
        .map(|(sets, n)| n.labels > apex_labels && sets.iter().any(|s| s.rtype == RecordType::NS))
        .collect();
    let keys: HashMap<u32, Box<[u8]>> = index.iter().map(|(k, &v)| (v, k.clone())).collect();
    for i in 0..nodes.len() {
        let mut k = &keys[&(i as u32)][..];
        let mut labels = nodes[i].labels;
        let mut cut = None;
        while labels > apex_labels {
            let j = index[k];
            if is_cut[j as usize] {
                cut = Some(j); // keep walking up: the topmost cut wins
            }
            k = &k[1 + k[0] as usize..];
            labels -= 1;
        }
        nodes[i].cut = cut;
    }

    let has_address = |idx: u32, pending: &[Vec<PendingSet>]| {
        pending[idx as usize]
            .iter()
            .any(|s| matches!(u16::from(s.rtype), TYPE_A | TYPE_AAAA))
    };
    let mut built: Vec<Box<[RrSet]>> = Vec::with_capacity(nodes.len());
    for sets in &pending {
        let mut out = Vec::with_capacity(sets.len());
        for s in sets {
            let rtype = u16::from(s.rtype);
            let mut bytes = Vec::new();
            let mut additional = Vec::new();
            for rd in &s.rdatas {
                encode_record(
                    &mut bytes,
                    rtype,
                    s.ttl,
                    &rdata_wire(rd).expect("checked when read"),
                );
                if let Some(t) = target_of(rd)
                    && let Some(&idx) = index.get(&lower_wire(t)[..])
                    && has_address(idx, &pending)
                    && !additional.contains(&idx)
                {
                    additional.push(idx);
                }
            }
            let target = match s.rdatas.first() {
                Some(RData::CNAME(c)) => Some(lower_wire(&c.0)),
                _ => None,
            };
            out.push(RrSet::new(
                rtype,
                s.rdatas.len() as u16,
                bytes.into_boxed_slice(),
                additional.into_boxed_slice(),
                target,
            ));
        }
        built.push(out.into_boxed_slice());
    }
    for (node, sets) in nodes.iter_mut().zip(built) {
        node.rrsets = sets;
    }

    let negative_ttl = soa_ttl.min(soa_rdata.minimum);
    let mut neg = Vec::new();
    encode_record(
        &mut neg,
        TYPE_SOA,
        negative_ttl,
        &rdata_wire(&RData::SOA(soa_rdata.clone())).expect("checked when read"),
    );
    let nx_ready = nodes
        .iter()
        .all(|n| n.cut.is_none() && !n.name.starts_with(b"\x01*"));
    Ok(Zone {
        origin: origin.to_string(),
        data: std::sync::Arc::new(super::ZoneData {
            apex,
            apex_labels,
            nodes,
            index: NameIndex::new(index.iter().map(|(k, &v)| (&k[..], v))),
            negative_soa: RrSet::new(TYPE_SOA, 1, neg.into(), Box::new([]), None),
            nx_ready,
        }),
        serial: soa_rdata.serial,
        record_count: records.len(),
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
    let mut index: Index = zone.index.iter().map(|(k, v)| (k.into(), v)).collect();
    let first_new = zone.nodes.len();
    for (lower, written) in names {
        let (mut k, mut w) = (&lower[..], &written[..]);
        let mut dynamic = true;
        loop {
            if let Some(&idx) = index.get(k) {
                zone.nodes[idx as usize].dynamic |= dynamic;
                break;
            }
            let labels = wire_labels(w);
            index.insert(k.into(), zone.nodes.len() as u32);
            zone.nodes.push(Node {
                name: w.into(),
                labels,
                rrsets: Box::new([]),
                cut: None,
                dynamic,
            });
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
        let lower = zone.nodes[i].name.to_ascii_lowercase();
        let mut k = &lower[..];
        let mut cut = None;
        while wire_labels(k) > zone.apex_labels {
            let j = index[k];
            let n = &zone.nodes[j as usize];
            if n.rrset(crate::wire::TYPE_NS).is_some() {
                cut = Some(j);
            }
            k = &k[1 + k[0] as usize..];
        }
        zone.nodes[i].cut = cut;
    }
    zone.index = NameIndex::new(index.iter().map(|(k, &v)| (&k[..], v)));
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
