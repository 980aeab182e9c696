//! Outgoing zone transfers: AXFR over TCP (RFC 5936), and IXFR answered in full (RFC 1995), one
//! message at a time.
//!
//! [`request`] decides whether a TCP message is a transfer this server gives: a query (QR=0,
//! opcode QUERY, one question) of class IN and type AXFR or IXFR for the exact apex of a served
//! zone whose `[zone.transfer] allow` holds the client's address, or which is signed (TSIG,
//! RFC 8945) with one of the zone's `[zone.transfer] keys`. Everything else (UDP, other names,
//! other sources, other keys, zones without `[zone.transfer]`) is left to
//! [`super::answer::respond`], which answers REFUSED (signed, when the request was), or NOTAUTH
//! with the TSIG error when the request's TSIG does not verify. An IXFR is answered without increments:
//! the whole zone as for AXFR (RFC 1995 §4), or the SOA alone when the client's serial is not
//! older than the zone's.
//!
//! A [`Transfer`] then writes the zone as a sequence of messages into a caller-owned buffer, one
//! per call: the apex SOA first, every RRset of the zone's static data (every owner and type,
//! glue and delegations included) in between, the SOA again last (RFC 5936 §2.2). Each message
//! carries the query's ID, QR=1, AA=1, the question, NOERROR, and the OPT record when the query
//! had one; it stays within [`MESSAGE_BUDGET`] bytes: RRsets are packed whole, and only an
//! RRset too large for one message is split between its records (a single record larger than
//! the budget goes alone, up to the 64 KiB message limit). When the request was signed, every
//! message is signed too (RFC 8945 §5.3.1: the first over the request's MAC, each later one
//! over the previous message's), within the same budget. The records are the zone's own
//! wire-form RRsets, copied after an uncompressed owner name. Names of services (dynamic nodes,
//! answered by the policy engine) hold no static data and are not transferred.
//!
//! No I/O: the caller (`serve::tcp`) writes each message to the socket before asking for the
//! next, so a transfer holds one message in memory, whatever the zone's size.

use crate::snapshot::Snapshot;
use crate::wire::tsig::{Signer, TsigError, verify_request};
use crate::wire::{
    CLASS_IN, MAX_MESSAGE, Query, TYPE_AXFR, TYPE_IXFR, TYPE_OPT, TYPE_SOA, parse_query, skip_name,
};
use crate::zone::transfer::serial_newer;
use crate::zone::{Lookup, Node, RrSet, Zone};

/// Most bytes in one transfer message (unless a single record is larger).
pub const MESSAGE_BUDGET: usize = 16 * 1024;

/// Longest question: a 255-byte name, type and class.
const MAX_QUESTION: usize = 255 + 4;

/// What [`request`] found in a message.
pub enum Request<'s> {
    /// A transfer of a served zone to an allowed source: stream it.
    Serve(Box<Transfer<'s>>),
    /// A transfer of a served zone's apex that this server does not give (no `[zone.transfer]`,
    /// or a source outside `allow` without one of `keys`): answered REFUSED by the usual path,
    /// counted as a transfer.
    Refused(&'s Zone, Kind),
    /// A transfer of a served zone's apex whose TSIG did not verify: answered NOTAUTH (or
    /// FORMERR) with the TSIG error by the usual path, counted.
    BadTsig(&'s Zone, Kind, TsigError),
}

/// The kind of transfer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Axfr,
    /// Answered with the whole zone (RFC 1995 §4), or with the SOA alone when the client's
    /// serial is not older than the zone's.
    Ixfr,
}

impl Kind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Axfr => "axfr",
            Kind::Ixfr => "ixfr",
        }
    }
}

