//! Static zones: the authoritative data read from RFC 1035 master files.
//!
//! A [`Zone`] is built once per load (see [`mod@file`] for the master-file reader and [`build`] for
//! the checks and the wire-form preparation) and is immutable afterwards (a new serial copies it).
//! Every RRset is kept ready in wire form in one arena per zone, with no heap object per name
//! or record; the owner is written by the answer engine as a compression pointer wherever it
//! can be. Lookups take a lowercase wire name and touch only a hash index keyed by lowercase wire
//! names; they do not allocate.
//!
//! This module knows nothing about sockets or health: it only answers "what does the zone hold
//! for this name".
//!
//! Layer 1 of ARCHITECTURE.md: uses only modules of lower layers.

pub mod build;
pub mod file;
pub mod index;
pub mod sections;
pub mod text;
pub mod transfer;

use std::sync::Arc;

use crate::wire::{NameBuf, TYPE_ANY, TYPE_DS};

pub use build::{ZoneError, load_zone};
pub use index::NameIndex;

/// One authoritative zone: its data (shared, copied only when changed: a reload that finds the
/// zone's files unchanged keeps it, and a new serial copies it once) and what the configuration
/// and the publisher say about it. Cheap to clone.
#[derive(Clone)]
pub struct Zone {
    /// The origin as configured, for display.
    pub origin: String,
    data: Arc<ZoneData>,
    /// SOA serial, for status and logs.
    pub serial: u32,
    /// Number of records held: a record written twice (the same owner, type and data) counts once.
    pub record_count: usize,
    /// Position in the catalog (metrics label index).
    pub id: u16,
    /// Source prefixes that may transfer the zone (AXFR over TCP); `None`: no transfers. Set
    /// from the configuration when the snapshot is assembled.
    pub transfer: Option<Box<[ipnet::IpNet]>>,
    /// TSIG keys (positions in the snapshot's key ring) that sign a transfer from any source;
    /// set with `transfer`.
    pub transfer_keys: Box<[usize]>,
    /// What outgoing transfers send beyond the static data, and the zone's recent changes (see
    /// [`transfer`]); empty for a zone as loaded.
    pub replica: transfer::Replica,
    /// The files it was read from and their state then (`build::Stamp`), so a reload can tell
    /// whether it changed; empty for a zone not read from files.
    pub sources: Box<[(std::path::PathBuf, build::Stamp)]>,
}

/// A zone's records and their indexes, immutable once built and shared between versions.
///
/// No heap object per name or record: nodes and RRsets are fixed-size entries of two vectors,
/// and every byte they point at (names as written, records, CNAME targets) lives in one arena,
/// `bytes`; the additional-section lists in another, `extra`. [`Node`] and [`RrSet`] are views
/// into them.
#[derive(Clone)]
pub struct ZoneData {
    /// Lowercase wire form of the apex.
    apex: Box<[u8]>,
    apex_labels: usize,
    nodes: Vec<NodeEntry>,
    sets: Vec<SetEntry>,
    bytes: Vec<u8>,
    extra: Vec<u32>,
    /// Lowercase owner name → position in `nodes`.
    index: NameIndex<u32>,
    /// The SOA as sent in negative answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    negative_soa: RrSetBuf,
    /// Every name of the zone that is not a node is answered NXDOMAIN with the negative SOA:
    /// no wildcards and no delegations (worked out when the zone is built; used only by a
    /// catalog that prepares responses).
    nx_ready: bool,
    /// Nodes whose answers are more than one RRset's own bytes (a CNAME, or an RRset with
    /// additional records): the catalog writes theirs ahead of time.
    complex: Vec<u32>,
}

/// Marks "no cut" and "no CNAME target".
const NONE: u32 = u32::MAX;

/// One owner name: where its name and RRsets are.
#[derive(Clone, Copy)]
struct NodeEntry {
    name_at: u32,
    sets_at: u32,
    cut: u32,
    sets_len: u16,
    name_len: u8,
    labels: u8,
    dynamic: bool,
}

/// One RRset: where its records (in the form of [`RrSet::at_qname`]), additional-section list
/// and CNAME target are.
#[derive(Clone, Copy)]
struct SetEntry {
    at: u32,
    len: u32,
    extra_at: u32,
    target_at: u32,
    rtype: u16,
    count: u16,
    last_rdlen: u16,
    extra_len: u16,
    target_len: u8,
}

