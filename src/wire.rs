//! Query parsing straight off the wire, without allocation.
//!
//! Everything that arrives on a socket is untrusted. [`parse_query`] reads the header, the one
//! question and the additional section (for EDNS) of a datagram into a fixed-size [`Query`] on the
//! stack, lowercasing the question name as it goes so that zone lookups need no second pass. It
//! never reads past the end of the buffer, never follows a compression pointer backwards into a
//! loop, and reports every malformation as a [`Reject`] that maps to an RCODE (or to silence).
//!
//! Layer 0 of ARCHITECTURE.md: uses only modules of lower layers.
//!
//! [`tsig`]: transaction signatures (RFC 8945) for transfers, NOTIFY and SOA queries.
//! [`cookie`]: DNS Cookies (RFC 7873, RFC 9018): the COOKIE option, server cookies made and
//! checked.

pub mod cookie;
pub mod tsig;

/// Longest domain name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Most labels a name of 255 octets can have (including the root label).
pub const MAX_LABELS: usize = 128;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_MX: u16 = 15;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_DS: u16 = 43;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;

/// EDNS option code of Client Subnet (RFC 7871).
/// Largest DNS message (TCP length prefix is 16 bits).
pub const MAX_MESSAGE: usize = 65535;

pub const OPT_ECS: u16 = 8;
/// EDNS option code of the Name Server Identifier (RFC 5001).
pub const OPT_NSID: u16 = 3;

/// Response codes, including the extended BADVERS (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    /// A TSIG that did not verify (RFC 8945 §5.2).
    NotAuth = 9,
    BadVers = 16,
    /// A server cookie that did not validate, with `[cookies] strict` (RFC 7873 §8).
    BadCookie = 23,
}

/// A domain name in lowercase wire form with the offset of every label and the hash of the
/// whole name, kept on the stack.
///
/// Laid out so that a short name's hash, length and bytes share one cache line.
#[derive(Clone)]
#[repr(C, align(64))]
pub struct NameBuf {
    /// [`name_hash`] of the name, computed once when it is set.
    hash: u64,
    len: u8,
    nlabels: u8,
    /// The name, then zeros up to the next multiple of [`CHUNK`] bytes: names are read, hashed
    /// and compared in whole chunks.
    bytes: [u8; NAME_ROOM],
    labels: [u8; MAX_LABELS],
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf {
            bytes: [0; NAME_ROOM],
            len: 0,
            nlabels: 0,
            labels: [0; MAX_LABELS],
            hash: 0,
        }
    }
}

// ---------------------------------------------------------------- name hashing
//
// Names are read CHUNK (16) bytes at a time, the last chunk zero-padded, and hashed with one
// folded 64×64→128-bit multiply per chunk (the mixing step of foldhash and wyhash). Not keyed:
// only zone data is ever inserted into the tables these hashes index, so a query can at worst
// probe the longest run the operator's own names make; it cannot grow one.

/// Names are read, lowercased, hashed and compared this many bytes at a time.
pub const CHUNK: usize = 16;

/// Room for the longest name and its last chunk's zero padding.
const NAME_ROOM: usize = (MAX_NAME + 1).next_multiple_of(CHUNK);

const HASH_K0: u64 = 0x243f_6a88_85a3_08d3;
const HASH_K1: u64 = 0x1319_8a2e_0370_7344;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline(always)]
fn hash_chunk(h: u64, c: u128) -> u64 {
    fold_mul(h ^ c as u64, (c >> 64) as u64 ^ HASH_K1)
}

#[inline(always)]
fn hash_finish(h: u64, len: usize) -> u64 {
    fold_mul(h ^ len as u64, HASH_K0)
}

/// Hash of a wire name as stored in zone indexes (the caller lowercases it first).
/// [`NameBuf`] computes the same value while it lowercases a question name.
pub fn name_hash(b: &[u8]) -> u64 {
    let mut h = HASH_K0;
    let mut at = 0;
    while at < b.len() {
        h = hash_chunk(h, chunk_at(b, at));
        at += CHUNK;
    }
    hash_finish(h, b.len())
}