/// Whether `packet`, received over TCP from `client` at `now` (seconds since the Unix epoch, for
/// TSIG), asks for a zone transfer of a served zone; `None` for every other message (answered
/// by [`super::answer::respond`]). `query` is scratch.
pub fn request<'s>(
    snap: &'s Snapshot,
    packet: &[u8],
    client: std::net::IpAddr,
    now: u64,
    query: &mut Query,
) -> Option<Request<'s>> {
    // Cheap test first: most TCP queries are not transfers.
    if !looks_like_xfr(packet) || parse_query(packet, query).is_err() {
        return None;
    }
    let kind = match query.qtype {
        TYPE_AXFR => Kind::Axfr,
        TYPE_IXFR => Kind::Ixfr,
        _ => return None,
    };
    if query.qclass != CLASS_IN || query.opcode() != 0 {
        return None;
    }
    let zone = snap.catalog.find(&query.qname)?;
    if zone.apex_labels() != query.qname.label_count() {
        return None;
    }
    let client = client.to_canonical();
    let signed = match verify_request(packet, &snap.tsig_keys, now) {
        Ok(s) => s,
        Err(rejected) => return Some(Request::BadTsig(zone, kind, rejected.error)),
    };
    let by_key = signed.is_some_and(|s| zone.transfer_keys.contains(&s.key));
    let by_source = zone
        .transfer
        .as_ref()
        .is_some_and(|allow| allow.iter().any(|n| n.contains(&client)));
    if !by_key && !by_source {
        return Some(Request::Refused(zone, kind));
    }
    // A signed request gets every message signed, whichever rule allowed it.
    let signer = match signed {
        Some(s) => Some(Signer::new(snap.tsig_keys.get(s.key)?, &s)),
        None => None,
    };
    let Lookup::Found { node: apex, .. } = zone.lookup(&query.qname, TYPE_SOA) else {
        return Some(Request::Refused(zone, kind)); // a loaded zone always has its apex
    };
    // RFC 1995 §2: an IXFR carries the client's SOA in the authority section; a client as new
    // as the zone (serial arithmetic, RFC 1982) gets the SOA alone, one the journal reaches back
    // to gets the changes since its version, any other the whole zone.
    let client_has = match kind {
        Kind::Ixfr => client_serial(packet, query.question_end),
        Kind::Axfr => None,
    };
    let up_to_date = client_has.is_some_and(|c| !serial_newer(zone.serial, c));
    let deltas = match client_has {
        Some(c) if !up_to_date => zone.replica.journal.since(c).unwrap_or(&[]),
        _ => &[],
    };
    let mut question = [0u8; MAX_QUESTION];
    let q = &packet[12..query.question_end];
    question[..q.len()].copy_from_slice(q);
    Some(Request::Serve(Box::new(Transfer {
        zone,
        apex,
        kind,
        up_to_date,
        deltas,
        id: query.id,
        rd: query.flags & 0x0100,
        question,
        question_len: q.len(),
        opt: query
            .edns
            .map(|e| (snap.edns_udp_payload.max(512), e.dnssec_ok)),
        step: Step::Start,
        signer,
        now,
    })))
}

/// Whether the question's type, found by skipping the name's labels, is AXFR or IXFR.
fn looks_like_xfr(packet: &[u8]) -> bool {
    let mut pos = 12;
    while let Some(&len) = packet.get(pos) {
        match len {
            0 => {
                let t = packet.get(pos + 1..pos + 3);
                return t == Some(&TYPE_AXFR.to_be_bytes()[..])
                    || t == Some(&TYPE_IXFR.to_be_bytes()[..]);
            }
            1..=63 => pos += 1 + len as usize,
            _ => return false, // a pointer or reserved label type: not a plain question
        }
    }
    false
}

/// The serial of the SOA an IXFR query carries first after its question (the answer section is
/// empty in an IXFR query, so that is the authority section's first record); `None` when there
/// is none.
fn client_serial(packet: &[u8], question_end: usize) -> Option<u32> {
    if packet.get(6..10)? == [0, 0, 0, 0] {
        return None; // no answer or authority records
    }
    let p = skip_name(packet, question_end)?;
    if packet.get(p..p + 2)? != TYPE_SOA.to_be_bytes() {
        return None;
    }
    let rdata = p + 10;
    let serial_at = skip_name(packet, skip_name(packet, rdata)?)?;
    let b = packet.get(serial_at..serial_at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where a transfer is: the next thing to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The opening SOA.
    Start,
    /// Record `record` of RRset `rrset` of node `node`.
    At {
        node: usize,
        rrset: usize,
        record: u16,
    },
    /// Record `record` of the zone's snapshot record set `set` (services, `gslb = "snapshot"`).
    Extra { set: usize, record: u16 },
    /// Part of delta `delta` of an incremental transfer, from byte `at` of that part.
    Delta { delta: usize, part: Part, at: usize },
    /// The closing SOA.
    End,
    /// Everything is written.
    Done,
}

/// The four parts of one version's changes in an incremental transfer (RFC 1995 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    OldSoa,
    Removed,
    NewSoa,
    Added,
}