impl Zone {
    /// Whether `other` holds the very same data (kept across a reload, not read again).
    pub fn shares_data_with(&self, other: &Zone) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// The zone's data to change: copied first if another version shares it.
    pub(crate) fn data_mut(&mut self) -> &mut ZoneData {
        Arc::make_mut(&mut self.data)
    }
}

impl ZoneData {
    /// Bytes the zone's records and index hold on the heap (allocator overhead aside).
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<NodeEntry>()
            + self.sets.capacity() * std::mem::size_of::<SetEntry>()
            + self.bytes.capacity()
            + self.extra.capacity() * 4
            + self.index.memory_bytes()
            + self.apex.len()
    }

    fn node_view(&self, n: &NodeEntry) -> Node<'_> {
        Node {
            name: &self.bytes[n.name_at as usize..n.name_at as usize + n.name_len as usize],
            labels: n.labels as usize,
            rrsets: RrSets {
                data: self,
                sets: &self.sets[n.sets_at as usize..n.sets_at as usize + n.sets_len as usize],
            },
            cut: (n.cut != NONE).then_some(n.cut),
            dynamic: n.dynamic,
        }
    }

    #[inline]
    fn set_view(&self, s: &SetEntry) -> RrSet<'_> {
        RrSet {
            rtype: s.rtype,
            count: s.count,
            at_qname: &self.bytes[s.at as usize..s.at as usize + s.len as usize],
            additional: &self.extra
                [s.extra_at as usize..s.extra_at as usize + s.extra_len as usize],
            target: (s.target_at != NONE).then(|| {
                &self.bytes[s.target_at as usize..s.target_at as usize + s.target_len as usize]
            }),
            last_rdlen: s.last_rdlen,
        }
    }
}

impl std::ops::Deref for Zone {
    type Target = ZoneData;

    #[inline(always)]
    fn deref(&self) -> &ZoneData {
        &self.data
    }
}

/// One owner name in a zone (a view into its data); empty non-terminals are nodes with no
/// RRsets.
#[derive(Clone, Copy)]
pub struct Node<'z> {
    /// Owner name in wire form, in the case the zone file wrote it.
    pub name: &'z [u8],
    /// Labels below the root.
    pub labels: usize,
    /// RRsets sorted by type.
    pub rrsets: RrSets<'z>,
    /// The topmost zone cut (delegation) at or above this node, excluding the apex.
    pub cut: Option<u32>,
    /// A service's name: its answers come from the policy engine, never from static data, and
    /// nothing is prepared for it (see [`build::add_dynamic`]).
    pub dynamic: bool,
}

/// A node's RRsets, in type order.
#[derive(Clone, Copy)]
pub struct RrSets<'z> {
    data: &'z ZoneData,
    sets: &'z [SetEntry],
}

impl<'z> RrSets<'z> {
    pub fn iter(&self) -> impl Iterator<Item = RrSet<'z>> + 'z {
        let data = self.data;
        self.sets.iter().map(move |s| data.set_view(s))
    }

    pub fn get(&self, i: usize) -> Option<RrSet<'z>> {
        self.sets.get(i).map(|s| self.data.set_view(s))
    }

    pub fn first(&self) -> Option<RrSet<'z>> {
        self.get(0)
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// All records of one type at one owner, in wire form without owner names (a view into a zone's
/// data, or into an [`RrSetBuf`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RrSet<'z> {
    pub rtype: u16,
    /// Number of records.
    pub count: u16,
    /// The `count` records, each a compression pointer to offset 12 (the question's name), then
    /// TYPE, CLASS, TTL, RDLENGTH, RDATA: the whole RRset in one copy when its owner is the
    /// name asked. Names inside RDATA are uncompressed, so the bytes can be copied into any
    /// message.
    pub at_qname: &'z [u8],
    /// Nodes holding addresses for the names this RRset points at (NS, MX, SRV targets in zone).
    pub additional: &'z [u32],
    /// For a CNAME: the target in lowercase wire form.
    pub target: Option<&'z [u8]>,
    /// Length of the last record's RDATA (to find where it starts after a copy).
    pub last_rdlen: u16,
}

/// The pointer to the question's name, which always starts at offset 12.
pub const QNAME_POINTER: [u8; 2] = [0xC0, 0x0C];

