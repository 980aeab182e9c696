//! The client side: a query signed, and its response (or stream of responses) checked.

use std::fmt;

use ring::hmac;

use super::record::{
    ar_without_tsig, be16, feed_mac, feed_message, feed_timers, feed_variables, find, put_record,
    verify_mac,
};
use super::{Algorithm, DEFAULT_FUDGE, Key, MAX_UNSIGNED, Mac, TsigError};

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