/// The CHUNK bytes of `name` from `at` (below its length) as a little-endian number, zero past
/// the name's end. Reads nothing outside `name`: a last partial chunk is the name's last CHUNK
/// bytes shifted down when it has that many, else assembled from overlapping 8- or 4-byte reads.
#[inline(always)]
pub(crate) fn chunk_at(name: &[u8], at: usize) -> u128 {
    let len = name.len();
    if at + CHUNK <= len {
        return u128::from_le_bytes(name[at..at + CHUNK].try_into().expect("16 bytes"));
    }
    let rem = len - at;
    if len >= CHUNK {
        return u128::from_le_bytes(name[len - CHUNK..].try_into().expect("16 bytes"))
            >> (8 * (CHUNK - rem));
    }
    // The whole name is shorter than a chunk (at is 0, rem is len).
    let word = |from: usize| u64::from_le_bytes(name[from..from + 8].try_into().expect("8 bytes"));
    let half = |from: usize| u32::from_le_bytes(name[from..from + 4].try_into().expect("4 bytes"));
    if len >= 8 {
        word(0) as u128
            | (((word(len - 8) as u128) << 64) >> (8 * (16 - len)) & !(u64::MAX as u128))
    } else if len >= 4 {
        half(0) as u128 | ((half(len - 4) as u128) << 32 >> (8 * (8 - len)) & !(u32::MAX as u128))
    } else {
        name.iter()
            .rev()
            .fold(0u128, |acc, &b| acc << 8 | b as u128)
    }
}

/// ASCII-lowercase the sixteen bytes of `c` at once (bytes outside `A`–`Z` are left alone).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn lower_chunk(c: u128) -> u128 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86-64 baseline; u128 and __m128i are both 16 plain bytes.
    unsafe {
        let x: __m128i = std::mem::transmute(c);
        // 'A'..='Z' plus 63 wraps to -128..=-103 as signed bytes, and nothing else does.
        let shifted = _mm_add_epi8(x, _mm_set1_epi8(63));
        let upper = _mm_cmplt_epi8(shifted, _mm_set1_epi8(-102));
        std::mem::transmute(_mm_or_si128(x, _mm_and_si128(upper, _mm_set1_epi8(0x20))))
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn lower_chunk(c: u128) -> u128 {
    lower_word(c as u64) as u128 | (lower_word((c >> 64) as u64) as u128) << 64
}

/// ASCII-lowercase the eight bytes of `w` at once (bytes outside `A`–`Z` are left alone).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn lower_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // High bit of each byte: set when its low 7 bits are >= 'A', and when they are > 'Z'.
    let ge_a = low7 + ONES * (0x80 - b'A' as u64);
    let gt_z = low7 + ONES * (0x7F - b'Z' as u64);
    let upper = (ge_a & !gt_z) & !w & HIGH;
    w | (upper >> 2)
}

impl NameBuf {
    /// The name in lowercase wire form, ending with the root label.
    pub fn wire(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// [`NameBuf::wire`] and its zero padding: a whole number of [`CHUNK`]s.
    #[inline(always)]
    pub fn padded(&self) -> &[u8] {
        &self.bytes[..(self.len as usize).next_multiple_of(CHUNK)]
    }

    /// [`name_hash`] of [`NameBuf::wire`].
    #[inline]
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.nlabels as usize
    }

    /// The name with its first `skip` labels removed (`skip == label_count()` is the root).
    pub fn suffix(&self, skip: usize) -> &[u8] {
        if skip >= self.nlabels as usize {
            return &self.bytes[self.len as usize - 1..self.len as usize];
        }
        &self.bytes[self.labels[skip] as usize..self.len as usize]
    }

    /// Whether a label (or the root label) starts at byte `off` of the name.
    #[inline]
    pub fn is_label_start(&self, off: usize) -> bool {
        off + 1 == self.len as usize
            || self.labels[..self.nlabels as usize]
                .iter()
                .any(|&l| l as usize == off)
    }

    /// Offset of the suffix after `skip` labels, counted from the start of the name.
    pub fn suffix_offset(&self, skip: usize) -> usize {
        if skip >= self.nlabels as usize {
            self.len as usize - 1
        } else {
            self.labels[skip] as usize
        }
    }

