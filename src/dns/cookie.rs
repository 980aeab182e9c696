//! DNS Cookies in the answer engine (RFC 7873 §5.2, server cookies of RFC 9018).
//!
//! A query's COOKIE option is checked on the general path (a query with options never takes the
//! prepared or kept shapes): a client cookie alone gets a fresh server cookie; a valid server
//! cookie comes back unchanged while it is young, renewed otherwise; an invalid one is treated
//! as a client cookie alone (a fresh server cookie, the normal answer), or, with `[cookies]
//! strict`, answered BADCOOKIE with a fresh server cookie and nothing else. The verdict is kept
//! in [`super::answer::Work::cookie`]: the UDP workers exempt clients with a valid server cookie
//! from rate limiting (their source address is not spoofed) and count every verdict.
//!
//! The secrets come with the query's [`super::answer::Work`] (the worker copies them from the
//! shield once per batch), and the time is read only when a query carries a cookie.

use std::net::IpAddr;

use crate::wire::Edns;
use crate::wire::cookie::{Secrets, Verdict, check};

/// The cookie settings a worker answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieKeys {
    pub secrets: Secrets,
    /// Answer BADCOOKIE to an invalid server cookie instead of answering the query.
    pub strict: bool,
}

/// Check the COOKIE of a parsed query from `client` and put the cookie to send back in its place;
/// the verdict, or `None` when the query has none or cookies are off (then no cookie is sent
/// either). `now` is Unix seconds, or 0: then the clock is read, and kept there for the rest of
/// the query's work.
#[inline]
pub fn process(
    keys: Option<&CookieKeys>,
    edns: &mut Option<Edns>,
    client: IpAddr,
    now: &mut u64,
) -> Option<Verdict> {
    let e = edns.as_mut()?;
    let cookie = e.cookie.as_mut()?;
    let Some(keys) = keys else {
        e.cookie = None;
        return None;
    };
    if *now == 0 {
        *now = crate::wire::unix_now();
    }
    Some(check(&keys.secrets, cookie, client, *now))
}

/// Whether the query is refused with BADCOOKIE: an invalid server cookie under `strict`.
#[inline]
pub fn refuse(keys: Option<&CookieKeys>, verdict: Option<Verdict>) -> bool {
    verdict == Some(Verdict::Invalid) && keys.is_some_and(|k| k.strict)
}