/// What writing one RRset (or what is left of it) did.
enum Wrote {
    /// All of it.
    All,
    /// Records up to (not including) this one; the message is full.
    Upto(u16),
}

/// One AXFR in progress: call [`Transfer::next_message`] until it returns `None`.
pub struct Transfer<'z> {
    zone: &'z Zone,
    /// The apex node, which holds the SOA.
    apex: Node<'z>,
    kind: Kind,
    /// An IXFR from a client as new as the zone: the SOA alone.
    up_to_date: bool,
    /// An IXFR the journal can answer: the versions since the client's, oldest first (empty:
    /// the whole zone).
    deltas: &'z [std::sync::Arc<crate::zone::transfer::Delta>],
    id: u16,
    /// The query's RD bit, copied into every message.
    rd: u16,
    question: [u8; MAX_QUESTION],
    question_len: usize,
    /// The OPT record's payload size and DO bit, when the query had an OPT.
    opt: Option<(u16, bool)>,
    step: Step,
    /// Signs each message when the request was signed.
    signer: Option<Signer>,
    /// The time messages are signed at (see [`Transfer::set_now`]).
    now: u64,
}

/// The OPT record's size: root name, type, class, TTL, RDLENGTH.
const OPT_LEN: usize = 11;

impl<'z> Transfer<'z> {
    /// The zone being transferred.
    pub fn zone(&self) -> &'z Zone {
        self.zone
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the request was signed (and so is every message).
    pub fn signed(&self) -> bool {
        self.signer.is_some()
    }

