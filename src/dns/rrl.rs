//! Response rate limiting (RRL) of UDP answers, in the manner of Knot's and NSD's.
//!
//! A UDP answer can be sent to a forged source address: an attacker asks in a victim's name and
//! the server floods the victim, with answers larger than the questions. RRL bounds what any
//! one client prefix (the source address's first `ipv4_prefix` / `ipv6_prefix` bits) gets per
//! second in each [`Class`] of response; past it, responses are dropped, except every `slip`th,
//! which goes out truncated (TC=1, question only: smaller than the query's answer), so that a
//! real client behind a limited prefix asks again over TCP, which cannot be forged and is never
//! limited. Classes are counted apart, so that a flood of NXDOMAIN from a resolver's prefix
//! does not starve its positive answers.
//!
//! The table is [`RateLimiter`]: a fixed number of 64-bit buckets, allocated once, shared by
//! every UDP worker and updated with one compare-and-swap: no lock, no allocation. A bucket is
//! found by one keyed hash of (prefix, class) (the key is random per table, so an attacker
//! cannot aim collisions), and packs a 14-bit tag of that hash, a 22-bit time stamp (in ticks
//! of 4 ms) and a 28-bit token count (in units of 1/250 token). Tokens refill at `rate` a
//! second up to `burst`; each response takes one. A bucket taken over by another key starts
//! full. Shared rather than per worker: the kernel spreads one client's datagrams over the
//! SO_REUSEPORT sockets by their ports, so only a shared table holds every worker to the same
//! rate for a prefix (Knot's choice too); buckets of distinct prefixes sit in distinct cache
//! lines, so ordinary traffic does not contend.
//!
//! Pure: the time comes in as an argument ([`Tick`]); the UDP workers read a coarse monotonic
//! clock once per batch.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::answer::Outcome;
use crate::config::rrl::RrlSettings;
use crate::wire::{Rcode, TYPE_ANY};

/// A response kind, counted apart from the others (Knot's and NSD's classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// NOERROR with answer records.
    Positive = 0,
    /// NOERROR without answer records: NODATA and referrals.
    Empty = 1,
    NxDomain = 2,
    /// Any other RCODE: REFUSED (not our zone), FORMERR, SERVFAIL, NOTIMP, BADVERS, ...
    Error = 3,
    /// A response of [`LARGE`] bytes or more: the amplifier's favourite.
    Large = 4,
    /// An answer to a query of type ANY.
    Any = 5,
}

/// Responses this long or longer are [`Class::Large`] (Knot's threshold).
pub const LARGE: usize = 1024;

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Positive,
        Class::Empty,
        Class::NxDomain,
        Class::Error,
        Class::Large,
        Class::Any,
    ];

    /// The label the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Positive => "positive",
            Class::Empty => "empty",
            Class::NxDomain => "nxdomain",
            Class::Error => "error",
            Class::Large => "large",
            Class::Any => "any",
        }
    }

    /// The class of the response `response[..o.len]` described by `o`.
    #[inline]
    pub fn of(o: &Outcome, response: &[u8]) -> Class {
        match o.rcode {
            Rcode::NoError => {}
            Rcode::NxDomain => return Class::NxDomain,
            _ => return Class::Error,
        }
        if o.qtype == TYPE_ANY {
            Class::Any
        } else if o.len >= LARGE {
            Class::Large
        } else if response.get(6..8).is_some_and(|an| an == [0, 0]) {
            Class::Empty
        } else {
            Class::Positive
        }
    }
}

/// What becomes of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Within the rate (or exempt): sent as it is.
    Pass,
    /// Limited: not sent.
    Drop,
    /// Limited: sent truncated.
    Slip,
}

impl Action {
    /// The label the metrics use (for the limited ones).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "dropped",
            Action::Slip => "slipped",
        }
    }
}

/// Time for the limiter, in ticks of [`TICK_MS`] milliseconds of a monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick(pub u64);

/// Milliseconds per [`Tick`].
pub const TICK_MS: u64 = 4;
/// Token units per token: a tick adds `rate` units, `rate` tokens a second.
const UNITS: u64 = 1000 / TICK_MS;

