//! The state file: manual overrides that outlive restarts and reloads.
//!
//! JSON, one entry per endpoint: `{"eu1": {"kind": "drain", "expires": 1796000000}}`, with
//! `expires` in seconds since the Unix epoch or `null` for no expiry. The running server writes it
//! whenever an override changes and reads it at start and on every reload, so an operator (or
//! `meridian override`) may edit it and send SIGHUP. Writes go to a temporary file that is then
//! renamed over the old one: a crash never leaves half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// Why the state file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file exists but could not be read (permissions, a directory, ...).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not the JSON this module writes.
    #[error("{}: not a valid state file: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The temporary file could not be written or renamed over the file.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The largest state file read: 16 MiB. An override takes about 80 bytes of the file, so an
/// override on every one of 100,000 endpoints (the largest configuration benchmarked) is some
/// 8 MB; a larger file is not one this module wrote, and is refused without being read whole.
pub const MAX_STATE_FILE_BYTES: u64 = 16 << 20;

/// Read `path` as text of at most `limit` bytes (an error past it, saying the limit).
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Read the state file; a missing file holds no overrides.
pub fn read(path: &Path) -> Result<Overrides, StateFileError> {
    match read_bounded(path, MAX_STATE_FILE_BYTES) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| StateFileError::Invalid {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Overrides::new()),
        Err(source) => Err(StateFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write the state file atomically (temporary file, then rename).
pub fn write(path: &Path, overrides: &Overrides) -> Result<(), StateFileError> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(overrides).expect("overrides serialize");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| StateFileError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Set (or with `kind = None`, clear) one endpoint's override in the state file at `path`.
pub fn edit(
    path: &Path,
    endpoint: &str,
    kind: Option<OverrideKind>,
    ttl: Option<std::time::Duration>,
) -> Result<(), StateFileError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(
            read(&path).unwrap(),
            Overrides::new(),
            "missing: no overrides"
        );
        std::fs::write(&path, "not json").unwrap();
        let e = read(&path).unwrap_err();
        assert!(matches!(e, StateFileError::Invalid { .. }), "{e:?}");
        let prefix = format!("{}: not a valid state file: ", path.display());
        assert!(e.to_string().starts_with(&prefix), "{e}");
        let e = read(dir.path()).unwrap_err();
        assert!(matches!(e, StateFileError::Read { .. }), "{e:?}");
        // Past the size limit: refused, naming the file and the limit, without reading on.
        let big = dir.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_STATE_FILE_BYTES + 1).unwrap();
        let e = read(&big).unwrap_err();
        assert!(matches!(e, StateFileError::Read { .. }), "{e:?}");
        let want = format!(
            "{}: cannot read: larger than the limit of 16777216 bytes",
            big.display()
        );
        assert_eq!(e.to_string(), want);
        f.set_len(MAX_STATE_FILE_BYTES).unwrap();
        let e = read(&big).unwrap_err();
        assert!(
            matches!(e, StateFileError::Invalid { .. }),
            "at the limit it is read: {e:?}"
        );
        let e = write(&dir.path().join("no/such/dir"), &Overrides::new()).unwrap_err();
        assert!(matches!(e, StateFileError::Write { .. }), "{e:?}");
        assert!(e.to_string().contains("no/such/dir: cannot write: "), "{e}");
    }
}