    /// Sign the next messages at `now` (seconds since the Unix epoch): a long transfer keeps
    /// its signatures' times current.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Write the next message into `out` (at least [`MAX_MESSAGE`] bytes) and return its length;
    /// `None` once the closing SOA has been written.
    pub fn next_message(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.step == Step::Done {
            return None;
        }
        // The OPT and the TSIG record come after the answers, within the same limits.
        let opt_len = if self.opt.is_some() { OPT_LEN } else { 0 }
            + self.signer.as_ref().map_or(0, Signer::record_len);
        let mut pos = 12;
        out[pos..pos + self.question_len].copy_from_slice(&self.question[..self.question_len]);
        pos += self.question_len;
        let budget = MESSAGE_BUDGET - opt_len;
        let mut an: u16 = 0;
        loop {
            match self.step {
                Step::Start | Step::End => {
                    let soa = self.apex.rrset(TYPE_SOA);
                    let Some(rec) = soa.and_then(|s| s.each_record().next()) else {
                        self.step = Step::Done; // a loaded zone always has its SOA
                        break;
                    };
                    let name = self.apex.name;
                    if an > 0 && pos + name.len() + rec.len() > budget {
                        break;
                    }
                    pos = put_record(out, pos, name, rec);
                    an += 1;
                    self.step = match self.step {
                        Step::Start if self.up_to_date => Step::Done,
                        Step::Start if !self.deltas.is_empty() => Step::Delta {
                            delta: 0,
                            part: Part::OldSoa,
                            at: 0,
                        },
                        Step::Start => self.first_at(0, 0),
                        _ => Step::Done,
                    };
                }
                Step::At {
                    node,
                    rrset,
                    record,
                } => {
                    let n = self.zone.node(node as u32);
                    let set = n.rrsets.get(rrset).expect("a step names an RRset");
                    match put_set(out, &mut pos, &mut an, budget, opt_len, n.name, set, record) {
                        Wrote::All => {
                            self.step = self.next_after(node, rrset);
                            continue;
                        }
                        Wrote::Upto(taken) => {
                            self.step = Step::At {
                                node,
                                rrset,
                                record: taken,
                            };
                            break;
                        }
                    }
                }
                Step::Extra { set, record } => {
                    let extra = &self.zone.replica.extra;
                    let Some((owner, rrset)) = extra.get(set) else {
                        self.step = Step::End;
                        continue;
                    };
                    match put_set(
                        out,
                        &mut pos,
                        &mut an,
                        budget,
                        opt_len,
                        owner,
                        rrset.view(),
                        record,
                    ) {
                        Wrote::All => {
                            self.step = Step::Extra {
                                set: set + 1,
                                record: 0,
                            };
                            continue;
                        }
                        Wrote::Upto(taken) => {
                            self.step = Step::Extra { set, record: taken };
                            break;
                        }
                    }
                }
                Step::Delta { delta, part, at } => {
                    let Some(d) = self.deltas.get(delta) else {
                        self.step = Step::End;
                        continue;
                    };
                    let (bytes, next): (&[u8], Step) = match part {
                        Part::OldSoa | Part::NewSoa => {
                            let rec = if part == Part::OldSoa {
                                &d.old_soa
                            } else {
                                &d.new_soa
                            };
                            let name = self.apex.name;
                            if an > 0 && pos + name.len() + rec.len() > budget {
                                break;
                            }
                            pos = put_record(out, pos, name, rec);
                            an += 1;
                            let following = if part == Part::OldSoa {
                                Part::Removed
                            } else {
                                Part::Added
                            };
                            self.step = Step::Delta {
                                delta,
                                part: following,
                                at: 0,
                            };
                            continue;
                        }
                        Part::Removed => (
                            &d.removed,
                            Step::Delta {
                                delta,
                                part: Part::NewSoa,
                                at: 0,
                            },
                        ),
                        Part::Added => (
                            &d.added,
                            Step::Delta {
                                delta: delta + 1,
                                part: Part::OldSoa,
                                at: 0,
                            },
                        ),
                    };
                    let mut off = at;
                    let mut full = false;
                    for (owner, rec) in crate::zone::transfer::each_owned(&bytes[at..]) {
                        let len = owner.len() + rec.len();
                        if an > 0 && pos + len > budget {
                            full = true;
                            break;
                        }
                        pos = put_record(out, pos, owner, rec);
                        an += 1;
                        off += len;
                    }
                    if full {
                        self.step = Step::Delta {
                            delta,
                            part,
                            at: off,
                        };
                        break;
                    }
                    self.step = next;
                }
                Step::Done => break,
            }
        }
        let mut ar = 0;
        if let Some((payload, dnssec_ok)) = self.opt {
            out[pos] = 0;
            out[pos + 1..pos + 3].copy_from_slice(&TYPE_OPT.to_be_bytes());
            out[pos + 3..pos + 5].copy_from_slice(&payload.to_be_bytes());
            let ttl: u32 = if dnssec_ok { 0x8000 } else { 0 };
            out[pos + 5..pos + 9].copy_from_slice(&ttl.to_be_bytes());
            out[pos + 9..pos + 11].copy_from_slice(&[0, 0]);
            pos += OPT_LEN;
            ar = 1;
        }
        // QR, opcode QUERY, AA, RD copied; NOERROR.
        let flags: u16 = 0x8000 | 0x0400 | self.rd;
        for (at, v) in [self.id, flags, 1, an, 0, ar].into_iter().enumerate() {
            out[2 * at..2 * at + 2].copy_from_slice(&v.to_be_bytes());
        }
        match &mut self.signer {
            // Room was kept: signing fails only for an `out` shorter than documented.
            Some(s) => s.sign(out, pos, self.now),
            None => Some(pos),
        }
    }

    /// The first RRset to transfer at or after RRset `rrset` of node `node`: every RRset of
    /// every node, except the apex SOA (sent first and last) and services' names.
    fn first_at(&self, mut node: usize, mut rrset: usize) -> Step {
        while node < self.zone.node_count() {
            let n = self.zone.node(node as u32);
            if !n.dynamic {
                while let Some(set) = n.rrsets.get(rrset) {
                    if !self.is_apex_soa(&n, &set) {
                        return Step::At {
                            node,
                            rrset,
                            record: 0,
                        };
                    }
                    rrset += 1;
                }
            }
            node += 1;
            rrset = 0;
        }
        Step::Extra { set: 0, record: 0 }
    }

    fn next_after(&self, node: usize, rrset: usize) -> Step {
        self.first_at(node, rrset + 1)
    }