const TAG_BITS: u32 = 14;
const TIME_BITS: u32 = 22;
const TOKEN_BITS: u32 = 28;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
/// A stamp up to this many ticks ahead of `now` was written by another worker whose clock read
/// was a little later: no time has passed. Further ahead, it is an old stamp wrapped around.
const AHEAD: u64 = 256;
/// Tries of the compare-and-swap before the response is taken as limited (only a flood on one
/// bucket from every worker at once contends that long).
const TRIES: usize = 8;

const _: () = assert!(TAG_BITS + TIME_BITS + TOKEN_BITS == 64);
const _: () = assert!(crate::config::rrl::MAX_BURST as u64 * UNITS <= TOKEN_MASK);

/// A client's prefix, as the table keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    bits: u128,
    v6: bool,
}

/// The bucket table and the settings it limits with. Shared by every UDP worker.
pub struct RateLimiter {
    buckets: Box<[AtomicU64]>,
    /// Hash keys, random per table.
    keys: [u64; 2],
    /// Token units a tick adds.
    rate: u64,
    /// Token units a full bucket holds.
    capacity: u64,
    slip: u32,
    v4_mask: u32,
    v6_mask: u128,
    exempt4: Box<[(u32, u32)]>,
    exempt6: Box<[(u128, u128)]>,
    settings: RrlSettings,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The first `len` bits of an address of `width` bits.
fn mask<T>(len: u8, width: u32, all: T) -> T
where
    T: std::ops::Shl<u32, Output = T> + Copy + Default,
{
    if len == 0 {
        T::default()
    } else {
        all << (width - len as u32)
    }
}

impl RateLimiter {
    /// An empty table for `settings`, its hash keyed by `seed` (random, for attackers not to
    /// aim collisions).
    pub fn new(settings: &RrlSettings, seed: [u64; 2]) -> RateLimiter {
        let mut exempt4 = Vec::new();
        let mut exempt6 = Vec::new();
        for net in &settings.exempt {
            match net {
                ipnet::IpNet::V4(n) => {
                    let m = mask(n.prefix_len(), 32, u32::MAX);
                    exempt4.push((u32::from(n.network()) & m, m));
                }
                ipnet::IpNet::V6(n) => {
                    let m = mask(n.prefix_len(), 128, u128::MAX);
                    exempt6.push((u128::from(n.network()) & m, m));
                }
            }
        }
        RateLimiter {
            buckets: (0..settings.table_size.max(1))
                .map(|_| AtomicU64::new(0))
                .collect(),
            keys: [seed[0] | 1, seed[1] | 1],
            rate: settings.rate as u64,
            capacity: settings.burst as u64 * UNITS,
            slip: settings.slip,
            v4_mask: mask(settings.ipv4_prefix, 32, u32::MAX),
            v6_mask: mask(settings.ipv6_prefix, 128, u128::MAX),
            exempt4: exempt4.into_boxed_slice(),
            exempt6: exempt6.into_boxed_slice(),
            settings: settings.clone(),
        }
    }

    /// The settings the table was made for.
    pub fn settings(&self) -> &RrlSettings {
        &self.settings
    }

    /// The prefix `client` is counted under, or `None` when it is exempt. (No recursion, so
    /// that it inlines: this is every UDP answer's cost when its client is exempt.)
    #[inline(always)]
    pub fn prefix(&self, client: IpAddr) -> Option<Prefix> {
        let v6 = match client {
            IpAddr::V4(a) => Err(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Err(u32::from(v4)),
                None => Ok(u128::from(a)),
            },
        };
        match v6 {
            Err(a) => {
                if self.exempt4.iter().any(|&(net, m)| a & m == net) {
                    return None;
                }
                Some(Prefix {
                    bits: (a & self.v4_mask) as u128,
                    v6: false,
                })
            }
            Ok(a) => {
                if self.exempt6.iter().any(|&(net, m)| a & m == net) {
                    return None;
                }
                Some(Prefix {
                    bits: a & self.v6_mask,
                    v6: true,
                })
            }
        }
    }

