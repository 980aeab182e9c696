//! TSIG (RFC 8945): transaction signatures with a shared secret, for zone transfers, NOTIFY and
//! SOA queries, in both directions.
//!
//! Pure wire work: no I/O, and the time (seconds since the Unix epoch) is an argument of every
//! call that needs it. The HMAC is `ring::hmac`; nothing here is crypto of its own, only the
//! digest's input as RFC 8945 §4.3 lays it out, and the TSIG record around the MAC.
//!
//! Server side (a request in, responses out):
//! - [`verify_request`] finds the TSIG record (it must be the last record of the additional
//!   section) and checks key, MAC and time in the order of RFC 8945 §5.2. `Ok(None)`: the
//!   message is unsigned. `Ok(Some(signed))`: [`Signed`] has the key, the request's MAC and
//!   [`Signed::len`], the message's length without its TSIG record. The rest of the message can
//!   be read by the ordinary parser as it is (it skips the TSIG like any additional record), or
//!   cut to `len` with [`strip`] (ARCOUNT decremented).
//! - [`Signer`] signs the responses: the first over the request's MAC, the message and the TSIG
//!   variables; each later one of a stream (a transfer) over the previous MAC, the message and
//!   the timers (§5.3.1). Meridian signs every message of a stream.
//! - [`Rejected::write_response`] writes the error answer of §5.3.2: RCODE NOTAUTH with a TSIG
//!   carrying BADKEY or BADSIG and an empty MAC, or BADTIME (and BADTRUNC) signed, with the
//!   server's time in Other Data for BADTIME. A malformed TSIG is a plain FORMERR.
//!
//! Client side (Meridian's NOTIFY, a secondary's SOA queries and transfers):
//! - [`sign_query`] appends a TSIG to a query in a `Vec<u8>` and returns its MAC;
//! - [`Verifier`] checks the response, or each response of a stream, against that MAC. The
//!   first and the last message must be signed; up to [`MAX_UNSIGNED`] (99) messages in a row
//!   between signed ones may come unsigned (RFC 8945 §5.3.1), and are covered by the next
//!   signed one. Call [`Verifier::finish`] after the last message.
//!
//! Secrets never leave [`Key`]: its `Debug` prints the name and algorithm only.

use std::fmt;
use std::sync::Arc;

use ring::hmac;

/// The TSIG record type.
pub const TYPE_TSIG: u16 = 250;
/// The class of a TSIG record.
const CLASS_ANY: u16 = 255;
/// RCODE NOTAUTH (RFC 8945 §5.2: the RCODE of a BADKEY, BADSIG or BADTIME answer).
pub const RCODE_NOTAUTH: u16 = 9;
/// The fudge (allowed clock difference, seconds) Meridian puts in what it signs; the RFC's
/// recommendation (§10).
pub const DEFAULT_FUDGE: u16 = 300;
/// Most unsigned messages in a row a [`Verifier`] accepts in a stream (RFC 8945 §5.3.1).
pub const MAX_UNSIGNED: usize = 99;
/// Longest MAC (HMAC-SHA512).
const MAX_MAC: usize = 64;

