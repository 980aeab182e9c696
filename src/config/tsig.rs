//! `[[tsig_key]]`: the TSIG keys (RFC 8945) the server knows, and the `keys` of a zone's
//! `[zone.transfer]` that name them.
//!
//! A key has a name (a domain name, as both sides spell it), an algorithm and a base64 secret,
//! given inline (`secret`), by the name of an environment variable (`secret_env`) or by a file
//! (`secret_file`, relative to the configuration file's folder), exactly one of them, read
//! whenever the configuration is loaded. Problems are reported with their place like the rest of
//! the configuration; no message, log line or `Debug` output ever holds a secret.

use std::fmt;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;
use toml::Spanned;

use crate::wire::tsig::{Algorithm, Key, KeyRing, name_to_wire};

/// One `[[tsig_key]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// The key's name, a domain name both sides use for it, e.g. `"xfr."`.
    pub name: Spanned<String>,
    /// `"hmac-sha256"`, `"hmac-sha512"` or `"hmac-sha1"`.
    pub algorithm: Spanned<String>,
    /// The secret, base64 (as `tsig-keygen` and `keymgr -t` print it).
    pub secret: Option<Spanned<String>>,
    /// Name of an environment variable holding the base64 secret, so it stays out of the file.
    pub secret_env: Option<Spanned<String>>,
    /// A file holding the base64 secret, relative to the configuration file's folder.
    pub secret_file: Option<Spanned<String>>,
}

impl fmt::Debug for TsigKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKeyConfig")
            .field("name", self.name.get_ref())
            .field("algorithm", self.algorithm.get_ref())
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("secret_env", &self.secret_env.as_ref().map(|e| e.get_ref()))
            .field(
                "secret_file",
                &self.secret_file.as_ref().map(|e| e.get_ref()),
            )
            .finish()
    }
}

/// A key name as compared: lowercase, without the trailing dot.
fn canonical(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The keys of every `[[tsig_key]]`, in order; each problem goes to `problem` with its byte
/// offset. A key with a problem is left out (the configuration is refused anyway).
pub fn compile(
    raw: &[TsigKeyConfig],
    base: &Path,
    problem: &mut dyn FnMut(usize, String),
) -> KeyRing {
    let mut keys = Vec::with_capacity(raw.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, k) in raw.iter().enumerate() {
        let at = |s: &Spanned<String>| s.span().start;
        let name = k.name.get_ref();
        if seen.contains(&canonical(name)) {
            problem(
                at(&k.name),
                format!("tsig_key[{i}].name: key {name:?} is defined twice"),
            );
        }
        seen.push(canonical(name));
        let algorithm = Algorithm::from_name(k.algorithm.get_ref());
        if algorithm.is_none() {
            problem(
                at(&k.algorithm),
                format!(
                    "tsig_key[{i}].algorithm: {:?} is not one of hmac-sha256, hmac-sha512, hmac-sha1",
                    k.algorithm.get_ref()
                ),
            );
        }
        let secret = secret(i, k, base, problem);
        let (Some(algorithm), Some(secret)) = (algorithm, secret) else {
            continue;
        };
        match Key::new(name, algorithm, &secret) {
            Some(key) => keys.push(key),
            None => problem(
                at(&k.name),
                format!("tsig_key[{i}].name: {name:?} is not a domain name"),
            ),
        }
    }
    KeyRing::new(keys)
}

/// The decoded secret of key `i`; `None` after reporting a problem. Messages name where the
/// secret comes from, never what it holds.
fn secret(
    i: usize,
    k: &TsigKeyConfig,
    base: &Path,
    problem: &mut dyn FnMut(usize, String),
) -> Option<Vec<u8>> {
    let given: Vec<(&str, &Spanned<String>)> = [
        ("secret", &k.secret),
        ("secret_env", &k.secret_env),
        ("secret_file", &k.secret_file),
    ]
    .into_iter()
    .filter_map(|(field, v)| Some((field, v.as_ref()?)))
    .collect();
    let (field, value) = match given[..] {
        [one] => one,
        [] => {
            problem(
                k.name.span().start,
                format!("tsig_key[{i}]: one of secret, secret_env or secret_file is needed"),
            );
            return None;
        }
        [_, (field, v), ..] => {
            problem(
                v.span().start,
                format!("tsig_key[{i}].{field}: set only one of secret, secret_env, secret_file"),
            );
            return None;
        }
    };
    let at = value.span().start;
    let text = match field {
        "secret" => value.get_ref().clone(),
        "secret_env" => match std::env::var(value.get_ref()) {
            Ok(v) => v,
            Err(_) => {
                problem(
                    at,
                    format!(
                        "tsig_key[{i}].secret_env: environment variable {} is not set (or not UTF-8)",
                        value.get_ref()
                    ),
                );
                return None;
            }
        },
        _ => {
            let path = base.join(value.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(v) => v,
                Err(e) => {
                    problem(
                        at,
                        format!(
                            "tsig_key[{i}].secret_file: cannot read {}: {e}",
                            path.display()
                        ),
                    );
                    return None;
                }
            }
        }
    };
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(s) if !s.is_empty() => Some(s),
        Ok(_) => {
            problem(at, format!("tsig_key[{i}].{field}: the secret is empty"));
            None
        }
        // The decoder's message would quote a byte of the secret: not shown.
        Err(_) => {
            problem(
                at,
                format!("tsig_key[{i}].{field}: the secret is not valid base64"),
            );
            None
        }
    }
}

/// The positions in `ring` (built from `raw` by [`compile`]) of zone `i`'s
/// `[zone.transfer] keys`; an unknown name goes to `problem` with its byte offset.
pub fn zone_keys(
    i: usize,
    names: &[Spanned<String>],
    raw: &[TsigKeyConfig],
    ring: &KeyRing,
    problem: &mut dyn FnMut(usize, String),
) -> Vec<usize> {
    let mut out = Vec::with_capacity(names.len());
    for (j, n) in names.iter().enumerate() {
        let wanted = canonical(n.get_ref());
        if !raw.iter().any(|k| canonical(k.name.get_ref()) == wanted) {
            problem(
                n.span().start,
                format!(
                    "zone[{i}].transfer.keys[{j}]: key {:?} is not defined by a [[tsig_key]]",
                    n.get_ref()
                ),
            );
            continue;
        }
        // A defined key with its own problem is not in the ring; that problem is reported.
        if let Some(k) = name_to_wire(n.get_ref()).and_then(|w| ring.find(&w))
            && !out.contains(&k)
        {
            out.push(k);
        }
    }
    out
}