    /// Replace the contents with an already-lowercase, well-formed wire name (from a zone).
    pub fn set_wire(&mut self, wire: &[u8]) {
        self.len = 0;
        self.nlabels = 0;
        let mut pos = 0;
        while pos < wire.len() {
            let l = wire[pos] as usize;
            if l == 0 {
                break;
            }
            self.labels[self.nlabels as usize] = pos as u8;
            self.nlabels += 1;
            pos += 1 + l;
        }
        self.bytes[..wire.len()].copy_from_slice(wire);
        self.bytes[wire.len()..wire.len().next_multiple_of(CHUNK)].fill(0);
        self.len = wire.len() as u8;
        self.hash = name_hash(wire);
    }
}

/// The parsed EDNS Client Subnet option of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    pub source_prefix: u8,
    /// Address bytes, only the first `ceil(source_prefix / 8)` are meaningful.
    pub address: [u8; 16],
}

impl ClientSubnet {
    /// Number of address octets carried on the wire.
    pub fn address_len(&self) -> usize {
        (self.source_prefix as usize).div_ceil(8)
    }

    /// The client address the option names, with the bits beyond the prefix zero.
    pub fn ip(&self) -> std::net::IpAddr {
        if self.family == 1 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&self.address[..4]);
            std::net::IpAddr::from(b)
        } else {
            std::net::IpAddr::from(self.address)
        }
    }
}

/// The OPT record of a query (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size, raised to 512 when smaller.
    pub udp_payload: u16,
    pub version: u8,
    /// DNSSEC OK; copied into the response (RFC 3225).
    pub dnssec_ok: bool,
    pub client_subnet: Option<ClientSubnet>,
    /// The query asked for the server's identifier (an NSID option, RFC 5001).
    pub nsid: bool,
    /// The query's COOKIE option (RFC 7873); once the engine has checked it, the cookie the
    /// response carries (see [`cookie::check`]).
    pub cookie: Option<cookie::Cookie>,
}

/// A query that passed every check, ready for the answer engine.
#[derive(Default)]
pub struct Query {
    pub id: u16,
    /// Second 16 bits of the header, as received.
    pub flags: u16,
    /// Offset just past QTYPE and QCLASS: the question is `packet[12..question_end]`.
    pub question_end: usize,
    pub qname: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

impl Query {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }
    /// Length of the question name on the wire (which equals its lowercase form's length).
    pub fn qname_len(&self) -> usize {
        self.qname.len as usize
    }
}

/// Why a datagram is not answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth a reply: too short for a header, or a response (QR=1).
    Drop,
    /// Reply with this RCODE. `question_end` is set when the question parsed and may be echoed;
    /// `edns` when a valid OPT was seen and must be echoed.
    Error {
        id: u16,
        flags: u16,
        rcode: Rcode,
        question_end: Option<usize>,
        edns: Option<Edns>,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Read the question name at `start` (no compression allowed) into `out`: label offsets
/// recorded, bytes copied and lowercased eight at a time and hashed as they go (the same
/// [`name_hash`] the zone indexes use). Returns the offset just past the name.
#[inline(always)]
pub fn read_qname(buf: &[u8], start: usize, out: &mut NameBuf) -> Option<usize> {
    let src = buf.get(start..)?;
    // Walk the length bytes only, recording label offsets (length bytes are at most 63, below
    // 'A', so lowercasing the whole name chunk by chunk leaves them alone). The walk is bounded
    // by the message; a name too long is refused after it.
    let mut len = 0usize;
    let mut nlabels = 0usize;
    loop {
        let l = *src.get(len)? as usize;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None; // compression pointer or reserved label type
        }
        out.labels[nlabels % MAX_LABELS] = len as u8;
        nlabels += 1;
        len += 1 + l;
    }
    len += 1;
    if len > MAX_NAME {
        return None;
    }
    let name = &src[..len];
    let mut h = HASH_K0;
    let mut at = 0;
    while at < len {
        // The last chunk is zero-padded, in the buffer too: the padding is part of the name.
        let c = lower_chunk(chunk_at(name, at));
        out.bytes[at..at + CHUNK].copy_from_slice(&c.to_le_bytes());
        h = hash_chunk(h, c);
        at += CHUNK;
    }
    out.hash = hash_finish(h, len);
    out.len = len as u8;
    out.nlabels = nlabels as u8;
    Some(start + len)
}