impl<'z> RrSet<'z> {
    /// Iterate over the records' byte ranges (each TYPE, CLASS, TTL, RDLENGTH, RDATA; without
    /// owner).
    pub fn each_record(&self) -> impl Iterator<Item = &'z [u8]> + 'z {
        let bytes = self.at_qname;
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= bytes.len() {
                return None;
            }
            let rdlen = u16::from_be_bytes([bytes[pos + 10], bytes[pos + 11]]) as usize;
            let rec = &bytes[pos + 2..pos + 12 + rdlen];
            pos += 12 + rdlen;
            Some(rec)
        })
    }

    /// Bytes of the records without owner names.
    pub fn records_len(&self) -> usize {
        self.at_qname.len() - 2 * self.count as usize
    }
}

/// An RRset of its own (not in a zone's data): a negative SOA, a service's snapshot records.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RrSetBuf {
    pub rtype: u16,
    pub count: u16,
    at_qname: Box<[u8]>,
    target: Option<Box<[u8]>>,
    last_rdlen: u16,
}

impl RrSetBuf {
    /// An RRset from its owner-less records (each TYPE, CLASS, TTL, RDLENGTH, RDATA).
    pub fn new(rtype: u16, count: u16, records: &[u8], target: Option<Box<[u8]>>) -> RrSetBuf {
        let mut at_qname = Vec::with_capacity(records.len() + 2 * count as usize);
        let last_rdlen = append_at_qname(&mut at_qname, records);
        RrSetBuf {
            rtype,
            count,
            at_qname: at_qname.into_boxed_slice(),
            target,
            last_rdlen,
        }
    }

    pub fn view(&self) -> RrSet<'_> {
        RrSet {
            rtype: self.rtype,
            count: self.count,
            at_qname: &self.at_qname,
            additional: &[],
            target: self.target.as_deref(),
            last_rdlen: self.last_rdlen,
        }
    }

    /// The records' bytes in [`RrSet::at_qname`] form, to patch in place.
    pub(crate) fn at_qname_mut(&mut self) -> &mut [u8] {
        &mut self.at_qname
    }
}

/// Append owner-less `records` to `out`, each preceded by [`QNAME_POINTER`]; returns the last
/// record's RDATA length.
pub(crate) fn append_at_qname(out: &mut Vec<u8>, records: &[u8]) -> u16 {
    let (mut pos, mut last) = (0, 0);
    while pos < records.len() {
        let rdlen = u16::from_be_bytes([records[pos + 8], records[pos + 9]]) as usize;
        out.extend_from_slice(&QNAME_POINTER);
        out.extend_from_slice(&records[pos..pos + 10 + rdlen]);
        last = rdlen;
        pos += 10 + rdlen;
    }
    last as u16
}

/// What a zone holds for a name.
pub enum Lookup<'z> {
    /// The name exists, or a wildcard matched it (`wildcard` set; the owner is then the qname).
    Found { node: Node<'z>, wildcard: bool },
    /// The name is at or below a delegation: refer to the child zone's servers.
    Referral { cut: Node<'z> },
    /// No such name.
    NxDomain,
}

impl<'z> Node<'z> {
    #[inline]
    pub fn rrset(&self, rtype: u16) -> Option<RrSet<'z>> {
        let data = self.rrsets.data;
        self.rrsets
            .sets
            .iter()
            .find(|s| s.rtype == rtype)
            .map(|s| data.set_view(s))
    }
}

impl ZoneData {
    /// Lowercase wire form of the apex.
    pub fn apex(&self) -> &[u8] {
        &self.apex
    }

    pub fn apex_labels(&self) -> usize {
        self.apex_labels
    }

