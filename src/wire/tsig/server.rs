//! The server side: a request's TSIG checked, its responses signed (one message or a stream),
//! and the error answers of RFC 8945 §5.3.2.

use ring::hmac;

use super::record::{
    ar_without_tsig, be16, feed_mac, feed_message, feed_timers, feed_variables, find, parse_record,
    put_record, skip_record, verify_mac,
};
use super::{
    Algorithm, CLASS_ANY, DEFAULT_FUDGE, Key, KeyRing, Mac, RCODE_NOTAUTH, Rejected, Signed,
    TYPE_TSIG, TsigError,
};

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

/// Cut a verified request to its length without the TSIG, ARCOUNT decremented.
pub fn strip(msg: &mut Vec<u8>, signed: &Signed) {
    let ar = ar_without_tsig(msg);
    msg.truncate(signed.len);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
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
        // The question, when there is one that reads cleanly and without compression: a
        // pointer points into the request, and copied into this response it would point at
        // other bytes (a pointer to the header made an answer no client could read: found by
        // fuzzing). The query parser takes no compressed question either.
        let question_end = (be16(request, 4)? == 1)
            .then(|| {
                let end =
                    crate::wire::read_qname(request, 12, &mut crate::wire::NameBuf::default())?;
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