    fn is_apex_soa(&self, n: &Node, set: &RrSet) -> bool {
        set.rtype == TYPE_SOA && n.labels == self.zone.apex_labels()
    }
}

/// Write what is left of `set` (from record `record`) owned by `owner` at `*pos`: whole when it
/// fits in `budget`; if not, nothing when the message already holds records and the set is
/// untouched (it goes whole in the next message), else as many records as fit (at least one,
/// up to the 64 KiB limit when the message is empty: an RRset larger than a message is split).
#[allow(clippy::too_many_arguments)]
fn put_set(
    out: &mut [u8],
    pos: &mut usize,
    an: &mut u16,
    budget: usize,
    opt_len: usize,
    owner: &[u8],
    set: RrSet,
    record: u16,
) -> Wrote {
    let rest = || set.each_record().skip(record as usize);
    let size: usize = rest().map(|r| owner.len() + r.len()).sum();
    if *pos + size <= budget {
        for rec in rest() {
            *pos = put_record(out, *pos, owner, rec);
            *an += 1;
        }
        return Wrote::All;
    }
    if *an > 0 && record == 0 {
        return Wrote::Upto(0); // the whole RRset goes in the next message
    }
    let mut taken = record;
    for rec in rest() {
        let len = owner.len() + rec.len();
        let limit = if *an == 0 {
            MAX_MESSAGE - opt_len
        } else {
            budget
        };
        if *pos + len > limit {
            break;
        }
        *pos = put_record(out, *pos, owner, rec);
        *an += 1;
        taken += 1;
    }
    if *an == 0 {
        taken += 1; // a record no message can hold (never loaded): skip it
    }
    Wrote::Upto(taken)
}

