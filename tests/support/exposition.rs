//! Reading the Prometheus exposition (`meridian::metrics::render()`, what the admin API's
//! `/metrics` serves).
//!
//! The metrics registry is one per process, so tests that assert on it (exact deltas, a gauge's
//! value) hold [`registry_lock`] while their server runs: two of them never overlap. They live
//! in tests/metrics/, a binary of their own, so no other test moves the same series meanwhile.

use std::sync::{Mutex, MutexGuard};

/// The value of the sample `series` (`name{labels}`, labels in exposition order), or 0.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Held by a test for as long as it reads the process-wide registry and runs servers that
/// move it.
pub fn registry_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding it has already failed; the rest may go on.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
