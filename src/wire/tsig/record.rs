//! The TSIG record on the wire: finding it in a message, reading and writing it, and the
//! digest's input (RFC 8945 §4.3), for the server and client sides.

use ring::hmac;

use super::{CLASS_ANY, Key, TYPE_TSIG, TsigError};

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub(super) fn be48(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 6)?;
    Some(s.iter().fold(0u64, |acc, &x| acc << 8 | x as u64))
}

/// A name read from a message (compression followed), lowercased.
pub(super) struct Name {
    pub(super) bytes: [u8; crate::wire::MAX_NAME],
    pub(super) len: usize,
}

impl Name {
    pub(super) fn wire(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Read the name at `pos`, following compression pointers backwards; returns it and the offset
/// past it in the record.
pub(super) fn read_name(msg: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut name = Name {
        bytes: [0; crate::wire::MAX_NAME],
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
                if target >= pos || hops > crate::wire::MAX_LABELS {
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
pub(super) struct Record<'m> {
    /// Where the record starts.
    pub(super) at: usize,
    pub(super) key_name: Name,
    pub(super) algorithm: Name,
    pub(super) time_signed: u64,
    pub(super) fudge: u16,
    pub(super) mac: &'m [u8],
    pub(super) original_id: u16,
    pub(super) error: u16,
    pub(super) other: &'m [u8],
}

/// Past a record at `pos` (`None` if it runs past the message): the offset of its type and
/// the offset past its RDATA.
pub(super) fn skip_record(msg: &[u8], pos: usize) -> Option<(usize, usize)> {
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
pub(super) fn find(msg: &[u8]) -> Result<Option<Record<'_>>, ()> {
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

pub(super) fn parse_record(msg: &[u8], at: usize, t: usize, end: usize) -> Option<Record<'_>> {
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
pub(super) fn feed_mac(ctx: &mut hmac::Context, mac: &[u8]) {
    ctx.update(&(mac.len() as u16).to_be_bytes());
    ctx.update(mac);
}

/// Digest input: the message without its TSIG (`msg[..at]`), with the original ID and the
/// ARCOUNT it had before the TSIG was added.
pub(super) fn feed_message(
    ctx: &mut hmac::Context,
    msg: &[u8],
    at: usize,
    original_id: u16,
    ar: u16,
) {
    ctx.update(&original_id.to_be_bytes());
    ctx.update(&msg[2..10]);
    ctx.update(&ar.to_be_bytes());
    ctx.update(&msg[12..at]);
}

/// Digest input: the TSIG variables (§4.3.3).
pub(super) fn feed_variables(
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
pub(super) fn feed_timers(ctx: &mut hmac::Context, time_signed: u64, fudge: u16) {
    ctx.update(&time_signed.to_be_bytes()[2..]);
    ctx.update(&fudge.to_be_bytes());
}

/// The ARCOUNT of `msg` without its TSIG record.
pub(super) fn ar_without_tsig(msg: &[u8]) -> u16 {
    be16(msg, 10).unwrap_or(1).saturating_sub(1)
}

/// Check `mac` against the digest `ctx` has taken in: its length first (full MACs only), then
/// its value (in constant time, by ring).
pub(super) fn verify_mac(ctx: hmac::Context, key: &Key, mac: &[u8]) -> Result<(), TsigError> {
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
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Append a TSIG record to the message `out[..len]` and count it in ARCOUNT; the new length,
/// or `None` when `out` has no room.
#[allow(clippy::too_many_arguments)]
pub(super) fn put_record(
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
