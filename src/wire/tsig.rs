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
//!
//! Files: this one holds the keys, MACs and errors; `record` reads and writes the TSIG record
//! and feeds the digest; `server` and `client` are the two sides; `tests` checks them against
//! messages kdig, dig and knotd signed.

use std::fmt;
use std::sync::Arc;

use ring::hmac;

mod client;
mod record;
mod server;

pub use client::{Verifier, sign_query};
pub use server::{Signer, strip, verify_request};

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

#[cfg(test)]
mod tests;