/// Skip a (possibly compressed) name anywhere in the message; returns the offset past it.
pub fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let l = *buf.get(pos)?;
        match l & 0xC0 {
            0x00 if l == 0 => return Some(pos + 1),
            0x00 => {
                total += 1 + l as usize;
                if total > MAX_NAME {
                    return None;
                }
                pos += 1 + l as usize;
            }
            // A pointer ends the name as far as this record's layout goes; its target is not
            // needed for skipping, but it must at least point inside the message, backwards.
            0xC0 => {
                let target = (be16(buf, pos)? & 0x3FFF) as usize;
                if target >= pos {
                    return None;
                }
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// The options of an OPT record the engine reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct OptOptions {
    client_subnet: Option<ClientSubnet>,
    /// NSID was asked for.
    nsid: bool,
    cookie: Option<cookie::Cookie>,
}

/// Parse the OPT record's RDATA options: the Client Subnet, whether NSID was asked for, and the
/// COOKIE; other options are ignored. A malformed or repeated ECS or COOKIE is an error.
fn parse_opt_options(opts: &[u8]) -> Result<OptOptions, ()> {
    let mut pos = 0;
    let mut ecs = None;
    let mut nsid = false;
    let mut cookie = None;
    while pos < opts.len() {
        let code = be16(opts, pos).ok_or(())?;
        let len = be16(opts, pos + 2).ok_or(())? as usize;
        let data = opts.get(pos + 4..pos + 4 + len).ok_or(())?;
        pos += 4 + len;
        if code == OPT_NSID {
            // The request's payload should be empty (RFC 5001 §2.3); any is tolerated.
            nsid = true;
            continue;
        }
        if code == cookie::OPT_COOKIE {
            // Malformed (RFC 7873 §5.2.2) or twice: FORMERR.
            if cookie.is_some() {
                return Err(());
            }
            cookie = Some(cookie::Cookie::parse(data).ok_or(())?);
            continue;
        }
        if code != OPT_ECS {
            continue; // unknown options are ignored (RFC 6891 §6.1.2)
        }
        if ecs.is_some() || data.len() < 4 {
            return Err(());
        }
        let family = u16::from_be_bytes([data[0], data[1]]);
        let source_prefix = data[2];
        let scope_prefix = data[3];
        let max = match family {
            1 => 32,
            2 => 128,
            _ => return Err(()),
        };
        // RFC 7871 §6: SCOPE PREFIX-LENGTH must be 0 in queries; the address must be exactly as
        // long as the source prefix needs, with every bit beyond the prefix zero.
        if source_prefix > max || scope_prefix != 0 {
            return Err(());
        }
        let addr = &data[4..];
        let need = (source_prefix as usize).div_ceil(8);
        if addr.len() != need {
            return Err(());
        }
        if need > 0 {
            let spare = need * 8 - source_prefix as usize;
            let low_bits = ((1u16 << spare) - 1) as u8;
            if addr[need - 1] & low_bits != 0 {
                return Err(());
            }
        }
        let mut address = [0u8; 16];
        address[..need].copy_from_slice(addr);
        ecs = Some(ClientSubnet {
            family,
            source_prefix,
            address,
        });
    }
    Ok(OptOptions {
        client_subnet: ecs,
        nsid,
        cookie,
    })
}

/// For an error reply to a message whose question is unusable: walk every section and return
/// its OPT if it has exactly one, owned by the root, with well-formed options; `None` otherwise.
/// `before` counts the records ahead of the additional section.
fn find_opt(buf: &[u8], qdcount: u16, before: u32, arcount: u16) -> Option<Edns> {
    let mut pos = 12;
    for _ in 0..qdcount {
        pos = skip_name(buf, pos)? + 4;
    }
    let mut edns = None;
    for i in 0..before + arcount as u32 {
        let p = skip_name(buf, pos)?;
        let (rtype, class, rdlen) = (be16(buf, p)?, be16(buf, p + 2)?, be16(buf, p + 8)?);
        let rdata = buf.get(p + 10..p + 10 + rdlen as usize)?;
        if rtype == TYPE_OPT && i >= before {
            let Ok(OptOptions { nsid, .. }) = parse_opt_options(rdata) else {
                return None;
            };
            if edns.is_some() || buf[pos] != 0 {
                return None;
            }
            edns = Some(Edns {
                udp_payload: class.max(512),
                version: buf[p + 5],
                dnssec_ok: buf[p + 6] & 0x80 != 0,
                client_subnet: None,
                nsid,
                cookie: None,
            });
        }
        pos = p + 10 + rdlen as usize;
    }
    edns
}

/// The question of a query in the common shape (see [`parse_plain_question`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainQuestion {
    /// Second 16 bits of the header, as received.
    pub flags: u16,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past QTYPE and QCLASS.
    pub question_end: usize,
    /// The plain OPT record, if there is one: (requestor's payload raised to 512, DO bit).
    pub edns: Option<(u16, bool)>,
}

