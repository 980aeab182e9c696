//! [`GeoSource`]: the database file on disk and the [`GeoDb`] currently serving from it.
//!
//! `geoipupdate` (and `geo-data/refresh.sh`) write a new file beside the old one and rename it
//! into place. [`GeoSource::reload_if_changed`] notices that by the file's identity (device,
//! inode, size, modification time), opens and verifies the new file aside, and only then swaps it
//! in; readers holding the old [`Arc<GeoDb>`] keep using it until they drop it (its map keeps the
//! replaced file alive). A missing, unreadable or corrupt file is rejected with an error naming it
//! and the old database keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use super::GeoError;
use super::db::{FileStamp, GeoDb};

/// A database path and the database currently loaded from it, swapped atomically on reload.
#[derive(Debug)]
pub struct GeoSource {
    path: PathBuf,
    current: ArcSwap<GeoDb>,
    /// Identity of the file last tried: the loaded one, or a newer one that was rejected (so a
    /// bad file is reported once, not on every poll, and retried once it changes again).
    last_seen: Mutex<FileStamp>,
}

impl GeoSource {
    /// Opens the database at `path`; fails as [`GeoDb::open`] does.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoSource, GeoError> {
        let db = GeoDb::open(path.as_ref())?;
        Ok(GeoSource {
            path: path.as_ref().to_owned(),
            last_seen: Mutex::new(db.stamp()),
            current: ArcSwap::from_pointee(db),
        })
    }

    /// The path watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database now serving, for the query path: lock-free, no allocation.
    pub fn load(&self) -> Guard<Arc<GeoDb>> {
        self.current.load()
    }

    /// The database now serving, as an owned handle (for a snapshot that outlives this call).
    pub fn current(&self) -> Arc<GeoDb> {
        self.current.load_full()
    }

    /// Reopens the file if it changed since it was last tried.
    ///
    /// Returns `Ok(true)` when a new database was loaded and swapped in, `Ok(false)` when the
    /// file is unchanged (or is the same bad file already reported), and an error, with the old
    /// database kept, when the file is missing, unreadable or not a valid database. A file that
    /// changes while it is being verified is rejected with [`GeoError::Changed`] and tried again
    /// on the next call. Logs the outcome of every attempt that found a change.
    pub fn reload_if_changed(&self) -> Result<bool, GeoError> {
        let mut last = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        let io = |source| GeoError::Io {
            path: self.path.clone(),
            source,
        };
        let before = std::fs::metadata(&self.path).map_err(|e| {
            let path = self.path.display();
            tracing::warn!(%path, error = %e, "geo database unreadable; keeping the loaded one");
            io(e)
        })?;
        if FileStamp::of(&before) == *last {
            return Ok(false);
        }
        let result = GeoDb::open(&self.path).and_then(|db| {
            // Compare what was mapped with what the path names now: a writer still at work
            // in place would otherwise slip a half-written file in.
            let after = std::fs::metadata(&self.path).map_err(io)?;
            if FileStamp::of(&after) != db.stamp() || FileStamp::of(&before) != db.stamp() {
                return Err(GeoError::Changed {
                    path: self.path.clone(),
                });
            }
            Ok(db)
        });
        match result {
            Ok(db) => {
                tracing::info!(
                    path = %self.path.display(),
                    database_type = db.database_type(),
                    build_epoch = db.build_epoch(),
                    "geo database reloaded"
                );
                *last = db.stamp();
                self.current.store(Arc::new(db));
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "geo database rejected; keeping the loaded one");
                if !matches!(e, GeoError::Changed { .. }) {
                    *last = FileStamp::of(&before);
                }
                Err(e)
            }
        }
    }
}