    pub fn negative_soa(&self) -> RrSet<'_> {
        self.negative_soa.view()
    }

    #[inline]
    pub fn node(&self, idx: u32) -> Node<'_> {
        self.node_view(&self.nodes[idx as usize])
    }

    /// Every node, in order (see [`Zone::node`]).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = Node<'_>> + '_ {
        self.nodes.iter().map(|n| self.node_view(n))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn find(&self, wire: &[u8]) -> Option<u32> {
        self.index.get(wire)
    }

    /// Lowercase owner names and their node positions.
    pub fn names(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        self.index.iter()
    }

    /// Whether a lowercase wire name lies at or below this zone's apex.
    pub fn contains(&self, wire: &[u8]) -> bool {
        wire.len() >= self.apex.len() && wire.ends_with(&self.apex) && {
            // The suffix must start at a label boundary.
            let mut pos = 0;
            let start = wire.len() - self.apex.len();
            while pos < start {
                pos += 1 + wire[pos] as usize;
            }
            pos == start
        }
    }

    /// Look `name` up; it must lie within the zone (the caller picked the zone by suffix).
    pub fn lookup(&self, name: &NameBuf, qtype: u16) -> Lookup<'_> {
        match self.index.get_name(name) {
            Some(idx) => self.lookup_at(name, qtype, 0, idx),
            None => self.lookup_absent(name, qtype),
        }
    }

    /// [`Zone::lookup`] for a name known not to be a node of the zone: its closest encloser,
    /// then the wildcard there.
    pub fn lookup_absent(&self, name: &NameBuf, qtype: u16) -> Lookup<'_> {
        let below_apex = name.label_count() - self.apex_labels;
        // Closest encloser: the deepest existing node that is one of the name's ancestors.
        for skip in 1..=below_apex {
            if let Some(idx) = self.find(name.suffix(skip)) {
                return self.lookup_at(name, qtype, skip, idx);
            }
        }
        Lookup::NxDomain // unreachable for a loaded zone: the apex always exists
    }

    /// The answer for `name` given its closest encloser: node `idx`, `skip` labels up.
    #[inline]
    pub fn lookup_at(&self, name: &NameBuf, qtype: u16, skip: usize, idx: u32) -> Lookup<'_> {
        let node = self.node(idx);
        if let Some(cut) = node.cut {
            let cut = self.node(cut);
            // DS lives in the parent: a DS query for the cut itself is answered here (RFC 4035).
            let ds_at_cut = qtype == TYPE_DS && skip == 0 && cut.labels == name.label_count();
            if !ds_at_cut {
                return Lookup::Referral { cut };
            }
        }
        if skip == 0 {
            return Lookup::Found {
                node,
                wildcard: false,
            };
        }
        // RFC 4592: the source of synthesis is `*.` + the closest encloser.
        let encloser = name.suffix(skip);
        let mut wild = [0u8; 2 + crate::wire::MAX_NAME];
        if encloser.len() + 2 <= crate::wire::MAX_NAME {
            wild[..2].copy_from_slice(b"\x01*");
            wild[2..2 + encloser.len()].copy_from_slice(encloser);
            if let Some(idx) = self.index.get(&wild[..2 + encloser.len()]) {
                return Lookup::Found {
                    node: self.node(idx),
                    wildcard: true,
                };
            }
        }
        Lookup::NxDomain
    }
}

/// Up to this many zones, [`Catalog::find`] scans instead of hashing.
const LINEAR_ZONES: usize = 8;

/// Where a name that exists lives: its zone (the most specific one served) and node.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Place {
    pub zone: u32,
    pub node: u32,
}

impl Place {
    /// A place naming a node.
    pub fn for_node(zone: u32, node: u32) -> Place {
        Place { zone, node }
    }
}

/// What [`Catalog::resolve`] learnt about a name in the zone it picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// The name is this node of the zone.
    At(Place),
    /// The name is not a node of the zone.
    Absent,
    /// Not known (the zone was picked another way).
    Unknown,
}

impl Presence {
    /// The name's place, when it is a node.
    pub fn place(self) -> Option<Place> {
        match self {
            Presence::At(p) => Some(p),
            _ => None,
        }
    }
}

/// The counts and flags of answer, authority and additional sections that the answer engine
/// wrote, or would write, for a question of exactly one name and type (see
/// [`sections::prepare`]): answering it is one copy of its bytes. Compression pointers in them
/// assume the question starts at offset 12 and has the name's length, which every question for
/// that name does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The type it answers.
    pub qtype: u16,
    pub an: u16,
    pub ns: u16,
    pub ar: u16,
    pub aa: bool,
    pub rcode: u16,
    /// The sections' bytes in the zone's prepared arena (unused for an RRset's own bytes).
    pub(crate) at: u32,
    pub(crate) len: u16,
}