/// Read the common shape of a query cheaply: QR clear, opcode QUERY, one question, no answer
/// or authority records, and either no additional record or one plain OPT (owned by the root,
/// version 0, no options). The name goes into `name` (lowercased and hashed). Returns `None`,
/// with `name` in no particular state, for anything else, which [`parse_query`] then reads.
#[inline(always)]
pub fn parse_plain_question(buf: &[u8], name: &mut NameBuf) -> Option<PlainQuestion> {
    let header = buf.get(..12)?;
    let word = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let (flags, arcount) = (word(2), word(10));
    // QR = 0 and opcode 0; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0; ARCOUNT 0 or 1.
    if flags & 0xF800 != 0 || header[4..10] != [0, 1, 0, 0, 0, 0] || arcount > 1 {
        return None;
    }
    let pos = read_qname(buf, 12, name)?;
    let tail = buf.get(pos..pos + 4)?;
    let mut q = PlainQuestion {
        flags,
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
        question_end: pos + 4,
        edns: None,
    };
    if arcount == 1 {
        // Root owner, TYPE OPT, CLASS = payload, TTL = ext-rcode, version 0, flags; RDLENGTH 0.
        let opt = buf.get(pos + 4..pos + 15)?;
        if opt[0] != 0 || opt[1..3] != [0, TYPE_OPT as u8] || opt[6] != 0 || opt[9..11] != [0, 0] {
            return None;
        }
        q.edns = Some((
            u16::from_be_bytes([opt[3], opt[4]]).max(512),
            opt[7] & 0x80 != 0,
        ));
    }
    Some(q)
}

/// [`parse_plain_question`] into a [`Query`], filled exactly as [`parse_query`] would; returns
/// false, with `out` in no particular state, for anything else.
#[inline(always)]
pub fn parse_plain(buf: &[u8], out: &mut Query) -> bool {
    let Some(p) = parse_plain_question(buf, &mut out.qname) else {
        return false;
    };
    out.id = u16::from_be_bytes([buf[0], buf[1]]);
    out.flags = p.flags;
    out.question_end = p.question_end;
    out.qtype = p.qtype;
    out.qclass = p.qclass;
    out.edns = p.edns.map(|(udp_payload, dnssec_ok)| Edns {
        udp_payload,
        version: 0,
        dnssec_ok,
        client_subnet: None,
        nsid: false,
        cookie: None,
    });
    true
}