/// Write one record (owner uncompressed, then the zone's wire-form record) at `pos`; the new
/// position.
fn put_record(out: &mut [u8], pos: usize, owner: &[u8], rec: &[u8]) -> usize {
    out[pos..pos + owner.len()].copy_from_slice(owner);
    let pos = pos + owner.len();
    out[pos..pos + rec.len()].copy_from_slice(rec);
    pos + rec.len()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::*;
    use crate::wire::{TYPE_A, TYPE_IXFR};
    use crate::zone::Catalog;

    fn snapshot(zone: &str, allow: Option<&str>) -> Snapshot {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.zone");
        std::fs::write(&path, zone).unwrap();
        let origin = hickory_proto::rr::Name::from_ascii("example.org.").unwrap();
        let mut z = crate::zone::load_zone(&origin, &path).unwrap();
        z.transfer = allow.map(|a| vec![a.parse().unwrap()].into());
        Snapshot {
            catalog: Arc::new(Catalog::new(vec![z])),
            edns_udp_payload: 1232,
            steering: None,
            tables: None,
            nsid: None,
            secondaries: Default::default(),
            tsig_keys: Default::default(),
        }
    }

    fn query(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    const APEX: &[u8] = b"\x07example\x03org\x00";
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// Every message of a transfer: (length, ANCOUNT).
    fn messages(t: &mut Transfer) -> Vec<(usize, u16)> {
        let mut out = vec![0u8; MAX_MESSAGE];
        std::iter::from_fn(|| {
            let n = t.next_message(&mut out)?;
            assert_eq!(&out[..2], &[0xAB, 0xCD]);
            assert_eq!(out[2] & 0x84, 0x84, "QR and AA");
            Some((n, u16::from_be_bytes([out[6], out[7]])))
        })
        .collect()
    }

    #[test]
    fn only_an_allowed_axfr_of_an_apex_is_a_transfer() {
        let zone = "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";
        let snap = snapshot(zone, Some("127.0.0.0/8"));
        let mut q = Query::default();
        let is_serve = |r: Option<Request>| matches!(r, Some(Request::Serve(_)));
        let is_refused = |r: Option<Request>| matches!(r, Some(Request::Refused(..)));
        assert!(is_serve(request(
            &snap,
            &query(APEX, TYPE_AXFR),
            LOCAL,
            0,
            &mut q
        )));
        // The IPv4-mapped form of an allowed address is allowed.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(is_serve(request(
            &snap,
            &query(APEX, TYPE_AXFR),
            mapped,
            0,
            &mut q
        )));
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(is_refused(request(
            &snap,
            &query(APEX, TYPE_AXFR),
            other,
            0,
            &mut q
        )));
        for (name, qtype) in [
            (&b"\x03ns1\x07example\x03org\x00"[..], TYPE_AXFR),
            (b"\x07example\x03net\x00", TYPE_AXFR),
            (APEX, TYPE_A),
        ] {
            assert!(request(&snap, &query(name, qtype), LOCAL, 0, &mut q).is_none());
        }
        assert!(is_serve(request(
            &snap,
            &query(APEX, TYPE_IXFR),
            LOCAL,
            0,
            &mut q
        )));
        let none = snapshot(zone, None);
        assert!(is_refused(request(
            &none,
            &query(APEX, TYPE_AXFR),
            LOCAL,
            0,
            &mut q
        )));
    }

    #[test]
    fn a_small_zone_is_one_message_soa_first_and_last() {
        let zone = "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\nns1 IN A 192.0.2.2\n";
        let snap = snapshot(zone, Some("127.0.0.1/32"));
        let mut q = Query::default();
        let Some(Request::Serve(mut t)) = request(&snap, &query(APEX, TYPE_AXFR), LOCAL, 0, &mut q)
        else {
            panic!("not served");
        };
        // SOA, NS, A, A, SOA.
        assert_eq!(
            messages(&mut t).iter().map(|m| m.1).collect::<Vec<_>>(),
            [5]
        );
        assert_eq!(t.next_message(&mut vec![0u8; MAX_MESSAGE]), None);
    }

    /// An IXFR query for the apex carrying `serial` in its authority section.
    fn ixfr(serial: u32) -> Vec<u8> {
        let mut q = query(APEX, TYPE_IXFR);
        q[9] = 1; // NSCOUNT
        q.extend_from_slice(&[0xC0, 0x0C, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
        q.extend_from_slice(&serial.to_be_bytes());
        q.extend_from_slice(&[0; 16]);
        q
    }

    #[test]
    fn an_ixfr_gets_the_whole_zone_or_the_soa_alone_when_up_to_date() {
        let zone = "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 h 10 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";
        let snap = snapshot(zone, Some("127.0.0.1/32"));
        let mut q = Query::default();
        for (serial, answers) in [
            (9, 4),           // older: SOA, NS, A, SOA
            (u32::MAX, 4),    // older too, by serial arithmetic
            (10, 1),          // the same: the SOA alone
            (11, 1),          // newer: the SOA alone
            (0x8000_0009, 1), // newer by serial arithmetic
        ] {
            let Some(Request::Serve(mut t)) = request(&snap, &ixfr(serial), LOCAL, 0, &mut q)
            else {
                panic!("not served");
            };
            assert_eq!(t.kind(), Kind::Ixfr);
            let all = messages(&mut t);
            assert_eq!(
                all.iter().map(|m| m.1).collect::<Vec<_>>(),
                [answers],
                "{serial}"
            );
        }
        // Without the client's SOA: the whole zone.
        let Some(Request::Serve(mut t)) = request(&snap, &query(APEX, TYPE_IXFR), LOCAL, 0, &mut q)
        else {
            panic!("not served");
        };
        assert_eq!(messages(&mut t)[0].1, 4);
    }

    #[test]
    fn a_large_rrset_is_split_between_its_records_and_no_message_passes_the_budget() {
        let mut zone = String::from(
            "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
        );
        for i in 0..3000 {
            zone.push_str(&format!("big IN TXT \"{i:05} of many\"\n"));
        }
        let snap = snapshot(&zone, Some("127.0.0.1/32"));
        let mut q = Query::default();
        let Some(Request::Serve(mut t)) = request(&snap, &query(APEX, TYPE_AXFR), LOCAL, 0, &mut q)
        else {
            panic!("not served");
        };
        let all = messages(&mut t);
        assert!(all.len() > 3, "{all:?}");
        assert!(all.iter().all(|&(n, _)| n <= MESSAGE_BUDGET), "{all:?}");
        assert_eq!(all.iter().map(|m| m.1 as usize).sum::<usize>(), 3000 + 4);
    }
}