/// What [`Catalog::prepared_for`] found ready for a question.
pub enum Ready<'a> {
    /// A prepared response: the answering zone's catalog position, counts and flags, and the
    /// sections' bytes.
    Prepared(u16, Prepared, &'a [u8]),
    /// NXDOMAIN (`rcode` 3) or NODATA (0) from this zone: the authority section is one record,
    /// its negative SOA (owned by the apex, a pointer into the question).
    Negative(&'a Zone, u16),
}

/// What [`Catalog::prepared_for`] learnt on its way when nothing was ready for a question: the
/// general path takes it instead of finding the zone and probing its index a second time.
#[derive(Clone, Copy)]
pub enum Found<'a> {
    /// Not looked up (a DS question, or a catalog that prepares nothing).
    NotLooked,
    /// No served zone contains the name.
    NotServed,
    /// The zone that answers, and whether the name is one of its nodes: what
    /// [`Catalog::resolve`] gives for the same question.
    In(&'a Zone, Presence),
}

/// Prepared responses of one zone stop being added past this many bytes; names beyond take the
/// general path.
pub const PREPARED_BYTES_MAX: usize = 64 << 20;

/// The responses written ahead of time for one zone's data: only those that are more than one
/// RRset's own bytes (an answer with additional records, a CNAME followed within the zone).
/// Everything else is answered from the zone's data as it is.
#[derive(Default)]
struct ZonePrepared {
    /// The data it was written from (the same `Arc` is the same data).
    data: Option<Arc<ZoneData>>,
    /// `(node, type)` → position in `entries`.
    keys: std::collections::HashMap<(u32, u16), u32, foldhash::fast::FixedState>,
    entries: Vec<Prepared>,
    arena: Vec<u8>,
}

impl ZonePrepared {
    fn build(zone: &Zone, limit: usize) -> ZonePrepared {
        let mut out = ZonePrepared {
            data: Some(zone.data.clone()),
            ..ZonePrepared::default()
        };
        let mut name = NameBuf::default();
        let mut scratch = vec![0u8; crate::wire::MAX_MESSAGE];
        for &node in &zone.complex {
            if out.arena.len() >= limit {
                break;
            }
            let lower = zone.node(node).name.to_ascii_lowercase();
            name.set_wire(&lower);
            sections::prepare(zone, &name, node, &mut scratch, |p, body| {
                out.keys.insert((node, p.qtype), out.entries.len() as u32);
                out.entries.push(Prepared {
                    at: out.arena.len() as u32,
                    len: body.len() as u16,
                    ..p
                });
                out.arena.extend_from_slice(body);
            });
        }
        out
    }

    fn get(&self, node: u32, qtype: u16) -> Option<(Prepared, &[u8])> {
        if self.entries.is_empty() {
            return None;
        }
        let p = self.entries[*self.keys.get(&(node, qtype))? as usize];
        Some((
            p,
            &self.arena[p.at as usize..p.at as usize + p.len as usize],
        ))
    }

    fn bytes(&self) -> usize {
        self.arena.len() + self.entries.len() * std::mem::size_of::<Prepared>()
    }
}

/// All zones one server answers for, found by longest suffix match.
/// Zones share their data ([`Zone`] is cheap to clone), so a catalog with one zone replaced (a
/// zone's new serial, a secondary's new version) reuses the others' data and their prepared
/// responses; nothing in the catalog grows with the number of names.
#[derive(Default)]
pub struct Catalog {
    zones: Vec<Zone>,
    /// The bound on each zone's prepared responses it was built with (0: none prepared and
    /// nothing answered ahead of the general path).
    prepared_limit: usize,
    /// Apex → zone position.
    index: NameIndex<u32>,
    /// Per zone, in zone order.
    prepared: Vec<Arc<ZonePrepared>>,
}

impl Catalog {
    pub fn new(zones: Vec<Zone>) -> Self {
        Self::build(zones, PREPARED_BYTES_MAX)
    }

    /// A catalog whose zones' prepared responses hold at most `prepared_bytes` bytes each (0:
    /// none, and every query takes the general path, for tests that compare the two).
    pub fn build(mut zones: Vec<Zone>, prepared_bytes: usize) -> Self {
        for (i, z) in zones.iter_mut().enumerate() {
            z.id = i as u16;
        }
        Self::of_shared(zones, prepared_bytes, None)
    }

    /// This catalog with each of `replaced` in place of the zone of the same apex (appended when
    /// there is none): the other zones are shared, not copied.
    pub fn replacing(&self, replaced: Vec<Zone>) -> Catalog {
        let mut zones = self.zones.clone();
        for mut zone in replaced {
            match zones.iter().position(|z| z.apex == zone.apex) {
                Some(i) => {
                    zone.id = i as u16;
                    zones[i] = zone;
                }
                None => {
                    zone.id = zones.len() as u16;
                    zones.push(zone);
                }
            }
        }
        Self::of_shared(zones, self.prepared_limit, Some(self))
    }

    /// This catalog without the zone whose apex is `apex` (positions renumbered).
    pub fn without(&self, apex: &[u8]) -> Catalog {
        let zones = self
            .zones
            .iter()
            .filter(|z| &z.apex[..] != apex)
            .enumerate()
            .map(|(i, z)| {
                let mut moved = z.clone();
                moved.id = i as u16;
                moved
            })
            .collect();
        Self::of_shared(zones, self.prepared_limit, Some(self))
    }

    /// [`Catalog::build`], sharing the prepared responses of `old`'s zones whose data is the
    /// same (kept across a reload).
    pub fn build_after(mut zones: Vec<Zone>, prepared_bytes: usize, old: Option<&Catalog>) -> Self {
        for (i, z) in zones.iter_mut().enumerate() {
            z.id = i as u16;
        }
        Self::of_shared(zones, prepared_bytes, old)
    }

    /// The zone whose apex is `apex` (lowercase wire form).
    pub fn zone_at_apex(&self, apex: &[u8]) -> Option<&Zone> {
        self.index.get(apex).map(|i| &self.zones[i as usize])
    }

    /// The catalog of `zones`, whose `id`s are their positions; prepared responses of zones
    /// whose data `old` already prepared are shared with it.
    fn of_shared(zones: Vec<Zone>, prepared_bytes: usize, old: Option<&Catalog>) -> Self {
        debug_assert!(zones.iter().enumerate().all(|(i, z)| z.id as usize == i));
        let index = NameIndex::new(
            zones
                .iter()
                .enumerate()
                .map(|(i, z)| (&z.apex[..], i as u32)),
        );
        let prepared = zones
            .iter()
            .map(|z| {
                if prepared_bytes == 0 {
                    return Arc::new(ZonePrepared::default());
                }
                old.filter(|o| o.prepared_limit == prepared_bytes)
                    .and_then(|o| {
                        o.prepared
                            .iter()
                            .find(|p| p.data.as_ref().is_some_and(|d| Arc::ptr_eq(d, &z.data)))
                    })
                    .cloned()
                    .unwrap_or_else(|| Arc::new(ZonePrepared::build(z, prepared_bytes)))
            })
            .collect();
        Catalog {
            zones,
            prepared_limit: prepared_bytes,
            index,
            prepared,
        }
    }

    /// Whether the catalog answers questions ahead of the general path (see
    /// [`Catalog::prepared_for`]); false only for a catalog built with a budget of 0.
    pub fn prepares(&self) -> bool {
        self.prepared_limit > 0
    }

    /// The prepared response to `qtype` at `place`, with its sections' bytes: an RRset's own
    /// bytes when the answer is that RRset alone, or a response written ahead of time. `None`
    /// for everything else (negative answers among them) and for a catalog that prepares nothing.
    #[inline]
    pub fn prepared(&self, place: &Place, qtype: u16) -> Option<(Prepared, &[u8])> {
        if self.prepared_limit == 0 || qtype == TYPE_ANY {
            return None;
        }
        let zone = &self.zones[place.zone as usize];
        let entry = &zone.nodes[place.node as usize];
        if entry.cut != NONE || entry.dynamic {
            return None;
        }
        self.prepared_at(zone, entry, place.node, qtype)
    }

    /// [`Catalog::prepared`] for node `node` of `zone` (`entry`), neither a cut nor dynamic.
    #[inline(always)]
    fn prepared_at<'c>(
        &'c self,
        zone: &'c Zone,
        entry: &NodeEntry,
        node: u32,
        qtype: u16,
    ) -> Option<(Prepared, &'c [u8])> {
        match zone.node_view(entry).rrset(qtype) {
            Some(set) if set.additional.is_empty() => Some((
                Prepared {
                    qtype,
                    an: set.count,
                    aa: true,
                    ..Prepared::default()
                },
                set.at_qname,
            )),
            _ => self.prepared[zone.id as usize].get(node, qtype),
        }
    }

    /// The prepared response to a question of exactly `name` and `qtype`, with the answering
    /// zone's catalog position: the zone by suffix, one probe of its name index, then the
    /// node's RRset or its prepared entry. `Err` sends the question down the general path (also
    /// for DS, which at an apex may be the parent zone's to answer), with what was found.
    #[inline(always)]
    pub fn prepared_for(&self, name: &NameBuf, qtype: u16) -> Result<Ready<'_>, Found<'_>> {
        if qtype == TYPE_DS || self.prepared_limit == 0 {
            return Err(Found::NotLooked);
        }
        let Some(zone) = self.find(name) else {
            return Err(Found::NotServed);
        };
        match zone.index.get_name(name) {
            Some(node) => {
                let place = Place::for_node(zone.id as u32, node);
                let entry = &zone.nodes[node as usize];
                let general = Err(Found::In(zone, Presence::At(place)));
                // A service's name, a cut, ANY: never prepared.
                if qtype == TYPE_ANY || entry.cut != NONE || entry.dynamic {
                    return general;
                }
                if let Some((p, body)) = self.prepared_at(zone, entry, node, qtype) {
                    return Ok(Ready::Prepared(zone.id, p, body));
                }
                // No RRset of that type and nothing to follow: NODATA.
                let n = zone.node_view(entry);
                let nodata = n.rrset(qtype).is_none() && n.rrset(crate::wire::TYPE_CNAME).is_none();
                match nodata {
                    true => Ok(Ready::Negative(zone, 0)),
                    false => general,
                }
            }
            // Not a node: in a zone without wildcards or delegations, that is NXDOMAIN.
            None => match zone.nx_ready {
                true => Ok(Ready::Negative(zone, crate::wire::Rcode::NxDomain as u16)),
                false => Err(Found::In(zone, Presence::Absent)),
            },
        }
    }

    /// Bytes held by responses written ahead of time (beyond the zones' own data).
    pub fn prepared_bytes(&self) -> usize {
        self.prepared.iter().map(|p| p.bytes()).sum()
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The zone that answers `qtype` for `name`: the most specific one containing it, except
    /// that DS at a served zone's apex belongs to the parent side when the parent is served too
    /// (RFC 4035 §3.1.4.1).
    pub fn find_for(&self, name: &NameBuf, qtype: u16) -> Option<&Zone> {
        self.zone_for(name, qtype)
    }

    /// [`Catalog::find_for`], and whether the name is a node of that zone (one probe of its
    /// name index).
    #[inline]
    pub fn resolve(&self, name: &NameBuf, qtype: u16) -> Option<(&Zone, Presence)> {
        let zone = self.zone_for(name, qtype)?;
        let presence = match zone.index.get_name(name) {
            Some(node) => Presence::At(Place::for_node(zone.id as u32, node)),
            None => Presence::Absent,
        };
        Some((zone, presence))
    }

    #[inline]
    fn zone_for(&self, name: &NameBuf, qtype: u16) -> Option<&Zone> {
        let zone = self.find(name)?;
        if qtype == TYPE_DS && zone.apex_labels == name.label_count() && name.label_count() > 0 {
            let mut parent = NameBuf::default();
            parent.set_wire(name.suffix(1));
            return self.find(&parent).or(Some(zone));
        }
        Some(zone)
    }

    /// The most specific zone that contains `name`.
    #[inline(always)]
    pub fn find(&self, name: &NameBuf) -> Option<&Zone> {
        if self.zones.len() <= LINEAR_ZONES {
            // Few zones: for each, is the name's suffix of as many labels as its apex that apex?
            // The longest apex that is wins. Cheaper than hashing every suffix.
            let wire = name.wire();
            let labels = name.label_count();
            let mut best: Option<&Zone> = None;
            for z in &self.zones {
                if z.apex_labels > labels || best.is_some_and(|b| b.apex_labels >= z.apex_labels) {
                    continue;
                }
                let off = name.suffix_offset(labels - z.apex_labels);
                if wire.len() - off == z.apex.len() && index::same(&wire[off..], &z.apex) {
                    best = Some(z);
                }
            }
            return best;
        }
        (0..=name.label_count())
            .find_map(|skip| self.index.get(name.suffix(skip)))
            .map(|i| &self.zones[i as usize])
    }
}