/// Parse a query datagram or TCP message.
pub fn parse_query(buf: &[u8], out: &mut Query) -> Result<(), Reject> {
    if buf.len() < 12 {
        return Err(Reject::Drop);
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    if flags & 0x8000 != 0 {
        return Err(Reject::Drop);
    }
    let err = |rcode, question_end, edns| {
        Err(Reject::Error {
            id,
            flags,
            rcode,
            question_end,
            edns,
        })
    };
    let opcode = (flags >> 11) & 0xF;
    let qdcount = u16::from_be_bytes([buf[4], buf[5]]);
    let ancount = u16::from_be_bytes([buf[6], buf[7]]);
    let nscount = u16::from_be_bytes([buf[8], buf[9]]);
    let arcount = u16::from_be_bytes([buf[10], buf[11]]);
    if opcode != 0 || qdcount != 1 {
        // No question to echo, but an OPT still asks for one in the reply (RFC 6891 §7).
        let rcode = if opcode != 0 {
            Rcode::NotImp
        } else {
            Rcode::FormErr
        };
        let edns = find_opt(buf, qdcount, ancount as u32 + nscount as u32, arcount);
        return err(rcode, None, edns);
    }
    let Some(pos) = read_qname(buf, 12, &mut out.qname) else {
        return err(Rcode::FormErr, None, None);
    };
    let (Some(qtype), Some(qclass)) = (be16(buf, pos), be16(buf, pos + 2)) else {
        return err(Rcode::FormErr, None, None);
    };
    let question_end = pos + 4;
    out.id = id;
    out.flags = flags;
    out.question_end = question_end;
    out.qtype = qtype;
    out.qclass = qclass;

    let mut pos = question_end;
    // Answer and authority records have no business in a query but are legal to carry; skip them.
    for _ in 0..(ancount as u32 + nscount as u32) {
        match skip_name(buf, pos).and_then(|p| Some(p + 10 + be16(buf, p + 8)? as usize)) {
            Some(next) if next <= buf.len() => pos = next,
            _ => return err(Rcode::FormErr, Some(question_end), None),
        }
    }
    let mut edns: Option<Edns> = None;
    let mut bad_opt = false;
    for _ in 0..arcount {
        let Some(p) = skip_name(buf, pos) else {
            return err(Rcode::FormErr, Some(question_end), None);
        };
        let (Some(rtype), Some(class), Some(rdlen)) =
            (be16(buf, p), be16(buf, p + 2), be16(buf, p + 8))
        else {
            return err(Rcode::FormErr, Some(question_end), None);
        };
        let rdata_start = p + 10;
        let Some(rdata) = buf.get(rdata_start..rdata_start + rdlen as usize) else {
            return err(Rcode::FormErr, Some(question_end), None);
        };
        if rtype == TYPE_OPT {
            // Two OPT records, or an OPT not owned by the root, is a FORMERR (RFC 6891 §6.1.1).
            if edns.is_some() || bad_opt || buf[pos] != 0 {
                return err(Rcode::FormErr, Some(question_end), None);
            }
            let ttl = [buf[p + 4], buf[p + 5], buf[p + 6], buf[p + 7]];
            let version = ttl[1];
            let dnssec_ok = ttl[2] & 0x80 != 0;
            match parse_opt_options(rdata) {
                Ok(o) => {
                    edns = Some(Edns {
                        udp_payload: class.max(512),
                        version,
                        dnssec_ok,
                        client_subnet: o.client_subnet,
                        nsid: o.nsid,
                        cookie: o.cookie,
                    })
                }
                Err(()) => bad_opt = true,
            }
            if bad_opt {
                let plain = Edns {
                    udp_payload: class.max(512),
                    version,
                    dnssec_ok,
                    client_subnet: None,
                    nsid: false,
                    cookie: None,
                };
                return err(Rcode::FormErr, Some(question_end), Some(plain));
            }
        }
        pos = rdata_start + rdlen as usize;
    }
    if let Some(e) = edns
        && e.version > 0
    {
        return err(
            Rcode::BadVers,
            Some(question_end),
            Some(Edns {
                client_subnet: None,
                cookie: None,
                ..e
            }),
        );
    }
    out.edns = edns;
    Ok(())
}

/// Seconds since the Unix epoch on the system's wall clock: what TSIG times are signed with
/// and checked against (0 if the clock is before the epoch).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An unpredictable message ID for a query this server sends (NOTIFY, a secondary's SOA query
/// and transfers): std's per-process random hash keys over a counter.
pub fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn lowercases_and_indexes_labels() {
        let mut q = Query::default();
        parse_query(&query(b"\x03WwW\x07Example\x03com\x00", 1), &mut q).unwrap();
        assert_eq!(q.qname.wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!(q.qname.label_count(), 3);
        assert_eq!(q.qname.suffix(1), b"\x07example\x03com\x00");
        assert_eq!(q.qname.suffix(3), b"\x00");
        assert_eq!(q.question_end, 12 + 17 + 4);
    }

    /// Chunks are the name's bytes, zero-padded, for every length and position; lowercasing
    /// (the SSE2 path and the 8-byte fallback alike) is `to_ascii_lowercase` on every byte value.
    #[test]
    fn chunks_and_lowercasing_are_exact() {
        let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        for len in 1..=MAX_NAME {
            let name = &bytes[len % 97..len % 97 + len];
            for at in (0..len).step_by(CHUNK) {
                let mut want = [0u8; CHUNK];
                let end = len.min(at + CHUNK);
                want[..end - at].copy_from_slice(&name[at..end]);
                assert_eq!(chunk_at(name, at).to_le_bytes(), want, "len {len} at {at}");
            }
        }
        for start in 0..bytes.len() - CHUNK {
            let c = u128::from_le_bytes(bytes[start..start + CHUNK].try_into().unwrap());
            let want: Vec<u8> = bytes[start..start + CHUNK]
                .iter()
                .map(u8::to_ascii_lowercase)
                .collect();
            assert_eq!(lower_chunk(c).to_le_bytes()[..], want[..]);
            let lo = lower_word(c as u64).to_le_bytes();
            assert_eq!(lo[..], want[..8]);
        }
    }

    /// A name set from zone data and the same name parsed from a question in any case have the
    /// same bytes, padding and hash.
    #[test]
    fn parsed_and_set_names_agree() {
        let mut set = NameBuf::default();
        let mut q = Query::default();
        for name in [
            &b"\x00"[..],
            b"\x01a\x00",
            b"\x03www\x07example\x03com\x00",
            b"\x0fabcdefghijklmno\x00",
            b"\x0eabcdefghijklmn\x00",
            b"\x10abcdefghijklmnop\x00",
            b"\x3fabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\x03www\x00",
        ] {
            // A longer name first, so that set_wire has stale bytes to clear.
            set.set_wire(
                &[
                    b"\x3f".as_slice(),
                    &[b'x'; 63],
                    b"\x3f",
                    &[b'y'; 63],
                    b"\x00",
                ]
                .concat(),
            );
            set.set_wire(name);
            let upper: Vec<u8> = name.iter().map(u8::to_ascii_uppercase).collect();
            parse_query(&query(&upper, 1), &mut q).unwrap();
            assert_eq!(q.qname.wire(), name);
            assert_eq!(q.qname.hash(), set.hash());
            assert_eq!(q.qname.hash(), name_hash(name));
            let padded = name.len().next_multiple_of(CHUNK);
            assert_eq!(q.qname.bytes[..padded], set.bytes[..padded]);
            assert!(set.bytes[name.len()..padded].iter().all(|&b| b == 0));
        }
    }

    /// Whatever `parse_plain` accepts, `parse_query` reads identically: checked on valid queries
    /// with and without OPT, and on thousands of mutations of them.
    #[test]
    fn parse_plain_agrees_with_parse_query() {
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        for (name, qtype) in [
            (&b"\x03WwW\x07Example\x03com\x00"[..], 1u16),
            (b"\x00", 2),
            (b"\x01a\x00", 28),
            (b"\x0212\x0bABCDEFGHIJK\x07example\x00", 15),
        ] {
            let plain = query(name, qtype);
            let mut opt = plain.clone();
            opt[11] = 1;
            opt.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
            // The same OPT carrying a Client Subnet option (not plain: parse_plain declines it).
            let mut ecs = opt.clone();
            let n = ecs.len();
            ecs[n - 2..].copy_from_slice(&[0, 8]);
            ecs.extend_from_slice(&[0, 8, 0, 4, 0, 1, 0, 0]);
            seeds.extend([plain, opt, ecs]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut total) = (0, 0);
        for seed in &seeds {
            for round in 0..3000 {
                let mut pkt = seed.clone();
                if round > 0 {
                    for _ in 0..1 + next() % 3 {
                        let at = (next() as usize) % pkt.len();
                        pkt[at] = next() as u8;
                    }
                    if next() % 8 == 0 {
                        pkt.truncate((next() as usize) % (pkt.len() + 1));
                    }
                }
                total += 1;
                let (mut a, mut b) = (Query::default(), Query::default());
                if !parse_plain(&pkt, &mut a) {
                    continue;
                }
                accepted += 1;
                assert!(parse_query(&pkt, &mut b).is_ok(), "{pkt:02x?}");
                assert_eq!(
                    (a.id, a.flags, a.question_end, a.qtype, a.qclass, a.edns),
                    (b.id, b.flags, b.question_end, b.qtype, b.qclass, b.edns),
                    "{pkt:02x?}"
                );
                assert_eq!(a.qname.wire(), b.qname.wire());
                assert_eq!(a.qname.hash(), b.qname.hash());
                assert_eq!(a.qname.label_count(), b.qname.label_count());
            }
        }
        assert!(accepted > total / 10, "{accepted} of {total}");
    }

    #[test]
    fn rejects_compression_in_question_and_overlong_labels() {
        let mut q = Query::default();
        let r = parse_query(&query(b"\xc0\x0c", 1), &mut q);
        assert!(matches!(
            r,
            Err(Reject::Error {
                rcode: Rcode::FormErr,
                ..
            })
        ));
        let mut long = vec![64u8];
        long.extend_from_slice(&[b'a'; 64]);
        long.push(0);
        let r = parse_query(&query(&long, 1), &mut q);
        assert!(matches!(
            r,
            Err(Reject::Error {
                rcode: Rcode::FormErr,
                ..
            })
        ));
    }

    #[test]
    fn ecs_validation() {
        assert!(
            parse_opt_options(&[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2])
                .unwrap()
                .client_subnet
                .is_some()
        );
        // scope != 0
        assert!(parse_opt_options(&[0, 8, 0, 7, 0, 1, 24, 8, 192, 0, 2]).is_err());
        // address too long for /24
        assert!(parse_opt_options(&[0, 8, 0, 8, 0, 1, 24, 0, 192, 0, 2, 1]).is_err());
        // bits beyond /23 set
        assert!(parse_opt_options(&[0, 8, 0, 7, 0, 1, 23, 0, 192, 0, 3]).is_err());
        // unknown family
        assert!(parse_opt_options(&[0, 8, 0, 4, 0, 3, 0, 0]).is_err());
        // /0 with no address is fine
        assert!(
            parse_opt_options(&[0, 8, 0, 4, 0, 1, 0, 0])
                .unwrap()
                .client_subnet
                .is_some()
        );
        // unknown option ignored; truncated option rejected
        assert_eq!(
            parse_opt_options(&[0, 99, 0, 1, 7]).unwrap(),
            OptOptions::default()
        );
        assert!(parse_opt_options(&[0, 3, 0, 0]).unwrap().nsid);
        assert!(parse_opt_options(&[0, 99, 0, 5, 7]).is_err());
        // A COOKIE: a client cookie alone, with a server cookie, malformed, twice.
        let c = parse_opt_options(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap()
            .cookie
            .unwrap();
        assert_eq!((c.client, c.server_len), ([1, 2, 3, 4, 5, 6, 7, 8], 0));
        let mut with_server = vec![0, 10, 0, 24];
        with_server.extend(1..=24);
        let c = parse_opt_options(&with_server).unwrap().cookie.unwrap();
        assert_eq!(c.server(), (9..=24).collect::<Vec<u8>>());
        assert!(parse_opt_options(&[0, 10, 0, 7, 1, 2, 3, 4, 5, 6, 7]).is_err());
        let twice = [&with_server[..], &with_server[..]].concat();
        assert!(parse_opt_options(&twice).is_err());
    }
}