    /// Take a token for a `class` response to `prefix` at `now`: whether it is within the rate.
    #[inline]
    pub fn take(&self, prefix: Prefix, class: Class, now: Tick) -> bool {
        let lo = prefix.bits as u64 ^ self.keys[0];
        let hi =
            (prefix.bits >> 64) as u64 ^ self.keys[1] ^ (class as u64) << 56 ^ prefix.v6 as u64;
        let wide = (lo as u128).wrapping_mul(hi as u128);
        let h = (wide as u64) ^ (wide >> 64) as u64;
        let slot = ((h as u128 * self.buckets.len() as u128) >> 64) as usize;
        let tag = h & ((1 << TAG_BITS) - 1);
        let now = now.0 & TIME_MASK;
        let bucket = &self.buckets[slot];
        let mut seen = bucket.load(Ordering::Relaxed);
        for _ in 0..TRIES {
            let (pass, next) = self.step(seen, tag, now);
            match bucket.compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return pass,
                Err(current) => seen = current,
            }
        }
        false
    }

    /// A bucket's next state after one response at `now`, and whether the response passes.
    #[inline(always)]
    fn step(&self, state: u64, tag: u64, now: u64) -> (bool, u64) {
        let (t, stamp, tokens) = (
            state >> (TIME_BITS + TOKEN_BITS),
            (state >> TOKEN_BITS) & TIME_MASK,
            state & TOKEN_MASK,
        );
        let (mut tokens, stamp) = if state == 0 || t != tag {
            (self.capacity, now) // a new key: a full bucket
        } else {
            let elapsed = now.wrapping_sub(stamp) & TIME_MASK;
            if elapsed > TIME_MASK - AHEAD {
                (tokens, stamp) // stamped a moment "later" by another worker
            } else {
                ((tokens + elapsed * self.rate).min(self.capacity), now)
            }
        };
        let pass = tokens >= UNITS;
        if pass {
            tokens -= UNITS;
        }
        (
            pass,
            tag << (TIME_BITS + TOKEN_BITS) | stamp << TOKEN_BITS | tokens,
        )
    }

    /// What becomes of a limited response, the `n`th limited one of its worker (counted from
    /// 1): every `slip`th is truncated, the others dropped.
    #[inline]
    pub fn limited(&self, n: u32) -> Action {
        if self.slip > 0 && n.is_multiple_of(self.slip) {
            Action::Slip
        } else {
            Action::Drop
        }
    }
}

/// Cut the response `buf[..len]` to what a slipped response carries: the header with TC=1 and
/// no records but the question and the OPT record (when it has one: its payload size,
/// extended RCODE and options stay). Returns the new length. The response is the engine's own,
/// so its sections are well formed; on anything else it is cut to the header and question.
pub fn slip(buf: &mut [u8], len: usize) -> usize {
    let msg = &buf[..len];
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    if len < 12 {
        return len;
    }
    let qd = word(4);
    let records = word(6) as u32 + word(8) as u32 + word(10) as u32;
    let mut pos = 12;
    if qd == 1 {
        match crate::wire::skip_name(msg, pos) {
            Some(p) if p + 4 <= len => pos = p + 4,
            _ => pos = 12,
        }
    }
    let question_end = pos;
    // Find the OPT record (the last of the additional section but for a TSIG).
    let mut opt = None;
    for _ in 0..records {
        let Some(p) = crate::wire::skip_name(msg, pos) else {
            break;
        };
        if p + 10 > len {
            break;
        }
        let end = p + 10 + word(p + 8) as usize;
        if end > len {
            break;
        }
        if word(p) == crate::wire::TYPE_OPT && msg[pos] == 0 {
            opt = Some(pos..end);
        }
        pos = end;
    }
    let mut end = question_end;
    if let Some(r) = opt {
        buf.copy_within(r.clone(), question_end);
        end += r.len();
    }
    let qd = if question_end > 12 { 1u16 } else { 0 };
    buf[2] |= 0x02; // TC
    buf[4..6].copy_from_slice(&qd.to_be_bytes());
    buf[6..10].fill(0);
    buf[10..12].copy_from_slice(&u16::from(end > question_end).to_be_bytes());
    end
}

#[cfg(test)]
mod tests;
