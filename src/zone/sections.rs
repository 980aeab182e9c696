//! The sections of a response that come from a zone: answer, authority and additional for a
//! question inside one zone (CNAME chasing within it, wildcards, delegations, negative answers),
//! written into a caller-owned buffer, never past its limit.
//!
//! The answer engine (`dns::answer`) writes a response's header, question and OPT
//! around these; [`prepare`] writes them ahead of time for the catalog's prepared responses.
//! Both run `write_sections`, so a prepared response is byte for byte what the engine would
//! write. Owner names are compression pointers into the question (or into the CNAME that led to
//! them), so prepared records never need patching. No allocation, no I/O.

use crate::wire::*;

use super::{Lookup, Node, Place, Prepared, Presence, RrSet, Zone};

/// How many CNAMEs are followed within one zone before the chain is returned as it stands.
const MAX_CNAME_CHAIN: usize = 8;

/// Raised when the response would pass its size limit.
#[derive(Debug)]
pub(crate) struct Full;

/// A response being written into a fixed buffer, never past `limit`.
pub(crate) struct Writer<'b> {
    pub(crate) buf: &'b mut [u8],
    pub(crate) pos: usize,
    pub(crate) limit: usize,
}

impl Writer<'_> {
    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.pos + bytes.len();
        if end > self.limit {
            return Err(Full);
        }
        copy_short(&mut self.buf[self.pos..end], bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn put_u16(&mut self, v: u16) -> Result<(), Full> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn set_u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Owner name: a pointer to an uncompressed copy already in the message, if one can point.
    fn put_owner(&mut self, ptr: usize, literal: &[u8]) -> Result<(), Full> {
        if ptr < 0x3FFF {
            self.put_u16(0xC000 | ptr as u16)
        } else {
            self.put(literal)
        }
    }

    /// Write every record of `set` with the given owner; returns the offset of the last RDATA.
    fn put_rrset(&mut self, set: RrSet, owner_ptr: usize, owner: &[u8]) -> Result<usize, Full> {
        if owner_ptr == 12 {
            // Owned by the name asked: the records are ready with their pointers, one copy.
            self.put(set.at_qname)?;
            return Ok(self.pos - set.last_rdlen as usize);
        }
        let mut rdata_at = 0;
        for rec in set.each_record() {
            self.put_owner(owner_ptr, owner)?;
            rdata_at = self.pos + 10;
            self.put(rec)?;
        }
        Ok(rdata_at)
    }
}

/// `dst.copy_from_slice(src)` for the short copies of the query path, in fixed-size moves that
/// compile to a few loads and stores instead of a call into `memcpy` (two overlapping moves
/// cover any length between one size and twice it).
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n);
    if n > 64 {
        dst.copy_from_slice(src);
    } else if n > 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        // Byte by byte on purpose: `copy_from_slice` here would be a call into `memcpy`.
        #[allow(clippy::manual_memcpy)]
        for i in 0..n {
            dst[i] = src[i];
        }
    }
}

/// Section counts and flags gathered while writing.
#[derive(Default)]
pub(crate) struct Sections {
    pub(crate) an: u16,
    pub(crate) ns: u16,
    pub(crate) ar: u16,
    pub(crate) aa: bool,
    pub(crate) rcode: u16,
}

impl Sections {
    /// The counts and flags a prepared response was written with.
    #[inline(always)]
    pub(crate) fn of(p: &Prepared) -> Sections {
        Sections {
            an: p.an,
            ns: p.ns,
            ar: p.ar,
            aa: p.aa,
            rcode: p.rcode,
        }
    }
}

/// Write ahead of time the sections for questions of exactly `name` (node `node` of `zone`)
/// whose answers are more than one RRset's own bytes: each type whose RRset has additional
/// records and, at a CNAME, A and AAAA (the chase within the zone). Hands each `(counts and
/// flags, bytes)` to `emit`. Nothing for nodes at or below a delegation (referrals take the
/// general path) or for a service's name, or when a response would not fit a message.
/// `buf` is scratch of at least [`MAX_MESSAGE`] bytes, reused across calls.
///
/// This runs the same `write_sections` that answers a query, with the question where a
/// query's question would be, so a prepared response is byte for byte what the general path
/// writes for that question when the client's size limit does not cut it (callers check).
pub fn prepare(
    zone: &Zone,
    name: &NameBuf,
    node: u32,
    buf: &mut [u8],
    mut emit: impl FnMut(Prepared, &[u8]),
) {
    let n = zone.node(node);
    if n.cut.is_some() || n.dynamic {
        return;
    }
    let presence = Presence::At(Place::for_node(zone.id as u32, node));
    let chased: &[u16] = if n.rrset(TYPE_CNAME).is_some() {
        &[TYPE_A, TYPE_AAAA]
    } else {
        &[]
    };
    let types = n
        .rrsets
        .iter()
        .filter(|r| !r.additional.is_empty())
        .map(|r| r.rtype)
        .chain(chased.iter().copied().filter(|&t| n.rrset(t).is_none()));
    let question_end = 12 + name.wire().len() + 4;
    let limit = buf.len().min(MAX_MESSAGE);
    for qtype in types {
        let mut w = Writer {
            buf: &mut *buf,
            pos: question_end,
            limit,
        };
        let mut s = Sections::default();
        if write_sections(&mut w, zone, name, qtype, presence, &mut s).is_err() {
            continue;
        }
        let p = Prepared {
            qtype,
            an: s.an,
            ns: s.ns,
            ar: s.ar,
            aa: s.aa,
            rcode: s.rcode,
            ..Prepared::default()
        };
        emit(p, &w.buf[question_end..w.pos]);
    }
}

