//! The `[admin]` table: where the admin HTTP API listens and the token that guards it.
//!
//! The admin API can drain endpoints and reload the configuration, so it must never be open on a
//! public address: a `listen` address that is not loopback is refused unless a token is
//! configured (inline, or read from an environment variable when the configuration is loaded).
//! Without a token, mutating calls are allowed only because the listener is loopback-only.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

/// `[admin]`: the admin HTTP API (status, explain, overrides, reload, metrics).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address the admin HTTP API listens on, e.g. `"127.0.0.1:9353"`. No admin listener when
    /// absent. A non-loopback address needs `token` or `token_env`.
    pub listen: Option<Spanned<String>>,
    /// Bearer token that mutating calls (`POST`) must present as `Authorization: Bearer TOKEN`.
    pub token: Option<Spanned<String>>,
    /// Name of an environment variable holding the token (instead of `token`, so the secret
    /// stays out of the file). Read whenever the configuration is loaded.
    pub token_env: Option<Spanned<String>>,
}

/// Validated admin settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// The bearer token mutating calls need; `None` only on a loopback address.
    pub token: Option<String>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Validate `[admin]`; every problem goes to `err(byte offset, message)`. `None` when there is
/// no listener (or the table has errors).
pub fn compile(raw: &AdminConfig, err: &mut dyn FnMut(usize, String)) -> Option<Admin> {
    let (token, ok) = match secret(&raw.token, &raw.token_env, "admin", err) {
        Ok(t) => (t, true),
        Err(()) => (None, false),
    };
    let Some(l) = &raw.listen else {
        return None;
    };
    let listen = match SocketAddr::from_str(l.get_ref()) {
        Ok(a) => a,
        Err(_) => {
            err(
                l.span().start,
                format!(
                    "admin.listen: {:?} is not an address:port (IPv6 in brackets)",
                    l.get_ref()
                ),
            );
            return None;
        }
    };
    if !is_loopback(&listen) && token.is_none() && ok {
        err(
            l.span().start,
            format!(
                "admin.listen: {listen} is not a loopback address and no token is configured \
                 (set admin.token or admin.token_env): never an open admin API on a public address"
            ),
        );
        return None;
    }
    ok.then_some(Admin { listen, token })
}

/// A bearer token given inline (`token`) or by the name of an environment variable holding it
/// (`token_env`), read now, for the table `table`; `Ok(None)` when neither is set. Problems (both
/// set, empty, unset variable) go to `err` and give `Err`.
pub(super) fn secret(
    token: &Option<Spanned<String>>,
    token_env: &Option<Spanned<String>>,
    table: &str,
    err: &mut dyn FnMut(usize, String),
) -> Result<Option<String>, ()> {
    match (token, token_env) {
        (Some(_), Some(e)) => {
            err(
                e.span().start,
                format!("{table}.token_env: set either token or token_env, not both"),
            );
            Err(())
        }
        (Some(t), None) if t.get_ref().trim().is_empty() => {
            err(t.span().start, format!("{table}.token: the token is empty"));
            Err(())
        }
        (Some(t), None) => Ok(Some(t.get_ref().clone())),
        (None, Some(e)) => match std::env::var(e.get_ref()) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v)),
            Ok(_) => {
                err(
                    e.span().start,
                    format!(
                        "{table}.token_env: environment variable {} is empty",
                        e.get_ref()
                    ),
                );
                Err(())
            }
            Err(_) => {
                err(
                    e.span().start,
                    format!(
                        "{table}.token_env: environment variable {} is not set (or not UTF-8)",
                        e.get_ref()
                    ),
                );
                Err(())
            }
        },
        (None, None) => Ok(None),
    }
}

/// Whether only this host can reach `addr` (IPv4-mapped loopback counts).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        listen: Option<&str>,
        token: Option<&str>,
        env: Option<&str>,
    ) -> (Option<Admin>, Vec<String>) {
        let raw = AdminConfig {
            listen: listen.map(|s| Spanned::new(0..0, s.to_string())),
            token: token.map(|s| Spanned::new(0..0, s.to_string())),
            token_env: env.map(|s| Spanned::new(0..0, s.to_string())),
        };
        let mut errs = Vec::new();
        let a = compile(&raw, &mut |_, m| errs.push(m));
        (a, errs)
    }

    #[test]
    fn loopback_without_token_is_allowed() {
        for l in ["127.0.0.1:9353", "[::1]:9353", "[::ffff:127.0.0.1]:1"] {
            let (a, e) = run(Some(l), None, None);
            assert!(e.is_empty(), "{l}: {e:?}");
            assert_eq!(a.unwrap().token, None);
        }
    }

    #[test]
    fn public_without_token_is_refused() {
        for l in ["0.0.0.0:9353", "[::]:9353", "192.0.2.1:80"] {
            let (a, e) = run(Some(l), None, None);
            assert!(a.is_none());
            assert!(e[0].contains("never an open admin API"), "{e:?}");
        }
        let (a, e) = run(Some("0.0.0.0:9353"), Some("s3cret"), None);
        assert!(e.is_empty());
        assert_eq!(a.unwrap().token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn token_sources() {
        let (_, e) = run(Some("127.0.0.1:1"), Some("a"), Some("B"));
        assert!(e[0].contains("not both"), "{e:?}");
        let (_, e) = run(Some("127.0.0.1:1"), Some("  "), None);
        assert!(e[0].contains("empty"), "{e:?}");
        let (_, e) = run(
            Some("0.0.0.0:1"),
            None,
            Some("MERIDIAN_TEST_SURELY_UNSET_VAR"),
        );
        assert_eq!(
            e.len(),
            1,
            "one error, not also the public-address one: {e:?}"
        );
        assert!(e[0].contains("not set"), "{e:?}");
        let (a, e) = run(None, None, None);
        assert!(a.is_none() && e.is_empty());
        let (_, e) = run(Some("localhost:80"), None, None);
        assert!(e[0].contains("not an address"), "{e:?}");
    }
}
