//! The state file: manual overrides that outlive restarts and reloads.
//!
//! JSON, one entry per endpoint: `{"eu1": {"kind": "drain", "expires": 1796000000}}`, with
//! `expires` in seconds since the Unix epoch or `null` for no expiry. The running server writes it
//! whenever an override changes and reads it at start and on every reload, so an operator (or
//! `meridian override`) may edit it and send SIGHUP. Writes go to a temporary file that is then
//! renamed over the old one: a crash never leaves half a file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::state::OverrideKind;

/// One saved override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOverride {
    pub kind: OverrideKind,
    /// Expiry in seconds since the Unix epoch; `None` = until cleared.
    pub expires: Option<u64>,
}

/// All saved overrides, by endpoint name.
pub type Overrides = BTreeMap<String, SavedOverride>;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Read the state file; a missing file holds no overrides.
pub fn read(path: &Path) -> Result<Overrides, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a valid state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overrides::new()),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// Write the state file atomically (temporary file, then rename).
pub fn write(path: &Path, overrides: &Overrides) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(overrides).expect("overrides serialize");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Set (or with `kind = None`, clear) one endpoint's override in the state file at `path`.
pub fn edit(
    path: &Path,
    endpoint: &str,
    kind: Option<OverrideKind>,
    ttl: Option<std::time::Duration>,
) -> Result<(), String> {
    let mut all = read(path)?;
    match kind {
        Some(kind) => {
            let expires = ttl.map(|t| unix_now() + t.as_secs().max(1));
            all.insert(endpoint.to_string(), SavedOverride { kind, expires });
        }
        None => {
            all.remove(endpoint);
        }
    }
    write(path, &all)
}