/// Answer, authority and additional sections for a question of `qname` (lowercase) and `qtype`
/// inside `zone`, whose name starts at offset 12 of the message. `presence` is what the caller
/// already knows of the name in `zone`.
pub(crate) fn write_sections(
    w: &mut Writer,
    zone: &Zone,
    qname: &NameBuf,
    qtype: u16,
    presence: Presence,
    s: &mut Sections,
) -> Result<(), Full> {
    s.aa = true;
    // The name being answered: the question's, then each CNAME target (copied only when chased).
    let mut chased: Option<NameBuf> = None;
    // Offset of an uncompressed copy of that name in the message: the question, then the RDATA
    // of the CNAME that led to it.
    let mut name_at = 12usize;
    for hop in 0..=MAX_CNAME_CHAIN {
        let name = chased.as_ref().unwrap_or(qname);
        let apex_at = name_at + name.suffix_offset(name.label_count() - zone.apex_labels());
        let found = match (hop, presence) {
            (0, Presence::At(p)) => zone.lookup_at(name, qtype, 0, p.node),
            (0, Presence::Absent) => zone.lookup_absent(name, qtype),
            _ => zone.lookup(name, qtype),
        };
        match found {
            Lookup::NxDomain => {
                s.rcode = Rcode::NxDomain as u16;
                return negative(w, zone, apex_at, s);
            }
            Lookup::Referral { cut } if hop == 0 => {
                s.aa = false;
                let ns = cut.rrset(TYPE_NS).expect("a cut has NS records");
                let cut_at = name_at + name.suffix_offset(name.label_count() - cut.labels);
                w.put_rrset(ns, cut_at, cut.name)?;
                s.ns += ns.count;
                // Glue for in-bailiwick servers is required: if it does not fit, TC (RFC 9471).
                return additional(w, zone, ns, s, true);
            }
            // A CNAME chain that leads into a delegation stops at the chain.
            Lookup::Referral { .. } => return Ok(()),
            // A service's name: its answer is the policy engine's. Reached through a CNAME, the
            // chain stops there and the resolver asks for the service by name.
            Lookup::Found { node, .. } if node.dynamic => {
                return match hop {
                    0 => negative(w, zone, apex_at, s),
                    _ => Ok(()),
                };
            }
            Lookup::Found { node, .. } => {
                if qtype == TYPE_ANY {
                    // RFC 8482: one RRset is a complete answer to ANY.
                    return match node.rrsets.first() {
                        Some(set) => positive(w, zone, set, name_at, node, s),
                        None => negative(w, zone, apex_at, s),
                    };
                }
                if let Some(set) = node.rrset(qtype) {
                    return positive(w, zone, set, name_at, node, s);
                }
                let Some(cname) = node.rrset(TYPE_CNAME) else {
                    return negative(w, zone, apex_at, s);
                };
                let rdata_at = w.put_rrset(cname, name_at, node.name)?;
                s.an += 1;
                let target = cname.target.expect("CNAME has a target");
                if !zone.contains(target) || hop == MAX_CNAME_CHAIN {
                    return Ok(()); // out-of-zone target: the resolver follows it
                }
                chased.get_or_insert_with(NameBuf::default).set_wire(target);
                name_at = rdata_at;
            }
        }
    }
    Ok(())
}

fn positive(
    w: &mut Writer,
    zone: &Zone,
    set: RrSet,
    name_at: usize,
    node: Node,
    s: &mut Sections,
) -> Result<(), Full> {
    w.put_rrset(set, name_at, node.name)?;
    s.an += set.count;
    additional(w, zone, set, s, false)
}

/// NXDOMAIN or NODATA: the SOA in the authority section with the negative TTL.
pub(crate) fn negative(
    w: &mut Writer,
    zone: &Zone,
    apex_at: usize,
    s: &mut Sections,
) -> Result<(), Full> {
    w.put_rrset(zone.negative_soa(), apex_at, zone.apex())?;
    s.ns += 1;
    Ok(())
}

/// Addresses of the names `set` points at. Optional data is dropped when it does not fit;
/// `required` data (referral glue) truncates the response instead.
fn additional(
    w: &mut Writer,
    zone: &Zone,
    set: RrSet,
    s: &mut Sections,
    required: bool,
) -> Result<(), Full> {
    for &idx in set.additional.iter() {
        let node = zone.node(idx);
        for rtype in [TYPE_A, TYPE_AAAA] {
            let Some(addrs) = node.rrset(rtype) else {
                continue;
            };
            let before = w.pos;
            match w.put_rrset(addrs, usize::MAX, node.name) {
                Ok(_) => s.ar += addrs.count,
                Err(Full) if required => return Err(Full),
                Err(Full) => {
                    w.pos = before;
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