/// A TSIG algorithm Meridian supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [
        Algorithm::HmacSha1,
        Algorithm::HmacSha256,
        Algorithm::HmacSha512,
    ];

    /// The algorithm called `name` ("hmac-sha256", any case, trailing dot or not).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let n = name.strip_suffix('.').unwrap_or(name);
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(n))
    }

    /// The name as configured and printed, e.g. "hmac-sha256".
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm's domain name in wire form (RFC 8945 §6).
    fn wire(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    fn from_wire(lower: &[u8]) -> Option<Algorithm> {
        Self::ALL.into_iter().find(|a| a.wire() == lower)
    }

    /// Length of the algorithm's full MAC.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha512 => 64,
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A TSIG key: its name, algorithm and secret. Cheap to clone (the name is shared, the secret
/// is ring's key schedule). `Debug` never prints the secret.
#[derive(Clone)]
pub struct Key {
    /// The name in lowercase wire form.
    name: Arc<[u8]>,
    algorithm: Algorithm,
    secret: hmac::Key,
}

impl Key {
    /// A key named `name` (a domain name in text, e.g. "xfr." or "xfr"; no escapes) with the
    /// decoded `secret`. `None` when the name is not a domain name.
    pub fn new(name: &str, algorithm: Algorithm, secret: &[u8]) -> Option<Key> {
        Some(Key {
            name: name_to_wire(name)?.into(),
            algorithm,
            secret: hmac::Key::new(algorithm.ring(), secret),
        })
    }

    /// The key's name in lowercase wire form.
    pub fn name_wire(&self) -> &[u8] {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Bytes of the TSIG record this key signs with (no Other Data): the room a message must
    /// keep for it.
    pub fn record_len(&self) -> usize {
        self.name.len() + 10 + self.algorithm.wire().len() + 16 + self.algorithm.mac_len()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &wire_to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .field("secret", &"(hidden)")
            .finish()
    }
}

/// A domain name in text (labels separated by dots, no escapes) as lowercase wire form, the
/// form [`KeyRing::find`] takes; `None` when it is not a domain name.
pub fn name_to_wire(name: &str) -> Option<Vec<u8>> {
    let n = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::with_capacity(n.len() + 2);
    if !n.is_empty() {
        for label in n.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    out.push(0);
    (out.len() <= super::MAX_NAME).then_some(out)
}

/// A wire-form name as text, for `Debug` and messages.
fn wire_to_text(wire: &[u8]) -> String {
    let mut s = String::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let label = wire.get(pos + 1..pos + 1 + len as usize).unwrap_or(&[]);
        s.push_str(&String::from_utf8_lossy(label));
        s.push('.');
        pos += 1 + len as usize;
    }
    if s.is_empty() { ".".into() } else { s }
}

/// The keys a server knows, looked up by name.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    pub fn new(keys: Vec<Key>) -> KeyRing {
        KeyRing { keys }
    }

    /// The position of the key named `name_wire` (lowercase wire form).
    pub fn find(&self, name_wire: &[u8]) -> Option<usize> {
        self.keys.iter().position(|k| *k.name == *name_wire)
    }

    /// The key at position `i`.
    pub fn get(&self, i: usize) -> Option<&Key> {
        self.keys.get(i)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A MAC, as sent in a TSIG record (up to 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mac {
    bytes: [u8; MAX_MAC],
    len: u8,
}

impl Mac {
    fn of(b: &[u8]) -> Mac {
        let mut bytes = [0; MAX_MAC];
        let len = b.len().min(MAX_MAC);
        bytes[..len].copy_from_slice(&b[..len]);
        Mac {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A request whose TSIG verified.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// The key's position in the [`KeyRing`].
    pub key: usize,
    /// The request's MAC: the first response's digest starts with it.
    pub mac: Mac,
    /// The request's Time Signed and Fudge.
    pub time_signed: u64,
    pub fudge: u16,
    /// The message's length without its TSIG record (where the record starts).
    pub len: usize,
}

/// Why a TSIG did not verify (RFC 8945 §5.2 and §5.3.2 for a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TsigError {
    /// The TSIG record is malformed, not last, or not alone: answered FORMERR.
    #[error("malformed TSIG record")]
    FormErr,
    /// The MAC does not match.
    #[error("TSIG MAC does not verify (BADSIG)")]
    BadSig,
    /// The key name is unknown, or the algorithm is not the key's.
    #[error("unknown TSIG key or algorithm (BADKEY)")]
    BadKey,
    /// The time signed is farther from now than the fudge.
    #[error("TSIG time outside the fudge (BADTIME)")]
    BadTime,
    /// The MAC is truncated; Meridian accepts full MACs only.
    #[error("truncated TSIG MAC (BADTRUNC)")]
    BadTrunc,
    /// A response of a signed exchange came without the TSIG it needs (client side).
    #[error("response is not signed")]
    Unsigned,
    /// The response's TSIG carries this error code from the other side (client side).
    #[error("the server answered TSIG error {0}")]
    Peer(u16),
}

impl TsigError {
    /// The TSIG error field of an answer (0 for FORMERR, which has no TSIG).
    pub fn code(self) -> u16 {
        match self {
            TsigError::BadSig => 16,
            TsigError::BadKey => 17,
            TsigError::BadTime => 18,
            TsigError::BadTrunc => 22,
            TsigError::Peer(c) => c,
            TsigError::FormErr | TsigError::Unsigned => 0,
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TsigError::FormErr => "formerr",
            TsigError::BadSig => "badsig",
            TsigError::BadKey => "badkey",
            TsigError::BadTime => "badtime",
            TsigError::BadTrunc => "badtrunc",
            TsigError::Unsigned => "unsigned",
            TsigError::Peer(_) => "peer",
        }
    }
}

/// A request whose TSIG did not verify: the error, and what the error answer needs.
#[derive(Debug, Clone, Copy)]
pub struct Rejected {
    pub error: TsigError,
    /// Where the TSIG record starts (`None` when it could not be read).
    at: Option<usize>,
    /// The key, when it was found (BADSIG, BADTIME, BADTRUNC).
    key: Option<usize>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be48(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 6)?;
    Some(s.iter().fold(0u64, |acc, &x| acc << 8 | x as u64))
}

/// A name read from a message (compression followed), lowercased.
struct Name {
    bytes: [u8; super::MAX_NAME],
    len: usize,
}

impl Name {
    fn wire(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Read the name at `pos`, following compression pointers backwards; returns it and the offset
/// past it in the record.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut name = Name {
        bytes: [0; super::MAX_NAME],
        len: 0,
    };
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *msg.get(pos)? as usize;
        match len {
            0 => {
                *name.bytes.get_mut(name.len)? = 0;
                name.len += 1;
                return Some((name, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = msg.get(pos..pos + 1 + len)?;
                let dst = name.bytes.get_mut(name.len..name.len + 1 + len)?;
                for (d, s) in dst.iter_mut().zip(label) {
                    *d = s.to_ascii_lowercase();
                }
                name.len += 1 + len;
                pos += 1 + len;
            }
            0xC0..=0xFF => {
                let target = (be16(msg, pos)? & 0x3FFF) as usize;
                hops += 1;
                if target >= pos || hops > super::MAX_LABELS {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

/// A TSIG record read from a message.
struct Record<'m> {
    /// Where the record starts.
    at: usize,
    key_name: Name,
    algorithm: Name,
    time_signed: u64,
    fudge: u16,
    mac: &'m [u8],
    original_id: u16,
    error: u16,
    other: &'m [u8],
}

/// Past a record at `pos` (`None` if it runs past the message): the offset of its type and
/// the offset past its RDATA.
fn skip_record(msg: &[u8], pos: usize) -> Option<(usize, usize)> {
    let mut p = pos;
    loop {
        let len = *msg.get(p)?;
        match len {
            0 => {
                p += 1;
                break;
            }
            1..=63 => p += 1 + len as usize,
            0xC0..=0xFF => {
                p += 2;
                break;
            }
            _ => return None,
        }
    }
    let rdlen = be16(msg, p + 8)? as usize;
    let end = p + 10 + rdlen;
    (end <= msg.len()).then_some((p, end))
}

/// Find the TSIG record: `Ok(None)` when there is none; `Err` when a TSIG record is not the
/// last record, there are two, or it does not parse.
fn find(msg: &[u8]) -> Result<Option<Record<'_>>, ()> {
    if msg.len() < 12 {
        return Err(());
    }
    let count = |at| be16(msg, at).unwrap_or(0) as usize;
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if ar == 0 {
        return Ok(None);
    }
    let mut pos = 12;
    for _ in 0..qd {
        let (_, end) = read_name(msg, pos).ok_or(())?;
        pos = end + 4;
    }
    let total = an + ns + ar;
    for i in 0..total {
        let (t, end) = skip_record(msg, pos).ok_or(())?;
        if be16(msg, t) == Some(TYPE_TSIG) {
            if i != total - 1 || i < an + ns || end != msg.len() {
                return Err(());
            }
            return parse_record(msg, pos, t, end).map(Some).ok_or(());
        }
        pos = end;
    }
    Ok(None)
}

fn parse_record(msg: &[u8], at: usize, t: usize, end: usize) -> Option<Record<'_>> {
    if be16(msg, t + 2)? != CLASS_ANY || msg.get(t + 4..t + 8)? != [0, 0, 0, 0] {
        return None;
    }
    let (key_name, _) = read_name(msg, at)?;
    let (algorithm, p) = read_name(msg, t + 10)?;
    let time_signed = be48(msg, p)?;
    let fudge = be16(msg, p + 6)?;
    let mac_len = be16(msg, p + 8)? as usize;
    let mac = msg.get(p + 10..p + 10 + mac_len)?;
    let p = p + 10 + mac_len;
    let original_id = be16(msg, p)?;
    let error = be16(msg, p + 2)?;
    let other_len = be16(msg, p + 4)? as usize;
    let other = msg.get(p + 6..p + 6 + other_len)?;
    (p + 6 + other_len == end).then_some(Record {
        at,
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Digest input: a MAC, as its length and bytes (§4.3.1, §4.3.3).
fn feed_mac(ctx: &mut hmac::Context, mac: &[u8]) {
    ctx.update(&(mac.len() as u16).to_be_bytes());
    ctx.update(mac);
}

/// Digest input: the message without its TSIG (`msg[..at]`), with the original ID and the
/// ARCOUNT it had before the TSIG was added.
fn feed_message(ctx: &mut hmac::Context, msg: &[u8], at: usize, original_id: u16, ar: u16) {
    ctx.update(&original_id.to_be_bytes());
    ctx.update(&msg[2..10]);
    ctx.update(&ar.to_be_bytes());
    ctx.update(&msg[12..at]);
}

/// Digest input: the TSIG variables (§4.3.3).
fn feed_variables(
    ctx: &mut hmac::Context,
    key_name: &[u8],
    algorithm: &[u8],
    time_signed: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) {
    ctx.update(key_name);
    ctx.update(&CLASS_ANY.to_be_bytes());
    ctx.update(&[0, 0, 0, 0]);
    ctx.update(algorithm);
    feed_timers(ctx, time_signed, fudge);
    ctx.update(&error.to_be_bytes());
    ctx.update(&(other.len() as u16).to_be_bytes());
    ctx.update(other);
}

/// Digest input: the TSIG timers (§4.3.1, later messages of a stream).
fn feed_timers(ctx: &mut hmac::Context, time_signed: u64, fudge: u16) {
    ctx.update(&time_signed.to_be_bytes()[2..]);
    ctx.update(&fudge.to_be_bytes());
}

/// The ARCOUNT of `msg` without its TSIG record.
fn ar_without_tsig(msg: &[u8]) -> u16 {
    be16(msg, 10).unwrap_or(1).saturating_sub(1)
}

/// Verify the TSIG of a request (RFC 8945 §5.2): `Ok(None)` for an unsigned message; the
/// checks go key (BADKEY), MAC (BADSIG, FORMERR for an impossible MAC length, BADTRUNC for a
/// truncated one), then time (BADTIME, against `now` in seconds since the Unix epoch).
pub fn verify_request(msg: &[u8], keys: &KeyRing, now: u64) -> Result<Option<Signed>, Rejected> {
    let rejected = |error, at, key| Rejected { error, at, key };
    let rr = match find(msg) {
        Ok(None) => return Ok(None),
        Ok(Some(rr)) => rr,
        Err(()) => return Err(rejected(TsigError::FormErr, None, None)),
    };
    let at = Some(rr.at);
    let Some(k) = keys.find(rr.key_name.wire()) else {
        return Err(rejected(TsigError::BadKey, at, None));
    };
    let key = &keys.keys[k];
    if Algorithm::from_wire(rr.algorithm.wire()) != Some(key.algorithm) {
        return Err(rejected(TsigError::BadKey, at, None));
    }
    let mut ctx = hmac::Context::with_key(&key.secret);
    feed_message(&mut ctx, msg, rr.at, rr.original_id, ar_without_tsig(msg));
    feed_variables(
        &mut ctx,
        &key.name,
        key.algorithm.wire(),
        rr.time_signed,
        rr.fudge,
        rr.error,
        rr.other,
    );
    verify_mac(ctx, key, rr.mac).map_err(|e| rejected(e, at, Some(k)))?;
    if now.abs_diff(rr.time_signed) > rr.fudge as u64 {
        return Err(rejected(TsigError::BadTime, at, Some(k)));
    }
    Ok(Some(Signed {
        key: k,
        mac: Mac::of(rr.mac),
        time_signed: rr.time_signed,
        fudge: rr.fudge,
        len: rr.at,
    }))
}

/// Check `mac` against the digest `ctx` has taken in: its length first (full MACs only), then
/// its value (in constant time, by ring).
fn verify_mac(ctx: hmac::Context, key: &Key, mac: &[u8]) -> Result<(), TsigError> {
    let full = key.algorithm.mac_len();
    if mac.len() > full || mac.len() < 10.max(full / 2) {
        return Err(TsigError::FormErr); // §5.2.2.1: lengths no MAC may have
    }
    if mac.len() < full {
        return Err(TsigError::BadTrunc); // allowed by the RFC, not by Meridian's policy
    }
    let tag = ctx.sign();
    if constant_time_eq(tag.as_ref(), mac) {
        Ok(())
    } else {
        Err(TsigError::BadSig)
    }
}

/// Equal slices, compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Cut a verified request to its length without the TSIG, ARCOUNT decremented.
pub fn strip(msg: &mut Vec<u8>, signed: &Signed) {
    let ar = ar_without_tsig(msg);
    msg.truncate(signed.len);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Append a TSIG record to the message `out[..len]` and count it in ARCOUNT; the new length,
/// or `None` when `out` has no room.
#[allow(clippy::too_many_arguments)]
fn put_record(
    out: &mut [u8],
    len: usize,
    key: &Key,
    time_signed: u64,
    fudge: u16,
    mac: &[u8],
    error: u16,
    other: &[u8],
) -> Option<usize> {
    let alg = key.algorithm.wire();
    let rdlen = alg.len() + 10 + mac.len() + 6 + other.len();
    let total = key.name.len() + 10 + rdlen;
    let rr = out.get_mut(len..len + total)?;
    let mut w = 0;
    let mut put = |b: &[u8]| {
        rr[w..w + b.len()].copy_from_slice(b);
        w += b.len();
    };
    put(&key.name);
    put(&TYPE_TSIG.to_be_bytes());
    put(&CLASS_ANY.to_be_bytes());
    put(&[0, 0, 0, 0]);
    put(&(rdlen as u16).to_be_bytes());
    put(alg);
    put(&time_signed.to_be_bytes()[2..]);
    put(&fudge.to_be_bytes());
    put(&(mac.len() as u16).to_be_bytes());
    put(mac);
    let id = [out[0], out[1]];
    let rr = &mut out[len + total - 6 - other.len()..len + total];
    rr[..2].copy_from_slice(&id);
    rr[2..4].copy_from_slice(&error.to_be_bytes());
    rr[4..6].copy_from_slice(&(other.len() as u16).to_be_bytes());
    rr[6..].copy_from_slice(other);
    let ar = be16(out, 10)?.checked_add(1)?;
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    Some(len + total)
}

/// Signs the responses to one signed request: one message, or each message of a stream in
/// order (RFC 8945 §5.3, §5.3.1). Every message is signed.
#[derive(Debug, Clone)]
pub struct Signer {
    key: Key,
    /// The request's MAC before the first message, then the last message's.
    prev: Mac,
    first: bool,
}

impl Signer {
    /// A signer of the responses to `request`, verified with `key`.
    pub fn new(key: &Key, request: &Signed) -> Signer {
        Signer {
            key: key.clone(),
            prev: request.mac,
            first: true,
        }
    }

    /// Sign the next response, the message `out[..len]`: append its TSIG (ARCOUNT counted) and
    /// return the new length; `None` when `out` has no room for the record.
    pub fn sign(&mut self, out: &mut [u8], len: usize, now: u64) -> Option<usize> {
        self.sign_with(out, len, now, 0, &[])
    }

    fn sign_with(
        &mut self,
        out: &mut [u8],
        len: usize,
        time_signed: u64,
        error: u16,
        other: &[u8],
    ) -> Option<usize> {
        // Room for the record first: a message that cannot take it is not signed.
        let need = self.key.record_len() + other.len();
        if len < 12 || out.len() < len + need {
            return None;
        }
        let mut ctx = hmac::Context::with_key(&self.key.secret);
        feed_mac(&mut ctx, self.prev.as_bytes());
        let id = u16::from_be_bytes([out[0], out[1]]);
        let ar = be16(out, 10)?;
        feed_message(&mut ctx, out, len, id, ar);
        if self.first {
            let alg = self.key.algorithm.wire();
            let name = &self.key.name;
            feed_variables(
                &mut ctx,
                name,
                alg,
                time_signed,
                DEFAULT_FUDGE,
                error,
                other,
            );
        } else {
            feed_timers(&mut ctx, time_signed, DEFAULT_FUDGE);
        }
        let tag = ctx.sign();
        self.prev = Mac::of(tag.as_ref());
        self.first = false;
        let mac = self.prev;
        put_record(
            out,
            len,
            &self.key,
            time_signed,
            DEFAULT_FUDGE,
            mac.as_bytes(),
            error,
            other,
        )
    }

    /// Bytes of the TSIG record each message gets: the room a message must keep for it.
    pub fn record_len(&self) -> usize {
        self.key.record_len()
    }

    /// The MAC of the last message signed (the request's before the first).
    pub fn last_mac(&self) -> Mac {
        self.prev
    }
}

impl Rejected {
    /// The key the request named, when it was found (for a BADSIG, BADTIME or BADTRUNC).
    pub fn key(&self) -> Option<usize> {
        self.key
    }

    /// Write the answer to the rejected `request` into `out` and return its length (RFC 8945
    /// §5.3.2): the header (ID, opcode and RD copied, QR set) and the question echoed; RCODE
    /// FORMERR without a TSIG for a malformed TSIG, else NOTAUTH and a TSIG carrying the
    /// error: with an empty MAC for BADKEY and BADSIG; signed for BADTIME (the server's time
    /// in Other Data, the request's Time Signed kept) and BADTRUNC. `None` when the request is
    /// too broken to answer (shorter than a header) or `out` too small.
    pub fn write_response(
        &self,
        request: &[u8],
        keys: &KeyRing,
        out: &mut [u8],
        now: u64,
    ) -> Option<usize> {
        let flags = be16(request, 2)?;
        // The question, when there is one that reads cleanly.
        let question_end = (be16(request, 4)? == 1)
            .then(|| {
                let (_, end) = read_name(request, 12)?;
                (end + 4 <= request.len()).then_some(end + 4)
            })
            .flatten();
        let q = question_end.map_or(&[][..], |e| &request[12..e]);
        let len = 12 + q.len();
        out.get_mut(12..len)?.copy_from_slice(q);
        let rcode = match self.error {
            TsigError::FormErr => 1,
            _ => RCODE_NOTAUTH,
        };
        let flags = 0x8000 | (flags & 0x7900) | rcode;
        let header = [
            request[0],
            request[1],
            (flags >> 8) as u8,
            flags as u8,
            0,
            question_end.is_some() as u8,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        out[..12].copy_from_slice(&header);
        let (
            Some(at),
            TsigError::BadKey | TsigError::BadSig | TsigError::BadTime | TsigError::BadTrunc,
        ) = (self.at, self.error)
        else {
            return Some(len);
        };
        let (t, end) = skip_record(request, at)?;
        let rr = parse_record(request, at, t, end)?;
        match (self.error, self.key.and_then(|k| keys.get(k))) {
            (TsigError::BadTime | TsigError::BadTrunc, Some(key)) => {
                let mut signer = Signer {
                    key: key.clone(),
                    prev: Mac::of(rr.mac),
                    first: true,
                };
                let server_time = now.to_be_bytes();
                let other: &[u8] = match self.error {
                    TsigError::BadTime => &server_time[2..],
                    _ => &[],
                };
                signer.sign_with(out, len, rr.time_signed, self.error.code(), other)
            }
            _ => {
                // Unsigned: the request's key name and algorithm echoed, an empty MAC.
                let alg = rr.algorithm.wire();
                let name = rr.key_name.wire();
                let rdlen = alg.len() + 16;
                let total = name.len() + 10 + rdlen;
                let w = out.get_mut(len..len + total)?;
                let mut p = 0;
                for part in [
                    name,
                    &TYPE_TSIG.to_be_bytes(),
                    &CLASS_ANY.to_be_bytes(),
                    &[0, 0, 0, 0],
                    &(rdlen as u16).to_be_bytes(),
                    alg,
                    &rr.time_signed.to_be_bytes()[2..],
                    &rr.fudge.to_be_bytes(),
                    &[0, 0],
                    &rr.original_id.to_be_bytes(),
                    &self.error.code().to_be_bytes(),
                    &[0, 0],
                ] {
                    w[p..p + part.len()].copy_from_slice(part);
                    p += part.len();
                }
                out[11] = 1;
                Some(len + total)
            }
        }
    }
}

/// Sign the query `msg` (a whole message, ID and counts set) with `key` at `now` (seconds
/// since the Unix epoch): a TSIG record is appended and counted in ARCOUNT. Returns the MAC,
/// which [`Verifier::new`] needs to check the answer.
pub fn sign_query(key: &Key, msg: &mut Vec<u8>, now: u64) -> Mac {
    let mut ctx = hmac::Context::with_key(&key.secret);
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let ar = be16(msg, 10).unwrap_or(0);
    feed_message(&mut ctx, msg, msg.len(), id, ar);
    let alg = key.algorithm.wire();
    feed_variables(&mut ctx, &key.name, alg, now, DEFAULT_FUDGE, 0, &[]);
    let mac = Mac::of(ctx.sign().as_ref());
    let len = msg.len();
    msg.resize(
        len + key.name.len() + 10 + alg.len() + 16 + mac.len as usize,
        0,
    );
    let end = put_record(msg, len, key, now, DEFAULT_FUDGE, mac.as_bytes(), 0, &[]);
    debug_assert_eq!(end, Some(msg.len()));
    mac
}

/// Checks the response, or the stream of responses, to a query signed by [`sign_query`].
///
/// Each signed message is checked (key, MAC, time against `now`); an unsigned message is
/// accepted between signed ones, at most [`MAX_UNSIGNED`] in a row, and is covered by the next
/// signed message's MAC. The first message must be signed, and so must the last: call
/// [`Verifier::finish`] once the stream has ended.
pub struct Verifier {
    key: Key,
    /// The query's MAC, then the last signed message's.
    prev: Mac,
    first: bool,
    /// The digest of the unsigned messages since the last signed one.
    pending: Option<hmac::Context>,
    unsigned: usize,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &self.key)
            .field("first", &self.first)
            .field("unsigned", &self.unsigned)
            .finish()
    }
}

impl Verifier {
    /// A verifier of the answers to a query signed with `key`, whose MAC was `query_mac`.
    pub fn new(key: &Key, query_mac: Mac) -> Verifier {
        Verifier {
            key: key.clone(),
            prev: query_mac,
            first: true,
            pending: None,
            unsigned: 0,
        }
    }

    /// Check the next response `msg`: `Ok(len)`, the length of the message without its TSIG
    /// (the whole message when it was an accepted unsigned one).
    pub fn verify(&mut self, msg: &[u8], now: u64) -> Result<usize, TsigError> {
        let rr = match find(msg) {
            Err(()) => return Err(TsigError::FormErr),
            Ok(None) => {
                if self.first || self.unsigned >= MAX_UNSIGNED {
                    return Err(TsigError::Unsigned);
                }
                let ctx = self.pending.get_or_insert_with(|| {
                    let mut c = hmac::Context::with_key(&self.key.secret);
                    feed_mac(&mut c, self.prev.as_bytes());
                    c
                });
                ctx.update(msg);
                self.unsigned += 1;
                return Ok(msg.len());
            }
            Ok(Some(rr)) => rr,
        };
        if rr.key_name.wire() != &*self.key.name
            || Algorithm::from_wire(rr.algorithm.wire()) != Some(self.key.algorithm)
        {
            return Err(TsigError::BadKey);
        }
        if rr.error != 0 && rr.mac.is_empty() {
            return Err(TsigError::Peer(rr.error)); // an unsigned BADKEY or BADSIG answer
        }
        let mut ctx = match self.pending.take() {
            Some(c) => c,
            None => {
                let mut c = hmac::Context::with_key(&self.key.secret);
                feed_mac(&mut c, self.prev.as_bytes());
                c
            }
        };
        feed_message(&mut ctx, msg, rr.at, rr.original_id, ar_without_tsig(msg));
        if self.first {
            let alg = self.key.algorithm.wire();
            let (t, f, e, o) = (rr.time_signed, rr.fudge, rr.error, rr.other);
            feed_variables(&mut ctx, &self.key.name, alg, t, f, e, o);
        } else {
            feed_timers(&mut ctx, rr.time_signed, rr.fudge);
        }
        verify_mac(ctx, &self.key, rr.mac)?;
        if rr.error != 0 {
            return Err(TsigError::Peer(rr.error)); // a signed BADTIME or BADTRUNC answer
        }
        if now.abs_diff(rr.time_signed) > rr.fudge as u64 {
            return Err(TsigError::BadTime);
        }
        self.prev = Mac::of(rr.mac);
        self.first = false;
        self.unsigned = 0;
        Ok(rr.at)
    }

    /// After the last message: an error when it was unsigned (or no message came).
    pub fn finish(&self) -> Result<(), TsigError> {
        if self.first || self.pending.is_some() {
            Err(TsigError::Unsigned)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
