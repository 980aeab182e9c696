//! What the sockets defend with, published as one unit: the rate limiter (`[rrl]`) and the
//! cookie secrets (`[cookies]`).
//!
//! A [`Defence`] is immutable and swapped whole behind an `ArcSwap`, like the snapshot: the UDP
//! workers load it once per batch (one atomic load) and TCP connections once per query. Writers
//! are the secret rotation (a task of the server, every `secret_lifetime`) and reloads
//! ([`Shield::configure`]); they build the next `Defence` aside (`rcu`), keeping the rate
//! limiter's table when `[rrl]` did not change (its buckets survive a reload) and the secrets
//! when `[cookies]` did not. A new random secret makes the current one the previous one, still
//! accepted until the next change: a cookie handed out just before is not lost.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::rrl::{CookieSettings, RrlSettings};
use crate::dns::cookie::CookieKeys;
use crate::dns::rrl::RateLimiter;
use crate::wire::cookie::{Secret, Secrets};

/// The defences in force.
#[derive(Debug, Default)]
pub struct Defence {
    /// The rate limiter; `None` with `[rrl] enabled = false`.
    pub rrl: Option<Arc<RateLimiter>>,
    /// The cookie secrets; `None` with `[cookies] enabled = false`.
    pub cookies: Option<CookieKeys>,
    /// The settings the cookies were made from.
    cookie_settings: Option<CookieSettings>,
}

/// The published [`Defence`], shared by the server's sockets.
#[derive(Clone)]
pub struct Shield {
    current: Arc<ArcSwap<Defence>>,
}

impl std::fmt::Debug for Shield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Shield").field(&self.current.load()).finish()
    }
}

/// Random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the system's random generator");
    out
}

fn new_limiter(s: &RrlSettings) -> Arc<RateLimiter> {
    let seed: [u8; 16] = random();
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    Arc::new(RateLimiter::new(s, [word(&seed[..8]), word(&seed[8..])]))
}

impl Shield {
    /// Defences for `[rrl]` and `[cookies]` (`None`: turned off).
    pub fn new(rrl: Option<&RrlSettings>, cookies: Option<&CookieSettings>) -> Shield {
        let shield = Shield {
            current: Arc::new(ArcSwap::from_pointee(Defence::default())),
        };
        shield.configure(rrl, cookies);
        shield
    }

    /// The published defences, for a worker's `arc_swap::Cache`.
    pub fn published(&self) -> Arc<ArcSwap<Defence>> {
        Arc::clone(&self.current)
    }

    /// The defences in force now.
    pub fn load(&self) -> Arc<Defence> {
        self.current.load_full()
    }

    /// Follow a reload: a new table only when `[rrl]` changed, new secrets only when the fixed
    /// secret changed (the old one stays accepted) or cookies were off.
    pub fn configure(&self, rrl: Option<&RrlSettings>, cookies: Option<&CookieSettings>) {
        self.current.rcu(|d| {
            let rrl = match (&d.rrl, rrl) {
                (Some(kept), Some(s)) if kept.settings() == s => Some(Arc::clone(kept)),
                (_, Some(s)) => Some(new_limiter(s)),
                (_, None) => None,
            };
            let keys = cookies.map(|s| {
                let secrets = match (&d.cookies, s.secret) {
                    // The same fixed secret, or random secrets as before: kept.
                    (Some(k), Some(fixed)) if k.secrets.current == fixed => k.secrets,
                    (Some(k), None)
                        if d.cookie_settings
                            .as_ref()
                            .is_some_and(|o| o.secret.is_none()) =>
                    {
                        k.secrets
                    }
                    (old, secret) => Secrets {
                        current: secret.unwrap_or_else(random),
                        previous: old.map(|k| k.secrets.current),
                    },
                };
                CookieKeys {
                    secrets,
                    strict: s.strict,
                }
            });
            Defence {
                rrl,
                cookies: keys,
                cookie_settings: cookies.cloned(),
            }
        });
    }

    /// How often the cookie secret changes; `None` when it never does by itself (cookies off, or
    /// a fixed secret).
    pub fn secret_lifetime(&self) -> Option<Duration> {
        let d = self.current.load();
        d.cookie_settings
            .as_ref()
            .filter(|s| s.secret.is_none())
            .map(|s| s.secret_lifetime)
    }

    /// Draw a new random secret; the current one becomes the previous one. Nothing changes with
    /// a fixed secret or cookies off.
    pub fn rotate(&self) {
        self.rotate_to(random());
    }

    /// [`Shield::rotate`] to a given secret.
    pub fn rotate_to(&self, next: Secret) {
        self.current.rcu(|d| {
            let cookies = match (&d.cookies, &d.cookie_settings) {
                (Some(k), Some(s)) if s.secret.is_none() => Some(CookieKeys {
                    secrets: Secrets {
                        current: next,
                        previous: Some(k.secrets.current),
                    },
                    strict: k.strict,
                }),
                _ => d.cookies,
            };
            Defence {
                rrl: d.rrl.clone(),
                cookies,
                cookie_settings: d.cookie_settings.clone(),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(secret: Option<[u8; 16]>) -> CookieSettings {
        CookieSettings {
            strict: false,
            secret_lifetime: Duration::from_secs(60),
            secret,
        }
    }

    #[test]
    fn reloads_keep_what_did_not_change() {
        let rrl = RrlSettings::default();
        let c = cookies(None);
        let shield = Shield::new(Some(&rrl), Some(&c));
        let first = shield.load();
        assert_eq!(shield.secret_lifetime(), Some(Duration::from_secs(60)));
        // The same settings: the same table, the same secrets.
        shield.configure(Some(&rrl), Some(&c));
        let same = shield.load();
        assert!(Arc::ptr_eq(
            first.rrl.as_ref().unwrap(),
            same.rrl.as_ref().unwrap()
        ));
        assert_eq!(first.cookies, same.cookies);
        // Another rate: a new table; cookies untouched.
        let faster = RrlSettings {
            rate: 500,
            ..rrl.clone()
        };
        shield.configure(Some(&faster), Some(&c));
        let now = shield.load();
        assert_eq!(now.rrl.as_ref().unwrap().settings().rate, 500);
        assert_eq!(now.cookies, first.cookies);
        // Off and on again.
        shield.configure(None, None);
        assert!(shield.load().rrl.is_none() && shield.load().cookies.is_none());
        assert_eq!(shield.secret_lifetime(), None);
    }

    #[test]
    fn rotation_keeps_the_previous_secret_and_a_fixed_secret_does_not_rotate() {
        let shield = Shield::new(None, Some(&cookies(None)));
        let before = shield.load().cookies.unwrap().secrets;
        shield.rotate_to([9; 16]);
        let after = shield.load().cookies.unwrap().secrets;
        assert_eq!(after.current, [9; 16]);
        assert_eq!(after.previous, Some(before.current));
        // A fixed secret: no rotation; a new fixed secret by reload keeps the old as previous.
        shield.configure(None, Some(&cookies(Some([1; 16]))));
        assert_eq!(shield.secret_lifetime(), None);
        let fixed = shield.load().cookies.unwrap().secrets;
        assert_eq!((fixed.current, fixed.previous), ([1; 16], Some([9; 16])));
        shield.rotate_to([2; 16]);
        assert_eq!(shield.load().cookies.unwrap().secrets, fixed);
        shield.configure(None, Some(&cookies(Some([3; 16]))));
        let s = shield.load().cookies.unwrap().secrets;
        assert_eq!((s.current, s.previous), ([3; 16], Some([1; 16])));
    }
}
